"""Shell. Executor for decide()'s ReconcileBurst, registered with operatord.shell.apply on import.

The plan says *that* reconcile has work (and what it saw); the executor runs BurstRunner.reconcile,
which re-reads intents, the cloud and the burst nodes and re-derives every step with the same
pure core (core.burst.reconcile), write-ahead, before any EC2 call. A stale plan therefore never
terminates more than the core decides from fresh reads.
"""

from __future__ import annotations

from operatord.core.decide import ReconcileBurst
from operatord.ports.capacity import CapacityUnreachable
from operatord.shell.apply import ApplyContext, Outcome, executor
from operatord.shell.burst import BurstRunner, ClusterBurstNodes
from operatord.shell.intents import IntentStore


@executor(ReconcileBurst)
def reconcile_burst(action: ReconcileBurst, ctx: ApplyContext) -> Outcome:
    if ctx.capacity is None or ctx.policy.burst is None:
        return Outcome(
            action.key, action.kind, None, "refused", action.reason, {"why": "no burst capacity provider"}
        )
    runner = BurstRunner(
        store=IntentStore(ctx.cluster, ctx.namespace, ctx.policy.cluster),
        capacity=ctx.capacity,
        policy=ctx.policy,
        clock=ctx.clock,
        nodes=ClusterBurstNodes(ctx.cluster),
    )
    try:
        steps = runner.reconcile()
    except CapacityUnreachable as err:
        return Outcome(action.key, action.kind, None, "failed", action.reason, {"error": str(err)})
    failed = [o for o in steps if o.kind in ("launch_failed", "unreadable_intent")]
    return Outcome(
        action.key,
        action.kind,
        None,
        "failed" if failed and len(failed) == len(steps) else "applied",
        action.reason,
        {
            "steps": [o.kind for o in steps],
            "terminated": sorted({i for o in steps if "terminated" in o.kind for i in o.instance_ids}),
        },
    )
