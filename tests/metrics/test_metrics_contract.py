"""One contract for every MetricsSource: FakeMetrics (in memory) and PromMetrics (real Prometheus)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from operatord.adapters.prometheus import PromMetrics
from operatord.core.metrics import Known, Unknown, UnknownReason
from operatord.ports.metrics import MetricsSource
from operatord.testing.fake_metrics import FakeMetrics

from .conftest import POLICY_MODELS, Live, metrics_policy

# Each backend: (a source seeded like conftest.seed for the fields used here, a source that is down).
Backend = tuple[MetricsSource, MetricsSource]


def fake_backend() -> Backend:
    up = FakeMetrics(policy=metrics_policy(), models=POLICY_MODELS)
    up.set_node("gpu-upper", gpu_active=0.6, gpus=8, xid_last=0)
    up.set_node("gpu-lower", gpu_util=0.8, gpus=4, xid_last=79)
    up.set_model("llama-underscore", requests_waiting=4, requests_running=6, kv_cache_usage=0.42)
    up.set_model("llama-legacy", requests_waiting=1, kv_cache_usage_legacy=0.66)
    up.drivers.update({"gpu-upper": "550.54.15", "gpu-lower": "535.104.05"})
    down = FakeMetrics(policy=metrics_policy(), models=POLICY_MODELS)
    down.fail()
    return up, down


def prom_backend(live: Live) -> Backend:
    return (
        PromMetrics(live.url, live.policy, models=POLICY_MODELS),
        PromMetrics("http://127.0.0.1:1", live.policy, models=POLICY_MODELS),
    )


@pytest.fixture(params=["fake", "prometheus"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        return fake_backend()
    return prom_backend(request.getfixturevalue("live"))


def val(reading: object) -> float:
    assert isinstance(reading, Known), reading
    return reading.value


def test_values_and_fallbacks(backend: Backend) -> None:
    snap = backend[0].snapshot(datetime.now(UTC))
    assert val(snap.nodes["gpu-upper"].gpu_active) == pytest.approx(0.6)
    assert val(snap.nodes["gpu-lower"].gpu_active) == pytest.approx(0.8)  # from gpu_util
    assert val(snap.nodes["gpu-lower"].xid_last) == 79
    assert val(snap.model("llama-underscore").requests_waiting) == 4
    assert val(snap.model("llama-legacy").kv_cache_usage) == pytest.approx(0.66)


def test_absent_model_is_missing_not_zero(backend: Backend) -> None:
    snap = backend[0].snapshot(datetime.now(UTC))
    for reading in snap.model("absent-model").readings().values():
        assert isinstance(reading, Unknown)
        assert reading.reason is UnknownReason.MISSING


def test_outage_is_a_value(backend: Backend) -> None:
    now = datetime.now(UTC)
    snap = backend[1].snapshot(now)
    assert not snap.reachable
    assert snap.queries == 1
    assert all(isinstance(r, Unknown) for r in snap.model("llama-underscore").readings().values())
    hist = backend[1].history(now - timedelta(hours=1), now, timedelta(minutes=5))
    assert hist.outage is not None


def test_queries_constant(backend: Backend) -> None:
    first = backend[0].snapshot(datetime.now(UTC))
    second = backend[0].snapshot(datetime.now(UTC))
    assert first.queries == second.queries > 1


def test_driver_versions_by_node_whatever_the_host_label(backend: Backend) -> None:
    now = datetime.now(UTC)
    assert backend[0].driver_versions(now) == {"gpu-lower": "535.104.05", "gpu-upper": "550.54.15"}
    assert isinstance(backend[1].driver_versions(now), Unknown)
