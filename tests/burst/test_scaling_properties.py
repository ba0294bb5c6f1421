"""Properties of the scaling decision over generated inputs: no plan ever breaks a cap, scale-in
never happens on unknown demand, and at most one burst group is released per step."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst
from operatord.core.burst.caps import MIN_COMMITMENT, instance_type, usage
from operatord.core.burst.lifecycle import BurstState
from operatord.core.scaling import DemandSample, holt_path, plan_scaling
from operatord.policies.model import Policy

from .conftest import NOW, P4D, P4DE, policy_doc
from .test_scaling import PER_REPLICA, burst_intent, inputs, local

LIVE = [
    BurstState.RUNNING,
    BurstState.REGISTERED,
    BurstState.GPU_READY,
    BurstState.SERVING,
    BurstState.DRAINING,
]


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    per_hour = draw(st.floats(20, 200))
    doc = policy_doc(
        max_instances=draw(st.integers(0, 8)),
        max_usd_per_hour=per_hour,
        max_usd_per_day=draw(st.floats(per_hour, 4000)),
        vcpu_quota=draw(st.one_of(st.none(), st.integers(96, 800))),
    )
    doc["scaling"] = {"forecast": {"method": draw(st.sampled_from(["holt", "none"]))}}
    return Policy.model_validate(doc)


@st.composite
def intents(draw: st.DrawFn) -> tuple[Any, ...]:
    out = []
    for k in range(draw(st.integers(0, 5))):
        itype = draw(st.sampled_from([P4D, P4DE]))
        out.append(
            burst_intent(
                f"b{k}",
                itype,
                state=draw(st.sampled_from(LIVE)),
                age=timedelta(minutes=draw(st.integers(0, 900))),
            )
        )
    return tuple(out)


@given(
    policy=policies(),
    existing=intents(),
    demand=st.one_of(st.none(), st.floats(0, 20 * PER_REPLICA)),
    replicas=st.integers(0, 12),
    nodes=st.integers(0, 4),
    queue=st.floats(0, 200),
)
def test_a_plan_never_exceeds_any_cap(
    policy: Policy, existing: tuple[Any, ...], demand: float | None, replicas: int, nodes: int, queue: float
) -> None:
    snap = inputs(demand, replicas=replicas, intents=existing, pools=local(nodes), queue=queue)
    plan = plan_scaling(snap, policy, NOW)
    burst = policy.burst
    assert burst is not None
    held = usage(existing, policy, NOW)
    launches = [a for a in plan.actions if isinstance(a, LaunchBurst)]
    count = held.instances + sum(a.instances for a in launches)
    vcpus = held.vcpus + sum(
        a.instances * (instance_type(burst, a.instance_type) or P4D_TYPE).vcpus for a in launches
    )
    rate = held.usd_per_hour + sum(a.usd_per_hour for a in launches)
    if launches:
        assert count <= burst.max_instances
        assert rate <= burst.max_usd_per_hour + 1e-6
        hours = max(burst.scale_in.min_age, MIN_COMMITMENT).total_seconds() / 3600
        assert held.spent_today_usd + rate * hours <= burst.max_usd_per_day + 1e-6
        if burst.vcpu_quota is not None:
            assert vcpus <= burst.vcpu_quota
    releases = [a for a in plan.actions if isinstance(a, ReleaseBurst)]
    assert len(releases) <= 1  # one group per step
    if demand is None:
        assert all(a.reason == "spend_cap" for a in releases)  # never scale in on unknown demand
    assert not (launches and releases)


P4D_TYPE = Policy.model_validate(policy_doc()).burst.instance_types[0]  # type: ignore[union-attr]


def _holt_by_datetimes(
    samples: list[DemandSample], level_half_life: timedelta, trend_half_life: timedelta
) -> list[tuple[float, float]]:
    """The Holt fold as written down: differences of datetimes, weights from half-lives."""
    level, trend, prev = samples[0].tokens_per_s, 0.0, samples[0].at
    path = [(level, trend)]
    for s in samples[1:]:
        dt = (s.at - prev).total_seconds()
        if dt > 0:
            alpha = 1 - 0.5 ** (dt / level_half_life.total_seconds())
            beta = 1 - 0.5 ** (dt / trend_half_life.total_seconds())
            new_level = alpha * s.tokens_per_s + (1 - alpha) * (level + trend * dt)
            trend = beta * (new_level - level) / dt + (1 - beta) * trend
            level, prev = new_level, s.at
        path.append((level, trend))
    return path


@given(
    gaps=st.lists(st.integers(0, 120_000_000), min_size=1, max_size=60),  # microseconds, repeats too
    values=st.lists(st.floats(0, 1e6), min_size=61, max_size=61),
    offset_h=st.integers(-12, 14),
    keep_from=st.integers(0, 70),
)
def test_holt_path_is_exactly_the_datetime_fold(
    gaps: list[int], values: list[float], offset_h: int, keep_from: int
) -> None:
    zone = timezone(timedelta(hours=offset_h))
    at = NOW.astimezone(zone)
    samples = [DemandSample(at, values[0])]
    for i, gap in enumerate(gaps, start=1):
        at += timedelta(microseconds=gap)
        samples.append(DemandSample(at, values[i]))
    level, trend = timedelta(minutes=1), timedelta(minutes=10)
    expected = _holt_by_datetimes(samples, level, trend)
    assert holt_path(samples, level, trend) == expected
    assert holt_path(samples, level, trend, keep_from=keep_from) == expected[keep_from:]
