"""The command line starts without the heavy libraries, and the lazily loaded package
names (``mailnet.lazy``) are the objects they name.

Help, ``presets`` and argument errors must not import pandas, matplotlib, Dask, SciPy,
pyarrow or SALib: each case runs in a fresh interpreter, as the console script does, and
lists what ``sys.modules`` holds afterwards. A module check, not a timing, so it cannot
flake under load and fails as soon as a top-level import brings one back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import import_module

import pytest

HEAVY = ("pandas", "matplotlib", "dask", "distributed", "scipy", "pyarrow", "SALib")

CONSOLE_SCRIPT = f"""
import json, sys
from mailnet.cli import main
sys.argv = ["mailnet", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def start(*args: str) -> dict:
    """Run ``mailnet ARGS`` in a fresh interpreter: its exit code and the heavy modules
    it imported."""
    out = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--help",), 0),
        (("presets",), 0),
        (("run", "--help"), 0),
        (("sweep", "--help"), 0),
        (("run", "no-such-scenario.toml"), 2),
        (("run", "--no-such-option", "x.toml"), 2),
        (("no-such-command",), 2),
    ],
)
def test_cli_starts_without_heavy_modules(args: tuple[str, ...], code: int) -> None:
    seen = start(*args)
    assert seen["code"] == code
    assert seen["heavy"] == []


def test_missing_scenario_is_said_as_load_scenario_says_it(tmp_path) -> None:
    from mailnet.errors import ScenarioError
    from mailnet.scenario import load_scenario

    path = tmp_path / "absent.toml"
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    result = subprocess.run(
        [sys.executable, "-m", "mailnet.cli", "run", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"mailnet: error: {raised.value}\n"


def test_import_mailnet_is_light() -> None:
    code = (
        "import sys, mailnet\n"
        f"print(sorted(m for m in {(*HEAVY, 'pydantic', 'simpy')!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", ["mailnet", "mailnet.sweep", "mailnet.report"])
def test_every_lazy_name_is_the_object_it_names(package: str) -> None:
    module = import_module(package)
    homes = vars(module)["_lazy_homes"]
    assert set(homes) == set(module.__all__)
    for name, home in homes.items():
        assert getattr(module, name) is getattr(import_module(home), name)
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_submodule_does_not_shadow_the_function_of_its_name() -> None:
    # mailnet.simulate is both a module and the function it defines; the package keeps
    # the function whichever is imported first
    code = (
        "import mailnet.simulate, mailnet\n"
        "from mailnet import simulate\n"
        "print(simulate is mailnet.simulate, mailnet.simulate.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "mailnet.simulate"]
