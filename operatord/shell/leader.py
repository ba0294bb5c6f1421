"""Shell. Leader election on a coordination.k8s.io/v1 Lease (the client-go algorithm, over the port).

Only the leader acts; the other replicas observe and serve metrics. The rules:

* **Acquire** when the Lease does not exist, names nobody (released), or has not been renewed
  for its whole `leaseDurationSeconds` *as this replica observed it*: expiry is measured from
  when we last saw the record change, on our own monotonic-like clock, never by comparing the
  holder's renewTime with our wall clock (clock skew between nodes cannot cause two leaders).
* **Renew** every `renew_every` while leading; each write is compare-and-set on the
  resourceVersion, so two candidates racing for one expired lease cannot both win.
* **Stop acting in time.** A leader whose last successful renewal is older than
  `renew_deadline` (2/3 of the duration by default) no longer counts itself leader, so it stops
  before any other replica may take over (which needs the full duration without renewals).
* **Release** on shutdown: the Lease is written with no holder, so a standby takes over at its
  next attempt instead of waiting out the duration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from operatord.core.model import Lease
from operatord.ports.cluster import ClusterApi, ClusterError, Conflict, NotFound

log = structlog.get_logger("operatord.leader")

LEASE_NAME = "operatord-leader"


class LeaderElector:
    """One replica's view of the leader Lease. Thread-safe; `clock` is injected (virtual in tests)."""

    def __init__(
        self,
        cluster: ClusterApi,
        namespace: str,
        identity: str,
        clock: Callable[[], datetime],
        *,
        name: str = LEASE_NAME,
        duration: timedelta = timedelta(seconds=15),
        renew_deadline: timedelta | None = None,
    ) -> None:
        self._cluster = cluster
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self._clock = clock
        self.duration = duration
        self.renew_deadline = renew_deadline if renew_deadline is not None else duration * 2 / 3
        self._lock = threading.Lock()
        self._renewed_at: datetime | None = None  # our last successful write as holder
        self._observed: tuple[str, datetime] | None = None  # (resourceVersion, when we first saw it)
        self._released = False

    @property
    def renew_every(self) -> timedelta:
        return self.duration / 3

    def is_leader(self) -> bool:
        """True while our last successful renewal is within the renew deadline."""
        with self._lock:
            return (
                not self._released
                and self._renewed_at is not None
                and self._clock() - self._renewed_at < self.renew_deadline
            )

    def try_acquire_or_renew(self) -> bool:
        """One election round: acquire, renew or stand by. API errors mean "not leader this round"
        (the renew deadline then ends leadership in time). Returns is_leader() afterwards."""
        if self._released:
            return False
        now = self._clock()
        try:
            lease = self._cluster.get_lease(self._namespace, self._name)
        except NotFound:
            lease = None
        except ClusterError as err:
            log.warning("leader.renew_failed", identity=self.identity, error=str(err))
            return self.is_leader()
        try:
            if lease is None:
                created = self._cluster.create_lease(
                    Lease(
                        self._namespace,
                        self._name,
                        holder=self.identity,
                        duration_s=_seconds(self.duration),
                        acquired_at=now,
                        renewed_at=now,
                    )
                )
                self._won(created, now, new=True)
            elif lease.holder == self.identity:
                renewed = self._cluster.replace_lease(
                    replace(lease, renewed_at=now, duration_s=_seconds(self.duration))
                )
                self._won(renewed, now, new=False)
            elif not lease.holder or self._expired(lease, now):
                taken = self._cluster.replace_lease(
                    replace(
                        lease,
                        holder=self.identity,
                        duration_s=_seconds(self.duration),
                        acquired_at=now,
                        renewed_at=now,
                        transitions=lease.transitions + 1,
                    )
                )
                self._won(taken, now, new=True, previous=lease.holder)
            else:
                self._lost_if_leading(lease.holder)
        except Conflict:
            # Someone wrote in between (a renewal or another candidate): re-read next round.
            log.info("leader.conflict", identity=self.identity)
        except ClusterError as err:
            log.warning("leader.renew_failed", identity=self.identity, error=str(err))
        return self.is_leader()

    def release(self) -> None:
        """Give the Lease up (holder cleared) if we hold it; stop counting ourselves leader either way."""
        with self._lock:
            was = self._renewed_at is not None
            self._released = True
            self._renewed_at = None
        if not was:
            return
        try:
            lease = self._cluster.get_lease(self._namespace, self._name)
            if lease.holder == self.identity:
                self._cluster.replace_lease(
                    replace(lease, holder=None, duration_s=1, renewed_at=self._clock())
                )
                log.info("leader.released", identity=self.identity)
        except ClusterError as err:
            log.warning("leader.release_failed", identity=self.identity, error=str(err))

    # -- internals ---------------------------------------------------------------------------------

    def _expired(self, lease: Lease, now: datetime) -> bool:
        with self._lock:
            if self._observed is None or self._observed[0] != lease.resource_version:
                self._observed = (lease.resource_version, now)
                return False
            seen = self._observed[1]
        return now - seen >= timedelta(seconds=lease.duration_s)

    def _won(self, lease: Lease, now: datetime, *, new: bool, previous: str | None = None) -> None:
        with self._lock:
            was = self._renewed_at is not None and now - self._renewed_at < self.renew_deadline
            self._renewed_at = now
            self._observed = (lease.resource_version, now)
        if new or not was:
            log.info(
                "leader.acquired", identity=self.identity, previous=previous, transitions=lease.transitions
            )

    def _lost_if_leading(self, holder: str | None) -> None:
        with self._lock:
            was = self._renewed_at is not None
            self._renewed_at = None
        if was:
            log.warning("leader.lost", identity=self.identity, holder=holder)


def _seconds(span: timedelta) -> int:
    return max(1, int(span.total_seconds()))
