"""Testing: terse builders of operatord values with safe defaults (override only what a case is about)."""

from __future__ import annotations

from datetime import UTC, datetime

from operatord.core.findings import Finding
from operatord.vocab import FaultAction, FaultClass, Severity

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_finding(
    cls: FaultClass = FaultClass.GPU_FALLEN_OFF_BUS,
    *,
    fatal: bool = True,
    action: FaultAction = FaultAction.REBOOT,
    node_fault: bool = True,
    first: datetime = T0,
    last: datetime | None = None,
    rule: str | None = None,
    node: str | None = None,
) -> Finding:
    """A node finding (design §1.3); by default a fatal Xid-79-like fault seen once at `first`."""
    return Finding(
        node=node,
        source="kmsg",
        line=1,
        time=first,
        class_=cls,
        node_fault=node_fault,
        severity=Severity.FATAL if fatal else Severity.DEGRADED,
        action=action,
        rule=rule or f"rule-{cls.value}",
        text="line",
        first_seen=first,
        last_seen=last or first,
    )
