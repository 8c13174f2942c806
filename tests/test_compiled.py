"""The compiled model (mailnet.compiled): the same runs as the sources, used only while it
matches them."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailnet import compiled

ROOT = Path(__file__).resolve().parent.parent

RUN = r"""
import hashlib, json, sys
import pandas as pd
import mailnet
from mailnet import compiled
from mailnet.model import outbound

scenario = mailnet.load_scenario(sys.argv[1], overrides=["simulation.duration=6h"])
result = mailnet.simulate(scenario, seed=3)
digest = hashlib.sha256()
for name, frame in result.tables().items():
    digest.update(name.encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).values.tobytes())
summary = json.dumps(result.summary, sort_keys=True, default=str)
print(json.dumps({
    "active": compiled.active(),
    "outbound": outbound.__file__,
    "tables": digest.hexdigest(),
    "summary": summary,
}))
"""


def _run(scenario: Path, pure: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE}
    if pure:
        env[compiled.PURE] = "1"
    out = subprocess.run(
        [sys.executable, "-c", RUN, str(scenario)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_compiled_model_runs_the_same_as_its_sources() -> None:
    if not compiled.built():
        if os.environ.get("CI") == "true":
            pytest.fail("make test builds the compiled model (make compiled): it is missing")
        pytest.skip("the compiled model is not built (make compiled)")
    scenario = ROOT / "experiments" / "scenarios" / "shared_ip_spam.toml"
    fast, pure = _run(scenario, pure=False), _run(scenario, pure=True)
    assert fast["active"]
    assert not pure["active"]
    assert not fast["outbound"].endswith(".py")
    assert pure["outbound"].endswith("outbound.py")
    assert fast["tables"] == pure["tables"]
    assert fast["summary"] == pure["summary"]


def _fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: dict) -> None:
    manifest = tmp_path / "_compiled.json"
    tag = sys.implementation.cache_tag
    manifest.write_text(json.dumps({"cache_tag": tag, "sources": sources}))
    monkeypatch.setattr(compiled, "MANIFEST", manifest)
    monkeypatch.setattr(compiled, "_extension", lambda module: tmp_path / "x.so")
    monkeypatch.delenv(compiled.PURE, raising=False)
    compiled.active.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_answer():
    compiled.active.cache_clear()
    yield
    compiled.active.cache_clear()


def test_a_build_is_used_only_while_every_source_has_the_hash_it_was_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = {m: compiled.digest(compiled.source(m)) for m in compiled.MODULES}
    _fake_build(tmp_path, monkeypatch, hashes)
    assert compiled.built()
    assert compiled.active()
    monkeypatch.setenv(compiled.PURE, "1")
    compiled.active.cache_clear()
    assert compiled.built()
    assert not compiled.active()
    # one source edited since the build: none of the build is used
    edited = dict(hashes, **{compiled.MODULES[3]: "0" * 64})
    _fake_build(tmp_path, monkeypatch, edited)
    assert not compiled.built()
    assert not compiled.active()
    # a module added to the list since the build
    fewer = {m: h for m, h in hashes.items() if m != compiled.MODULES[0]}
    _fake_build(tmp_path, monkeypatch, fewer)
    assert not compiled.built()
    # built by another interpreter
    (tmp_path / "_compiled.json").write_text(json.dumps({"cache_tag": "pypy", "sources": hashes}))
    compiled.active.cache_clear()
    assert not compiled.built()


def test_without_a_build_the_finder_loads_every_compiled_module_from_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_build(tmp_path, monkeypatch, {})
    finder = compiled._SourcesUnlessCompiled()
    for module in compiled.MODULES:
        spec = finder.find_spec(module, None)
        assert spec is not None
        assert spec.origin == str(compiled.source(module))
    assert finder.find_spec("mailnet.model.world", None) is None  # never compiled
    assert compiled._FINDER in sys.meta_path  # installed by ``import mailnet``


def test_a_rebuild_finds_each_previous_extension_module_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the build removes them first: a file matching two suffixes (.so and the full tag)
    # is one file to remove, not two
    (tmp_path / "model").mkdir()
    built = [tmp_path / f"randomness{importlib.machinery.EXTENSION_SUFFIXES[0]}"]
    built.append(tmp_path / "model" / f"outbound{importlib.machinery.EXTENSION_SUFFIXES[0]}")
    for path in built:
        path.write_bytes(b"")
    (tmp_path / "model" / "outbound.py").write_text("")
    monkeypatch.setattr(compiled, "PACKAGE", tmp_path)
    assert compiled._extensions() == sorted(built)
