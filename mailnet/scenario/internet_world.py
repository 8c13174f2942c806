"""The world an ``[internet]`` section stands for, as ordinary scenario tables.

``generate_world(config, seed)`` returns raw tables (as read from TOML) for
``providers``, ``senders``, ``domains``, ``servers``, ``receivers`` and ``blocklists``:

- recipient domains ranked by Zipf popularity (weight ``rank ** -zipf_exponent``): the
  first ``giants`` are webmail receivers in the gmail, microsoft and yahoo styles, the rest
  a long tail of small domains with one or two MX hosts, some with a backup MX, some
  greylisting;
- ``providers`` sending providers, each with its own /24 in 10.0.0.0/8 and its own
  private AS (RFC 6996: 64512 and up), a pool of ``users / users_per_ip`` addresses, and
  an MTA drawn from ``retry_mix``; users are split over them by Zipf popularity too;
- one ``ham`` sender group per provider (its users, with the daily and weekly ``cycle``),
  and on a share ``spammers`` of the providers a spamming customer sharing its pool.

Every sender group sends to every domain by its popularity. Randomness comes from the
streams ``internet.domains``, ``internet.providers`` and ``internet.spam`` of ``seed``, so
changing the number of providers does not move which domains greylist.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import ValidationError

from mailnet.errors import ScenarioError, validation_error
from mailnet.randomness import RandomStreams
from mailnet.scenario.fields import MAX_INTEGER
from mailnet.scenario.internet import InternetConfig
from mailnet.scenario.overrides import merge
from mailnet.scenario.providers import Provider

GIANTS = (("gmail", "gmail"), ("outlook", "microsoft"), ("yahoo", "yahoo"))
"""Giant receivers in rank order, each (domain label, reputation style)."""

GIANT_SERVICE = {"dist": "lognormal", "mean": "1s", "sd": "0.5s"}
"""A giant's session time: the large receiver of experiments/scenarios/shared_ip_spam.toml."""

GIANT_FILTER = {"fp_base": 0.002, "fn_base": 0.1, "fp_worst": 0.3, "fn_worst": 0.01}
"""A giant's content filter: as bigmail.example in experiments/scenarios/shared_ip_spam.toml."""

SPAMMER_INVALID = 0.15
"""Unknown users in a spammer's bought list (experiments/scenarios/shared_ip_spam.toml)."""

FLEET_LIMITS = {
    key: Provider.model_fields[key].default
    for key in (
        "max_connections",
        "destination_concurrency_limit",
        "initial_destination_concurrency",
    )
}
"""A provider's limits that add up over its outbound hosts, at one host's values."""

WEIGHT_DIGITS = 6
"""Significant digits of a domain's popularity weight: a file of the world stays small."""


def zipf_weights(count: int, exponent: float) -> np.ndarray:
    """``rank ** -exponent`` for ranks 1 to ``count``, rounded to ``WEIGHT_DIGITS``
    significant digits (the generated file and the direct run use the same numbers)."""
    weights = np.arange(1, count + 1, dtype=float) ** -exponent
    return np.array([float(f"{w:.{WEIGHT_DIGITS}g}") for w in weights])


def split_by_weight(total: int, weights: np.ndarray) -> list[int]:
    """``total`` split in proportion to ``weights`` by largest remainders (sums to
    ``total`` exactly, no randomness)."""
    shares = total * weights / weights.sum()
    counts = np.floor(shares).astype(int)
    short = total - int(counts.sum())
    order = np.argsort(-(shares - counts), kind="stable")
    counts[order[:short]] += 1
    return [int(c) for c in counts]


def generate_world(config: InternetConfig, seed: int) -> dict[str, Any]:
    """The scenario tables of the world ``config`` describes, drawn from ``seed``."""
    streams = RandomStreams(seed)
    names = domain_names(config)
    weights = zipf_weights(config.domains, config.zipf_exponent)
    world: dict[str, Any] = {"domains": {}, "servers": {}, "receivers": {}}
    mailboxes = split_by_weight(config.users, weights)
    _giants(config, names, mailboxes, world)
    _tail(config, names, mailboxes, streams.get("internet.domains"), world)
    popularity = dict(zip(names, (float(w) for w in weights), strict=True))
    _senders(config, popularity, streams, world)
    return world


def domain_names(config: InternetConfig) -> list[str]:
    """Recipient domains by popularity rank: the giants, then ``d<rank>.example``."""
    names = []
    for rank in range(1, config.domains + 1):
        if rank <= config.giants:
            label, _ = GIANTS[(rank - 1) % len(GIANTS)]
            round_ = (rank - 1) // len(GIANTS)
            names.append(f"{label}{round_ + 1 if round_ else ''}.example")
        else:
            names.append(f"d{rank}.example")
    return names


def _giant_preference(style: str, index: int) -> int:
    """MX preference of a giant's ``index``-th host: Gmail's published ladder (5, then
    10, 20, 30, 40 for alt1-alt4), Yahoo's equal 1s, Microsoft's one name (equal)."""
    if style == "gmail":
        return 5 if index == 0 else 10 * index
    return 1 if style == "yahoo" else 10


def _giants(
    config: InternetConfig, names: list[str], mailboxes: list[int], world: dict[str, Any]
) -> None:
    for rank in range(min(config.giants, config.domains)):
        domain = names[rank]
        _, style = GIANTS[rank % len(GIANTS)]
        receiver = domain.removesuffix(".example")
        hosts = [f"mx{i + 1}.{domain}" for i in range(config.giant_mx)]
        world["domains"][domain] = {
            "mx": [
                {"host": h, "preference": _giant_preference(style, i)} for i, h in enumerate(hosts)
            ],
            "users": max(1, mailboxes[rank]),
            "retrieval": "imap",  # webmail shows mail as it is stored
        }
        for host in hosts:
            world["servers"][host] = {
                "receiver": receiver,
                "sessions": config.giant_sessions,
                "service_time": dict(GIANT_SERVICE),
            }
        world["receivers"][receiver] = {
            "blocklists": {"css": "reject"},
            "reputation": {"half_life": "3d", "style": style},
            "filter": dict(GIANT_FILTER),
        }


def _tail(
    config: InternetConfig,
    names: list[str],
    mailboxes: list[int],
    rng: np.random.Generator,
    world: dict[str, Any],
) -> None:
    """Small domains: one MX host, a second of equal preference (``two_mx``), a backup
    MX (``backup_mx``), greylisting (``greylisting``), each drawn per domain."""
    first = min(config.giants, config.domains)
    draws = rng.random((config.domains - first, 3))
    world["receivers"]["tail"] = {"blocklists": {"css": "reject"}}
    world["receivers"]["tail-greylist"] = {
        "blocklists": {"spamcop": "defer"},
        "greylisting": {"delay": "5m"},
    }
    servers = world["servers"]
    for row, rank in enumerate(range(first, config.domains)):
        domain = names[rank]
        two, backup, grey = draws[row]
        receiver = "tail-greylist" if grey < config.greylisting else "tail"
        hosts = [f"mx1.{domain}"] + ([f"mx2.{domain}"] if two < config.two_mx else [])
        mx = [{"host": h, "preference": 10} for h in hosts]
        for host in hosts:
            servers[host] = {"receiver": receiver, "sessions": config.tail_sessions}
        if backup < config.backup_mx:
            mx.append({"host": f"backup.{domain}", "preference": 20})
            servers[f"backup.{domain}"] = {"role": "backup"}
        world["domains"][domain] = {"mx": mx, "users": max(1, mailboxes[rank])}


def _provider(
    name: str, number: int, users: int, config: InternetConfig, retry: str
) -> dict[str, Any]:
    """Provider ``number`` (from 1): its own /24 (10.x.y.0/24) and private AS, and an
    address per ``users_per_ip`` users (1 to 254). Each address is one outbound host with
    Postfix's limits (``Provider``'s defaults, mail-facts.md §1), so the provider's MTA has
    that many times their connections and destination windows: a provider ten times the
    size runs ten times the hosts, instead of queueing ten times the mail behind one."""
    size = max(1, min(254, math.ceil(users / config.users_per_ip)))
    return {
        "ips": [f"10.{number // 256}.{number % 256}.{i}" for i in range(1, size + 1)],
        "asn": 64511 + number,
        "local_domains": [f"{name}.example"],
        "retry": retry,
        **{key: size * default for key, default in FLEET_LIMITS.items()},
    }


def _senders(
    config: InternetConfig,
    popularity: dict[str, float],
    streams: RandomStreams,
    world: dict[str, Any],
) -> None:
    """Providers, their users' groups and the spamming customers, and the blocklists
    whose traps those spammers hit."""
    count = config.providers
    width = len(str(count))
    names = [f"isp{k:0{width}d}" for k in range(1, count + 1)]
    users = split_by_weight(config.users, zipf_weights(count, config.provider_exponent))
    presets = list(config.retry_mix)
    shares = np.array([config.retry_mix[p] for p in presets], dtype=float)
    retries = streams.get("internet.providers").choice(len(presets), count, p=shares / shares.sum())
    spam_count = round(config.spammers * count)
    spamming = set(streams.get("internet.spam").choice(count, spam_count, replace=False).tolist())
    cycle = None if config.cycle is None else config.cycle.model_dump()
    providers: dict[str, Any] = {}
    senders: dict[str, Any] = {}
    traps: dict[str, float] = {}
    for k, name in enumerate(names):
        providers[name] = _provider(name, k + 1, users[k], config, presets[int(retries[k])])
        if users[k] > 0:
            group = {
                "provider": name,
                "count": users[k],
                "class": "ham",
                "rate": config.rate,
                "recipients": config.recipients,
                "invalid_recipients": config.invalid_recipients,
                "domains": popularity,
            }
            if cycle is not None:
                group["cycle"] = cycle
            senders[f"{name}-users"] = group
        if k in spamming:
            senders[f"{name}-spammer"] = {
                "provider": name,
                "count": 1,
                "class": "spam",
                "rate": config.spam_rate,
                "invalid_recipients": SPAMMER_INVALID,
                "complaints": config.spam_complaints,
                "domains": popularity,
            }
            traps[f"{name}-spammer"] = config.spam_traps
    world["providers"] = providers
    world["senders"] = senders
    # Spamhaus runs the largest trap network: the spammers' share there, half at SpamCop
    # (as experiments/scenarios/shared_ip_spam.toml)
    world["blocklists"] = {
        "css": {"preset": "spamhaus-css", "traps": dict(traps)},
        "spamcop": {"preset": "spamcop", "traps": {g: s / 2 for g, s in traps.items()}},
    }


def expand_internet(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """``raw`` with its ``[internet]`` section replaced by the world it generates, the
    file's own tables merged over it; ``raw`` unchanged without one. Raises
    ``ScenarioError`` naming ``source`` and the key for a bad ``[internet]`` value."""
    if not isinstance(raw, dict) or "internet" not in raw:
        return raw
    rest = {k: v for k, v in raw.items() if k != "internet"}
    section = raw["internet"]
    if not isinstance(section, dict):
        raise ScenarioError(source, "internet", "must be a table of keys")
    try:
        config = InternetConfig.model_validate(section)
    except ValidationError as exc:
        raise validation_error(exc, source, ("internet",)) from None
    seed = config.seed if config.seed is not None else _scenario_seed(rest)
    return merge(generate_world(config, seed), rest)


def _scenario_seed(raw: dict[str, Any]) -> int:
    """The scenario's own seed, or 1 (``[simulation]``'s default) when it gives none or
    one that ``[simulation]`` will refuse anyway."""
    simulation = raw.get("simulation")
    seed = simulation.get("seed", 1) if isinstance(simulation, dict) else 1
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_INTEGER:
        return 1
    return seed
