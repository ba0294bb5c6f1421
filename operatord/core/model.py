"""Pure. The value types that cross the cluster port and feed every decision.

Nodes, pods, leases, ConfigMaps and scale subresources as frozen dataclasses: the adapter
translates Kubernetes objects into these, the fakes build them directly, the core reads them.
They carry `resource_version` so a writer can compare-and-set, and nothing else of the API's
shape leaks through (no dicts of unknown keys except labels and annotations, which are data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Generic, TypeVar

from operatord.vocab import (
    ANNOTATION_CORDON_REASON,
    ANNOTATION_CORDONED_AT,
    ANNOTATION_CORDONED_BY,
    LABEL_POOL,
)

EMPTY: Mapping[str, str] = MappingProxyType({})
T = TypeVar("T")

OPERATORD_OWNER = "operatord"
HUMAN_OWNER_PREFIX = "human:"


def frozen_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    """An immutable copy (so a frozen dataclass stays frozen all the way down)."""
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute
    value: str | None = None


@dataclass(frozen=True, slots=True)
class NodeCondition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class CordonOwner:
    """Who cordoned a node and why (annotations of design §1.5); `by` is `operatord` or `human:<name>`."""

    by: str
    reason: str = ""
    at: datetime | None = None

    @property
    def is_operatord(self) -> bool:
        return self.by == OPERATORD_OWNER

    @property
    def is_human(self) -> bool:
        return not self.is_operatord

    def annotations(self) -> dict[str, str]:
        out = {ANNOTATION_CORDONED_BY: self.by, ANNOTATION_CORDON_REASON: self.reason[:256]}
        if self.at is not None:
            out[ANNOTATION_CORDONED_AT] = self.at.isoformat()
        return out


def human(name: str) -> str:
    """The owner string of a person (`human:<name>`)."""
    return f"{HUMAN_OWNER_PREFIX}{name}"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    unschedulable: bool = False
    taints: tuple[Taint, ...] = ()
    conditions: tuple[NodeCondition, ...] = ()
    gpus: int = 0  # allocatable nvidia.com/gpu
    resource_version: str = ""
    created_at: datetime | None = None
    info: Mapping[str, str] = field(
        default_factory=lambda: EMPTY
    )  # status.nodeInfo: kernelVersion, osImage, containerRuntimeVersion, kubeletVersion

    def condition(self, type_: str) -> NodeCondition | None:
        for c in self.conditions:  # a plain loop: called for every node on every tick
            if c.type == type_:
                return c
        return None

    @property
    def ready(self) -> bool:
        """Kubelet's Ready condition is True (a node without conditions counts as not ready)."""
        cond = self.condition("Ready")
        return cond is not None and cond.status == "True"

    @property
    def pool(self) -> str | None:
        return self.labels.get(LABEL_POOL)

    @property
    def cordon_owner(self) -> CordonOwner | None:
        """Who holds the cordon: None when schedulable. A cordon without our annotation
        (plain `kubectl cordon`) belongs to an unknown human."""
        if not self.unschedulable:
            return None
        by = self.annotations.get(ANNOTATION_CORDONED_BY) or human("unknown")
        at_text = self.annotations.get(ANNOTATION_CORDONED_AT)
        try:
            at = datetime.fromisoformat(at_text) if at_text else None
        except ValueError:
            at = None
        return CordonOwner(by=by, reason=self.annotations.get(ANNOTATION_CORDON_REASON, ""), at=at)


class OwnerKind(StrEnum):
    """The controller kinds drain cares about; anything else is OTHER."""

    DAEMON_SET = "DaemonSet"
    REPLICA_SET = "ReplicaSet"
    STATEFUL_SET = "StatefulSet"
    JOB = "Job"
    REPLICATION_CONTROLLER = "ReplicationController"
    NODE = "Node"  # mirror (static) pods are owned by their Node
    OTHER = "Other"


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    node_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    controller_kind: OwnerKind | None = None  # None: no controller (an unmanaged pod)
    controller_name: str | None = None
    phase: str = "Running"
    ready: bool = True
    mirror: bool = False  # kubernetes.io/config.mirror annotation present
    has_emptydir: bool = False
    gpus: int = 0  # nvidia.com/gpu requested by its containers
    termination_grace_s: int | None = None
    deleting: bool = False  # deletionTimestamp set
    resource_version: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """A consistent list and the resourceVersion to watch from."""

    items: tuple[T, ...]
    resource_version: str


class WatchKind(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[T]):
    kind: WatchKind
    obj: T
    resource_version: str


@dataclass(frozen=True, slots=True)
class ConfigMap:
    namespace: str
    name: str
    data: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    resource_version: str = ""  # "" for one not yet created


@dataclass(frozen=True, slots=True)
class Lease:
    namespace: str
    name: str
    holder: str | None = None
    duration_s: int = 15
    acquired_at: datetime | None = None
    renewed_at: datetime | None = None
    transitions: int = 0
    resource_version: str = ""


@dataclass(frozen=True, slots=True)
class WorkloadKey:
    """A scalable workload (policy WorkloadRef without pydantic)."""

    kind: str  # Deployment | StatefulSet | LeaderWorkerSet
    namespace: str
    name: str

    @property
    def api_version(self) -> str:
        """The kind's group/version, which an Event's involvedObject needs to name it."""
        return WORKLOAD_API_VERSIONS[self.kind]

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.name, self.namespace, self.api_version)


WORKLOAD_API_VERSIONS: Mapping[str, str] = MappingProxyType(
    {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "LeaderWorkerSet": "leaderworkerset.x-k8s.io/v1"}
)


@dataclass(frozen=True, slots=True)
class Scale:
    workload: WorkloadKey
    replicas: int  # desired (spec)
    current: int  # observed (status)
    resource_version: str = ""


class EvictResult(StrEnum):
    EVICTED = "evicted"  # accepted: the pod is terminating or gone
    GONE = "gone"  # the pod no longer exists (404): nothing to do
    BLOCKED = "blocked"  # 429: a PodDisruptionBudget allows no disruption now; retry later
    FAILED = "failed"  # 500 and friends: e.g. several PDBs select the pod (misconfigured)


@dataclass(frozen=True, slots=True)
class EvictOutcome:
    result: EvictResult
    message: str = ""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The Kubernetes object an Event is about (its involvedObject)."""

    kind: str
    name: str
    namespace: str = ""  # "" for cluster-scoped kinds (Node)
    api_version: str = "v1"

    @classmethod
    def node(cls, name: str) -> ObjectRef:
        return cls("Node", name)


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event about an object (kind/namespace/name/api_version), with a stable reason.

    `namespace` is the involved object's: the API server rejects a core/v1 Event whose own
    namespace differs from it, and wants `default` for a cluster-scoped object, so where the
    Event lives (`lives_in`) follows from it rather than being a second field to keep in step."""

    kind: str  # involved object kind, e.g. Node
    name: str
    reason: str
    message: str
    type: str = "Normal"  # Normal | Warning
    namespace: str = ""  # the involved object's namespace; "" for cluster-scoped kinds (Node)
    action: str = ""
    at: datetime | None = None
    api_version: str = "v1"  # the involved object's group/version, e.g. apps/v1 for a Deployment

    @property
    def lives_in(self) -> str:
        return self.namespace or "default"

    @property
    def involved(self) -> ObjectRef:
        return ObjectRef(self.kind, self.name, self.namespace, self.api_version)
