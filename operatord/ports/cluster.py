"""Port: the Kubernetes cluster as operatord sees it (nodes, pods, leases, ConfigMaps, scale).

Properties every implementation (KubeClusterApi over HTTP, FakeClusterApi in memory) must have,
checked by one contract suite (tests/k8s/test_cluster_contract.py):

* **Typed values only.** What crosses the port is operatord.core.model dataclasses; no client
  objects, no raw dicts beyond labels, annotations and ConfigMap data.
* **Compare-and-set.** Every write that takes `resource_version` fails with `Conflict` when the
  object changed since that version; without it the write is last-writer-wins. A successful
  write returns the new object (with its new resource version).
* **Idempotent node edits.** `cordon` of an unschedulable node and `uncordon` of a schedulable
  one change nothing (and say so); `add_taint` of a present taint and `remove_taint` of an
  absent one likewise.
* **Eviction honours PodDisruptionBudgets.** `evict` never raises for the outcomes a drain must
  handle: 429 (a PDB allows no disruption now) is `EvictResult.BLOCKED`, 404 is `GONE`, a 500
  (e.g. several PDBs select the pod) is `FAILED` with the server's message.
* **Selectors are server-side.** `list_pods(node_name=...)` uses the field selector
  `spec.nodeName`; label selectors are Kubernetes syntax (`a=b,c!=d,e in (f,g),h,!i`).
* **Watch is resumable.** `watch_*` yields events after `resource_version`; when that version is
  too old it raises `Gone`, and the caller relists (list, then watch from the listing's version).
  A watch ends quietly after `timeout_s`; it never returns events out of order.
* **Errors are classified.** `NotFound`, `Conflict` (409, including AlreadyExists), `Gone` (410),
  `Unreachable` (connection refused, timeouts, 5xx other than eviction's: retry later);
  anything else is a `ClusterError` with the HTTP status and message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from operatord.core.model import (
    ConfigMap,
    CordonOwner,
    Event,
    EvictOutcome,
    Lease,
    Listing,
    Node,
    NodeCondition,
    Pod,
    Scale,
    Taint,
    WatchEvent,
    WorkloadKey,
)


class ClusterError(Exception):
    """The API server said no; `status` is the HTTP status (0 when there was no response)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ClusterError):
    """404: the object does not exist."""


class Conflict(ClusterError):
    """409: stale resourceVersion on a compare-and-set write, or the object already exists."""


class Gone(ClusterError):
    """410: the watch's resourceVersion is too old; relist."""


class Unreachable(ClusterError):
    """The API server could not be reached or is unavailable (connection, timeout, 5xx)."""


class ClusterApi(Protocol):
    """Everything operatord reads from and writes to Kubernetes. See the module docstring."""

    # ---- nodes
    def get_node(self, name: str) -> Node:
        """The node, or NotFound."""
        ...

    def list_nodes(self, label_selector: str | None = None) -> Listing[Node]: ...

    def watch_nodes(
        self, resource_version: str, *, label_selector: str | None = None, timeout_s: int = 60
    ) -> Iterator[WatchEvent[Node]]: ...

    def patch_node_annotations(
        self, name: str, annotations: Mapping[str, str | None], *, resource_version: str | None = None
    ) -> Node:
        """Set (value) or remove (None) annotations; others are untouched."""
        ...

    def set_node_condition(self, name: str, condition: NodeCondition) -> Node:
        """Status patch: add or replace the condition of that type; other conditions stay.
        `last_transition_time` is kept when the status did not change."""
        ...

    def cordon(
        self, name: str, owner: CordonOwner, *, resource_version: str | None = None
    ) -> tuple[Node, bool]:
        """Mark unschedulable and record the owner annotations. Returns (node, changed);
        an already-unschedulable node is left as it is (its owner too) and changed is False."""
        ...

    def uncordon(self, name: str, *, resource_version: str | None = None) -> tuple[Node, bool]:
        """Mark schedulable and remove the owner annotations. Returns (node, changed).
        Deciding whether operatord may uncordon (ownership) is the caller's job; pass the
        resource_version the decision was made on so a human's change in between wins (Conflict)."""
        ...

    def add_taint(self, name: str, taint: Taint) -> tuple[Node, bool]: ...

    def remove_taint(self, name: str, key: str, effect: str) -> tuple[Node, bool]: ...

    def delete_node(self, name: str) -> None:
        """Delete the Node object (a terminated burst instance); NotFound when already gone."""
        ...

    # ---- pods
    def list_pods(
        self,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> Listing[Pod]: ...

    def watch_pods(
        self,
        resource_version: str,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
        timeout_s: int = 60,
    ) -> Iterator[WatchEvent[Pod]]: ...

    def evict(self, namespace: str, name: str, *, grace_period_s: int | None = None) -> EvictOutcome:
        """POST pods/NAME/eviction (policy/v1). Never raises for 404/429/500; see module docstring."""
        ...

    def delete_pod(self, namespace: str, name: str, *, grace_period_s: int | None = None) -> bool:
        """Delete without the Eviction API (unmanaged pods under policy `delete`). False when gone."""
        ...

    def patch_pod_annotations(self, namespace: str, name: str, annotations: Mapping[str, str | None]) -> Pod:
        """E.g. controller.kubernetes.io/pod-deletion-cost, so scale-in removes burst replicas first."""
        ...

    # ---- events
    def create_event(self, event: Event) -> None:
        """Record a Kubernetes Event about an object (best effort is the caller's choice)."""
        ...

    # ---- leases (leader election)
    def get_lease(self, namespace: str, name: str) -> Lease:
        """The lease, or NotFound."""
        ...

    def create_lease(self, lease: Lease) -> Lease:
        """Create; Conflict when it exists."""
        ...

    def replace_lease(self, lease: Lease) -> Lease:
        """Compare-and-set on lease.resource_version (must be set); Conflict when stale."""
        ...

    # ---- configmaps (operatord-state, intents, policy)
    def get_configmap(self, namespace: str, name: str) -> ConfigMap:
        """The ConfigMap, or NotFound."""
        ...

    def list_configmaps(self, namespace: str, label_selector: str | None = None) -> Listing[ConfigMap]: ...

    def create_configmap(self, configmap: ConfigMap) -> ConfigMap:
        """Create; Conflict when it exists."""
        ...

    def replace_configmap(self, configmap: ConfigMap) -> ConfigMap:
        """Compare-and-set on configmap.resource_version (must be set); Conflict when stale."""
        ...

    def delete_configmap(self, namespace: str, name: str, *, resource_version: str | None = None) -> None: ...

    # ---- scale subresource (Deployment, StatefulSet; LeaderWorkerSet via custom objects)
    def get_scale(self, workload: WorkloadKey) -> Scale:
        """Desired and observed replicas, or NotFound."""
        ...

    def set_scale(
        self, workload: WorkloadKey, replicas: int, *, resource_version: str | None = None
    ) -> Scale: ...
