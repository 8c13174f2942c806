"""The generated ``[internet]`` world: deterministic per seed, Zipf popularity, giant
receivers in their styles, an ordinary scenario that runs to the same tables, bad keys
as one line; and the sending cycle that shapes its users' rates."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import simpy
from scipy import stats
from typer.testing import CliRunner

from mailnet import load_scenario, simulate
from mailnet.cli import app
from mailnet.errors import ScenarioError
from mailnet.estimate import estimate_run
from mailnet.model.clients import SenderPopulation
from mailnet.model.dns import Resolver
from mailnet.model.inbound import FIRST_BLOCK, service_sampler
from mailnet.policies.sending_cycle import (
    HOUR,
    SendingClock,
    mean_multiplier,
    slot_multipliers,
)
from mailnet.randomness import BlockDraws
from mailnet.scenario import Distribution, Scenario
from mailnet.scenario.internet import InternetConfig
from mailnet.scenario.internet_world import generate_world, zipf_weights

ROOT = Path(__file__).resolve().parent.parent
INTERNET = ROOT / "experiments" / "scenarios" / "internet.toml"

SMALL = textwrap.dedent("""
    [simulation]
    duration = "2h"
    seed = 5
    [internet]
    domains = 40
    providers = 3
    users = 1000
    rate = "24/d"
    spammers = 0.34
    backup_mx = 0.3
    greylisting = 0.3
""")


def small_world(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ the world
def test_the_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    config = InternetConfig(domains=300, providers=12, users=50_000)
    assert generate_world(config, 7) == generate_world(config, 7)
    other = generate_world(config, 8)
    world = generate_world(config, 7)
    assert world["domains"].keys() == other["domains"].keys()  # the ranks are fixed
    assert world["domains"] != other["domains"] or world["providers"] != other["providers"]


def test_the_world_seed_defaults_to_the_scenario_seed(tmp_path: Path) -> None:
    path = small_world(tmp_path)
    first = load_scenario(path)
    assert load_scenario(path) == first
    assert load_scenario(path, overrides=["internet.seed=5"]) == first
    reseeded = load_scenario(path, overrides=["internet.seed=6"])
    assert reseeded.domains != first.domains or reseeded.providers != first.providers


def test_giants_have_their_styles_and_several_mx_hosts(tmp_path: Path) -> None:
    scenario = load_scenario(small_world(tmp_path))
    styles = {"gmail": "gmail", "outlook": "microsoft", "yahoo": "yahoo"}
    for name, style in styles.items():
        receiver = scenario.receivers[name]
        assert receiver.reputation is not None
        assert receiver.reputation.style == style
        mx = scenario.domains[f"{name}.example"].mx
        assert mx is not None
        assert len(mx) == 5
        assert all(scenario.servers[r.host].receiver == name for r in mx)
    gmail = scenario.domains["gmail.example"].mx
    assert gmail is not None
    assert [r.preference for r in gmail] == [5, 10, 20, 30, 40]


def test_the_tail_has_one_or_two_mx_hosts_and_some_a_backup() -> None:
    config = InternetConfig(domains=2000, giants=3, two_mx=0.3, backup_mx=0.1)
    world = generate_world(config, 1)
    tail = [d for name, d in world["domains"].items() if name.startswith("d")]
    assert len(tail) == 1997
    primaries = [sum(1 for r in d["mx"] if r["preference"] == 10) for d in tail]
    backups = [sum(1 for r in d["mx"] if r["preference"] == 20) for d in tail]
    assert set(primaries) == {1, 2}
    assert set(backups) == {0, 1}
    for share, observed in ((0.3, np.mean(np.array(primaries) == 2)), (0.1, np.mean(backups))):
        # a binomial share over 1,997 domains: within 4 standard errors
        assert abs(observed - share) < 4 * math.sqrt(share * (1 - share) / len(tail))
    for domain in tail:
        for record in domain["mx"]:
            role = world["servers"][record["host"]].get("role", "primary")
            assert role == ("backup" if record["preference"] == 20 else "primary")


def test_providers_have_their_own_prefix_and_as_and_a_preset_from_the_mix() -> None:
    config = InternetConfig(providers=40, users=2_000_000, retry_mix={"exim": 1, "qmail": 1})
    providers = generate_world(config, 3)["providers"]
    prefixes = {p["ips"][0].rsplit(".", 1)[0] for p in providers.values()}
    assert len(prefixes) == 40
    assert all(len({ip.rsplit(".", 1)[0] for ip in p["ips"]}) == 1 for p in providers.values())
    assert len({p["asn"] for p in providers.values()}) == 40
    assert {p["retry"] for p in providers.values()} == {"exim", "qmail"}
    # pools sized by users: the largest provider (rank 1 of the Zipf split) the most
    sizes = [len(p["ips"]) for p in providers.values()]
    assert sizes[0] == max(sizes) > sizes[-1] >= 1
    # each address is an outbound host with Postfix's limits: they add up over the pool
    for p in providers.values():
        n = len(p["ips"])
        limits = (
            p["max_connections"],
            p["destination_concurrency_limit"],
            p["initial_destination_concurrency"],
        )
        assert limits == (100 * n, 20 * n, 5 * n)


def test_users_are_counts_split_by_popularity() -> None:
    config = InternetConfig(providers=10, users=1_000_000, spammers=0.3)
    senders = generate_world(config, 2)["senders"]
    ham = [g for g in senders.values() if g["class"] == "ham"]
    assert len(ham) == 10
    assert sum(g["count"] for g in ham) == 1_000_000
    assert sum(1 for g in senders.values() if g["class"] == "spam") == 3


def test_recipient_domains_follow_zipf_shares() -> None:
    """Each domain's share of the recipients a generated group draws, against
    rank**-s / H: a chi-square goodness of fit at the 0.1 % level, and the top domain
    within 4 standard errors."""
    config = InternetConfig(domains=40, providers=1, users=1000, rate=16 / 86400, spammers=0)
    raw = generate_world(config, 9)
    raw["senders"]["isp1-users"]["recipients"] = 1.0
    scenario = Scenario.from_dict(raw)
    group = scenario.senders["isp1-users"]
    drawn: list[str] = []
    env = simpy.Environment()
    SenderPopulation(
        env,
        "isp1-users",
        group,
        domain="isp1.example",
        submit=lambda _sender, recipients: drawn.extend(recipients),
        rng=np.random.default_rng(4),
        domains=scenario.domains,
        campaign_rng=np.random.default_rng(5),
    )
    env.run(until=3 * 86400)  # Monday to Wednesday: the cycle shapes when, not where
    names = list(group.domains)
    counts = pd.Series([r.split("@")[1] for r in drawn]).value_counts()
    observed = counts.reindex(names, fill_value=0).to_numpy()
    share = zipf_weights(len(names), config.zipf_exponent)
    share = share / share.sum()
    n = len(drawn)
    assert n > 40_000
    chi2 = float((((observed - n * share) ** 2) / (n * share)).sum())
    assert chi2 < stats.chi2.ppf(0.999, len(names) - 1)
    assert abs(observed[0] / n - share[0]) < 4 * math.sqrt(share[0] * (1 - share[0]) / n)


# ------------------------------------------------------- an ordinary scenario
def test_the_generated_file_runs_to_identical_tables(tmp_path: Path) -> None:
    path = small_world(tmp_path)
    direct = load_scenario(path)
    written = tmp_path / "generated.toml"
    done = CliRunner().invoke(app, ["generate", str(path), "--out", str(written)])
    assert done.exit_code == 0, done.output
    text = written.read_text(encoding="utf-8")
    assert "[internet]" not in text
    loaded = load_scenario(written)
    assert loaded == direct
    a = simulate(direct, seed=4)
    b = simulate(loaded, seed=4)
    assert len(a.messages) > 100
    for name, table in a.tables().items():
        pd.testing.assert_frame_equal(table, b.tables()[name], obj=name)
    assert a.summary == b.summary


def test_a_small_world_runs_and_conserves_messages(tmp_path: Path) -> None:
    result = simulate(load_scenario(small_world(tmp_path)), seed=2)
    m = result.messages
    assert not m.duplicated(["message_id", "recipient"]).any()
    counts = result.summary["status"]
    assert sum(counts.values()) == result.summary["recipients"] == int((~m["is_dsn"]).sum())
    assert counts["delivered"] > 0.5 * result.summary["recipients"]
    assert set(m.loc[~m["is_dsn"], "provider"]) == {"isp1", "isp2", "isp3"}
    assert int(m["attempts"].sum()) == len(result.attempts)


def test_the_internet_scenario_loads_and_is_not_refused_for_its_size() -> None:
    scenario = load_scenario(INTERNET)
    assert sum(1 for d in scenario.domains if not d.startswith("isp")) == 10_000
    users = sum(g.count for g in scenario.senders.values() if g.sender_class == "ham")
    assert users == 1_000_000
    estimate = estimate_run(scenario, INTERNET.parent)
    assert 1e6 < estimate.messages < 1.5e6
    assert estimate.peak_bytes < 16 * 2**30


# ------------------------------------------------------------------ bad input
BAD = [
    ("domains = 40", "domains = 0", "internet.domains", "greater than or equal to 1"),
    ("domains = 40", "domians = 40", "internet.domians", "unknown key"),
    (
        "domains = 40\nproviders = 3",
        "domains = 100000\nproviders = 21",
        "internet",
        "more than 2,000,000",
    ),
    ("domains = 40", "domains = true", "internet.domains", "not true"),
    ("users = 1000", "users = 1e300", "internet.users", "integer"),
    ('rate = "24/d"', 'rate = "lots"', "internet.rate", "not a rate"),
    ("providers = 3", "providers = 3\nzipf_exponent = nan", "internet.zipf_exponent", "finite"),
    (
        "providers = 3",
        "providers = 3\nretry_mix = { smoke = 1.0 }",
        "internet.retry_mix",
        "unknown retry preset",
    ),
    (
        "providers = 3",
        "providers = 3\ncycle = { hourly = [1.0] }",
        "internet.cycle.hourly",
        "at least 24",
    ),
]


@pytest.mark.parametrize(("old", "new", "key", "words"), BAD)
def test_a_bad_internet_key_is_one_line_naming_it(tmp_path, old, new, key, words) -> None:
    path = small_world(tmp_path, SMALL.replace(old, new))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}"), message
    assert words in message, message


def test_internet_must_be_a_table() -> None:
    raw = {"internet": 3, "simulation": {"duration": "1h"}}
    with pytest.raises(ScenarioError, match=r"^w\.toml: internet: must be a table of keys$"):
        Scenario.from_dict(raw, source="w.toml")


def test_the_command_line_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = small_world(tmp_path, SMALL.replace("domains = 40", "domains = -1"))
    out = tmp_path / "x.toml"
    done = CliRunner().invoke(app, ["generate", str(path), "--out", str(out)])
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert "internet.domains" in lines[0]
    assert not out.exists()


# --------------------------------------------------------------- sending cycle
def test_a_flat_cycle_is_the_plain_rate_and_whole_weeks_average_one() -> None:
    flat = slot_multipliers([1.0] * 24, [1.0] * 7)
    assert flat == [1.0] * 168
    shaped = slot_multipliers([0.0] * 8 + [3.0] * 8 + [0.0] * 8, [2, 2, 2, 2, 2, 1, 1])
    assert mean_multiplier(shaped, 7 * 86400) == pytest.approx(1.0)
    assert mean_multiplier(shaped, 8 * HOUR) == 0.0  # Monday before 08:00: nothing
    clock = SendingClock(shaped, 1.0)
    # no rate before 08:00: a draw spent in the first open hour
    assert clock.next_time(0.0, 1.0) == pytest.approx(8 * HOUR + 1.0 / max(shaped))


def test_arrivals_follow_the_hourly_profile() -> None:
    """Counts per hour of the day over many days against rate x multiplier: a chi-square
    goodness of fit at the 0.1 % level (Poisson counts)."""
    hourly = [0.2] * 7 + [2.0] * 10 + [0.6] * 7
    multipliers = slot_multipliers(hourly, [1.0] * 7)
    clock = SendingClock(multipliers, 0.05)
    rng = np.random.default_rng(11)
    t, times = 0.0, []
    for draw in rng.standard_exponential(60_000):
        t = clock.next_time(t, float(draw))
        times.append(t)
    times_arr = np.array(times)
    days = math.floor(times_arr[-1] / 86400)
    inside = times_arr[times_arr < days * 86400]
    observed = np.bincount(((inside % 86400) // HOUR).astype(int), minlength=24)
    expected = np.array(multipliers[:24]) * 0.05 * HOUR * days
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < stats.chi2.ppf(0.999, 24)


def test_a_cycle_needs_a_rate() -> None:
    raw = {
        "providers": {"isp": {"ips": ["198.51.100.1"], "local_domains": ["isp.example"]}},
        "senders": {
            "users": {
                "provider": "isp",
                "messages": [{"at": 0, "to": ["a@dest.example"]}],
                "cycle": {},
            }
        },
    }
    with pytest.raises(ScenarioError, match="a cycle shapes a rate"):
        Scenario.from_dict(raw, source="w.toml")


# ------------------------------------------------------------------ the cost of its size
@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.exponential(2.0, n),
        lambda rng, n: rng.uniform(1.0, 3.0, n),
        lambda rng, n: rng.lognormal(0.1, 0.5, n),
    ],
)
def test_growing_blocks_serve_the_same_values_as_full_blocks(draw) -> None:
    rng_full, rng_grown = np.random.default_rng(3), np.random.default_rng(3)
    full = BlockDraws(lambda n: draw(rng_full, n), size=64)
    grown = BlockDraws(lambda n: draw(rng_grown, n), size=64, first=4)
    assert [grown.next() for _ in range(300)] == [full.next() for _ in range(300)]


def test_a_server_draws_a_small_first_block_of_service_times() -> None:
    dist = Distribution(dist="lognormal", mean=1.0, sd=0.5)
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    sample = service_sampler(dist, rng_a)
    mu, sigma = math.log(1.0) - math.log1p(0.25) / 2, math.sqrt(math.log1p(0.25))
    # the first block took FIRST_BLOCK values from the stream, no more
    rng_c = np.random.default_rng(9)
    rng_c.lognormal(mu, sigma, FIRST_BLOCK)
    assert rng_a.bit_generator.state == rng_c.bit_generator.state
    assert [sample() for _ in range(5000)] == list(rng_b.lognormal(mu, sigma, 5000))


def test_each_host_s_backup_preferences_are_its_records_in_every_domain() -> None:
    world = generate_world(InternetConfig(domains=300, providers=2, users=1000), 4)
    scenario = Scenario.from_dict(world, "<world>")
    resolver = Resolver(scenario.domains, np.random.default_rng(0))
    backups = [name for name, server in world["servers"].items() if server.get("role")]
    assert backups
    for host in [*backups, "mx1.gmail.example", "nowhere.example"]:
        expected = {
            domain: min(r.preference for r in d.mx if r.host == host)
            for domain, d in scenario.domains.items()
            if any(r.host == host for r in d.mx)
        }
        assert resolver.preferences(host) == expected
    first = backups[0]
    domain = first.removeprefix("backup.")
    resolver.set_mx(domain, [(10, f"mx1.{domain}")])
    assert resolver.preferences(first) == {}
