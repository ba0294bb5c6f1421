"""Testing: terse builders of Kubernetes objects (plain dicts) for seeding the API stand-in.

Safe defaults, override only what a case is about: `node("gpu-1", pool="local-a100")` is a
Ready 8-GPU node; `pod("p", node="gpu-1", owner="ReplicaSet")` a Running, Ready managed pod.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from operatord.vocab import ANNOTATION_FINDINGS, LABEL_POOL

Obj = dict[str, Any]


def node(
    name: str,
    *,
    pool: str | None = "local-a100",
    gpus: int = 8,
    ready: bool = True,
    unschedulable: bool = False,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    conditions: Sequence[Obj] = (),
    findings: Sequence[Mapping[str, Any]] | None = None,
    taints: Sequence[Obj] = (),
) -> Obj:
    all_labels = {"kubernetes.io/hostname": name, **({LABEL_POOL: pool} if pool else {}), **(labels or {})}
    all_annotations = dict(annotations or {})
    if findings is not None:
        all_annotations[ANNOTATION_FINDINGS] = json.dumps(list(findings))
    conds = [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"}, *conditions]
    spec: Obj = {"unschedulable": True} if unschedulable else {}
    if taints:
        spec["taints"] = list(taints)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels, "annotations": all_annotations},
        "spec": spec,
        "status": {
            "capacity": {"nvidia.com/gpu": str(gpus), "cpu": "96"},
            "allocatable": {"nvidia.com/gpu": str(gpus), "cpu": "96"},
            "conditions": conds,
        },
    }


def pod(
    name: str,
    *,
    node: str | None = None,
    namespace: str = "default",
    owner: str | None = "ReplicaSet",
    owner_name: str | None = None,
    labels: Mapping[str, str] | None = None,
    gpus: int = 0,
    phase: str = "Running",
    ready: bool = True,
    emptydir: bool = False,
    mirror: bool = False,
    grace_s: int | None = None,
) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": dict(labels or {"app": name})}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1" if owner != "Node" else "v1",
                "kind": owner,
                "name": owner_name or f"{name}-owner",
                "uid": f"uid-{owner_name or name}",
                "controller": True,
            }
        ]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "mirror-hash"}
    container: Obj = {"name": "main", "image": "vllm/vllm-openai:v0.11.0"}
    if gpus:
        container["resources"] = {
            "limits": {"nvidia.com/gpu": str(gpus)},
            "requests": {"nvidia.com/gpu": str(gpus)},
        }
    spec: Obj = {"containers": [container]}
    if node is not None:
        spec["nodeName"] = node
    if emptydir:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    if grace_s is not None:
        spec["terminationGracePeriodSeconds"] = grace_s
    status: Obj = {"phase": phase}
    if phase == "Running":
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def pdb(
    name: str,
    *,
    match_labels: Mapping[str, str],
    namespace: str = "default",
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> Obj:
    spec: Obj = {"selector": {"matchLabels": dict(match_labels)}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def workload(
    name: str,
    *,
    kind: str = "Deployment",
    namespace: str = "llm",
    replicas: int = 1,
    ready_replicas: int | None = None,
) -> Obj:
    api = "leaderworkerset.x-k8s.io/v1" if kind == "LeaderWorkerSet" else "apps/v1"
    current = replicas if ready_replicas is None else ready_replicas
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
        "status": {"replicas": current, "readyReplicas": current},
    }


def configmap(
    name: str,
    data: Mapping[str, str],
    *,
    namespace: str = "operatord",
    labels: Mapping[str, str] | None = None,
) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}
