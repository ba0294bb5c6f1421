"""Pure. The `operatord-state` ConfigMap (design §1.5): pause, breaker and capacity requests.

One ConfigMap, updated only by compare-and-set on its resourceVersion (operatord.shell.state),
so two writers (the daemon and an on-call `operatord pause`) never lose each other's change.
Each concern is one data key holding JSON; unknown keys are kept untouched (later issues add
theirs), and a malformed key is reported with its name instead of being silently reset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

KEY_PAUSE = "pause"
KEY_BREAKER = "breaker"
KEY_CAPACITY = "capacity_requests"


class StateCorrupt(ValueError):
    """A data key of operatord-state is not what operatord wrote; the message names the key."""


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Breaker:
    """Quarantine circuit breaker. Open stops automatic cordons and drains until a human resets it;
    `counts_from` is the last reset (cordons before it do not count toward a new trip) and
    `ignore_before` the skip-backlog point (findings first seen before it are ignored)."""

    open: bool = False
    since: datetime | None = None
    reason: str = ""
    detail: str = ""
    counts_from: datetime | None = None
    ignore_before: datetime | None = None
    reset_by: str = ""


@dataclass(frozen=True, slots=True)
class CapacityRequest:
    """Replace before drain: `gpus` more capacity wanted because `node` will be drained."""

    node: str
    gpus: int
    reason: str
    since: datetime


@dataclass(frozen=True, slots=True)
class OperatordState:
    pause: Pause | None = None
    breaker: Breaker = field(default_factory=Breaker)
    capacity_requests: tuple[CapacityRequest, ...] = ()
    other: Mapping[str, str] = field(default_factory=dict)  # keys of later issues, kept as-is
    resource_version: str = ""  # "" until the ConfigMap exists

    def request_for(self, node: str) -> CapacityRequest | None:
        return next((r for r in self.capacity_requests if r.node == node), None)

    def with_request(self, request: CapacityRequest) -> OperatordState:
        kept = tuple(r for r in self.capacity_requests if r.node != request.node)
        return replace(self, capacity_requests=(*kept, request))

    def without_request(self, node: str) -> OperatordState:
        return replace(self, capacity_requests=tuple(r for r in self.capacity_requests if r.node != node))

    @property
    def requested_gpus(self) -> int:
        """Open capacity requests, in GPUs: the scaling side adds this to demand."""
        return sum(r.gpus for r in self.capacity_requests)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def encode_state(state: OperatordState) -> dict[str, str]:
    data = dict(state.other)
    if state.pause is not None:
        data[KEY_PAUSE] = json.dumps(
            {"reason": state.pause.reason, "by": state.pause.by, "at": state.pause.at.isoformat()}
        )
    else:
        data.pop(KEY_PAUSE, None)
    b = state.breaker
    data[KEY_BREAKER] = json.dumps(
        {
            "open": b.open,
            "since": _iso(b.since),
            "reason": b.reason,
            "detail": b.detail,
            "counts_from": _iso(b.counts_from),
            "ignore_before": _iso(b.ignore_before),
            "reset_by": b.reset_by,
        }
    )
    data[KEY_CAPACITY] = json.dumps(
        [
            {"node": r.node, "gpus": r.gpus, "reason": r.reason, "since": r.since.isoformat()}
            for r in state.capacity_requests
        ]
    )
    return data


def decode_state(data: Mapping[str, str], resource_version: str = "") -> OperatordState:
    """Inverse of encode_state. Raises StateCorrupt naming the key that cannot be read."""
    other = {k: v for k, v in data.items() if k not in (KEY_PAUSE, KEY_BREAKER, KEY_CAPACITY)}
    pause: Pause | None = None
    breaker = Breaker()
    requests: tuple[CapacityRequest, ...] = ()
    key = KEY_PAUSE
    try:
        if data.get(KEY_PAUSE):
            raw = json.loads(data[KEY_PAUSE])
            pause = Pause(str(raw["reason"]), str(raw.get("by", "")), datetime.fromisoformat(str(raw["at"])))
        key = KEY_BREAKER
        if data.get(KEY_BREAKER):
            raw = json.loads(data[KEY_BREAKER])
            breaker = Breaker(
                open=bool(raw.get("open", False)),
                since=_time(raw.get("since")),
                reason=str(raw.get("reason", "")),
                detail=str(raw.get("detail", "")),
                counts_from=_time(raw.get("counts_from")),
                ignore_before=_time(raw.get("ignore_before")),
                reset_by=str(raw.get("reset_by", "")),
            )
        key = KEY_CAPACITY
        if data.get(KEY_CAPACITY):
            raw = json.loads(data[KEY_CAPACITY])
            requests = tuple(
                CapacityRequest(
                    str(r["node"]),
                    int(r["gpus"]),
                    str(r.get("reason", "")),
                    datetime.fromisoformat(str(r["since"])),
                )
                for r in raw
            )
    except (ValueError, KeyError, TypeError) as err:
        raise StateCorrupt(
            f"operatord-state key {key!r} is unreadable ({err}); fix or delete that key"
        ) from None
    return OperatordState(pause, breaker, requests, other, resource_version)
