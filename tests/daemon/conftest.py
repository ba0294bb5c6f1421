"""Builders and fixtures for the daemon tests: snapshots for decide(), metrics, burst intents."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
import structlog.testing

from operatord.core.burst.intent import Attempt, AttemptOutcome, InstanceRecord, Intent, Offering
from operatord.core.burst.lifecycle import BurstState
from operatord.core.findings import Finding
from operatord.core.health import HealthState
from operatord.core.history import HistoryEntry, encode_history
from operatord.core.metrics import Known, MetricsSnapshot, ModelMetrics, Unknown, UnknownReason
from operatord.core.model import CordonOwner, Node, NodeCondition, frozen_map
from operatord.core.plan import Plan
from operatord.core.scaling import DemandSample
from operatord.policies.model import Policy
from operatord.testing.builders import a_finding
from operatord.vocab import ANNOTATION_FINDINGS, ANNOTATION_HISTORY, LABEL_POOL

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MODEL = "llama-70b"
PER_REPLICA = 2400 * 0.8  # tokens/s one replica serves at the default target utilization
P4D = {
    "instance_type": "p4d.24xlarge",
    "gpu_type": "A100-SXM4-40GB",
    "gpus_per_node": 8,
    "nodes_per_replica": 1,
    "vcpus": 96,
    "price_usd_per_hour": 21.957642,
    "price_as_of": "2025-06-01",
}
SUBNETS = [
    {"id": "subnet-0a1b2c3d4e5f60001", "availability_zone": "us-east-1a"},
    {"id": "subnet-0a1b2c3d4e5f60002", "availability_zone": "us-east-1b"},
]

__all__ = [
    "MODEL",
    "NOW",
    "PER_REPLICA",
    "a_fatal_node",
    "a_finding",
    "a_node",
    "a_policy",
    "a_serving_intent",
    "flat",
    "metrics",
    "policy_doc",
    "summarize",
]


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog per test: a logging setup leaked from another test must not break these."""
    structlog.reset_defaults()
    with structlog.testing.capture_logs() as logs:
        yield logs


def policy_doc(mode: str = "full", **burst: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Policy",
        "mode": mode,
        "cluster": "test",
        "pools": [
            {"name": "local-a100", "kind": "local", "gpu_type": "A100-SXM4-40GB"},
            {"name": "burst", "kind": "burst", "gpu_type": "A100-SXM4-40GB"},
        ],
        "serving": {
            "models": [
                {
                    "name": MODEL,
                    "workload": {"kind": "Deployment", "namespace": "llm", "name": "vllm-70b"},
                    "min_replicas": 1,
                    "max_replicas": 32,
                    "profiles": [
                        {
                            "gpu_type": "A100-SXM4-40GB",
                            "gpus_per_replica": 8,
                            "tokens_per_s_per_replica": 2400,
                        }
                    ],
                }
            ]
        },
        "scaling": {"forecast": {"method": "none"}},
        "burst": {
            "enabled": True,
            "pool": "burst",
            "instance_types": [P4D],
            "subnets": SUBNETS,
            "launch_template": {"name": "operatord-gpu-burst"},
            "max_instances": 4,
            "max_usd_per_hour": 120,
            "max_usd_per_day": 2000,
            **burst,
        },
    }
    return doc


def a_policy(mode: str = "full", **burst: Any) -> Policy:
    return Policy.model_validate(policy_doc(mode, **burst))


def a_node(
    name: str,
    *,
    pool: str = "local-a100",
    gpus: int = 8,
    findings: Sequence[Finding] = (),
    history: Sequence[HistoryEntry] = (),
    cordoned_by: str | None = None,
    labels: dict[str, str] | None = None,
) -> Node:
    annotations: dict[str, str] = {}
    if findings:
        annotations[ANNOTATION_FINDINGS] = json.dumps([f.to_json() for f in findings])
    if history:
        annotations[ANNOTATION_HISTORY] = encode_history(history, NOW)
    if cordoned_by is not None:
        annotations.update(CordonOwner(cordoned_by, "x", NOW - timedelta(minutes=60)).annotations())
    return Node(
        name=name,
        labels=frozen_map({LABEL_POOL: pool, **(labels or {})}),
        annotations=frozen_map(annotations),
        unschedulable=cordoned_by is not None,
        conditions=(NodeCondition("Ready", "True"),),
        gpus=gpus,
        resource_version="1",
    )


def a_fatal_node(name: str) -> Node:
    """Cordoned by operatord for a fatal fault: remediation wants to drain it this tick."""
    at = NOW - timedelta(minutes=10)
    return a_node(
        name,
        findings=[a_finding(first=at, node=name)],
        history=[HistoryEntry(at, "cordoned", "gpu_fallen_off_bus", "operatord", HealthState.CORDONED)],
        cordoned_by="operatord",
    )


def metrics(generation: float | None, waiting: float | None = 0.0, at: datetime = NOW) -> MetricsSnapshot:
    """One model's metrics with `generation` tokens/s of demand (prompt 0); None: unknown."""

    def r(v: float | None) -> Known | Unknown:
        return Known(v, at) if v is not None else Unknown(UnknownReason.STALE)

    m = ModelMetrics(
        MODEL, r(waiting), r(4.0), r(0.3), None, r(0.0), r(generation), r(2.0), r(1.0), r(1.0), r(9.0)
    )
    return MetricsSnapshot(at, models={MODEL: m})


def flat(value: float, minutes: int = 40) -> tuple[DemandSample, ...]:
    return tuple(DemandSample(NOW - timedelta(seconds=30 * k), value) for k in range(minutes * 2, 0, -1))


def a_serving_intent(iid: str, *, age: timedelta = timedelta(hours=1), node: str | None = None) -> Intent:
    launched = NOW - age
    attempt = Attempt(
        1,
        Offering("p4d.24xlarge", SUBNETS[0]["id"], "us-east-1a"),
        1,
        "t" * 48,
        launched,
        AttemptOutcome.LAUNCHED,
        None,
        launched,
    )
    record = InstanceRecord(
        f"i-{iid}0001",
        "p4d.24xlarge",
        "us-east-1a",
        21.957642,
        launched,
        BurstState.SERVING,
        launched,
        attempt=1,
        node=node,
    )
    return Intent(
        iid,
        "test",
        "burst",
        MODEL,
        1,
        ("p4d.24xlarge",),
        "demand_over_supply",
        launched,
        launched + timedelta(hours=24),
        BurstState.RUNNING,
        launched,
        (attempt,),
        (record,),
    )


def summarize(plan: Plan) -> list[str]:
    out = [f"{a.kind}:{a.node or a.reason}" for a in plan.actions]
    out += [f"hold:{h.reason}:{h.blocked}" for h in plan.holds]
    return out
