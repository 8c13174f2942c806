"""mailnet: a discrete-event simulator of internet mail delivery.

The names below load on first use (``mailnet.lazy``): ``import mailnet``, and with it the
command line, does not import pandas, pydantic or SimPy until something runs, nor reads
the installed version's metadata until asked. The model's hot path runs compiled where
``make`` has built it from the sources as they are (``mailnet.compiled``).
"""

from typing import TYPE_CHECKING

from mailnet import compiled
from mailnet.lazy import export_lazily

compiled.install()  # the compiled model only while it matches its sources (mailnet.compiled)

if TYPE_CHECKING:
    from mailnet.errors import ScenarioError
    from mailnet.scenario import Scenario, load_scenario
    from mailnet.simulate import RunResult, simulate
    from mailnet.version import __version__

__all__ = ["RunResult", "Scenario", "ScenarioError", "__version__", "load_scenario", "simulate"]

export_lazily(
    __name__,
    {
        "mailnet.errors": ["ScenarioError"],
        "mailnet.scenario": ["Scenario", "load_scenario"],
        "mailnet.simulate": ["RunResult", "simulate"],
        "mailnet.version": ["__version__"],
    },
)
