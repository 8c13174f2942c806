"""The retry-policy protocol, the typed parameters each policy declares, and shared parts.

A policy is a pure decision object (no simpy). The outbound MTA tries a new message at
once; after each transient failure it calls :meth:`RetryPolicy.after_failure` and either
holds the message until the returned time or bounces it as expired on ``None``. With a
``queue_run_interval`` the MTA only tries deferred mail at scans ``0, q, 2q, ...`` (taking
messages due by ``scan + scan_slack``); without one it tries at the returned time.

Parameters arrive from scenario files as ``retry_params`` tables; each policy declares a
:class:`RetryParams` model of them under the MTA's own names, validated once, so a policy
works with typed values in seconds. A bad value raises :class:`RetryParamsError`, one line
naming the parameter.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, ClassVar, Protocol, runtime_checkable

from numpy.random import Generator
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from mailnet.policies.retry.client import POSTFIX_CLIENT, ClientParams
from mailnet.units import parse_duration

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


class RetryParams(BaseModel):
    """The parameters of one retry policy: fields under the MTA's own names (aliases where
    those are not Python names), durations in seconds. Frozen once validated.

    Read them as attributes (``params.maximal_backoff_time``) or, by the MTA's spelling,
    as ``params["Timeout.queuereturn"]`` and ``params.get(name, default)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def __getitem__(self, name: str) -> Any:
        """The parameter the MTA calls ``name`` (``params["Timeout.queuereturn"]``)."""
        values = self.by_mta_name()
        if name not in values:
            raise KeyError(name)
        return values[name]

    def get(self, name: str, default: Any = None) -> Any:
        """The parameter the MTA calls ``name``, or ``default`` if the policy has none."""
        return self.by_mta_name().get(name, default)

    def by_mta_name(self) -> dict[str, Any]:
        """Every parameter under the MTA's own name, durations in seconds, in declared order."""
        return self.model_dump(by_alias=True)

    @classmethod
    def mta_names(cls) -> list[str]:
        """The parameter names a file may use (the MTA's spelling), in declared order."""
        return [field.alias or name for name, field in cls.model_fields.items()]


class RetryParamsError(ValueError):
    """A bad ``retry_params`` value, as one line.

    ``preset`` names the policy, ``key`` the parameter (the name the file used; ``None``
    for the parameters as a whole), ``problem`` a phrase that reads after the parameter
    ("must be greater than zero, got 0.0"). ``unknown`` marks a name the policy does not
    have; ``known`` then lists the names it does.
    """

    def __init__(
        self,
        preset: str,
        key: str | None,
        problem: str,
        *,
        unknown: bool = False,
        known: tuple[str, ...] = (),
    ) -> None:
        self.preset = preset
        self.key = key
        self.problem = problem
        self.unknown = unknown
        self.known = known
        super().__init__(self._line())

    def _line(self) -> str:
        if self.unknown:
            return (
                f"unknown retry parameter {self.key!r} for preset {self.preset!r} "
                f"(known: {', '.join(sorted(self.known))})"
            )
        if self.key is None:
            return f"retry parameters of preset {self.preset!r}: {self.problem}"
        return f"retry parameter {self.key!r} of preset {self.preset!r} {self.problem}"

    @property
    def short(self) -> str:
        """The problem alone, for a message that names the parameter by its key path."""
        if self.unknown:
            return f"unknown key (known: {', '.join(sorted(self.known))})"
        return self.problem

    @classmethod
    def from_validation(
        cls, exc: ValidationError, preset: str, model: type[RetryParams]
    ) -> RetryParamsError:
        """The first problem pydantic found while validating ``model`` for ``preset``."""
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else None
        if error["type"] == "extra_forbidden":
            return cls(preset, key, "", unknown=True, known=tuple(model.mta_names()))
        if error["type"] == "missing":
            return cls(preset, key, "is required")
        return cls(preset, key, error["msg"].removeprefix("Value error, "))


# --------------------------------------------------------------------------- field types


def _seconds(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(
            "must be a duration like '90s', '30m', '2h', '5d' or a number of seconds, "
            f"got {value!r}"
        ) from None


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be greater than zero, got {value!r}")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, got {value!r}")
    return value


def _factor(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
        raise ValueError(f"must be a number >= 1, got {value!r}")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _offsets(value: Any) -> list[float]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ValueError(f"must be a non-empty list of durations, got {value!r}")
    offsets = [_seconds(item) for item in value]
    if offsets[0] <= 0 or any(b <= a for a, b in itertools.pairwise(offsets)):
        raise ValueError(f"must be positive and increasing, got {value!r}")
    return offsets


Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A duration: seconds, or text such as ``"500ms"``, ``"90s"``, ``"1h30m"``, ``"5d"``."""

PositiveSeconds = Annotated[float, BeforeValidator(_seconds), AfterValidator(_positive)]
"""A duration greater than zero."""

Count = Annotated[int, BeforeValidator(_count)]
"""A whole number >= 0 (not a bool, not a float)."""

PositiveCount = Annotated[int, BeforeValidator(_count), AfterValidator(_positive)]
"""A whole number >= 1."""

Factor = Annotated[float, BeforeValidator(_factor)]
"""A multiplier >= 1."""

Flag = Annotated[bool, BeforeValidator(_flag)]
"""``true`` or ``false`` exactly."""

Offsets = Annotated[list[float], BeforeValidator(_offsets)]
"""A non-empty, increasing list of positive durations."""


# --------------------------------------------------------------------------- policies


@runtime_checkable
class RetryPolicy(Protocol):
    """What the outbound MTA needs from a retry policy.

    Attributes: ``name``; ``queue_run_interval`` (seconds between deferred-queue scans
    anchored at t=0, or ``None`` to try exactly at the eligible time); ``scan_slack`` (a
    scan takes messages due by scan time + slack); ``lifetime`` (queue lifetime, for
    information); ``params`` (the validated parameters, :class:`RetryParams`; durations
    in seconds); ``delay_warning`` (message age in seconds after which one "delayed" DSN
    is sent, or ``None``); ``changes_source_ip`` (retries leave from another address).

    One instance belongs to one MTA: Exim keeps per-destination retry data in it.
    """

    name: str
    queue_run_interval: float | None
    scan_slack: float
    lifetime: float
    params: RetryParams
    delay_warning: float | None
    changes_source_ip: bool

    def after_failure(
        self,
        *,
        now: float,
        arrival: float,
        first_failure: float,
        attempts: int,
        destination: str,
        is_bounce: bool = False,
    ) -> float | None:
        """Time the message becomes eligible again, or ``None`` to bounce it as expired.

        ``now``: when the failure is handled; ``arrival``: when the message entered the
        queue (its first attempt); ``first_failure``: its first failed attempt;
        ``attempts``: attempts so far including this one; ``destination``: the key retry
        data are kept under; ``is_bounce``: the message is a null-sender DSN (only Postfix
        treats those differently, with bounce_queue_lifetime). A returned time at or
        before ``now`` means "as soon as possible".
        """
        ...

    def after_success(self, *, now: float, destination: str) -> None:
        """Tell the policy a delivery to ``destination`` succeeded (Exim forgets its retry data)."""
        ...

    def client(self) -> ClientParams:
        """The MTA's SMTP client with these parameters (see :mod:`.client`)."""
        ...


class PolicyBase:
    """Shared attribute defaults of the policies; subclasses set the rest in ``__init__``.

    ``Params`` is the subclass's parameter model; a subclass is built as
    ``cls(params, rng, name=...)`` with an instance of it (see ``registry``).
    """

    Params: ClassVar[type[RetryParams]]
    name: str
    queue_run_interval: float | None = None
    scan_slack: float = 0.0
    lifetime: float
    params: RetryParams
    delay_warning: float | None = None
    changes_source_ip: bool = False

    def __init__(self, params: RetryParams, rng: Generator | None, name: str) -> None:
        self.name = name
        self.params = params

    def after_failure(
        self,
        *,
        now: float,
        arrival: float,
        first_failure: float,
        attempts: int,
        destination: str,
        is_bounce: bool = False,
    ) -> float | None:
        """See :meth:`RetryPolicy.after_failure`; each policy defines its own."""
        raise NotImplementedError

    def after_success(self, *, now: float, destination: str) -> None:
        """Forget nothing: only Exim keeps per-destination retry data."""

    def client(self) -> ClientParams:
        """Postfix's SMTP client, for the presets that are no MTA of their own."""
        return POSTFIX_CLIENT

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, params={self.params.by_mta_name()!r})"
