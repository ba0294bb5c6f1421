"""Pure cost math: percentiles, replicas needed, local node-hour cost, and a worked report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operatord.core.cost import (
    LoadHistory,
    cost_report,
    local_usd_per_node_hour,
    percentile,
    replicas_needed,
)
from operatord.policies.model import CostPolicy, Policy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def a_policy(**cost: Any) -> Policy:
    return Policy.model_validate(
        {
            "kind": "Policy",
            "cluster": "c",
            "pools": [{"name": "local", "kind": "local", "gpu_type": "A100", "gpus_per_node": 8}],
            "serving": {
                "models": [
                    {
                        "name": "m",
                        "workload": {"namespace": "llm", "name": "m"},
                        "min_replicas": 1,
                        "max_replicas": 64,
                        "profiles": [
                            {"gpu_type": "A100", "gpus_per_replica": 8, "tokens_per_s_per_replica": 1000}
                        ],
                    }
                ],
                "demand_weights": {"prompt": 0, "generation": 1},
            },
            "scaling": {"target_utilization": 0.5},
            "cost": {
                "node_power_kw_full": 2.0,
                "node_power_kw_idle": 1.0,
                "pue": 1.5,
                "electricity_usd_per_kwh": 0.1,
                "hardware_usd_per_node": 87_600,
                "amortisation": "365d",
                "prices": [
                    {
                        "instance_type": "p4d.24xlarge",
                        "kind": "on_demand",
                        "usd_per_hour": 10,
                        "as_of": "2025-06-01",
                    },
                    {
                        "instance_type": "p4d.24xlarge",
                        "kind": "on_demand",
                        "usd_per_hour": 99,
                        "as_of": "2024-01-01",
                    },
                    {
                        "instance_type": "p4d.24xlarge",
                        "kind": "capacity_block",
                        "usd_per_hour": 5,
                        "as_of": "2024-12-01",
                    },
                ],
                **cost,
            },
        }
    )


def series(*values: float | None) -> tuple[tuple[datetime, float], ...]:
    return tuple((T0 + HOUR * i, v) for i, v in enumerate(values) if v is not None)


def history(*gen: float | None) -> LoadHistory:
    return LoadHistory(
        start=T0,
        end=T0 + HOUR * (len(gen) - 1),
        step=HOUR,
        requests_per_s=series(*(None if g is None else g / 100 for g in gen)),
        generation_tokens_per_s={"m": series(*gen)},
        gpus=series(*(16.0 for _ in gen)),
    )


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param([], 95, None, id="nothing-is-none"),
        pytest.param([5.0], 95, 5.0, id="one-value"),
        pytest.param([float(i) for i in range(1, 101)], 95, 95.0, id="nearest-rank"),
        pytest.param([3.0, 1.0, 2.0], 100, 3.0, id="p100-is-max"),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


@given(a=st.floats(0, 1e6), b=st.floats(0, 1e6))
def test_replicas_needed_is_monotone_and_bounded(a: float, b: float) -> None:
    model = a_policy().serving.models[0]
    lo, hi = sorted((a, b))
    r_lo, r_hi = (replicas_needed(x, model, "A100", 0.5) for x in (lo, hi))
    assert model.min_replicas <= r_lo <= r_hi <= model.max_replicas


def test_replicas_needed_exact_capacity_needs_no_extra_replica() -> None:
    model = a_policy().serving.models[0]
    assert replicas_needed(1000.0, model, "A100", 0.5) == 2  # 1000 t/s at 500 t/s per replica
    assert replicas_needed(1000.1, model, "A100", 0.5) == 3


def test_local_node_hour() -> None:
    parts = local_usd_per_node_hour(CostPolicy(**a_policy().cost.model_dump()), 0.5)
    assert parts["hardware"] == pytest.approx(10.0)  # 87 600 $ over 8 760 h
    assert parts["power"] == pytest.approx(1.5 * 1.5 * 0.1)  # 1.5 kW × PUE 1.5 × 0.1 $/kWh
    assert parts["total"] == pytest.approx(10.225)


def test_worked_report() -> None:
    # demand 100, 2000, 4000, 100 t/s at 500 t/s per replica → replicas 1, 4, 8, 1 → GPUs 8, 32, 64, 8
    report = cost_report(history(100, 2000, 4000, 100), a_policy())
    assert [v for _, v in report.gpus_needed_series] == [8, 32, 64, 8]
    assert (report.gpus_needed.peak, report.gpus_needed.p95, report.gpus_needed.mean) == (64, 64, 28)
    assert report.coverage == 1.0
    assert report.covered_hours == 4.0
    assert report.generated_tokens == pytest.approx((100 + 2000 + 4000 + 100) * 3600)
    by_name = {s.name: s for s in report.scenarios}
    od = by_name["burst_only_on_demand_p4d.24xlarge"]
    assert od.node_hours == 14  # 1 + 4 + 8 + 1 instance-hours
    assert od.usd == pytest.approx(140)  # the newest on-demand price (10 $/h), not the older 99
    assert od.usd_per_month == pytest.approx(140 / 4 * 730)
    assert od.usd_per_million_tokens == pytest.approx(140 / (6200 * 3600 / 1e6))
    cb = by_name["committed_capacity_block_p4d.24xlarge"]
    assert cb.usd == pytest.approx(8 * 4 * 5)  # 8 instances for the peak, every hour
    peak = by_name["local_sized_for_peak"]
    busy = (0.8 + 16 + 32 + 0.8) / 4 / 64  # GPUs busy at 100 % of profile throughput, over 64 owned GPUs
    assert peak.usd == pytest.approx(8 * 4 * (10 + (1 + busy) * 1.5 * 0.1))
    mixed = by_name["local_p95_plus_burst_on_demand_p4d.24xlarge"]
    assert mixed.node_hours == 8 * 4  # p95 = peak here: nothing bursts
    current = by_name["local_current_fleet"]
    assert current.node_hours == 2 * 4  # 16 GPUs reporting = 2 nodes


def test_unknown_steps_shrink_coverage_not_demand() -> None:
    report = cost_report(history(100, None, 4000, 100), a_policy())
    assert report.coverage == 0.75
    assert [v for _, v in report.gpus_needed_series] == [8, 64, 8]  # the gap is skipped, never read as 0
    assert any("75.0%" in note for note in report.notes)


def test_empty_history_gives_no_scenarios() -> None:
    report = cost_report(LoadHistory(start=T0, end=T0 + HOUR, step=HOUR), a_policy())
    assert report.scenarios == ()
    assert report.gpus_needed.peak is None
    assert report.to_json()["gpus_needed"]["peak"] is None


def test_burst_on_demand_price_is_used_when_cost_lists_none() -> None:
    policy = a_policy(prices=[])
    policy_with_burst = Policy.model_validate(
        {
            **policy.model_dump(mode="json", by_alias=True),
            "pools": [
                {"name": "local", "kind": "local", "gpu_type": "A100"},
                {"name": "burst", "kind": "burst", "gpu_type": "A100"},
            ],
            "burst": {
                "pool": "burst",
                "instance_types": [
                    {
                        "instance_type": "p4d.24xlarge",
                        "gpu_type": "A100",
                        "vcpus": 96,
                        "price_usd_per_hour": 21.96,
                        "price_as_of": "2025-06-01",
                    }
                ],
                "subnets": [{"id": "subnet-0123456789abcdef0", "availability_zone": "us-east-1a"}],
                "launch_template": {"name": "lt"},
                "max_usd_per_hour": 100,
                "max_usd_per_day": 1000,
            },
        }
    )
    names = {s.name for s in cost_report(history(100, 100), policy_with_burst).scenarios}
    assert "burst_only_on_demand_p4d.24xlarge" in names
