"""Adapter: Kubernetes. ClusterApi over the official `kubernetes` client.

Translation only: Kubernetes JSON ↔ operatord.core.model values, HTTP status ↔ the port's
error classes. Policy (who may uncordon, which pods to evict, how long to retry) lives in the
core and the shell. Responses are read as raw JSON (`_preload_content=False`) so a field the
client's models do not know never breaks a read, and watches parse the stream themselves so a
410 becomes `Gone` (the caller relists) instead of the client's silent internal retry.

Writes that depend on what was read are compare-and-set: the resourceVersion read travels in
the patch (`metadata.resourceVersion` in a JSON merge patch is a precondition in Kubernetes),
so a human's concurrent `kubectl cordon/uncordon` wins with a 409 rather than being overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

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
    OwnerKind,
    Pod,
    Scale,
    Taint,
    WatchEvent,
    WatchKind,
    WorkloadKey,
    frozen_map,
)
from operatord.ports.cluster import ClusterError, Conflict, Gone, NotFound, Unreachable
from operatord.vocab import ANNOTATION_CORDON_REASON, ANNOTATION_CORDONED_AT, ANNOTATION_CORDONED_BY

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
GPU_RESOURCE = "nvidia.com/gpu"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
LWS_GROUP, LWS_VERSION, LWS_PLURAL = "leaderworkerset.x-k8s.io", "v1", "leaderworkersets"
# A read that retries on Conflict gives up after this many rounds: a hot object means
# someone else is actively changing it, and the caller should see that.
_CAS_ROUNDS = 5

Raw = dict[str, Any]
T = TypeVar("T")


class ConfigError(Exception):
    """No usable in-cluster config or kubeconfig; the message says what was tried."""


def load_api_client(kubeconfig: Path | None = None, context: str | None = None) -> client.ApiClient:
    """In-cluster config when running in a pod (and no kubeconfig was named), else the kubeconfig
    (`kubeconfig`, then $KUBECONFIG, then ~/.kube/config)."""
    if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except config.ConfigException as err:
            raise ConfigError(f"in-cluster config: {err}") from None
        return client.ApiClient(cfg)
    path = kubeconfig or Path(
        os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or Path.home() / ".kube/config"
    )
    if not Path(path).is_file():
        raise ConfigError(
            f"no kubeconfig at {path} (use --kubeconfig or KUBECONFIG) and not running in a cluster"
        )
    cfg = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, client_configuration=cfg
        )
    except (config.ConfigException, OSError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from None
    return client.ApiClient(cfg)


class KubeClusterApi:
    """ClusterApi (operatord.ports.cluster) over an injected official ApiClient."""

    def __init__(self, api_client: client.ApiClient, *, request_timeout_s: float = 30.0) -> None:
        self._client = api_client
        self._timeout = request_timeout_s

    # The client imports each API group's module on first use (CoreV1Api alone takes ~0.5 s), so
    # build them on demand: a CLI command pays only for the groups it touches.
    @cached_property
    def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self._client)

    @cached_property
    def _apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self._client)

    @cached_property
    def _coord(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self._client)

    @cached_property
    def _authz(self) -> client.AuthorizationV1Api:
        return client.AuthorizationV1Api(self._client)

    @cached_property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self._client)

    @classmethod
    def connect(cls, kubeconfig: Path | None = None, context: str | None = None) -> KubeClusterApi:
        return cls(load_api_client(kubeconfig, context))

    # ------------------------------------------------------------------ transport
    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Raw:
        """Call an API method, return its JSON body; classify every failure."""
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
        except ApiException as err:
            raise _classify(err.status or 0, err.body) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise Unreachable(f"Kubernetes API unreachable: {err}") from None
        status = int(getattr(resp, "status", 200))
        data = resp.data
        if not 200 <= status < 300:
            raise _classify(status, data)
        if not data:
            return {}
        body: Raw = json.loads(data)
        return body

    def _stream(self, fn: Callable[..., Any], *args: Any, timeout_s: int, **kwargs: Any) -> Iterator[Raw]:
        try:
            resp = fn(
                *args,
                watch=True,
                timeout_seconds=timeout_s,
                allow_watch_bookmarks=True,
                _preload_content=False,
                _request_timeout=(self._timeout, timeout_s + self._timeout),
                **kwargs,
            )
        except ApiException as err:
            raise _classify(err.status or 0, err.body) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise Unreachable(f"Kubernetes API unreachable: {err}") from None
        try:
            if not 200 <= int(resp.status) < 300:
                raise _classify(int(resp.status), resp.data)
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if not line:
                    continue
                event: Raw = json.loads(line)
                if event.get("type") == "ERROR":
                    obj = event.get("object") or {}
                    raise _classify(int(obj.get("code") or 500), json.dumps(obj))
                yield event
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise Unreachable(f"watch interrupted: {err}") from None
        finally:
            resp.close()
            resp.release_conn()

    # ------------------------------------------------------------------ nodes
    def get_node(self, name: str) -> Node:
        return node_from(self._call(self._core.read_node, name))

    def list_nodes(self, label_selector: str | None = None) -> Listing[Node]:
        raw = self._call(self._core.list_node, label_selector=label_selector)
        return Listing(tuple(node_from(i) for i in raw.get("items") or []), _list_rv(raw))

    def watch_nodes(
        self, resource_version: str, *, label_selector: str | None = None, timeout_s: int = 60
    ) -> Iterator[WatchEvent[Node]]:
        for event in self._stream(
            self._core.list_node,
            timeout_s=timeout_s,
            resource_version=resource_version,
            label_selector=label_selector,
        ):
            yield _watch_event(event, node_from)

    def patch_node_annotations(
        self, name: str, annotations: Mapping[str, str | None], *, resource_version: str | None = None
    ) -> Node:
        meta: Raw = {"annotations": dict(annotations)}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return self._patch_node(name, {"metadata": meta})

    def _patch_node(self, name: str, body: Raw) -> Node:
        return node_from(self._call(self._core.patch_node, name, body, _content_type=MERGE_PATCH))

    def set_node_condition(self, name: str, condition: NodeCondition) -> Node:
        current = self.get_node(name)
        old = current.condition(condition.type)
        now = _rfc3339(datetime.now(UTC))
        transition = condition.last_transition_time
        if transition is None:
            kept = old is not None and old.status == condition.status and old.last_transition_time is not None
            transition_text = (
                _rfc3339(old.last_transition_time) if kept and old and old.last_transition_time else now
            )
        else:
            transition_text = _rfc3339(transition)
        raw_cond = {
            "type": condition.type,
            "status": condition.status,
            "reason": condition.reason,
            "message": condition.message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": transition_text,
        }
        body = {"status": {"conditions": [raw_cond]}}  # strategic merge: conditions merge by type
        return node_from(self._call(self._core.patch_node_status, name, body, _content_type=STRATEGIC_PATCH))

    def cordon(
        self, name: str, owner: CordonOwner, *, resource_version: str | None = None
    ) -> tuple[Node, bool]:
        def change(node: Node) -> Raw | None:
            if node.unschedulable:
                return None
            return {"spec": {"unschedulable": True}, "metadata": {"annotations": owner.annotations()}}

        return self._cas_node(name, change, resource_version)

    def uncordon(self, name: str, *, resource_version: str | None = None) -> tuple[Node, bool]:
        def change(node: Node) -> Raw | None:
            stale = [a for a in _OWNER_KEYS if a in node.annotations]
            if not node.unschedulable and not stale:
                return None
            return {"spec": {"unschedulable": None}, "metadata": {"annotations": dict.fromkeys(_OWNER_KEYS)}}

        return self._cas_node(name, change, resource_version)

    def add_taint(self, name: str, taint: Taint) -> tuple[Node, bool]:
        def change(node: Node) -> Raw | None:
            if any(t.key == taint.key and t.effect == taint.effect for t in node.taints):
                return None
            return {"spec": {"taints": [*(_taint_raw(t) for t in node.taints), _taint_raw(taint)]}}

        return self._cas_node(name, change, None)

    def remove_taint(self, name: str, key: str, effect: str) -> tuple[Node, bool]:
        def change(node: Node) -> Raw | None:
            kept = [t for t in node.taints if not (t.key == key and t.effect == effect)]
            if len(kept) == len(node.taints):
                return None
            return {"spec": {"taints": [_taint_raw(t) for t in kept] or None}}

        return self._cas_node(name, change, None)

    def _cas_node(
        self, name: str, change: Callable[[Node], Raw | None], resource_version: str | None
    ) -> tuple[Node, bool]:
        """Read, compute a merge patch, write it conditioned on the version read. With a caller's
        resource_version the caller's view must still hold (one round, Conflict otherwise);
        without it, a conflicting writer makes us re-read and re-decide."""
        for _ in range(_CAS_ROUNDS):
            node = self.get_node(name)
            if resource_version and node.resource_version != resource_version:
                raise Conflict(f"node {name} changed since resourceVersion {resource_version}", 409)
            body = change(node)
            if body is None:
                return node, False
            body.setdefault("metadata", {})["resourceVersion"] = node.resource_version
            try:
                return self._patch_node(name, body), True
            except Conflict:
                if resource_version:
                    raise
        raise Conflict(f"node {name} kept changing; gave up after {_CAS_ROUNDS} attempts", 409)

    def delete_node(self, name: str) -> None:
        self._call(self._core.delete_node, name)

    # ------------------------------------------------------------------ pods
    def list_pods(
        self, *, namespace: str | None = None, node_name: str | None = None, label_selector: str | None = None
    ) -> Listing[Pod]:
        field_selector = f"spec.nodeName={node_name}" if node_name else None
        if namespace:
            raw = self._call(
                self._core.list_namespaced_pod,
                namespace,
                field_selector=field_selector,
                label_selector=label_selector,
            )
        else:
            raw = self._call(
                self._core.list_pod_for_all_namespaces,
                field_selector=field_selector,
                label_selector=label_selector,
            )
        return Listing(tuple(pod_from(i) for i in raw.get("items") or []), _list_rv(raw))

    def watch_pods(
        self,
        resource_version: str,
        *,
        namespace: str | None = None,
        node_name: str | None = None,
        label_selector: str | None = None,
        timeout_s: int = 60,
    ) -> Iterator[WatchEvent[Pod]]:
        field_selector = f"spec.nodeName={node_name}" if node_name else None
        kwargs: Raw = {
            "resource_version": resource_version,
            "field_selector": field_selector,
            "label_selector": label_selector,
        }
        if namespace:
            events = self._stream(self._core.list_namespaced_pod, namespace, timeout_s=timeout_s, **kwargs)
        else:
            events = self._stream(self._core.list_pod_for_all_namespaces, timeout_s=timeout_s, **kwargs)
        for event in events:
            yield _watch_event(event, pod_from)

    def evict(self, namespace: str, name: str, *, grace_period_s: int | None = None) -> EvictOutcome:
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=client.V1DeleteOptions(grace_period_seconds=grace_period_s)
            if grace_period_s is not None
            else None,
        )
        try:
            self._call(self._core.create_namespaced_pod_eviction, name, namespace, body)
        except NotFound:
            return EvictOutcome(EvictResult.GONE)
        except ClusterError as err:
            if err.status == 429:
                return EvictOutcome(EvictResult.BLOCKED, str(err))
            if err.status == 500:
                return EvictOutcome(EvictResult.FAILED, str(err))
            raise
        return EvictOutcome(EvictResult.EVICTED)

    def delete_pod(self, namespace: str, name: str, *, grace_period_s: int | None = None) -> bool:
        try:
            self._call(self._core.delete_namespaced_pod, name, namespace, grace_period_seconds=grace_period_s)
        except NotFound:
            return False
        return True

    def patch_pod_annotations(self, namespace: str, name: str, annotations: Mapping[str, str | None]) -> Pod:
        body = {"metadata": {"annotations": dict(annotations)}}
        return pod_from(
            self._call(self._core.patch_namespaced_pod, name, namespace, body, _content_type=MERGE_PATCH)
        )

    # ------------------------------------------------------------------ events
    def create_event(self, event: Event) -> None:
        at = _rfc3339(event.at or datetime.now(UTC))
        body = client.CoreV1Event.from_dict(
            {
                "metadata": {"generateName": f"{event.name}.", "namespace": event.lives_in},
                "involvedObject": {
                    "kind": event.kind,
                    "name": event.name,
                    "apiVersion": event.api_version,
                    **({"namespace": event.namespace} if event.namespace else {}),
                },
                "reason": event.reason,
                "message": event.message[:1024],
                "type": event.type,
                "action": event.action or None,
                "firstTimestamp": at,
                "lastTimestamp": at,
                "count": 1,
                "source": {"component": "operatord"},
                "reportingComponent": "operatord",
                "reportingInstance": os.environ.get("HOSTNAME", "operatord"),
            }
        )
        self._call(self._core.create_namespaced_event, event.lives_in, body)

    # ------------------------------------------------------------------ access (doctor)
    def can_i(
        self,
        verb: str,
        resource: str,
        *,
        group: str = "",
        namespace: str | None = None,
        subresource: str = "",
        name: str = "",
    ) -> tuple[bool, str]:
        """SelfSubjectAccessReview: may this client's identity do it? (allowed, the API's reason)."""
        attrs: Raw = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attrs["namespace"] = namespace
        if subresource:
            attrs["subresource"] = subresource
        if name:
            attrs["name"] = name
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        raw = self._call(self._authz.create_self_subject_access_review, body)
        status = raw.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or status.get("evaluationError") or "")

    # ------------------------------------------------------------------ leases
    def get_lease(self, namespace: str, name: str) -> Lease:
        return lease_from(self._call(self._coord.read_namespaced_lease, name, namespace))

    def create_lease(self, lease: Lease) -> Lease:
        body = client.V1Lease.from_dict(_lease_raw(lease))
        return lease_from(self._call(self._coord.create_namespaced_lease, lease.namespace, body))

    def replace_lease(self, lease: Lease) -> Lease:
        if not lease.resource_version:
            raise ValueError("replace_lease needs the resource_version that was read (compare-and-set)")
        body = client.V1Lease.from_dict(_lease_raw(lease))
        return lease_from(self._call(self._coord.replace_namespaced_lease, lease.name, lease.namespace, body))

    # ------------------------------------------------------------------ configmaps
    def get_configmap(self, namespace: str, name: str) -> ConfigMap:
        return configmap_from(self._call(self._core.read_namespaced_config_map, name, namespace))

    def list_configmaps(self, namespace: str, label_selector: str | None = None) -> Listing[ConfigMap]:
        raw = self._call(self._core.list_namespaced_config_map, namespace, label_selector=label_selector)
        return Listing(tuple(configmap_from(i) for i in raw.get("items") or []), _list_rv(raw))

    def create_configmap(self, configmap: ConfigMap) -> ConfigMap:
        body = client.V1ConfigMap.from_dict(_configmap_raw(configmap))
        return configmap_from(self._call(self._core.create_namespaced_config_map, configmap.namespace, body))

    def replace_configmap(self, configmap: ConfigMap) -> ConfigMap:
        if not configmap.resource_version:
            raise ValueError("replace_configmap needs the resource_version that was read (compare-and-set)")
        body = client.V1ConfigMap.from_dict(_configmap_raw(configmap))
        return configmap_from(
            self._call(self._core.replace_namespaced_config_map, configmap.name, configmap.namespace, body)
        )

    def delete_configmap(self, namespace: str, name: str, *, resource_version: str | None = None) -> None:
        body = (
            client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=resource_version))
            if resource_version
            else None
        )
        self._call(self._core.delete_namespaced_config_map, name, namespace, body=body)

    # ------------------------------------------------------------------ scale
    def get_scale(self, workload: WorkloadKey) -> Scale:
        ns, name = workload.namespace, workload.name
        if workload.kind == "Deployment":
            raw = self._call(self._apps.read_namespaced_deployment_scale, name, ns)
        elif workload.kind == "StatefulSet":
            raw = self._call(self._apps.read_namespaced_stateful_set_scale, name, ns)
        elif workload.kind == "LeaderWorkerSet":
            raw = self._call(
                self._custom.get_namespaced_custom_object_scale, LWS_GROUP, LWS_VERSION, ns, LWS_PLURAL, name
            )
        else:
            raise ValueError(f"unsupported workload kind {workload.kind!r}")
        return scale_from(workload, raw)

    def set_scale(
        self, workload: WorkloadKey, replicas: int, *, resource_version: str | None = None
    ) -> Scale:
        if replicas < 0:
            raise ValueError(f"replicas must not be negative, got {replicas}")
        ns, name = workload.namespace, workload.name
        body: Raw = {"spec": {"replicas": replicas}}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        if workload.kind == "Deployment":
            raw = self._call(
                self._apps.patch_namespaced_deployment_scale, name, ns, body, _content_type=MERGE_PATCH
            )
        elif workload.kind == "StatefulSet":
            raw = self._call(
                self._apps.patch_namespaced_stateful_set_scale, name, ns, body, _content_type=MERGE_PATCH
            )
        elif workload.kind == "LeaderWorkerSet":
            raw = self._call(
                self._custom.patch_namespaced_custom_object_scale,
                LWS_GROUP,
                LWS_VERSION,
                ns,
                LWS_PLURAL,
                name,
                body,
                _content_type=MERGE_PATCH,
            )
        else:
            raise ValueError(f"unsupported workload kind {workload.kind!r}")
        return scale_from(workload, raw)


_OWNER_KEYS = (ANNOTATION_CORDONED_BY, ANNOTATION_CORDON_REASON, ANNOTATION_CORDONED_AT)


# ---------------------------------------------------------------------- translation


def _classify(status: int, body: Any) -> ClusterError:
    message = ""
    try:
        parsed = json.loads(body) if isinstance(body, str | bytes) and body else {}
        message = str(parsed.get("message") or "")
    except (ValueError, AttributeError):
        message = str(body or "")[:300]
    message = message or f"HTTP {status}"
    if status == 404:
        return NotFound(message, status)
    if status == 409:
        return Conflict(message, status)
    if status == 410:
        return Gone(message, status)
    if status == 0 or status in (502, 503, 504):
        return Unreachable(message, status)
    return ClusterError(message, status)


def _list_rv(raw: Raw) -> str:
    return str((raw.get("metadata") or {}).get("resourceVersion") or "")


def _watch_event(event: Raw, convert: Callable[[Raw], T]) -> WatchEvent[T]:
    obj = event.get("object") or {}
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return WatchEvent(WatchKind(event["type"]), convert(obj), rv)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quantity_int(value: Any) -> int:
    try:
        return int(str(value or "0"))
    except ValueError:
        return 0


def node_from(raw: Raw) -> Node:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    return Node(
        name=str(meta.get("name", "")),
        labels=frozen_map(meta.get("labels")),
        annotations=frozen_map(meta.get("annotations")),
        unschedulable=bool(spec.get("unschedulable")),
        taints=tuple(
            Taint(key=str(t.get("key", "")), effect=str(t.get("effect", "")), value=t.get("value"))
            for t in spec.get("taints") or []
        ),
        conditions=tuple(
            NodeCondition(
                type=str(c.get("type", "")),
                status=str(c.get("status", "Unknown")),
                reason=str(c.get("reason") or ""),
                message=str(c.get("message") or ""),
                last_transition_time=_time(c.get("lastTransitionTime")),
            )
            for c in status.get("conditions") or []
        ),
        gpus=_quantity_int((status.get("allocatable") or {}).get(GPU_RESOURCE)),
        resource_version=str(meta.get("resourceVersion") or ""),
        created_at=_time(meta.get("creationTimestamp")),
        info=frozen_map({str(k): str(v) for k, v in (status.get("nodeInfo") or {}).items()}),
    )


def _taint_raw(t: Taint) -> Raw:
    out: Raw = {"key": t.key, "effect": t.effect}
    if t.value is not None:
        out["value"] = t.value
    return out


def pod_from(raw: Raw) -> Pod:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    controller = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    kind: OwnerKind | None = None
    if controller is not None:
        try:
            kind = OwnerKind(controller.get("kind"))
        except ValueError:
            kind = OwnerKind.OTHER
    annotations = meta.get("annotations") or {}
    gpus = 0
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        gpus += _quantity_int(
            (res.get("limits") or {}).get(GPU_RESOURCE) or (res.get("requests") or {}).get(GPU_RESOURCE)
        )
    grace = spec.get("terminationGracePeriodSeconds")
    return Pod(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        node_name=spec.get("nodeName"),
        labels=frozen_map(meta.get("labels")),
        annotations=frozen_map(annotations),
        controller_kind=kind,
        controller_name=controller.get("name") if controller else None,
        phase=str(status.get("phase") or "Pending"),
        ready=any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        ),
        mirror=MIRROR_ANNOTATION in annotations,
        has_emptydir=any("emptyDir" in v for v in spec.get("volumes") or []),
        gpus=gpus,
        termination_grace_s=int(grace) if grace is not None else None,
        deleting=bool(meta.get("deletionTimestamp")),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def lease_from(raw: Raw) -> Lease:
    meta, spec = raw.get("metadata") or {}, raw.get("spec") or {}
    return Lease(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        holder=spec.get("holderIdentity"),
        duration_s=int(spec.get("leaseDurationSeconds") or 15),
        acquired_at=_time(spec.get("acquireTime")),
        renewed_at=_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def _lease_raw(lease: Lease) -> Raw:
    meta: Raw = {"name": lease.name, "namespace": lease.namespace}
    if lease.resource_version:
        meta["resourceVersion"] = lease.resource_version
    spec: Raw = {"holderIdentity": lease.holder, "leaseDurationSeconds": lease.duration_s}
    spec["leaseTransitions"] = lease.transitions
    if lease.acquired_at is not None:
        spec["acquireTime"] = _rfc3339(lease.acquired_at)
    if lease.renewed_at is not None:
        spec["renewTime"] = _rfc3339(lease.renewed_at)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


def configmap_from(raw: Raw) -> ConfigMap:
    meta = raw.get("metadata") or {}
    return ConfigMap(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        data=frozen_map(raw.get("data")),
        labels=frozen_map(meta.get("labels")),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


def _configmap_raw(cm: ConfigMap) -> Raw:
    meta: Raw = {"name": cm.name, "namespace": cm.namespace, "labels": dict(cm.labels)}
    if cm.resource_version:
        meta["resourceVersion"] = cm.resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(cm.data)}


def scale_from(workload: WorkloadKey, raw: Raw) -> Scale:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    return Scale(
        workload=workload,
        replicas=int(spec.get("replicas") or 0),
        current=int(status.get("replicas") or 0),
        resource_version=str(meta.get("resourceVersion") or ""),
    )
