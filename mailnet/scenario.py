"""The scenario: a typed, frozen, validated description of one simulated mail world.

A scenario is read from TOML (``load_scenario``), may be changed by ``--set`` style
overrides, and is checked completely before anything runs: unknown keys, wrong types,
out-of-range values and broken references raise ``ScenarioError`` naming the file, the key
path and the problem. Durations and rates are text at this edge (``"4h"``, ``"20/d"``) and
seconds (or events per second) inside.
"""

from __future__ import annotations

import copy
import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mailnet.errors import ScenarioError, key_path
from mailnet.units import format_duration, format_rate, parse_duration, parse_rate


def _duration(value: Any) -> float:
    return parse_duration(value)


def _rate(value: Any) -> float:
    return parse_rate(value)


Duration = Annotated[float, BeforeValidator(_duration), PlainSerializer(format_duration)]
"""Seconds inside; ``"5m"`` style text (or a number of seconds) in files."""

Rate = Annotated[float, BeforeValidator(_rate), PlainSerializer(format_rate)]
"""Events per second inside; ``"20/d"`` style text in files."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Simulation(_Model):
    """Run length and seed. ``warmup`` is excluded from time-averaged statistics;
    ``sample_interval`` is how often receivers' reputation scores are sampled."""

    duration: Duration = 2 * 86400.0
    warmup: Duration = 0.0
    seed: int = 1
    sample_interval: Duration = 900.0

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("duration must be positive")
        return value

    @field_validator("warmup")
    @classmethod
    def _warmup_inside(cls, value: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration")
        if duration is not None and value >= duration:
            raise ValueError(
                f"warmup ({format_duration(value)}) must be shorter than "
                f"duration ({format_duration(duration)})"
            )
        return value


class CustomRetry(_Model):
    """A custom retry schedule: attempts at these offsets after the first, until ``lifetime``."""

    offsets: list[Duration] = Field(min_length=1)
    lifetime: Duration


class SenderRateLimitConfig(_Model):
    """Per-sender submission limit: a token bucket; mail beyond it waits at the MSA."""

    rate: Rate
    burst: int = Field(10, ge=1)


class OutboundFilterConfig(_Model):
    """The provider's outbound spam filter: stops ``catch_rate`` of spam at submission."""

    catch_rate: float = Field(ge=0, le=1)
    fp_rate: float = Field(0.0, ge=0, le=1)


class SuspensionConfig(_Model):
    """Suspend senders whose hard-bounce or complaint rate passes these (Amazon SES: 5 %
    bounces, 0.1 % complaints; a 7-day window and 200 messages as coss.com; mail-facts.md §7)."""

    bounce_rate: float = Field(0.05, gt=0, le=1)
    complaint_rate: float = Field(0.001, gt=0, le=1)
    window: Duration = 7 * 86400.0
    min_volume: int = Field(200, ge=1)
    duration: Duration | None = None


class WarmupConfig(_Model):
    """New addresses that may send only ``daily_limits[k]`` messages on day k of warm-up."""

    ips: list[str] = Field(min_length=1)
    daily_limits: list[int] = Field(
        default_factory=lambda: [50, 100, 500, 1000, 5000, 10000, 20000, 40000]
    )
    start: Duration = 0.0


class Provider(_Model):
    """An outbound mail provider: submission server plus outbound MTA with a shared IP pool.

    Defaults are Postfix's (mail-facts.md §1): ``max_connections`` is default_process_limit
    (100), the destination window starts at initial_destination_concurrency (5) and grows
    to default_destination_concurrency_limit (20); one failed pseudo-cohort
    (failed_cohort_limit 1) marks a destination dead; smtp_connect_timeout is 30 s and
    smtp_mx_address_limit 5.
    """

    ips: list[str] = Field(min_length=1)
    ip_selection: Literal["round-robin", "random", "sender-hash"] = "round-robin"
    max_connections: int = Field(100, ge=1)
    destination_concurrency_limit: int = Field(20, ge=1)
    initial_destination_concurrency: int = Field(5, ge=1)
    destination_concurrency_failed_cohort_limit: float = Field(1.0, gt=0)
    destination_concurrency_negative_feedback: float = Field(1.0, ge=0, le=1)
    destination_concurrency_positive_feedback: float = Field(1.0, ge=0, le=1)
    smtp_connect_timeout: Duration = 30.0
    smtp_mx_address_limit: int = Field(5, ge=1)
    local_domains: list[str] = Field(min_length=1)
    hostname: str | None = None
    relay_host: str | None = None
    retry: str | CustomRetry = "postfix"
    retry_params: dict[str, Any] = Field(default_factory=dict)
    asn: int = Field(64496, ge=0)
    asn_size: int = Field(65536, ge=1)
    pool_strategy: Literal["shared", "by-class", "by-reputation", "dedicated"] = "shared"
    pools: dict[str, list[str]] = Field(default_factory=dict)
    rate_limit: SenderRateLimitConfig | None = None
    outbound_filter: OutboundFilterConfig | None = None
    suspension: SuspensionConfig | None = None
    warmup: WarmupConfig | None = None

    @field_validator("ips")
    @classmethod
    def _valid_ips(cls, ips: list[str]) -> list[str]:
        for ip in ips:
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise ValueError(f"not an IPv4 address: {ip!r}") from None
        if len(set(ips)) != len(ips):
            raise ValueError("an address appears twice")
        return ips

    @model_validator(mode="after")
    def _window(self) -> Provider:
        if self.initial_destination_concurrency > self.destination_concurrency_limit:
            raise ValueError(
                "initial_destination_concurrency exceeds destination_concurrency_limit"
            )
        for name, ips in self.pools.items():
            if not ips:
                raise ValueError(f"pool {name!r} has no addresses")
            stray = [ip for ip in ips if ip not in self.ips]
            if stray:
                raise ValueError(f"pool {name!r} uses {stray[0]}, which is not in ips")
        needs = {"by-reputation": ("good", "bad")}.get(self.pool_strategy, ())
        missing = [n for n in needs if n not in self.pools]
        if missing:
            raise ValueError(f"pool_strategy {self.pool_strategy!r} needs pools {missing}")
        if self.pool_strategy == "by-class" and not self.pools:
            raise ValueError("pool_strategy 'by-class' needs pools named by sender class")
        return self


class ExplicitMessage(_Model):
    """One message at a fixed time: exact tests and hand-made timelines."""

    at: Duration
    to: list[str] = Field(min_length=1)
    sender: int = Field(0, ge=0)


class Campaigns(_Model):
    """Bursts: every ``every`` (first at ``start``), ``size`` messages spread at random
    over ``over`` seconds, besides any steady rate."""

    every: Duration
    size: int = Field(ge=1)
    over: Duration = 0.0
    start: Duration = 0.0

    @model_validator(mode="after")
    def _fits(self) -> Campaigns:
        if self.every <= 0:
            raise ValueError("every must be positive")
        if self.over > self.every:
            raise ValueError("a campaign must end (over) before the next one starts (every)")
        return self


class SenderGroup(_Model):
    """A population of mail clients (MUAs) of one class, submitting to one provider."""

    provider: str
    count: int = Field(1, ge=1)
    sender_class: Literal["ham", "bulk", "spam"] = Field("ham", alias="class")
    rate: Rate | None = None
    recipients: float = Field(1.0, ge=1)
    invalid_recipients: float = Field(0.0, ge=0, le=1)
    domains: dict[str, float] = Field(default_factory=dict)
    messages: list[ExplicitMessage] | None = None
    trace: str | None = None
    campaigns: Campaigns | None = None
    traps: float = Field(0.0, ge=0, le=1)
    complaints: float = Field(0.0, ge=0, le=1)
    retries: bool = True

    @field_validator("domains")
    @classmethod
    def _weights(cls, domains: dict[str, float]) -> dict[str, float]:
        for name, weight in domains.items():
            if weight < 0:
                raise ValueError(f"weight of {name!r} is negative")
        if domains and sum(domains.values()) <= 0:
            raise ValueError("weights sum to zero")
        return domains

    @model_validator(mode="after")
    def _one_source(self) -> SenderGroup:
        given = [k for k in ("rate", "messages", "trace") if getattr(self, k) is not None]
        if len(given) > 1 or (not given and self.campaigns is None):
            raise ValueError(
                "give exactly one of rate, messages or trace (campaigns may come with a rate)"
            )
        if self.campaigns is not None and given and given != ["rate"]:
            raise ValueError("campaigns go with a rate or alone, not with messages or trace")
        if (self.rate is not None or self.campaigns is not None) and not self.domains:
            raise ValueError("a sender with a rate or campaigns needs domains to send to")
        if self.traps + self.invalid_recipients > 1:
            raise ValueError("traps + invalid_recipients exceed 1")
        return self


class MxRecord(_Model):
    host: str
    preference: int = Field(10, ge=0, le=65535)


class Domain(_Model):
    """A recipient domain: its MX records (RFC 5321 §5.1) and how its users fetch mail.

    ``retrieval`` is POP polling every ``poll_interval`` or IMAP push (fetched as soon as
    stored). ``dns_tempfail`` and ``dns_nxdomain`` are the probabilities that a sender's MX
    lookup fails temporarily (defer, 4.4.3) or finds no such domain (bounce, 5.1.2).
    ``users`` is how many mailboxes generated recipients are drawn from.
    """

    mx: list[MxRecord] | None = None
    null_mx: bool = False
    poll_interval: Duration = 600.0
    retrieval: Literal["pop", "imap"] = "pop"
    users: int = Field(1000, ge=1)
    dns_tempfail: float = Field(0.0, ge=0, le=1)
    dns_nxdomain: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _null(self) -> Domain:
        if self.null_mx and self.mx:
            raise ValueError("a null MX domain has no other MX records")
        if self.dns_tempfail + self.dns_nxdomain > 1:
            raise ValueError("dns_tempfail + dns_nxdomain exceed 1")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        return self


class Distribution(_Model):
    """A service-time distribution in seconds: exponential, lognormal, constant or uniform."""

    dist: Literal["exponential", "lognormal", "constant", "uniform"] = "exponential"
    mean: Duration | None = None
    sd: Duration | None = None
    low: Duration | None = None
    high: Duration | None = None

    @model_validator(mode="after")
    def _params(self) -> Distribution:
        if self.dist == "uniform":
            if self.low is None or self.high is None or self.high < self.low:
                raise ValueError("uniform needs low <= high")
        else:
            if self.mean is None or self.mean <= 0:
                raise ValueError(f"{self.dist} needs a positive mean")
            if self.dist == "lognormal" and (self.sd is None or self.sd <= 0):
                raise ValueError("lognormal needs a positive sd")
        return self


class RandomOutages(_Model):
    """Alternating up and down periods, exponential with means ``mtbf`` and ``mttr``."""

    mtbf: Duration
    mttr: Duration
    mode: Literal["timeout", "refuse"] = "timeout"

    @model_validator(mode="after")
    def _positive(self) -> RandomOutages:
        if self.mtbf <= 0 or self.mttr <= 0:
            raise ValueError("mtbf and mttr must be positive")
        return self


class OutageWindow(_Model):
    start: Duration
    end: Duration
    mode: Literal["timeout", "refuse"] = "timeout"

    @model_validator(mode="after")
    def _ordered(self) -> OutageWindow:
        if self.end <= self.start:
            raise ValueError("end must come after start")
        return self


class Server(_Model):
    """An inbound SMTP server (MX host).

    ``sessions`` run in parallel; up to ``backlog`` further connections wait FIFO for one,
    and beyond that a connection is refused with 421 4.3.2. ``connect_time`` is the
    constant connection set-up (TCP handshake and greeting) before a session can start.
    A ``backup`` server accepts mail for its domain and relays it to the more preferred
    MX hosts from its own queue, with its own retry policy. A ``relay`` accepts mail and
    passes it on from its own queue: to ``relay_to`` (an inbound gateway in front of a
    domain's final server) or, without it, by MX lookup (a provider's smarthost).

    Per-recipient replies beyond unknown users: with probability ``mailbox_full`` a
    recipient's mailbox is full at an attempt (452 4.2.2, transient); with
    ``recipient_rate_limit`` each recipient accepts at most that rate (token bucket of
    ``recipient_burst`` messages) and is answered 450 4.2.1 beyond it, as Gmail does.
    """

    sessions: int = Field(50, ge=1)
    backlog: int | Literal["unlimited"] = 100
    service_time: Distribution = Distribution(dist="lognormal", mean=2.0, sd=1.0)
    outages: RandomOutages | list[OutageWindow] | None = None
    role: Literal["primary", "backup", "relay"] = "primary"
    relay_to: str | None = None
    ip: str | None = None
    connect_time: Duration = 0.05
    retry: str | CustomRetry = "postfix"
    retry_params: dict[str, Any] = Field(default_factory=dict)
    max_connections: int = Field(20, ge=1)
    mailbox_full: float = Field(0.0, ge=0, le=1)
    recipient_rate_limit: Rate | None = None
    recipient_burst: int = Field(10, ge=1)
    receiver: str | None = None

    @model_validator(mode="after")
    def _relay(self) -> Server:
        if self.relay_to is not None and self.role != "relay":
            raise ValueError('relay_to is only for role = "relay"')
        return self

    @field_validator("backlog")
    @classmethod
    def _backlog(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError('backlog must be >= 0 or "unlimited"')
        return value


class GreylistConfig(_Model):
    """postgrey's greylisting; defaults are postgrey 1.37's (mail-facts.md §6)."""

    delay: Duration = 300.0
    retry_window: Duration = 2 * 86400.0
    max_age: Duration = 35 * 86400.0
    auto_whitelist_clients: int = Field(5, ge=0)
    ipv4_prefix: int = Field(24, ge=0, le=32)


class ReputationConfig(_Model):
    """A receiver's local IP reputation (see mailnet.policies.reputation for the score)."""

    half_life: Duration = 7 * 86400.0
    prior: float = Field(1.0, ge=0, le=1)
    prior_weight: float = Field(10.0, gt=0)
    throttle_below: float = Field(0.8, ge=0, le=1)
    reject_below: float = Field(0.5, ge=0, le=1)
    throttle_rate: Rate = 1 / 60
    throttle_burst: int = Field(10, ge=1)
    style: Literal["gmail", "microsoft", "yahoo"] = "gmail"

    @model_validator(mode="after")
    def _order(self) -> ReputationConfig:
        if self.reject_below > self.throttle_below:
            raise ValueError("reject_below must not exceed throttle_below")
        return self


class FilterConfig(_Model):
    """Content filtering: spam-folder error rates at a perfect and at the worst IP score."""

    fp_base: float = Field(0.001, ge=0, le=1)
    fn_base: float = Field(0.05, ge=0, le=1)
    fp_worst: float = Field(0.2, ge=0, le=1)
    fn_worst: float = Field(0.005, ge=0, le=1)


class Receiver(_Model):
    """A receiving organisation's policies, shared by the servers that name it.

    ``blocklists`` maps list names to the action on a listed client: ``reject`` (554
    5.7.1, permanent) or ``defer`` (451 4.7.1, transient); ``blocklist_scopes`` limits
    which listing levels count (default: ip, prefix and asn).
    """

    blocklists: dict[str, Literal["reject", "defer"]] = Field(default_factory=dict)
    blocklist_scopes: list[Literal["ip", "prefix", "asn"]] = Field(
        default_factory=lambda: ["ip", "prefix", "asn"]
    )
    greylisting: GreylistConfig | None = None
    reputation: ReputationConfig | None = None
    filter: FilterConfig | None = None


class BlocklistConfig(_Model):
    """A DNSBL: a preset (spamcop, uceprotect, spamhaus-css) and overrides of its rules."""

    preset: str | None = None
    zone: str | None = None
    trap_hits: int | None = Field(None, ge=1)
    complaints: int | None = Field(None, ge=1)
    spam_volume: int | None = Field(None, ge=1)
    window: Duration | None = None
    duration: Duration | None = None
    prefix_len: int | None = Field(None, ge=8, le=32)
    prefix_threshold: int | None = Field(None, ge=1)
    asn_share: float | None = Field(None, gt=0, le=1)
    asn_min_listed: int | None = Field(None, ge=1)


class Scenario(_Model):
    """A whole mail world. Build one with ``load_scenario`` or ``Scenario.from_dict``."""

    simulation: Simulation = Simulation()
    providers: dict[str, Provider] = Field(min_length=1)
    senders: dict[str, SenderGroup] = Field(min_length=1)
    domains: dict[str, Domain] = Field(default_factory=dict)
    servers: dict[str, Server] = Field(default_factory=dict)
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    blocklists: dict[str, BlocklistConfig] = Field(default_factory=dict)

    # ----------------------------------------------------------------- build
    @classmethod
    def from_dict(
        cls, raw: dict, source: str = "<scenario>", base_dir: Path | None = None
    ) -> Scenario:
        """Validate a raw mapping (as read from TOML). Raises ``ScenarioError``."""
        raw = _with_implicit_parts(copy.deepcopy(raw))
        try:
            scenario = cls.model_validate(raw)
        except ValidationError as exc:
            raise _first_error(exc, source) from None
        _check_references(scenario, source, base_dir)
        return scenario

    def to_dict(self) -> dict:
        """Every value, defaults included, in file form (durations as text)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_toml(self) -> str:
        """The resolved scenario as TOML, loadable again with ``load_scenario``."""
        return tomli_w.dumps(self.to_dict())


def _with_implicit_parts(raw: dict) -> dict:
    """Give each provider's local domains an MX server unless the file defines one.

    Mail from outside (DSNs from a backup MX, mail between providers) reaches a
    provider's users through this server; it is written out in the resolved scenario.
    """
    if not isinstance(raw, dict):
        return raw
    providers = raw.get("providers")
    if not isinstance(providers, dict):
        return raw
    domains = raw.setdefault("domains", {})
    servers = raw.setdefault("servers", {})
    if not isinstance(domains, dict) or not isinstance(servers, dict):
        return raw
    for provider in providers.values():
        if not isinstance(provider, dict):
            continue
        for domain in provider.get("local_domains", []) or []:
            if not isinstance(domain, str) or domain in domains:
                continue
            host = f"mx.{domain}"
            domains[domain] = {"mx": [{"host": host, "preference": 10}]}
            servers.setdefault(host, {"sessions": 100, "backlog": "unlimited"})
    # Every server gets an address (from 198.18.0.0/15, set aside for benchmarks) so that
    # logs and reputation can name it; the resolved scenario shows it.
    taken = {s.get("ip") for s in servers.values() if isinstance(s, dict)}
    number = 0
    for server in servers.values():
        if isinstance(server, dict) and server.get("ip") is None:
            while True:
                number += 1
                candidate = str(ipaddress.IPv4Address("198.18.0.0") + number)
                if candidate not in taken:
                    break
            server["ip"] = candidate
    return raw


def _first_error(exc: ValidationError, source: str) -> ScenarioError:
    error = exc.errors()[0]
    loc = [part for part in error["loc"] if not _is_union_tag(part)]
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    return ScenarioError(source, key_path(loc), message)


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member it tried (e.g. "RandomOutages", "list[...]", "int"):
    # those are not keys of the file.
    return isinstance(part, str) and (
        part[:1].isupper()
        or "[" in part
        or part in {"int", "str", "float", "bool"}
        or part.startswith("literal[")
        or part.startswith("function-")
    )


def _check_references(scenario: Scenario, source: str, base_dir: Path | None) -> None:
    """Broken references: a sender naming a missing provider, an MX host with no server."""
    from mailnet.policies.retry import make_retry_policy

    local = {d: name for name, p in scenario.providers.items() for d in p.local_domains}
    seen_ips: dict[str, str] = {}
    for name, provider in scenario.providers.items():
        for ip in provider.ips:
            if ip in seen_ips:
                raise ScenarioError(
                    source,
                    key_path(["providers", name, "ips"]),
                    f"{ip} is already used by provider {seen_ips[ip]!r}",
                )
            seen_ips[ip] = name
        _check_retry(
            source, ["providers", name], provider.retry, provider.retry_params, make_retry_policy
        )
        if provider.relay_host is not None and provider.relay_host not in scenario.servers:
            raise ScenarioError(
                source,
                key_path(["providers", name, "relay_host"]),
                f"relay host {provider.relay_host!r} has no [servers] entry",
            )
    for name, server in scenario.servers.items():
        _check_retry(
            source, ["servers", name], server.retry, server.retry_params, make_retry_policy
        )
        if server.relay_to is not None and server.relay_to not in scenario.servers:
            raise ScenarioError(
                source,
                key_path(["servers", name, "relay_to"]),
                f"relay target {server.relay_to!r} has no [servers] entry",
            )
        if server.relay_to == name:
            raise ScenarioError(
                source, key_path(["servers", name, "relay_to"]), "a relay cannot relay to itself"
            )
        if server.ip is not None:
            try:
                ipaddress.IPv4Address(server.ip)
            except ValueError:
                raise ScenarioError(
                    source, key_path(["servers", name, "ip"]), f"not an IPv4 address: {server.ip!r}"
                ) from None
    for name, server in scenario.servers.items():
        if server.receiver is not None and server.receiver not in scenario.receivers:
            raise ScenarioError(
                source,
                key_path(["servers", name, "receiver"]),
                f"no receiver named {server.receiver!r} in [receivers]",
            )
    for name, receiver in scenario.receivers.items():
        for listname in receiver.blocklists:
            if listname not in scenario.blocklists:
                raise ScenarioError(
                    source,
                    key_path(["receivers", name, "blocklists", listname]),
                    f"no blocklist named {listname!r} in [blocklists]",
                )
    for name, config in scenario.blocklists.items():
        try:
            build_blocklist(name, config, scenario)
        except ValueError as exc:
            raise ScenarioError(source, key_path(["blocklists", name]), str(exc)) from None
    for name, provider in scenario.providers.items():
        if provider.warmup is not None:
            for ip in provider.warmup.ips:
                if ip not in provider.ips:
                    raise ScenarioError(
                        source,
                        key_path(["providers", name, "warmup", "ips"]),
                        f"{ip} is not one of the provider's ips",
                    )
        if provider.pool_strategy == "dedicated":
            for pool in provider.pools:
                if pool not in scenario.senders:
                    raise ScenarioError(
                        source,
                        key_path(["providers", name, "pools", pool]),
                        f"dedicated pools are named after sender groups; no sender group {pool!r}",
                    )
    for name, domain in scenario.domains.items():
        if domain.null_mx:
            continue
        hosts = [r.host for r in domain.mx] if domain.mx else [name]
        for i, host in enumerate(hosts):
            if host not in scenario.servers:
                key = ["domains", name, "mx", i, "host"] if domain.mx else ["domains", name]
                what = f"MX host {host!r}" if domain.mx else f"implicit MX host {host!r}"
                raise ScenarioError(source, key_path(key), f"{what} has no [servers] entry")
        if domain.mx and all(scenario.servers[h].role == "backup" for h in hosts):
            raise ScenarioError(
                source,
                key_path(["domains", name, "mx"]),
                "every MX host is a backup: a domain needs a primary",
            )
    for name, group in scenario.senders.items():
        if group.provider not in scenario.providers:
            raise ScenarioError(
                source,
                key_path(["senders", name, "provider"]),
                f"no provider named {group.provider!r}",
            )
        for domain in group.domains:
            if domain not in scenario.domains and domain not in local:
                raise ScenarioError(
                    source,
                    key_path(["senders", name, "domains", domain]),
                    f"no domain named {domain!r} in [domains]",
                )
        if group.messages:
            for i, message in enumerate(group.messages):
                if message.sender >= group.count:
                    raise ScenarioError(
                        source,
                        key_path(["senders", name, "messages", i, "sender"]),
                        f"sender index {message.sender} is not below count {group.count}",
                    )
                for address in message.to:
                    _check_address(
                        source, ["senders", name, "messages", i, "to"], address, scenario, local
                    )
        if group.trace is not None:
            path = Path(group.trace)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.exists():
                raise ScenarioError(
                    source,
                    key_path(["senders", name, "trace"]),
                    f"trace file {str(path)!r} does not exist",
                )


def build_blocklist(name: str, config: BlocklistConfig, scenario: Scenario):
    """The ``Blocklist`` for ``[blocklists.NAME]``; AS sizes come from the providers."""
    from mailnet.policies.blocklists import Blocklist

    overrides = config.model_dump(exclude_none=True, exclude={"preset"})
    sizes: dict[int, int] = {}
    for provider in scenario.providers.values():
        sizes[provider.asn] = max(sizes.get(provider.asn, 0), provider.asn_size)
    if config.preset is not None:
        return Blocklist.preset(config.preset, name=name, asn_sizes=sizes, **overrides)
    if "asn_share" in overrides:
        overrides["asn_sizes"] = sizes
    return Blocklist(name, **overrides)


def _check_address(source, key, address, scenario, local) -> None:
    user, at, domain = address.rpartition("@")
    if not at or not user or not domain:
        raise ScenarioError(source, key_path(key), f"not a mail address: {address!r}")
    if domain not in scenario.domains and domain not in local:
        raise ScenarioError(source, key_path(key), f"no domain named {domain!r} in [domains]")


def _check_retry(source, key, retry, params, make) -> None:
    spec = retry.model_dump(mode="json") if isinstance(retry, CustomRetry) else retry
    try:
        make(spec, params)
    except ValueError as exc:
        where = key + (["retry_params"] if params else ["retry"])
        raise ScenarioError(source, key_path(where), str(exc)) from None


# ------------------------------------------------------------------ loading
def parse_override(text: str) -> dict:
    """``KEY=VALUE`` with a TOML dotted key and a TOML value (bare words become strings).

    ``'servers."mx1.example".sessions=80'`` gives ``{"servers": {"mx1.example": {"sessions": 80}}}``.
    """
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise ScenarioError("--set", text, "expected KEY=VALUE")
    try:
        return tomllib.loads(f"{key.strip()} = {value.strip()}")
    except tomllib.TOMLDecodeError:
        pass
    quoted = value.strip().replace("\\", "\\\\").replace('"', '\\"')
    try:
        return tomllib.loads(f'{key.strip()} = "{quoted}"')
    except tomllib.TOMLDecodeError:
        raise ScenarioError("--set", key.strip(), "not a TOML dotted key") from None


def merge(base: dict, update: dict) -> dict:
    """Deep-merge ``update`` into a copy of ``base``; leaves (and lists) are replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_toml(path: str | Path) -> dict:
    """A TOML file as a dict; a missing or malformed file raises ``ScenarioError``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ScenarioError(str(path), "", "file not found") from None
    except IsADirectoryError:
        raise ScenarioError(str(path), "", "is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not a UTF-8 text file") from None


def load_scenario(path: str | Path, overrides: list[str] | dict | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    ``overrides`` is a list of ``KEY=VALUE`` strings (as given to ``--set``) or a mapping
    of dotted key paths to values. Raises ``ScenarioError`` for any problem.
    """
    raw = read_toml(path)
    raw = apply_overrides(raw, overrides)
    return Scenario.from_dict(raw, source=str(path), base_dir=Path(path).parent)


def apply_overrides(raw: dict, overrides: list[str] | dict | None) -> dict:
    """``raw`` with each override applied in order (later wins)."""
    if not overrides:
        return raw
    if isinstance(overrides, dict):
        items = [_dotted_to_nested(k, v) for k, v in overrides.items()]
    else:
        items = [parse_override(text) for text in overrides]
    for item in items:
        raw = merge(raw, item)
    return raw


def _dotted_to_nested(key: str, value: Any) -> dict:
    """``("a.b", 3)`` -> ``{"a": {"b": 3}}`` using TOML's dotted-key rules."""
    try:
        skeleton = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        raise ScenarioError("--set", key, "not a TOML dotted key") from None
    node = skeleton
    while True:
        ((name, child),) = node.items()
        if isinstance(child, dict):
            node = child
        else:
            node[name] = value
            return skeleton
