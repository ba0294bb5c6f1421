"""Pure. What a decision returns: actions to take and holds (decisions not to act), each with a reason.

An `Action` is a frozen value with a stable idempotency `key` (same inputs → same key, so a
retried tick or a second `operatord drain` cannot act twice), a `reason` (a vocab.Reason or
FaultClass value: the Event reason and the runbook name), and `min_mode`, the lowest mode of
design §1.1 in which the shell executes it (below that it is logged as "would").

Extending: another capability defines its own frozen subclasses of `Action` next to its
decision code (or here, if shared), sets `min_mode`, and registers an executor in
operatord.shell.apply. Nothing in this module needs to change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import ClassVar, TypeVar

from operatord.core.health import HealthState
from operatord.vocab import Mode

Detail = Mapping[str, str | int | float | bool | None]
_NO_DETAIL: Detail = MappingProxyType({})
A = TypeVar("A", bound="Action")


def action_key(kind: str, *parts: object) -> str:
    """A short stable key: `kind-<12 hex>` of the parts (deterministic across processes)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in (kind, *parts)).encode()).hexdigest()
    return f"{kind}-{digest[:12]}"


def detail(**values: str | int | float | bool | None) -> Detail:
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """Base of every action: key, reason, the node it concerns (if any) and a small detail map."""

    key: str
    reason: str
    node: str | None = None
    detail: Detail = field(default_factory=lambda: _NO_DETAIL, compare=False)

    min_mode: ClassVar[Mode] = Mode.FULL
    kind: ClassVar[str] = "action"


# ------------------------------------------------------------------ remediation actions


@dataclass(frozen=True, slots=True, kw_only=True)
class Cordon(Action):
    """Mark `node` unschedulable with owner annotations. `take_ownership`: also when already
    cordoned, record `owner` (a human's `operatord drain` takes over operatord's cordon)."""

    owner: str
    to_state: HealthState | None = HealthState.CORDONED  # None: no state change (a human's cordon)
    take_ownership: bool = False

    min_mode: ClassVar[Mode] = Mode.CORDON_ONLY
    kind: ClassVar[str] = "cordon"


@dataclass(frozen=True, slots=True, kw_only=True)
class Drain(Action):
    """Evict the node's pods (design §1.2 `drain`); `fatal` drains do not wait for capacity."""

    actor: str
    fatal: bool = False
    to_state: HealthState = HealthState.DRAINING

    kind: ClassVar[str] = "drain"


@dataclass(frozen=True, slots=True, kw_only=True)
class Uncordon(Action):
    """Make the node schedulable again, only while operatord still owns its cordon: the executor
    re-checks the owner and writes conditioned on the version it read, so a human's cordon or
    ownership change in between wins."""

    actor: str
    to_state: HealthState = HealthState.HEALTHY

    kind: ClassVar[str] = "uncordon"


@dataclass(frozen=True, slots=True, kw_only=True)
class HandOff(Action):
    """A drained node goes to "awaiting repair": condition, Event and runbook for a human (§1.8)."""

    fault: str
    runbook: str
    to_state: HealthState = HealthState.AWAITING_REPAIR

    kind: ClassVar[str] = "hand_off"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordTransition(Action):
    """Bookkeeping only: append a history entry moving the node to `to_state` (suspect, fault
    cleared, a human's uncordon acknowledged). Allowed in every mode and while paused."""

    event: str
    to_state: HealthState
    actor: str = "operatord"
    ack_before: datetime | None = None  # findings first seen before this are acknowledged (human uncordon)

    min_mode: ClassVar[Mode] = Mode.OBSERVE
    kind: ClassVar[str] = "record"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCapacity(Action):
    """Open a capacity request (replace before drain): the scaling side counts `gpus` as demand."""

    gpus: int
    since: datetime

    kind: ClassVar[str] = "request_capacity"


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseCapacityRequest(Action):
    kind: ClassVar[str] = "close_capacity_request"


@dataclass(frozen=True, slots=True, kw_only=True)
class TripBreaker(Action):
    """Open the quarantine circuit breaker: no automatic cordon or drain until a human resets it."""

    since: datetime

    min_mode: ClassVar[Mode] = Mode.OBSERVE
    kind: ClassVar[str] = "trip_breaker"


# ------------------------------------------------------------------ holds and plans


@dataclass(frozen=True, slots=True)
class Hold:
    """A decision not to act (logged like an action): why, about which node, with numbers."""

    reason: str
    node: str | None = None
    detail: Detail = field(default_factory=lambda: _NO_DETAIL, compare=False)
    blocked: str | None = None  # the action kind that was held, e.g. "drain"


@dataclass(frozen=True, slots=True)
class Plan:
    """Ordered actions and holds. Plans compose with `+` (order kept, duplicate keys dropped)."""

    actions: tuple[Action, ...] = ()
    holds: tuple[Hold, ...] = ()

    @classmethod
    def empty(cls) -> Plan:
        return cls()

    @classmethod
    def of(cls, *actions: Action) -> Plan:
        return cls(actions=tuple(actions))

    @classmethod
    def hold(
        cls,
        reason: str,
        *,
        node: str | None = None,
        blocked: str | None = None,
        **values: str | int | float | bool | None,
    ) -> Plan:
        return cls(holds=(Hold(reason, node, detail(**values), blocked),))

    def __add__(self, other: Plan) -> Plan:
        seen = {a.key for a in self.actions}
        extra = tuple(a for a in other.actions if a.key not in seen)
        return Plan(self.actions + extra, self.holds + other.holds)

    def actions_of(self, kind: type[A]) -> tuple[A, ...]:
        return tuple(a for a in self.actions if isinstance(a, kind))

    def for_node(self, node: str) -> Plan:
        return Plan(
            tuple(a for a in self.actions if a.node == node),
            tuple(h for h in self.holds if h.node == node),
        )

    @property
    def is_empty(self) -> bool:
        return not self.actions and not self.holds


def combine(plans: Iterable[Plan]) -> Plan:
    out = Plan()
    for p in plans:
        out = out + p
    return out
