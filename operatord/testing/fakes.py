"""Testing: in-memory fakes of the ports, with the same semantics as the real adapters.

Each fake passes its port's contract suite (the same one the adapter passes), records a call
log (`calls`: method name and arguments, in order) and takes injected failures (`fail_next`).
Tests never reach into private state: they read back through the port or the call log.

Sections: FakeClusterApi (operatord.ports.cluster). Other fakes are appended below their own
section header.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from operatord.core.model import (
    ConfigMap,
    CordonOwner,
    Event,
    EvictOutcome,
    EvictResult,
    Lease,
    Listing,
    Node,
    NodeCondition,
    Pod,
    Scale,
    Taint,
    WatchEvent,
    WatchKind,
    WorkloadKey,
    frozen_map,
)
from operatord.ports.cluster import ClusterError, Conflict, Gone, NotFound
from operatord.testing.kube_server import ApiError, label_matcher
from operatord.vocab import ANNOTATION_CORDON_REASON, ANNOTATION_CORDONED_AT, ANNOTATION_CORDONED_BY

_OWNER_KEYS = (ANNOTATION_CORDONED_BY, ANNOTATION_CORDON_REASON, ANNOTATION_CORDONED_AT)

# ====================================================================== FakeClusterApi


@dataclass(frozen=True, slots=True)
class FakePdb:
    """A PodDisruptionBudget: matchLabels selector and minAvailable or maxUnavailable (int or "N%")."""

    namespace: str
    name: str
    match_labels: Mapping[str, str]
    min_available: int | str | None = None
    max_unavailable: int | str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    args: tuple[Any, ...]


def _selector(selector: str | None) -> Any:
    try:
        return label_matcher(selector)
    except ApiError as err:
        raise ClusterError(err.message, 400) from None


def _everything(labels: Mapping[str, str]) -> bool:
    return True


def _percent(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(float(value[:-1]) / 100.0 * total)
    return int(value)


class FakeClusterApi:
    """ClusterApi in memory. Global resourceVersion, 409 on stale writes, PDB-aware eviction
    (429; 500 when two PDBs select a pod), label/field selection, resumable watch with 410 after
    `compact()`. Thread-safe. Seed with `add_node`, `add_pod`, `add_pdb`, `add_configmap`,
    `add_workload`; `calls` is the log of port calls; `fail_next(method, error)` injects errors."""

    def __init__(self, *, history: int = 10_000) -> None:
        self._lock = threading.RLock()
        self._rv = 100
        self._nodes: dict[str, Node] = {}
        self._pods: dict[tuple[str, str], Pod] = {}
        self._pdbs: dict[tuple[str, str], FakePdb] = {}
        self._pdb_expected: dict[tuple[str, str], int] = {}
        self._configmaps: dict[tuple[str, str], ConfigMap] = {}
        self._leases: dict[tuple[str, str], Lease] = {}
        self._scales: dict[WorkloadKey, Scale] = {}
        self._changes: deque[tuple[int, str, WatchEvent[Any]]] = deque(maxlen=history)
        self._compacted = self._rv
        self._failures: dict[str, list[Exception]] = {}
        self.events: list[Event] = []
        self.calls: list[Call] = []
        # Lists repeat between writes (the simulator lists pods several times a tick): a listing
        # is kept until an object of its kind changes. Its resourceVersion is the one it was made
        # at, still a consistent snapshot: nothing it lists changed since.
        self._node_lists: dict[str | None, Listing[Node]] = {}
        self._pod_lists: dict[tuple[str | None, str | None, str | None], Listing[Pod]] = {}
        self._matchers: dict[str | None, Any] = {}

    # ---- seeding (not port methods; not logged)
    def add_node(self, node: Node) -> Node:
        with self._lock:
            stored = replace(node, resource_version=self._bump())
            self._nodes[node.name] = stored
            self._node_lists.clear()
            self._emit("node", WatchKind.ADDED, stored)
            return stored

    def add_pod(self, pod: Pod) -> Pod:
        with self._lock:
            stored = replace(pod, resource_version=self._bump())
            self._pods[(pod.namespace, pod.name)] = stored
            self._pod_lists.clear()
            self._emit("pod", WatchKind.ADDED, stored)
            return stored

    def add_pdb(self, pdb: FakePdb) -> None:
        with self._lock:
            self._pdbs[(pdb.namespace, pdb.name)] = pdb

    def add_configmap(self, cm: ConfigMap) -> ConfigMap:
        with self._lock:
            stored = replace(cm, resource_version=self._bump())
            self._configmaps[(cm.namespace, cm.name)] = stored
            return stored

    def add_workload(self, workload: WorkloadKey, replicas: int, current: int | None = None) -> None:
        with self._lock:
            self._scales[workload] = Scale(
                workload, replicas, replicas if current is None else current, self._bump()
            )

    def update_node(self, node: Node) -> Node:
        """Change a node as kubelet or a human would (bumps its resourceVersion)."""
        with self._lock:
            if node.name not in self._nodes:
                raise NotFound(f'nodes "{node.name}" not found', 404)
            return self._put_node(node)

    def remove_pod(self, namespace: str, name: str) -> None:
        with self._lock:
            self._drop_pod(namespace, name)

    def compact(self) -> None:
        """Forget watch history: watching from any earlier resourceVersion raises Gone."""
        with self._lock:
            self._changes.clear()
            self._compacted = self._rv

    def fail_next(self, method: str, error: Exception, times: int = 1) -> None:
        with self._lock:
            self._failures.setdefault(method, []).extend([error] * times)

    # ---- internals
    def _matcher(self, selector: str | None) -> Any:
        """The compiled selector (compiled once per distinct string; a malformed one raises 400)."""
        if not selector:
            return _everything
        match = self._matchers.get(selector)
        if match is None:
            match = self._matchers[selector] = _selector(selector)
        return match

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _enter(self, method: str, *args: Any) -> None:
        self.calls.append(Call(method, args))
        queue = self._failures.get(method)
        if queue:
            raise queue.pop(0)

    def _emit(self, kind: str, type_: WatchKind, obj: Any) -> None:
        rv = int(self._rv)
        if self._changes.maxlen is not None and len(self._changes) == self._changes.maxlen:
            self._compacted = self._changes[0][0]
        self._changes.append((rv, kind, WatchEvent(type_, obj, str(rv))))

    def _node(self, name: str) -> Node:
        node = self._nodes.get(name)
        if node is None:
            raise NotFound(f'nodes "{name}" not found', 404)
        return node

    def _put_node(self, node: Node) -> Node:
        stored = replace(node, resource_version=self._bump())
        self._nodes[node.name] = stored
        self._node_lists.clear()
        self._emit("node", WatchKind.MODIFIED, stored)
        return stored

    def _check_rv(self, kind: str, name: str, current: str, wanted: str | None) -> None:
        if wanted and wanted != current:
            raise Conflict(
                f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                409,
            )

    def _drop_pod(self, namespace: str, name: str) -> None:
        pod = self._pods.pop((namespace, name), None)
        if pod is not None:
            self._pod_lists.clear()
            self._bump()
            self._emit("pod", WatchKind.DELETED, pod)

    def _watch(
        self, kind: str, resource_version: str, keep: Any, timeout_s: int
    ) -> Iterator[WatchEvent[Any]]:
        """Events after resource_version (no blocking: the fake's world only moves when a test
        moves it, so a watch returns what happened so far and ends, like a timed-out watch)."""
        with self._lock:
            since = int(resource_version or self._rv)
            if since < self._compacted:
                raise Gone(f"too old resource version: {since} ({self._compacted})", 410)
            pending = [ev for rv, k, ev in self._changes if rv > since and k == kind and keep(ev.obj)]
        yield from pending

    # ---- nodes
    def get_node(self, name: str) -> Node:
        with self._lock:
            self._enter("get_node", name)
            return self._node(name)

    def list_nodes(self, label_selector: str | None = None) -> Listing[Node]:
        with self._lock:
            self._enter("list_nodes", label_selector)
            match = self._matcher(label_selector)
            listing = self._node_lists.get(label_selector)
            if listing is None:
                items = tuple(n for _, n in sorted(self._nodes.items()) if match(n.labels))
                listing = self._node_lists[label_selector] = Listing(items, str(self._rv))
            return listing

    def watch_nodes(
        self, resource_version: str, *, label_selector: str | None = None, timeout_s: int = 60
    ) -> Iterator[WatchEvent[Node]]:
        with self._lock:
            self._enter("watch_nodes", resource_version, label_selector)
            match = self._matcher(label_selector)
        return self._watch("node", resource_version, lambda n: match(n.labels), timeout_s)

    def patch_node_annotations(
        self, name: str, annotations: Mapping[str, str | None], *, resource_version: str | None = None
    ) -> Node:
        with self._lock:
            self._enter("patch_node_annotations", name, dict(annotations), resource_version)
            node = self._node(name)
            self._check_rv("nodes", name, node.resource_version, resource_version)
            merged = dict(node.annotations)
            for k, v in annotations.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            return self._put_node(replace(node, annotations=frozen_map(merged)))

    def set_node_condition(self, name: str, condition: NodeCondition) -> Node:
        with self._lock:
            self._enter("set_node_condition", name, condition)
            node = self._node(name)
            old = node.condition(condition.type)
            transition = condition.last_transition_time
            if transition is None:
                same = old is not None and old.status == condition.status
                transition = old.last_transition_time if same and old else datetime.now(UTC)
            new = replace(condition, last_transition_time=transition)
            others = tuple(c for c in node.conditions if c.type != condition.type)
            kept = tuple(new if c.type == condition.type else c for c in node.conditions)
            conditions = kept if old is not None else (*others, new)
            return self._put_node(replace(node, conditions=conditions))

    def cordon(
        self, name: str, owner: CordonOwner, *, resource_version: str | None = None
    ) -> tuple[Node, bool]:
        with self._lock:
            self._enter("cordon", name, owner, resource_version)
            node = self._node(name)
            self._check_rv("nodes", name, node.resource_version, resource_version)
            if node.unschedulable:
                return node, False
            annotations = {**node.annotations, **owner.annotations()}
            return self._put_node(
                replace(node, unschedulable=True, annotations=frozen_map(annotations))
            ), True

    def uncordon(self, name: str, *, resource_version: str | None = None) -> tuple[Node, bool]:
        with self._lock:
            self._enter("uncordon", name, resource_version)
            node = self._node(name)
            self._check_rv("nodes", name, node.resource_version, resource_version)
            stale = any(k in node.annotations for k in _OWNER_KEYS)
            if not node.unschedulable and not stale:
                return node, False
            annotations = {k: v for k, v in node.annotations.items() if k not in _OWNER_KEYS}
            return self._put_node(
                replace(node, unschedulable=False, annotations=frozen_map(annotations))
            ), True

    def add_taint(self, name: str, taint: Taint) -> tuple[Node, bool]:
        with self._lock:
            self._enter("add_taint", name, taint)
            node = self._node(name)
            if any(t.key == taint.key and t.effect == taint.effect for t in node.taints):
                return node, False
            return self._put_node(replace(node, taints=(*node.taints, taint))), True

    def remove_taint(self, name: str, key: str, effect: str) -> tuple[Node, bool]:
        with self._lock:
            self._enter("remove_taint", name, key, effect)
            node = self._node(name)
            kept = tuple(t for t in node.taints if not (t.key == key and t.effect == effect))
            if len(kept) == len(node.taints):
                return node, False
            return self._put_node(replace(node, taints=kept)), True

    def delete_node(self, name: str) -> None:
        with self._lock:
            self._enter("delete_node", name)
            node = self._node(name)
            del self._nodes[name]
            self._node_lists.clear()
            self._bump()
            self._emit("node", WatchKind.DELETED, node)

    # ---- pods
    def list_pods(
        self, *, namespace: str | None = None, node_name: str | None = None, label_selector: str | None = None
    ) -> Listing[Pod]:
        with self._lock:
            self._enter("list_pods", namespace, node_name, label_selector)
            match = self._matcher(label_selector)
            key = (namespace, node_name, label_selector)
            listing = self._pod_lists.get(key)
            if listing is None:
                items = tuple(
                    p
                    for _, p in sorted(self._pods.items())
                    if (namespace is None or p.namespace == namespace)
                    and (node_name is None or p.node_name == node_name)
                    and match(p.labels)
                )
                listing = self._pod_lists[key] = Listing(items, str(self._rv))
            return listing

    def watch_pods(
        self,
        resource_version: str,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
        timeout_s: int = 60,
    ) -> Iterator[WatchEvent[Pod]]:
        with self._lock:
            self._enter("watch_pods", resource_version, namespace, node_name, label_selector)
            match = self._matcher(label_selector)

        def keep(p: Pod) -> bool:
            return (
                (namespace is None or p.namespace == namespace)
                and (node_name is None or p.node_name == node_name)
                and match(p.labels)
            )

        return self._watch("pod", resource_version, keep, timeout_s)

    def evict(self, namespace: str, name: str, *, grace_period_s: int | None = None) -> EvictOutcome:
        with self._lock:
            self._enter("evict", namespace, name, grace_period_s)
            pod = self._pods.get((namespace, name))
            if pod is None:
                return EvictOutcome(EvictResult.GONE)
            pdbs = [
                b
                for (ns, _), b in sorted(self._pdbs.items())
                if ns == namespace and all(pod.labels.get(k) == v for k, v in b.match_labels.items())
            ]
            if len(pdbs) > 1:
                return EvictOutcome(
                    EvictResult.FAILED,
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                )
            if pdbs and pod.phase == "Running":
                allowed, healthy, desired = self._allowed(pdbs[0])
                if allowed <= 0 and (pod.ready or healthy < desired):
                    return EvictOutcome(
                        EvictResult.BLOCKED,
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                    )
            self._drop_pod(namespace, name)
            return EvictOutcome(EvictResult.EVICTED)

    def _allowed(self, pdb: FakePdb) -> tuple[int, int, int]:
        selected = [
            p
            for (ns, _), p in self._pods.items()
            if ns == pdb.namespace
            and all(p.labels.get(k) == v for k, v in pdb.match_labels.items())
            and not p.finished
        ]
        # Expected pods: the most the budget has selected (a controller recreates evicted replicas).
        key = (pdb.namespace, pdb.name)
        expected = max(self._pdb_expected.get(key, 0), len(selected))
        self._pdb_expected[key] = expected
        healthy = sum(1 for p in selected if p.phase == "Running" and p.ready)
        if pdb.min_available is not None:
            desired = _percent(pdb.min_available, expected)
        elif pdb.max_unavailable is not None:
            desired = max(0, expected - _percent(pdb.max_unavailable, expected))
        else:
            desired = 0
        return healthy - desired, healthy, desired

    def delete_pod(self, namespace: str, name: str, *, grace_period_s: int | None = None) -> bool:
        with self._lock:
            self._enter("delete_pod", namespace, name, grace_period_s)
            if (namespace, name) not in self._pods:
                return False
            self._drop_pod(namespace, name)
            return True

    def patch_pod_annotations(self, namespace: str, name: str, annotations: Mapping[str, str | None]) -> Pod:
        with self._lock:
            self._enter("patch_pod_annotations", namespace, name, dict(annotations))
            pod = self._pods.get((namespace, name))
            if pod is None:
                raise NotFound(f'pods "{name}" not found', 404)
            merged = {k: v for k, v in {**pod.annotations, **annotations}.items() if v is not None}
            stored = replace(pod, annotations=frozen_map(merged), resource_version=self._bump())
            self._pods[(namespace, name)] = stored
            self._pod_lists.clear()
            self._emit("pod", WatchKind.MODIFIED, stored)
            return stored

    # ---- events
    def create_event(self, event: Event) -> None:
        with self._lock:
            self._enter("create_event", event)
            self.events.append(event)

    # ---- leases
    def get_lease(self, namespace: str, name: str) -> Lease:
        with self._lock:
            self._enter("get_lease", namespace, name)
            lease = self._leases.get((namespace, name))
            if lease is None:
                raise NotFound(f'leases.coordination.k8s.io "{name}" not found', 404)
            return lease

    def create_lease(self, lease: Lease) -> Lease:
        with self._lock:
            self._enter("create_lease", lease)
            if (lease.namespace, lease.name) in self._leases:
                raise Conflict(f'leases.coordination.k8s.io "{lease.name}" already exists', 409)
            stored = replace(lease, resource_version=self._bump())
            self._leases[(lease.namespace, lease.name)] = stored
            return stored

    def replace_lease(self, lease: Lease) -> Lease:
        with self._lock:
            self._enter("replace_lease", lease)
            if not lease.resource_version:
                raise ValueError("replace_lease needs the resource_version that was read (compare-and-set)")
            current = self._leases.get((lease.namespace, lease.name))
            if current is None:
                raise NotFound(f'leases.coordination.k8s.io "{lease.name}" not found', 404)
            self._check_rv(
                "leases.coordination.k8s.io", lease.name, current.resource_version, lease.resource_version
            )
            stored = replace(lease, resource_version=self._bump())
            self._leases[(lease.namespace, lease.name)] = stored
            return stored

    # ---- configmaps
    def get_configmap(self, namespace: str, name: str) -> ConfigMap:
        with self._lock:
            self._enter("get_configmap", namespace, name)
            cm = self._configmaps.get((namespace, name))
            if cm is None:
                raise NotFound(f'configmaps "{name}" not found', 404)
            return cm

    def list_configmaps(self, namespace: str, label_selector: str | None = None) -> Listing[ConfigMap]:
        with self._lock:
            self._enter("list_configmaps", namespace, label_selector)
            match = self._matcher(label_selector)
            items = tuple(
                c for (ns, _), c in sorted(self._configmaps.items()) if ns == namespace and match(c.labels)
            )
            return Listing(items, str(self._rv))

    def create_configmap(self, configmap: ConfigMap) -> ConfigMap:
        with self._lock:
            self._enter("create_configmap", configmap)
            key = (configmap.namespace, configmap.name)
            if key in self._configmaps:
                raise Conflict(f'configmaps "{configmap.name}" already exists', 409)
            stored = replace(
                configmap,
                data=frozen_map(configmap.data),
                labels=frozen_map(configmap.labels),
                resource_version=self._bump(),
            )
            self._configmaps[key] = stored
            return stored

    def replace_configmap(self, configmap: ConfigMap) -> ConfigMap:
        with self._lock:
            self._enter("replace_configmap", configmap)
            if not configmap.resource_version:
                raise ValueError(
                    "replace_configmap needs the resource_version that was read (compare-and-set)"
                )
            key = (configmap.namespace, configmap.name)
            current = self._configmaps.get(key)
            if current is None:
                raise NotFound(f'configmaps "{configmap.name}" not found', 404)
            self._check_rv("configmaps", configmap.name, current.resource_version, configmap.resource_version)
            stored = replace(
                configmap,
                data=frozen_map(configmap.data),
                labels=frozen_map(configmap.labels),
                resource_version=self._bump(),
            )
            self._configmaps[key] = stored
            return stored

    def delete_configmap(self, namespace: str, name: str, *, resource_version: str | None = None) -> None:
        with self._lock:
            self._enter("delete_configmap", namespace, name, resource_version)
            current = self._configmaps.get((namespace, name))
            if current is None:
                raise NotFound(f'configmaps "{name}" not found', 404)
            self._check_rv("configmaps", name, current.resource_version, resource_version)
            del self._configmaps[(namespace, name)]
            self._bump()

    # ---- scale
    def get_scale(self, workload: WorkloadKey) -> Scale:
        with self._lock:
            self._enter("get_scale", workload)
            scale = self._scales.get(workload)
            if scale is None:
                raise NotFound(f'{workload.kind} "{workload.namespace}/{workload.name}" not found', 404)
            return scale

    def set_scale(
        self, workload: WorkloadKey, replicas: int, *, resource_version: str | None = None
    ) -> Scale:
        with self._lock:
            self._enter("set_scale", workload, replicas, resource_version)
            if replicas < 0:
                raise ValueError(f"replicas must not be negative, got {replicas}")
            scale = self._scales.get(workload)
            if scale is None:
                raise NotFound(f'{workload.kind} "{workload.namespace}/{workload.name}" not found', 404)
            self._check_rv("scale", workload.name, scale.resource_version, resource_version)
            stored = replace(scale, replicas=replicas, resource_version=self._bump())
            self._scales[workload] = stored
            if replicas < scale.replicas:
                # The disruption controller re-reads a workload's expected pods after a scale-in;
                # without this, a PDB would keep counting the removed replicas and block every eviction.
                for key in [k for k in self._pdb_expected if k[0] == workload.namespace]:
                    del self._pdb_expected[key]
            return stored
