"""The scenario: a typed, frozen, validated description of one simulated mail world.

A scenario is read from TOML (``load_scenario``), may be changed by ``--set`` style
overrides, and is checked completely before anything runs: unknown keys, wrong types,
out-of-range values and broken references raise ``ScenarioError`` naming the file, the key
path and the problem. Durations and rates are text at this edge (``"4h"``, ``"20/d"``) and
seconds (or events per second) inside.

The schema is split by section (``providers``, ``senders``, ``domains`` with servers,
``receivers`` with blocklists, ``schema`` for the whole); ``references`` checks what the
sections name of each other; ``loading`` and ``overrides`` read files and dotted keys.
"""

from mailnet.scenario.domains import (
    Distribution,
    Domain,
    MxRecord,
    OutageWindow,
    RandomOutages,
    Server,
)
from mailnet.scenario.fields import CustomRetry, Duration, Rate
from mailnet.scenario.loading import load_scenario, read_toml
from mailnet.scenario.overrides import (
    apply_overrides,
    key_parts,
    merge,
    parse_dotted,
    parse_override,
    set_dotted,
    undefined_entity,
)
from mailnet.scenario.providers import (
    OutboundFilterConfig,
    Provider,
    QuarantineConfig,
    RemovalRequestConfig,
    SenderRateLimitConfig,
    SuspensionConfig,
    WarmupConfig,
)
from mailnet.scenario.receivers import (
    BlocklistConfig,
    FilterConfig,
    GreylistConfig,
    Receiver,
    ReputationConfig,
)
from mailnet.scenario.references import build_blocklist
from mailnet.scenario.schema import Scenario, Simulation
from mailnet.scenario.senders import Campaigns, ExplicitMessage, SenderGroup

__all__ = [
    "BlocklistConfig",
    "Campaigns",
    "CustomRetry",
    "Distribution",
    "Domain",
    "Duration",
    "ExplicitMessage",
    "FilterConfig",
    "GreylistConfig",
    "MxRecord",
    "OutageWindow",
    "OutboundFilterConfig",
    "Provider",
    "QuarantineConfig",
    "RandomOutages",
    "Rate",
    "Receiver",
    "RemovalRequestConfig",
    "ReputationConfig",
    "Scenario",
    "SenderGroup",
    "SenderRateLimitConfig",
    "Server",
    "Simulation",
    "SuspensionConfig",
    "WarmupConfig",
    "apply_overrides",
    "build_blocklist",
    "key_parts",
    "load_scenario",
    "merge",
    "parse_dotted",
    "parse_override",
    "read_toml",
    "set_dotted",
    "undefined_entity",
]
