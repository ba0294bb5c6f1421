"""Pure. What operatord knows from metrics: per-node GPU signals, per-model load signals, and what it does not know.

Every value is a `Reading`: `Known(value, at)` or `Unknown(reason, detail)`. Missing, empty,
NaN, stale and unreachable are Unknown, never 0 — an outage read as zero load is how an
autoscaler scales a service to its minimum at peak (KEDA #3065). Decisions ask `metrics_gate`
before acting on load: when the load of a model is unknown, scale-in freezes and no
metric-driven action happens.

The adapter (operatord.adapters.prometheus) only fetches rows; `assemble` turns them into a
`MetricsSnapshot` here, so node mapping, fallbacks and staleness are tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from operatord.policies.model import DemandWeights
from operatord.vocab import Reason

# dcgm-exporter's host label: `Hostname` in every release up to 4.x, `hostname` on master since
# PR #655 (research/autoscaling.md §2.3). Both are always read, after the policy's own label.
HOST_LABELS = ("Hostname", "hostname")


class UnknownReason(StrEnum):
    """Why a value is not known. Stable strings: they appear in `operatord metrics -o json`."""

    MISSING = "missing"  # no series for this node/model (exporter absent, name wrong, series gone)
    EMPTY = "empty"  # series exist but the expression gave no value (e.g. < 2 samples in the rate window)
    NAN = "nan"  # the value is NaN (a GPU reporting NaN, 0/0 with no traffic, a quantile of nothing)
    STALE = "stale"  # the newest sample is older than metrics.staleness_limit
    UNREACHABLE = "unreachable"  # Prometheus could not be reached
    TIMEOUT = "timeout"  # Prometheus did not answer within metrics.query_timeout
    QUERY_ERROR = "query_error"  # Prometheus rejected the query or answered with an error
    UNMAPPED = "unmapped"  # series without the node or model label; they cannot be attributed


@dataclass(frozen=True, slots=True)
class Known:
    value: float
    at: datetime | None = None  # newest sample time the value rests on (oldest across the group)


@dataclass(frozen=True, slots=True)
class Unknown:
    reason: UnknownReason
    detail: str = ""


Reading = Known | Unknown

# Reasons that mean "the source is down", not "this series is odd": the whole snapshot is unknown.
OUTAGE_REASONS = frozenset({UnknownReason.UNREACHABLE, UnknownReason.TIMEOUT})


def value_of(reading: Reading) -> float | None:
    """The value, or None when unknown (the JSON form)."""
    return reading.value if isinstance(reading, Known) else None


class NodeSignal(StrEnum):
    """Per-node series, aggregated over the node's GPUs. The value says how."""

    GPU_ACTIVE = "gpu_active"  # avg of DCGM_FI_PROF_GR_ENGINE_ACTIVE, 0..1
    GPU_UTIL = "gpu_util"  # avg of DCGM_FI_DEV_GPU_UTIL / 100; fallback for gpu_active
    VRAM_USED_FRACTION = "vram_used_fraction"  # max over GPUs of used / (used + free)
    XID_LAST = "xid_last"  # max over GPUs of the last Xid (0: none)
    ROW_REMAP_FAILURE = "row_remap_failure"  # max over GPUs (1: a GPU failed to remap a row)
    TEMPERATURE_C = "temperature_c"  # max over GPUs
    POWER_W = "power_w"  # sum over GPUs
    GPUS = "gpus"  # GPUs reporting


class ModelSignal(StrEnum):
    """Per-model series, summed over replicas (and engines) unless the value says otherwise."""

    REQUESTS_WAITING = "requests_waiting"
    REQUESTS_RUNNING = "requests_running"
    KV_CACHE_USAGE = (
        "kv_cache_usage"  # avg over replicas, current name (vLLM kv_cache_usage_perc, SGLang token_usage)
    )
    KV_CACHE_USAGE_LEGACY = "kv_cache_usage_legacy"  # avg, deprecated vllm:gpu_cache_usage_perc
    PROMPT_TOKENS_PER_S = "prompt_tokens_per_s"
    GENERATION_TOKENS_PER_S = "generation_tokens_per_s"
    REQUESTS_PER_S = "requests_per_s"  # finished requests/s (QPS)
    SUCCESS_RATIO = "success_ratio"  # 1 - aborted / finished over the rate window
    TTFT_P99_S = "ttft_p99_s"
    E2E_P99_S = "e2e_p99_s"


@dataclass(frozen=True, slots=True)
class Row:
    """One aggregated series of one signal: its grouping labels, value and oldest sample time."""

    labels: Mapping[str, str]
    value: float | None  # None: the group had samples (a timestamp) but the expression gave no value
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignalResult:
    """What one query returned: rows, or the reason there are none."""

    signal: NodeSignal | ModelSignal
    rows: tuple[Row, ...] = ()
    error: Unknown | None = None


@dataclass(frozen=True, slots=True)
class NodeMetrics:
    node: str
    gpu_active: Reading
    gpu_active_source: NodeSignal | None  # which signal gpu_active came from (None: unknown)
    vram_used_fraction: Reading
    xid_last: Reading
    row_remap_failure: Reading
    temperature_c: Reading
    power_w: Reading
    gpus: Reading

    def readings(self) -> dict[str, Reading]:
        return {
            "gpu_active": self.gpu_active,
            "vram_used_fraction": self.vram_used_fraction,
            "xid_last": self.xid_last,
            "row_remap_failure": self.row_remap_failure,
            "temperature_c": self.temperature_c,
            "power_w": self.power_w,
            "gpus": self.gpus,
        }

    def to_json(self) -> dict[str, Any]:
        xid = value_of(self.xid_last)
        remap = value_of(self.row_remap_failure)
        gpus = value_of(self.gpus)
        return {
            "gpu_active": value_of(self.gpu_active),
            "gpu_active_source": self.gpu_active_source.value if self.gpu_active_source else None,
            "vram_used_fraction": value_of(self.vram_used_fraction),
            "xid_last": int(xid) if xid is not None else None,
            "row_remap_failure": bool(remap) if remap is not None else None,
            "temperature_c": value_of(self.temperature_c),
            "power_w": value_of(self.power_w),
            "gpus": int(gpus) if gpus is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ModelMetrics:
    model: str
    requests_waiting: Reading
    requests_running: Reading
    kv_cache_usage: Reading
    kv_cache_source: ModelSignal | None  # KV_CACHE_USAGE or KV_CACHE_USAGE_LEGACY (None: unknown)
    prompt_tokens_per_s: Reading
    generation_tokens_per_s: Reading
    requests_per_s: Reading
    success_ratio: Reading
    ttft_p99_s: Reading
    e2e_p99_s: Reading

    def readings(self) -> dict[str, Reading]:
        return {
            "requests_waiting": self.requests_waiting,
            "requests_running": self.requests_running,
            "kv_cache_usage": self.kv_cache_usage,
            "prompt_tokens_per_s": self.prompt_tokens_per_s,
            "generation_tokens_per_s": self.generation_tokens_per_s,
            "requests_per_s": self.requests_per_s,
            "success_ratio": self.success_ratio,
            "ttft_p99_s": self.ttft_p99_s,
            "e2e_p99_s": self.e2e_p99_s,
        }

    def to_json(self, weights: DemandWeights) -> dict[str, Any]:
        body: dict[str, Any] = {k: value_of(v) for k, v in self.readings().items()}
        body["kv_cache_source"] = self.kv_cache_source.value if self.kv_cache_source else None
        body["demand_tokens_per_s"] = value_of(demand_tokens_per_s(self, weights))
        return body


@dataclass(frozen=True, slots=True)
class Gap:
    """One thing that could not be read, for `unknown` in outputs and for holds."""

    what: str  # "prometheus", "nodes.<node>.<field>", "models.<model>.<field>" or "signals.<signal>"
    reason: UnknownReason
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "reason": self.reason.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Everything read from metrics in one tick. `outage` set means nothing at all is known."""

    observed_at: datetime
    nodes: Mapping[str, NodeMetrics] = field(default_factory=dict)
    models: Mapping[str, ModelMetrics] = field(default_factory=dict)
    outage: Unknown | None = None
    queries: int = 0
    signal_gaps: tuple[Gap, ...] = ()  # whole-signal problems (query errors, unmapped series)

    @property
    def reachable(self) -> bool:
        return self.outage is None

    def model(self, name: str) -> ModelMetrics:
        """The model's metrics; a model without series is all-unknown (missing, or the outage)."""
        found = self.models.get(name)
        if found is not None:
            return found
        return unknown_model(name, self.outage or Unknown(UnknownReason.MISSING, "no series for this model"))

    def gaps(self) -> list[Gap]:
        """Every unknown, in a stable order: the outage, whole signals, nodes, models."""
        if self.outage is not None:  # every value is unknown for this one reason; say it once
            return [Gap("prometheus", self.outage.reason, self.outage.detail)]
        out: list[Gap] = list(self.signal_gaps)
        for name in sorted(self.nodes):
            out.extend(_gaps(f"nodes.{name}", self.nodes[name].readings()))
        for name in sorted(self.models):
            out.extend(_gaps(f"models.{name}", self.models[name].readings()))
        return out

    def to_json(self, weights: DemandWeights) -> dict[str, Any]:
        return {
            "observed_at": self.observed_at.isoformat(),
            "reachable": self.reachable,
            "nodes": {n: self.nodes[n].to_json() for n in sorted(self.nodes)},
            "models": {m: self.models[m].to_json(weights) for m in sorted(self.models)},
            "unknown": [g.to_json() for g in self.gaps()],
            "queries": self.queries,
        }


def _gaps(prefix: str, readings: Mapping[str, Reading]) -> list[Gap]:
    return [
        Gap(f"{prefix}.{name}", r.reason, r.detail) for name, r in readings.items() if isinstance(r, Unknown)
    ]


def unknown_model(name: str, why: Unknown) -> ModelMetrics:
    return ModelMetrics(name, why, why, why, None, why, why, why, why, why, why)


# ---------------------------------------------------------------- assembling a snapshot


# Looks up the query error of a signal (None: the query succeeded).
_Errors = Callable[[NodeSignal | ModelSignal], Unknown | None]


def judge(row: Row | None, now: datetime, staleness_limit: timedelta, what: str) -> Reading:
    """One row → a Reading. Total: every input maps to Known or to an Unknown with a reason."""
    if row is None:
        return Unknown(UnknownReason.MISSING, f"no {what} series")
    if row.value is None:
        return Unknown(UnknownReason.EMPTY, f"{what}: series exist but gave no value in the window")
    if math.isnan(row.value):
        return Unknown(UnknownReason.NAN, f"{what} is NaN")
    if math.isinf(row.value):
        return Unknown(UnknownReason.NAN, f"{what} is infinite")
    if row.at is not None:
        age = now - row.at
        if age > staleness_limit:
            return Unknown(
                UnknownReason.STALE,
                f"{what}: newest sample {age.total_seconds():.0f}s old "
                f"(limit {staleness_limit.total_seconds():.0f}s)",
            )
    return Known(row.value, row.at)


def node_of(labels: Mapping[str, str], node_label: str) -> str | None:
    """The node a series belongs to: the policy's label, then Hostname, then hostname."""
    for label in (node_label, *HOST_LABELS):
        value = labels.get(label, "")
        if value:
            return value
    return None


def node_group_labels(node_label: str) -> tuple[str, ...]:
    """Labels node signals are grouped by (each once, in lookup order)."""
    return tuple(dict.fromkeys((node_label, *HOST_LABELS)))


def assemble(
    results: Iterable[SignalResult],
    *,
    now: datetime,
    staleness_limit: timedelta,
    node_label: str,
    model_label: str,
    models: Sequence[str] = (),
    queries: int = 0,
) -> MetricsSnapshot:
    """Rows of every signal → a MetricsSnapshot.

    Nodes are those any node signal names; models are those any model signal names plus
    `models` (the policy's served models, which show as all-unknown when they have no series).
    When any result failed with an outage reason, the snapshot is an outage: nothing is known.
    """
    by_signal: dict[NodeSignal | ModelSignal, SignalResult] = {r.signal: r for r in results}
    for result in by_signal.values():
        if result.error is not None and result.error.reason in OUTAGE_REASONS:
            return MetricsSnapshot(
                observed_at=now,
                models={m: unknown_model(m, result.error) for m in models},
                outage=result.error,
                queries=queries,
            )

    signal_gaps: list[Gap] = []
    node_rows: dict[NodeSignal, dict[str, Row]] = {}
    model_rows: dict[ModelSignal, dict[str, Row]] = {}
    for signal, result in by_signal.items():
        if result.error is not None:
            signal_gaps.append(Gap(f"signals.{signal.value}", result.error.reason, result.error.detail))
        if isinstance(signal, NodeSignal):
            node_rows[signal], unmapped = _index(result.rows, lambda lb: node_of(lb, node_label))
        else:
            model_rows[signal], unmapped = _index(result.rows, lambda lb: lb.get(model_label) or None)
        if unmapped:
            label = "/".join(node_group_labels(node_label)) if isinstance(signal, NodeSignal) else model_label
            signal_gaps.append(
                Gap(
                    f"signals.{signal.value}",
                    UnknownReason.UNMAPPED,
                    f"{unmapped} series without a {label} label",
                )
            )

    def errors(signal: NodeSignal | ModelSignal) -> Unknown | None:
        result = by_signal.get(signal)
        if result is None:
            return Unknown(UnknownReason.MISSING, f"{signal.value} was not queried")
        return result.error

    node_names = sorted({n for rows in node_rows.values() for n in rows})
    nodes = {n: _node(n, node_rows, errors, now, staleness_limit) for n in node_names}
    model_names = sorted({m for rows in model_rows.values() for m in rows} | set(models))
    model_map = {m: _model(m, model_rows, errors, now, staleness_limit) for m in model_names}
    return MetricsSnapshot(
        observed_at=now, nodes=nodes, models=model_map, queries=queries, signal_gaps=tuple(signal_gaps)
    )


def _index(
    rows: Iterable[Row], key_of: Callable[[Mapping[str, str]], str | None]
) -> tuple[dict[str, Row], int]:
    out: dict[str, Row] = {}
    unmapped = 0
    for row in rows:
        key = key_of(row.labels)
        if key is None:
            unmapped += 1
            continue
        if key in out:  # the same node under two host labels: keep the older (more cautious) sample
            out[key] = _merge(out[key], row)
        else:
            out[key] = row
    return out, unmapped


def _merge(a: Row, b: Row) -> Row:
    """Two rows for one key (a node under two host labels): the one without a value, else the older."""
    for row in (a, b):
        if row.value is None or math.isnan(row.value):
            return row
    return min((a, b), key=lambda r: r.at.timestamp() if r.at is not None else math.inf)


def _pick(
    rows: Mapping[str, Row],
    signal: NodeSignal | ModelSignal,
    key: str,
    errors: _Errors,
    now: datetime,
    limit: timedelta,
) -> Reading:
    err = errors(signal)
    row = rows.get(key)
    if row is None and err is not None:
        return err
    return judge(row, now, limit, signal.value)


def _node(
    name: str, rows: Mapping[NodeSignal, Mapping[str, Row]], errors: _Errors, now: datetime, limit: timedelta
) -> NodeMetrics:
    def get(signal: NodeSignal) -> Reading:
        return _pick(rows.get(signal, {}), signal, name, errors, now, limit)

    active, util = get(NodeSignal.GPU_ACTIVE), get(NodeSignal.GPU_UTIL)
    chosen, source = _first_known(
        (active, NodeSignal.GPU_ACTIVE), (util, NodeSignal.GPU_UTIL), what="gpu_active or gpu_util"
    )
    return NodeMetrics(
        node=name,
        gpu_active=chosen,
        gpu_active_source=source if isinstance(source, NodeSignal) else None,
        vram_used_fraction=get(NodeSignal.VRAM_USED_FRACTION),
        xid_last=get(NodeSignal.XID_LAST),
        row_remap_failure=get(NodeSignal.ROW_REMAP_FAILURE),
        temperature_c=get(NodeSignal.TEMPERATURE_C),
        power_w=get(NodeSignal.POWER_W),
        gpus=get(NodeSignal.GPUS),
    )


def _model(
    name: str, rows: Mapping[ModelSignal, Mapping[str, Row]], errors: _Errors, now: datetime, limit: timedelta
) -> ModelMetrics:
    def get(signal: ModelSignal) -> Reading:
        return _pick(rows.get(signal, {}), signal, name, errors, now, limit)

    kv, source = _first_known(
        (get(ModelSignal.KV_CACHE_USAGE), ModelSignal.KV_CACHE_USAGE),
        (get(ModelSignal.KV_CACHE_USAGE_LEGACY), ModelSignal.KV_CACHE_USAGE_LEGACY),
        what="kv_cache_usage or its legacy name",
    )
    return ModelMetrics(
        model=name,
        requests_waiting=get(ModelSignal.REQUESTS_WAITING),
        requests_running=get(ModelSignal.REQUESTS_RUNNING),
        kv_cache_usage=kv,
        kv_cache_source=source if isinstance(source, ModelSignal) else None,
        prompt_tokens_per_s=get(ModelSignal.PROMPT_TOKENS_PER_S),
        generation_tokens_per_s=get(ModelSignal.GENERATION_TOKENS_PER_S),
        requests_per_s=get(ModelSignal.REQUESTS_PER_S),
        success_ratio=get(ModelSignal.SUCCESS_RATIO),
        ttft_p99_s=get(ModelSignal.TTFT_P99_S),
        e2e_p99_s=get(ModelSignal.E2E_P99_S),
    )


def _first_known(
    *candidates: tuple[Reading, NodeSignal | ModelSignal], what: str
) -> tuple[Reading, NodeSignal | ModelSignal | None]:
    """The first Known candidate and its signal; else the first candidate's Unknown, naming all."""
    for reading, signal in candidates:
        if isinstance(reading, Known):
            return reading, signal
    first = candidates[0][0]
    assert isinstance(first, Unknown)
    details = "; ".join(r.detail for r, _ in candidates if isinstance(r, Unknown) and r.detail)
    return Unknown(first.reason, f"no known {what}: {details}" if details else f"no known {what}"), None


# ---------------------------------------------------------------- what decisions use


def demand_tokens_per_s(model: ModelMetrics, weights: DemandWeights) -> Reading:
    """Weighted tokens/s (design §1.7): prompt × weights.prompt + generation × weights.generation.

    Unknown when a term with a positive weight is unknown — a partial sum would understate demand.
    """
    total = 0.0
    oldest: datetime | None = None
    for reading, weight, name in (
        (model.prompt_tokens_per_s, weights.prompt, "prompt_tokens_per_s"),
        (model.generation_tokens_per_s, weights.generation, "generation_tokens_per_s"),
    ):
        if weight == 0:
            continue
        if isinstance(reading, Unknown):
            return Unknown(reading.reason, f"demand needs {name}: {reading.detail}".rstrip(": "))
        total += reading.value * weight
        if reading.at is not None and (oldest is None or reading.at < oldest):
            oldest = reading.at
    return Known(total, oldest)


def total_demand_tokens_per_s(
    snap: MetricsSnapshot, models: Iterable[str], weights: DemandWeights
) -> Reading:
    """Demand over several models; unknown when any of them is."""
    total = 0.0
    for name in models:
        reading = demand_tokens_per_s(snap.model(name), weights)
        if isinstance(reading, Unknown):
            return Unknown(reading.reason, f"{name}: {reading.detail}")
        total += reading.value
    return Known(total)


@dataclass(frozen=True, slots=True)
class MetricsGate:
    """May decisions act on this model's load? Both flags are False together whenever load is unknown."""

    metric_driven: bool  # scale out (or in) because of what the metrics say
    scale_in: bool  # remove capacity at all
    reason: Reason | None = None  # METRICS_UNKNOWN or STALE_SNAPSHOT when held
    gaps: tuple[Gap, ...] = ()


# The signals a load decision rests on; kv-cache and latency refine a decision but never gate it.
GATING_SIGNALS = ("requests_waiting", "prompt_tokens_per_s", "generation_tokens_per_s")


def metrics_gate(
    snap: MetricsSnapshot, model: str, weights: DemandWeights, now: datetime, max_age: timedelta
) -> MetricsGate:
    """Whether load-driven scaling of `model` may act now.

    Held (freeze scale-in, no metric-driven action) when Prometheus is unreachable, when the
    snapshot is older than `max_age`, or when queue depth or weighted demand is unknown.
    """
    if snap.outage is not None:
        gap = Gap("prometheus", snap.outage.reason, snap.outage.detail)
        return MetricsGate(False, False, Reason.METRICS_UNKNOWN, (gap,))
    age = now - snap.observed_at
    if age > max_age:
        gap = Gap("snapshot", UnknownReason.STALE, f"observed {age.total_seconds():.0f}s ago")
        return MetricsGate(False, False, Reason.STALE_SNAPSHOT, (gap,))
    m = snap.model(model)
    readings = m.readings()
    needed = ["requests_waiting"]
    needed += ["prompt_tokens_per_s"] if weights.prompt > 0 else []
    needed += ["generation_tokens_per_s"] if weights.generation > 0 else []
    gaps = tuple(_gaps(f"models.{model}", {k: readings[k] for k in needed}))
    if gaps:
        return MetricsGate(False, False, Reason.METRICS_UNKNOWN, gaps)
    return MetricsGate(True, True)


# Above ~90 % framebuffer use, long-context requests start failing with CUDA OOM.
VRAM_PRESSURE_FRACTION = 0.9


def vram_pressure(node: NodeMetrics, threshold: float = VRAM_PRESSURE_FRACTION) -> bool | None:
    """True when the node's fullest GPU is above `threshold` of its framebuffer; None when unknown."""
    reading = node.vram_used_fraction
    if isinstance(reading, Unknown):
        return None
    return reading.value > threshold
