"""Pure. A fault finding (design §1.3): what a log line says about a node, folded over repeats.

The same shape is the `faults scan -o jsonl` line, the agent's `operatord.io/findings`
annotation entry and the controller's input, so it round-trips through JSON losslessly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from operatord.vocab import FaultAction, FaultClass, Severity

TEXT_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Finding:
    node: str | None
    source: str
    line: int
    time: datetime | None
    class_: FaultClass
    node_fault: bool
    severity: Severity
    action: FaultAction
    rule: str
    text: str
    xid: int | None = None
    gpu: str | None = None
    peer: str | None = None
    count: int = 1
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def fold_key(self) -> tuple[object, ...]:
        """Findings with equal keys are repeats of one another."""
        return (self.node, self.rule, self.class_, self.xid, self.gpu, self.peer, self.node_fault)

    def folded(self, repeat: Finding) -> Finding:
        """This finding with `repeat` counted in; first/last seen widen, the first text stays."""
        times = [
            t for t in (self.first_seen, self.last_seen, repeat.first_seen, repeat.last_seen) if t is not None
        ]
        return replace(
            self,
            count=self.count + repeat.count,
            first_seen=min(times) if times else None,
            last_seen=max(times) if times else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "source": self.source,
            "line": self.line,
            "time": _iso(self.time),
            "class": self.class_.value,
            "node_fault": self.node_fault,
            "severity": self.severity.value,
            "action": self.action.value,
            "xid": self.xid,
            "gpu": self.gpu,
            "peer": self.peer,
            "rule": self.rule,
            "count": self.count,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "text": self.text[:TEXT_LIMIT],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Finding:
        """Inverse of to_json. Raises KeyError/ValueError on a malformed object."""
        return cls(
            node=obj.get("node"),
            source=str(obj["source"]),
            line=int(obj["line"]),
            time=_parse(obj.get("time")),
            class_=FaultClass(obj["class"]),
            node_fault=bool(obj["node_fault"]),
            severity=Severity(obj["severity"]),
            action=FaultAction(obj["action"]),
            xid=None if obj.get("xid") is None else int(obj["xid"]),
            gpu=obj.get("gpu"),
            peer=obj.get("peer"),
            rule=str(obj["rule"]),
            count=int(obj.get("count", 1)),
            first_seen=_parse(obj.get("first_seen")),
            last_seen=_parse(obj.get("last_seen")),
            text=str(obj.get("text", ""))[:TEXT_LIMIT],
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromisoformat(str(value))
