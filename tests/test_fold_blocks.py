"""A summary-only run folds its settled rows, attempt rows and latencies in blocks: the
summary must not depend on the size of the blocks, to the last bit, and the slots in use
must stay bounded by the mail in flight plus one block."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailnet import load_scenario, simulate, sketch, streaming

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
    ever used stay within the rows in flight at their peak plus one block."""
    tables: list[streaming.FoldingTable] = []
    open_rows = [0, 0]  # now, peak
    add, settle, init = (
        streaming.FoldingTable.add,
        streaming.FoldingTable.settle,
        streaming.FoldingTable.__init__,
    )

    def counted_init(self, *args):
        init(self, *args)
        tables.append(self)

    def counted_add(self, *args):
        open_rows[0] += 1
        open_rows[1] = max(open_rows)
        return add(self, *args)

    def counted_settle(self, *args):
        open_rows[0] -= 1
        settle(self, *args)

    monkeypatch.setattr(streaming.FoldingTable, "__init__", counted_init)
    monkeypatch.setattr(streaming.FoldingTable, "add", counted_add)
    monkeypatch.setattr(streaming.FoldingTable, "settle", counted_settle)
    monkeypatch.setattr(streaming, "BLOCK", 64)
    path, overrides = WORLDS["spam"]
    simulate(load_scenario(path, overrides=overrides), summary_only=True)
    table = tables[0]
    assert table.created > 20 * 64  # the block reached its size
    assert open_rows[1] <= len(table) <= open_rows[1] + 64


def test_in_flight_counts_the_messages_with_rows_not_yet_folded(monkeypatch):
    """``FoldingTable.in_flight``: messages with a row not yet folded. When the model
    stops, those are the messages still queued and at most a block of settled ones (in
    the M/M/c world each message has one recipient, so the queued ones are the summary's
    in-queue rows); the summary folds them all."""
    tables: list[streaming.FoldingTable] = []
    init = streaming.FoldingTable.__init__

    def seen(self, *args):
        init(self, *args)
        tables.append(self)

    monkeypatch.setattr(streaming.FoldingTable, "__init__", seen)
    counts: list[int] = []
    scenario = load_scenario(
        ROOT / "experiments/scenarios/mmc.toml", overrides=["simulation.duration=2000s"]
    )
    result = simulate(
        scenario,
        summary_only=True,
        progress=lambda now, created: counts.append(tables[0].in_flight()),
    )
    table = tables[0]
    assert 0 < max(counts) < table.created
    queued = result.summary["status"]["in_queue"]
    assert queued > 0  # rho = 0.8: some customers wait at the end
    assert queued <= counts[-1] <= queued + streaming.BLOCK
    assert table.in_flight() == 0
