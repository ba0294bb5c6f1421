"""Pure. Builds the scaling decision's narrow inputs from the shared value types: metrics
(operatord.core.metrics), cluster nodes (operatord.core.model) and the state ConfigMap's capacity
requests (operatord.core.state). The decision itself (operatord.core.scaling) depends on none of
them, so it stays testable with four small dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from operatord.core.burst.intent import Intent
from operatord.core.burst.lifecycle import BurstState
from operatord.core.metrics import Known, MetricsSnapshot, demand_tokens_per_s
from operatord.core.model import Node
from operatord.core.nodes import by_name, selects
from operatord.core.scaling import CapacityRequest, DemandSample, LocalNode, LocalPool, ModelSignals
from operatord.core.state import OperatordState
from operatord.policies.model import Policy, ServedModel
from operatord.vocab import CONDITION_GPU_HEALTHY, CONDITION_NCCL_HEALTHY, TAINT_BURST, Reason


def model_signals(
    snap: MetricsSnapshot,
    served: ServedModel,
    policy: Policy,
    *,
    replicas: int,
    pending_replicas: int = 0,
    history: Sequence[DemandSample] = (),
) -> ModelSignals:
    """One model's signals; anything the snapshot does not know stays None (never 0)."""
    metrics = snap.models.get(served.name)
    if metrics is None or snap.outage is not None:
        return ModelSignals(
            served.name, None, history=tuple(history), replicas=replicas, pending_replicas=pending_replicas
        )
    demand = demand_tokens_per_s(metrics, policy.serving.demand_weights)
    waiting = metrics.requests_waiting
    kv = metrics.kv_cache_usage
    return ModelSignals(
        served.name,
        demand.value if isinstance(demand, Known) else None,
        queue_depth=waiting.value if isinstance(waiting, Known) else None,
        kv_cache_usage=kv.value if isinstance(kv, Known) else None,
        history=tuple(history),
        replicas=replicas,
        pending_replicas=pending_replicas,
    )


def local_pools(nodes: Sequence[Node], policy: Policy) -> tuple[LocalPool, ...]:
    """Healthy schedulable GPUs per node of every local pool: Ready, not cordoned, not a burst node,
    GPUHealthy/NCCLHealthy not False (an unhealthy node's GPUs are not capacity)."""
    out: list[LocalPool] = []
    usable = sorted((n for n in nodes if _usable(n)), key=by_name)
    for pool in policy.pools:
        if pool.kind != "local":
            continue
        member = selects(pool.selector)
        members = tuple(LocalNode(n.name, n.gpus) for n in usable if member(n))
        out.append(LocalPool(pool.name, pool.gpu_type, pool.gpus_per_node, members))
    return tuple(out)


def _usable(node: Node) -> bool:
    if node.unschedulable or node.gpus <= 0:
        return False
    ready = False
    for cond in node.conditions:  # one pass: this runs for every node on every tick
        if cond.type == "Ready":
            ready = cond.status == "True"
        elif cond.status == "False" and cond.type in _HEALTH_CONDITIONS:
            return False
    return ready and not any(t.key == TAINT_BURST for t in node.taints)


_HEALTH_CONDITIONS = frozenset({CONDITION_GPU_HEALTHY, CONDITION_NCCL_HEALTHY})


def capacity_requests(state: OperatordState) -> tuple[CapacityRequest, ...]:
    """Open replace-before-drain requests from the operatord-state ConfigMap."""
    return tuple(CapacityRequest(r.node, r.gpus, r.reason, r.since) for r in state.capacity_requests)


def demand_history(
    previous: Sequence[DemandSample], now: datetime, signals: ModelSignals
) -> tuple[DemandSample, ...]:
    """The bounded demand history the next tick passes in: the previous samples within 30 minutes
    plus this tick's known demand (unknown ticks add nothing; the windows then see a gap)."""
    window = [s for s in previous if (now - s.at).total_seconds() <= 1800]
    if signals.tokens_per_s is not None:
        window.append(DemandSample(now, signals.tokens_per_s))
    return tuple(sorted(window, key=lambda s: s.at))


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
