"""Pure metrics core: judging rows, node mapping, fallbacks, outages, demand and the metrics gate."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operatord.core.metrics import (
    Known,
    MetricsSnapshot,
    ModelSignal,
    NodeSignal,
    Row,
    SignalResult,
    Unknown,
    UnknownReason,
    assemble,
    demand_tokens_per_s,
    judge,
    metrics_gate,
    node_of,
    total_demand_tokens_per_s,
    vram_pressure,
)
from operatord.policies.model import DemandWeights
from operatord.vocab import Reason

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LIMIT = timedelta(minutes=2)
WEIGHTS = DemandWeights(prompt=0.2, generation=1.0)


def row(value: float | None, age_s: float = 5, **labels: str) -> Row:
    return Row(labels, value, NOW - timedelta(seconds=age_s))


@pytest.mark.parametrize(
    ("given_row", "expected"),
    [
        pytest.param(None, UnknownReason.MISSING, id="no-row-is-missing"),
        pytest.param(Row({}, None, NOW), UnknownReason.EMPTY, id="timestamp-without-value-is-empty"),
        pytest.param(row(math.nan), UnknownReason.NAN, id="nan-is-unknown"),
        pytest.param(row(math.inf), UnknownReason.NAN, id="infinity-is-unknown"),
        pytest.param(row(3.0, age_s=121), UnknownReason.STALE, id="older-than-limit-is-stale"),
    ],
)
def test_judge_unknowns(given_row: Row | None, expected: UnknownReason) -> None:
    reading = judge(given_row, NOW, LIMIT, "x")
    assert isinstance(reading, Unknown)
    assert reading.reason is expected


def test_judge_known_keeps_zero_and_time() -> None:
    assert judge(row(0.0, age_s=120), NOW, LIMIT, "x") == Known(0.0, NOW - timedelta(seconds=120))


@given(value=st.floats(allow_nan=True, allow_infinity=True), age=st.floats(min_value=0, max_value=1e6))
def test_judge_is_total_and_never_invents_zero(value: float, age: float) -> None:
    reading = judge(Row({}, value, NOW - timedelta(seconds=age)), NOW, LIMIT, "x")
    if isinstance(reading, Known):
        assert reading.value == value
        assert math.isfinite(value)
        assert age <= LIMIT.total_seconds()
    else:
        assert not math.isfinite(value) or age > LIMIT.total_seconds()


@pytest.mark.parametrize(
    ("labels", "node_label", "expected"),
    [
        pytest.param({"Hostname": "a"}, "Hostname", "a", id="released-dcgm-label"),
        pytest.param({"hostname": "b"}, "Hostname", "b", id="dcgm-master-label"),
        pytest.param({"node": "k", "Hostname": "pod"}, "node", "k", id="policy-label-first"),
        pytest.param({"node": "", "Hostname": "pod"}, "node", "pod", id="empty-policy-label-falls-back"),
        pytest.param({"gpu": "0"}, "Hostname", None, id="no-host-label-unmapped"),
    ],
)
def test_node_of(labels: dict[str, str], node_label: str, expected: str | None) -> None:
    assert node_of(labels, node_label) == expected


def build(*results: SignalResult, models: tuple[str, ...] = ()) -> MetricsSnapshot:
    return assemble(
        results,
        now=NOW,
        staleness_limit=LIMIT,
        node_label="Hostname",
        model_label="model_name",
        models=models,
        queries=len(results),
    )


def test_gpu_active_falls_back_to_gpu_util_per_node() -> None:
    snap = build(
        SignalResult(NodeSignal.GPU_ACTIVE, (row(0.3, Hostname="dcp"), row(math.nan, Hostname="nan"))),
        SignalResult(
            NodeSignal.GPU_UTIL,
            (row(0.9, Hostname="dcp"), row(0.7, Hostname="nan"), row(0.5, Hostname="old")),
        ),
    )
    assert snap.nodes["dcp"].gpu_active == Known(0.3, NOW - timedelta(seconds=5))
    assert snap.nodes["dcp"].gpu_active_source is NodeSignal.GPU_ACTIVE
    assert snap.nodes["nan"].gpu_active_source is NodeSignal.GPU_UTIL
    assert snap.nodes["old"].gpu_active_source is NodeSignal.GPU_UTIL
    assert isinstance(snap.nodes["dcp"].xid_last, Unknown)  # not queried: unknown, not 0


def test_kv_cache_prefers_current_name_then_legacy() -> None:
    snap = build(
        SignalResult(ModelSignal.KV_CACHE_USAGE, (row(0.4, model_name="new"),)),
        SignalResult(
            ModelSignal.KV_CACHE_USAGE_LEGACY, (row(0.9, model_name="new"), row(0.6, model_name="old"))
        ),
    )
    assert snap.models["new"].kv_cache_usage == Known(0.4, NOW - timedelta(seconds=5))
    assert snap.models["old"].kv_cache_source is ModelSignal.KV_CACHE_USAGE_LEGACY


def test_same_node_under_both_host_labels_keeps_the_cautious_row() -> None:
    snap = build(
        SignalResult(
            NodeSignal.POWER_W, (row(100, age_s=10, Hostname="n"), row(200, age_s=200, hostname="n"))
        )
    )
    reading = snap.nodes["n"].power_w
    assert isinstance(reading, Unknown)
    assert reading.reason is UnknownReason.STALE


def test_unmapped_series_are_reported() -> None:
    snap = build(SignalResult(NodeSignal.GPUS, (row(8, gpu="0"),)))
    assert snap.nodes == {}
    assert [(g.what, g.reason) for g in snap.gaps()] == [("signals.gpus", UnknownReason.UNMAPPED)]


def test_query_error_is_a_gap_of_that_signal_only() -> None:
    snap = build(
        SignalResult(ModelSignal.REQUESTS_WAITING, error=Unknown(UnknownReason.QUERY_ERROR, "HTTP 400")),
        SignalResult(ModelSignal.REQUESTS_RUNNING, (row(3, model_name="m"),)),
    )
    assert snap.reachable
    m = snap.model("m")
    assert m.requests_running == Known(3, NOW - timedelta(seconds=5))
    assert m.requests_waiting == Unknown(UnknownReason.QUERY_ERROR, "HTTP 400")


def test_outage_makes_everything_unknown_once() -> None:
    why = Unknown(UnknownReason.TIMEOUT, "no answer")
    snap = build(
        SignalResult(NodeSignal.GPUS, (row(8, Hostname="n"),)),
        SignalResult(NodeSignal.POWER_W, error=why),
        models=("m",),
    )
    assert not snap.reachable
    assert snap.nodes == {}
    assert snap.model("m").requests_waiting == why
    assert [g.what for g in snap.gaps()] == ["prometheus"]


def model_with(prompt: float | None, gen: float | None, waiting: float | None = 1.0) -> MetricsSnapshot:
    def opt(value: float | None) -> tuple[Row, ...]:
        return () if value is None else (row(value, model_name="m"),)

    return build(
        SignalResult(ModelSignal.PROMPT_TOKENS_PER_S, opt(prompt)),
        SignalResult(ModelSignal.GENERATION_TOKENS_PER_S, opt(gen)),
        SignalResult(ModelSignal.REQUESTS_WAITING, opt(waiting)),
        models=("m",),
    )


def test_demand_is_weighted_tokens() -> None:
    reading = demand_tokens_per_s(model_with(1000, 300).model("m"), WEIGHTS)
    assert isinstance(reading, Known)
    assert reading.value == pytest.approx(0.2 * 1000 + 300)


def test_demand_unknown_when_a_weighted_term_is_unknown() -> None:
    assert isinstance(demand_tokens_per_s(model_with(None, 300).model("m"), WEIGHTS), Unknown)
    # a zero weight makes that term irrelevant
    only_gen = DemandWeights(prompt=0, generation=1)
    assert demand_tokens_per_s(model_with(None, 300).model("m"), only_gen) == Known(
        300, NOW - timedelta(seconds=5)
    )


def test_total_demand_unknown_if_any_model_unknown() -> None:
    snap = model_with(100, 100)
    assert isinstance(total_demand_tokens_per_s(snap, ["m"], WEIGHTS), Known)
    assert isinstance(total_demand_tokens_per_s(snap, ["m", "other"], WEIGHTS), Unknown)


@pytest.mark.parametrize(
    ("snap", "now", "expected"),
    [
        pytest.param(model_with(100, 100), NOW, (True, True, None), id="all-known-may-act"),
        pytest.param(
            model_with(100, 100, waiting=None),
            NOW,
            (False, False, Reason.METRICS_UNKNOWN),
            id="unknown-queue-freezes",
        ),
        pytest.param(
            model_with(None, 100), NOW, (False, False, Reason.METRICS_UNKNOWN), id="unknown-demand-freezes"
        ),
        pytest.param(
            model_with(100, 100),
            NOW + timedelta(minutes=5),
            (False, False, Reason.STALE_SNAPSHOT),
            id="old-snapshot-freezes",
        ),
        pytest.param(
            MetricsSnapshot(NOW, outage=Unknown(UnknownReason.UNREACHABLE)),
            NOW,
            (False, False, Reason.METRICS_UNKNOWN),
            id="outage-freezes",
        ),
    ],
)
def test_metrics_gate(
    snap: MetricsSnapshot, now: datetime, expected: tuple[bool, bool, Reason | None]
) -> None:
    gate = metrics_gate(snap, "m", WEIGHTS, now, timedelta(minutes=1))
    assert (gate.metric_driven, gate.scale_in, gate.reason) == expected
    assert bool(gate.gaps) == (expected[2] is not None)


@given(
    prompt=st.one_of(st.none(), st.floats(0, 1e6)),
    gen=st.one_of(st.none(), st.floats(0, 1e6)),
    waiting=st.one_of(st.none(), st.floats(0, 1e4)),
)
def test_gate_never_allows_scale_in_on_unknown_load(
    prompt: float | None, gen: float | None, waiting: float | None
) -> None:
    gate = metrics_gate(model_with(prompt, gen, waiting), "m", WEIGHTS, NOW, timedelta(minutes=1))
    assert gate.scale_in == (None not in (prompt, gen, waiting))
    assert gate.scale_in == gate.metric_driven


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.95, True, id="fullest-gpu-above-90-percent"),
        pytest.param(0.9, False, id="at-threshold-is-not-pressure"),
        pytest.param(math.nan, None, id="nan-is-unknown-not-calm"),
    ],
)
def test_vram_pressure(value: float, expected: bool | None) -> None:
    snap = build(SignalResult(NodeSignal.VRAM_USED_FRACTION, (row(value, Hostname="n"),)))
    assert vram_pressure(snap.nodes["n"]) is expected
