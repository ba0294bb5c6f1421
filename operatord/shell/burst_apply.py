"""Shell. Executors for the scaling and burst actions, registered with operatord.shell.apply.

Importing this module registers them (the daemon and the CLI import it where they wire a
CapacityProvider into ApplyContext.capacity). SetReplicas writes the scale subresource;
LaunchBurst and ReleaseBurst go through BurstRunner (write-ahead intents, design §1.5, §1.9).

Each one that changes something writes one Event naming its runbook: a scaling Event on the
workload (`kubectl describe deployment` shows why its replicas moved), a burst Event on the
intent's ConfigMap while it exists, else on operatord-state (a launch refused before any intent
was written). A launch that failed warns the same way, with the reason it failed.
"""

from __future__ import annotations

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.model import ObjectRef, WorkloadKey
from operatord.ports.capacity import CapacityUnreachable
from operatord.ports.cluster import NotFound
from operatord.shell.apply import ApplyContext, Outcome, emit_event, executor, state_ref
from operatord.shell.burst import BurstRunner, ClusterBurstNodes
from operatord.shell.intents import IntentStore, name_of
from operatord.vocab import FaultClass, Reason

RUNBOOK_REASONS = frozenset({r.value for r in Reason} | {c.value for c in FaultClass})
# Burst work that is the plan going as intended; any other reason (a timeout, a lost node, an
# expired or orphaned instance) is something on-call may want to look at, so its Event warns.
ROUTINE_REASONS = frozenset(
    r.value
    for r in (
        Reason.DEMAND_OVER_SUPPLY,
        Reason.SUPPLY_OVER_DEMAND,
        Reason.CAPACITY_REQUEST,
        Reason.HUMAN_REQUEST,
    )
)


@executor(SetReplicas)
def set_replicas(action: SetReplicas, ctx: ApplyContext) -> Outcome:
    scale = ctx.cluster.get_scale(WorkloadKey(action.workload_kind, action.namespace, action.name))
    if scale.replicas == action.replicas:
        return Outcome(
            action.key, action.kind, None, "unchanged", action.reason, {"replicas": action.replicas}
        )
    # Compare-and-set on the scale we read: an HPA or a human changing it in between wins (Conflict).
    ctx.cluster.set_scale(scale.workload, action.replicas, resource_version=scale.resource_version or None)
    emit_event(
        ctx,
        scale.workload.ref,
        action.reason,
        f"operatord scaled {action.model} from {scale.replicas} to {action.replicas} replicas",
        warning=False,
        action="SetReplicas",
    )
    return Outcome(
        action.key,
        action.kind,
        None,
        "applied",
        action.reason,
        {"model": action.model, "from": scale.replicas, "to": action.replicas},
    )


def burst_ref(ctx: ApplyContext, intent_id: str | None) -> ObjectRef:
    """The intent's ConfigMap while it exists (a finished intent is deleted), else operatord-state."""
    if intent_id is not None:
        name = name_of(intent_id)
        try:
            ctx.cluster.get_configmap(ctx.namespace, name)
        except NotFound:
            pass
        else:
            return ObjectRef("ConfigMap", name, ctx.namespace)
    return state_ref(ctx)


def event_reason(found: str, fallback: str) -> str:
    """`found` when it names a runbook (a burst outcome's reason may be an AWS error code), else `fallback`."""
    return found if found in RUNBOOK_REASONS else fallback


def _runner(ctx: ApplyContext) -> BurstRunner | None:
    if ctx.capacity is None or ctx.policy.burst is None:
        return None
    return BurstRunner(
        store=IntentStore(ctx.cluster, ctx.namespace, ctx.policy.cluster),
        capacity=ctx.capacity,
        policy=ctx.policy,
        clock=ctx.clock,
        nodes=ClusterBurstNodes(ctx.cluster),
    )


@executor(LaunchBurst)
def launch_burst(action: LaunchBurst, ctx: ApplyContext) -> Outcome:
    runner = _runner(ctx)
    if runner is None:
        return Outcome(
            action.key, action.kind, None, "refused", action.reason, {"why": "no burst capacity provider"}
        )
    try:
        outcomes = runner.launch(
            replicas=action.replicas, model=action.model, reason=action.reason, seq=action.key
        )
    except CapacityUnreachable as err:
        emit_event(
            ctx,
            state_ref(ctx),
            action.reason,
            f"burst launch for {action.model or 'burst'} failed: cloud unreachable: {err}",
            action="LaunchBurst",
        )
        return Outcome(action.key, action.kind, None, "failed", action.reason, {"error": str(err)})
    last = outcomes[-1] if outcomes else None
    if last is not None and last.kind == "launched":
        emit_event(
            ctx,
            burst_ref(ctx, last.intent_id),
            action.reason,
            f"launched {len(last.instance_ids)} burst instance(s) for {action.replicas} replica(s) of "
            f"{action.model or 'burst'}: {', '.join(last.instance_ids)} ({last.detail.get('instance_type')}, "
            f"{last.detail.get('availability_zone')})",
            warning=False,
            action="LaunchBurst",
        )
        return Outcome(
            action.key,
            action.kind,
            None,
            "applied",
            action.reason,
            {"intent": last.intent_id, "instances": list(last.instance_ids), **dict(last.detail)},
        )
    status = "failed" if last is None or last.kind == "launch_failed" else "applied"
    emit_event(
        ctx,
        burst_ref(ctx, last.intent_id if last else None),
        event_reason(last.reason, action.reason) if last else action.reason,
        f"burst launch for {action.replicas} replica(s) of {action.model or 'burst'}: "
        + (f"{last.kind} ({last.reason})" if last else "nothing happened"),
        action="LaunchBurst",
    )
    return Outcome(
        action.key,
        action.kind,
        None,
        status,
        action.reason,
        {
            "outcome": last.kind if last else "none",
            "why": last.reason if last else "",
            "intent": last.intent_id if last else None,
        },
    )


@executor(ReleaseBurst)
def release_burst(action: ReleaseBurst, ctx: ApplyContext) -> Outcome:
    runner = _runner(ctx)
    if runner is None:
        return Outcome(
            action.key, action.kind, None, "refused", action.reason, {"why": "no burst capacity provider"}
        )
    reason = Reason(action.reason)
    done = []
    try:
        for iid in action.instance_ids:
            done.extend(runner.release(action.intent_id, iid, reason))
    except CapacityUnreachable as err:
        emit_event(
            ctx,
            burst_ref(ctx, action.intent_id),
            action.reason,
            f"burst release of {', '.join(action.instance_ids)} failed: cloud unreachable: {err}",
            action="ReleaseBurst",
        )
        return Outcome(action.key, action.kind, None, "failed", action.reason, {"error": str(err)})
    steps = [o.kind for o in done]
    if all(o.kind == "skipped" for o in done):  # already leaving, or no longer live: nothing changed
        return Outcome(
            action.key,
            action.kind,
            None,
            "unchanged",
            action.reason,
            {"intent": action.intent_id, "steps": steps},
        )
    emit_event(
        ctx,
        burst_ref(ctx, action.intent_id),
        action.reason,
        f"releasing burst group of {action.model or 'burst'} ({action.replicas} replica(s)): "
        + ", ".join(f"{i} {o.kind}" for o in done for i in o.instance_ids),
        warning=False,
        action="ReleaseBurst",
    )
    return Outcome(
        action.key,
        action.kind,
        None,
        "applied",
        action.reason,
        {"intent": action.intent_id, "steps": steps},
    )
