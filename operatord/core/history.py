"""Pure. Node history (`operatord.io/history`, design §1.5): bounded JSON of what happened to a node.

Entries record cordons, drains, hand-offs, recoveries and human actions with time, reason,
actor and the health state after the entry. The last state is the node's current health state;
drains in the window count toward escalation; a human uncordon's `ack_before` acknowledges the
findings seen until then (never re-cordon for them). Bounded to 30 days and 32 KiB; the newest
entries are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from operatord.core.health import HealthState

MAX_AGE = timedelta(days=30)
MAX_BYTES = 32 * 1024


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    event: str  # a health.NodeEvent value, or "cordoned" / "escalated"
    reason: str
    actor: str  # "operatord" or "human:<name>"
    state: HealthState | None = None  # the state after this entry; None: unchanged
    note: str = ""
    ack_before: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at.isoformat(),
            "event": self.event,
            "reason": self.reason,
            "actor": self.actor,
        }
        if self.state is not None:
            out["state"] = self.state.value
        if self.note:
            out["note"] = self.note[:256]
        if self.ack_before is not None:
            out["ack_before"] = self.ack_before.isoformat()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> HistoryEntry:
        ack = obj.get("ack_before")
        return cls(
            at=datetime.fromisoformat(str(obj["at"])),
            event=str(obj["event"]),
            reason=str(obj.get("reason", "")),
            actor=str(obj.get("actor", "")),
            state=HealthState(obj["state"]) if obj.get("state") else None,
            note=str(obj.get("note", "")),
            ack_before=datetime.fromisoformat(str(ack)) if ack else None,
        )


@dataclass(frozen=True, slots=True)
class History:
    entries: tuple[HistoryEntry, ...] = ()
    problem: str | None = None  # set when the annotation could not be read (it is then rebuilt)

    @property
    def state(self) -> HealthState:
        """The current health state: the last recorded one, healthy when none."""
        for entry in reversed(self.entries):
            if entry.state is not None:
                return entry.state
        return HealthState.HEALTHY

    @property
    def state_since(self) -> datetime | None:
        current = self.state
        since: datetime | None = None
        for entry in reversed(self.entries):
            if entry.state is None:
                continue
            if entry.state != current:
                break
            since = entry.at
        return since

    @property
    def ack_before(self) -> datetime | None:
        """Findings first seen at or before this were acknowledged by a human uncordon."""
        acks = [e.ack_before for e in self.entries if e.ack_before is not None]
        return max(acks) if acks else None

    def count(self, event: str, since: datetime) -> int:
        return sum(1 for e in self.entries if e.event == event and e.at >= since)

    def last(self, event: str) -> HistoryEntry | None:
        return next((e for e in reversed(self.entries) if e.event == event), None)

    def appended(self, *entries: HistoryEntry) -> History:
        return History(self.entries + tuple(entries))


def decode_history(text: str | None) -> History:
    """Total: a missing annotation is an empty history; a malformed one is empty with `problem` set."""
    if not text:
        return History()
    try:
        raw = json.loads(text)
        if not isinstance(raw, list):
            raise ValueError("not a JSON list")
        return History(tuple(HistoryEntry.from_json(e) for e in raw))
    except (ValueError, KeyError, TypeError) as err:
        return History(problem=f"unreadable history annotation: {err}")


def encode_history(entries: Sequence[HistoryEntry], now: datetime) -> str:
    """JSON of the entries newer than 30 days, dropping the oldest until it fits in 32 KiB.

    The current state survives trimming: when no kept entry carries a state, a small
    `state_kept` entry with it leads the list.
    """
    kept = [e for e in entries if now - e.at <= MAX_AGE]
    current = History(tuple(entries)).state

    def render(items: list[HistoryEntry]) -> str:
        if items and all(e.state is None for e in items) and current != HealthState.HEALTHY:
            items = [HistoryEntry(items[0].at, "state_kept", "", "operatord", current), *items]
        return json.dumps([e.to_json() for e in items], separators=(",", ":"))

    text = render(kept)
    while len(text.encode()) > MAX_BYTES and kept:
        kept.pop(0)
        text = render(kept)
    return text
