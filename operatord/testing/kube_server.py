"""Testing: a Kubernetes API stand-in on 127.0.0.1 with the semantics operatord relies on.

Not a mock of operatord's calls: a small API server that the official `kubernetes` client
talks HTTP/1.1 to, so the adapter's real requests are what tests exercise. It keeps one object
store with a global resourceVersion and implements, for the kinds in `KINDS`:

* get, list, create (409 AlreadyExists; uid, resourceVersion, creationTimestamp assigned),
  replace (PUT; 409 on a stale metadata.resourceVersion), delete (preconditions honoured),
  patch as JSON Patch (RFC 6902, `test` failures → 422), JSON merge patch (RFC 7386) and
  strategic merge patch (merge patch plus merge-by-key for conditions, containers, volumes,
  ownerReferences, addresses); a metadata.resourceVersion inside a merge patch is a precondition;
* status and scale subresources (writes to the main resource leave status alone and vice versa;
  scale is autoscaling/v1 Scale over spec.replicas / status.replicas);
* label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!key`) and field selectors
  (`=`, `==`, `!=` on the fields Kubernetes supports per kind; others → 400);
* watch (`?watch=true`): ADDED/MODIFIED/DELETED after a resourceVersion, selector-aware
  (an object leaving the selection is DELETED); a resourceVersion older than the retained
  history gets an ERROR event with code 410 (call `compact()` to force that);
* eviction (policy/v1, POST pods/NAME/eviction): the pod's PodDisruptionBudget is evaluated live
  (minAvailable / maxUnavailable, int or %, over Running+Ready pods it selects; the expected
  count is the most pods it has selected, kept in status.expectedPods): no disruption
  allowed → 429; more than one PDB selecting the pod → 500 (what Kubernetes answers);
  `dryRun=All` evicts nothing;
* Leases, ConfigMaps, Events and namespaces as ordinary objects, except that an Event is
  validated as the API server does (422 when it does not live in its involvedObject's namespace,
  or `default` for a cluster-scoped object);
* SelfSubjectAccessReview (POST authorization.k8s.io/v1): allowed, unless a test lists the
  attributes in `denied` (for `operatord doctor`).

Simplifications (documented, deliberate): no controllers (a Deployment's status.replicas moves
only when a test sets it; an evicted or deleted pod disappears at once, as if its grace period
were over), no admission, no RBAC, namespaces need not exist, one store for all API versions.

Tests seed and read objects without HTTP (`create`, `get`, `list`, `update`, `delete`), inject
failures (`fail_next`), and see the traffic (`requests`, bounded).
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    status: bool = False  # has a status subresource
    scale: bool = False  # has a scale subresource
    fields: tuple[str, ...] = ("metadata.name", "metadata.namespace")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


_POD_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)

KINDS: tuple[Kind, ...] = (
    Kind("Node", "", "v1", "nodes", False, status=True, fields=("metadata.name", "spec.unschedulable")),
    Kind("Namespace", "", "v1", "namespaces", False, status=True, fields=("metadata.name", "status.phase")),
    Kind("Pod", "", "v1", "pods", True, status=True, fields=_POD_FIELDS),
    Kind("ConfigMap", "", "v1", "configmaps", True),
    Kind(
        "Event",
        "",
        "v1",
        "events",
        True,
        fields=(
            "metadata.name",
            "metadata.namespace",
            "involvedObject.name",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.apiVersion",
            "involvedObject.uid",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ),
    ),
    Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", True, status=True),
    Kind("Lease", "coordination.k8s.io", "v1", "leases", True),
    Kind("Deployment", "apps", "v1", "deployments", True, status=True, scale=True),
    Kind("StatefulSet", "apps", "v1", "statefulsets", True, status=True, scale=True),
    Kind("ReplicaSet", "apps", "v1", "replicasets", True, status=True, scale=True),
    Kind("DaemonSet", "apps", "v1", "daemonsets", True, status=True),
    Kind(
        "LeaderWorkerSet", "leaderworkerset.x-k8s.io", "v1", "leaderworkersets", True, status=True, scale=True
    ),
)
_BY_KIND = {k.kind: k for k in KINDS}
_BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}

# Strategic-merge lists merged by key instead of replaced (the subset of Kubernetes' patchMergeKey tags we use).
_MERGE_KEYS = {
    "conditions": "type",
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "ownerReferences": "uid",
    "addresses": "type",
    "env": "name",
}


class ApiError(Exception):
    """An HTTP error answered as a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kind_of(obj: Mapping[str, Any]) -> Kind:
    try:
        return _BY_KIND[str(obj["kind"])]
    except KeyError:
        raise ValueError(
            f"object kind {obj.get('kind')!r} is not served (served: {', '.join(_BY_KIND)})"
        ) from None


# ------------------------------------------------------------------ selectors


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET_EXPR = re.compile(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ_EXPR = re.compile(r"^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$")
_EXISTS = re.compile(r"^(!?)([\w./-]+)$")


def label_matcher(selector: str | None) -> Callable[[Mapping[str, str]], bool]:
    """Compile a Kubernetes label selector string; raises ApiError(400) when malformed."""
    terms: list[tuple[str, str, frozenset[str]]] = []  # (key, op, values)
    for term in _split_top(selector or ""):
        if m := _SET_EXPR.match(term):
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            terms.append((m.group(1), m.group(2), values))
        elif m := _EQ_EXPR.match(term):
            key, op, value = m.groups()
            terms.append((key, "!=" if op == "!=" else "=", frozenset({value})))
        elif m := _EXISTS.match(term):
            neg, key = m.groups()
            terms.append((key, "!" if neg else "exists", frozenset()))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")

    def matches(labels: Mapping[str, str]) -> bool:
        for key, op, values in terms:
            if op in ("in", "="):
                ok = key in labels and labels[key] in values
            elif op in ("notin", "!="):
                ok = labels.get(key) not in values
            else:
                ok = (key in labels) == (op == "exists")
            if not ok:
                return False
        return True

    return matches


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector object (matchLabels + matchExpressions); an empty selector matches all."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op)
        if not ok:
            return False
    return True


def _dig(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _field_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_matcher(kind: Kind, selector: str | None) -> Callable[[Obj], bool]:
    """Compile a field selector for `kind`; unsupported fields are a 400, as in Kubernetes."""
    terms: list[tuple[str, bool, str]] = []  # (path, equal, value)
    for term in _split_top(selector or ""):
        m = re.match(r"^([\w.]+)\s*(==|=|!=)\s*(.*)$", term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        path, op, value = m.groups()
        if path not in kind.fields:
            raise ApiError(400, "BadRequest", f'field label not supported: "{path}" for {kind.plural}')
        terms.append((path, op != "!=", value))
    return lambda obj: all((_field_str(_dig(obj, p)) == v) == eq for p, eq, v in terms)


# ------------------------------------------------------------------ patches


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    """RFC 7386; with `strategic`, lists named in _MERGE_KEYS merge by key (Kubernetes SMP subset)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        elif strategic and key in _MERGE_KEYS and isinstance(value, list) and isinstance(out.get(key), list):
            mk = _MERGE_KEYS[key]
            merged = [copy.deepcopy(i) for i in out[key]]
            for item in value:
                idx = next(
                    (i for i, e in enumerate(merged) if isinstance(e, dict) and e.get(mk) == item.get(mk)),
                    None,
                )
                if idx is None:
                    merged.append(copy.deepcopy(item))
                elif item.get("$patch") == "delete":
                    merged.pop(idx)
                else:
                    merged[idx] = merge_patch(merged[idx], item, strategic)
            out[key] = merged
        else:
            out[key] = merge_patch(out.get(key), value, strategic)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict) and p in cur:
            cur = cur[p]
        else:
            raise ApiError(422, "Invalid", f"path /{'/'.join(parts)} does not exist")
    return cur, parts[-1]


def json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(doc)

    def get(parts: list[str]) -> Any:
        cur: Any = doc
        for p in parts:
            try:
                cur = cur[int(p)] if isinstance(cur, list) else cur[p]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ApiError(422, "Invalid", f"path /{'/'.join(parts)} does not exist") from None
        return cur

    def add(parts: list[str], value: Any) -> None:
        parent, last = _parent(doc, parts)
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), value)
        elif isinstance(parent, dict):
            parent[last] = value
        else:
            raise ApiError(422, "Invalid", f"cannot add at /{'/'.join(parts)}")

    def remove(parts: list[str]) -> Any:
        parent, last = _parent(doc, parts)
        try:
            return parent.pop(int(last) if isinstance(parent, list) else last)
        except (KeyError, IndexError, ValueError):
            raise ApiError(422, "Invalid", f"path /{'/'.join(parts)} does not exist") from None

    for op in ops:
        kind, parts = op.get("op"), _pointer(str(op.get("path", "")))
        if kind == "add":
            add(parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            remove(parts)
        elif kind == "replace":
            get(parts)
            remove(parts)
            add(parts, copy.deepcopy(op.get("value")))
        elif kind == "move":
            add(parts, remove(_pointer(str(op["from"]))))
        elif kind == "copy":
            add(parts, copy.deepcopy(get(_pointer(str(op["from"])))))
        elif kind == "test":
            if get(parts) != op.get("value"):
                raise ApiError(422, "Invalid", f"test operation failed at {op.get('path')}")
        else:
            raise ApiError(422, "Invalid", f"unknown JSON patch op {kind!r}")
    return doc


# ------------------------------------------------------------------ the store


@dataclass(slots=True)
class _Change:
    rv: int
    type: str
    kind: Kind
    old: Obj | None
    new: Obj


@dataclass(slots=True)
class _Failure:
    method: str
    path: re.Pattern[str]
    code: int
    message: str
    times: int


class KubeStandIn:
    """The API stand-in: `start()`, use `url`, `stop()`. Thread-safe; see the module docstring."""

    def __init__(self, *, history: int = 2000, journal: int = 5000) -> None:
        self._lock = threading.Condition()
        self._objects: dict[tuple[str, str, str], Obj] = {}  # (kind, namespace, name) -> object
        self._rv = 1000
        self._changes: deque[_Change] = deque(maxlen=history)
        self._compacted_rv = self._rv
        self._failures: list[_Failure] = []
        self.requests: deque[tuple[str, str]] = deque(maxlen=journal)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        # SelfSubjectAccessReview answers: everything is allowed (there is no RBAC here) except the
        # (verb, group, resource, subresource) tuples a test puts in this set ("" for core/none).
        self.denied: set[tuple[str, str, str, str]] = set()

    # ---- lifecycle
    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kube-standin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    # ---- seeding and reading (no HTTP)
    def create(self, obj: Mapping[str, Any]) -> Obj:
        """Store a new object (kind and apiVersion from the object). Raises ApiError(409) if present."""
        kind = kind_of(obj)
        ns = (obj.get("metadata") or {}).get("namespace", "default") if kind.namespaced else ""
        with self._lock:
            return copy.deepcopy(self._create(kind, ns, copy.deepcopy(dict(obj))))

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        k = _BY_KIND[kind]
        with self._lock:
            obj = self._objects.get((kind, (namespace or "default") if k.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        with self._lock:
            return [
                copy.deepcopy(o)
                for (k, ns, _), o in sorted(self._objects.items())
                if k == kind and (namespace is None or ns == namespace)
            ]

    def update(self, obj: Mapping[str, Any]) -> Obj:
        """Replace an object as a controller would (status included), bumping its resourceVersion."""
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        key = (kind.kind, meta.get("namespace", "default") if kind.namespaced else "", meta["name"])
        with self._lock:
            old = self._objects.get(key)
            if old is None:
                raise ApiError(404, "NotFound", f'{kind.plural} "{key[2]}" not found')
            new = copy.deepcopy(dict(obj))
            new["metadata"] = {**old["metadata"], **new.get("metadata", {})}
            return copy.deepcopy(self._commit(kind, key, old, new))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        k = _BY_KIND[kind]
        with self._lock:
            self._delete(k, ((namespace or "default") if k.namespaced else "", name))

    def compact(self) -> None:
        """Forget the watch history: a watch from any resourceVersion before now gets 410 Gone."""
        with self._lock:
            self._changes.clear()
            self._compacted_rv = self._rv

    def fail_next(
        self, method: str, path_regex: str, code: int, message: str = "injected", times: int = 1
    ) -> None:
        """Answer the next `times` requests whose METHOD and path match with this error status."""
        with self._lock:
            self._failures.append(_Failure(method.upper(), re.compile(path_regex), code, message, times))

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    # ---- internals (lock held)
    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _create(self, kind: Kind, ns: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{kind.kind}: metadata.name: Required value")
        if kind.kind == "Event":
            _validate_event(ns, obj)
        key = (kind.kind, ns, name)
        if key in self._objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{kind.plural} "{name}" already exists',
                {"name": name, "kind": kind.plural},
            )
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        if kind.namespaced:
            meta["namespace"] = ns
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta["generation"] = 1
        meta["resourceVersion"] = self._bump()
        self._objects[key] = obj
        self._record("ADDED", kind, None, obj)
        return obj

    def _commit(self, kind: Kind, key: tuple[str, str, str], old: Obj, new: Obj) -> Obj:
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        meta = new.setdefault("metadata", {})
        for fixed in ("name", "namespace", "uid", "creationTimestamp"):
            if fixed in old["metadata"]:
                meta[fixed] = old["metadata"][fixed]
        if new.get("spec") != old.get("spec"):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = self._bump()
        self._objects[key] = new
        self._record("MODIFIED", kind, old, new)
        return new

    def _delete(self, kind: Kind, ns_name: tuple[str, str], precondition_rv: str | None = None) -> Obj:
        key = (kind.kind, *ns_name)
        old = self._objects.get(key)
        if old is None:
            raise ApiError(
                404,
                "NotFound",
                f'{kind.plural} "{ns_name[1]}" not found',
                {"name": ns_name[1], "kind": kind.plural},
            )
        if precondition_rv and precondition_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", _CONFLICT_MESSAGE.format(plural=kind.plural, name=ns_name[1]))
        del self._objects[key]
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = self._bump()
        self._record("DELETED", kind, old, gone)
        return gone

    def _record(self, type_: str, kind: Kind, old: Obj | None, new: Obj) -> None:
        if self._changes.maxlen is not None and len(self._changes) == self._changes.maxlen:
            self._compacted_rv = self._changes[0].rv
        self._changes.append(_Change(self._rv, type_, kind, copy.deepcopy(old), copy.deepcopy(new)))
        self._lock.notify_all()

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for f in self._failures:
            if f.method == method and f.path.search(path):
                f.times -= 1
                if f.times <= 0:
                    self._failures.remove(f)
                return f
        return None


_CONFLICT_MESSAGE = (
    'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


# ------------------------------------------------------------------ HTTP


@dataclass(slots=True)
class _Route:
    kind: Kind
    namespace: str | None  # None: all namespaces (list/watch) or cluster-scoped
    name: str | None
    sub: str | None


def _validate_event(ns: str, event: Obj) -> None:
    """core/v1 Event validation as the API server does it for Events without eventTime: the Event
    lives in its involved object's namespace, and a cluster-scoped object's Event in `default`."""
    involved = event.get("involvedObject") or {}
    if not involved.get("kind") or not involved.get("name"):
        raise ApiError(422, "Invalid", "Event: involvedObject.kind and involvedObject.name: Required value")
    about = involved.get("namespace") or ""
    if (about and about != ns) or (not about and ns not in ("", "default")):
        raise ApiError(
            422,
            "Invalid",
            f'Event "{(event.get("metadata") or {}).get("name")}" is invalid: '
            f"involvedObject.namespace: Invalid value: {about!r}: does not match event.namespace",
        )


def _route(path: str) -> _Route:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
    ns: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    elif rest[:1] == ["namespaces"] and group == "":
        kind = _BY_KIND["Namespace"]
        return _Route(kind, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)
    if not rest:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
    found = _BY_PATH.get((group, version, rest[0]))
    if found is None:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
    kind = found
    if kind.namespaced and ns is None and len(rest) > 1:
        raise ApiError(404, "NotFound", f"{kind.plural} is namespaced ({path})")
    return _Route(kind, ns, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)


_ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def _access_review(st: KubeStandIn, body: Any) -> Obj:
    """SelfSubjectAccessReview: `status.allowed` unless the attributes are in `st.denied`."""
    attrs = ((body or {}).get("spec") or {}).get("resourceAttributes") or {}
    key = (
        str(attrs.get("verb", "")),
        str(attrs.get("group", "")),
        str(attrs.get("resource", "")),
        str(attrs.get("subresource", "")),
    )
    allowed = key not in st.denied
    status: Obj = {"allowed": allowed}
    if not allowed:
        status["reason"] = "denied by the test harness"
    return {**(body or {}), "status": status}


class _Handler(BaseHTTPRequestHandler):
    standin: KubeStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, code: int, body: Obj) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise ApiError(400, "BadRequest", f"request body is not JSON: {err}") from None

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(split.query).items()}
        st = self.standin
        try:
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            with st._lock:
                st.requests.append((method, self.path))
                failure = st._take_failure(method, split.path)
            if failure is not None:
                reason = {409: "Conflict", 429: "TooManyRequests", 404: "NotFound"}.get(
                    failure.code, "InternalError"
                )
                raise ApiError(failure.code, reason, failure.message)
            if split.path.rstrip("/") == "/version":
                self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-operatord-standin"})
                return
            if method == "POST" and split.path.rstrip("/") == _ACCESS_REVIEW_PATH:
                self._send(201, _access_review(st, body))
                return
            route = _route(split.path)
            if method == "GET" and route.name is None and params.get("watch") in ("true", "1"):
                self._watch(route, params)
                return
            code, out = _Ops(st, route, params, body).run(method, self.headers.get("Content-Type", ""))
            self._send(code, out)
        except ApiError as err:
            self._send(err.code, err.status())
        except (BrokenPipeError, ConnectionResetError):
            return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ---- watch: chunked stream of JSON lines
    def _chunk(self, obj: Obj) -> None:
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, route: _Route, params: Mapping[str, str]) -> None:
        st = self.standin
        kind = route.kind
        labels = label_matcher(params.get("labelSelector"))
        fields = field_matcher(kind, params.get("fieldSelector"))
        timeout = float(params.get("timeoutSeconds") or 1800)

        def selected(obj: Obj | None) -> bool:
            if obj is None:
                return False
            meta = obj.get("metadata") or {}
            if route.namespace is not None and kind.namespaced and meta.get("namespace") != route.namespace:
                return False
            return labels(meta.get("labels") or {}) and fields(obj)

        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        rv_param = params.get("resourceVersion") or ""
        deadline = datetime.now(UTC).timestamp() + timeout
        try:
            with st._lock:
                if rv_param in ("", "0"):
                    since = st._rv
                    initial = [
                        copy.deepcopy(o)
                        for (k, _, _), o in sorted(st._objects.items())
                        if k == kind.kind and selected(o)
                    ]
                else:
                    since = int(rv_param)
                    initial = []
                    if since < st._compacted_rv:
                        gone = ApiError(
                            410, "Expired", f"too old resource version: {since} ({st._compacted_rv})"
                        )
                        self._chunk({"type": "ERROR", "object": gone.status()})
                        self._end()
                        return
            for obj in initial:
                self._chunk({"type": "ADDED", "object": obj})
            while True:
                with st._lock:
                    pending = [c for c in st._changes if c.rv > since and c.kind == kind]
                    if not pending:
                        left = deadline - datetime.now(UTC).timestamp()
                        if left <= 0 or st._stopping:
                            break
                        st._lock.wait(min(left, 0.5))
                        continue
                for change in pending:
                    since = change.rv
                    was, now = selected(change.old), selected(change.new)
                    if change.type == "DELETED":
                        event = "DELETED" if was else None
                    elif now and not was:
                        event = "ADDED"
                    elif now:
                        event = "MODIFIED"
                    elif was:
                        event = "DELETED"
                    else:
                        event = None
                    if event is not None:
                        self._chunk({"type": event, "object": change.new})
            self._end()
        except (BrokenPipeError, ConnectionResetError):
            return

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Ops:
    """One request's semantics, executed under the store lock."""

    def __init__(self, st: KubeStandIn, route: _Route, params: Mapping[str, str], body: Any) -> None:
        self.st, self.route, self.params, self.body = st, route, params, body
        self.kind = route.kind

    def ns(self) -> str:
        if not self.kind.namespaced:
            return ""
        return self.route.namespace or "default"

    def key(self) -> tuple[str, str, str]:
        assert self.route.name is not None
        return (self.kind.kind, self.ns(), self.route.name)

    def current(self) -> Obj:
        obj = self.st._objects.get(self.key())
        if obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'{self.kind.plural} "{self.route.name}" not found',
                {"name": self.route.name, "kind": self.kind.plural},
            )
        return obj

    def run(self, method: str, content_type: str) -> tuple[int, Obj]:
        r = self.route
        with self.st._lock:
            if method == "GET":
                if r.name is None:
                    return 200, self.list()
                if r.sub == "scale":
                    return 200, self.scale(self.current())
                return 200, copy.deepcopy(self.current())
            if method == "POST":
                if r.sub == "eviction":
                    return self.evict()
                if r.name is not None:
                    raise ApiError(405, "MethodNotAllowed", "POST to a named object")
                obj = self._require_obj()
                if self.params.get("dryRun") == "All":
                    return 201, obj
                return 201, copy.deepcopy(self.st._create(self.kind, self.route.namespace or self.ns(), obj))
            if method in ("PUT", "PATCH"):
                return 200, self.write(method, content_type)
            if method == "DELETE":
                return self.delete()
        raise ApiError(405, "MethodNotAllowed", method)

    def _require_obj(self) -> Obj:
        if not isinstance(self.body, dict):
            raise ApiError(400, "BadRequest", "expected a JSON object body")
        return copy.deepcopy(self.body)

    def list(self) -> Obj:
        labels = label_matcher(self.params.get("labelSelector"))
        fields = field_matcher(self.kind, self.params.get("fieldSelector"))
        items = [
            copy.deepcopy(o)
            for (k, ns, _), o in sorted(self.st._objects.items())
            if k == self.kind.kind
            and (self.route.namespace is None or not self.kind.namespaced or ns == self.route.namespace)
            and labels((o.get("metadata") or {}).get("labels") or {})
            and fields(o)
        ]
        return {
            "apiVersion": self.kind.api_version,
            "kind": f"{self.kind.kind}List",
            "metadata": {"resourceVersion": str(self.st._rv)},
            "items": items,
        }

    def scale(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "resourceVersion": meta["resourceVersion"],
                "uid": meta.get("uid"),
            },
            "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
            "status": {
                "replicas": int((obj.get("status") or {}).get("replicas", 0)),
                "selector": _selector_string((obj.get("spec") or {}).get("selector")),
            },
        }

    def write(self, method: str, content_type: str) -> Obj:
        r = self.route
        if r.name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} needs a name")
        old = self.current()
        if r.sub == "scale":
            if not self.kind.scale:
                raise ApiError(404, "NotFound", f"{self.kind.plural} has no scale subresource")
            view = self.scale(old)
            new_view = self._apply(view, method, content_type)
            self._precondition(old, new_view, view)
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["replicas"] = int(new_view["spec"]["replicas"])
            if self.params.get("dryRun") != "All":
                new = self.st._commit(self.kind, self.key(), old, new)
                if new["spec"]["replicas"] < int((old.get("spec") or {}).get("replicas", 1)):
                    self._forget_expected_pods()
            return self.scale(new)
        if r.sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"unknown subresource {r.sub!r}")
        candidate = self._apply(old, method, content_type)
        self._precondition(old, candidate, old)
        if r.sub == "status":
            new = copy.deepcopy(old)
            new["status"] = candidate.get("status")
        else:
            new = copy.deepcopy(candidate)
            if self.kind.status:  # the main resource never writes status
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        if self.params.get("dryRun") == "All":
            return new
        return copy.deepcopy(self.st._commit(self.kind, self.key(), old, new))

    def _apply(self, old: Obj, method: str, content_type: str) -> Obj:
        if method == "PUT":
            return self._require_obj()
        ctype = content_type.split(";", maxsplit=1)[0].strip()
        if ctype == "application/json-patch+json":
            if not isinstance(self.body, list):
                raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
            return json_patch(old, self.body)
        if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            patch = self._require_obj()
            merged: Obj = merge_patch(old, patch, strategic=ctype.startswith("application/strategic"))
            return merged
        raise ApiError(
            415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}"
        )

    def _precondition(self, old: Obj, candidate: Obj, view: Obj) -> None:
        """A resourceVersion in the written body (PUT, or inside a patch) must be the current one."""
        want = (candidate.get("metadata") or {}).get("resourceVersion")
        if want and want != (view.get("metadata") or {}).get("resourceVersion"):
            raise ApiError(
                409,
                "Conflict",
                _CONFLICT_MESSAGE.format(plural=self.kind.plural, name=self.route.name),
                {"name": self.route.name, "kind": self.kind.plural},
            )

    def delete(self) -> tuple[int, Obj]:
        if self.route.name is None:
            raise ApiError(405, "MethodNotAllowed", "collection delete is not served")
        body = self.body if isinstance(self.body, dict) else {}
        pre = (body.get("preconditions") or {}).get("resourceVersion")
        if self.params.get("dryRun") == "All" or "All" in (body.get("dryRun") or []):
            return 200, copy.deepcopy(self.current())
        gone = self.st._delete(self.kind, (self.ns(), self.route.name), pre)
        if self.kind.kind == "Pod":
            return 200, gone
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": self.route.name, "kind": self.kind.plural},
        }

    # ---- eviction
    def evict(self) -> tuple[int, Obj]:
        if self.kind.kind != "Pod":
            raise ApiError(404, "NotFound", "eviction is a pods subresource")
        pod = self.current()
        body = self.body if isinstance(self.body, dict) else {}
        opts = body.get("deleteOptions") or {}
        dry = self.params.get("dryRun") == "All" or "All" in (opts.get("dryRun") or [])
        labels = (pod.get("metadata") or {}).get("labels") or {}
        pdbs = [
            o
            for (k, ns, _), o in sorted(self.st._objects.items())
            if k == "PodDisruptionBudget"
            and ns == self.ns()
            and selector_matches((o.get("spec") or {}).get("selector"), labels)
        ]
        if len(pdbs) > 1:
            raise ApiError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )
        phase = (pod.get("status") or {}).get("phase", "Pending")
        if pdbs and phase == "Running":
            allowed, healthy, desired = self._disruptions_allowed(pdbs[0])
            if allowed <= 0 and (_pod_ready(pod) or healthy < desired):
                name = pdbs[0]["metadata"]["name"]
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {name} needs {desired} healthy pods and "
                                f"has {healthy} currently",
                            }
                        ]
                    },
                )
        if not dry:
            self.st._delete(self.kind, (self.ns(), str(self.route.name)))
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _forget_expected_pods(self) -> None:
        """After a scale-in the disruption controller re-reads the expected pods from the workload;
        here the namespace's budgets start counting again from the pods that are left."""
        for (k, ns, _), o in self.st._objects.items():
            if k == "PodDisruptionBudget" and ns == self.ns():
                (o.get("status") or {}).pop("expectedPods", None)

    def _disruptions_allowed(self, pdb: Obj) -> tuple[int, int, int]:
        spec = pdb.get("spec") or {}
        selected = [
            o
            for (k, ns, _), o in self.st._objects.items()
            if k == "Pod"
            and ns == self.ns()
            and selector_matches(spec.get("selector"), (o.get("metadata") or {}).get("labels") or {})
            and (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        # Kubernetes takes the expected count from the pods' controllers' scale; without controllers
        # here, the most pods the budget has selected stands in for it (an evicted replica is one a
        # controller would recreate, so the expectation does not shrink with each eviction).
        status = pdb.setdefault("status", {})
        expected = max(int(status.get("expectedPods") or 0), len(selected))
        status["expectedPods"] = expected
        healthy = sum(1 for o in selected if _pod_ready(o))
        if spec.get("minAvailable") is not None:
            desired = _int_or_percent(spec["minAvailable"], expected, round_up=True)
        elif spec.get("maxUnavailable") is not None:
            desired = max(0, expected - _int_or_percent(spec["maxUnavailable"], expected, round_up=True))
        else:
            desired = 0
        return healthy - desired, healthy, desired


def _pod_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        frac = float(value[:-1]) / 100.0 * total
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(value)


def _selector_string(selector: Mapping[str, Any] | None) -> str:
    if not selector:
        return ""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op = e["operator"]
        if op in ("In", "NotIn"):
            terms.append(f"{e['key']} {op.lower()} ({','.join(e.get('values') or [])})")
        elif op == "Exists":
            terms.append(e["key"])
        else:
            terms.append(f"!{e['key']}")
    return ",".join(terms)
