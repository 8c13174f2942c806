"""Golden tables: a small rich world's tables, mail log and summary, compared exactly.

Any change in behaviour shows here and has to be accepted on purpose: regenerate the
files with ``make golden`` (``python tests/test_golden.py``) and commit them with the
change that explains them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
TABLES = ("messages", "attempts", "listings")
FILES = (*TABLES, "maillog", "summary")


def golden_csv() -> dict[str, str]:
    """The golden scenario's tables as CSV text (floats written with full precision), and
    its Postfix mail log."""
    from mailnet import load_scenario, simulate
    from mailnet.maillog import maillog_lines

    result = simulate(load_scenario(GOLDEN / "scenario.toml"))
    files = {
        name: getattr(result, name).to_csv(index=False, float_format="%.17g") for name in TABLES
    }
    files["maillog"] = "".join(line + "\n" for line in maillog_lines(result))
    files["summary"] = json.dumps(result.summary, indent=1, sort_keys=True, default=str) + "\n"
    return files


@pytest.fixture(scope="module")
def tables() -> dict[str, str]:
    return golden_csv()


@pytest.mark.parametrize("name", FILES)
def test_table_matches_golden(tables: dict[str, str], name: str) -> None:
    expected = (GOLDEN / _filename(name)).read_text()
    got = tables[name]
    if got != expected:
        old, new = expected.splitlines(), got.splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        pytest.fail(
            f"{name}: behaviour changed at line {first + 1} "
            f"({len(old)} rows kept, {len(new)} now)\n"
            f"  kept: {old[first] if first < len(old) else '<end>'}\n"
            f"  now:  {new[first] if first < len(new) else '<end>'}\n"
            "If the change is deliberate, run `make golden` and commit the files."
        )


def test_golden_world_crosses_the_mail_path(tables: dict[str, str]) -> None:
    """The golden world is only useful while it exercises each mechanism."""
    attempts = tables["attempts"]
    for reply in ("451,4.7.1", "450,4.2.0", "421,4.4.1", "550,5.1.1", "250,2.0.0"):
        assert reply in attempts, reply
    assert "backup.bigmail.example" in attempts
    assert "backup.corp.example" in attempts  # a 4xx at the primary moves on to the backup
    assert "spamcop" in tables["listings"]
    assert ",spam," in tables["messages"]


def _filename(name: str) -> str:
    return {"maillog": "maillog", "summary": "summary.json"}.get(name, f"{name}.csv")


if __name__ == "__main__":
    for name, text in golden_csv().items():
        (GOLDEN / _filename(name)).write_text(text)
        print(f"wrote {GOLDEN / _filename(name)} ({text.count(chr(10))} lines)")
    sys.exit(0)
