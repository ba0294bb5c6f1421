"""Pure. The scaling and burst actions, as operatord.core.plan Actions (the daemon's apply path
runs them through executors registered in operatord.shell.burst_apply).

Every action has a stable idempotency `key` and a stable snake_case `reason`; all need mode `full`
(design §1.1: scaling serving and launching/terminating burst are logged as "would" below it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from operatord.core.plan import Action, Hold, action_key, detail
from operatord.vocab import Mode

__all__ = ["Action", "Hold", "LaunchBurst", "ReleaseBurst", "SetReplicas", "action_key", "detail"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetReplicas(Action):
    """Set a serving workload's replicas through its scale subresource (replica_owner: operatord)."""

    model: str
    workload_kind: str
    namespace: str
    name: str
    replicas: int
    previous: int

    min_mode: ClassVar[Mode] = Mode.FULL
    kind: ClassVar[str] = "set_replicas"


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchBurst(Action):
    """Create a burst intent for `replicas` serving replicas of `model` and run its launch loop.
    `instance_type`, `instances` and `usd_per_hour` describe the preferred offering when planned;
    the launch loop may fall back along the chain (every attempt is checked against the caps)."""

    model: str | None
    replicas: int
    instance_type: str
    instances: int
    usd_per_hour: float

    min_mode: ClassVar[Mode] = Mode.FULL
    kind: ClassVar[str] = "launch_burst"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseBurst(Action):
    """Scale in one burst group (one node, or every node of one multi-node replica), design §1.9."""

    intent_id: str
    instance_ids: tuple[str, ...]
    model: str | None
    replicas: int
    usd_per_hour: float

    min_mode: ClassVar[Mode] = Mode.FULL
    kind: ClassVar[str] = "release_burst"
