"""Shell. Executor for decide()'s ReconcileBurst, registered with operatord.shell.apply on import.

The plan says *that* reconcile has work (and what it saw); the executor runs BurstRunner.reconcile,
which re-reads intents, the cloud and the burst nodes and re-derives every step with the same
pure core (core.burst.reconcile), write-ahead, before any EC2 call. A stale plan therefore never
terminates more than the core decides from fresh reads.

One Event per reconcile, naming the runbook of the plan's reason: on the intent's ConfigMap when
the pass concerned one intent that still exists, else on operatord-state (several intents, or an
orphan with none). It warns when a step failed or the reason is not routine scaling (a timeout,
a lost node, an expired or orphaned instance).
"""

from __future__ import annotations

from collections import Counter

from operatord.core.decide import ReconcileBurst
from operatord.ports.capacity import CapacityUnreachable
from operatord.shell.apply import ApplyContext, Outcome, emit_event, executor, state_ref
from operatord.shell.burst import BurstRunner, ClusterBurstNodes
from operatord.shell.burst_apply import ROUTINE_REASONS, burst_ref
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
        emit_event(
            ctx,
            state_ref(ctx),
            action.reason,
            f"burst reconcile failed: cloud unreachable: {err}",
            action="ReconcileBurst",
        )
        return Outcome(action.key, action.kind, None, "failed", action.reason, {"error": str(err)})
    failed = [o for o in steps if o.kind in ("launch_failed", "unreadable_intent")]
    terminated = sorted({i for o in steps if "terminated" in o.kind for i in o.instance_ids})
    intents = {o.intent_id for o in steps} | set(action.intents)
    one = next(iter(intents)) if len(intents) == 1 else None
    done = [f"{n} {kind}" for kind, n in Counter(o.kind for o in steps if "terminated" not in o.kind).items()]
    if terminated:
        done.append(f"terminated {', '.join(terminated)}")
    if not done:  # only state advances (booting → registered → serving): written to the intents
        done.append(f"intent(s) {', '.join(sorted(action.intents))} updated")
    emit_event(
        ctx,
        burst_ref(ctx, one),
        action.reason,
        f"burst reconcile: {'; '.join(done)}",
        warning=bool(failed) or action.reason not in ROUTINE_REASONS,
        action="ReconcileBurst",
    )
    return Outcome(
        action.key,
        action.kind,
        None,
        "failed" if failed and len(failed) == len(steps) else "applied",
        action.reason,
        {"steps": [o.kind for o in steps], "terminated": terminated},
    )
