"""Pure. Builds the scaling decision's narrow inputs from the shared value types: metrics
(operatord.core.metrics), cluster nodes (operatord.core.model) and the state ConfigMap's capacity
requests (operatord.core.state). The decision itself (operatord.core.scaling) depends on none of
them, so it stays testable with four small dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple

from operatord.core.burst.intent import Intent
from operatord.core.burst.lifecycle import BurstState
from operatord.core.metrics import Known, MetricsSnapshot, Reading, demand_tokens_per_s
from operatord.core.model import Node, OwnerKind, Pod
from operatord.core.nodes import HEALTH_CONDITIONS, by_name, selects
from operatord.core.scaling import (
    CapacityRequest,
    DemandSample,
    LocalNode,
    LocalPool,
    ModelSignals,
    first_since,
)
from operatord.core.state import OperatordState
from operatord.policies.model import Policy, ServedModel
from operatord.vocab import TAINT_BURST, Reason


def model_signals(
    snap: MetricsSnapshot,
    served: ServedModel,
    policy: Policy,
    *,
    replicas: int,
    pending_replicas: int = 0,
    ready_replicas: int | None = None,
    history: Sequence[DemandSample] = (),
) -> ModelSignals:
    """One model's signals; anything the snapshot does not know stays None (never 0)."""
    metrics = snap.models.get(served.name)
    if metrics is None or snap.outage is not None:
        return ModelSignals(
            served.name,
            None,
            history=tuple(history),
            replicas=replicas,
            pending_replicas=pending_replicas,
            ready_replicas=ready_replicas,
        )
    demand = demand_tokens_per_s(metrics, policy.serving.demand_weights)
    waiting = metrics.requests_waiting
    kv = metrics.kv_cache_usage
    return ModelSignals(
        served.name,
        demand.value if isinstance(demand, Known) else None,
        queue_depth=waiting.value if isinstance(waiting, Known) else None,
        kv_cache_usage=kv.value if isinstance(kv, Known) else None,
        backlog_tokens_per_s=_backlog(demand, waiting, metrics.requests_per_s, policy),
        history=tuple(history),
        replicas=replicas,
        pending_replicas=pending_replicas,
        ready_replicas=ready_replicas,
    )


def _backlog(demand: Reading, waiting: Reading, finished: Reading, policy: Policy) -> float | None:
    """Weighted tokens/s that clear the waiting requests within the e2e SLO, at the tokens per
    request being served now; None when a term is unknown (never a guess)."""
    if not (isinstance(demand, Known) and isinstance(waiting, Known) and isinstance(finished, Known)):
        return None
    if finished.value <= 0 or waiting.value <= 0:
        return 0.0 if waiting.value <= 0 else None
    per_request = demand.value / finished.value
    return waiting.value * per_request / policy.serving.slo.e2e_p99.total_seconds()


class PoolCapacity(NamedTuple):
    """One local pool: its usable nodes (all their GPUs), and the allocatable GPUs of its other
    local nodes (cordoned, not Ready or faulty), by name. A function of the nodes and the policy."""

    pool: LocalPool
    held_back: tuple[tuple[str, int], ...]


def usable_capacity(nodes: Sequence[Node], policy: Policy) -> tuple[PoolCapacity, ...]:
    """Every local pool's usable nodes and the rest, in policy order, nodes by name (see local_pools)."""
    usable: list[tuple[Node, int]] = []
    held_back: list[Node] = []
    for n in sorted(nodes, key=by_name):
        gpus = _usable_gpus(n)
        if gpus is None:
            continue
        if gpus > 0:
            usable.append((n, gpus))
        elif n.gpus > 0:
            held_back.append(n)
    out: list[PoolCapacity] = []
    for pool in policy.pools:
        if pool.kind != "local":
            continue
        member = selects(pool.selector)
        members = tuple(LocalNode(n.name, gpus) for n, gpus in usable if member(n))
        others = tuple((n.name, n.gpus) for n in held_back if member(n))
        out.append(PoolCapacity(LocalPool(pool.name, pool.gpu_type, pool.gpus_per_node, members), others))
    return tuple(out)


def local_pools(
    nodes: Sequence[Node],
    policy: Policy,
    serving: Mapping[str, int] | None = None,
    usable: Sequence[PoolCapacity] | None = None,
) -> tuple[LocalPool, ...]:
    """Local capacity per node of every local pool: all GPUs of a usable node (Ready, not cordoned,
    not a burst node, GPUHealthy/NCCLHealthy not False), and on any other local node the GPUs its
    serving replicas still hold (`serving`, from replica_pods). A cordoned or faulty node
    keeps serving until it is drained, and a drain that would leave too little capacity asks for a
    replacement first (a capacity request), so burst is bought for a drain, not for a fault.

    `usable` is usable_capacity(nodes, policy), when the caller kept it from an earlier tick."""
    held = serving or {}
    out: list[LocalPool] = []
    for cap in usable if usable is not None else usable_capacity(nodes, policy):
        still = [
            LocalNode(name, min(gpus, held[name])) for name, gpus in cap.held_back if held.get(name, 0) > 0
        ]
        if not still:
            out.append(cap.pool)  # most ticks: every local node is usable, or holds no replica
            continue
        merged = tuple(sorted((*cap.pool.nodes, *still), key=by_name))
        out.append(replace(cap.pool, nodes=merged))
    return tuple(out)


def _usable_gpus(node: Node) -> int | None:
    """All allocatable GPUs of a usable node; 0 for a local node that takes no new replicas; None
    for a burst node (burst capacity is counted from the intents)."""
    if node.taints and any(t.key == TAINT_BURST for t in node.taints):
        return None
    if node.unschedulable or node.gpus <= 0:
        return 0
    ready = False
    for cond in node.conditions:  # one pass: this runs for every node on every tick
        if cond.type == "Ready":
            ready = cond.status == "True"
        elif cond.status == "False" and cond.type in HEALTH_CONDITIONS:
            return 0
    return node.gpus if ready else 0


def workload_owners(models: Sequence[ServedModel]) -> dict[tuple[str, OwnerKind, str], str]:
    """(namespace, controller kind, workload name) → model name, to tell a model's pods."""
    owners: dict[tuple[str, OwnerKind, str], str] = {}
    for served in models:
        wl = served.workload
        kind = OwnerKind.REPLICA_SET if wl.kind == "Deployment" else OwnerKind.STATEFUL_SET
        owners[(wl.namespace, kind, wl.name)] = served.name
    return owners


def model_of(pod: Pod, owners: Mapping[tuple[str, OwnerKind, str], str]) -> str | None:
    """The served model whose workload owns the pod, if any."""
    name = pod.controller_name
    if name is None:
        return None
    kind = pod.controller_kind or OwnerKind.OTHER
    if kind is OwnerKind.REPLICA_SET:
        name = name.rsplit("-", 1)[0]  # ReplicaSet <deployment>-<pod-template-hash>
    return owners.get((pod.namespace, kind, name))


@dataclass(frozen=True, slots=True)
class ReplicaPods:
    """What the pods say about the served models' replicas (one pass over every pod per tick)."""

    pending: Mapping[str, int]  # model → unscheduled replicas (the HPA's pending pods)
    ready: Mapping[str, int] | None  # model → Ready replicas holding GPUs; None: pods not observed
    serving_gpus: Mapping[str, int]  # node → GPUs its Ready replicas hold


def replica_pods(pods: Sequence[Pod] | None, models: Sequence[ServedModel]) -> ReplicaPods:
    """Pending and Ready replicas per model and the GPUs Ready replicas hold per node; a pod being
    deleted counts nowhere."""
    if pods is None:
        return ReplicaPods({}, None, {})
    owners = workload_owners(models)
    pending: dict[str, int] = {}
    ready: dict[str, int] = {m.name: 0 for m in models}
    gpus: dict[str, int] = {}
    for pod in pods:
        if pod.gpus <= 0 or pod.deleting:  # a replica requests GPUs; most pods on a node do not
            continue
        node = pod.node_name
        if node is None:
            if pod.phase == "Pending" and (model := model_of(pod, owners)) is not None:
                pending[model] = pending.get(model, 0) + 1
        elif pod.ready and pod.phase == "Running" and (model := model_of(pod, owners)) is not None:
            ready[model] += 1
            gpus[node] = gpus.get(node, 0) + pod.gpus
    return ReplicaPods(pending, ready, gpus)


def capacity_requests(state: OperatordState) -> tuple[CapacityRequest, ...]:
    """Open replace-before-drain requests from the operatord-state ConfigMap."""
    return tuple(CapacityRequest(r.node, r.gpus, r.reason, r.since) for r in state.capacity_requests)


def demand_history(
    previous: Sequence[DemandSample], now: datetime, demand: float | None
) -> tuple[DemandSample, ...]:
    """The bounded demand history the next tick passes in: the previous samples within 30 minutes
    plus this tick's known demand (unknown ticks add nothing; the windows then see a gap)."""
    window = list(previous[first_since(previous, now - HISTORY_WINDOW) :])
    if demand is not None:
        window.append(DemandSample(now, demand))
    if len(window) > 1 and window[-1].at < window[-2].at:  # previous is this function's sorted output
        window.sort(key=lambda s: s.at)
    return tuple(window)


HISTORY_WINDOW = timedelta(minutes=30)


def burst_activity(intents: Sequence[Intent]) -> tuple[datetime | None, datetime | None]:
    """(last burst launch, last burst release) from the intent records, so cooldowns survive a
    restart without extra state: a launch is an intent's creation, a release is a move to draining
    (or straight to terminating) for scale-in or the spend cap."""
    launched = max((i.created_at for i in intents), default=None)
    released = max(
        (
            t.at
            for i in intents
            for t in i.history
            if t.target in (BurstState.DRAINING, BurstState.TERMINATING) and t.reason in _RELEASE_REASONS
        ),
        default=None,
    )
    return launched, released


_RELEASE_REASONS = frozenset({Reason.SUPPLY_OVER_DEMAND.value, Reason.SPEND_CAP.value})
