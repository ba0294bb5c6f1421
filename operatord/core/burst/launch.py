"""Pure. Launching one intent: which offering to try next, and what a result does to the intent.

The shell runs the loop — persist the attempt, call RunInstances, persist the result, ask again —
and every step here is a plain function of (intent, the other intents, policy, now), so the same
fallback order is used by the daemon, `operatord burst launch` and the simulator.

Fallback order: the policy's instance-type chain, first preferred, and inside each type the
policy's subnets in order; an (instance type, AZ) that answered with a capacity error within
`capacity_backoff` is skipped, and each type is checked against every cap with its own price and
vCPUs, so falling back to a pricier type can never break the $/hour cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from operatord.core.burst.caps import (
    cap_refusal,
    instances_per_replica,
    quota_blocked_until,
    unavailable_offerings,
    usage,
)
from operatord.core.burst.intent import (
    Attempt,
    AttemptOutcome,
    InstanceRecord,
    Intent,
    Offering,
    client_token,
    intent_id,
)
from operatord.core.burst.lifecycle import BurstState
from operatord.core.burst.observed import CloudInstance, LaunchResult
from operatord.policies.model import BurstPolicy, Policy
from operatord.vocab import Reason


@dataclass(frozen=True, slots=True)
class Refusal:
    """No attempt is possible now; `reason` is stable, `detail` says which cap or offering."""

    reason: Reason
    detail: dict[str, object]


def new_intent(
    policy: Policy, *, model: str | None, replicas: int, reason: str, now: datetime, seq: int | str = 0
) -> Intent:
    """A PLANNED intent for `replicas` serving replicas; it expires after the policy's max lifetime."""
    burst = _burst(policy)
    subject = f"{model or '-'}:{replicas}:{reason}"
    return Intent(
        id=intent_id(policy.cluster, subject, now, seq),
        cluster=policy.cluster,
        pool=burst.pool,
        model=model,
        replicas=replicas,
        chain=tuple(t.instance_type for t in burst.instance_types),
        reason=reason,
        created_at=now,
        expires_at=now + burst.max_instance_lifetime,
        state=BurstState.PLANNED,
        state_since=now,
    )


def next_attempt(
    intent: Intent, others: Sequence[Intent], policy: Policy, now: datetime, vcpu_quota: int | None = None
) -> Attempt | Refusal:
    """The attempt to make now: the open one again (same ClientToken) if its result is unknown,
    else the first offering along the chain and subnets that is available and fits every cap."""
    burst = _burst(policy)
    if intent.state not in (BurstState.PLANNED, BurstState.REQUESTED):
        return Refusal(
            Reason.LAUNCH_TIMEOUT, {"state": intent.state.value, "note": "intent is past launching"}
        )
    if intent.open_attempt is not None:
        return intent.open_attempt
    everything = [*(o for o in others if o.id != intent.id), intent]
    blocked = quota_blocked_until(everything, burst, now)
    if blocked is not None:
        return Refusal(Reason.QUOTA_EXHAUSTED, {"until": blocked.isoformat()})
    held = usage(everything, policy, now, exclude=intent.id)
    out = unavailable_offerings(everything, burst, now)
    refusals: list[Refusal] = []
    for name in intent.chain:
        itype = next((t for t in burst.instance_types if t.instance_type == name), None)
        if itype is None:
            continue
        count = intent.replicas * instances_per_replica(policy, intent.model, itype)
        capped = cap_refusal(burst, held, itype, count, vcpu_quota)
        if capped is not None:
            refusals.append(Refusal(capped[0], {"instance_type": name, **capped[1]}))
            continue
        for subnet in burst.subnets:
            if (name, subnet.availability_zone) in out:
                continue
            number = len(intent.attempts) + 1
            return Attempt(
                number=number,
                offering=Offering(name, subnet.id, subnet.availability_zone),
                count=count,
                client_token=client_token(intent.id, number, name, subnet.id),
                requested_at=now,
            )
        refusals.append(
            Refusal(Reason.NO_CAPACITY, {"instance_type": name, "note": "every AZ is backing off"})
        )
    # Report the refusal of the preferred type; the table shows all of them in `detail`.
    first = refusals[0] if refusals else Refusal(Reason.NO_CAPACITY, {"note": "empty instance-type chain"})
    return Refusal(first.reason, {**first.detail, "tried": [r.reason.value for r in refusals]})


def begin(intent: Intent, attempt: Attempt, now: datetime) -> Intent:
    """The intent with `attempt` recorded as requested (persist this before calling EC2).
    Re-issuing the open attempt changes nothing."""
    if intent.open_attempt is not None and intent.open_attempt.number == attempt.number:
        return intent
    return intent.with_attempt(
        attempt,
        now,
        f"attempt {attempt.number}: {attempt.offering.instance_type} in {attempt.offering.availability_zone}",
    )


def refuse(intent: Intent, refusal: Refusal, now: datetime) -> Intent:
    moved = intent.moved(BurstState.LAUNCH_FAILED, now, refusal.reason.value)
    return replace(moved, failure=refusal.reason.value)


@dataclass(frozen=True, slots=True)
class Recorded:
    """An intent after a launch result, the instance ids to terminate at once (a partial group
    rolled back, or extras beyond the attempt's count) and whether to try the next offering."""

    intent: Intent
    terminate: tuple[str, ...]
    try_next: bool


def record(intent: Intent, result: LaunchResult, policy: Policy, now: datetime) -> Recorded:
    """Apply one attempt's result. All-or-nothing: fewer instances than the attempt's count are
    recorded as terminating and rolled back, and the next offering is tried."""
    attempt = intent.attempts[-1]
    outcome = result.outcome
    if outcome is AttemptOutcome.LAUNCHED:
        found = sorted(result.instances, key=lambda c: c.instance_id)
        if len(found) < attempt.count:
            rolled = _with_doomed(
                intent.with_outcome(AttemptOutcome.PARTIAL, result.code or "partial", now),
                found,
                policy,
                now,
                Reason.PARTIAL_LAUNCH.value,
            )
            return Recorded(rolled, tuple(c.instance_id for c in found), try_next=True)
        keep, extra = found[: attempt.count], found[attempt.count :]
        done = intent.with_outcome(AttemptOutcome.LAUNCHED, result.code, now)
        records = tuple(_record(c, policy, now, BurstState.RUNNING, attempt.number) for c in keep)
        done = done.with_instances(records, now, f"{len(keep)} instance(s) launched")
        if extra:
            done = _with_doomed(done, extra, policy, now, Reason.PARTIAL_LAUNCH.value)
        return Recorded(done, tuple(c.instance_id for c in extra), try_next=False)
    if outcome is AttemptOutcome.CAPACITY:
        return Recorded(intent.with_outcome(outcome, result.code, now), (), try_next=True)
    if outcome is AttemptOutcome.TRANSIENT:
        # The attempt stays open: the next tick re-issues it with the same ClientToken.
        return Recorded(intent.with_outcome(outcome, result.code, now), (), try_next=False)
    reason = {
        AttemptOutcome.QUOTA: Reason.QUOTA_EXHAUSTED,
        AttemptOutcome.CONFIG: Reason.LAUNCH_REJECTED,
        AttemptOutcome.DRY_RUN: Reason.LAUNCH_REJECTED,
        AttemptOutcome.PARTIAL: Reason.PARTIAL_LAUNCH,
    }[outcome]
    failed = intent.with_outcome(outcome, result.code, now).moved(BurstState.LAUNCH_FAILED, now, reason.value)
    return Recorded(
        replace(failed, failure=f"{reason.value}: {result.code or ''} {result.message}".strip()),
        (),
        try_next=False,
    )


def adopt(intent: Intent, found: Sequence[CloudInstance], policy: Policy, now: datetime) -> Recorded:
    """Resolve the open attempt from instances found by the intent tag (a crash or timeout lost
    the RunInstances answer): the same rules as a returned result."""
    return record(
        intent, LaunchResult(AttemptOutcome.LAUNCHED, tuple(found), code="found_by_tag"), policy, now
    )


def _record(
    c: CloudInstance, policy: Policy, now: datetime, state: BurstState, attempt: int
) -> InstanceRecord:
    burst = _burst(policy)
    itype = next((t for t in burst.instance_types if t.instance_type == c.instance_type), None)
    return InstanceRecord(
        instance_id=c.instance_id,
        instance_type=c.instance_type,
        availability_zone=c.availability_zone,
        price_usd_per_hour=itype.price_usd_per_hour if itype else 0.0,
        launched_at=min(c.launched_at, now),
        state=state,
        state_since=now,
        attempt=attempt,
    )


def _with_doomed(
    intent: Intent, doomed: Sequence[CloudInstance], policy: Policy, now: datetime, reason: str
) -> Intent:
    """Track instances that are being rolled back, so they are never untracked while they exist."""
    known = {i.instance_id for i in intent.instances}
    # attempt 0: never part of a serving group (the group rule of reconcile ignores them).
    records = tuple(
        _record(c, policy, now, BurstState.RUNNING, 0) for c in doomed if c.instance_id not in known
    )
    out = replace(intent, instances=(*intent.instances, *records))
    for rec in records:
        out = out.instance_moved(rec.instance_id, BurstState.TERMINATING, now, reason)
    return out


def _burst(policy: Policy) -> BurstPolicy:
    if policy.burst is None:
        raise ValueError("the policy has no burst section")
    return policy.burst
