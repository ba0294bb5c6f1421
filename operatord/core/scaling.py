"""Pure. The scaling decision: LLM demand → serving replicas → local GPUs first → burst for the gap.

Per model, per tick:

1. **Demand** is weighted tokens/s (design §1.7). Unknown demand is never zero: it freezes
   scale-in and only the saturation signals (queue depth, KV-cache usage) may scale out
   (the KEDA #3065 lesson: a Prometheus outage must not scale a service down at peak).
   Served tokens/s stop growing at capacity, so while requests wait, sizing adds the tokens/s
   that clear them within the e2e SLO (`backlog_tokens_per_s`).
2. **Forecast.** Burst capacity arrives 5–15 minutes after RunInstances (research §3.2), so scale-out
   sizes for max(now, forecast at the boot-to-serving horizon). The forecaster is Holt's double
   exponential smoothing (level + trend, smoothed by half-lives in time so the tick interval does
   not change the fit) over the demand history in the inputs: it needs no
   training, no season of history (Holt-Winters would need days of it that a restarted daemon does
   not have), is O(n) over a bounded window, and it is the simplest model that extrapolates a ramp,
   which is what matters at a 10-minute horizon; the predicted rise is capped at `spike_factor`
   times current demand so a noisy trend cannot launch a fleet. The horizon is
   `forecast.horizon`, else the measured median boot-to-serving time of recent burst instances,
   else 10 minutes. `forecast.method: none` gives the purely reactive rule.
3. **Replicas needed** = demand / (tokens/s per replica at the SLO × target utilization), filled
   on local healthy schedulable nodes first (whole nodes for multi-node replicas; a cordoned or
   faulty node counts for the GPUs its serving replicas still hold), the rest on burst. Open
   capacity requests (replace before drain) take their nodes out of local capacity, so
   replacements are planned before the drain.
4. **Stabilization and cooldowns** (HPA semantics): scale out to the lowest recommendation of the
   scale-out window, scale in to the highest of the scale-in window; cooldowns after each change.
   **Fast path:** queue depth per replica, KV-cache saturation, or demand ≥ spike_factor × the
   smoothed level skips scale-out stabilization and cooldown (AIBrix's panic mode), never scales
   in, and sizes as an HPA on the queue would (at least one more replica, at most double), unless
   replicas asked for earlier are not Ready yet.
5. **Caps** (operatord.core.burst.caps) bound every launch; **scale-in** (design §1.9) releases
   only burst capacity, after `scale_in.min_age`, after `low_demand_for` of low demand, never on
   unknown metrics, one group per step, most expensive first.

Replicas are set by operatord (SetReplicas) unless the model's replica_owner is `hpa`; then only
nodes are provided, sized from the pending replicas and the forecast.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import NamedTuple

from operatord.core.burst.actions import (
    Action,
    Hold,
    LaunchBurst,
    ReleaseBurst,
    SetReplicas,
    action_key,
    detail,
)
from operatord.core.burst.caps import (
    cap_refusal,
    instance_type,
    instances_per_replica,
    over_day_cap,
    quota_blocked_until,
    unavailable_offerings,
    usage,
)
from operatord.core.burst.intent import Intent
from operatord.core.burst.lifecycle import BurstState
from operatord.core.plan import Plan
from operatord.policies.model import BurstInstanceType, Policy, ServedModel, ServingProfile
from operatord.vocab import Reason

DEFAULT_HORIZON = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class DemandSample:
    at: datetime
    tokens_per_s: float
    # `at` in whole microseconds since the epoch: the Holt fit runs over the whole window every
    # tick, and integer differences cost half what datetime ones do (and divide to the same seconds).
    micros: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        at = self.at if self.at.tzinfo is not None else self.at.replace(tzinfo=UTC)
        object.__setattr__(self, "micros", (at - _EPOCH) // _MICROSECOND)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class ModelSignals:
    """What the metrics say about one served model now (None = unknown, never 0)."""

    model: str
    tokens_per_s: float | None
    queue_depth: float | None = None  # waiting requests, summed over replicas
    kv_cache_usage: float | None = None  # highest replica's KV-cache usage, 0..1
    history: tuple[DemandSample, ...] = ()  # weighted tokens/s, oldest first, bounded window
    replicas: int = 0  # the workload's desired replicas now (spec)
    pending_replicas: int = 0  # replicas not scheduled (for hpa-owned models)
    ready_replicas: int | None = None  # replicas serving now (Ready pods); None: pods not observed
    # Tokens/s that would clear the waiting requests within the e2e SLO. Served tokens/s stop
    # growing at capacity, so while requests queue they understate demand by about this much.
    backlog_tokens_per_s: float | None = None


class LocalNode(NamedTuple):
    name: str
    gpus: int  # healthy, schedulable, allocatable GPUs


@dataclass(frozen=True, slots=True)
class LocalPool:
    name: str
    gpu_type: str
    gpus_per_node: int
    nodes: tuple[LocalNode, ...]


@dataclass(frozen=True, slots=True)
class CapacityRequest:
    """Remediation wants replacement capacity before draining `node` (design §1.5)."""

    node: str
    gpus: int
    reason: str
    since: datetime


@dataclass(frozen=True, slots=True)
class ScalingInputs:
    observed_at: datetime
    models: tuple[ModelSignals, ...]
    local_pools: tuple[LocalPool, ...]
    intents: tuple[Intent, ...] = ()
    capacity_requests: tuple[CapacityRequest, ...] = ()
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    vcpu_quota: int | None = None
    tick: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class ModelDecision:
    """Why the numbers are what they are (shown by `operatord plan` and the simulator)."""

    model: str
    demand: float | None
    forecast: float | None
    desired_replicas: int
    local_replicas: int
    burst_replicas_needed: int
    burst_replicas_held: int
    fast_path: bool


@dataclass(frozen=True, slots=True)
class ScalingPlan:
    actions: tuple[Action, ...] = ()
    holds: tuple[Hold, ...] = ()
    models: tuple[ModelDecision, ...] = field(default=())

    def of(self, kind: type) -> list[Action]:
        return [a for a in self.actions if isinstance(a, kind)]

    def to_plan(self) -> Plan:
        """The shared Plan the daemon's apply path executes (operatord.core.plan)."""
        return Plan(self.actions, self.holds)


# -- forecasting -----------------------------------------------------------------------------------


def holt_path(
    samples: Sequence[DemandSample],
    level_half_life: timedelta,
    trend_half_life: timedelta,
    keep_from: int = 0,
) -> list[tuple[float, float]]:
    """Holt's linear smoothing over irregularly spaced samples: (level, trend per second) after
    each sample from `keep_from` on, in one pass (the stabilization window asks what every
    recent tick forecast; the fit itself always starts at the first sample).

    The smoothing weights follow from half-lives in time (a weight of 1 - 0.5^(dt/half-life) for
    a sample dt after the previous one), so the fit does not depend on the tick interval."""
    if not samples:
        return []
    level_h = max(level_half_life.total_seconds(), 1e-9)
    trend_h = max(trend_half_life.total_seconds(), 1e-9)
    level, trend = samples[0].tokens_per_s, 0.0
    prev = samples[0].micros
    path = [(level, trend)] if keep_from <= 0 else []
    append = path.append
    step, dt, alpha, beta = 0, 0.0, 0.0, 0.0
    for i in range(1, len(samples)):  # this loop runs over the whole window on every tick
        s = samples[i]
        at = s.micros
        if at > prev:
            if at - prev != step:  # samples are a tick apart: the weights rarely change
                step = at - prev
                dt = step / 1_000_000  # exactly timedelta.total_seconds() of the difference
                alpha, beta = 1 - 0.5 ** (dt / level_h), 1 - 0.5 ** (dt / trend_h)
            new_level = alpha * s.tokens_per_s + (1 - alpha) * (level + trend * dt)
            trend = beta * (new_level - level) / dt + (1 - beta) * trend
            level, prev = new_level, at
        if i >= keep_from:
            append((level, trend))
    return path


def holt(
    samples: Sequence[DemandSample], level_half_life: timedelta, trend_half_life: timedelta
) -> tuple[float, float] | None:
    """Holt's linear smoothing over irregularly spaced samples: (level, trend per second)."""
    path = holt_path(samples, level_half_life, trend_half_life)
    return path[-1] if path else None


def ahead(fit: tuple[float, float], last: float, horizon: timedelta, cap_factor: float) -> float:
    """The fit's demand `horizon` ahead; never negative, never above `cap_factor` × `last`."""
    level, trend = fit
    return min(max(0.0, level + trend * horizon.total_seconds()), cap_factor * last)


def forecast(
    samples: Sequence[DemandSample],
    level_half_life: timedelta,
    trend_half_life: timedelta,
    horizon: timedelta,
    cap_factor: float,
) -> float | None:
    """Demand expected `horizon` ahead; never negative, never above `cap_factor` × the last sample."""
    fit = holt(samples, level_half_life, trend_half_life)
    if fit is None:
        return None
    return ahead(fit, samples[-1].tokens_per_s, horizon, cap_factor)


def boot_horizon(intents: Sequence[Intent]) -> timedelta | None:
    """Median request-to-serving time of the last ten burst instances that reached serving."""
    times: list[tuple[datetime, float]] = []
    for intent in intents:
        start = intent.requested_at
        if start is None:
            continue
        for t in intent.history:
            if t.target is BurstState.SERVING:
                times.append((t.at, (t.at - start).total_seconds()))
    if not times:
        return None
    recent = [d for _, d in sorted(times)[-10:]]
    return timedelta(seconds=median(recent))


def first_since(history: Sequence[DemandSample], start: datetime) -> int:
    """Index of the first sample at or after `start` (history is oldest first)."""
    return bisect_left(history, start, key=_at)


def _after(history: Sequence[DemandSample], end: datetime) -> int:
    """Index just past the last sample at or before `end`."""
    return bisect_right(history, end, key=_at)


def _at(sample: DemandSample) -> datetime:
    return sample.at


# -- sizing ----------------------------------------------------------------------------------------


def replicas_for(demand: float, profile: ServingProfile, target_utilization: float) -> int:
    """Replicas of one profile for `demand` tokens/s at the target utilization. Total, monotone."""
    if demand <= 0:
        return 0
    return math.ceil(demand / (profile.tokens_per_s_per_replica * target_utilization) - 1e-9)


def _fits(nodes: list[int], gpus_per_node: int, gpus_per_replica: int) -> int:
    if gpus_per_replica <= gpus_per_node:
        return sum(map(gpus_per_replica.__rfloordiv__, nodes))  # g // gpus_per_replica, for every node
    span = math.ceil(gpus_per_replica / gpus_per_node)
    return sum(1 for g in nodes if g >= gpus_per_node) // span


def _take(nodes: list[int], gpus_per_node: int, gpus_per_replica: int, count: int) -> None:
    """Remove `count` replicas' worth of GPUs from `nodes` (in place, fullest-fit first)."""
    left = count
    if gpus_per_replica <= gpus_per_node:
        for i, g in enumerate(nodes):
            k = min(left, g // gpus_per_replica)
            nodes[i] -= k * gpus_per_replica
            left -= k
            if left == 0:
                return
        return
    span = math.ceil(gpus_per_replica / gpus_per_node)
    for i, g in enumerate(nodes):
        if left == 0:
            return
        if g >= gpus_per_node:
            nodes[i] = 0
            span_left = span - 1
            for j in range(i + 1, len(nodes)):
                if span_left == 0:
                    break
                if nodes[j] >= gpus_per_node:
                    nodes[j] = 0
                    span_left -= 1
            left -= 1


@dataclass(frozen=True, slots=True)
class _Split:
    local: int
    burst: int
    unserved: float = 0.0  # tokens/s local capacity cannot take (at target utilization)


def _split(
    demand: float,
    served: ServedModel,
    free: dict[str, list[int]],
    pools: Sequence[LocalPool],
    burst_type: BurstInstanceType | None,
    target: float,
    take: bool,
) -> _Split:
    """Replicas for `demand` on local pools first (in policy order), the rest on burst."""
    remaining = demand / target if demand > 0 else 0.0
    local = 0
    for pool in pools:
        profile = served.profile_for(pool.gpu_type)
        if profile is None or remaining <= 0:
            continue
        nodes = free[pool.name]
        fit = _fits(nodes, pool.gpus_per_node, profile.gpus_per_replica)
        want = math.ceil(remaining / profile.tokens_per_s_per_replica - 1e-9)
        k = min(fit, want)
        if take:
            _take(nodes, pool.gpus_per_node, profile.gpus_per_replica, k)
        local += k
        remaining -= k * profile.tokens_per_s_per_replica
    burst = 0
    if remaining > 0 and burst_type is not None:
        profile = served.profile_for(burst_type.gpu_type)
        if profile is not None:
            burst = math.ceil(remaining / profile.tokens_per_s_per_replica - 1e-9)
    return _Split(local, burst, max(0.0, remaining * target))


# -- the decision ----------------------------------------------------------------------------------


def plan_scaling(inputs: ScalingInputs, policy: Policy, now: datetime) -> ScalingPlan:
    """This tick's replica changes, burst launches and releases, and every hold with its reason.

    Deterministic: equal inputs give an equal plan. Never exceeds a burst cap (caps.cap_refusal
    decides every LaunchBurst); never scales in on unknown or stale metrics.
    """
    sp = policy.scaling
    age = now - inputs.observed_at
    if age > policy.metrics.staleness_limit:
        return ScalingPlan(holds=(_hold(Reason.STALE_SNAPSHOT, age_s=age.total_seconds()),))

    burst = policy.burst if policy.burst is not None and policy.burst.enabled else None
    burst_type = burst.instance_types[0] if burst is not None else None
    requested = {r.node for r in inputs.capacity_requests}
    free = {p.name: [n.gpus for n in p.nodes if n.name not in requested] for p in inputs.local_pools}
    without_requests = {p.name: [n.gpus for n in p.nodes] for p in inputs.local_pools}
    pools = sorted(
        inputs.local_pools,
        key=lambda p: (
            [q.name for q in policy.pools].index(p.name) if policy.pool(p.name) else len(policy.pools)
        ),
    )
    horizon = sp.forecast.horizon or boot_horizon(inputs.intents) or DEFAULT_HORIZON
    signals = {m.model: m for m in inputs.models}
    held_by_model = _burst_replicas_held(inputs.intents)
    out_cooling = (
        inputs.last_scale_out_at is not None and now - inputs.last_scale_out_at < sp.scale_out_cooldown
    )
    in_cooling = (
        inputs.last_scale_in_at is not None and now - inputs.last_scale_in_at < sp.scale_in_cooldown
    ) or (inputs.last_scale_out_at is not None and now - inputs.last_scale_out_at < sp.scale_in_stabilization)

    actions: list[Action] = []
    holds: list[Hold] = []
    decisions: list[ModelDecision] = []
    launches: list[tuple[str, int, bool, str]] = []  # model, replicas, fast, reason
    excess: dict[str, int] = {}
    waiting: dict[str, str] = {}

    for served in policy.serving.models:
        sig = signals.get(served.name) or ModelSignals(served.name, None)
        demand = sig.tokens_per_s
        current = sig.replicas
        fast = _saturated(sig, sp.queue_depth_per_replica, sp.kv_cache_high)
        history = list(sig.history[: _after(sig.history, now)])
        if demand is not None:
            history.append(DemandSample(now, demand))
        predicted: float | None = None
        fc = sp.forecast
        # Only the scale-out window looks back at past forecasts; the fit is kept from there on.
        recent = first_since(history, now - sp.scale_out_stabilization)
        path = (
            holt_path(history, fc.level_half_life, fc.trend_half_life, keep_from=recent)
            if fc.method == "holt"
            else []
        )
        if demand is not None and path:
            predicted = ahead(path[-1], demand, horizon, sp.spike_factor)
            level = path[-1][0]
            if level > 0 and demand >= sp.spike_factor * level:
                fast = True
        up_demand = (
            max(demand + (sig.backlog_tokens_per_s or 0.0), predicted or 0.0) if demand is not None else None
        )

        # Replicas for the (forecast) demand now; recommendations over the windows for stabilization.
        if up_demand is None:
            split_now = _Split(0, 0)
            desired = current
        else:
            split_now = _split(up_demand, served, free, pools, burst_type, sp.target_utilization, take=False)
            desired = split_now.local + split_now.burst
        # Saturation never scales in, and sizes replicas as an HPA on the queue would
        # (queue_depth_per_replica waiting requests each; at least one more, at most double), once:
        # while earlier replicas are still starting, or wait for burst nodes, the queue they will
        # drain is no reason to add more.
        in_flight = sig.ready_replicas is not None and sig.ready_replicas < current
        if fast:
            desired = max(desired, current)
        if fast and not in_flight:
            by_queue = math.ceil((sig.queue_depth or 0) / sp.queue_depth_per_replica - 1e-9)
            desired = max(desired, min(max(current, 1) * 2, max(current + 1, by_queue)))
        desired = max(served.min_replicas, min(served.max_replicas, desired))

        # recommend() and _split() grow with demand, so a window's lowest (highest) recommendation
        # is the recommendation for its lowest (highest) demand: one split per window, not per sample.
        def recommend(x: float, served: ServedModel = served) -> int:
            split = _split(x, served, free, pools, burst_type, sp.target_utilization, take=False)
            return max(served.min_replicas, min(served.max_replicas, split.local + split.burst))

        def sized_at(
            i: int,
            history: list[DemandSample] = history,
            path: list[tuple[float, float]] = path,
            recent: int = recent,
        ) -> float:
            """Demand the decision at sample i would have sized for (with its forecast, if any)."""
            x = history[i].tokens_per_s
            return max(x, ahead(path[i - recent], x, horizon, sp.spike_factor)) if path else x

        target = current
        if desired > current:
            past = range(recent, len(history) - 1)
            stable = min(recommend(min(sized_at(i) for i in past)), desired) if past and not fast else desired
            if demand is None and not fast:
                holds.append(_hold(Reason.METRICS_UNKNOWN, served.name, "set_replicas"))
            elif out_cooling and not fast:
                holds.append(
                    _hold(Reason.COOLDOWN, served.name, "set_replicas", wanted=desired, current=current)
                )
            elif stable <= current:
                holds.append(
                    _hold(Reason.STABILIZING, served.name, "set_replicas", wanted=desired, current=current)
                )
            else:
                target = stable
        elif desired < current:
            window = history[first_since(history, now - sp.scale_in_stabilization) :]
            covered = bool(window) and now - window[0].at >= sp.scale_in_stabilization - inputs.tick
            if demand is None:
                holds.append(
                    _hold(Reason.METRICS_UNKNOWN, served.name, "set_replicas", note="scale-in frozen")
                )
            elif in_cooling:
                holds.append(
                    _hold(Reason.COOLDOWN, served.name, "set_replicas", wanted=desired, current=current)
                )
            elif not covered:
                holds.append(
                    _hold(Reason.STABILIZING, served.name, "set_replicas", wanted=desired, current=current)
                )
            else:
                target = min(current, max(recommend(max(x.tokens_per_s for x in window)), desired))

        if served.replica_owner == "hpa":
            target = max(target, current)  # the HPA owns replicas; operatord sizes nodes for them

        # Burst capacity that demand needed at any time in the low-demand window (scale-in waits
        # until none of it was needed for the whole window); computed before this model takes nodes.
        low_window = (
            history[first_since(history, now - burst.scale_in.low_demand_for) :] if burst is not None else []
        )
        low_covered = (
            bool(low_window)
            and burst is not None
            and (now - low_window[0].at >= burst.scale_in.low_demand_for - inputs.tick)
        )
        window_need = (
            _split(
                max(x.tokens_per_s for x in low_window),
                served,
                free,
                pools,
                burst_type,
                sp.target_utilization,
                take=False,
            ).burst
            if low_window
            else 0
        )

        # Local fill for the target (consuming local nodes in policy order), then what burst must hold.
        basis = _capacity_basis(target, served, free, pools, burst_type)
        local_used, burst_needed = basis.local, basis.burst
        if served.replica_owner == "hpa":
            burst_needed = max(burst_needed, _pending_not_fitting(sig, served, free, pools))
        held = held_by_model.get(served.name, 0)
        if burst_needed > held and demand is None and not fast:
            waiting[served.name] = "metrics_unknown"  # never buy capacity on unknown demand
        elif burst_needed > held:
            plain = _capacity_basis(
                target, served, {k: list(v) for k, v in without_requests.items()}, pools, burst_type
            ).burst
            only_requests = bool(inputs.capacity_requests) and plain <= held
            reason = Reason.CAPACITY_REQUEST.value if only_requests else Reason.DEMAND_OVER_SUPPLY.value
            launches.append((served.name, burst_needed - held, fast, reason))
        elif held > burst_needed and demand is not None and low_covered:
            spare = held - max(burst_needed, window_need)
            if spare > 0:
                excess[served.name] = spare
        elif held > burst_needed:
            waiting[served.name] = "metrics_unknown" if demand is None else "low_demand_window"
        if burst is None and up_demand is not None and split_now.unserved > 0:
            holds.append(
                _hold(
                    Reason.DEMAND_OVER_SUPPLY,
                    served.name,
                    "launch_burst",
                    unserved_tokens_per_s=round(split_now.unserved, 1),
                    note="burst is disabled",
                )
            )

        if served.replica_owner == "operatord" and target != current:
            wl = served.workload
            actions.append(
                SetReplicas(
                    key=action_key("set_replicas", served.name, target, now.isoformat()),
                    reason=Reason.DEMAND_OVER_SUPPLY.value
                    if target > current
                    else Reason.SUPPLY_OVER_DEMAND.value,
                    detail=detail(model=served.name, previous=current, replicas=target),
                    model=served.name,
                    workload_kind=wl.kind,
                    namespace=wl.namespace,
                    name=wl.name,
                    replicas=target,
                    previous=current,
                )
            )
        decisions.append(
            ModelDecision(served.name, demand, predicted, target, local_used, burst_needed, held, fast)
        )

    if burst is None:
        return ScalingPlan(tuple(actions), tuple(holds), tuple(decisions))

    for model, why in sorted(waiting.items()):
        holds.append(
            _hold(
                Reason.METRICS_UNKNOWN if why == "metrics_unknown" else Reason.STABILIZING,
                model,
                "release_burst",
                note="burst waits: " + why.replace("_", " "),
            )
        )
    actions_b, holds_b = _burst_actions(inputs, policy, now, launches, excess, out_cooling, in_cooling)
    # Releases first: the shell marks burst pods for deletion before replicas go down (design §1.9).
    ordered = (
        [a for a in actions_b if isinstance(a, ReleaseBurst)]
        + actions
        + [a for a in actions_b if isinstance(a, LaunchBurst)]
    )
    return ScalingPlan(tuple(ordered), tuple(holds + holds_b), tuple(decisions))


def _capacity_basis(
    target: int,
    served: ServedModel,
    free: dict[str, list[int]],
    pools: Sequence[LocalPool],
    burst_type: BurstInstanceType | None,
) -> _Split:
    """Split `target` replicas into local (filling free nodes, which are consumed) and burst."""
    local = 0
    for pool in pools:
        profile = served.profile_for(pool.gpu_type)
        if profile is None:
            continue
        nodes = free[pool.name]
        k = min(_fits(nodes, pool.gpus_per_node, profile.gpus_per_replica), target - local)
        _take(nodes, pool.gpus_per_node, profile.gpus_per_replica, k)
        local += k
    return _Split(local, max(0, target - local) if burst_type is not None else 0)


def _pending_not_fitting(
    sig: ModelSignals, served: ServedModel, free: dict[str, list[int]], pools: Sequence[LocalPool]
) -> int:
    left = sig.pending_replicas
    for pool in pools:
        profile = served.profile_for(pool.gpu_type)
        if profile is None or left <= 0:
            continue
        left -= _fits(free[pool.name], pool.gpus_per_node, profile.gpus_per_replica)
    return max(0, left)


def _saturated(sig: ModelSignals, queue_per_replica: float, kv_high: float) -> bool:
    if sig.queue_depth is not None and sig.queue_depth >= queue_per_replica * max(sig.replicas, 1):
        return True
    return sig.kv_cache_usage is not None and sig.kv_cache_usage >= kv_high


def _burst_replicas_held(intents: Sequence[Intent]) -> dict[str, int]:
    """Replicas of burst capacity per model that serve or are on their way (not leaving)."""
    out: dict[str, int] = {}
    for intent in intents:
        if intent.model is None or not intent.live:
            continue
        state = intent.group_state
        if state in (BurstState.DRAINING, BurstState.TERMINATING, BurstState.TERMINATE_FAILED):
            continue
        out[intent.model] = out.get(intent.model, 0) + intent.replicas
    return out


def _burst_actions(
    inputs: ScalingInputs,
    policy: Policy,
    now: datetime,
    launches: list[tuple[str, int, bool, str]],
    excess: dict[str, int],
    out_cooling: bool,
    in_cooling: bool,
) -> tuple[list[Action], list[Hold]]:
    burst = policy.burst
    assert burst is not None
    actions: list[Action] = []
    holds: list[Hold] = []
    held = usage(inputs.intents, policy, now)

    if over_day_cap(burst, held, inputs.tick):
        release = _pick_release(inputs.intents, policy, now, models=None, min_age=timedelta(0))
        if release is not None:
            actions.append(_release(release, Reason.SPEND_CAP, now))
        holds.append(
            _hold(
                Reason.SPEND_CAP,
                None,
                "launch_burst",
                spent_today_usd=round(held.spent_today_usd, 2),
                max_usd_per_day=burst.max_usd_per_day,
            )
        )
        return actions, holds

    blocked = quota_blocked_until(inputs.intents, burst, now)
    unavailable = unavailable_offerings(inputs.intents, burst, now)
    seq = 0
    for model, replicas, fast, reason in launches:
        if out_cooling and not fast and reason != Reason.CAPACITY_REQUEST.value:
            holds.append(_hold(Reason.COOLDOWN, model, "launch_burst", burst_replicas_short=replicas))
            continue
        if blocked is not None:
            holds.append(_hold(Reason.QUOTA_EXHAUSTED, model, "launch_burst", until=blocked.isoformat()))
            continue
        choice = _first_offering(policy, model, unavailable)
        if choice is None:
            holds.append(
                _hold(Reason.NO_CAPACITY, model, "launch_burst", note="every offering is backing off")
            )
            continue
        itype, per_replica = choice
        fit = replicas
        refusal = None
        while fit > 0:
            why = cap_refusal(burst, held, itype, fit * per_replica, inputs.vcpu_quota)
            if why is None:
                break
            refusal = refusal or why
            fit -= 1
        if fit < replicas and refusal is not None:
            holds.append(
                _hold(refusal[0], model, "launch_burst", **refusal[1], replicas_short=replicas - fit)
            )
        if fit == 0:
            continue
        count = fit * per_replica
        seq += 1
        actions.append(
            LaunchBurst(
                key=action_key("launch_burst", model, fit, now.isoformat(), seq),
                reason=reason,
                detail=detail(model=model, replicas=fit, instance_type=itype.instance_type, instances=count),
                model=model,
                replicas=fit,
                instance_type=itype.instance_type,
                instances=count,
                usd_per_hour=count * itype.price_usd_per_hour,
            )
        )
        held = type(held)(
            held.instances + count,
            held.vcpus + count * itype.vcpus,
            held.usd_per_hour + count * itype.price_usd_per_hour,
            held.spent_today_usd,
        )

    if not launches and excess:
        if in_cooling:
            holds.append(_hold(Reason.COOLDOWN, None, "release_burst", note="burst scale-in"))
        else:
            release = _pick_release(
                inputs.intents,
                policy,
                now,
                models=set(excess),
                min_age=burst.scale_in.min_age,
                max_replicas=excess,
            )
            if release is not None:
                actions.append(_release(release, Reason.SUPPLY_OVER_DEMAND, now))
            else:
                holds.append(
                    _hold(Reason.STABILIZING, None, "release_burst", note="no serving burst group old enough")
                )
    return actions, holds


def _first_offering(policy: Policy, model: str, unavailable: object) -> tuple[BurstInstanceType, int] | None:
    burst = policy.burst
    assert burst is not None
    out = unavailable if isinstance(unavailable, dict) else {}
    for itype in burst.instance_types:
        if all((itype.instance_type, s.availability_zone) in out for s in burst.subnets):
            continue
        return itype, instances_per_replica(policy, model, itype)
    return None


def _pick_release(
    intents: Sequence[Intent],
    policy: Policy,
    now: datetime,
    *,
    models: set[str] | None,
    min_age: timedelta,
    max_replicas: dict[str, int] | None = None,
) -> Intent | None:
    """The burst group to release: serving, old enough, most expensive first (then newest, then id)."""
    burst = policy.burst
    assert burst is not None
    candidates: list[tuple[float, datetime, str, Intent]] = []
    for intent in intents:
        if intent.group_state is not BurstState.SERVING:
            continue
        if models is not None and intent.model not in models:
            continue
        if (
            max_replicas is not None
            and intent.model is not None
            and intent.replicas > max_replicas.get(intent.model, 0)
        ):
            continue
        live = intent.live_instances
        if not live or any(now - r.launched_at < min_age for r in live):
            continue
        rate = sum(r.price_usd_per_hour for r in live)
        candidates.append((-rate, max(r.launched_at for r in live), intent.id, intent))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], -c[1].timestamp(), c[2]))
    return candidates[0][3]


def _release(intent: Intent, reason: Reason, now: datetime) -> ReleaseBurst:
    live = intent.live_instances
    ids = tuple(r.instance_id for r in live)
    return ReleaseBurst(
        key=action_key("release_burst", intent.id, now.isoformat()),
        reason=reason.value,
        detail=detail(intent=intent.id, instances=",".join(ids), model=intent.model),
        intent_id=intent.id,
        instance_ids=ids,
        model=intent.model,
        replicas=intent.replicas,
        usd_per_hour=sum(r.price_usd_per_hour for r in live),
    )


def _hold(
    reason: Reason,
    model: str | None = None,
    blocked: str | None = None,
    **values: str | int | float | bool | None,
) -> Hold:
    """A hold about a model (not a node): the model goes into the detail."""
    extra = {"model": model} if model is not None else {}
    return Hold(reason.value, None, detail(**extra, **values), blocked)


__all__ = [
    "CapacityRequest",
    "DemandSample",
    "LocalNode",
    "LocalPool",
    "ModelDecision",
    "ModelSignals",
    "ScalingInputs",
    "ScalingPlan",
    "forecast",
    "holt",
    "instance_type",
    "plan_scaling",
    "replicas_for",
]
