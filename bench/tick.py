"""Benchmark: one decide() over a large cluster, beside a naive per-node baseline in the same run.

Not a test. Builds a Snapshot of `--nodes` nodes (8 GPUs each), `--pods` pods, findings on
`--faulty` per cent of the nodes (fatal and degraded), bounded history on some, the metrics of
every served model and a few burst intents with their instances, then times core.decide.decide
(median of `--repeat` calls) and its peak Python memory (tracemalloc, a separate call).

The baseline is the shape decide() avoids: every node compared with every finding and every pod
(O(nodes × (findings + pods))) to find its own, then the same decisions. It is measured on the
same snapshot for `--baseline-nodes` nodes and scaled linearly to the whole fleet (the per-node
cost is constant by construction; the line says so). Goal (issue 7): decide() ≤ 50 ms at 5,000
nodes / 40,000 GPUs / 100,000 pods.

    .venv/bin/python bench/tick.py                       # 5,000 nodes, 100,000 pods
    .venv/bin/python bench/tick.py --nodes 500 --pods 10000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from operatord.core.burst.intent import Attempt, AttemptOutcome, InstanceRecord, Intent, Offering
from operatord.core.burst.lifecycle import BurstState
from operatord.core.burst.observed import CloudInstance
from operatord.core.decide import decide
from operatord.core.findings import Finding
from operatord.core.fleet import check_fleet, plan_fleet
from operatord.core.health import HealthState
from operatord.core.history import HistoryEntry, encode_history
from operatord.core.metrics import Known, MetricsSnapshot, ModelMetrics
from operatord.core.model import CordonOwner, Node, NodeCondition, OwnerKind, Pod, frozen_map
from operatord.core.nodes import build_views, decode_findings
from operatord.core.remediation import plan_remediation
from operatord.core.scaling_inputs import local_pools
from operatord.core.snapshot import CloudView, Snapshot
from operatord.policies.model import Policy
from operatord.vocab import (
    ANNOTATION_FINDINGS,
    ANNOTATION_HISTORY,
    LABEL_POOL,
    FaultAction,
    FaultClass,
    Severity,
)

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def policy() -> Policy:
    raw = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    raw["mode"] = "full"
    raw["burst"]["enabled"] = True
    return Policy.model_validate(raw)


def finding(node: str, i: int) -> Finding:
    fatal = i % 2 == 0
    return Finding(
        node=node,
        source="kmsg",
        line=1,
        time=NOW - timedelta(minutes=3),
        class_=FaultClass.GPU_FALLEN_OFF_BUS if fatal else FaultClass.GPU_ECC_UNCORRECTABLE,
        node_fault=True,
        severity=Severity.FATAL if fatal else Severity.DEGRADED,
        action=FaultAction.REBOOT if fatal else FaultAction.DRAIN,
        rule="bench",
        text="NVRM: Xid (PCI:0000:07:00): 79, pid=1, GPU has fallen off the bus.",
        first_seen=NOW - timedelta(minutes=3),
        last_seen=NOW - timedelta(minutes=1),
    )


def snapshot(pol: Policy, n_nodes: int, n_pods: int, faulty_pct: float) -> Snapshot:
    pool = next(p for p in pol.pools if p.kind == "local")
    every = max(1, round(100 / faulty_pct)) if faulty_pct > 0 else 0
    nodes: list[Node] = []
    for i in range(n_nodes):
        name = f"gpu-{i:05d}"
        annotations: dict[str, str] = {}
        unschedulable = False
        if every and i % every == 0:
            annotations[ANNOTATION_FINDINGS] = json.dumps([finding(name, i).to_json()])
        if i % 50 == 7:  # some history: an old cordon and recovery
            entries = [
                HistoryEntry(
                    NOW - timedelta(days=3),
                    "cordoned",
                    "gpu_ecc_uncorrectable",
                    "operatord",
                    HealthState.CORDONED,
                ),
                HistoryEntry(
                    NOW - timedelta(days=2), "uncordoned", "node_recovered", "operatord", HealthState.HEALTHY
                ),
            ]
            annotations[ANNOTATION_HISTORY] = encode_history(entries, NOW)
        if i % 500 == 3:  # a human's cordon
            annotations.update(
                CordonOwner("human:alice", "maintenance", NOW - timedelta(hours=1)).annotations()
            )
            unschedulable = True
        nodes.append(
            Node(
                name=name,
                labels=frozen_map({LABEL_POOL: pool.name}),
                annotations=frozen_map(annotations),
                unschedulable=unschedulable,
                conditions=(NodeCondition("Ready", "True"),),
                gpus=8,
                resource_version=str(i),
            )
        )
    models = pol.serving.models
    pods: list[Pod] = []
    per_node = max(1, n_pods // max(1, n_nodes))
    for i in range(n_pods):
        node = nodes[i // per_node % n_nodes].name
        serving = i % per_node == 0
        wl = models[i % len(models)].workload
        pods.append(
            Pod(
                wl.namespace if serving else "kube-system",
                f"pod-{i:06d}",
                node,
                controller_kind=OwnerKind.REPLICA_SET if serving else OwnerKind.DAEMON_SET,
                controller_name=f"{wl.name}-7d9f" if serving else "dcgm-exporter",
                gpus=8 if serving else 0,
            )
        )
    served = {}
    replicas = {}
    for m in models:
        per_replica = m.profiles[0].tokens_per_s_per_replica
        want = n_nodes // max(1, len(models)) // 2
        served[m.name] = ModelMetrics(
            m.name,
            *(Known(v, NOW) for v in (3.0, 40.0, 0.5)),
            None,
            *(Known(v, NOW) for v in (0.0, want * per_replica * 0.7, 10.0, 1.0, 0.4, 8.0)),
        )
        replicas[m.name] = want
    burst = pol.burst
    assert burst is not None
    itype = burst.instance_types[0]
    intents, instances = [], []
    for k in range(4):
        launched = NOW - timedelta(hours=2)
        iid = f"i-bench{k:012d}"
        attempt = Attempt(
            1,
            Offering(itype.instance_type, burst.subnets[0].id, burst.subnets[0].availability_zone),
            1,
            "t" * 48,
            launched,
            AttemptOutcome.LAUNCHED,
            None,
            launched,
        )
        rec = InstanceRecord(
            iid,
            itype.instance_type,
            burst.subnets[0].availability_zone,
            itype.price_usd_per_hour,
            launched,
            BurstState.SERVING,
            launched,
            attempt=1,
        )
        intents.append(
            Intent(
                f"bench{k}",
                pol.cluster,
                burst.pool,
                models[0].name,
                1,
                (itype.instance_type,),
                "demand_over_supply",
                launched,
                launched + timedelta(hours=24),
                BurstState.RUNNING,
                launched,
                (attempt,),
                (rec,),
            )
        )
        instances.append(
            CloudInstance(
                iid, itype.instance_type, burst.subnets[0].availability_zone, "running", launched, f"bench{k}"
            )
        )
    return Snapshot(
        NOW,
        nodes=tuple(nodes),
        pods=tuple(pods),
        metrics=MetricsSnapshot(NOW, models=served),
        replicas=replicas,
        cloud=CloudView(intents=tuple(intents), instances=tuple(instances), vcpu_quota=10_000),
    )


def naive_per_node(snap: Snapshot, findings: list[Finding], nodes: int) -> None:
    """The baseline's extra work for `nodes` nodes: each scans every finding and every pod."""
    pods = snap.pods or ()
    for node in snap.nodes[:nodes]:
        mine = [f for f in findings if f.node == node.name]
        serving = sum(1 for p in pods if p.node_name == node.name and p.gpus > 0)
        _ = (mine, serving)


def samples_ms(fn: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    return statistics.median(samples_ms(fn, repeat))


def peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--faulty", type=float, default=1.0, help="per cent of nodes with a fault finding")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--baseline-nodes", type=int, default=100, help="nodes the naive baseline is timed on"
    )
    args = parser.parse_args()

    pol = policy()
    t0 = time.perf_counter()
    snap = snapshot(pol, args.nodes, args.pods, args.faulty)
    build_s = time.perf_counter() - t0
    findings = [f for n in snap.nodes for f in decode_findings(n.annotations.get(ANNOTATION_FINDINGS))[0]]
    gpus = sum(n.gpus for n in snap.nodes)
    plan = decide(snap, pol, NOW)
    print(
        f"snapshot: {len(snap.nodes):,} nodes, {gpus:,} GPUs, {len(snap.pods or ()):,} pods, "
        f"{len(findings):,} findings, {len(pol.serving.models)} models, {len(snap.cloud.intents if snap.cloud else ())} "
        f"burst intents (built in {build_s:.1f} s)"
    )
    print(f"plan: {len(plan.actions)} actions, {len(plan.holds)} holds")

    decide_samples = samples_ms(lambda: decide(snap, pol, NOW), args.repeat)
    decide_ms, decide_best = statistics.median(decide_samples), min(decide_samples)
    decide_peak = peak_mib(lambda: decide(snap, pol, NOW))
    k = min(args.baseline_nodes, len(snap.nodes))
    scan_ms = median_ms(lambda: naive_per_node(snap, findings, k), max(1, args.repeat // 2))
    baseline_ms = decide_ms + scan_ms * len(snap.nodes) / max(1, k)
    baseline_peak = peak_mib(lambda: (naive_per_node(snap, findings, k), decide(snap, pol, NOW)))

    print(
        f"decide():  {decide_ms:10.1f} ms (median of {args.repeat}; best {decide_best:.1f} ms, the spread is "
        f"this machine's noise)   peak {decide_peak:7.1f} MiB"
    )
    print(
        f"baseline:  {baseline_ms:10.1f} ms (per-node scans timed on {k} nodes, scaled to {len(snap.nodes):,}; "
        f"plus the same decisions)   peak {baseline_peak:7.1f} MiB"
    )
    print(f"ratio baseline/decide: {baseline_ms / decide_ms:,.0f}x")
    goal = 50.0
    print(f"goal decide() <= {goal:.0f} ms: {'met' if decide_ms <= goal else 'NOT met'} ({decide_ms:.1f} ms)")
    print("where decide()'s time goes (each part timed alone, median):")
    report = check_fleet(snap.nodes, pol)
    parts: dict[str, Callable[[], Any]] = {
        "remediation (core.remediation.plan_remediation)": lambda: plan_remediation(snap, pol, NOW),
        "  of which node views (core.nodes.build_views)": lambda: build_views(
            snap.nodes, pol, snap.state, NOW
        ),
        "fleet skew (core.fleet.check_fleet)": lambda: check_fleet(snap.nodes, pol),
        "fleet skew (core.fleet.plan_fleet)": lambda: plan_fleet(report, snap.nodes, pol, snap.state),
        "scaling inputs (core.scaling_inputs.local_pools)": lambda: local_pools(snap.nodes, pol),
    }
    for name, fn in parts.items():
        print(f"  {name:52s} {median_ms(fn, args.repeat):8.1f} ms")


if __name__ == "__main__":
    main()
