"""The serving model and the traffic it is fed (pure arithmetic, exact expectations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from operatord.sim.scenario import Spike, Traffic
from operatord.sim.serving import Demand, FluidQueue, Trace

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def queue() -> FluidQueue:
    return FluidQueue(
        base_latency=timedelta(milliseconds=500),
        abandon_after=timedelta(seconds=60),
        slo_ttft=timedelta(seconds=2),
    )


def test_below_capacity_everything_is_served_within_the_slo() -> None:
    q = queue()
    s = q.step(arrivals_tokens=900, arrivals_requests=9, rate=100, dt=10)
    assert s.served_tokens == 900
    assert s.within_slo_requests == pytest.approx(9)
    assert s.backlog_tokens == 0
    assert s.unserved_requests == 0


def test_overload_builds_a_backlog_and_only_early_requests_meet_the_slo() -> None:
    q = queue()
    # 2000 tokens arrive, 1000 can be served: the backlog grows from 0 to 1000 tokens (10 s of work).
    s = q.step(arrivals_tokens=2000, arrivals_requests=20, rate=100, dt=10)
    assert s.served_tokens == 1000
    assert s.backlog_tokens == pytest.approx(1000)
    # Waits grow linearly from 0 to 10 s; the budget is 2 - 0.5 = 1.5 s: 15 % of the requests.
    assert s.within_slo_requests == pytest.approx(20 * 0.15)


def test_backlog_older_than_abandon_after_is_unserved() -> None:
    q = queue()
    s = q.step(arrivals_tokens=10_000, arrivals_requests=100, rate=100, dt=10)
    # 1000 served, at most 60 s × 100 tokens/s may wait, the rest (3000 tokens = 30 requests) is given up.
    assert s.backlog_tokens == pytest.approx(6000)
    assert s.unserved_requests == pytest.approx(30)


def test_no_capacity_serves_nothing() -> None:
    s = queue().step(arrivals_tokens=500, arrivals_requests=5, rate=0, dt=10)
    assert s.served_tokens == 0
    assert s.within_slo_requests == 0
    assert s.unserved_requests == pytest.approx(5)


def _trace() -> Trace:
    # 100 s of one request a second, 10 prompt + 5 generated tokens each.
    return Trace((1.0,) * 100, (10.0,) * 100, (5.0,) * 100)


def test_demand_tiles_the_trace_and_applies_multiplier_curve_and_spike() -> None:
    traffic = Traffic(
        trace="x.csv",
        rate_multiplier=2,
        daily_curve=[0.5] * 24,
        spikes=[
            Spike(
                at=timedelta(seconds=300),
                duration=timedelta(seconds=100),
                factor=3,
                ramp=timedelta(seconds=1),
            )
        ],
    )
    d = Demand(_trace(), traffic, T0)
    a = d.between(T0 + timedelta(seconds=150), T0 + timedelta(seconds=160))  # wraps around the 100 s trace
    assert a.requests == pytest.approx(10 * 2 * 0.5)
    spiked = d.between(T0 + timedelta(seconds=340), T0 + timedelta(seconds=350))
    assert spiked.requests == pytest.approx(10 * 2 * 0.5 * 3)
    assert spiked.weighted(0.2, 1.0) == pytest.approx(spiked.requests * (10 * 0.2 + 5))
