"""Pure. Hard caps on burst capacity: instance count, $/hour, $/day and the regional vCPU quota.

No anchor has dollar caps (kubernetes-sigs/karpenter #1215); here every launch attempt is checked
against all four, with the price and vCPUs of the instance type actually attempted, because a
fallback along the chain may be pricier than the first choice.

Committed spend: an instance launched now is assumed to run at least until it may first be
released (`scale_in.min_age`) and at least one hour, so the $/day check refuses a launch that
would push today's spend over the cap within that time; when today's spend plus the current rate
for the next tick would pass the cap, `over_day_cap` says so and scale-in releases capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from operatord.core.burst.intent import AttemptOutcome, Intent
from operatord.core.burst.lifecycle import BurstState
from operatord.policies.model import BurstInstanceType, BurstPolicy, Policy
from operatord.vocab import Reason

MIN_COMMITMENT = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Usage:
    """Burst resources held or on their way (instances of live intents, reserved counts of
    intents that have not launched yet) and today's spend."""

    instances: int
    vcpus: int
    usd_per_hour: float
    spent_today_usd: float


def instance_type(policy: BurstPolicy, name: str) -> BurstInstanceType | None:
    return next((t for t in policy.instance_types if t.instance_type == name), None)


def instances_per_replica(policy: Policy, model: str | None, itype: BurstInstanceType) -> int:
    """Nodes one serving replica of `model` needs on `itype` (the chain entry's nodes_per_replica,
    or enough whole nodes for the model's GPUs on that GPU type, whichever is larger)."""
    nodes = itype.nodes_per_replica
    served = next((m for m in policy.serving.models if m.name == model), None)
    profile = served.profile_for(itype.gpu_type) if served is not None else None
    if profile is not None:
        nodes = max(nodes, -(-profile.gpus_per_replica // itype.gpus_per_node))
    return nodes


def reserved_count(intent: Intent, policy: Policy) -> tuple[int, BurstInstanceType | None]:
    """Instances an intent holds or is about to hold, and the type they are counted at."""
    burst = policy.burst
    if burst is None:
        return 0, None
    live = intent.live_instances
    if intent.state not in (BurstState.PLANNED, BurstState.REQUESTED):
        if not live:
            return 0, None
        return len(live), instance_type(burst, live[0].instance_type)
    attempt = intent.attempts[-1] if intent.attempts else None
    if attempt is not None and attempt.open:
        return len(live) + attempt.count, instance_type(burst, attempt.offering.instance_type)
    first = next((instance_type(burst, c) for c in intent.chain if instance_type(burst, c)), None)
    if first is None:
        return len(live), None
    return len(live) + intent.replicas * instances_per_replica(policy, intent.model, first), first


def usage(intents: Iterable[Intent], policy: Policy, now: datetime, *, exclude: str | None = None) -> Usage:
    """Resources held by `intents` (except the one named `exclude`) and spend since 00:00 UTC."""
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    count = vcpus = 0
    rate = spent = 0.0
    for intent in intents:
        for rec in intent.instances:
            spent += rec.cost_usd(now, since=day_start)
        if intent.id == exclude:
            continue
        n, itype = reserved_count(intent, policy)
        if itype is None:
            continue
        count += n
        vcpus += n * itype.vcpus
        rate += n * itype.price_usd_per_hour
    return Usage(count, vcpus, rate, spent)


def cap_refusal(
    burst: BurstPolicy, held: Usage, itype: BurstInstanceType, count: int, vcpu_quota: int | None = None
) -> tuple[Reason, dict[str, float]] | None:
    """Why launching `count` more `itype` instances would break a cap, or None if it fits all of them.

    `vcpu_quota` is what AWS reported (Service Quotas), used when the policy does not pin one; the
    smaller of the two wins when both are known.
    """
    if held.instances + count > burst.max_instances:
        return Reason.BURST_CEILING, {
            "instances": held.instances,
            "adding": count,
            "max": burst.max_instances,
        }
    rate = held.usd_per_hour + count * itype.price_usd_per_hour
    if rate > burst.max_usd_per_hour + 1e-9:
        return Reason.SPEND_CAP, {"usd_per_hour": round(rate, 4), "max_usd_per_hour": burst.max_usd_per_hour}
    commit_hours = max(burst.scale_in.min_age, MIN_COMMITMENT).total_seconds() / 3600.0
    projected = held.spent_today_usd + rate * commit_hours
    if projected > burst.max_usd_per_day + 1e-9:
        return Reason.SPEND_CAP, {
            "projected_usd_today": round(projected, 2),
            "max_usd_per_day": burst.max_usd_per_day,
        }
    quotas = [q for q in (burst.vcpu_quota, vcpu_quota) if q is not None]
    if quotas and held.vcpus + count * itype.vcpus > min(quotas):
        return Reason.QUOTA_EXHAUSTED, {"vcpus": held.vcpus + count * itype.vcpus, "quota": min(quotas)}
    return None


def over_day_cap(burst: BurstPolicy, held: Usage, tick: timedelta) -> bool:
    """True when today's spend plus the current rate for one more tick passes the $/day cap."""
    return held.spent_today_usd + held.usd_per_hour * tick.total_seconds() / 3600.0 > burst.max_usd_per_day


def unavailable_offerings(
    intents: Iterable[Intent], burst: BurstPolicy, now: datetime
) -> Mapping[tuple[str, str], datetime]:
    """(instance type, AZ) pairs that answered with a capacity error (or a partial group) within `capacity_backoff`,
    mapped to when they may be tried again (Karpenter's 3-minute offering cache, persisted)."""
    out: dict[tuple[str, str], datetime] = {}
    for intent in intents:
        for a in intent.attempts:
            if a.outcome in (AttemptOutcome.CAPACITY, AttemptOutcome.PARTIAL) and a.finished_at is not None:
                until = a.finished_at + burst.capacity_backoff
                key = (a.offering.instance_type, a.offering.availability_zone)
                if until > now and until > out.get(key, now):
                    out[key] = until
    return out


def quota_blocked_until(intents: Iterable[Intent], burst: BurstPolicy, now: datetime) -> datetime | None:
    """After a quota error nothing launches for `quota_backoff` (stop and alert; never hot-retry)."""
    last = max(
        (
            a.finished_at
            for i in intents
            for a in i.attempts
            if a.outcome is AttemptOutcome.QUOTA and a.finished_at is not None
        ),
        default=None,
    )
    if last is None or last + burst.quota_backoff <= now:
        return None
    return last + burst.quota_backoff
