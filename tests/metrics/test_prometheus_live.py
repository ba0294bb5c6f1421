"""PromMetrics against a real Prometheus scraping the fake exporter (scenario in conftest.seed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect

from operatord.adapters.prometheus import PromMetrics, snapshot_queries
from operatord.core.metrics import (
    Known,
    MetricsSnapshot,
    ModelSignal,
    NodeSignal,
    Unknown,
    UnknownReason,
    metrics_gate,
)
from operatord.policies.model import DemandWeights
from operatord.vocab import Reason

from .conftest import POLICY_MODELS, Live, metrics_policy

WEIGHTS = DemandWeights(prompt=0.2, generation=1.0)


class CountingClient(PrometheusConnect):
    """The real client, counting the HTTP queries it sends (so the test does not trust `queries`)."""

    def __init__(self, url: str) -> None:
        super().__init__(url=url)
        self.sent = 0

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: int | None = None
    ) -> Any:
        self.sent += 1
        return super().custom_query(query, params=params, timeout=timeout)


def snap(live: Live, **policy: object) -> MetricsSnapshot:
    pol = metrics_policy(**policy) if policy else live.policy
    return PromMetrics(live.url, pol, models=POLICY_MODELS).snapshot(datetime.now(UTC))


def known(reading: object) -> float:
    assert isinstance(reading, Known), reading
    return reading.value


def unknown(reading: object) -> UnknownReason:
    assert isinstance(reading, Unknown), reading
    return reading.reason


def test_gpu_node_values_aggregate_over_gpus(live: Live) -> None:
    node = snap(live).nodes["gpu-upper"]
    assert known(node.gpu_active) == pytest.approx(0.6)
    assert node.gpu_active_source is NodeSignal.GPU_ACTIVE
    assert known(node.vram_used_fraction) == pytest.approx(0.95)  # the fullest GPU, not the average
    assert known(node.xid_last) == 0
    assert known(node.row_remap_failure) == 0
    assert known(node.temperature_c) == 65
    assert known(node.power_w) == pytest.approx(8 * 350)
    assert known(node.gpus) == 8


def test_lowercase_hostname_label_and_gpu_util_fallback(live: Live) -> None:
    node = snap(live).nodes["gpu-lower"]
    assert node.gpu_active_source is NodeSignal.GPU_UTIL
    assert known(node.gpu_active) == pytest.approx(0.8)
    assert known(node.xid_last) == 79
    assert known(node.row_remap_failure) == 1
    assert known(node.temperature_c) == 91
    assert known(node.gpus) == 4


def test_policy_node_label_wins_over_dcgm_host_label(live: Live) -> None:
    default = snap(live)
    assert "dcgm-pod-7f9c" in default.nodes
    assert "k8s-node-7" not in default.nodes
    relabeled = snap(live, node_label="node")
    assert "k8s-node-7" in relabeled.nodes
    assert "dcgm-pod-7f9c" not in relabeled.nodes
    assert {"gpu-upper", "gpu-lower"} <= set(
        relabeled.nodes
    )  # nodes without the label keep Hostname/hostname


def test_nan_is_unknown_never_zero(live: Live) -> None:
    node = snap(live).nodes["gpu-nan"]
    assert unknown(node.gpu_active) is UnknownReason.NAN
    assert node.gpu_active_source is None
    assert unknown(node.temperature_c) is UnknownReason.NAN
    assert known(node.power_w) > 0  # the other signals of the node are still read


def test_stale_series_are_unknown(live: Live) -> None:
    node = snap(live).nodes["gpu-stale"]
    for reading in node.readings().values():
        assert unknown(reading) is UnknownReason.STALE
    # the same samples within a looser limit are known: staleness is the policy's call
    assert known(snap(live, staleness_limit="10m").nodes["gpu-stale"].gpus) == 2


def test_vllm_underscore_spelling_all_load_signals(live: Live) -> None:
    m = snap(live).model("llama-underscore")
    assert known(m.requests_waiting) == 4
    assert known(m.requests_running) == 6
    assert known(m.kv_cache_usage) == pytest.approx(0.42)
    assert m.kv_cache_source is ModelSignal.KV_CACHE_USAGE
    assert known(m.prompt_tokens_per_s) == pytest.approx(300, rel=0.05)
    assert known(m.generation_tokens_per_s) == pytest.approx(120, rel=0.05)
    assert known(m.requests_per_s) == pytest.approx(5, rel=0.05)
    assert known(m.success_ratio) == pytest.approx(0.8, rel=0.02)
    # histogram_quantile interpolates inside the bucket holding every observation
    assert known(m.ttft_p99_s) == pytest.approx(0.1 + 0.15 * 0.99, rel=1e-3)
    assert known(m.e2e_p99_s) == pytest.approx(2.5 + 2.5 * 0.99, rel=1e-3)


def test_vllm_colon_spelling_is_read_too(live: Live) -> None:
    names = {row["metric"]["__name__"] for row in live.prom.query('{__name__=~"vllm.num_requests_waiting"}')}
    assert names == {"vllm:num_requests_waiting", "vllm_num_requests_waiting"}  # both really are stored
    m = snap(live).model("llama-colon")
    assert known(m.requests_waiting) == 2
    assert known(m.generation_tokens_per_s) == pytest.approx(50, rel=0.05)


def test_legacy_kv_cache_name_is_the_fallback(live: Live) -> None:
    m = snap(live).model("llama-legacy")
    assert known(m.kv_cache_usage) == pytest.approx(0.66)
    assert m.kv_cache_source is ModelSignal.KV_CACHE_USAGE_LEGACY


def test_sglang_equivalents(live: Live) -> None:
    m = snap(live).model("qwen-sglang")
    assert known(m.requests_waiting) == 7
    assert known(m.requests_running) == 9
    assert known(m.kv_cache_usage) == pytest.approx(0.3)
    assert known(m.generation_tokens_per_s) == pytest.approx(50, rel=0.05)
    assert known(m.requests_per_s) == pytest.approx(2, rel=0.05)
    assert known(m.success_ratio) == pytest.approx(0.75, rel=0.02)


def test_no_traffic_gives_unknown_ratios_but_known_zero_rates(live: Live) -> None:
    m = snap(live).model("idle-model")
    assert known(m.requests_per_s) == 0  # the counter exists and did not move: a real zero
    assert unknown(m.success_ratio) is UnknownReason.NAN  # 0/0
    assert unknown(m.ttft_p99_s) is UnknownReason.NAN  # a quantile of no observations


def test_model_without_series_is_missing_and_gates_scaling(live: Live) -> None:
    s = snap(live)
    m = s.model("absent-model")
    assert all(unknown(r) is UnknownReason.MISSING for r in m.readings().values())
    gate = metrics_gate(s, "absent-model", WEIGHTS, s.observed_at, live.policy.staleness_limit)
    assert (gate.metric_driven, gate.scale_in, gate.reason) == (False, False, Reason.METRICS_UNKNOWN)
    ok = metrics_gate(s, "llama-underscore", WEIGHTS, s.observed_at, live.policy.staleness_limit)
    assert (ok.metric_driven, ok.scale_in) == (True, True)


def test_query_count_is_constant_for_1_and_50_nodes(live: Live) -> None:
    def count() -> tuple[int, int, int]:
        client = CountingClient(live.url)
        s = PromMetrics(live.url, live.policy, client=client).snapshot(datetime.now(UTC))
        return client.sent, s.queries, len(s.nodes)

    sent_before, reported_before, nodes_before = count()
    try:
        for i in range(50):
            live.exporter.dcgm_node(f"bulk-{i:02d}", gpus=1)
        live.prom.wait_for(lambda: count()[2] >= nodes_before + 50, "50 more nodes")
        sent_after, reported_after, nodes_after = count()
    finally:
        for i in range(50):
            live.exporter.remove(operatord_test_node=f"bulk-{i:02d}")
    assert nodes_after == nodes_before + 50
    assert (
        sent_after == sent_before == reported_after == reported_before == len(snapshot_queries(live.policy))
    )


def test_policy_metric_name_override_is_used(live: Live) -> None:
    s = snap(live, names={"gpu_active": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gpu_util": "NOT_EXPORTED"})
    node = s.nodes["gpu-upper"]
    assert unknown(node.gpu_active) is UnknownReason.MISSING
    assert known(node.gpus) == 8


def test_names_present_for_doctor(live: Live) -> None:
    present = PromMetrics(live.url, live.policy).names_present(datetime.now(UTC))
    assert isinstance(present, dict)
    assert set(present) == set(live.policy.names.model_dump())
    assert present["gpu_active"]
    assert present["kv_cache_usage_legacy"]
    assert present["sglang_ttft_seconds"]
    renamed = metrics_policy(names={"xid": "DCGM_FI_NOT_THERE"})
    assert PromMetrics(live.url, renamed).names_present(datetime.now(UTC))["xid"] is False  # type: ignore[index]
    down = PromMetrics("http://127.0.0.1:1", live.policy).names_present(datetime.now(UTC))
    assert isinstance(down, Unknown)
    assert down.reason is UnknownReason.UNREACHABLE
