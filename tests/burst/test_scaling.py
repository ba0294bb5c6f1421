"""The scaling decision (pure): replicas from demand, local first, burst for the gap, windows,
cooldowns, fast path, forecast, capacity requests, caps and safe scale-in."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from operatord.core.burst.actions import Hold, LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.burst.intent import Attempt, AttemptOutcome, InstanceRecord, Intent, Offering
from operatord.core.burst.lifecycle import BurstState
from operatord.core.scaling import (
    CapacityRequest,
    DemandSample,
    LocalNode,
    LocalPool,
    ModelSignals,
    ScalingInputs,
    ScalingPlan,
    forecast,
    holt,
    plan_scaling,
)
from operatord.policies.model import Policy

from .conftest import NOW, P4D, P4DE, policy_doc

MODEL = "llama-70b"
PER_REPLICA = 2400 * 0.8  # tokens/s one A100-40GB replica serves at target utilization


def policy(**burst: Any) -> Policy:
    doc = policy_doc(**burst)
    doc["scaling"] = {"forecast": {"method": "none"}}
    return Policy.model_validate(doc)


def holt_policy(**burst: Any) -> Policy:
    return Policy.model_validate(policy_doc(**burst))


def local(nodes: int = 2) -> tuple[LocalPool, ...]:
    return (
        LocalPool("local-a100", "A100-SXM4-40GB", 8, tuple(LocalNode(f"gpu-{i}", 8) for i in range(nodes))),
    )


def flat(value: float, minutes: int = 20) -> tuple[DemandSample, ...]:
    return tuple(DemandSample(NOW - timedelta(seconds=30 * k), value) for k in range(minutes * 2, 0, -1))


def inputs(demand: float | None, replicas: int = 1, **kw: Any) -> ScalingInputs:
    signals = ModelSignals(
        MODEL,
        demand,
        queue_depth=kw.pop("queue", 0.0),
        kv_cache_usage=kw.pop("kv", 0.3),
        history=kw.pop("history", flat(demand) if demand is not None else ()),
        replicas=replicas,
        pending_replicas=kw.pop("pending", 0),
        ready_replicas=kw.pop("ready", None),
    )
    return ScalingInputs(
        observed_at=kw.pop("observed_at", NOW), models=(signals,), local_pools=kw.pop("pools", local()), **kw
    )


def burst_intent(
    iid: str,
    itype: dict[str, Any],
    n: int = 1,
    state: BurstState = BurstState.SERVING,
    age: timedelta = timedelta(minutes=30),
    replicas: int = 1,
) -> Intent:
    launched = NOW - age
    attempt = Attempt(
        1,
        Offering(itype["instance_type"], "subnet-0a1b2c3d4e5f60001", "us-east-1a"),
        n,
        "t" * 48,
        launched,
        AttemptOutcome.LAUNCHED,
        None,
        launched,
    )
    records = tuple(
        InstanceRecord(
            f"i-{iid}{k:04d}",
            itype["instance_type"],
            "us-east-1a",
            itype["price_usd_per_hour"],
            launched,
            state,
            launched,
            attempt=1,
        )
        for k in range(n)
    )
    return Intent(
        iid,
        "test",
        "burst",
        MODEL,
        replicas,
        ("p4d.24xlarge", "p4de.24xlarge"),
        "demand_over_supply",
        launched,
        launched + timedelta(hours=24),
        BurstState.RUNNING,
        launched,
        (attempt,),
        records,
    )


def summary(plan: ScalingPlan) -> list[str]:
    out: list[str] = []
    for a in plan.actions:
        if isinstance(a, SetReplicas):
            out.append(f"replicas:{a.previous}->{a.replicas}")
        elif isinstance(a, LaunchBurst):
            out.append(f"launch:{a.replicas}:{a.instance_type}:{a.reason}")
        elif isinstance(a, ReleaseBurst):
            out.append(f"release:{a.intent_id}:{a.reason}")
    out += [f"hold:{h.reason}" for h in plan.holds]
    return out


@pytest.mark.parametrize(
    ("snap", "expected"),
    [
        pytest.param(inputs(1000.0, replicas=1), [], id="steady-demand-no-change"),
        pytest.param(
            inputs(3 * PER_REPLICA - 1, replicas=2, pools=local(4)),
            ["replicas:2->3"],
            id="scale-out-on-local-first",
        ),
        pytest.param(
            inputs(4 * PER_REPLICA, replicas=2),
            ["replicas:2->4", "launch:2:p4d.24xlarge:demand_over_supply"],
            id="gap-beyond-local-goes-to-burst",
        ),
        pytest.param(
            inputs(4 * PER_REPLICA, replicas=2, last_scale_out_at=NOW - timedelta(seconds=60)),
            ["hold:cooldown"],
            id="cooldown-holds-scale-out",
        ),
        pytest.param(inputs(None, replicas=3), ["hold:metrics_unknown"], id="unknown-demand-buys-nothing"),
        pytest.param(
            inputs(500.0, replicas=3, observed_at=NOW - timedelta(minutes=5)),
            ["hold:stale_snapshot"],
            id="stale-metrics-never-act",
        ),
        pytest.param(
            inputs(3 * PER_REPLICA, replicas=3, intents=(burst_intent("b1", P4D, state=BurstState.RUNNING),)),
            [],
            id="booting-burst-counts-no-double-launch",
        ),
    ],
)
def test_plan_scaling_table(snap: ScalingInputs, expected: list[str]) -> None:
    assert summary(plan_scaling(snap, policy(), NOW)) == expected


def test_unknown_demand_freezes_scale_in() -> None:
    snap = inputs(None, replicas=2, intents=(burst_intent("b1", P4D),))
    plan = plan_scaling(snap, policy(), NOW)
    assert not plan.actions
    assert any(h.reason == "metrics_unknown" for h in plan.holds)


def test_fast_path_skips_cooldown_and_stabilization_on_queue_saturation() -> None:
    snap = inputs(
        1.5 * PER_REPLICA,
        replicas=2,
        queue=40.0,
        last_scale_out_at=NOW - timedelta(seconds=30),
        pools=local(2),
    )
    assert summary(plan_scaling(snap, policy(), NOW)) == [
        "replicas:2->4",
        "launch:2:p4d.24xlarge:demand_over_supply",
    ]


def test_fast_path_sizes_by_queue_like_an_hpa_and_waits_for_replicas_in_flight() -> None:
    """90 waiting requests at 8 per replica ask for 12 replicas in all (not 10 + 12); while replicas
    asked for earlier are not Ready yet, saturation adds nothing more (demand still sizes)."""
    base = {"replicas": 10, "queue": 90.0, "pools": local(16)}
    assert summary(plan_scaling(inputs(8 * PER_REPLICA, **base), policy(), NOW)) == ["replicas:10->12"]
    starting = plan_scaling(inputs(8 * PER_REPLICA, **base, ready=7), policy(), NOW)
    assert summary(starting) == []
    assert starting.models[0].fast_path


def test_scale_out_stabilization_takes_the_lowest_recommendation_of_the_window() -> None:
    history = (*flat(PER_REPLICA, 5)[:-1], DemandSample(NOW - timedelta(seconds=10), PER_REPLICA))
    snap = inputs(1.9 * PER_REPLICA, replicas=1, history=history, kv=0.1)
    doc = policy_doc()
    doc["scaling"] = {"forecast": {"method": "none"}, "scale_out_stabilization": "60s", "spike_factor": 3}
    plan = plan_scaling(snap, Policy.model_validate(doc), NOW)
    assert summary(plan) == ["hold:stabilizing"]


def test_capacity_request_plans_the_replacement_before_the_drain() -> None:
    req = CapacityRequest("gpu-1", 8, "gpu_fallen_off_bus", NOW - timedelta(minutes=1))
    snap = inputs(2 * PER_REPLICA, replicas=2, capacity_requests=(req,))
    assert summary(plan_scaling(snap, policy(), NOW)) == ["launch:1:p4d.24xlarge:capacity_request"]


def test_hpa_owned_models_get_nodes_not_replica_changes() -> None:
    doc = policy_doc()
    doc["serving"]["models"][0]["replica_owner"] = "hpa"
    doc["scaling"] = {"forecast": {"method": "none"}}
    snap = inputs(1000.0, replicas=4, pending=2)
    assert summary(plan_scaling(snap, Policy.model_validate(doc), NOW)) == [
        "launch:2:p4d.24xlarge:demand_over_supply"
    ]


@pytest.mark.parametrize(
    ("burst", "live", "expected"),
    [
        pytest.param(
            {"max_instances": 3},
            2,
            ["launch:1:p4d.24xlarge:demand_over_supply", "hold:burst_ceiling"],
            id="max-instances-caps-the-launch",
        ),
        pytest.param({"max_usd_per_hour": 50}, 2, ["hold:spend_cap"], id="usd-per-hour-cap"),
        pytest.param({"vcpu_quota": 200}, 2, ["hold:quota_exhausted"], id="vcpu-quota"),
    ],
)
def test_caps_bound_launches(burst: dict[str, Any], live: int, expected: list[str]) -> None:
    intents = tuple(burst_intent(f"b{k}", P4D) for k in range(live))
    snap = inputs(6 * PER_REPLICA, replicas=6, intents=intents)
    plan = plan_scaling(snap, policy(**burst), NOW)
    assert [s for s in summary(plan) if not s.startswith("replicas")] == expected


def test_day_cap_releases_the_most_expensive_burst_and_launches_nothing() -> None:
    intents = (
        burst_intent("cheap", P4D, age=timedelta(hours=10)),
        burst_intent("dear", P4DE, age=timedelta(hours=10)),
    )
    snap = inputs(8 * PER_REPLICA, replicas=4, intents=intents)
    plan = plan_scaling(snap, policy(max_usd_per_day=480, max_usd_per_hour=100), NOW)
    assert "release:dear:spend_cap" in summary(plan)
    assert not plan.of(LaunchBurst)


def test_scale_in_releases_one_group_most_expensive_first_after_low_demand() -> None:
    intents = (burst_intent("cheap", P4D), burst_intent("dear", P4DE))
    snap = inputs(0.5 * PER_REPLICA, replicas=4, intents=intents, last_scale_out_at=NOW - timedelta(hours=1))
    plan = plan_scaling(snap, policy(), NOW)
    assert [a.intent_id for a in plan.of(ReleaseBurst)] == ["dear"]  # one per step
    assert plan.actions[0] == plan.of(ReleaseBurst)[0]  # release (pod-deletion-cost) before replicas go down


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        pytest.param({"age": timedelta(minutes=5)}, "stabilizing", id="younger-than-min-age-is-kept"),
        pytest.param({"history": flat(0.5 * PER_REPLICA, 2)}, "stabilizing", id="low-demand-not-long-enough"),
    ],
)
def test_scale_in_waits(kw: dict[str, Any], reason: str) -> None:
    age = kw.pop("age", timedelta(minutes=30))
    snap = inputs(
        0.5 * PER_REPLICA,
        replicas=2,
        intents=(burst_intent("b", P4D, age=age),),
        last_scale_out_at=NOW - timedelta(hours=1),
        **kw,
    )
    plan = plan_scaling(snap, policy(), NOW)
    assert not plan.of(ReleaseBurst)
    assert reason in [h.reason for h in plan.holds]


def test_holt_extrapolates_a_ramp_and_caps_the_rise() -> None:
    ramp = tuple(
        DemandSample(NOW - timedelta(seconds=30 * k), 1000.0 + 10.0 * (40 - k)) for k in range(40, -1, -1)
    )
    level_h, trend_h = timedelta(seconds=30), timedelta(minutes=2)
    _level, trend = holt(ramp, level_h, trend_h) or (0.0, 0.0)
    assert trend == pytest.approx(1 / 3, rel=0.05)  # 10 tokens/s per 30 s
    ahead = forecast(ramp, level_h, trend_h, timedelta(minutes=10), cap_factor=2.0)
    assert ahead is not None
    assert 1550 < ahead < 1650
    assert forecast(ramp, level_h, trend_h, timedelta(hours=10), cap_factor=2.0) == pytest.approx(2 * 1400.0)


def _noisy(every_s: int, minutes: int = 30) -> tuple[DemandSample, ...]:
    rng = random.Random(7)
    n = minutes * 60 // every_s
    return tuple(
        DemandSample(NOW - timedelta(seconds=every_s * k), 20_000 * (1 + rng.gauss(0, 0.1)))
        for k in range(n, -1, -1)
    )


def test_default_forecast_does_not_extrapolate_noise() -> None:
    """±10 % noise around a flat 20k tokens/s: the 10-minute forecast stays near 20k at 10 s and
    30 s ticks alike (per-sample smoothing at 0.5/0.3 reached 2× on the same noise)."""
    fc = holt_policy().scaling.forecast
    for every in (10, 30):
        ahead = forecast(_noisy(every), fc.level_half_life, fc.trend_half_life, timedelta(minutes=10), 2.0)
        assert ahead is not None
        assert 14_000 < ahead < 26_000, every


def test_forecast_launches_before_a_ramp_reaches_local_capacity() -> None:
    # Demand has climbed one replica's worth every 10 minutes for 30 minutes and is still within
    # local capacity now (3.2 of 4 replicas); in 10 minutes it will not be.
    history = tuple(
        DemandSample(NOW - timedelta(seconds=30 * k), (3.2 - 3.0 * k / 60) * PER_REPLICA)
        for k in range(60, 0, -1)
    )
    snap = inputs(3.2 * PER_REPLICA, replicas=4, history=history, pools=local(4))
    reactive = plan_scaling(snap, policy(), NOW)
    predictive = plan_scaling(snap, holt_policy(), NOW)
    assert not reactive.of(LaunchBurst)
    assert predictive.of(LaunchBurst)


def test_plan_is_deterministic() -> None:
    snap = inputs(6 * PER_REPLICA, replicas=2, intents=(burst_intent("b", P4D),))
    assert plan_scaling(snap, policy(), NOW) == plan_scaling(replace(snap), policy(), NOW)
    assert all(isinstance(h, Hold) for h in plan_scaling(snap, policy(), NOW).holds)


def test_burst_disabled_never_launches() -> None:
    doc = policy_doc(enabled=False)
    doc["scaling"] = {"forecast": {"method": "none"}}
    plan = plan_scaling(inputs(8 * PER_REPLICA, replicas=2), Policy.model_validate(doc), NOW)
    assert not plan.of(LaunchBurst)
    assert not plan.of(SetReplicas)  # replicas that could never schedule are not added
    (hold,) = plan.holds
    assert hold.reason == "demand_over_supply"
    assert hold.detail["unserved_tokens_per_s"] == pytest.approx(8 * PER_REPLICA - 2 * 2400 * 0.8)


_ = datetime


def test_models_fill_local_nodes_in_policy_order_and_the_rest_bursts() -> None:
    doc = policy_doc()
    doc["scaling"] = {"forecast": {"method": "none"}}
    second = dict(
        doc["serving"]["models"][0],
        name="qwen-32b",
        workload={"kind": "Deployment", "namespace": "llm", "name": "vllm-32b"},
    )
    doc["serving"]["models"].append(second)
    pol = Policy.model_validate(doc)
    first = ModelSignals(
        MODEL, 2 * PER_REPLICA, history=flat(2 * PER_REPLICA), replicas=2, kv_cache_usage=0.3
    )
    other = ModelSignals("qwen-32b", PER_REPLICA, history=flat(PER_REPLICA), replicas=1, kv_cache_usage=0.3)
    plan = plan_scaling(ScalingInputs(NOW, (first, other), local(2)), pol, NOW)
    assert [(a.model, a.replicas) for a in plan.of(LaunchBurst)] == [("qwen-32b", 1)]
    decisions = {d.model: (d.local_replicas, d.burst_replicas_needed) for d in plan.models}
    assert decisions == {MODEL: (2, 0), "qwen-32b": (0, 1)}
