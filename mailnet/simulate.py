"""One run: build the world, run it, collect the tables. Nothing else happens here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import simpy

from mailnet import metrics
from mailnet.environment import environment
from mailnet.model.world import World
from mailnet.randomness import RandomStreams
from mailnet.records import EventLog
from mailnet.scenario import Scenario


@dataclass
class RunResult:
    """The tables and summary of one run.

    ``messages``: one row per message and recipient; ``attempts``: one row per delivery
    attempt and recipient; ``queues``: step series of queue lengths and sessions in use;
    ``summary``: run statistics (see ``mailnet.metrics.summarize``). Times in seconds.
    """

    scenario: Scenario
    seed: int
    messages: pd.DataFrame
    attempts: pd.DataFrame
    queues: pd.DataFrame
    summary: dict
    manifest: dict = field(default_factory=dict)
    listings: pd.DataFrame = field(default_factory=pd.DataFrame)
    reputation: pd.DataFrame = field(default_factory=pd.DataFrame)
    suspensions: pd.DataFrame = field(default_factory=pd.DataFrame)


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    base_dir: Path | str | None = None,
    source: str = "<scenario>",
) -> RunResult:
    """Run ``scenario`` for its duration with ``seed`` (default: the scenario's own).

    The same scenario and seed always give identical tables. ``base_dir`` resolves
    relative trace paths.
    """
    from mailnet import __version__

    seed = scenario.simulation.seed if seed is None else int(seed)
    started = time.perf_counter()
    env = simpy.Environment()
    log = EventLog()
    world = World(
        scenario,
        env,
        RandomStreams(seed),
        log,
        base_dir=Path(base_dir) if base_dir is not None else None,
        source=source,
    )
    env.run(until=scenario.simulation.duration)
    messages = log.messages.frame()
    attempts = log.attempts.frame()
    queues = log.levels.frame()
    listings = world.blocklists.frame(scenario.simulation.duration)
    reputation = log.scores.frame()
    suspensions = pd.DataFrame(
        world.suspensions, columns=["sender", "at", "sent", "bounce_rate", "complaint_rate"]
    )
    summary = metrics.summarize(messages, attempts, queues, scenario, world, listings)
    wall = time.perf_counter() - started
    manifest = {
        "mailnet_version": __version__,
        "seed": seed,
        "wall_time_s": round(wall, 3),
        "simulated_events": _events_scheduled(env),
        "simulated_seconds": scenario.simulation.duration,
        "environment": environment(),
    }
    return RunResult(
        scenario,
        seed,
        messages,
        attempts,
        queues,
        summary,
        manifest,
        listings,
        reputation,
        suspensions,
    )


def _events_scheduled(env: simpy.Environment) -> int:
    # SimPy numbers events with an itertools.count; its repr is the only way to read it
    # without consuming a number.
    text = repr(env._eid)
    return int(text[text.index("(") + 1 : text.index(")")])
