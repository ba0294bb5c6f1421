"""Pure. Reconcile: bring each intent up to date with what EC2 and Kubernetes show, and find
instances nobody owns (design §1.5, §1.9).

Per intent, `reconcile_intent` returns the intent to persist and the side effects to perform
after persisting it (write-ahead: a crash between the two is repaired by the next reconcile,
because every effect here is idempotent — TerminateInstances and Node deletion are). The shell
performs effects in the order of design §1.9: cordon and delete the Node, then terminate.

`find_orphans` lists tagged instances that no live intent accounts for, older than
`orphan_grace` (or past their `expires-at` tag): the leak-proofing net under everything else
(Karpenter's garbage collection; kubernetes/autoscaler #6810 is the cost of not having it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from operatord.core.burst.intent import AttemptOutcome, InstanceRecord, Intent
from operatord.core.burst.launch import adopt
from operatord.core.burst.lifecycle import BurstState, deadline
from operatord.core.burst.observed import STOPPED_STATES, CloudInstance, NodeView
from operatord.policies.model import Policy
from operatord.vocab import Reason

# Terminal intents are kept this long so today's (and yesterday's) spend can be accounted.
RETENTION = timedelta(hours=48)
# A draining node's serving pods normally leave because replicas went down (their deletion cost is
# lowest); whatever is still there after this long is evicted, so a release whose replicas move to
# local nodes (or an expiry) still ends gracefully instead of at the drain deadline.
EVICT_AFTER = timedelta(minutes=1)

_TIMEOUT_REASON = {
    BurstState.RUNNING: Reason.REGISTER_TIMEOUT,
    BurstState.REGISTERED: Reason.SERVING_TIMEOUT,
    BurstState.GPU_READY: Reason.SERVING_TIMEOUT,
}


@dataclass(frozen=True, slots=True)
class Step:
    """One intent's reconcile result: persist `intent`, then cordon and delete `delete_nodes`,
    then terminate `terminate`; `resume_launch` asks the shell to continue the launch loop."""

    intent: Intent
    terminate: tuple[str, ...] = ()
    delete_nodes: tuple[str, ...] = ()
    resume_launch: bool = False
    evict_nodes: tuple[str, ...] = ()  # draining nodes whose serving pods are evicted (graceful)

    @property
    def changed(self) -> bool:
        return bool(self.terminate or self.delete_nodes or self.resume_launch)


@dataclass(frozen=True, slots=True)
class Orphan:
    instance_id: str
    intent_id: str | None
    reason: Reason
    age: timedelta


def reconcile_intent(
    intent: Intent,
    cloud: Sequence[CloudInstance],
    nodes: Mapping[str, NodeView],
    policy: Policy,
    now: datetime,
) -> Step:
    """Advance `intent` by observation and deadlines. `cloud` is every instance tagged for this
    cluster (any intent); `nodes` maps instance id → its Node."""
    burst = policy.burst
    if burst is None:
        return Step(intent)
    by_id = {c.instance_id: c for c in cloud}
    terminate: list[str] = []
    delete_nodes: list[str] = []
    evict: list[str] = []
    resume = False

    if intent.state in (BurstState.PLANNED, BurstState.REQUESTED):
        due = deadline(
            intent.state,
            requested_at=intent.requested_at,
            state_since=intent.state_since or intent.created_at,
            policy=burst,
        )
        tagged = [
            c
            for c in cloud
            if c.intent_id == intent.id and not c.gone and intent.instance(c.instance_id) is None
        ]
        if intent.open_attempt is not None and tagged:
            # The answer to RunInstances was lost (crash or timeout); the instances exist: adopt them.
            adopted = adopt(intent, tagged, policy, now)
            intent = adopted.intent
            terminate.extend(adopted.terminate)
            resume = adopted.try_next
        elif due is not None and now >= due:
            intent = replace(
                intent.moved(BurstState.LAUNCH_FAILED, now, Reason.LAUNCH_TIMEOUT.value),
                failure=Reason.LAUNCH_TIMEOUT.value,
            )
        else:
            resume = True

    records = list(intent.instances)
    for rec in records:
        if not rec.state.live:
            node = nodes.get(rec.instance_id)
            if node is not None:
                delete_nodes.append(node.name)  # the instance is gone; its Node object must go too
            continue
        before = intent
        intent, kill, drop = _advance(
            intent, rec, by_id.get(rec.instance_id), nodes.get(rec.instance_id), policy, now
        )
        terminate.extend(kill)
        delete_nodes.extend(drop)
        node = nodes.get(rec.instance_id)
        now_rec = intent.instance(rec.instance_id)
        if (
            intent is before
            and now_rec is not None
            and now_rec.state is BurstState.DRAINING
            and node is not None
            and node.serving_pods > 0
            and now - now_rec.state_since >= EVICT_AFTER
        ):
            evict.append(node.name)

    intent, kill, drop = _group_rollback(intent, nodes, now)
    terminate.extend(kill)
    delete_nodes.extend(drop)
    return Step(
        intent,
        tuple(dict.fromkeys(terminate)),
        tuple(dict.fromkeys(delete_nodes)),
        resume,
        tuple(dict.fromkeys(evict)),
    )


def _advance(
    intent: Intent,
    rec: InstanceRecord,
    cloud: CloudInstance | None,
    node: NodeView | None,
    policy: Policy,
    now: datetime,
) -> tuple[Intent, list[str], list[str]]:
    burst = policy.burst
    assert burst is not None
    iid = rec.instance_id
    state = rec.state
    leaving = state in (BurstState.TERMINATING, BurstState.TERMINATE_FAILED)
    vanished = cloud is None and now - rec.launched_at >= burst.timeouts.launch
    if (cloud is not None and cloud.gone) or vanished:
        # Asked for (terminating): the reason it was terminated; otherwise it was lost under us.
        why = _reason_into(intent, iid, BurstState.TERMINATING) if leaving else Reason.NODE_LOST.value
        intent = intent.instance_moved(iid, BurstState.TERMINATED, now, why)
        return intent, [], [node.name] if node is not None else []
    if cloud is not None and cloud.state in STOPPED_STATES and not leaving:
        # Stopped by a person or by AWS: it serves nothing and its Node is NotReady; finish it.
        intent = intent.instance_moved(iid, BurstState.TERMINATING, now, Reason.NODE_LOST.value)
        return intent, [iid], [node.name] if node is not None else []

    if state in (BurstState.TERMINATING, BurstState.TERMINATE_FAILED):
        if state is BurstState.TERMINATE_FAILED:
            intent = intent.instance_moved(
                iid, BurstState.TERMINATING, now, _reason_into(intent, iid, BurstState.TERMINATING)
            )
        else:
            due = deadline(state, requested_at=None, state_since=rec.state_since, policy=burst)
            if due is not None and now >= due:
                intent = intent.instance_moved(
                    iid, BurstState.TERMINATE_FAILED, now, Reason.TERMINATE_TIMEOUT.value
                )
        return intent, [iid], [node.name] if node is not None else []

    if state.booting:
        target = _observed_boot_state(state, node)
        if target is not state:
            intent = intent.instance_moved(iid, target, now, "observed", node=node.name if node else None)
            state = target
    current = intent.instance(iid)
    assert current is not None
    expired = now >= intent.expires_at
    if state.booting:
        due = deadline(
            state,
            requested_at=intent.requested_at or rec.launched_at,
            state_since=current.state_since,
            policy=burst,
        )
        cause = (
            Reason.INSTANCE_EXPIRED if expired else (_TIMEOUT_REASON[state] if due and now >= due else None)
        )
        if cause is not None:
            intent = intent.instance_moved(iid, BurstState.TERMINATING, now, cause.value)
            return intent, [iid], [node.name] if node is not None else []
        return intent, [], []
    if state is BurstState.SERVING:
        if expired:
            intent = intent.instance_moved(iid, BurstState.DRAINING, now, Reason.INSTANCE_EXPIRED.value)
        elif node is None:
            # Its Node object was deleted (by a person, or the node lifecycle controller): the
            # capacity is gone although EC2 still runs it; stop paying for it.
            intent = intent.instance_moved(iid, BurstState.DRAINING, now, Reason.NODE_LOST.value)
        return intent, [], []
    if state is BurstState.DRAINING:
        due = deadline(state, requested_at=None, state_since=current.state_since, policy=burst)
        if node is None or node.serving_pods == 0:
            # Its pods are gone: finish for the reason the drain started (scale-in, expiry, spend cap).
            why = _reason_into(intent, iid, BurstState.DRAINING)
            intent = intent.instance_moved(iid, BurstState.TERMINATING, now, why)
        elif due is not None and now >= due:
            intent = intent.instance_moved(iid, BurstState.TERMINATING, now, Reason.DRAIN_TIMEOUT.value)
        else:
            return intent, [], []
        return intent, [iid], [node.name] if node is not None else []
    return intent, [], []


def _reason_into(intent: Intent, instance_id: str, state: BurstState) -> str:
    """The reason of the latest transition of `instance_id` into `state` (the stable reason a
    multi-step exit carries through to its end)."""
    for t in reversed(intent.history):
        if t.subject == instance_id and t.target is state:
            return t.reason
    return intent.reason


def _observed_boot_state(state: BurstState, node: NodeView | None) -> BurstState:
    if node is None:
        return state
    seen = BurstState.REGISTERED
    if node.ready and node.gpus_allocatable > 0:
        seen = BurstState.GPU_READY
        if node.serving_pods > 0 and node.stack_consistent:
            seen = BurstState.SERVING  # a skewed stack never serves: it times out and is replaced
    order = [BurstState.RUNNING, BurstState.REGISTERED, BurstState.GPU_READY, BurstState.SERVING]
    return seen if order.index(seen) > order.index(state) else state


def _group_rollback(
    intent: Intent, nodes: Mapping[str, NodeView], now: datetime
) -> tuple[Intent, list[str], list[str]]:
    """A multi-node replica is all-or-nothing: once one node of a group that never served is lost or
    doomed, the others are terminated; a serving group that lost a node is drained."""
    if len(intent.instances) < 2 or intent.state is not BurstState.RUNNING:
        return intent, [], []
    winner = next((a.number for a in reversed(intent.attempts) if a.outcome is AttemptOutcome.LAUNCHED), None)
    launched = [i for i in intent.instances if i.attempt == winner]
    if len(launched) < 2:
        return intent, [], []
    broken = any(
        i.state in (BurstState.TERMINATING, BurstState.TERMINATED, BurstState.TERMINATE_FAILED)
        for i in launched
    )
    if not broken:
        return intent, [], []
    kill: list[str] = []
    drop: list[str] = []
    for rec in launched:
        node = nodes.get(rec.instance_id)
        if rec.state.booting:
            intent = intent.instance_moved(
                rec.instance_id, BurstState.TERMINATING, now, Reason.PARTIAL_LAUNCH.value
            )
            kill.append(rec.instance_id)
            if node is not None:
                drop.append(node.name)
        elif rec.state is BurstState.SERVING:
            intent = intent.instance_moved(
                rec.instance_id, BurstState.DRAINING, now, Reason.PARTIAL_LAUNCH.value
            )
    return intent, kill, drop


def find_orphans(
    intents: Sequence[Intent], cloud: Sequence[CloudInstance], policy: Policy, now: datetime
) -> tuple[Orphan, ...]:
    """Tagged, not-yet-terminated instances that no live intent record accounts for, older than the
    grace period or past their expires-at tag. Instances of an intent with an open attempt are not
    orphans (reconcile adopts them)."""
    burst = policy.burst
    if burst is None:
        return ()
    live_records = {r.instance_id for i in intents for r in i.instances if r.state.live}
    open_intents = {i.id for i in intents if i.open_attempt is not None}
    out: list[Orphan] = []
    for c in sorted(cloud, key=lambda c: c.instance_id):
        if c.gone or c.instance_id in live_records or c.intent_id in open_intents:
            continue
        age = now - c.launched_at
        expired = c.expires_at is not None and now >= c.expires_at
        if expired:
            out.append(Orphan(c.instance_id, c.intent_id, Reason.INSTANCE_EXPIRED, age))
        elif age >= burst.orphan_grace:
            out.append(Orphan(c.instance_id, c.intent_id, Reason.ORPHAN_INSTANCE, age))
    return tuple(out)


def collectable(intent: Intent, now: datetime) -> bool:
    """A finished intent whose record is no longer needed (spend accounting keeps it 48 h)."""
    if intent.live:
        return False
    last = max((t.at for t in intent.history), default=intent.created_at)
    return now - last >= RETENTION
