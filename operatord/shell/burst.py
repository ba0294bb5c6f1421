"""Shell. Carries out burst decisions: the launch loop, reconcile, release and terminate.

Order of every step is write-ahead (design §1.5): the intent is persisted (compare-and-set)
before the cloud is called, and the result is persisted right after, so a crash at any point is
finished by the next `reconcile` without a second launch for one intent and without an
untracked instance (tests/burst/test_crash_points.py checks this over every crash point).
Decisions are the core's (operatord.core.burst.*); this module only sequences I/O, logs one
event per outcome and never reads the clock except through the injected `clock`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog

from operatord.core.burst.intent import Intent
from operatord.core.burst.launch import Refusal, begin, new_intent, next_attempt, record, refuse
from operatord.core.burst.lifecycle import BurstState
from operatord.core.burst.observed import CloudInstance, NodeView
from operatord.core.burst.reconcile import collectable, find_orphans, reconcile_intent
from operatord.core.fleet import stack_consistent
from operatord.core.model import CordonOwner
from operatord.policies.model import Policy
from operatord.ports.capacity import CapacityProvider, LaunchRequest
from operatord.ports.cluster import ClusterApi, Conflict, NotFound
from operatord.shell.intents import IntentStore, Unreadable
from operatord.vocab import LABEL_INSTANCE_ID, Reason

log = structlog.get_logger("operatord.burst")

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
# Burst replicas go first when a workload scales in; local replicas keep the default cost 0.
BURST_DELETION_COST = "-1000"


class BurstNodes(Protocol):
    """The Kubernetes side of burst instances, as the runner needs it."""

    def burst_nodes(self) -> Mapping[str, NodeView]:
        """Nodes that carry the operatord.io/instance-id label, by instance id."""
        ...

    def begin_drain(self, node_name: str) -> int:
        """Cordon the node (nothing new lands there) and lower the pod-deletion-cost of its serving
        pods, so the workload's scale-in removes them first; returns how many pods were marked."""
        ...

    def evict_serving(self, node_name: str) -> int:
        """Evict (Eviction API: PDBs and grace periods hold) the serving pods still on the node, for
        a release whose replicas move elsewhere instead of going away; returns how many were asked."""
        ...

    def retire(self, node_name: str) -> None:
        """Cordon the node, then delete the Node object; both idempotent."""
        ...


class ClusterBurstNodes:
    """BurstNodes over the ClusterApi port."""

    def __init__(self, api: ClusterApi) -> None:
        self._api = api

    def burst_nodes(self) -> Mapping[str, NodeView]:
        out: dict[str, NodeView] = {}
        for node in self._api.list_nodes(label_selector=LABEL_INSTANCE_ID).items:
            iid = node.labels.get(LABEL_INSTANCE_ID)
            if not iid:
                continue
            pods = self._api.list_pods(node_name=node.name).items
            serving = sum(
                1 for p in pods if p.gpus > 0 and p.ready and not p.deleting and p.phase == "Running"
            )
            ready = any(c.type == "Ready" and c.status == "True" for c in node.conditions)
            out[iid] = NodeView(
                node.name, iid, ready, node.gpus, serving, node.unschedulable, stack_consistent(node)
            )
        return out

    def begin_drain(self, node_name: str) -> int:
        try:
            self._api.cordon(node_name, CordonOwner("operatord", "burst_release"))
        except NotFound:
            return 0
        marked = 0
        for pod in self._api.list_pods(node_name=node_name).items:
            if pod.gpus > 0 and pod.annotations.get(DELETION_COST_ANNOTATION) != BURST_DELETION_COST:
                self._api.patch_pod_annotations(
                    pod.namespace, pod.name, {DELETION_COST_ANNOTATION: BURST_DELETION_COST}
                )
                marked += 1
        return marked

    def evict_serving(self, node_name: str) -> int:
        try:
            self._api.cordon(node_name, CordonOwner("operatord", "burst_release"))
        except NotFound:
            return 0
        asked = 0
        for pod in self._api.list_pods(node_name=node_name).items:
            if pod.gpus > 0 and not pod.deleting:
                outcome = self._api.evict(pod.namespace, pod.name)  # 429 (PDB): tried again next reconcile
                log.info(
                    "burst.pod_evicted",
                    node=node_name,
                    pod=f"{pod.namespace}/{pod.name}",
                    result=outcome.result.value,
                )
                asked += 1
        return asked

    def retire(self, node_name: str) -> None:
        try:
            self._api.cordon(node_name, CordonOwner("operatord", "burst_release"))
            self._api.delete_node(node_name)
        except NotFound:
            return


@dataclass(frozen=True, slots=True)
class Outcome:
    """One thing the runner did (or, under dry-run, would do); the CLI prints these."""

    kind: (
        str  # launched | launch_failed | launch_pending | terminated | node_deleted | orphan_terminated | ...
    )
    reason: str
    intent_id: str | None = None
    instance_ids: tuple[str, ...] = ()
    detail: Mapping[str, object] = field(default_factory=dict)


class BurstRunner:
    """Sequences burst I/O around the pure core. One instance per tick or CLI command."""

    def __init__(
        self,
        *,
        store: IntentStore,
        capacity: CapacityProvider,
        policy: Policy,
        clock: Callable[[], datetime],
        nodes: BurstNodes | None = None,
        dry_run: bool = False,
    ) -> None:
        if policy.burst is None:
            raise ValueError("the policy has no burst section")
        self._store = store
        self._capacity = capacity
        self._policy = policy
        self._clock = clock
        self._nodes = nodes
        self._dry_run = dry_run
        self._quota: int | None = None
        self._quota_read = False

    # -- launch ------------------------------------------------------------------------------------

    def launch(self, *, replicas: int, model: str | None, reason: str, seq: int | str = 0) -> list[Outcome]:
        """Create an intent for `replicas` and run its launch loop (or, dry-run, validate the first offering)."""
        now = self._clock()
        intents, _ = self._store.list()
        intent = new_intent(self._policy, model=model, replicas=replicas, reason=reason, now=now, seq=seq)
        if self._dry_run:
            return [self._dry_launch(intent, intents, now)]
        first = next_attempt(intent, intents, self._policy, now, self._vcpu_quota())
        if isinstance(first, Refusal):
            # Refused by a cap, a quota stop or every offering backing off before anything could be
            # sent: nothing to record (no AWS call will follow), so no intent is written.
            log.warning(
                "burst.launch_refused",
                replicas=replicas,
                model=model,
                reason=first.reason.value,
                **_safe(first.detail),
            )
            return [Outcome("launch_failed", first.reason.value, None, detail=first.detail)]
        intent = self._store.create(intent)
        log.info("burst.intent_created", intent=intent.id, replicas=replicas, model=model, reason=reason)
        intent, outcomes = self._launch_loop(intent, intents, now)
        return outcomes

    def _dry_launch(self, intent: Intent, others: Sequence[Intent], now: datetime) -> Outcome:
        attempt = next_attempt(intent, others, self._policy, now, self._vcpu_quota())
        if isinstance(attempt, Refusal):
            return Outcome("launch_refused", attempt.reason.value, intent.id, detail=attempt.detail)
        result = self._capacity.launch(
            LaunchRequest(intent.id, intent.pool, attempt, intent.expires_at, dry_run=True)
        )
        return Outcome(
            "would_launch" if result.outcome.value == "dry_run" else "launch_refused",
            result.code or result.outcome.value,
            intent.id,
            detail={
                "instance_type": attempt.offering.instance_type,
                "availability_zone": attempt.offering.availability_zone,
                "count": attempt.count,
                "outcome": result.outcome.value,
                "message": result.message,
            },
        )

    def _launch_loop(
        self, intent: Intent, others: Sequence[Intent], now: datetime
    ) -> tuple[Intent, list[Outcome]]:
        burst = self._policy.burst
        assert burst is not None
        outcomes: list[Outcome] = []
        limit = len(burst.instance_types) * len(burst.subnets) + 2  # every offering once, plus a re-issue
        for _ in range(limit):
            attempt = next_attempt(intent, others, self._policy, now, self._vcpu_quota())
            if isinstance(attempt, Refusal):
                intent = self._store.update(refuse(intent, attempt, now))
                log.warning(
                    "burst.launch_refused",
                    intent=intent.id,
                    reason=attempt.reason.value,
                    **_safe(attempt.detail),
                )
                outcomes.append(
                    Outcome("launch_failed", attempt.reason.value, intent.id, detail=attempt.detail)
                )
                return intent, outcomes
            intent = self._store.update(
                begin(intent, attempt, now)
            )  # write-ahead: the token is on record first
            result = self._capacity.launch(LaunchRequest(intent.id, intent.pool, attempt, intent.expires_at))
            rec = record(intent, result, self._policy, now)
            intent = self._store.update(rec.intent)
            if rec.terminate:
                self._capacity.terminate(rec.terminate)
                outcomes.append(Outcome("rolled_back", Reason.PARTIAL_LAUNCH.value, intent.id, rec.terminate))
            off = attempt.offering
            log.info(
                "burst.attempt_finished",
                intent=intent.id,
                attempt=attempt.number,
                instance_type=off.instance_type,
                az=off.availability_zone,
                outcome=result.outcome.value,
                code=result.code,
            )
            if intent.state is BurstState.RUNNING:
                ids = tuple(i.instance_id for i in intent.live_instances)
                outcomes.append(
                    Outcome(
                        "launched",
                        intent.reason,
                        intent.id,
                        ids,
                        {"instance_type": off.instance_type, "availability_zone": off.availability_zone},
                    )
                )
                return intent, outcomes
            if intent.state is BurstState.LAUNCH_FAILED:
                outcomes.append(
                    Outcome(
                        "launch_failed",
                        (intent.failure or "").split(":", 1)[0],
                        intent.id,
                        detail={"code": result.code or "", "message": result.message},
                    )
                )
                return intent, outcomes
            if not rec.try_next:
                outcomes.append(
                    Outcome(
                        "launch_pending",
                        result.code or "transient",
                        intent.id,
                        detail={"note": "retried with the same ClientToken next reconcile"},
                    )
                )
                return intent, outcomes
        return intent, outcomes

    def _vcpu_quota(self) -> int | None:
        if not self._quota_read:
            self._quota = self._capacity.vcpu_quota()
            self._quota_read = True
        return self._quota

    # -- reconcile ---------------------------------------------------------------------------------

    def reconcile(self) -> list[Outcome]:
        """Advance every intent, finish interrupted launches, terminate what must go, delete old records."""
        now = self._clock()
        intents, unreadable = self._store.list()
        outcomes = [
            Outcome("unreadable_intent", "intent_format", detail={"configmap": u.name, "error": u.error})
            for u in unreadable
        ]
        for u in unreadable:
            log.error("burst.intent_unreadable", configmap=u.name, error=u.error)
        cloud = self._capacity.list_instances()
        nodes = self._nodes.burst_nodes() if self._nodes is not None else {}
        for intent in intents:
            outcomes.extend(self._reconcile_one(intent, intents, cloud, nodes, now))
        outcomes.extend(self._terminate_orphans(now, nodes))
        return outcomes

    def _reconcile_one(
        self,
        intent: Intent,
        intents: Sequence[Intent],
        cloud: Sequence[CloudInstance],
        nodes: Mapping[str, NodeView],
        now: datetime,
    ) -> list[Outcome]:
        step = reconcile_intent(intent, cloud, nodes, self._policy, now)
        out: list[Outcome] = []
        if self._dry_run:
            if step.terminate:
                out.append(
                    Outcome(
                        "would_terminate",
                        _last_reason(step.intent, step.terminate),
                        intent.id,
                        step.terminate,
                    )
                )
            if step.resume_launch:
                out.append(Outcome("would_resume_launch", "reconcile", intent.id))
            return out
        try:
            current = self._store.update(step.intent) if step.intent != intent else intent
        except Conflict:
            log.warning("burst.intent_conflict", intent=intent.id)
            return [Outcome("skipped", "conflict", intent.id)]
        for name in step.evict_nodes:
            if self._nodes is not None:
                asked = self._nodes.evict_serving(name)
                out.append(
                    Outcome("pods_evicted", "draining", intent.id, detail={"node": name, "pods": asked})
                )
        for name in step.delete_nodes:
            if self._nodes is not None:
                self._nodes.retire(name)
                out.append(Outcome("node_deleted", _last_reason(current), intent.id, detail={"node": name}))
        if step.terminate:
            self._capacity.terminate(step.terminate)
            log.info(
                "burst.instances_terminated",
                intent=intent.id,
                instances=list(step.terminate),
                reason=_last_reason(current, step.terminate),
            )
            out.append(
                Outcome("terminated", _last_reason(current, step.terminate), intent.id, step.terminate)
            )
        if step.resume_launch:
            current, more = self._launch_loop(current, intents, now)
            out.extend(more)
        if collectable(current, now):
            self._store.delete(current)
            out.append(Outcome("intent_deleted", "retention", intent.id))
        return out

    def _terminate_orphans(self, now: datetime, nodes: Mapping[str, NodeView]) -> list[Outcome]:
        # Read intents before the cloud: an instance launched in between is younger than the grace.
        intents, _ = self._store.list()
        cloud = self._capacity.list_instances()
        orphans = find_orphans(intents, cloud, self._policy, now)
        out: list[Outcome] = []
        for o in orphans:
            node = nodes.get(o.instance_id)
            if self._dry_run:
                out.append(
                    Outcome(
                        "would_terminate",
                        o.reason.value,
                        o.intent_id,
                        (o.instance_id,),
                        {"age_s": int(o.age.total_seconds())},
                    )
                )
                continue
            if node is not None and self._nodes is not None:
                self._nodes.retire(node.name)
            self._capacity.terminate([o.instance_id])
            log.warning(
                "burst.orphan_terminated",
                instance=o.instance_id,
                intent=o.intent_id,
                reason=o.reason.value,
                age_s=int(o.age.total_seconds()),
            )
            out.append(
                Outcome(
                    "orphan_terminated",
                    o.reason.value,
                    o.intent_id,
                    (o.instance_id,),
                    {"age_s": int(o.age.total_seconds())},
                )
            )
        return out

    # -- release / terminate -------------------------------------------------------------------------

    def release(self, intent_id: str, instance_id: str, reason: Reason) -> list[Outcome]:
        """Start the scale-in protocol of design §1.9 for one instance: burst pods first
        (pod-deletion-cost), then draining; reconcile terminates once its pods are gone."""
        now = self._clock()
        intents, _ = self._store.list()
        intent = next((i for i in intents if i.id == intent_id), None)
        rec = intent.instance(instance_id) if intent is not None else None
        if intent is None or rec is None or not rec.state.live:
            return [Outcome("skipped", "not_live", intent_id, (instance_id,))]
        target = BurstState.DRAINING if rec.state is BurstState.SERVING else BurstState.TERMINATING
        if rec.state in (BurstState.DRAINING, BurstState.TERMINATING, BurstState.TERMINATE_FAILED):
            return [Outcome("skipped", "already_leaving", intent_id, (instance_id,))]
        if self._dry_run:
            return [Outcome(f"would_{target.value}", reason.value, intent_id, (instance_id,))]
        intent = self._store.update(intent.instance_moved(instance_id, target, now, reason.value))
        if target is BurstState.DRAINING and rec.node and self._nodes is not None:
            marked = self._nodes.begin_drain(rec.node)
            log.info(
                "burst.drain_started", intent=intent_id, instance=instance_id, node=rec.node, pods=marked
            )
        else:
            self._terminate_now(intent, instance_id)
        return [Outcome(target.value, reason.value, intent_id, (instance_id,))]

    def terminate(self, instance_ids: Sequence[str], reason: Reason) -> list[Outcome]:
        """Terminate now (a person asked, or the pre-delete hook): tracked instances are recorded as
        terminating first; tagged untracked ones are terminated directly. Ids that are not this
        cluster's tagged instances are refused (never touch what operatord does not own)."""
        now = self._clock()
        intents, _ = self._store.list()
        cloud = {c.instance_id: c for c in self._capacity.list_instances()}
        owner = {r.instance_id: i for i in intents for r in i.instances}
        out: list[Outcome] = []
        for iid in sorted(set(instance_ids)):
            if iid not in cloud and iid not in owner:
                out.append(Outcome("refused", "not_managed", None, (iid,)))
                continue
            intent = owner.get(iid)
            rec = intent.instance(iid) if intent is not None else None
            if self._dry_run:
                # EC2 DryRun: proves the IAM policy lets operatord terminate it, changes nothing.
                self._capacity.terminate([iid], dry_run=True)
                out.append(Outcome("would_terminate", reason.value, intent.id if intent else None, (iid,)))
                continue
            if (
                intent is not None
                and rec is not None
                and rec.state.live
                and rec.state not in (BurstState.TERMINATING, BurstState.TERMINATE_FAILED)
            ):
                intent = self._store.update(
                    intent.instance_moved(iid, BurstState.TERMINATING, now, reason.value)
                )
                owner.update({r.instance_id: intent for r in intent.instances})
            if intent is not None:
                self._terminate_now(intent, iid)
            else:
                self._capacity.terminate([iid])
            out.append(Outcome("terminated", reason.value, intent.id if intent else None, (iid,)))
        return out

    def cancel_pending(self, reason: Reason) -> list[Outcome]:
        """Fail intents that have not launched yet (so `terminate --all` leaves nothing coming)."""
        now = self._clock()
        intents, _ = self._store.list()
        out: list[Outcome] = []
        for intent in intents:
            if intent.state is BurstState.PLANNED or (
                intent.state is BurstState.REQUESTED and intent.open_attempt is None
            ):
                if not self._dry_run:
                    self._store.update(refuse(intent, Refusal(reason, {}), now))
                out.append(
                    Outcome("cancelled" if not self._dry_run else "would_cancel", reason.value, intent.id)
                )
        return out

    def _terminate_now(self, intent: Intent, instance_id: str) -> None:
        rec = intent.instance(instance_id)
        if rec is not None and rec.node and self._nodes is not None:
            self._nodes.retire(rec.node)
        self._capacity.terminate([instance_id])
        log.info("burst.instances_terminated", intent=intent.id, instances=[instance_id])


def _last_reason(intent: Intent, instance_ids: Sequence[str] = ()) -> str:
    """The stable reason to report: the latest transition of one of `instance_ids` (any instance
    when none are given), else the intent's own reason."""
    wanted = set(instance_ids)
    for t in reversed(intent.history):
        if not wanted or t.subject in wanted:
            return t.reason
    return intent.reason


def _safe(detail: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in detail.items() if k not in ("event",)}


__all__ = ["BurstNodes", "BurstRunner", "ClusterBurstNodes", "Outcome", "Unreadable"]
