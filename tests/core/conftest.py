"""Builders for remediation tests: terse nodes, findings and policies with safe defaults."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
import yaml

from operatord.core.findings import Finding
from operatord.core.health import HealthState
from operatord.core.history import HistoryEntry, encode_history
from operatord.core.model import CordonOwner, Node, NodeCondition, frozen_map
from operatord.core.plan import Plan
from operatord.core.snapshot import Snapshot
from operatord.core.state import OperatordState
from operatord.policies.model import Policy
from operatord.testing.builders import a_finding
from operatord.vocab import (
    ANNOTATION_FINDINGS,
    ANNOTATION_HISTORY,
    LABEL_POOL,
)


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog output per test: logging configured by another test (to a stream that is
    closed by now) must not leak into these."""
    with structlog.testing.capture_logs() as logs:
        yield logs


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
__all__ = ["NOW", "a_finding", "a_node", "a_policy", "entry", "fleet", "minutes", "snap", "summarize"]
ROOT = Path(__file__).resolve().parents[2]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def a_policy(**remediation: Any) -> Policy:
    """The shipped default policy in full mode, with remediation overrides (YAML-style values)."""
    raw = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    raw["mode"] = "full"
    raw["remediation"] = {**raw.get("remediation", {}), **remediation}
    return Policy.model_validate(raw)


def a_node(
    name: str,
    *,
    pool: str = "local-a100",
    gpus: int = 8,
    ready: bool = True,
    findings: Sequence[Finding] = (),
    history: Sequence[HistoryEntry] = (),
    cordoned_by: str | None = None,
    conditions: Sequence[NodeCondition] = (),
    rv: str = "1",
) -> Node:
    annotations: dict[str, str] = {}
    if findings:
        annotations[ANNOTATION_FINDINGS] = json.dumps([f.to_json() for f in findings])
    if history:
        annotations[ANNOTATION_HISTORY] = encode_history(history, NOW)
    if cordoned_by is not None:
        annotations.update(CordonOwner(cordoned_by, "x", NOW - minutes(60)).annotations())
    return Node(
        name=name,
        labels=frozen_map({LABEL_POOL: pool}),
        annotations=frozen_map(annotations),
        unschedulable=cordoned_by is not None,
        conditions=(NodeCondition("Ready", "True" if ready else "False"), *conditions),
        gpus=gpus,
        resource_version=rv,
    )


def entry(
    event: str,
    state: HealthState | None,
    *,
    ago: timedelta = timedelta(minutes=30),
    actor: str = "operatord",
    **kw: Any,
) -> HistoryEntry:
    return HistoryEntry(NOW - ago, event, kw.pop("reason", "gpu_fallen_off_bus"), actor, state, **kw)


def fleet(n: int, **overrides: Any) -> list[Node]:
    """n healthy nodes gpu-00 … gpu-(n-1); `overrides` maps a name to a replacement node."""
    nodes = [a_node(f"gpu-{i:02d}") for i in range(n)]
    return [overrides.get(node.name, node) for node in nodes]


def snap(
    nodes: Sequence[Node], state: OperatordState | None = None, demand_gpus: float | None = None
) -> Snapshot:
    return Snapshot(NOW, tuple(nodes), state or OperatordState(), demand_gpus)


def summarize(plan: Plan, node: str | None = None) -> list[str]:
    """`kind:node` for actions and `hold:reason:node` for holds, in plan order (filtered by node)."""
    out = [f"{a.kind}:{a.node}" for a in plan.actions if node is None or a.node == node]
    out += [f"hold:{h.reason}:{h.node}" for h in plan.holds if node is None or h.node == node]
    return out
