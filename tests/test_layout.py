"""README's "Layout" section against the tree: every module of mailnet/ is listed, in its
package, and every module and folder listed exists."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pydantic import BaseModel

from mailnet.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mailnet"
ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[A-Za-z0-9_.]+/?)(?:\s|$)")


def layout_block() -> str:
    """The code block of README.md's "Layout" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def listed_paths(block: str) -> set[str]:
    """The paths the block names, e.g. ``mailnet/model/world.py``: each entry's folder is
    the last entry ending in ``/`` that is indented less (two spaces a level)."""
    paths: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines():
        match = ENTRY.match(line)
        if match is None:
            continue
        depth = len(match["indent"]) // 2
        del folders[depth:]
        path = "".join(folders) + match["name"]
        paths.add(path.rstrip("/"))
        if match["name"].endswith("/"):
            folders.append(match["name"])
    return paths


def modules() -> set[str]:
    """Every module of the package, an ``__init__.py`` as its package's folder."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(ROOT)
        found.add(str(relative.parent if path.name == "__init__.py" else relative))
    return found


def test_every_module_is_listed() -> None:
    missing = sorted(modules() - listed_paths(layout_block()))
    assert not missing, f"README.md Layout does not list: {missing}"


def test_every_listed_path_exists() -> None:
    absent = sorted(p for p in listed_paths(layout_block()) if not (ROOT / p).exists())
    assert not absent, f"README.md Layout lists what does not exist: {absent}"


def test_the_parser_reads_nesting() -> None:
    block = "mailnet/   x\n  a.py   y\n  sub/   z\n    b.py  w\n  c.py\ndocs/\n"
    assert listed_paths(block) == {
        "mailnet",
        "mailnet/a.py",
        "mailnet/sub",
        "mailnet/sub/b.py",
        "mailnet/c.py",
        "docs",
    }


def test_readme_documents_every_scenario_key() -> None:
    """Every key of the scenario schema, at any depth, is named in README.md."""
    readme = (ROOT / "README.md").read_text()
    seen: set[type] = set()
    missing: list[str] = []

    def walk(model: type[BaseModel], path: str) -> None:
        for name, field in model.model_fields.items():
            if not re.search(rf"\b{re.escape(name)}\b", readme):
                missing.append(f"{path}.{name}")
            annotation = field.annotation
            for outer in (*getattr(annotation, "__args__", ()), annotation):
                for inner in (outer, *getattr(outer, "__args__", ())):
                    if (
                        inspect.isclass(inner)
                        and issubclass(inner, BaseModel)
                        and inner not in seen
                    ):
                        seen.add(inner)
                        walk(inner, f"{path}.{name}")

    walk(Scenario, "scenario")
    assert missing == []
