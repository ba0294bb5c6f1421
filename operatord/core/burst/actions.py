"""Pure. The actions and holds the scaling decision returns (one value per thing to do or not do).

These live here until operatord.core.plan (issue 4) gives every decision a shared Plan type;
each action carries a stable idempotency `key` and a stable snake_case `reason`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_EMPTY: Mapping[str, object] = MappingProxyType({})


def action_key(kind: str, *parts: str) -> str:
    """A short stable key for an action: equal inputs give equal keys (used for logs and dedup)."""
    raw = "\x1f".join((kind, *parts)).encode()
    return f"{kind[:2]}-{hashlib.sha256(raw).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class SetReplicas:
    """Set a serving workload's replicas through its scale subresource (replica_owner: operatord)."""

    model: str
    kind: str
    namespace: str
    name: str
    replicas: int
    previous: int
    reason: str
    key: str


@dataclass(frozen=True, slots=True)
class LaunchBurst:
    """Create a burst intent for `replicas` serving replicas of `model` and launch it."""

    model: str | None
    replicas: int
    instance_type: str  # the preferred offering when planned; the launch loop may fall back
    instances: int
    usd_per_hour: float
    reason: str
    key: str


@dataclass(frozen=True, slots=True)
class ReleaseBurst:
    """Scale in one burst group (one node, or all nodes of one multi-node replica): design §1.9."""

    intent_id: str
    instance_ids: tuple[str, ...]
    model: str | None
    replicas: int
    usd_per_hour: float
    reason: str
    key: str


@dataclass(frozen=True, slots=True)
class Hold:
    """A decision not to act, with its reason (holding is a decision too, and is logged)."""

    reason: str
    model: str | None = None
    detail: Mapping[str, object] = field(default_factory=lambda: _EMPTY)


Action = SetReplicas | LaunchBurst | ReleaseBurst
