"""Every reason the burst and scaling code emits for an EC2-side event has a runbook with the fixed
sections (design §3.10), so an Event or log line always points somewhere useful."""

from __future__ import annotations

from pathlib import Path

import pytest

from operatord.vocab import Reason

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = [
    "## What fired",
    "## What operatord did (and in which mode)",
    "## Impact",
    "## Verify",
    "## Manual steps",
    "## Undo",
    "## Escalate",
]
BURST_REASONS = [
    Reason.QUOTA_EXHAUSTED,
    Reason.NO_CAPACITY,
    Reason.SPEND_CAP,
    Reason.BURST_CEILING,
    Reason.ORPHAN_INSTANCE,
    Reason.INSTANCE_EXPIRED,
    Reason.LAUNCH_REJECTED,
    Reason.PARTIAL_LAUNCH,
    Reason.LAUNCH_TIMEOUT,
    Reason.REGISTER_TIMEOUT,
    Reason.SERVING_TIMEOUT,
    Reason.DRAIN_TIMEOUT,
    Reason.TERMINATE_TIMEOUT,
    Reason.CAPACITY_REQUEST,
    Reason.DEMAND_OVER_SUPPLY,
    Reason.SUPPLY_OVER_DEMAND,
    Reason.COOLDOWN,
    Reason.STABILIZING,
    Reason.HUMAN_REQUEST,
    Reason.NODE_LOST,
]


@pytest.mark.parametrize("reason", BURST_REASONS, ids=[r.value for r in BURST_REASONS])
def test_burst_reason_has_a_runbook_with_the_fixed_sections(reason: Reason) -> None:
    path = ROOT / "runbooks" / f"{reason.value}.md"
    text = path.read_text()
    assert text.startswith(f"# {reason.value}: ")
    positions = [text.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in positions), [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
