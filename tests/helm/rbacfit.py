"""RBAC evaluation for the chart tests: does a set of rendered Roles/ClusterRoles and bindings
grant a ServiceAccount a given API request, the way Kubernetes' RBAC authorizer decides it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, order=True)
class Request:
    verb: str
    group: str
    resource: str  # "pods/eviction" for a subresource
    namespace: str | None  # None: cluster-scoped or all namespaces
    name: str | None

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{where}" + (
            f" ({self.name})" if self.name else ""
        )


def parse_request(method: str, raw_path: str) -> Request:
    """An API server request as RBAC sees it (verb, group, resource/subresource, namespace, name)."""
    split = urlsplit(raw_path)
    params = parse_qs(split.query)
    parts = [p for p in split.path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        raise ValueError(f"not a resource request: {raw_path}")
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    verb = {
        "GET": "get" if name else ("watch" if params.get("watch") in (["true"], ["1"]) else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }[method]
    return Request(verb, group, resource, namespace, name)


def _rule_allows(rule: dict[str, Any], req: Request) -> bool:
    return (
        req.group in rule.get("apiGroups", [])
        and req.resource in rule.get("resources", [])
        and req.verb in rule.get("verbs", [])
        and (not rule.get("resourceNames") or req.name in rule["resourceNames"])
    )


def granted(docs: Iterable[dict[str, Any]], service_account: str, sa_namespace: str, req: Request) -> bool:
    """True when a rendered (Cluster)RoleBinding gives the ServiceAccount a rule allowing `req`."""
    docs = list(docs)
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}
    for b in docs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == service_account and s["namespace"] == sa_namespace
            for s in b["subjects"]
        ):
            continue
        binding_ns = b["metadata"].get("namespace")
        if b["kind"] == "RoleBinding" and req.namespace != binding_ns:
            continue  # a RoleBinding grants only inside its own namespace
        ref = b["roleRef"]
        role = roles.get((ref["kind"], binding_ns if ref["kind"] == "Role" else None, ref["name"]))
        if role is not None and any(_rule_allows(r, req) for r in role.get("rules", [])):
            return True
    return False
