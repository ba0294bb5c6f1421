"""Shell. Observe: the ports → one Snapshot per tick, each source inside its own deadline.

Sources are read in parallel: the cluster (nodes and the operatord-state ConfigMap: required —
without them nothing is decided), pods and the serving workloads' scale (optional), burst
intents and the cloud's tagged instances (optional), and the metrics (optional). A source that
fails or misses its deadline is *absent* from the snapshot (None, never an empty value), so
decide() holds what rests on it while the rest of the tick goes on: one slow dependency
degrades the snapshot instead of stalling the loop. A read still running from an earlier tick
is not started again (it counts as missed), so a hung dependency never piles up threads.

The observer keeps what must span ticks and may be lost on restart without harm: the demand
history per model (forecasting and stabilization windows start again after a restart, which
only delays scale-in) and when serving replicas last changed (burst launch and release times
come from the intent records, so those cooldowns survive restarts).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog

from operatord.core.burst.observed import CloudInstance
from operatord.core.metrics import MetricsSnapshot
from operatord.core.model import Node, Pod, WorkloadKey
from operatord.core.scaling import DemandSample
from operatord.core.scaling_inputs import demand_history, model_signals
from operatord.core.snapshot import CloudView, Snapshot
from operatord.core.state import OperatordState
from operatord.policies.model import Policy
from operatord.ports.capacity import CapacityProvider, CapacityUnreachable
from operatord.ports.cluster import ClusterApi, ClusterError, Conflict, NotFound, Unreachable
from operatord.ports.metrics import MetricsSource
from operatord.shell.intents import DecodedIntents, IntentStore
from operatord.shell.state import StateStore

log = structlog.get_logger("operatord.observe")
T = TypeVar("T")

# How long the vCPU quota (Service Quotas) is reused: it changes by support ticket, not by tick.
QUOTA_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class Deadlines:
    """Seconds each source may take before the tick goes on without it."""

    kubernetes: float = 20.0
    prometheus: float = 15.0
    ec2: float = 20.0


@dataclass(frozen=True)
class SourceStatus:
    """How one source fared this tick: ok, or error with its kind (for operatord_api_errors_total)."""

    source: str  # kubernetes | prometheus | ec2
    ok: bool
    kind: str = ""  # unreachable | timeout | throttled | conflict | client | server
    error: str = ""


@dataclass(frozen=True)
class Observation:
    snapshot: Snapshot
    statuses: tuple[SourceStatus, ...] = ()
    unreadable_intents: tuple[str, ...] = ()

    def failed(self, source: str) -> bool:
        return any(s.source == source and not s.ok for s in self.statuses)


class InlineExecutor(cf.Executor):
    """Runs each read at once in the caller's thread. For in-memory sources (the simulator's world),
    which cannot hang: a deadline has nothing to bound there, and a thread per source per tick
    costs more than the reads."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> cf.Future[T]:
        future: cf.Future[T] = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller through the future, as a thread would
            future.set_exception(err)
        return future


class ObserveFailed(Exception):
    """The required part (nodes and operatord-state) could not be read: nothing is decided."""

    def __init__(self, status: SourceStatus) -> None:
        super().__init__(f"{status.source}: {status.kind}: {status.error}")
        self.status = status


@dataclass
class Observer:
    """Builds a Snapshot from the ports, one call per tick (see the module docstring)."""

    cluster: ClusterApi
    namespace: str
    metrics: MetricsSource | None = None
    capacity: CapacityProvider | None = None
    deadlines: Deadlines = field(default_factory=Deadlines)
    executor: cf.Executor | None = None  # None: a thread per source, each inside its deadline
    _pool: cf.Executor = field(init=False, repr=False)
    _inflight: dict[str, cf.Future[Any]] = field(init=False, repr=False, default_factory=dict)
    _history: dict[str, tuple[DemandSample, ...]] = field(init=False, repr=False, default_factory=dict)
    _quota: tuple[datetime, int | None] | None = field(init=False, repr=False, default=None)
    _intents: DecodedIntents = field(init=False, repr=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None

    def __post_init__(self) -> None:
        self._pool = self.executor or cf.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="observe"
        )  # 6 sources + room for a hung one

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def replicas_changed(self, now: datetime, *, up: bool) -> None:
        """The apply path changed a model's replicas (cooldowns start now)."""
        if up:
            self.last_scale_out_at = now
        else:
            self.last_scale_in_at = now

    # -- the tick ----------------------------------------------------------------------------------

    def observe(self, policy: Policy, now: datetime) -> Observation:
        """Read every source within its deadline; raise ObserveFailed only when nodes/state fail."""
        dl = self.deadlines
        started: dict[str, tuple[str, float, cf.Future[Any] | None]] = {
            "core": ("kubernetes", dl.kubernetes, self._submit("core", self._core)),
            "pods": ("kubernetes", dl.kubernetes, self._submit("pods", self._pods)),
            "scales": ("kubernetes", dl.kubernetes, self._submit("scales", lambda: self._scales(policy))),
        }
        burst = policy.burst is not None
        if burst:
            started["intents"] = (
                "kubernetes",
                dl.kubernetes,
                self._submit(
                    "intents",
                    lambda: IntentStore(self.cluster, self.namespace, policy.cluster, self._intents).list(),
                ),
            )
            if self.capacity is not None:
                started["cloud"] = ("ec2", dl.ec2, self._submit("cloud", lambda: self._cloud(now)))
        if self.metrics is not None:
            metrics = self.metrics
            prom_deadline = min(dl.prometheus, policy.metrics.query_timeout.total_seconds() * 3)
            started["metrics"] = (
                "prometheus",
                prom_deadline,
                self._submit("metrics", lambda: metrics.snapshot(now)),
            )

        results: dict[str, Any] = {}
        statuses: dict[str, SourceStatus] = {}
        for name, (source, deadline, future) in started.items():
            value, status = self._wait(name, source, deadline, future)
            if value is not None:
                results[name] = value
            if status is not None and (source not in statuses or statuses[source].ok):
                statuses[source] = status
            elif source not in statuses:
                statuses[source] = SourceStatus(source, True)
        if "core" not in results:
            raise ObserveFailed(statuses["kubernetes"])

        nodes, state = results["core"]
        metrics_snap: MetricsSnapshot | None = results.get("metrics")
        if metrics_snap is not None and metrics_snap.outage is not None:
            statuses["prometheus"] = SourceStatus(
                "prometheus", False, _metrics_kind(metrics_snap), metrics_snap.outage.detail
            )
        replicas: Mapping[str, int] = results.get("scales", {})
        history = self._advance_history(policy, metrics_snap, replicas, now)
        cloud: CloudView | None = None
        unreadable: tuple[str, ...] = ()
        if burst and "intents" in results:
            intents, bad = results["intents"]
            unreadable = tuple(u.name for u in bad)
            found = results.get("cloud")
            cloud = CloudView(
                intents=tuple(intents),
                instances=tuple(found[0]) if found is not None else None,
                vcpu_quota=found[1] if found is not None else None,
                unreadable=unreadable,
            )
        snap = Snapshot(
            observed_at=now,
            nodes=nodes,
            state=state,
            pods=results.get("pods"),
            metrics=metrics_snap,
            replicas=replicas,
            demand_history=history,
            cloud=cloud,
            last_scale_out_at=self.last_scale_out_at,
            last_scale_in_at=self.last_scale_in_at,
        )
        return Observation(snap, tuple(statuses.values()), unreadable)

    # -- sources -----------------------------------------------------------------------------------

    def _core(self) -> tuple[tuple[Node, ...], OperatordState]:
        nodes = self.cluster.list_nodes().items
        state = StateStore(self.cluster, self.namespace).load()
        return tuple(nodes), state

    def _pods(self) -> tuple[Pod, ...]:
        return tuple(self.cluster.list_pods().items)

    def _scales(self, policy: Policy) -> dict[str, int]:
        out: dict[str, int] = {}
        for served in policy.serving.models:
            wl = served.workload
            try:
                out[served.name] = self.cluster.get_scale(
                    WorkloadKey(wl.kind, wl.namespace, wl.name)
                ).replicas
            except NotFound:
                log.warning(
                    "observe.workload_missing", model=served.name, workload=f"{wl.namespace}/{wl.name}"
                )
        return out

    def _cloud(self, now: datetime) -> tuple[tuple[CloudInstance, ...], int | None]:
        assert self.capacity is not None
        instances = tuple(self.capacity.list_instances())
        with self._lock:
            cached = self._quota
        if cached is None or now - cached[0] >= QUOTA_TTL:
            cached = (now, self.capacity.vcpu_quota())
            with self._lock:
                self._quota = cached
        return instances, cached[1]

    # -- plumbing ----------------------------------------------------------------------------------

    def _submit(self, name: str, fn: Callable[[], T]) -> cf.Future[T] | None:
        """Start a read, unless the previous one of this source is still running (then None)."""
        with self._lock:
            previous = self._inflight.get(name)
            if previous is not None and not previous.done():
                return None
        future = self._pool.submit(fn)  # unlocked: an inline executor runs fn here, and fn may lock
        with self._lock:
            self._inflight[name] = future
        return future

    def _wait(
        self, name: str, source: str, deadline: float, future: cf.Future[Any] | None
    ) -> tuple[Any, SourceStatus | None]:
        if future is None:
            log.warning("observe.source_still_running", source=name)
            return None, SourceStatus(source, False, "timeout", f"{name}: previous read still running")
        try:
            return future.result(timeout=deadline), None
        except cf.TimeoutError:
            log.warning("observe.source_timed_out", source=name, deadline_s=deadline)
            return None, SourceStatus(source, False, "timeout", f"{name}: no answer within {deadline:g}s")
        except ClusterError as err:
            log.warning("observe.source_failed", source=name, error=str(err), status=err.status)
            return None, SourceStatus(source, False, _cluster_kind(err), f"{name}: {err}")
        except CapacityUnreachable as err:
            log.warning("observe.source_failed", source=name, error=str(err))
            return None, SourceStatus(source, False, "unreachable", f"{name}: {err}")
        except Exception as err:  # an adapter bug or an SDK error it did not classify: degrade, say so
            log.error("observe.source_failed", source=name, error=f"{type(err).__name__}: {err}")
            return None, SourceStatus(source, False, _sdk_kind(err), f"{name}: {type(err).__name__}: {err}")

    def _advance_history(
        self, policy: Policy, metrics: MetricsSnapshot | None, replicas: Mapping[str, int], now: datetime
    ) -> dict[str, tuple[DemandSample, ...]]:
        """The history decide() gets (before this tick's sample: plan_scaling appends it), and the
        next tick's (with it)."""
        before = {m.name: self._history.get(m.name, ()) for m in policy.serving.models}
        for served in policy.serving.models:
            demand = (
                model_signals(metrics, served, policy, replicas=replicas.get(served.name, 0)).tokens_per_s
                if metrics is not None
                else None
            )
            self._history[served.name] = demand_history(before[served.name], now, demand)
        return before


def _cluster_kind(err: ClusterError) -> str:
    if isinstance(err, Unreachable):
        return "unreachable"
    if isinstance(err, Conflict):
        return "conflict"
    if err.status == 429:
        return "throttled"
    if err.status >= 500:
        return "server"
    return "client"


def _metrics_kind(snap: MetricsSnapshot) -> str:
    reason = snap.outage.reason.value if snap.outage is not None else ""
    return "timeout" if reason == "timeout" else "unreachable"


def _sdk_kind(err: Exception) -> str:
    name = type(err).__name__
    if "Throttl" in name or "RequestLimitExceeded" in str(err):
        return "throttled"
    if "Timeout" in name:
        return "timeout"
    if "Connection" in name or "Endpoint" in name:
        return "unreachable"
    return "server"


__all__ = ["Deadlines", "Observation", "ObserveFailed", "Observer", "SourceStatus"]
