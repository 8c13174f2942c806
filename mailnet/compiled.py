"""The model's hot path compiled to C with mypyc, used only while it matches its sources.

``make compiled`` builds the modules of ``MODULES`` (``main``: mypyc, then a C compiler)
into extension modules beside their sources, and writes ``MANIFEST`` with the SHA-256
of each source it compiled. The modules are the same Python, type-checked, run without
the interpreter's dispatch: the same draws, events and rows, with the simulation about
twice as fast per message (benchmarks/README.md).

Python would import an extension module in preference to its source, so ``install``
puts a finder before Python's own: it lets the extension modules load only when every
source still has the hash it was compiled from, and otherwise loads every source. It is
all or none, because compiled modules call each other directly. So an edited source, an
interpreter other than the one that built them, or ``MAILNET_PURE=1`` in the environment
runs the sources, never a stale build; ``active()`` says which is running.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parent
MANIFEST = PACKAGE / "_compiled.json"
"""Written by the build: the interpreter's cache tag and each compiled source's hash."""

MODULES = (
    "mailnet.recorders",
    "mailnet.message_table",
    "mailnet.model.clients",
    "mailnet.model.destinations",
    "mailnet.model.dns",
    "mailnet.model.hop_client",
    "mailnet.model.inbound",
    "mailnet.model.mailbox",
    "mailnet.model.mda",
    "mailnet.model.message",
    "mailnet.model.outbound",
    "mailnet.model.passes",
    "mailnet.model.routing",
    "mailnet.model.session_slots",
    "mailnet.model.sources",
    "mailnet.model.stepping",
    "mailnet.model.submission",
    "mailnet.model.feedback",
    "mailnet.smtp",
    "mailnet.randomness",
    "mailnet.model.receiver",
    "mailnet.policies.reputation",
    "mailnet.policies.blocklists",
    "mailnet.policies.traps",
    "mailnet.policies.windows",
    "mailnet.policies.episodes",
    "mailnet.streaming",
    "mailnet.streaming_summary",
    "mailnet.streaming_tables",
)
"""What a message passes through: submission, the MTA and its destinations, DNS, the MX
server's sessions, the receiver's verdicts (blocklists, reputation, trap hits, their
windows and episodes), delivery and the mailbox, the reputation feedback of what is
delivered, the SMTP replies they give, the block draws they take, and the recorders of
the messages rows, attempts and queue levels they make; and the folds of those rows a
summary-only or streamed run makes as it goes (``streaming``, its accumulators and its
streamed tables), about one per recipient row and one per attempt row."""

GROUP = "mailnet.model_compiled"
"""mypyc's shared library of the group (``mailnet/model_compiled__mypyc``)."""

PURE = "MAILNET_PURE"
"""Set to ``1`` to run the sources even where a matching build exists."""


def source(module: str) -> Path:
    """The source file of ``module`` (a dotted name under ``mailnet``)."""
    return PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")


def digest(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex."""
    import hashlib  # noqa: PLC0415  # loaded once a model module is imported

    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def active() -> bool:
    """Whether the compiled modules run: built by this interpreter from the sources as
    they are now, and not turned off with ``MAILNET_PURE=1``."""
    return os.environ.get(PURE) != "1" and built()


def built() -> bool:
    """Whether the extension modules beside the sources were built by this interpreter
    from the sources as they are now."""
    import json  # noqa: PLC0415  # loaded once a model module is imported

    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("cache_tag") != sys.implementation.cache_tag:
        return False
    hashes = manifest.get("sources")
    if not isinstance(hashes, dict) or set(hashes) != set(MODULES):
        return False
    try:
        return all(hashes[m] == digest(source(m)) and _extension(m) is not None for m in MODULES)
    except OSError:
        return False


def _extension(module: str) -> Path | None:
    """The extension module built for ``module`` beside its source, if there is one."""
    folder = source(module).parent
    name = module.rpartition(".")[2]
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


class _SourcesUnlessCompiled:
    """Loads the source of a module of ``MODULES`` unless the compiled ones are active (a
    meta path finder: ``importlib.abc.MetaPathFinder``'s protocol, without importing it)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _NAMES or active():
            return None  # Python's own finders: the extension module, or the only source
        return importlib.util.spec_from_file_location(fullname, source(fullname))


_NAMES = frozenset(MODULES)
_FINDER = _SourcesUnlessCompiled()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), before any module of
    ``MODULES`` is imported."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def build(*, parallel: int | None = None) -> None:
    """Compile ``MODULES`` in place with mypyc (the project's mypy configuration) and write
    ``MANIFEST``. Raises what mypyc or the C compiler raise."""
    # build tools, not needed to run
    from mypyc.build import mypycify  # noqa: PLC0415
    from setuptools import Distribution  # type: ignore[import-untyped]  # noqa: PLC0415

    root = PACKAGE.parent
    MANIFEST.unlink(missing_ok=True)  # a failed build leaves the sources in use
    for stale in _extensions():  # Python would load one whose module left MODULES
        stale.unlink(missing_ok=True)
    os.chdir(root)
    paths = [str(source(m).relative_to(root)) for m in MODULES]
    extensions = mypycify(
        ["--config-file", "pyproject.toml", *paths], opt_level="3", group_name=GROUP
    )
    # a bare Distribution: the build needs no project metadata from pyproject.toml
    dist = Distribution({"name": GROUP, "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.inplace = True
    command.parallel = parallel or os.cpu_count() or 1
    dist.run_command("build_ext")
    hashes = {m: digest(source(m)) for m in MODULES}
    import json  # noqa: PLC0415

    MANIFEST.write_text(
        json.dumps({"cache_tag": sys.implementation.cache_tag, "sources": hashes}, indent=1)
    )


def _extensions() -> list[Path]:
    """Every extension module in the package (built by ``build``)."""
    # one file matches several suffixes (.cpython-311-x86_64-linux-gnu.so and .so)
    return sorted(
        {
            path
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            for path in PACKAGE.rglob(f"*{suffix}")
        }
    )


def main() -> int:
    """``make compiled``: build unless the build matches the sources. Where
    nothing can compile (no C compiler), say so and leave the sources to run; under
    ``CI=true`` that is an error."""
    if built():
        return 0
    try:
        build()
    except BaseException as error:  # setuptools reports a failed compile as SystemExit
        if os.environ.get("CI") == "true" or isinstance(error, KeyboardInterrupt):
            raise
        print(
            f"mailnet: the model runs from its sources, uncompiled: {error}".splitlines()[0],
            file=sys.stderr,
        )
        return 0
    print(f"mailnet: compiled {len(MODULES)} modules of the model with mypyc")
    return 0
