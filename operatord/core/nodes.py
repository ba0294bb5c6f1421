"""Pure. What remediation knows about each node: pool, history, active node faults, fleet events.

A `NodeView` joins a Node with its policy pool, its decoded history and the node faults that are
active at `now` (from the agent's findings annotation and its GPUHealthy/NCCLHealthy
conditions). Application faults never appear here: only findings with `node_fault` and an
action operatord or a human acts on (cordon, drain, reset_gpu, reboot). Findings a human
acknowledged by uncordoning, and the breaker backlog a reset chose to skip, are left out.

Cross-node correlation: the same fault class starting on `fleet_event_nodes` or more nodes
within `fleet_event_window` is one fleet event (a job crash, a driver rollout, a fabric
fault), not many bad nodes; its faults are set aside (`fleet_faults`) and not acted on per node.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

from operatord.core.findings import Finding
from operatord.core.history import History, decode_history
from operatord.core.model import Node
from operatord.core.state import OperatordState
from operatord.policies.model import FaultsPolicy, Policy, Pool
from operatord.vocab import (
    ANNOTATION_FINDINGS,
    ANNOTATION_HISTORY,
    CONDITION_GPU_HEALTHY,
    CONDITION_NCCL_HEALTHY,
    FaultAction,
    FaultClass,
    Severity,
)

_ACTIONABLE = frozenset({FaultAction.DRAIN, FaultAction.RESET_GPU, FaultAction.REBOOT, FaultAction.CORDON})
_DRAINING = frozenset({FaultAction.DRAIN, FaultAction.RESET_GPU, FaultAction.REBOOT})
_CAMEL = {c.camel: c for c in FaultClass}
HEALTH_CONDITIONS = frozenset({CONDITION_GPU_HEALTHY, CONDITION_NCCL_HEALTHY})  # False: GPUs are not capacity
_NO_HISTORY = History()
by_name = attrgetter("name")


@dataclass(frozen=True, slots=True)
class Fault:
    """An active node fault on one node (folded over the findings of one class)."""

    class_: FaultClass
    fatal: bool
    drain: bool  # the finding asks for a drain (drain, reset_gpu, reboot), not only a cordon
    first_seen: datetime
    last_seen: datetime
    rule: str
    from_condition: bool = False


class NodeView(NamedTuple):
    """One node as remediation sees it. A NamedTuple, not a frozen dataclass: one is built for every
    node on every tick, at a fifth of the cost (the other per-node records follow suit)."""

    node: Node
    pool: str
    history: History
    faults: tuple[Fault, ...] = ()
    fleet_faults: tuple[Fault, ...] = ()
    problems: tuple[str, ...] = ()  # annotations that could not be read

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def fatal(self) -> bool:
        return any(f.fatal for f in self.faults)

    @property
    def wants_drain(self) -> bool:
        return any(f.drain for f in self.faults)

    @property
    def primary(self) -> Fault | None:
        """The fault that names the action: fatal first, then the earliest."""
        if not self.faults:
            return None
        return min(self.faults, key=lambda f: (not f.fatal, f.first_seen, f.class_.value))

    @property
    def unhealthy(self) -> bool:
        """Counts toward fleet sickness: not Ready, or any active node fault (fleet events included)."""
        return not self.node.ready or bool(self.faults) or bool(self.fleet_faults)


def pool_matcher(pools: Sequence[Pool]) -> Callable[[Node], str | None]:
    """node → the name of the first pool whose selector its labels satisfy, else None.

    The selectors are built once: this runs for every node on every tick."""
    selectors = tuple((p.name, tuple(p.selector.items())) for p in pools)
    keys = {k for _, selector in selectors for k, _ in selector}
    if len(keys) == 1 and all(len(selector) == 1 for _, selector in selectors):
        # The usual shape (one pool label, a value per pool): one dict lookup per node.
        (key,) = keys
        by_value: dict[str | None, str] = {}
        for name, ((_, value),) in selectors:
            by_value.setdefault(value, name)

        def pool_by_label(node: Node) -> str | None:
            return by_value.get(node.labels.get(key))

        return pool_by_label

    def pool_of(node: Node) -> str | None:
        labels = node.labels
        for name, selector in selectors:
            if all(labels.get(k) == v for k, v in selector):
                return name
        return None

    return pool_of


def decode_findings(text: str | None) -> tuple[tuple[Finding, ...], str | None]:
    """Total: (findings, problem). A malformed entry is skipped and reported, the rest kept."""
    if not text:
        return (), None
    try:
        raw = json.loads(text)
    except ValueError as err:
        return (), f"unreadable findings annotation: {err}"
    if not isinstance(raw, list):
        return (), "findings annotation is not a JSON list"
    out: list[Finding] = []
    bad = 0
    for item in raw:
        try:
            out.append(Finding.from_json(item))
        except (KeyError, ValueError, TypeError, AttributeError):
            bad += 1
    return tuple(out), (f"{bad} unreadable finding(s) skipped" if bad else None)


def active_faults(
    node: Node,
    findings: Iterable[Finding],
    faults_policy: FaultsPolicy,
    now: datetime,
    *,
    ack_before: datetime | None,
    ignore_before: datetime | None,
) -> tuple[Fault, ...]:
    """The node faults active at `now`, one per class (fatal if any finding of it is fatal)."""
    by_class: dict[FaultClass, Fault] = {}
    for f in findings:
        if not f.node_fault or f.action not in _ACTIONABLE or f.class_ == FaultClass.NONE:
            continue
        last = f.last_seen or f.time or f.first_seen or now
        first = f.first_seen or f.time or last
        if now - last > faults_policy.recovery_quiet_period:
            continue
        if ack_before is not None and first <= ack_before:
            continue
        if ignore_before is not None and first < ignore_before:
            continue
        fault = Fault(f.class_, f.severity == Severity.FATAL, f.action in _DRAINING, first, last, f.rule)
        old = by_class.get(f.class_)
        if old is not None:
            fault = Fault(
                f.class_,
                old.fatal or fault.fatal,
                old.drain or fault.drain,
                min(old.first_seen, first),
                max(old.last_seen, last),
                old.rule if old.first_seen <= first else fault.rule,
            )
        by_class[f.class_] = fault
    if not by_class and not node.conditions:
        return ()
    for type_ in (CONDITION_GPU_HEALTHY, CONDITION_NCCL_HEALTHY):
        cond = node.condition(type_)
        if cond is None or cond.status != "False":
            continue
        cls = _CAMEL.get(cond.reason, FaultClass.GPU_XID_OTHER_HW)
        if cls in by_class:
            continue
        first = cond.last_transition_time or now
        if (ack_before is not None and first <= ack_before) or (
            ignore_before is not None and first < ignore_before
        ):
            continue
        rule = cond.message.split(" ", 1)[0] if cond.message else type_
        by_class[cls] = Fault(cls, False, True, first, now, rule, from_condition=True)
    return tuple(sorted(by_class.values(), key=lambda f: (f.first_seen, f.class_.value)))


def _health_condition_false(node: Node) -> bool:
    for c in node.conditions:  # noqa: SIM110 - a plain loop: any() over a generator costs twice as much, on every node
        if c.status == "False" and c.type in HEALTH_CONDITIONS:
            return True
    return False


def selects(selector: Mapping[str, str]) -> Callable[[Node], bool]:
    """node → its labels satisfy the selector; built once, run for every node on every tick."""
    items = tuple(selector.items())
    if len(items) == 1:
        ((key, value),) = items
        return lambda node: node.labels.get(key) == value
    return lambda node: all(node.labels.get(k) == v for k, v in items)


class PooledViews(NamedTuple):
    """Every pooled node's view before decoding (name order), and the positions of the nodes
    that carry something to decode. A function of the nodes and the policy alone."""

    views: tuple[NodeView, ...]
    busy: tuple[int, ...]


def pooled_views(nodes: Iterable[Node], policy: Policy) -> PooledViews:
    """Views of the nodes that belong to a policy pool, sorted by name, with nothing decoded: most
    nodes, on most ticks, have no history, no findings and no false health condition."""
    views: list[NodeView] = []
    busy: list[int] = []
    pool_of = pool_matcher(policy.pools)
    for node in sorted(nodes, key=by_name):
        pool = pool_of(node)
        if pool is None:
            continue
        annotations = node.annotations
        if (
            annotations.get(ANNOTATION_HISTORY)
            or annotations.get(ANNOTATION_FINDINGS)
            or _health_condition_false(node)
        ):
            busy.append(len(views))
        views.append(NodeView(node, pool, _NO_HISTORY))
    return PooledViews(tuple(views), tuple(busy))


def build_views(
    nodes: Iterable[Node],
    policy: Policy,
    state: OperatordState,
    now: datetime,
    pooled: PooledViews | None = None,
) -> tuple[NodeView, ...]:
    """Views of the nodes that belong to a policy pool, sorted by name, fleet events set aside.

    `pooled` is pooled_views(nodes, policy), when the caller kept it from an earlier tick."""
    if pooled is None:
        pooled = pooled_views(nodes, policy)
    if not pooled.busy:
        return pooled.views  # nothing to decode, so no faults and no fleet event
    views = list(pooled.views)
    for i in pooled.busy:
        node, pool = views[i].node, views[i].pool
        annotations = node.annotations
        history = decode_history(annotations.get(ANNOTATION_HISTORY))
        findings, problem = decode_findings(annotations.get(ANNOTATION_FINDINGS))
        faults = active_faults(
            node,
            findings,
            policy.faults,
            now,
            ack_before=history.ack_before,
            ignore_before=state.breaker.ignore_before,
        )
        problems = tuple(p for p in (history.problem, problem) if p)
        views[i] = NodeView(node, pool, history, faults, (), problems)
    events = fleet_events(views, policy.faults)
    if not events:
        return tuple(views)
    out = []
    for v in views:
        aside = tuple(f for f in v.faults if f.class_ in events and v.name in events[f.class_])
        if not aside:
            out.append(v)  # most nodes: nothing to set aside, no copy
            continue
        kept = tuple(f for f in v.faults if f not in aside)
        out.append(v._replace(faults=kept, fleet_faults=aside))
    return tuple(out)


def fleet_events(
    views: Sequence[NodeView], faults_policy: FaultsPolicy
) -> Mapping[FaultClass, tuple[str, ...]]:
    """Classes whose faults started on ≥ fleet_event_nodes nodes within one fleet_event_window
    (sliding), with every node showing that class. Deterministic: names sorted."""
    starts: dict[FaultClass, list[tuple[datetime, str]]] = {}
    for v in views:
        for f in v.faults:
            starts.setdefault(f.class_, []).append((f.first_seen, v.name))
    window: timedelta = faults_policy.fleet_event_window
    out: dict[FaultClass, tuple[str, ...]] = {}
    for cls, items in starts.items():
        items.sort()
        best = 0
        for i, (t0, _) in enumerate(items):
            inside = {name for t, name in items[i:] if t - t0 <= window}
            best = max(best, len(inside))
        if best >= faults_policy.fleet_event_nodes:
            out[cls] = tuple(sorted({name for _, name in items}))
    return out
