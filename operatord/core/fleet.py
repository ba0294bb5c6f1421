"""Pure. Fleet consistency: which nodes run a GPU stack that differs from their pool's.

A node whose driver, CUDA, NCCL or kernel differs from its peers makes every multi-node job
that lands on it fail with NCCL errors that look like network faults; a driver upgraded
without a reboot gives "Driver/library version mismatch". No anchor checks this across the
fleet, so operatord does: per pool, a reference stack (the policy's pinned versions, else the
strict majority of nodes that report the component) and the nodes that differ from it.

Versions come from what the cluster already publishes: GPU Feature Discovery labels,
`status.nodeInfo`, the agent's `operatord.io/stack` annotation and, where the shell supplies
it, dcgm-exporter's driver label. A component a node does not report is *unknown*, never an
outlier: missing labels are a data problem, not a bad node.
"""

from __future__ import annotations

import json
import typing
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from operatord.core import guards
from operatord.core.model import OPERATORD_OWNER, Node
from operatord.core.nodes import by_name, pool_matcher
from operatord.core.plan import Action, Cordon, Hold, Plan, action_key, detail
from operatord.core.state import OperatordState
from operatord.policies.model import Policy, Pool, StackComponent
from operatord.vocab import ANNOTATION_STACK, CONDITION_STACK_CONSISTENT, LABEL_POOL, Mode, Reason

COMPONENTS: tuple[StackComponent, ...] = typing.get_args(StackComponent)

# GFD has renamed its labels over time; the first present form wins.
_DRIVER_LABELS = (
    ("nvidia.com/cuda.driver-version.full",),
    ("nvidia.com/cuda.driver.major", "nvidia.com/cuda.driver.minor", "nvidia.com/cuda.driver.rev"),
    ("nvidia.com/gpu.driver.major", "nvidia.com/gpu.driver.minor", "nvidia.com/gpu.driver.revision"),
)
_CUDA_LABELS = (
    ("nvidia.com/cuda.runtime-version.full",),
    ("nvidia.com/cuda.runtime.major", "nvidia.com/cuda.runtime.minor"),
)
_NODE_INFO_ITEMS = (
    ("kernel", "kernelVersion"),
    ("os_image", "osImage"),
    ("container_runtime", "containerRuntimeVersion"),
    ("kubelet", "kubeletVersion"),
)
_NO_STACK: Mapping[str, str] = MappingProxyType({})
_NO_VERDICTS: Mapping[str, NodeVerdict] = MappingProxyType({})
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
LABEL_MIG_STRATEGY = "nvidia.com/mig.strategy"
_MIG_SUFFIX = "-MIG-"


class NodeStack(NamedTuple):
    """What one node reports: component → version (absent = unknown), and its GPUs."""

    node: str
    pool: str | None
    versions: Mapping[str, str]
    gpus_advertised: int | None  # physical GPUs the node reports (GFD count, else allocatable)
    mig: bool = False


@dataclass(frozen=True, slots=True)
class Reference:
    """A pool's expected version of one component and where that expectation comes from."""

    accepted: tuple[str, ...]  # empty: no reference (no data, or no strict majority)
    source: str  # "pinned" | "majority" | "none"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Difference:
    component: str
    have: str
    want: tuple[str, ...]
    source: str


class NodeVerdict(NamedTuple):
    """One node judged against its pool's reference stack."""

    node: str
    pool: str
    differences: tuple[Difference, ...] = ()
    unknown: tuple[str, ...] = ()
    gpus_advertised: int | None = None
    gpus_expected: int | None = None

    @property
    def missing_gpus(self) -> int:
        if self.gpus_advertised is None or self.gpus_expected is None:
            return 0
        return max(0, self.gpus_expected - self.gpus_advertised)

    @property
    def outlier(self) -> bool:
        return bool(self.differences) or self.missing_gpus > 0

    def summary(self) -> str:
        """One line for a NodeCondition message or an Event: what differs, nothing else."""
        parts = [
            f"{d.component} {d.have} (pool: {' or '.join(d.want)}, {d.source})" for d in self.differences
        ]
        if self.missing_gpus:
            parts.append(f"{self.gpus_advertised} of {self.gpus_expected} GPUs advertised")
        return "; ".join(parts) or "consistent"


@dataclass(frozen=True, slots=True)
class PoolReport:
    pool: str
    reference: Mapping[str, Reference]
    nodes: tuple[NodeVerdict, ...]

    @property
    def outliers(self) -> tuple[NodeVerdict, ...]:
        return tuple(v for v in self.nodes if v.outlier)


@dataclass(frozen=True, slots=True)
class FleetReport:
    pools: tuple[PoolReport, ...]
    unpooled: tuple[str, ...] = field(default=())  # nodes matching no pool of the policy
    index: Mapping[str, NodeVerdict] = field(default_factory=lambda: _NO_VERDICTS, compare=False)

    @property
    def outliers(self) -> tuple[NodeVerdict, ...]:
        return tuple(v for p in self.pools for v in p.outliers)

    def verdict(self, node: str) -> NodeVerdict | None:
        return self.index.get(node)


def stack_of(node: Node, driver_from_metrics: str | None = None) -> NodeStack:
    """Read a node's stack from its labels, nodeInfo and the agent's annotation.

    GFD labels are authoritative for the driver; the agent's annotation and dcgm-exporter only
    fill what GFD does not publish, so two sources never disagree silently.
    """
    labels = node.labels
    versions: dict[str, str] = {}
    raw = node.annotations.get(ANNOTATION_STACK)
    agent = _agent_stack(raw) if raw else _NO_STACK
    driver = _joined(labels, _DRIVER_LABELS) or agent.get("driver") or driver_from_metrics
    cuda = _joined(labels, _CUDA_LABELS) or agent.get("cuda")
    nccl = agent.get("nccl")
    if driver:
        versions["driver"] = driver
    if cuda:
        versions["cuda"] = cuda
    if nccl:
        versions["nccl"] = nccl
    info = node.info
    if info:
        for key, info_key in _NODE_INFO_ITEMS:
            value = info.get(info_key)
            if value and (value := value.strip()):
                versions[key] = value
    product = (labels.get(LABEL_GPU_PRODUCT) or "").strip()
    mig = _MIG_SUFFIX in product or labels.get(LABEL_MIG_STRATEGY, "none") not in ("", "none")
    if product:
        versions["gpu_product"] = product.split(_MIG_SUFFIX, 1)[0]
    count_label = labels.get(LABEL_GPU_COUNT, "")
    if count_label.isdigit():
        advertised: int | None = int(count_label)
    elif mig or node.gpus == 0:
        # MIG: allocatable counts slices, not GPUs. None at all: the device plugin has not
        # registered yet (a booting node), which is not a vanished GPU.
        advertised = None
    else:
        advertised = node.gpus
    return NodeStack(node.name, labels.get(LABEL_POOL), versions, advertised, mig)


def check_fleet(
    nodes: Iterable[Node], policy: Policy, driver_from_metrics: Mapping[str, str] | None = None
) -> FleetReport:
    """Group nodes by the policy's pools and judge each against its pool's reference stack.

    Deterministic: pools in policy order, nodes by name. Pools select nodes by their node
    selector; a node selected by no pool is listed in `unpooled` and judged by nothing.
    Fleets are uniform, so nodes are grouped by what their stack is read from: a 5,000-node
    pool has a handful of distinct stacks, each read, counted and judged once.
    """
    metrics = driver_from_metrics or {}
    members: dict[str, list[tuple[str, int]]] = {p.name: [] for p in policy.pools}
    ids: dict[_StackInputs, int] = {}  # distinct inputs → index into stacks (hashed once per node)
    stacks: list[NodeStack] = []
    pool_of = pool_matcher(policy.pools)
    unpooled: list[str] = []
    for node in sorted(nodes, key=by_name):
        pool_name = pool_of(node)
        if pool_name is None:
            unpooled.append(node.name)
            continue
        driver = metrics.get(node.name)
        inputs = _stack_inputs(node, driver)
        stack_id = ids.get(inputs)
        if stack_id is None:
            stack_id = ids[inputs] = len(stacks)
            stacks.append(stack_of(node, driver))
        members[pool_name].append((node.name, stack_id))
    reports = []
    components = [c for c in COMPONENTS if c not in policy.fleet.ignore]
    for pool in policy.pools:
        counts = [0] * len(stacks)
        for _, stack_id in members[pool.name]:
            counts[stack_id] += 1
        seen: dict[str, dict[str, int]] = {c: {} for c in components}
        for stack_id, count in enumerate(counts):
            if not count:
                continue
            for c, version in stacks[stack_id].versions.items():
                if c in seen:
                    seen[c][version] = seen[c].get(version, 0) + count
        pins = policy.fleet.pinned.get(pool.name, {})
        reference: dict[str, Reference] = {c: _reference(seen[c], pins.get(c)) for c in components}
        verdicts = _judge_all(members[pool.name], stacks, pool, reference)
        reports.append(PoolReport(pool.name, MappingProxyType(reference), verdicts))
    index = {v.node: v for r in reports for v in r.nodes}
    return FleetReport(tuple(reports), tuple(unpooled), MappingProxyType(index))


_StackInputs = tuple[object, ...]
_STACK_LABELS = (
    *(key for forms in (_DRIVER_LABELS, _CUDA_LABELS) for keys in forms for key in keys),
    LABEL_GPU_PRODUCT,
    LABEL_GPU_COUNT,
    LABEL_MIG_STRATEGY,
)


def _stack_inputs(node: Node, driver_from_metrics: str | None) -> _StackInputs:
    """Everything stack_of reads, except the node's name: equal inputs, equal stacks."""
    info = node.info
    return (
        tuple(map(node.labels.get, _STACK_LABELS)),
        node.annotations.get(ANNOTATION_STACK),
        tuple(info.items()) if info else (),
        node.gpus,
        driver_from_metrics,
    )


def pool_reference(component: str, stacks: Sequence[NodeStack], pinned: Sequence[str] | None) -> Reference:
    """The pinned versions when the policy names them, else the strict majority's version.

    A strict majority (more than half of the nodes that report the component) is required:
    halfway through a rolling upgrade there is no majority and nobody is an outlier, which is
    why an upgrade should be pinned to its target in the policy.
    """
    return _reference(Counter(s.versions[component] for s in stacks if component in s.versions), pinned)


def _reference(seen: Mapping[str, int], pinned: Sequence[str] | None) -> Reference:
    if pinned:
        return Reference(tuple(pinned), "pinned")
    if not seen:
        return Reference((), "none", "no node reports it")
    (top, count), *rest = sorted(seen.items(), key=lambda kv: -kv[1])
    total = sum(seen.values())
    if count * 2 <= total or (rest and rest[0][1] == count):
        return Reference((), "none", f"no majority among {total} nodes: {dict(sorted(seen.items()))}")
    return Reference((top,), "majority", f"{count} of {total} nodes")


def serving_allowed(node: Node, report: FleetReport) -> tuple[bool, str]:
    """Gate for marking a (burst) node serving: its stack must match its pool's reference.

    A node the report does not know, or one with unknown components, may serve: the gate
    blocks what is known to differ, it does not demand labels a cluster may not publish.
    """
    verdict = report.verdict(node.name)
    if verdict is None or not verdict.outlier:
        return True, "consistent"
    return False, verdict.summary()


def _judge_all(
    members: Sequence[tuple[str, int]],
    stacks: Sequence[NodeStack],
    pool: Pool,
    reference: Mapping[str, Reference],
) -> tuple[NodeVerdict, ...]:
    """Verdicts in node order; nodes with the same stack share one comparison."""
    checks = tuple(reference.items())
    judged: list[tuple[tuple[Difference, ...], tuple[str, ...]] | None] = [None] * len(stacks)
    out = []
    for name, stack_id in members:
        stack = stacks[stack_id]
        found = judged[stack_id]
        if found is None:
            found = judged[stack_id] = _compare(stack.versions, checks)
        out.append(
            NodeVerdict(name, pool.name, found[0], found[1], stack.gpus_advertised, pool.gpus_per_node)
        )
    return tuple(out)


def _compare(
    versions: Mapping[str, str], checks: Sequence[tuple[str, Reference]]
) -> tuple[tuple[Difference, ...], tuple[str, ...]]:
    differences = []
    unknown = []
    for component, ref in checks:
        have = versions.get(component)
        if have is None:
            unknown.append(component)
        elif ref.accepted and have not in ref.accepted:
            differences.append(Difference(component, have, ref.accepted, ref.source))
    return tuple(differences), tuple(unknown)


def _joined(labels: Mapping[str, str], forms: Sequence[Sequence[str]]) -> str | None:
    for keys in forms:
        first = labels.get(keys[0])
        if first and first.strip():
            parts = (labels.get(k, "").strip() for k in keys)
            return ".".join(p for p in parts if p)
    return None


def _agent_stack(raw: str | None) -> dict[str, str]:
    """The agent's `operatord.io/stack` JSON object; anything malformed reads as empty."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float) and str(v).strip()}


# ---------------------------------------------------------------------------- what to do about skew

CONSISTENT_REASON = "VersionsConsistent"
SKEW_REASON = "VersionSkew"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStackCondition(Action):
    """Record the node's stack verdict as the GPUStackConsistent condition (with an Event when it
    changes). A finding, so it is written in every mode and while paused (design §1.1)."""

    consistent: bool
    message: str
    min_mode: typing.ClassVar[Mode] = Mode.OBSERVE
    kind: typing.ClassVar[str] = "stack_condition"


def plan_fleet(report: FleetReport, nodes: Iterable[Node], policy: Policy, state: OperatordState) -> Plan:
    """stack_conditions, then skew_cordons: what the fleet check asks for this tick."""
    named = {n.name: n for n in nodes}
    cordons = skew_cordons(report, named, policy, state)
    return Plan(stack_conditions(report, named) + cordons.actions, cordons.holds)


def stack_conditions(report: FleetReport, named: Mapping[str, Node]) -> tuple[Action, ...]:
    """A GPUStackConsistent condition for every judged node whose recorded verdict is out of date.

    Written only when the verdict changed, so a steady fleet costs no API writes. Depends on the
    report and the nodes alone (decide reuses it while neither changed)."""
    actions: list[Action] = []
    for pool_report in report.pools:
        for verdict in pool_report.nodes:
            actions.extend(_condition_update(named[verdict.node], verdict))
    return tuple(actions)


def skew_cordons(
    report: FleetReport, named: Mapping[str, Node], policy: Policy, state: OperatordState
) -> Plan:
    """A cordon for each outlier of a burst pool, and of any pool with `fleet.cordon_outliers`,
    inside the same guards as remediation.

    Cordons are held while paused or with the breaker open, and never take more than the pool's
    `max_unhealthy_fraction` share at once: a bad driver rollout makes half a pool "outliers",
    and cordoning all of it would be the outage.
    """
    actions: list[Action] = []
    holds: list[Hold] = []
    for pool_report in report.pools:
        pool = policy.pool(pool_report.pool)
        assert pool is not None
        if not (policy.fleet.cordon_outliers or pool.kind == "burst"):
            continue  # a burst node is cordoned regardless: it must not start serving with a skewed stack
        outliers = [named[v.node] for v in pool_report.outliers]
        already = sum(1 for n in outliers if n.unschedulable)
        fraction = (
            pool.max_unhealthy_fraction
            if pool.max_unhealthy_fraction is not None
            else policy.remediation.max_unhealthy_fraction
        )
        room = guards.share_limit(len(pool_report.nodes), fraction) - already
        for node in (n for n in outliers if not n.unschedulable):
            skew = report.verdict(node.name)
            assert skew is not None
            blocked = _cordon_blocker(state, room)
            if blocked is not None:
                holds.append(Hold(blocked, node.name, detail(skew=skew.summary()), "cordon"))
                continue
            room -= 1
            actions.append(
                Cordon(
                    key=action_key("cordon", node.name, Reason.VERSION_SKEW.value, skew.summary()),
                    reason=Reason.VERSION_SKEW.value,
                    node=node.name,
                    owner=OPERATORD_OWNER,
                    to_state=None,
                    detail=detail(skew=skew.summary()),
                )
            )
    return Plan(tuple(actions), tuple(holds))


def stack_consistent(node: Node) -> bool:
    """The recorded verdict (GPUStackConsistent): False only once the daemon found the node's stack
    differs from its pool's. The burst lifecycle reads it so a skewed burst node never serves."""
    condition = node.condition(CONDITION_STACK_CONSISTENT)
    return condition is None or condition.status != "False"


def holds_cordon(node: Node) -> bool:
    """True while a version-skew cordon must stay: operatord cordoned the node for skew and its
    stack is still recorded as inconsistent (remediation must not uncordon it as "recovered")."""
    owner = node.cordon_owner
    condition = node.condition(CONDITION_STACK_CONSISTENT)
    return (
        owner is not None
        and owner.is_operatord
        and owner.reason == Reason.VERSION_SKEW.value
        and condition is not None
        and condition.status == "False"
    )


def _condition_update(node: Node, verdict: NodeVerdict) -> list[Action]:
    current = node.condition(CONDITION_STACK_CONSISTENT)
    outlier = verdict.outlier
    if current is None and not outlier:
        return []  # nothing to say about a node that has always been consistent
    status = "False" if outlier else "True"
    message = verdict.summary()
    if current is not None and current.status == status and current.message == message:
        return []
    return [
        SetStackCondition(
            key=action_key("stack_condition", node.name, status, message),
            reason=Reason.VERSION_SKEW.value if verdict.outlier else Reason.NODE_RECOVERED.value,
            node=node.name,
            consistent=not verdict.outlier,
            message=message,
        )
    ]


def _cordon_blocker(state: OperatordState, room: int) -> str | None:
    if state.pause is not None:
        return Reason.PAUSED.value
    if state.breaker.open:
        return Reason.BREAKER_OPEN.value
    if room <= 0:
        return Reason.FLEET_SICK.value
    return None
