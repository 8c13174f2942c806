"""mailnet: a discrete-event simulator of internet mail delivery."""

from mailnet.errors import ScenarioError
from mailnet.scenario import Scenario, load_scenario
from mailnet.simulate import RunResult, simulate
from mailnet.version import __version__

__all__ = ["RunResult", "Scenario", "ScenarioError", "__version__", "load_scenario", "simulate"]
