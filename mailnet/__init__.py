"""mailnet: a discrete-event simulator of internet mail delivery."""

from mailnet.errors import ScenarioError
from mailnet.scenario import Scenario, load_scenario
from mailnet.simulate import RunResult, simulate

__version__ = "0.1.0"

__all__ = ["RunResult", "Scenario", "ScenarioError", "__version__", "load_scenario", "simulate"]
