"""Shell. Plan → the world: execute actions through the ports, in order, within the mode.

The same path serves the daemon and the on-call commands (`operatord drain` plans with
core.remediation.plan_manual_drain and applies here). Rules:

* `dry_run` writes nothing at all: every action is reported as "would".
* An action whose `min_mode` is above the effective mode is logged as "would" (design §1.1).
* A failed action stops the later actions for the same node in this plan (no drain after a
  failed cordon); other nodes go on. Every action yields one `Outcome` and one log event.
* Executors are registered per Action type (`@executor(Cordon)`); other capabilities register
  theirs for their own action types without editing this module's dispatch.
* An executor that changed something writes an Event on the object the action concerns (a Node,
  a serving workload, an intent or operatord-state; `emit_event`), named by the runbook, so
  `kubectl describe` explains what operatord did there. Best effort: it never fails the action.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog

from operatord.core.health import HealthState, NodeEvent, transition
from operatord.core.history import HistoryEntry, decode_history
from operatord.core.model import CordonOwner, Event, NodeCondition, ObjectRef
from operatord.core.plan import (
    Action,
    CloseCapacityRequest,
    Cordon,
    Drain,
    HandOff,
    Plan,
    RecordTransition,
    RequestCapacity,
    TripBreaker,
    Uncordon,
)
from operatord.core.state import CapacityRequest
from operatord.policies.model import Policy
from operatord.ports.capacity import CapacityProvider
from operatord.ports.cluster import ClusterApi, ClusterError, Conflict
from operatord.shell.drain import DrainStatus, drain_node
from operatord.shell.state import StateStore, append_history
from operatord.vocab import ANNOTATION_HISTORY, STATE_CONFIGMAP, Mode

CONDITION_AWAITING_REPAIR = "OperatordAwaitingRepair"
log = structlog.get_logger("operatord.apply")


@dataclass
class ApplyContext:
    cluster: ClusterApi
    namespace: str
    policy: Policy
    mode: Mode
    dry_run: bool = False
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    capacity: CapacityProvider | None = None  # burst actions (operatord.shell.burst_apply); None: refused
    # The daemon bounds one drain's share of a tick: a drain still blocked (PDBs) after this long is
    # left `draining` and resumed next tick, until remediation.drain.timeout from its start. None:
    # drain to completion or the timeout in one go (the `operatord drain` command).
    drain_slice: timedelta | None = None
    # The daemon's leadership and shutdown check, asked before each action: False skips the rest of
    # the plan (a replica that lost its Lease, or got SIGTERM, starts nothing new). None: always go on.
    keep_going: Callable[[], bool] | None = None

    @property
    def store(self) -> StateStore:
        return StateStore(self.cluster, self.namespace)


@dataclass(frozen=True)
class Outcome:
    key: str
    kind: str
    node: str | None
    status: str  # applied | unchanged | would | failed | refused | skipped
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "node": self.node,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
        }


A = TypeVar("A", bound=Action)
Executor = Callable[[Any, ApplyContext], Outcome]
EXECUTORS: dict[type[Action], Executor] = {}


def executor(
    kind: type[A],
) -> Callable[[Callable[[A, ApplyContext], Outcome]], Callable[[A, ApplyContext], Outcome]]:
    def register(fn: Callable[[A, ApplyContext], Outcome]) -> Callable[[A, ApplyContext], Outcome]:
        EXECUTORS[kind] = fn
        return fn

    return register


def apply_plan(plan: Plan, ctx: ApplyContext) -> list[Outcome]:
    """Execute the plan's actions in order; log its holds. Returns one Outcome per action."""
    outcomes: list[Outcome] = []
    failed_nodes: set[str] = set()
    for hold in plan.holds:
        held = {"reason": hold.reason, "node": hold.node, "blocked": hold.blocked}
        log.info("decision.held", **held, **_extra(hold.detail, held))
    for action in plan.actions:
        base = {"key": action.key, "kind": action.kind, "node": action.node, "reason": action.reason}
        if ctx.dry_run or action.min_mode.rank > ctx.mode.rank:
            why = "dry-run" if ctx.dry_run else f"mode {ctx.mode.value}"
            log.info("action.would", why=why, **base, **_extra(action.detail, base))
            outcomes.append(
                Outcome(action.key, action.kind, action.node, "would", action.reason, {"why": why})
            )
            continue
        if ctx.keep_going is not None and not ctx.keep_going():
            log.warning("action.skipped", why="stopping (shutdown or leadership lost)", **base)
            outcomes.append(
                Outcome(action.key, action.kind, action.node, "skipped", action.reason, {"why": "stopping"})
            )
            continue
        if action.node is not None and action.node in failed_nodes:
            outcomes.append(
                Outcome(
                    action.key,
                    action.kind,
                    action.node,
                    "skipped",
                    action.reason,
                    {"why": "earlier action failed"},
                )
            )
            continue
        run = EXECUTORS.get(type(action))
        if run is None:
            raise TypeError(f"no executor registered for {type(action).__name__}")
        try:
            outcome = run(action, ctx)
        except ClusterError as err:
            outcome = Outcome(
                action.key,
                action.kind,
                action.node,
                "failed",
                action.reason,
                {"error": str(err), "status": err.status},
            )
        if outcome.status in ("failed", "refused") and action.node is not None:
            failed_nodes.add(action.node)
        event = "action.failed" if outcome.status in ("failed", "refused") else "action.applied"
        (log.warning if event == "action.failed" else log.info)(
            event, status=outcome.status, **base, **_extra(outcome.detail, base)
        )
        outcomes.append(outcome)
    return outcomes


def _extra(values: Mapping[str, Any], taken: Mapping[str, Any]) -> dict[str, Any]:
    """Detail fields for a log event, without clobbering the event's own keys."""
    reserved = {*taken, "event", "status", "why"}
    return {(f"detail_{k}" if k in reserved else k): v for k, v in values.items()}


EVENT_MESSAGE_LIMIT = 1024  # the adapter truncates there; the runbook pointer must survive it


def emit_event(
    ctx: ApplyContext,
    about: ObjectRef,
    reason: str,
    message: str,
    *,
    warning: bool = True,
    action: str = "",
) -> None:
    """Best effort: an Event that cannot be written is logged, never fails the action. The message
    names the runbook (`runbooks/<reason>.md`), so `kubectl describe` of the object it is about
    (a Node, a serving workload, an intent or the operatord-state ConfigMap) points on-call at it."""
    runbook = f"runbooks/{reason}.md"
    if runbook not in message:
        suffix = f" ({runbook})"
        message = message[: EVENT_MESSAGE_LIMIT - len(suffix)] + suffix
    try:
        ctx.cluster.create_event(
            Event(
                about.kind,
                about.name,
                reason,
                message,
                "Warning" if warning else "Normal",
                namespace=about.namespace,
                action=action,
                at=ctx.clock(),
                api_version=about.api_version,
            )
        )
    except ClusterError as err:
        log.warning(
            "event.not_recorded",
            kind=about.kind,
            namespace=about.namespace or None,
            name=about.name,
            reason=reason,
            error=str(err),
        )


def state_ref(ctx: ApplyContext) -> ObjectRef:
    """The operatord-state ConfigMap: what guard Events (and burst Events without an intent) are about."""
    return ObjectRef("ConfigMap", STATE_CONFIGMAP, ctx.namespace)


def _history(
    ctx: ApplyContext, node: str, event: str, reason: str, actor: str, state: HealthState | None, **kw: Any
) -> None:
    now = ctx.clock()
    append_history(ctx.cluster, node, [HistoryEntry(now, event, reason, actor, state, **kw)], now)


@executor(RecordTransition)
def _record(action: RecordTransition, ctx: ApplyContext) -> Outcome:
    """History only, no Event: what it records already has one from whoever caused it (the agent's
    finding and node_recovered Events, `operatord uncordon`'s human_uncordon Event), and it runs in
    every mode on every such tick, where a second Event would only repeat the first."""
    assert action.node is not None
    _history(
        ctx,
        action.node,
        action.event,
        action.reason,
        action.actor,
        action.to_state,
        ack_before=action.ack_before,
    )
    return Outcome(
        action.key, action.kind, action.node, "applied", action.reason, {"state": action.to_state.value}
    )


@executor(Cordon)
def _cordon(action: Cordon, ctx: ApplyContext) -> Outcome:
    assert action.node is not None
    owner = CordonOwner(action.owner, action.reason, ctx.clock())
    node, changed = ctx.cluster.cordon(action.node, owner)
    if not changed and action.take_ownership:
        ctx.cluster.patch_node_annotations(
            action.node, owner.annotations(), resource_version=node.resource_version
        )
        changed = True
    if not changed:
        return Outcome(
            action.key,
            action.kind,
            action.node,
            "unchanged",
            action.reason,
            {"owner": str(node.cordon_owner and node.cordon_owner.by)},
        )
    _history(
        ctx,
        action.node,
        "cordoned",
        action.reason,
        action.owner,
        action.to_state,
        note=str(action.detail.get("note") or ""),
    )
    emit_event(
        ctx,
        ObjectRef.node(action.node),
        action.reason,
        f"cordoned by {action.owner}: {action.reason} (runbooks/{action.reason}.md)",
        action="Cordon",
    )
    return Outcome(action.key, action.kind, action.node, "applied", action.reason, {"owner": action.owner})


@executor(Drain)
def _drain(action: Drain, ctx: ApplyContext) -> Outcome:
    assert action.node is not None
    node = action.node
    now = ctx.clock()
    started = now
    if action.detail.get("resume"):
        history = decode_history(ctx.cluster.get_node(node).annotations.get(ANNOTATION_HISTORY))
        last = history.last(NodeEvent.DRAIN_STARTED.value)
        started = last.at if last is not None else now
    else:
        _history(ctx, node, NodeEvent.DRAIN_STARTED.value, action.reason, action.actor, action.to_state)
        emit_event(
            ctx, ObjectRef.node(node), action.reason, f"drain started by {action.actor}", action="Drain"
        )
    options = ctx.policy.remediation.drain
    left = max(started + options.timeout - now, timedelta(0))
    budget = left if ctx.drain_slice is None else min(left, ctx.drain_slice)
    report = drain_node(
        ctx.cluster,
        node,
        options.model_copy(update={"timeout": budget}),
        sleep=ctx.sleep,
        monotonic=ctx.monotonic,
    )
    detail = report.to_json()
    if report.status == DrainStatus.TIMED_OUT and budget < left:
        # Only this tick's slice is used up: stay `draining`; the next tick resumes.
        return Outcome(action.key, action.kind, node, "in_progress", action.reason, detail)
    if report.status == DrainStatus.COMPLETED:
        _history(
            ctx,
            node,
            NodeEvent.DRAIN_COMPLETED.value,
            action.reason,
            action.actor,
            transition(action.to_state, NodeEvent.DRAIN_COMPLETED),
        )
        emit_event(
            ctx,
            ObjectRef.node(node),
            action.reason,
            f"drained: {len(report.evicted)} evicted, {len(report.skipped)} skipped",
            warning=False,
            action="Drain",
        )
        return Outcome(action.key, action.kind, node, "applied", action.reason, detail)
    why = {
        DrainStatus.REFUSED: "drain_refused",
        DrainStatus.TIMED_OUT: "drain_timeout",
        DrainStatus.FAILED: "pdb_misconfigured",
    }[report.status]
    _history(
        ctx,
        node,
        NodeEvent.DRAIN_FAILED.value,
        why,
        action.actor,
        transition(action.to_state, NodeEvent.DRAIN_FAILED),
        note=report.status.value,
    )
    emit_event(
        ctx,
        ObjectRef.node(node),
        why,
        f"drain {report.status.value}: "
        + ", ".join([*report.refused, *report.blocked, *report.failed])[:900],
        action="Drain",
    )
    return Outcome(
        action.key,
        action.kind,
        node,
        "refused" if report.status == DrainStatus.REFUSED else "failed",
        why,
        detail,
    )


@executor(Uncordon)
def _uncordon(action: Uncordon, ctx: ApplyContext) -> Outcome:
    assert action.node is not None
    node = ctx.cluster.get_node(action.node)
    owner = node.cordon_owner
    if owner is not None and owner.by != action.actor:
        # Someone else holds the cordon now (a human re-cordoned or took over): theirs wins.
        return Outcome(
            action.key,
            action.kind,
            action.node,
            "refused",
            action.reason,
            {"why": f"cordon held by {owner.by}"},
        )
    try:
        _, changed = ctx.cluster.uncordon(action.node, resource_version=node.resource_version)
    except Conflict:
        # The node changed between our read and our write; the next tick decides again.
        return Outcome(
            action.key,
            action.kind,
            action.node,
            "refused",
            action.reason,
            {"why": "node changed while uncordoning"},
        )
    cond = ctx.cluster.get_node(action.node).condition(CONDITION_AWAITING_REPAIR)
    if cond is not None and cond.status == "True":
        ctx.cluster.set_node_condition(
            action.node, NodeCondition(CONDITION_AWAITING_REPAIR, "False", "Recovered", "uncordoned")
        )
    _history(ctx, action.node, NodeEvent.UNCORDONED.value, action.reason, action.actor, action.to_state)
    if not changed:
        return Outcome(action.key, action.kind, action.node, "unchanged", action.reason)
    emit_event(
        ctx,
        ObjectRef.node(action.node),
        action.reason,
        f"uncordoned by {action.actor}",
        warning=False,
        action="Uncordon",
    )
    return Outcome(action.key, action.kind, action.node, "applied", action.reason)


@executor(HandOff)
def _hand_off(action: HandOff, ctx: ApplyContext) -> Outcome:
    assert action.node is not None
    message = (
        f"drained by operatord for {action.fault}; repair (reset, reboot or RMA), then see {action.runbook}"
    )
    reason = "".join(p.capitalize() for p in action.fault.split("_"))
    ctx.cluster.set_node_condition(
        action.node, NodeCondition(CONDITION_AWAITING_REPAIR, "True", reason, message)
    )
    _history(ctx, action.node, NodeEvent.HANDED_OFF.value, action.fault, "operatord", action.to_state)
    emit_event(ctx, ObjectRef.node(action.node), action.reason, message, action="HandOff")
    return Outcome(
        action.key, action.kind, action.node, "applied", action.reason, {"runbook": action.runbook}
    )


@executor(RequestCapacity)
def _request(action: RequestCapacity, ctx: ApplyContext) -> Outcome:
    assert action.node is not None
    request = CapacityRequest(
        action.node, action.gpus, str(action.detail.get("fault") or action.reason), action.since
    )
    ctx.store.update(lambda s: s.with_request(request))
    emit_event(
        ctx,
        ObjectRef.node(action.node),
        action.reason,
        f"replacement capacity requested before the drain: {action.gpus} GPUs for {request.reason}",
        warning=False,
        action="RequestCapacity",
    )
    return Outcome(action.key, action.kind, action.node, "applied", action.reason, {"gpus": action.gpus})


@executor(CloseCapacityRequest)
def _close(action: CloseCapacityRequest, ctx: ApplyContext) -> Outcome:
    assert action.node is not None
    node = action.node
    ctx.store.update(lambda s: s.without_request(node))
    emit_event(
        ctx,
        ObjectRef.node(node),
        action.reason,
        f"capacity request closed: {action.reason}",
        warning=False,
        action="CloseCapacityRequest",
    )
    return Outcome(action.key, action.kind, node, "applied", action.reason)


@executor(TripBreaker)
def _trip(action: TripBreaker, ctx: ApplyContext) -> Outcome:
    text = ", ".join(f"{k}={v}" for k, v in action.detail.items())
    state = ctx.store.trip_breaker(action.since, action.reason, text)
    if state.breaker.since != action.since:  # already open since earlier: that trip had its Event
        return Outcome(action.key, action.kind, None, "unchanged", action.reason, dict(action.detail))
    log.error("guard.tripped", guard="breaker", **dict(action.detail))
    emit_event(
        ctx,
        state_ref(ctx),
        action.reason,
        f"quarantine breaker opened ({text}): no automatic cordon or drain until "
        "`operatord breaker reset --reason TEXT`",
        action="TripBreaker",
    )
    return Outcome(action.key, action.kind, None, "applied", action.reason, dict(action.detail))
