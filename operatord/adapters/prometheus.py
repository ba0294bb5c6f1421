"""Adapter: Prometheus. MetricsSource over prometheus-api-client; translation and error classification only.

One snapshot is a fixed list of PromQL queries (one per signal), each aggregated by node or by
model at the server, so the number of queries never grows with the fleet. Each query returns
the aggregated value and, tagged by an extra label, the oldest sample timestamp of the group,
so the core can judge staleness. Metric names come from the policy; a name with a colon is also
read with the colon turned into an underscore (OpenMetrics scrapes by Prometheus 2.x store it
that way), and vLLM and SGLang names of one signal are read together.

Errors: connection failures and timeouts end the snapshot (an outage: every later query would
fail the same way); a query Prometheus rejects is a gap for that signal only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import structlog
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from operatord.core.cost import LoadHistory, Points
from operatord.core.metrics import (
    Gap,
    MetricsSnapshot,
    ModelSignal,
    NodeSignal,
    Row,
    SignalResult,
    Unknown,
    UnknownReason,
    assemble,
    node_group_labels,
)
from operatord.policies.model import MetricNames, MetricsPolicy

log = structlog.get_logger(__name__)

DRIVER_LABEL = "DCGM_FI_DRIVER_VERSION"  # dcgm-exporter puts the driver version on every GPU series
PART = "operatord_part"  # label that tells the value rows from the timestamp rows of one query
ABORT_REASON = "abort"  # vLLM request_success_total{finished_reason="abort"}: the request failed
_STATUS = re.compile(r"HTTP Status Code (\d{3})")


# ---------------------------------------------------------------- PromQL (pure string building)


def spellings(*names: str) -> list[str]:
    """Each name, and with ':' turned into '_' when it has one (de-duplicated, order kept)."""
    out: list[str] = []
    for name in names:
        out.append(name)
        if ":" in name:
            out.append(name.replace(":", "_"))
    return list(dict.fromkeys(out))


def selector(names: Sequence[str], matchers: str = "") -> str:
    """A series selector for any of `names` (already validated metric names: no quoting needed)."""
    alts = spellings(*names)
    extra = f",{matchers}" if matchers else ""
    if len(alts) == 1 and not extra:
        return alts[0]
    return '{__name__=~"' + "|".join(alts) + '"' + extra + "}"


def duration(value: timedelta) -> str:
    return f"{max(1, round(value.total_seconds() * 1000))}ms"


def with_timestamp(value_expr: str, ts_selector: str, by: str) -> str:
    """One query answering both the aggregated value and the group's oldest sample time."""
    return (
        f'label_replace({value_expr}, "{PART}", "value", "", "") or '
        f'label_replace(min by ({by}) (timestamp({ts_selector})), "{PART}", "ts", "", "")'
    )


@dataclass(frozen=True, slots=True)
class Query:
    signal: NodeSignal | ModelSignal
    promql: str


def snapshot_queries(policy: MetricsPolicy) -> list[Query]:
    """The fixed list of queries one snapshot runs. Its length never depends on the fleet."""
    n: MetricNames = policy.names
    node_by = ", ".join(node_group_labels(policy.node_label))
    m = policy.model_label
    w = duration(policy.rate_window)

    def node(signal: NodeSignal, value: str, ts_names: Sequence[str]) -> Query:
        return Query(signal, with_timestamp(value, selector(ts_names), node_by))

    def model(signal: ModelSignal, value: str, ts_sel: str) -> Query:
        return Query(signal, with_timestamp(value, ts_sel, m))

    def rate(names: Sequence[str], matchers: str = "") -> str:
        return f"rate({selector(names, matchers)}[{w}])"

    used, free = selector([n.fb_used]), selector([n.fb_free])
    requests_sel = [n.request_success, n.sglang_requests]
    requests_rate = f"sum by ({m}) ({rate(requests_sel)})"
    abort_matcher = 'finished_reason="' + ABORT_REASON + '"'
    aborted = (
        f"(sum by ({m}) ({rate([n.request_success], abort_matcher)})"
        f" or sum by ({m}) ({rate([n.sglang_aborted_requests])}) or 0 * {requests_rate})"
    )

    def p99(names: Sequence[str]) -> str:
        buckets = [f"{x}_bucket" for x in names]
        return f"histogram_quantile(0.99, sum by ({m}, le) ({rate(buckets)}))"

    ttft = [n.ttft_seconds, n.sglang_ttft_seconds]
    e2e = [n.e2e_seconds, n.sglang_e2e_seconds]
    return [
        node(NodeSignal.GPU_ACTIVE, f"avg by ({node_by}) ({selector([n.gpu_active])})", [n.gpu_active]),
        node(NodeSignal.GPU_UTIL, f"avg by ({node_by}) ({selector([n.gpu_util])}) / 100", [n.gpu_util]),
        node(NodeSignal.VRAM_USED_FRACTION, f"max by ({node_by}) ({used} / ({used} + {free}))", [n.fb_used]),
        node(NodeSignal.XID_LAST, f"max by ({node_by}) ({selector([n.xid])})", [n.xid]),
        node(
            NodeSignal.ROW_REMAP_FAILURE,
            f"max by ({node_by}) ({selector([n.row_remap_failure])})",
            [n.row_remap_failure],
        ),
        node(NodeSignal.TEMPERATURE_C, f"max by ({node_by}) ({selector([n.temperature])})", [n.temperature]),
        node(NodeSignal.POWER_W, f"sum by ({node_by}) ({selector([n.power])})", [n.power]),
        node(NodeSignal.GPUS, f"count by ({node_by}) ({used})", [n.fb_used]),
        model(
            ModelSignal.REQUESTS_WAITING,
            f"sum by ({m}) ({selector([n.requests_waiting, n.sglang_requests_waiting])})",
            selector([n.requests_waiting, n.sglang_requests_waiting]),
        ),
        model(
            ModelSignal.REQUESTS_RUNNING,
            f"sum by ({m}) ({selector([n.requests_running, n.sglang_requests_running])})",
            selector([n.requests_running, n.sglang_requests_running]),
        ),
        model(
            ModelSignal.KV_CACHE_USAGE,
            f"avg by ({m}) ({selector([n.kv_cache_usage, n.sglang_kv_cache_usage])})",
            selector([n.kv_cache_usage, n.sglang_kv_cache_usage]),
        ),
        model(
            ModelSignal.KV_CACHE_USAGE_LEGACY,
            f"avg by ({m}) ({selector([n.kv_cache_usage_legacy])})",
            selector([n.kv_cache_usage_legacy]),
        ),
        model(
            ModelSignal.PROMPT_TOKENS_PER_S,
            f"sum by ({m}) ({rate([n.prompt_tokens, n.sglang_prompt_tokens])})",
            selector([n.prompt_tokens, n.sglang_prompt_tokens]),
        ),
        model(
            ModelSignal.GENERATION_TOKENS_PER_S,
            f"sum by ({m}) ({rate([n.generation_tokens, n.sglang_generation_tokens])})",
            selector([n.generation_tokens, n.sglang_generation_tokens]),
        ),
        model(ModelSignal.REQUESTS_PER_S, requests_rate, selector(requests_sel)),
        model(ModelSignal.SUCCESS_RATIO, f"1 - {aborted} / {requests_rate}", selector(requests_sel)),
        model(ModelSignal.TTFT_P99_S, p99(ttft), selector([f"{x}_bucket" for x in ttft])),
        model(ModelSignal.E2E_P99_S, p99(e2e), selector([f"{x}_bucket" for x in e2e])),
    ]


def configured_names(policy: MetricsPolicy) -> dict[str, list[str]]:
    """Each policy metric-name field → the stored names it is read as (histograms by their _bucket)."""
    out: dict[str, list[str]] = {}
    for field_name, name in policy.names.model_dump().items():
        stored = f"{name}_bucket" if name.endswith("_seconds") else name
        out[field_name] = spellings(stored)
    return out


def history_queries(policy: MetricsPolicy, step: timedelta) -> dict[str, str]:
    """Range queries for `history`; the rate window spans at least two steps so no step is blind."""
    n = policy.names
    m = policy.model_label
    w = duration(max(policy.rate_window, 2 * step))

    def rate(names: Sequence[str]) -> str:
        return f"rate({selector(names)}[{w}])"

    return {
        "requests_per_s": f"sum({rate([n.request_success, n.sglang_requests])})",
        "prompt_tokens_per_s": f"sum by ({m}) ({rate([n.prompt_tokens, n.sglang_prompt_tokens])})",
        "generation_tokens_per_s": f"sum by ({m}) ({rate([n.generation_tokens, n.sglang_generation_tokens])})",
        "gpu_active": f"avg({selector([n.gpu_active])}) or avg({selector([n.gpu_util])}) / 100",
        "gpus": f"count({selector([n.fb_used])})",
        "power_w": f"sum({selector([n.power])})",
    }


# ---------------------------------------------------------------- the adapter


class _Outage(Exception):
    def __init__(self, why: Unknown) -> None:
        super().__init__(why.detail)
        self.why = why


class PromMetrics:
    """MetricsSource over one Prometheus server."""

    def __init__(
        self,
        url: str,
        policy: MetricsPolicy,
        *,
        models: Sequence[str] = (),
        client: PrometheusConnect | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._policy = policy
        self._models = tuple(models)
        timeout = policy.query_timeout.total_seconds()
        # No client-side retries: the next tick is the retry, and an outage must show within one timeout.
        self._client = client or PrometheusConnect(
            url=self.url,
            disable_ssl=False,
            retry=Retry(total=0, read=False, raise_on_status=False),
            timeout=timeout,
        )
        self._timeout = timeout

    def snapshot(self, now: datetime) -> MetricsSnapshot:
        results: list[SignalResult] = []
        issued = 0
        for query in snapshot_queries(self._policy):
            issued += 1
            try:
                raw = self._call(
                    self._client.custom_query,
                    query.promql,
                    params={
                        "time": f"{now.timestamp():.3f}",
                        "timeout": duration(self._policy.query_timeout),
                    },
                )
            except _Outage as err:
                results.append(SignalResult(query.signal, error=err.why))
                log.warning(
                    "metrics.unreachable", url=self.url, reason=err.why.reason.value, detail=err.why.detail
                )
                break
            except _QueryError as err:
                results.append(SignalResult(query.signal, error=Unknown(UnknownReason.QUERY_ERROR, str(err))))
                log.warning("metrics.query_failed", signal=query.signal.value, error=str(err))
                continue
            results.append(SignalResult(query.signal, rows=tuple(_rows(raw))))
        snap = assemble(
            results,
            now=now,
            staleness_limit=self._policy.staleness_limit,
            node_label=self._policy.node_label,
            model_label=self._policy.model_label,
            models=self._models,
            queries=issued,
        )
        log.debug(
            "metrics.read", url=self.url, queries=issued, nodes=len(snap.nodes), models=len(snap.models)
        )
        return snap

    def names_present(self, now: datetime) -> dict[str, bool] | Unknown:
        """Which of the policy's metric names have series at all (for `operatord doctor`), in one query.

        An Unknown when Prometheus cannot be reached.
        """
        wanted = configured_names(self._policy)
        everything = sorted({n for names in wanted.values() for n in names})
        promql = 'count by (__name__) ({__name__=~"' + "|".join(everything) + '"})'
        try:
            raw = self._call(self._client.custom_query, promql, params={"time": f"{now.timestamp():.3f}"})
        except _Outage as err:
            return err.why
        except _QueryError as err:
            return Unknown(UnknownReason.QUERY_ERROR, str(err))
        found = {item.get("metric", {}).get("__name__") for item in raw}
        return {field_name: any(n in found for n in names) for field_name, names in wanted.items()}

    def driver_versions(self, now: datetime) -> dict[str, str] | Unknown:
        """Node → driver version from dcgm-exporter's DCGM_FI_DRIVER_VERSION label, in one query.

        A node whose GPUs report two versions gets both, comma-joined (itself a skew to see).
        """
        names = spellings(self._policy.names.temperature)
        hosts = dict.fromkeys((self._policy.node_label, "Hostname", "hostname"))
        promql = f"count by ({', '.join([*hosts, DRIVER_LABEL])}) ({selector(names)})"
        try:
            raw = self._call(self._client.custom_query, promql, params={"time": f"{now.timestamp():.3f}"})
        except _Outage as err:
            return err.why
        except _QueryError as err:
            return Unknown(UnknownReason.QUERY_ERROR, str(err))
        found: dict[str, set[str]] = {}
        for item in raw:
            labels = item.get("metric", {})
            node = next((labels[h] for h in hosts if labels.get(h)), None)
            version = labels.get(DRIVER_LABEL)
            if node and version:
                found.setdefault(node, set()).add(version)
        return {node: ",".join(sorted(versions)) for node, versions in sorted(found.items())}

    def history(self, start: datetime, end: datetime, step: timedelta) -> LoadHistory:
        start = datetime.fromtimestamp(
            round(start.timestamp()), UTC
        )  # the client rounds; align points with it
        end = datetime.fromtimestamp(round(end.timestamp()), UTC)
        series: dict[str, Any] = {}
        gaps: list[Gap] = []
        issued = 0
        outage: Unknown | None = None
        for name, promql in history_queries(self._policy, step).items():
            issued += 1
            try:
                raw = self._call(
                    self._client.custom_query_range,
                    promql,
                    start_time=start,
                    end_time=end,
                    step=duration(step),
                    params={"timeout": duration(self._policy.query_timeout)},
                )
            except _Outage as err:
                outage = err.why
                break
            except _QueryError as err:
                gaps.append(Gap(f"history.{name}", UnknownReason.QUERY_ERROR, str(err)))
                continue
            series[name] = raw
        model_label = self._policy.model_label
        return LoadHistory(
            start=start,
            end=end,
            step=step,
            requests_per_s=_points_single(series.get("requests_per_s", [])),
            prompt_tokens_per_s=_points_by(series.get("prompt_tokens_per_s", []), model_label),
            generation_tokens_per_s=_points_by(series.get("generation_tokens_per_s", []), model_label),
            gpu_active=_points_single(series.get("gpu_active", [])),
            gpus=_points_single(series.get("gpus", [])),
            power_w=_points_single(series.get("power_w", [])),
            outage=outage,
            gaps=tuple(gaps),
            queries=issued,
        )

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one client call; classify its failure as an outage or a query error."""
        try:
            return fn(*args, **kwargs)
        except requests.exceptions.Timeout as err:
            raise _Outage(
                Unknown(UnknownReason.TIMEOUT, f"{self.url} did not answer within {self._timeout:g}s")
            ) from err
        except requests.exceptions.ConnectionError as err:
            if "timed out" in str(err):  # a timeout wrapped by urllib3's retry machinery
                raise _Outage(
                    Unknown(UnknownReason.TIMEOUT, f"{self.url} did not answer within {self._timeout:g}s")
                ) from err
            raise _Outage(
                Unknown(UnknownReason.UNREACHABLE, f"cannot connect to {self.url}: {_cause(err)}")
            ) from err
        except requests.exceptions.RequestException as err:
            raise _Outage(Unknown(UnknownReason.UNREACHABLE, f"{self.url}: {_short(err)}")) from err
        except PrometheusApiClientException as err:
            match = _STATUS.search(str(err))
            status = int(match.group(1)) if match else 0
            if status == 503 and "timeout" in str(err).lower():
                raise _Outage(
                    Unknown(UnknownReason.TIMEOUT, f"{self.url}: query timed out at the server")
                ) from err
            if status >= 500 or status in (0, 401, 403, 404, 407, 429):
                raise _Outage(
                    Unknown(UnknownReason.UNREACHABLE, f"{self.url} answered HTTP {status}")
                ) from err
            raise _QueryError(f"HTTP {status}: {_short(err)}") from err
        except ValueError as err:  # not JSON: something else is listening there
            raise _Outage(
                Unknown(UnknownReason.UNREACHABLE, f"{self.url} is not a Prometheus API: {err}")
            ) from err


class _QueryError(Exception):
    pass


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _cause(err: BaseException) -> str:
    """The OS-level reason of a connection error ("Connection refused"), not urllib3's retry wrapper."""
    match = _ERRNO.search(str(err))
    return match.group(1).strip() if match else _short(err, 200)


def _short(err: BaseException, limit: int = 300) -> str:
    text = str(err).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _rows(raw: Iterable[dict[str, Any]]) -> list[Row]:
    """Merge the value and timestamp rows of a with_timestamp() query into one Row per group."""
    values: dict[tuple[tuple[str, str], ...], float] = {}
    stamps: dict[tuple[tuple[str, str], ...], datetime] = {}
    for item in raw:
        labels = dict(item.get("metric", {}))
        part = labels.pop(PART, "value")
        labels.pop("__name__", None)
        key = tuple(sorted(labels.items()))
        value = _float(item.get("value", [None, "NaN"])[1])
        if part == "ts":
            if not math.isnan(value):
                stamps[key] = datetime.fromtimestamp(value, UTC)
        else:
            values[key] = value
    keys = list(dict.fromkeys([*values, *stamps]))
    return [Row(dict(k), values.get(k), stamps.get(k)) for k in keys]


def _points(values: Iterable[Sequence[Any]]) -> Points:
    out = []
    for ts, text in values:
        v = _float(text)
        if not math.isnan(v) and not math.isinf(v):
            out.append((datetime.fromtimestamp(float(ts), UTC), v))
    return tuple(out)


def _points_single(raw: Sequence[dict[str, Any]]) -> Points:
    return _points(raw[0].get("values", [])) if raw else ()


def _points_by(raw: Sequence[dict[str, Any]], label: str) -> dict[str, Points]:
    out: dict[str, Points] = {}
    for item in raw:
        key = item.get("metric", {}).get(label)
        if key:
            out[key] = _points(item.get("values", []))
    return out
