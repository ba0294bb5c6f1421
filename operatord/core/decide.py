"""Pure. decide(snapshot, policy, now) -> Plan: the one composition of every decision (design §3.1).

The daemon's tick, `operatord plan` and the simulator call this function and nothing else, so
what on-call sees in `plan` is what the loop does and what the simulator measured. In order:

1. **Demand in GPUs** for remediation's capacity check: each served model's weighted demand at
   its first profile, when every model's demand is known (else unknown: the guards alone protect
   capacity, as remediation documents).
2. **Remediation** (core.remediation.plan_remediation): cordon → drain → hand off, inside the
   guards; then **fleet version skew** (core.fleet.plan_fleet): stack conditions, and skew
   cordons where the policy asks for them (not on a node remediation acts on this tick).
3. **Scaling and burst** (core.scaling.plan_scaling) over inputs built from the snapshot. Open
   capacity requests *and the ones remediation asks for in this very plan* count as demand, so
   a replacement is launched in the same tick that asks for it. Unknown metrics give no
   metric-driven action and no scale-in (plan_scaling's rule); a model whose replica count could
   not be read is treated as unknown too (no SetReplicas from a guessed current value).
4. **Burst reconcile** (core.burst.reconcile): when any intent would advance, any instance would
   be terminated, or an orphan collected, one `ReconcileBurst` action (its executor re-derives
   the same steps from fresh reads, write-ahead, before touching EC2). Needs the cloud listing
   and the pods (serving pods decide when a draining burst node is empty); without them: a hold.
5. **Conflicts.** One disruptive kind per tick: a drain (new or resumed) holds every scale-in
   (burst release and replica decrease) — capacity is leaving already, and evicted pods need
   somewhere to land. Pause holds every scaling, burst and reconcile write (remediation already
   holds its own). The plan's order is stable: remediation (records, cordons, capacity requests,
   drains, hand-offs, uncordons), then fleet, then reconcile, then scaling (releases, replica changes,
   launches) — each part in its own deterministic order.

Equal inputs give an equal Plan; nothing here reads a clock, logs or performs I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import ClassVar

from operatord.core.burst.actions import ReleaseBurst, SetReplicas
from operatord.core.burst.observed import NodeView as BurstNodeView
from operatord.core.burst.reconcile import collectable, find_orphans, reconcile_intent
from operatord.core.fleet import check_fleet, skew_cordons, stack_conditions, stack_consistent
from operatord.core.memo import Memo
from operatord.core.metrics import Known, demand_tokens_per_s
from operatord.core.model import Node, Pod
from operatord.core.plan import Action, Cordon, Drain, Hold, Plan, RequestCapacity, action_key, detail
from operatord.core.remediation import plan_remediation
from operatord.core.scaling import (
    CapacityRequest,
    ModelDecision,
    ModelSignals,
    ScalingInputs,
    ScalingPlan,
    plan_scaling,
    replicas_for,
)
from operatord.core.scaling_inputs import (
    burst_activity,
    capacity_requests,
    local_pools,
    model_signals,
    replica_pods,
    usable_capacity,
)
from operatord.core.snapshot import CloudView, Snapshot
from operatord.policies.model import Policy
from operatord.vocab import LABEL_INSTANCE_ID, Mode, Reason

_REASONS = frozenset(r.value for r in Reason)

__all__ = ["Decision", "ReconcileBurst", "decide", "decide_detailed", "is_scale_in"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileBurst(Action):
    """Bring burst intents up to date with EC2 and Kubernetes, terminate what must go, collect
    orphans (design §1.5). The listed ids are what the plan saw; the executor re-derives the steps
    from fresh reads, so a stale plan can never terminate more than the core would now."""

    intents: tuple[str, ...]
    terminate: tuple[str, ...]
    orphans: tuple[str, ...]

    min_mode: ClassVar[Mode] = Mode.FULL
    kind: ClassVar[str] = "reconcile_burst"


@dataclass(frozen=True, slots=True)
class Decision:
    """decide()'s plan with the numbers behind it (shown by `operatord plan`, kept by the simulator)."""

    plan: Plan
    models: tuple[ModelDecision, ...] = ()
    demand_gpus: float | None = None


def decide(snap: Snapshot, policy: Policy, now: datetime, memo: Memo | None = None) -> Plan:
    """This tick's whole plan: remediation, reconcile and scaling, conflicts resolved, stable order."""
    return decide_detailed(snap, policy, now, memo).plan


def decide_detailed(snap: Snapshot, policy: Policy, now: datetime, memo: Memo | None = None) -> Decision:
    """decide(), with the per-model scaling decisions and the demand in GPUs it used.

    `memo` (core.memo) lets a loop reuse the parts that depend on the nodes and the policy alone
    while they are the same objects as last tick; the plan is the same with or without it."""
    memo = memo if memo is not None else Memo()
    demand_gpus = snap.demand_gpus if snap.demand_gpus is not None else _demand_gpus(snap, policy)
    remediation_snap = snap if snap.demand_gpus == demand_gpus else _with_demand(snap, demand_gpus)
    remediation = plan_remediation(remediation_snap, policy, now, memo)
    fleet = _fleet(snap, policy, remediation, memo)

    scaling = plan_scaling(_scaling_inputs(snap, policy, remediation, memo), policy, now)
    scaling_plan, unknown_holds = _without_unknown_workloads(scaling, snap, policy)
    reconcile = _reconcile(snap, policy, now, memo)

    actions: list[Action] = [*remediation.actions, *fleet.actions]
    holds: list[Hold] = [*remediation.holds, *fleet.holds]
    later = [*reconcile.actions, *scaling_plan.actions]
    holds.extend(reconcile.holds)
    holds.extend(scaling_plan.holds)
    holds.extend(unknown_holds)

    if snap.state.pause is not None:
        for a in later:
            holds.append(Hold(Reason.PAUSED.value, a.node, detail(wanted=a.reason, key=a.key), a.kind))
        later = []

    draining = sorted(a.node or "" for a in remediation.actions if isinstance(a, Drain))
    if draining:
        kept: list[Action] = []
        for a in later:
            if is_scale_in(a):
                holds.append(
                    Hold(
                        Reason.MIN_HEALTHY_CAPACITY.value,
                        a.node,
                        detail(wanted=a.reason, draining=",".join(draining), note="a drain runs this tick"),
                        a.kind,
                    )
                )
            else:
                kept.append(a)
        later = kept

    plan = Plan(tuple(actions), tuple(holds)) + Plan(tuple(later))
    return Decision(plan, scaling.models, demand_gpus)


def is_scale_in(action: Action) -> bool:
    """Actions that take serving capacity away (the disruptive kind a drain excludes)."""
    if isinstance(action, ReleaseBurst):
        return True
    return isinstance(action, SetReplicas) and action.replicas < action.previous


def _fleet(snap: Snapshot, policy: Policy, remediation: Plan, memo: Memo) -> Plan:
    """Stack-consistency conditions and (policy permitting) skew cordons; a node remediation
    already cordons or drains this tick is left to remediation (one owner per node per tick)."""
    nodes = snap.nodes
    report = memo.reuse("fleet.report", (nodes, policy), lambda: check_fleet(nodes, policy))
    named = memo.reuse("nodes.named", (nodes,), lambda: MappingProxyType({n.name: n for n in nodes}))
    conditions = memo.reuse("fleet.conditions", (report, named), lambda: stack_conditions(report, named))
    cordons = skew_cordons(report, named, policy, snap.state)
    plan = Plan(conditions + cordons.actions, cordons.holds)
    taken = {a.node for a in remediation.actions if isinstance(a, Cordon | Drain)}
    if not taken:
        return plan
    kept = tuple(a for a in plan.actions if not (isinstance(a, Cordon) and a.node in taken))
    return Plan(kept, plan.holds)


# -- demand ----------------------------------------------------------------------------------------


def _demand_gpus(snap: Snapshot, policy: Policy) -> float | None:
    """GPUs serving demand needs now; None unless every model's demand is known."""
    metrics = snap.metrics
    if metrics is None or metrics.outage is not None:
        return None
    target = policy.scaling.target_utilization
    total = 0.0
    for served in policy.serving.models:
        m = metrics.models.get(served.name)
        if m is None:
            return None
        reading = demand_tokens_per_s(m, policy.serving.demand_weights)
        if not isinstance(reading, Known):
            return None
        profile = served.profiles[0]
        total += replicas_for(reading.value, profile, target) * profile.gpus_per_replica
    return total


def _with_demand(snap: Snapshot, demand_gpus: float | None) -> Snapshot:
    return replace(snap, demand_gpus=demand_gpus)


# -- scaling inputs --------------------------------------------------------------------------------


def _scaling_inputs(snap: Snapshot, policy: Policy, remediation: Plan, memo: Memo) -> ScalingInputs:
    cloud = snap.cloud or CloudView()
    nodes = snap.nodes
    usable = memo.reuse("scaling.usable", (nodes, policy), lambda: usable_capacity(nodes, policy))
    pods = snap.pods
    replicas_seen = memo.reuse(
        "scaling.replica_pods", (pods, policy), lambda: replica_pods(pods, policy.serving.models)
    )
    pending, ready = replicas_seen.pending, replicas_seen.ready
    models = []
    for served in policy.serving.models:
        replicas = snap.replicas.get(served.name)
        history = snap.demand_history.get(served.name, ())
        if snap.metrics is None or replicas is None:
            models.append(
                ModelSignals(
                    served.name,
                    None,
                    history=history,
                    replicas=replicas or 0,
                    pending_replicas=pending.get(served.name, 0),
                    ready_replicas=ready.get(served.name) if ready is not None else None,
                )
            )
            continue
        models.append(
            model_signals(
                snap.metrics,
                served,
                policy,
                replicas=replicas,
                pending_replicas=pending.get(served.name, 0),
                ready_replicas=ready.get(served.name) if ready is not None else None,
                history=history,
            )
        )
    requests = list(capacity_requests(snap.state))
    asked = {r.node for r in requests}
    for a in remediation.actions_of(RequestCapacity):
        if a.node is not None and a.node not in asked:
            requests.append(CapacityRequest(a.node, a.gpus, str(a.detail.get("fault") or a.reason), a.since))
    launched, released = burst_activity(cloud.intents)
    observed_at = snap.metrics.observed_at if snap.metrics is not None else snap.observed_at
    return ScalingInputs(
        observed_at=observed_at,
        models=tuple(models),
        local_pools=local_pools(snap.nodes, policy, replicas_seen.serving_gpus, usable),
        intents=cloud.intents,
        capacity_requests=tuple(requests),
        last_scale_out_at=_latest(snap.last_scale_out_at, launched),
        last_scale_in_at=_latest(snap.last_scale_in_at, released),
        vcpu_quota=cloud.vcpu_quota,
        tick=snap.tick,
    )


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _without_unknown_workloads(
    scaling: ScalingPlan, snap: Snapshot, policy: Policy
) -> tuple[Plan, list[Hold]]:
    """Drop SetReplicas for models whose current replicas were not read (never act on a guess)."""
    unknown = {m.name for m in policy.serving.models if m.name not in snap.replicas}
    if not unknown:
        return scaling.to_plan(), []
    kept = tuple(a for a in scaling.actions if not (isinstance(a, SetReplicas) and a.model in unknown))
    owned = {m.name for m in policy.serving.models if m.replica_owner == "operatord"}
    holds = [
        Hold(Reason.METRICS_UNKNOWN.value, None, detail(model=name, note="replicas not read"), "set_replicas")
        for name in sorted(unknown & owned)
    ]
    # Scaling saw these models as unknown too; one hold per model, the one that says why, is enough.
    said = tuple(
        h
        for h in scaling.holds
        if not (
            h.reason == Reason.METRICS_UNKNOWN.value
            and h.blocked == SetReplicas.kind
            and h.detail.get("model") in unknown & owned
        )
    )
    return Plan(kept, said), holds


# -- burst reconcile -------------------------------------------------------------------------------


def _reconcile(snap: Snapshot, policy: Policy, now: datetime, memo: Memo) -> Plan:
    burst = policy.burst
    if burst is None or snap.cloud is None:
        return Plan()
    cloud = snap.cloud
    if not cloud.intents and not cloud.instances:
        return Plan()
    if cloud.instances is None or snap.pods is None:
        missing = "cloud instances" if cloud.instances is None else "pods"
        return Plan.hold(
            Reason.STALE_SNAPSHOT.value, blocked=ReconcileBurst.kind, note=f"{missing} not observed"
        )
    pods = snap.pods
    nodes = memo.reuse("burst.nodes", (snap.nodes, pods), lambda: burst_nodes(snap.nodes, pods))
    changed: list[str] = []
    terminate: list[str] = []
    reasons: list[str] = []
    for intent in cloud.intents:
        step = reconcile_intent(intent, cloud.instances, nodes, policy, now)
        if step.intent != intent or step.changed or step.evict_nodes or collectable(step.intent, now):
            changed.append(intent.id)
            terminate.extend(step.terminate)
            new = step.intent.history[len(intent.history) :]
            reasons.extend(t.reason for t in new if t.reason in _REASONS)
            reasons.append(intent.reason)
    found = find_orphans(cloud.intents, cloud.instances, policy, now)
    orphans = [o.instance_id for o in found]
    if not changed and not orphans:
        return Plan()
    # The Event reason / runbook: what matters most: a named transition, an orphan, else the intent's own.
    named = [r for r in reasons if r in _REASONS]
    reason = named[0] if named and terminate else found[0].reason.value if found else named[0]
    action = ReconcileBurst(
        key=action_key("reconcile_burst", now.isoformat(), *changed, *orphans),
        reason=reason,
        detail=detail(intents=len(changed), terminate=len(terminate), orphans=len(orphans)),
        intents=tuple(changed),
        terminate=tuple(sorted(terminate)),
        orphans=tuple(orphans),
    )
    return Plan.of(action)


def burst_nodes(nodes: Sequence[Node], pods: Sequence[Pod]) -> Mapping[str, BurstNodeView]:
    """Burst nodes (label operatord.io/instance-id) by instance id, with their Ready serving pods,
    in one pass over the pods (the shell's ClusterBurstNodes computes the same from the API)."""
    by_name = {n.name: n for n in nodes if n.labels.get(LABEL_INSTANCE_ID)}
    if not by_name:
        return {}
    serving: Counter[str] = Counter()
    for p in pods:
        if p.node_name in by_name and p.gpus > 0 and p.ready and not p.deleting and p.phase == "Running":
            serving[p.node_name] += 1
    return {
        n.labels[LABEL_INSTANCE_ID]: BurstNodeView(
            n.name,
            n.labels[LABEL_INSTANCE_ID],
            n.ready,
            n.gpus,
            serving[n.name],
            n.unschedulable,
            stack_consistent(n),
        )
        for n in by_name.values()
    }
