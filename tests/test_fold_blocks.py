"""A summary-only run folds its settled rows, attempt rows and latencies in blocks: the
summary must not depend on the size of the blocks, to the last bit, and the slots in use
must stay bounded by the mail in flight plus one block."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import simpy

from mailnet import load_scenario, simulate, sketch, streaming
from tests.conftest import captured_logs

ROOT = Path(__file__).resolve().parent.parent
WORLDS = {
    "golden": (ROOT / "tests/golden/scenario.toml", []),
    "spam": (
        ROOT / "experiments/scenarios/shared_ip_spam.toml",
        ["simulation.duration=3h", "simulation.warmup=1h"],
    ),
}


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_summary_does_not_depend_on_the_block_size(world, monkeypatch):
    path, overrides = WORLDS[world]
    scenario = load_scenario(path, overrides=overrides)
    blocks = simulate(scenario, summary_only=True).summary
    monkeypatch.setattr(streaming, "BLOCK", 1)  # a row folded at the next row added
    monkeypatch.setattr(streaming, "ATTEMPT_BLOCK", 1)  # an attempt row as it comes
    monkeypatch.setattr(sketch, "PENDING", 1)  # a latency into the DDSketch as it comes
    one_by_one = simulate(scenario, summary_only=True).summary
    assert blocks == one_by_one


def test_slots_follow_the_mail_in_flight(monkeypatch):
    """Settled rows wait in their slots until a block of ``BLOCK`` is folded: the slots
    ever used stay within the rows in flight at their peak plus one block. The rows in
    flight (created, not yet settled) are read after every event."""
    logs = captured_logs(monkeypatch)
    open_rows = [0]  # the peak

    def count() -> None:
        if logs:
            log = logs[0]
            table, fold = log.messages, log.fold
            folded = sum(c.rows for c in fold.classes.values()) + sum(fold.dsn_status.values())
            open_rows[0] = max(open_rows[0], table.created - folded - len(table._settled))

    monkeypatch.setattr(streaming, "BLOCK", 64)
    path, overrides = WORLDS["spam"]
    simulate(
        load_scenario(path, overrides=overrides), summary_only=True, environment=Sampled(count)
    )
    table = logs[0].messages
    assert table.created > 20 * 64  # the block reached its size
    assert open_rows[0] <= len(table) <= open_rows[0] + 64


class Sampled(simpy.Environment):
    """An environment that calls ``sample()`` after each event it processes."""

    def __init__(self, sample: Callable[[], None]):
        super().__init__()
        self._sample = sample

    def step(self) -> None:
        super().step()
        self._sample()


def test_in_flight_counts_the_messages_with_rows_not_yet_folded(monkeypatch):
    """``FoldingTable.in_flight``: messages with a row not yet folded. When the model
    stops, those are the messages still queued and at most a block of settled ones (in
    the M/M/c world each message has one recipient, so the queued ones are the summary's
    in-queue rows); the summary folds them all."""
    logs = captured_logs(monkeypatch)
    counts: list[int] = []
    scenario = load_scenario(
        ROOT / "experiments/scenarios/mmc.toml", overrides=["simulation.duration=2000s"]
    )
    result = simulate(
        scenario,
        summary_only=True,
        progress=lambda now, created: counts.append(logs[0].messages.in_flight()),
    )
    table = logs[0].messages
    assert 0 < max(counts) < table.created
    queued = result.summary["status"]["in_queue"]
    assert queued > 0  # rho = 0.8: some customers wait at the end
    assert queued <= counts[-1] <= queued + streaming.BLOCK
    assert table.in_flight() == 0
