"""Package names that load on first use (PEP 562), so importing a package stays cheap.

``import mailnet`` and the command line must not pay for pandas, matplotlib, SciPy or Dask
until a command needs them; yet ``mailnet.simulate``, ``from mailnet.sweep import sweep``
and ``from mailnet.report import make_report`` keep working. A package lists what it
exports and where each name is defined::

    if TYPE_CHECKING:                      # what type checkers and readers see
        from mailnet.sweep.runner import SweepResult, sweep
    export_lazily(__name__, {"mailnet.sweep.runner": ["SweepResult", "sweep"]})

The first access to a name imports its module and keeps the value in the package, so
later accesses cost a dictionary lookup, as with an eager import.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import Any

_HOMES = "_lazy_homes"
"""The package attribute mapping each lazily exported name to its module."""


class LazyPackage(types.ModuleType):
    """A package module whose exported names load on first use.

    Importing a submodule binds it as an attribute of its package; when the submodule has
    the name of an export (``mailnet.simulate``, module and function), the package keeps
    the export instead, as the eager ``from mailnet.simulate import simulate`` did.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        homes = self.__dict__.get(_HOMES, {})
        if isinstance(value, types.ModuleType) and homes.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


def export_lazily(package: str, homes: Mapping[str, Sequence[str]]) -> None:
    """Give the module ``package`` (already in ``sys.modules``) a PEP 562 ``__getattr__``
    and ``__dir__`` for the names of ``homes`` (module name -> names it defines)."""
    module = sys.modules[package]
    where = {name: home for home, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        home = where.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *where})

    vars(module).update({_HOMES: where, "__getattr__": __getattr__, "__dir__": __dir__})
    module.__class__ = LazyPackage
