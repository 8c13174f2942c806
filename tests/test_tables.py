"""Output schemas: each column declared once, documented in README.md, present in a run;
and the facts the model records for later stages (reply texts, DSN links, MSA release)."""

from __future__ import annotations

import math
import re
import warnings
from array import array
from pathlib import Path

import pandas as pd
import pytest

from mailnet import load_scenario, simulate
from mailnet.message_table import COLUMNS, MessageTable
from mailnet.tables import MESSAGES, TABLES, Table
from tests.conftest import build, one_mx_world

README = Path(__file__).parent.parent / "README.md"
GOLDEN = Path(__file__).parent / "golden" / "scenario.toml"


def outputs_section() -> str:
    text = README.read_text()
    start = text.index("\n## Outputs\n")
    return text[start : text.index("\n## ", start + 1)]


def documented_columns(table: Table) -> list[str]:
    """The column names README.md's Outputs section lists for ``table``."""
    section = outputs_section()
    match = re.search(rf"`{table.name}\.parquet` columns[^\n]*:\n\n((?:\|[^\n]*\n)+)", section)
    assert match, f"README.md documents no columns of {table.name}.parquet"
    return re.findall(r"^\| `([^`]+)` \|", match.group(1), re.M)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_readme_documents_every_column(table: Table) -> None:
    documented = documented_columns(table)
    undocumented = [c for c in table.names if c not in documented]
    absent = [c for c in documented if c not in table.names]
    assert not undocumented, f"{table.name}: columns missing from README.md: {undocumented}"
    assert not absent, f"{table.name}: README.md documents absent columns: {absent}"
    assert table.markdown() in outputs_section(), (
        f"{table.name}: README.md's table differs from mailnet.tables; paste Table.markdown()"
    )


@pytest.fixture(scope="module")
def golden():
    return simulate(load_scenario(GOLDEN))


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_run_tables_have_the_declared_columns(golden, table: Table) -> None:
    frame = getattr(golden, table.name)
    assert list(frame.columns) == table.names
    for column in table.columns:
        assert str(frame[column.name].dtype) == column.dtype, column.name
        if column.categories is not None:
            assert tuple(frame[column.name].cat.categories) == column.categories


def test_a_frame_refuses_undeclared_columns() -> None:
    table = TABLES[0]
    with pytest.raises(KeyError, match="undeclared"):
        table.frame({**{name: [] for name in table.names}, "extra": []})
    with pytest.raises(KeyError, match="missing"):
        table.frame({})


def test_the_messages_buffers_are_the_declared_ones() -> None:
    """``message_table.COLUMNS`` names every buffer a ``MessageTable`` holds, and only
    those: the streamed tables copy rows out column by column through it."""
    table = MessageTable()
    buffers = {
        name
        for name in dir(table)
        if not name.startswith("__") and isinstance(getattr(table, name), (list, array))
    }
    assert buffers == set(COLUMNS)


# -- recorded facts ----------------------------------------------------------------------


def test_a_dsn_links_to_its_original() -> None:
    raw = one_mx_world()
    raw["senders"]["users"]["messages"] = [
        {"at": "5s", "to": ["alice@dest.example", "nosuchuser1@dest.example"]}
    ]
    m = simulate(build(raw)).messages
    original = m[~m["is_dsn"]]
    dsn = m[m["is_dsn"]]
    assert len(dsn) == 1
    row = dsn.iloc[0]
    assert row["dsn_of"] == original["message_id"].iloc[0]
    assert row["dsn_kind"] == "failed"
    assert row["dsn_recipient"] == "nosuchuser1@dest.example"
    assert row["recipient"] == original["sender"].iloc[0]
    assert original["dsn_of"].isna().all()
    assert original["dsn_kind"].isna().all()
    bounced = original[original["status"] == "bounced"].iloc[0]
    assert bounced["final_reply"] == "Recipient address rejected: User unknown"
    delivered = original[original["status"] == "delivered"].iloc[0]
    assert delivered["stored_by"] == "mx.dest.example"
    assert delivered["final_reply"] == "delivered to mailbox"
    assert row["stored_by"] == "isp"  # the DSN is delivered locally at the provider


def test_the_reply_text_of_a_greylisted_attempt() -> None:
    raw = one_mx_world(receiver="corp")
    raw["receivers"] = {"corp": {"greylisting": {"delay": "5m"}}}
    a = simulate(build(raw)).attempts
    assert list(a["outcome"]) == ["deferred", "sent"]
    assert a["reply"].iloc[0] == (
        "<alice@dest.example>: Recipient address rejected: Greylisted, "
        "see http://postgrey.schweikert.ch/help/dest.example.html"
    )
    assert a["reply"].iloc[1] == "Ok: queued"


def test_a_dead_destination_records_why_it_is_dead() -> None:
    raw = one_mx_world(outages=[{"start": "0s", "end": "1d", "mode": "timeout"}])
    raw["senders"]["users"]["messages"] = [
        {"at": f"{i}s", "to": [f"u{i}@dest.example"]} for i in range(3)
    ]
    a = simulate(build(raw)).attempts
    suspended = a[a["source_ip"] == ""]
    assert len(suspended)
    assert set(suspended["reply"]) == {
        "delivery temporarily suspended: connect to mx.dest.example[198.18.0.1]:25: "
        "Connection timed out"
    }
    assert "Connection timed out" in set(a["reply"])


def test_the_release_time_of_a_rate_limited_message() -> None:
    raw = one_mx_world()
    raw["providers"]["isp"]["rate_limit"] = {"rate": "1/h", "burst": 1}
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": ["alice@dest.example"]},
        {"at": "60s", "to": ["bob@dest.example"]},
    ]
    result = simulate(build(raw))
    m = result.messages.set_index("recipient")
    assert m.loc["alice@dest.example", "released_at"] == 0.0
    assert m.loc["bob@dest.example", "created_at"] == 60.0
    assert m.loc["bob@dest.example", "released_at"] == pytest.approx(3600.0)
    a = result.attempts
    first = a[a["recipient"] == "bob@dest.example"]["started_at"].min()
    assert first == pytest.approx(3600.0)


def test_a_refusal_at_submission_is_recorded() -> None:
    raw = one_mx_world()
    raw["providers"]["isp"]["outbound_filter"] = {"catch_rate": 1.0}
    raw["senders"]["users"]["class"] = "spam"
    m = simulate(build(raw)).messages
    row = m.iloc[0]
    assert row["status"] == "bounced"
    assert row["attempts"] == 0
    assert math.isnan(row["released_at"])
    assert row["final_reply"] == "Message rejected: outbound spam filter"
    assert pd.isna(row["stored_by"])


@pytest.mark.parametrize(
    "values",
    [
        ["delivered", None, "bounced", "delivered", "expired"],
        [None, None],
        [],
        ["in_queue"],
        ["delivered"] * 3,
        ["not-a-status"] * 2,
        ["delivered", "not-a-status", None],  # not among the categories: missing
    ],
)
def test_columns_built_from_lists_match_pandas(values: list) -> None:
    """A categorical column with declared categories and a nullable integer column, both
    converted from the recorders' lists in one pass, are what pandas makes of the lists."""
    status = next(c for c in MESSAGES.columns if c.name == "status")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns of the value not in the categories
        expected = pd.Categorical(values, categories=status.categories)
    pd.testing.assert_extension_array_equal(status.convert(list(values)), expected)
    code = next(c for c in MESSAGES.columns if c.name == "final_code")
    numbers = [None if v is None else len(v) for v in values]
    pd.testing.assert_extension_array_equal(code.convert(numbers), pd.array(numbers, dtype="Int64"))


@pytest.mark.parametrize(
    "values",
    [
        ["b.example", "a.example", None, "b.example"],
        ["a.example"] * 4,
        ["a.example", "a.example", None],
        [None, None],
    ],
)
def test_inferred_categories_match_the_sorted_values(values: list) -> None:
    """A categorical column without declared categories (one value throughout, or many)
    has the values' distinct texts, sorted, for categories, and each row's code."""
    recipient = next(c for c in MESSAGES.columns if c.name == "recipient")
    column = recipient.convert(list(values))
    assert list(column.categories) == sorted({v for v in values if v is not None})
    assert [None if pd.isna(v) else v for v in column] == values
