"""Pure. A burst intent: the durable record of one decision to add burst capacity (design §1.5).

An intent is written (compare-and-set, ConfigMap `operatord-intent-<id>`) before any AWS call and
updated before and after every call, so a crash at any point leaves enough on record to finish
the job without launching twice: an attempt is persisted with its ClientToken *before*
RunInstances, and an attempt without a recorded result is resolved by looking its instances up
by the intent tag, then (only if none are found) re-issued with the same token.

One intent launches `replicas` serving replicas; each attempt launches all their nodes in one
RunInstances call with MinCount = MaxCount (all-or-nothing), in one (instance type, subnet).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from operatord.core.burst.lifecycle import BOOT_PATH, BurstState, check_transition

SCHEMA = 1
ID_HEX = 12


class AttemptOutcome(StrEnum):
    LAUNCHED = "launched"  # instances exist (returned by RunInstances or found by tag)
    CAPACITY = "capacity"  # InsufficientInstanceCapacity & co.: this (type, AZ) is out for a while
    QUOTA = "quota"  # VcpuLimitExceeded / InstanceLimitExceeded: stop launching, alert
    CONFIG = "config"  # the request itself is wrong (template, AMI, permissions): fail the intent
    TRANSIENT = "transient"  # throttled or 5xx after the adapter's own retries: same token next time
    PARTIAL = "partial"  # fewer instances than MinCount came back: rolled back
    DRY_RUN = "dry_run"  # DryRun=True said the call would have succeeded


@dataclass(frozen=True, slots=True)
class Offering:
    """Where one attempt launches: an instance type in one subnet (one AZ)."""

    instance_type: str
    subnet: str
    availability_zone: str


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    offering: Offering
    count: int
    client_token: str
    requested_at: datetime
    outcome: AttemptOutcome | None = None
    code: str | None = None
    finished_at: datetime | None = None

    @property
    def open(self) -> bool:
        """Persisted but without a recorded result: the call may or may not have reached EC2."""
        return self.outcome is None or self.outcome is AttemptOutcome.TRANSIENT


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime
    source: BurstState
    target: BurstState
    reason: str
    subject: str  # the intent id, or an instance id


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    instance_id: str
    instance_type: str
    availability_zone: str
    price_usd_per_hour: float
    launched_at: datetime
    state: BurstState
    state_since: datetime
    node: str | None = None
    ended_at: datetime | None = None  # when it was seen terminated (billing stops)
    attempt: int = 0  # the attempt that launched it

    def cost_usd(self, now: datetime, since: datetime | None = None) -> float:
        """Accrued on-demand cost from launch (or `since`, if later) to termination or `now`."""
        start = max(self.launched_at, since) if since is not None else self.launched_at
        end = min(self.ended_at, now) if self.ended_at is not None else now
        if end <= start:
            return 0.0
        return self.price_usd_per_hour * (end - start).total_seconds() / 3600.0


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    cluster: str
    pool: str
    model: str | None
    replicas: int
    chain: tuple[str, ...]
    reason: str
    created_at: datetime
    expires_at: datetime
    state: BurstState = BurstState.PLANNED
    state_since: datetime | None = None
    attempts: tuple[Attempt, ...] = ()
    instances: tuple[InstanceRecord, ...] = ()
    history: tuple[Transition, ...] = ()
    failure: str | None = None
    version: str | None = field(default=None, compare=False)  # the store's resourceVersion; not data

    # -- queries ---------------------------------------------------------------------------------

    @property
    def open_attempt(self) -> Attempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.open and self.state is BurstState.REQUESTED else None

    @property
    def requested_at(self) -> datetime | None:
        return self.attempts[0].requested_at if self.attempts else None

    @property
    def live(self) -> bool:
        """Something may exist in EC2 for this intent, or is about to."""
        if self.state in (BurstState.PLANNED, BurstState.REQUESTED):
            return True
        return any(i.state.live for i in self.instances)

    @property
    def live_instances(self) -> tuple[InstanceRecord, ...]:
        return tuple(i for i in self.instances if i.state.live)

    @property
    def group_state(self) -> BurstState:
        """The intent's state as one value: its own before launch, else its least advanced instance."""
        if self.state is not BurstState.RUNNING or not self.instances:
            return self.state
        order = list(BurstState)
        return min((i.state for i in self.instances), key=order.index)

    # -- transitions (each returns a new Intent; the caller persists it) -------------------------

    def moved(self, target: BurstState, now: datetime, reason: str) -> Intent:
        check_transition(self.state, target)
        return replace(
            self,
            state=target,
            state_since=now,
            history=(*self.history, Transition(now, self.state, target, reason, self.id)),
        )

    def with_attempt(self, attempt: Attempt, now: datetime, reason: str) -> Intent:
        moved = self.moved(BurstState.REQUESTED, now, reason)
        return replace(moved, attempts=(*self.attempts, attempt))

    def with_outcome(self, outcome: AttemptOutcome, code: str | None, now: datetime) -> Intent:
        """Record the result of the last attempt (it must exist)."""
        last = self.attempts[-1]
        done = replace(last, outcome=outcome, code=code, finished_at=now)
        return replace(self, attempts=(*self.attempts[:-1], done))

    def with_instances(self, records: tuple[InstanceRecord, ...], now: datetime, reason: str) -> Intent:
        moved = self.moved(BurstState.RUNNING, now, reason)
        known = {i.instance_id for i in self.instances}
        added = tuple(r for r in records if r.instance_id not in known)
        return replace(moved, instances=(*self.instances, *added))

    def instance_moved(
        self, instance_id: str, target: BurstState, now: datetime, reason: str, node: str | None = None
    ) -> Intent:
        """Move one instance; boot-path targets may skip ahead, each step is checked and recorded."""
        records: list[InstanceRecord] = []
        history = list(self.history)
        for original in self.instances:
            if original.instance_id != instance_id:
                records.append(original)
                continue
            rec = original
            for step in _steps(rec.state, target):
                check_transition(rec.state, step)
                history.append(Transition(now, rec.state, step, reason, rec.instance_id))
                rec = replace(
                    rec,
                    state=step,
                    state_since=now,
                    node=node if node is not None else rec.node,
                    ended_at=now if step is BurstState.TERMINATED and rec.ended_at is None else rec.ended_at,
                )
            records.append(rec)
        return replace(self, instances=tuple(records), history=tuple(history))

    def instance(self, instance_id: str) -> InstanceRecord | None:
        return next((i for i in self.instances if i.instance_id == instance_id), None)


def _steps(source: BurstState, target: BurstState) -> tuple[BurstState, ...]:
    if source in BOOT_PATH and target in BOOT_PATH and BOOT_PATH.index(target) > BOOT_PATH.index(source):
        return BOOT_PATH[BOOT_PATH.index(source) + 1 : BOOT_PATH.index(target) + 1]
    return (target,)


def client_token(intent_id: str, attempt: int, instance_type: str, subnet: str) -> str:
    """EC2 ClientToken (≤ 64 ASCII): first 48 hex of sha256(intent id, attempt number, type, subnet).

    Stable for one attempt, so a retry after a timeout or 5xx is deduplicated by EC2; distinct per
    attempt and offering, because reusing a token with other parameters is IdempotentParameterMismatch.
    """
    raw = f"{intent_id}\x1f{attempt}\x1f{instance_type}\x1f{subnet}".encode()
    return hashlib.sha256(raw).hexdigest()[:48]


def intent_id(cluster: str, subject: str, now: datetime, seq: int | str = 0) -> str:
    """A deterministic, DNS-safe intent id for a decision taken at `now` (no randomness in the core)."""
    raw = f"{cluster}\x1f{subject}\x1f{now.isoformat()}\x1f{seq}".encode()
    return hashlib.sha256(raw).hexdigest()[:ID_HEX]


# -- JSON form (the ConfigMap's data["intent"]) --------------------------------------------------


def to_json(intent: Intent) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "id": intent.id,
        "cluster": intent.cluster,
        "pool": intent.pool,
        "model": intent.model,
        "replicas": intent.replicas,
        "chain": list(intent.chain),
        "reason": intent.reason,
        "created_at": intent.created_at.isoformat(),
        "expires_at": intent.expires_at.isoformat(),
        "state": intent.state.value,
        "state_since": _iso(intent.state_since),
        "failure": intent.failure,
        "attempts": [
            {
                "number": a.number,
                "instance_type": a.offering.instance_type,
                "subnet": a.offering.subnet,
                "availability_zone": a.offering.availability_zone,
                "count": a.count,
                "client_token": a.client_token,
                "requested_at": a.requested_at.isoformat(),
                "outcome": a.outcome.value if a.outcome else None,
                "code": a.code,
                "finished_at": _iso(a.finished_at),
            }
            for a in intent.attempts
        ],
        "instances": [
            {
                "instance_id": i.instance_id,
                "instance_type": i.instance_type,
                "availability_zone": i.availability_zone,
                "price_usd_per_hour": i.price_usd_per_hour,
                "launched_at": i.launched_at.isoformat(),
                "state": i.state.value,
                "state_since": i.state_since.isoformat(),
                "node": i.node,
                "ended_at": _iso(i.ended_at),
                "attempt": i.attempt,
            }
            for i in intent.instances
        ],
        "history": [
            {
                "at": t.at.isoformat(),
                "from": t.source.value,
                "to": t.target.value,
                "reason": t.reason,
                "subject": t.subject,
            }
            for t in intent.history
        ],
    }


class IntentFormatError(ValueError):
    """A stored intent cannot be read; the message names the field."""


def from_json(data: Mapping[str, Any], version: str | None = None) -> Intent:
    try:
        if data.get("schema") != SCHEMA:
            raise IntentFormatError(f"unsupported intent schema {data.get('schema')!r} (expected {SCHEMA})")
        return Intent(
            id=str(data["id"]),
            cluster=str(data["cluster"]),
            pool=str(data["pool"]),
            model=data.get("model"),
            replicas=int(data["replicas"]),
            chain=tuple(str(c) for c in data["chain"]),
            reason=str(data["reason"]),
            created_at=_dt(data["created_at"]),
            expires_at=_dt(data["expires_at"]),
            state=BurstState(data["state"]),
            state_since=_dt_opt(data.get("state_since")),
            failure=data.get("failure"),
            attempts=tuple(
                Attempt(
                    number=int(a["number"]),
                    offering=Offering(a["instance_type"], a["subnet"], a["availability_zone"]),
                    count=int(a["count"]),
                    client_token=str(a["client_token"]),
                    requested_at=_dt(a["requested_at"]),
                    outcome=AttemptOutcome(a["outcome"]) if a.get("outcome") else None,
                    code=a.get("code"),
                    finished_at=_dt_opt(a.get("finished_at")),
                )
                for a in data.get("attempts", [])
            ),
            instances=tuple(
                InstanceRecord(
                    instance_id=str(i["instance_id"]),
                    instance_type=str(i["instance_type"]),
                    availability_zone=str(i["availability_zone"]),
                    price_usd_per_hour=float(i["price_usd_per_hour"]),
                    launched_at=_dt(i["launched_at"]),
                    state=BurstState(i["state"]),
                    state_since=_dt(i["state_since"]),
                    node=i.get("node"),
                    ended_at=_dt_opt(i.get("ended_at")),
                    attempt=int(i.get("attempt", 0)),
                )
                for i in data.get("instances", [])
            ),
            history=tuple(
                Transition(
                    _dt(t["at"]),
                    BurstState(t["from"]),
                    BurstState(t["to"]),
                    str(t["reason"]),
                    str(t["subject"]),
                )
                for t in data.get("history", [])
            ),
            version=version,
        )
    except IntentFormatError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise IntentFormatError(f"malformed intent: {type(err).__name__}: {err}") from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise IntentFormatError(f"timestamp without a timezone: {value!r}")
    return parsed


def _dt_opt(value: Any) -> datetime | None:
    return _dt(value) if value is not None else None
