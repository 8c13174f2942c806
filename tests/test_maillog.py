"""The Postfix-format mail log: number formatting, exact lines, and pflogsumm's own counts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from mailnet import simulate
from mailnet.maillog import EPOCH, format_delay, maillog_lines, write_maillog
from tests.conftest import build, one_mx_world

# pflogsumm 1.1.5's line parsing (mail-facts.md §10)
SYSLOG = re.compile(r"^(...) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) \S+ (.+)$")
PROGRAM = re.compile(r"^postfix/([^\[:]*).*?: ([^:\s]+)")
DELIVERY = re.compile(
    r"to=<([^>]*)>, relay=([^,]+), delay=([^,]+), delays=[^,]+, dsn=[^,]+, "
    r"status=(\S+)(.*)$"
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0"),
        (-1.0, "0"),
        (0.004, "0"),
        (0.0049, "0"),
        (0.005, "0.01"),
        (0.05, "0.05"),
        (0.0512, "0.05"),
        (0.123, "0.12"),
        (0.4, "0.4"),
        (0.999, "1"),
        (1.04, "1"),
        (1.25, "1.3"),
        (5.37, "5.4"),
        (9.96, "10"),
        (12.3, "12"),
        (50.6, "51"),
        (99.5, "100"),
        (100.4, "100"),
        (305.6, "306"),
        (4711.2, "4711"),
        (432000, "432000"),
    ],
)
def test_delay_formatting(seconds, text):
    """Postfix format_tv: 2 significant digits, at most 2 decimals, whole seconds from 10 s."""
    assert format_delay(seconds) == text


def timeline_result():
    """One message at 5 s to a refusing MX (until 7 min), an unknown and a local user."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "7m", "mode": "refuse"}])
    raw["senders"]["users"]["messages"] = [
        {"at": "5s", "to": ["alice@dest.example", "nosuchuser1@dest.example", "bob@isp.example"]}
    ]
    return simulate(build(raw))


def without_pids(lines):
    return [re.sub(r"\[\d+\]: ", ": ", line) for line in lines]


def test_exact_lines_of_one_message():
    lines = list(maillog_lines(timeline_result()))
    # refused at 5 s (5.05 s after 0.05 s set-up); Postfix retries at the 600 s scan; the
    # session starts at 600.05 s and ends after 1 s; the unknown user bounces, so the
    # sender gets a DSN, delivered locally at once
    expected = [
        "Mar  1 00:00:05 mta.isp.example postfix/submission/smtpd: 000001E240: "
        "client=localhost[127.0.0.1], sasl_method=PLAIN, sasl_username=users0@isp.example",
        "Mar  1 00:00:05 mta.isp.example postfix/cleanup: 000001E240: "
        "message-id=<20260301000005.000001E240@mta.isp.example>",
        "Mar  1 00:00:05 mta.isp.example postfix/qmgr: 000001E240: from=<users0@isp.example>, "
        "size=4096, nrcpt=3 (queue active)",
        "Mar  1 00:00:05 mta.isp.example postfix/local: 000001E240: to=<bob@isp.example>, "
        "relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
        "Mar  1 00:00:05 mta.isp.example postfix/smtp: connect to "
        "mx.dest.example[198.18.0.1]:25: Connection refused",
        "Mar  1 00:00:05 mta.isp.example postfix/smtp: 000001E240: to=<alice@dest.example>, "
        "relay=none, delay=0.05, delays=0/0/0.05/0, dsn=4.4.1, status=deferred "
        "(connect to mx.dest.example[198.18.0.1]:25: Connection refused)",
        "Mar  1 00:00:05 mta.isp.example postfix/smtp: 000001E240: "
        "to=<nosuchuser1@dest.example>, relay=none, delay=0.05, delays=0/0/0.05/0, dsn=4.4.1, "
        "status=deferred (connect to mx.dest.example[198.18.0.1]:25: Connection refused)",
        "Mar  1 00:10:00 mx.dest.example postfix/smtpd: 0C3501E241: "
        "client=mta.isp.example[198.51.100.1]",
        "Mar  1 00:10:00 mx.dest.example postfix/smtpd: 0C3501E241: reject: RCPT from "
        "mta.isp.example[198.51.100.1]: 550 5.1.1 <nosuchuser1@dest.example>: Recipient "
        "address rejected: User unknown in local recipient table; from=<users0@isp.example> "
        "to=<nosuchuser1@dest.example> proto=ESMTP helo=<mta.isp.example>",
        "Mar  1 00:10:01 mx.dest.example postfix/cleanup: 0C3501E241: "
        "message-id=<20260301000005.000001E240@mta.isp.example>",
        "Mar  1 00:10:01 mx.dest.example postfix/qmgr: 0C3501E241: from=<users0@isp.example>, "
        "size=4096, nrcpt=1 (queue active)",
        "Mar  1 00:10:01 mta.isp.example postfix/smtp: 000001E240: to=<alice@dest.example>, "
        "relay=mx.dest.example[198.18.0.1]:25, delay=596, delays=595/0/0.05/1, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok: queued as 0C3501E241)",
        "Mar  1 00:10:01 mta.isp.example postfix/smtp: 000001E240: "
        "to=<nosuchuser1@dest.example>, relay=mx.dest.example[198.18.0.1]:25, delay=596, "
        "delays=595/0/0.05/1, dsn=5.1.1, status=bounced (host mx.dest.example[198.18.0.1] "
        "said: 550 5.1.1 <nosuchuser1@dest.example>: Recipient address rejected: User unknown "
        "in local recipient table (in reply to RCPT TO command))",
        "Mar  1 00:10:01 mx.dest.example postfix/local: 0C3501E241: to=<alice@dest.example>, "
        "relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
        "Mar  1 00:10:01 mta.isp.example postfix/bounce: 000001E240: sender non-delivery "
        "notification: 0C3501E242",
        "Mar  1 00:10:01 mta.isp.example postfix/cleanup: 0C3501E242: "
        "message-id=<20260301001001.0C3501E242@mta.isp.example>",
        "Mar  1 00:10:01 mta.isp.example postfix/qmgr: 0C3501E242: from=<>, size=6144, "
        "nrcpt=1 (queue active)",
        "Mar  1 00:10:01 mta.isp.example postfix/local: 0C3501E242: to=<users0@isp.example>, "
        "relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
        "Mar  1 00:10:01 mta.isp.example postfix/qmgr: 000001E240: removed",
        "Mar  1 00:10:01 mx.dest.example postfix/qmgr: 0C3501E241: removed",
        "Mar  1 00:10:01 mta.isp.example postfix/qmgr: 0C3501E242: removed",
    ]
    assert without_pids(lines) == expected


def test_pids_are_stable_per_host_and_program(tmp_path):
    result = timeline_result()
    first = write_maillog(result, tmp_path / "a" / "maillog")
    second = write_maillog(result, tmp_path / "b" / "maillog")
    assert first.read_text() == second.read_text()
    pids: dict[tuple[str, str], set[str]] = {}
    for line in first.read_text().splitlines():
        host, program, pid = re.search(r"\d (\S+) postfix/([\w/]+)\[(\d+)\]", line).groups()
        pids.setdefault((host, program), set()).add(pid)
    assert all(len(p) == 1 for p in pids.values())
    assert len({p for ps in pids.values() for p in ps}) == len(pids)


def test_timeout_suspension_and_expiry_lines():
    """A destination timing out for a day: timeouts, then a dead site, then expiry."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "1d", "mode": "timeout"}])
    raw["providers"]["isp"]["retry_params"] = {"maximal_queue_lifetime": "1h"}
    raw["senders"]["users"]["messages"] = [
        {"at": f"{i}s", "to": [f"u{i}@dest.example"]} for i in range(6)
    ]
    lines = without_pids(maillog_lines(simulate(build(raw))))
    timeouts = [x for x in lines if "Connection timed out)" in x and "suspended" not in x]
    assert timeouts
    assert all("relay=none" in x and "dsn=4.4.1" in x for x in timeouts)
    assert (
        "status=deferred (connect to mx.dest.example[198.18.0.1]:25: Connection timed out)"
        in timeouts[0]
    )
    suspended = [
        x
        for x in lines
        if "status=deferred (delivery temporarily suspended: connect "
        "to mx.dest.example[198.18.0.1]:25: Connection timed out)" in x
    ]
    assert suspended
    assert all("relay=none" in x for x in suspended)
    # qmgr hands mail for a dead destination to the error agent, not to smtp
    assert all(" postfix/error: " in x for x in suspended)
    assert not any(" postfix/error: " in x for x in timeouts)
    expired = [x for x in lines if "status=expired, returned to sender" in x]
    assert len(expired) == 6
    assert all(
        re.search(r"postfix/qmgr: \w+: from=<users0@isp\.example>, status=expired", x)
        for x in expired
    )
    assert sum("sender non-delivery notification" in x for x in lines) == 6


def test_a_4xx_kept_for_the_next_host_logs_no_status():
    """A 450 at the greylisting primary, not the final host: the sender logs the host's
    reply under the queue ID and no status line (Postfix smtp_trouble.c); the backup's
    ``sent`` line counts the primary's session in its set-up time ``c`` (0.05 s there,
    0.05 s to the backup's session)."""
    raw = one_mx_world(receiver="dest")
    raw["receivers"] = {"dest": {"greylisting": {"delay": "5m"}}}
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "0.5s"},
    }
    lines = without_pids(maillog_lines(simulate(build(raw))))
    sender = [x for x in lines if " mta.isp.example postfix/smtp: " in x]
    assert sender == [
        "Mar  1 00:00:00 mta.isp.example postfix/smtp: 000001E240: host "
        "mx.dest.example[198.18.0.1] said: 450 4.2.0 <alice@dest.example>: Recipient address "
        "rejected: Greylisted, see http://postgrey.schweikert.ch/help/dest.example.html "
        "(in reply to RCPT TO command)",
        "Mar  1 00:00:00 mta.isp.example postfix/smtp: 000001E240: to=<alice@dest.example>, "
        "relay=backup.dest.example[198.18.0.2]:25, delay=0.6, delays=0/0/0.1/0.5, "
        "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 186A01E241)",
    ]
    assert not any("status=deferred" in x for x in lines)


def test_a_skipped_host_logs_its_connect_timeout_and_its_time_in_set_up():
    """The primary times out (30 s), the backup takes the mail: Postfix logs the failed
    connection without a queue ID (smtp_connect.c) and counts the 30 s in the set-up time
    ``c`` of the ``sent`` line; the backup's own failed connections to the primary log
    the same line before each deferral."""
    raw = one_mx_world(
        outages=[{"start": "0s", "end": "1d", "mode": "timeout"}],
        service_time={"dist": "constant", "mean": "1s"},
    )
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "1s"},
    }
    lines = without_pids(maillog_lines(simulate(build(raw))))
    assert [x for x in lines if " mta.isp.example postfix/smtp: " in x] == [
        "Mar  1 00:00:30 mta.isp.example postfix/smtp: connect to "
        "mx.dest.example[198.18.0.1]:25: Connection timed out",
        "Mar  1 00:00:31 mta.isp.example postfix/smtp: 000001E240: to=<alice@dest.example>, "
        "relay=backup.dest.example[198.18.0.2]:25, delay=31, delays=0/0/30/1, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok: queued as 0C3501E241)",
    ]
    backup = [x for x in lines if " backup.dest.example postfix/smtp: " in x]
    assert backup[:2] == [
        "Mar  1 00:01:01 backup.dest.example postfix/smtp: connect to "
        "mx.dest.example[198.18.0.1]:25: Connection timed out",
        "Mar  1 00:01:01 backup.dest.example postfix/smtp: 0C3501E241: to=<alice@dest.example>, "
        "relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to "
        "mx.dest.example[198.18.0.1]:25: Connection timed out)",
    ]


def test_the_bounce_is_flushed_when_the_active_queue_pass_ends():
    """Two unknown users at two domains are refused at RCPT at 0.05 s; the third
    recipient's MX times out at 30 s. Postfix's qmgr sends one non-delivery notification
    for both, when every recipient of the pass has been tried: at 30 s, not at 0.05 s."""
    raw = one_mx_world()
    raw["simulation"]["duration"] = "1h"
    for name, server in (
        ("slow", {"outages": [{"start": "0s", "end": "1d", "mode": "timeout"}]}),
        ("other", {}),
    ):
        raw["domains"][f"{name}.example"] = {"mx": [{"host": f"mx.{name}.example"}]}
        raw["servers"][f"mx.{name}.example"] = server
    raw["senders"]["users"]["messages"] = [
        {
            "at": "0s",
            "to": ["nosuchuser1@dest.example", "nosuchuser2@other.example", "bob@slow.example"],
        }
    ]
    result = simulate(build(raw))
    m = result.messages
    dsn = m[m["is_dsn"]]
    assert len(dsn) == 1
    assert (dsn.iloc[0]["created_at"], dsn.iloc[0]["dsn_of"]) == (30.0, 0)
    lines = without_pids(maillog_lines(result))
    sender = [x for x in lines if x.startswith("Mar  1 00:00:30 mta.isp.example")]
    assert sender[:4] == [
        "Mar  1 00:00:30 mta.isp.example postfix/smtp: connect to "
        "mx.slow.example[198.18.0.2]:25: Connection timed out",
        "Mar  1 00:00:30 mta.isp.example postfix/smtp: 000001E240: to=<bob@slow.example>, "
        "relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to "
        "mx.slow.example[198.18.0.2]:25: Connection timed out)",
        "Mar  1 00:00:30 mta.isp.example postfix/bounce: 000001E240: sender non-delivery "
        "notification: 000001E241",
        "Mar  1 00:00:30 mta.isp.example postfix/cleanup: 000001E241: "
        "message-id=<20260301000030.000001E241@mta.isp.example>",
    ]
    assert sum("postfix/bounce" in x for x in lines) == 1


def rich_scenario() -> dict:
    """Deferrals (outages), bounces (unknown users, null MX), expiry at the sender and at a
    backup MX, delay warnings, DSNs relayed by SMTP, local delivery, mail held by a
    submission rate limit, spam refused by an outbound filter, a receiver that greylists
    and rejects clients listed by a DNSBL (fed by the spammer's trap hits) and answers
    some recipients after DATA (full mailboxes), and a backup MX that accepts unknown
    users, relays to that primary (which trusts it) and bounces them itself."""
    return {
        "simulation": {"duration": "12h", "warmup": "1h", "seed": 7},
        "providers": {
            "isp": {
                "ips": ["198.51.100.1", "198.51.100.2"],
                "local_domains": ["isp.example"],
                "retry_params": {"maximal_queue_lifetime": "2h"},
                "rate_limit": {"rate": "2/h", "burst": 1},
            },
            "webmail": {
                "ips": ["192.0.2.10"],
                "local_domains": ["webmail.example"],
                "hostname": "smtp.webmail.example",
                "retry_params": {"delay_warning_time": "30m"},
                "outbound_filter": {"catch_rate": 0.5},
            },
        },
        "senders": {
            "users": {
                "provider": "isp",
                "count": 40,
                "rate": "30/d",
                "recipients": 1.4,
                "invalid_recipients": 0.05,
                "domains": {
                    "dest.example": 0.4,
                    "down.example": 0.15,
                    "void.example": 0.05,
                    "isp.example": 0.2,
                    "webmail.example": 0.2,
                },
            },
            "webusers": {
                "provider": "webmail",
                "count": 20,
                "rate": "30/d",
                "invalid_recipients": 0.05,
                "domains": {"dest.example": 0.5, "isp.example": 0.3, "down.example": 0.2},
            },
            "spam": {
                "provider": "webmail",
                "count": 2,
                "rate": "50/d",
                "class": "spam",
                "traps": 0.1,
                "domains": {"dest.example": 0.5, "isp.example": 0.5},
            },
        },
        "domains": {
            "dest.example": {
                "mx": [
                    {"host": "mx.dest.example", "preference": 10},
                    {"host": "backup.dest.example", "preference": 20},
                ],
                "mailbox_full": {"share": 0.05, "mean_duration": "6h"},
            },
            "down.example": {"mx": [{"host": "mx.down.example", "preference": 10}]},
            "void.example": {"null_mx": True},
        },
        "receivers": {"dest": {"greylisting": {}, "blocklists": {"spamcop": "reject"}}},
        "blocklists": {"spamcop": {"preset": "spamcop"}},
        "servers": {
            "mx.dest.example": {
                "service_time": {"dist": "exponential", "mean": "1s"},
                "receiver": "dest",
                "outages": [{"start": "2h", "end": "4h", "mode": "refuse"}],
            },
            "backup.dest.example": {
                "role": "backup",
                "service_time": {"dist": "constant", "mean": "0.5s"},
                "retry_params": {"maximal_queue_lifetime": "1h"},
            },
            "mx.down.example": {
                "service_time": {"dist": "constant", "mean": "2s"},
                "outages": [{"start": "1h", "end": "10h", "mode": "timeout"}],
            },
        },
    }


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    result = simulate(build(rich_scenario()))
    path = write_maillog(result, tmp_path_factory.mktemp("run") / "maillog")
    return result, path


def expected_counts(result) -> dict:
    """What pflogsumm should count, from mailnet's own tables.

    received: one pickup line per submitted message plus one smtpd ``client=`` line per
    session in which a server accepted at least one recipient (DSNs come from the bounce
    daemon: not received); delivered: ``status=sent`` lines, one per accepted attempt row
    plus one ``local`` line per mailbox delivery; deferred: distinct queue files (message
    and hop) with a deferral, and the deferral lines, one per deferred attempt row;
    bounced: one line per bounced attempt row plus one per local unknown user; rejected:
    the receivers' reject lines, one per refused recipient in a session, plus one
    ``cleanup`` ``milter-reject`` line per message refused at submission (5.7.x, no
    attempt).
    """
    m, a = result.messages, result.attempts
    sent = a[a["outcome"] == "sent"]
    sessions = sent.drop_duplicates(["message_id", "hop", "mx_host", "started_at"])
    deferred = a[a["outcome"].isin(["deferred", "suspended"])]
    unsent = (m["attempts"] == 0) & m["status"].isin(["bounced", "dropped"])
    refused = unsent & m["final_enhanced_code"].astype(str).str.startswith("5.7")
    return {
        "received": int(m.loc[~m["is_dsn"], "message_id"].nunique()) + len(sessions),
        "delivered": len(sent) + int((m["status"] == "delivered").sum()),
        "deferred": len(deferred[["message_id", "hop"]].drop_duplicates()),
        "deferrals": len(deferred),
        "bounced": int((a["outcome"] == "bounced").sum()) + int((unsent & ~refused).sum()),
        "rejected": int(((a["outcome"] != "sent") & a["session_at"].notna()).sum())
        + int(m.loc[refused, "message_id"].nunique()),
    }


def test_rich_scenario_has_every_kind_of_event(rich):
    result, path = rich
    m, a = result.messages, result.attempts
    counts = result.summary["status"]
    assert counts["delivered"]
    assert counts["bounced"]
    assert counts["expired"]
    assert (a["outcome"] == "deferred").sum()
    assert (a["source_ip"] == "").any()  # dead site
    assert (a["hop"] == "backup.dest.example").any()
    assert (m["is_dsn"] & (m["provider"] == "backup.dest.example")).any()
    late = a[(a["hop"] == "backup.dest.example") & (a["enhanced_code"] == "5.1.1")]
    assert len(late)  # unknown users the backup accepted, refused by the primary
    local = (m["attempts"] == 0) & (m["status"] == "delivered") & ~m["is_dsn"]
    assert (m.loc[local, "delivered_at"] > m.loc[local, "created_at"]).any()  # held
    text = path.read_text()
    for piece in (
        "postfix/local",
        "relay=none",
        "(nullMX)",
        "Connection refused)",
        "Connection timed out)",
        "delivery temporarily suspended",
        "status=expired",
        "sender non-delivery notification",
        "sender delay notification",
        "NOQUEUE: reject: RCPT from",
        "client=mta.isp.example[198.51.100.",
        "client=smtp.webmail.example[192.0.2.10]",
        "client=backup.dest.example[198.18.0.2]",
        "backup.dest.example postfix/smtp[",
        "postfix/qmgr",
        "removed",
        "milter-reject: END-OF-MESSAGE",
        "Recipient address rejected: Greylisted",
        "blocked using bl.spamcop.net",
        "postfix/submission/smtpd",
        "postfix/error",
        "dsn=5.1.0",
        "(in reply to end of DATA command)",
        "reject: END-OF-MESSAGE from",
    ):
        assert piece in text, piece


def test_rich_log_is_well_formed(rich):
    result, path = rich
    lines = path.read_text().splitlines()
    seconds = []
    new_files = []
    for line in lines:
        stamp = SYSLOG.match(line)
        assert stamp, line
        assert stamp.group(1) == "Mar"
        seconds.append(tuple(int(g) for g in stamp.group(2, 3, 4, 5)))
        program = PROGRAM.match(stamp.group(6))
        assert program, line
        if program.group(1) == "qmgr" and "(queue active)" in line:
            new_files.append(program.group(2))
        if "status=" in line and "to=<" in line:
            assert DELIVERY.search(line), line
            assert "tls=" not in line
            assert "conn_use=" not in line
    assert seconds == sorted(seconds)
    assert len(new_files) == len(set(new_files))  # queue IDs are unique over all hosts
    assert all(re.fullmatch(r"[0-9A-F]{10,}", q) for q in new_files)
    # one notification per DSN, and one bounce line per bounced recipient
    dsns = result.messages["is_dsn"].sum()
    assert sum("notification: " in line for line in lines) == dsns
    assert EPOCH.month == 3
    assert EPOCH.day == 1


def pflogsumm_totals(path) -> dict:
    binary = shutil.which("pflogsumm")
    if binary is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(
            "pflogsumm is not installed (Debian package pflogsumm; .ci/run installs it)"
        )
    out = subprocess.run(
        [binary, "--problems-first", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    totals = {}
    for name in ("received", "delivered", "bounced", "rejected"):
        totals[name] = int(re.search(rf"^\s*(\d+)\s+{name}\b", out, re.M).group(1))
    deferred = re.search(r"^\s*(\d+)\s+deferred(?:\s+\((\d+)\s+deferrals\))?", out, re.M)
    totals["deferred"] = int(deferred.group(1))
    totals["deferrals"] = int(deferred.group(2) or 0)
    return totals


def test_pflogsumm_counts_match_the_tables(rich):
    result, path = rich
    expected = expected_counts(result)
    assert min(expected.values()) > 0
    assert pflogsumm_totals(path) == expected
    # the bounce lines are the bounced recipients of the summary (no DSN bounced here),
    # less those refused at submission
    summary = result.summary
    assert summary["dsn"]["dropped"] == 0
    m = result.messages
    refused = (m["attempts"] == 0) & m["final_enhanced_code"].astype(str).str.startswith("5.7")
    assert expected["bounced"] == summary["status"]["bounced"] - int(refused.sum())


def test_pflogsumm_counts_match_on_the_golden_world(tmp_path):
    """The golden world: two backup MX hosts that accept unknown users, a greylisting
    primary that defers SpamCop-listed clients, a primary with IP reputation."""
    from mailnet import load_scenario
    from tests.test_golden import GOLDEN

    result = simulate(load_scenario(GOLDEN / "scenario.toml"))
    a = result.attempts
    backups = a[a["hop"].astype(str).str.startswith("backup.")]
    assert len(backups)
    assert (a["enhanced_code"] == "4.7.1").any()
    assert (a["reply"].astype(str).str.contains("Greylisted")).any()
    path = write_maillog(result, tmp_path / "maillog")
    assert pflogsumm_totals(path) == expected_counts(result)


def test_held_mail_is_picked_up_when_the_msa_releases_it():
    """A rate-limited sender's second message waits an hour at the MSA: its queue file,
    its local bounce and the DSN all start on release, not on submission."""
    raw = one_mx_world()
    raw["providers"]["isp"]["rate_limit"] = {"rate": "1/h", "burst": 1}
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": ["alice@dest.example"]},
        {"at": "60s", "to": ["nosuchuser1@isp.example"]},
    ]
    lines = without_pids(maillog_lines(simulate(build(raw))))
    held = [x for x in lines if "nosuchuser1" in x or "notification" in x]
    assert [x[:15] for x in held] == ["Mar  1 01:00:00"] * 2
    assert 'status=bounced (unknown user: "nosuchuser1")' in held[0]
    assert "sender non-delivery notification" in held[1]
    pickups = [x for x in lines if "postfix/submission/smtpd" in x]
    assert [x[:15] for x in pickups] == ["Mar  1 00:00:00", "Mar  1 01:00:00"]


def test_deferrals_without_a_source_address_log_their_recorded_reason():
    """Mail held back by warm-up caps says so; it is not a dead destination."""
    raw = one_mx_world()
    raw["providers"]["isp"]["warmup"] = {"ips": ["198.51.100.1"], "daily_limits": [1]}
    raw["senders"]["users"]["messages"] = [
        {"at": f"{i}m", "to": [f"u{i}@dest.example"]} for i in range(3)
    ]
    lines = without_pids(maillog_lines(simulate(build(raw))))
    capped = [x for x in lines if "dsn=4.7.0" in x]
    assert capped
    assert all(
        x.endswith(
            "status=deferred (delivery deferred: every source address is at its warm-up cap)"
        )
        for x in capped
    )
    assert not any("delivery temporarily suspended" in x for x in lines)


def test_the_log_is_written_from_recorded_facts_alone():
    """The writer reads the tables: no policy lookups, no matching of events in time."""
    import ast
    from pathlib import Path

    import mailnet.maillog

    package = Path(mailnet.maillog.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("mailnet.policies"), (path.name, name)
                assert name != "bisect", path.name


def test_recorded_replies_in_postfix_wording():
    from mailnet import smtp
    from mailnet.maillog.format import client_said, receiver_said

    assert receiver_said(smtp.NO_SUCH_USER.text, "x@d.example") == (
        "<x@d.example>: Recipient address rejected: User unknown in local recipient table"
    )
    grey = "<x@d.example>: Recipient address rejected: Greylisted, see http://h/d.html"
    assert receiver_said(grey, "x@d.example") == grey
    assert receiver_said(smtp.MAILBOX_FULL.text, "x@d.example") == "Mailbox full"
    assert client_said(smtp.NULL_MX.text, "void.example") == (
        "Domain void.example does not accept mail (nullMX)"
    )
    assert client_said("anything else", "void.example") == "anything else"


def one_line(raw: dict, needle: str) -> str:
    """The one delivery line of a run's log that contains ``needle``."""
    lines = [x for x in without_pids(maillog_lines(simulate(build(raw)))) if needle in x]
    assert len(lines) == 1, lines
    return lines[0]


def test_null_mx_and_missing_domain_bounce_with_postfix_codes():
    """Null MX: 5.1.0 (smtp_addr.c); a domain that does not exist is looked up as an A
    record after its MX lookup and bounces with 5.4.4."""
    raw = one_mx_world()
    raw["domains"]["void.example"] = {"null_mx": True}
    raw["domains"]["gone.example"] = {
        "mx": [{"host": "mx.dest.example"}],
        "dns_faults": [{"start": "0s", "end": "1d", "answer": "nxdomain"}],
    }
    raw["senders"]["users"]["messages"] = [
        {"at": "0s", "to": ["a@void.example"]},
        {"at": "1s", "to": ["b@gone.example"]},
    ]
    assert one_line(raw, "to=<a@void.example>").endswith(
        "relay=none, delay=0, delays=0/0/0/0, dsn=5.1.0, status=bounced "
        "(Domain void.example does not accept mail (nullMX))"
    )
    assert one_line(raw, "to=<b@gone.example>").endswith(
        "relay=none, delay=0, delays=0/0/0/0, dsn=5.4.4, status=bounced (Host or domain "
        "name not found. Name service error for name=gone.example type=A: Host not found)"
    )


def test_replies_after_data_say_so():
    """A full mailbox is answered after the message data: the client logs it as the reply
    to end of DATA, the server as an END-OF-MESSAGE reject."""
    raw = one_mx_world()
    raw["domains"]["dest.example"]["mailbox_full"] = [{"start": "0s", "end": "1d"}]
    raw["providers"]["isp"]["retry_params"] = {"maximal_queue_lifetime": "0s"}
    lines = without_pids(maillog_lines(simulate(build(raw))))
    client = [x for x in lines if "postfix/smtp:" in x]
    assert client == [
        "Mar  1 00:00:01 mta.isp.example postfix/smtp: 000001E240: to=<alice@dest.example>, "
        "relay=mx.dest.example[198.18.0.1]:25, delay=1.1, delays=0/0/0.05/1, dsn=4.2.2, "
        "status=deferred (host mx.dest.example[198.18.0.1] said: 452 4.2.2 Mailbox full "
        "(in reply to end of DATA command))"
    ]
    server = [x for x in lines if "postfix/smtpd:" in x]
    assert len(server) == 1
    assert (
        "NOQUEUE: reject: END-OF-MESSAGE from mta.isp.example[198.51.100.1]: 452 4.2.2"
        in (server[0])
    )


def backup_outage_world(**backup) -> dict:
    """dest.example's primary times out for 3 h; its backup MX takes the mail."""
    raw = one_mx_world(outages=[{"start": "0s", "end": "3h", "mode": "timeout"}])
    raw["domains"]["dest.example"]["mx"].append({"host": "backup.dest.example", "preference": 20})
    raw["servers"]["backup.dest.example"] = {
        "role": "backup",
        "service_time": {"dist": "constant", "mean": "0.5s"},
        **backup,
    }
    raw["senders"]["users"]["messages"] = [
        {"at": "5s", "to": ["alice@dest.example", "nosuchuser1@dest.example"]}
    ]
    return raw


def test_backup_bounces_the_unknown_user_itself_hours_later():
    """The backup accepted both recipients at 35 s; when the primary is back (3 h) it
    refuses the unknown user, and the backup logs the bounce and its own DSN."""
    lines = without_pids(maillog_lines(simulate(build(backup_outage_world()))))
    late = [x for x in lines if x.startswith("Mar  1 03:05:01 backup.dest.example")]
    assert late[:3] == [
        "Mar  1 03:05:01 backup.dest.example postfix/smtp: 0C3501E241: "
        "to=<alice@dest.example>, relay=mx.dest.example[198.18.0.1]:25, delay=11066, "
        "delays=11064/0/0.05/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 0C3501E242)",
        "Mar  1 03:05:01 backup.dest.example postfix/smtp: 0C3501E241: "
        "to=<nosuchuser1@dest.example>, relay=mx.dest.example[198.18.0.1]:25, delay=11066, "
        "delays=11064/0/0.05/1, dsn=5.1.1, status=bounced (host mx.dest.example[198.18.0.1] "
        "said: 550 5.1.1 <nosuchuser1@dest.example>: Recipient address rejected: User "
        "unknown in local recipient table (in reply to RCPT TO command))",
        "Mar  1 03:05:01 backup.dest.example postfix/bounce: 0C3501E241: sender "
        "non-delivery notification: 0C3501E243",
    ]
    first = [x for x in lines if "mta.isp.example postfix/smtp: 000001E240: to=" in x]
    assert len(first) == 2
    assert all("relay=backup.dest.example[198.18.0.2]:25" in x for x in first)
    assert all("status=sent (250 2.0.0 Ok: queued as 0C3501E241)" in x for x in first)
    assert "client=backup.dest.example[198.18.0.2]" in "\n".join(lines)


def test_verifying_backup_rejects_from_its_relay_recipient_table():
    lines = without_pids(
        maillog_lines(simulate(build(backup_outage_world(verify_recipients=True))))
    )
    rejects = [x for x in lines if "reject: RCPT" in x]
    assert len(rejects) == 1
    assert rejects[0].startswith("Mar  1 00:00:35 backup.dest.example postfix/smtpd: 0C3501E241")
    assert (
        "550 5.1.1 <nosuchuser1@dest.example>: Recipient address rejected: User unknown "
        "in relay recipient table;" in rejects[0]
    )
