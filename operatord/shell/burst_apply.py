"""Shell. Executors for the scaling and burst actions, registered with operatord.shell.apply.

Importing this module registers them (the daemon and the CLI import it where they wire a
CapacityProvider into ApplyContext.capacity). SetReplicas writes the scale subresource;
LaunchBurst and ReleaseBurst go through BurstRunner (write-ahead intents, design §1.5, §1.9).
"""

from __future__ import annotations

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.model import WorkloadKey
from operatord.ports.capacity import CapacityUnreachable
from operatord.shell.apply import ApplyContext, Outcome, executor
from operatord.shell.burst import BurstRunner, ClusterBurstNodes
from operatord.shell.intents import IntentStore
from operatord.vocab import Reason


@executor(SetReplicas)
def set_replicas(action: SetReplicas, ctx: ApplyContext) -> Outcome:
    scale = ctx.cluster.get_scale(WorkloadKey(action.workload_kind, action.namespace, action.name))
    if scale.replicas == action.replicas:
        return Outcome(
            action.key, action.kind, None, "unchanged", action.reason, {"replicas": action.replicas}
        )
    # Compare-and-set on the scale we read: an HPA or a human changing it in between wins (Conflict).
    ctx.cluster.set_scale(scale.workload, action.replicas, resource_version=scale.resource_version or None)
    return Outcome(
        action.key,
        action.kind,
        None,
        "applied",
        action.reason,
        {"model": action.model, "from": scale.replicas, "to": action.replicas},
    )


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
        return Outcome(action.key, action.kind, None, "failed", action.reason, {"error": str(err)})
    last = outcomes[-1] if outcomes else None
    if last is not None and last.kind == "launched":
        return Outcome(
            action.key,
            action.kind,
            None,
            "applied",
            action.reason,
            {"intent": last.intent_id, "instances": list(last.instance_ids), **dict(last.detail)},
        )
    status = "failed" if last is None or last.kind == "launch_failed" else "applied"
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
        return Outcome(action.key, action.kind, None, "failed", action.reason, {"error": str(err)})
    return Outcome(
        action.key,
        action.kind,
        None,
        "applied",
        action.reason,
        {"intent": action.intent_id, "steps": [o.kind for o in done]},
    )
