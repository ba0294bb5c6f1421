"""Test harness component: a real Prometheus on loopback scraping a fake DCGM/vLLM/SGLang exporter.

`PrometheusServer` starts Debian's `/usr/bin/prometheus` on a free 127.0.0.1 port with its own
temporary storage and a generated config, waits for the first scrape by polling (Prometheus 2.x
throttles target discovery to ~5 s; research/tooling.md §4), and is stopped by PID. History for
range queries and `operatord cost` is backfilled before start with
`promtool tsdb create-blocks-from openmetrics` (`History` writes the input file).

`FakeExporter` serves series a test sets (gauges, counters growing at a rate, histograms filling
at a rate) built with prometheus_client, on two paths: `/metrics` negotiates like a current
prometheus_client (Prometheus 2.x asks for OpenMetrics, so `vllm:x` is stored as `vllm_x`) and
`/text` always answers the classic text format (colon names kept), so both spellings exist.

Like every harness component: start(), stop(), env() → {"OPERATORD_PROMETHEUS_URL": url}.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

Spelling = Literal["underscore", "colon"]
# vLLM's e2e latency buckets (research/autoscaling.md §2.1), trimmed: enough for a p99 to interpolate.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
DEFAULT_JOB = "operatord-fake"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the fake exporter


@dataclass
class _Series:
    kind: Literal["gauge", "counter", "histogram"]
    name: str  # counters without _total
    labels: dict[str, str]
    path: str  # "/metrics" or "/text"
    value: float = 0.0  # gauge value, or counter rate per second
    at: float | None = None  # explicit sample timestamp (unix s): a frozen, aging sample
    observed_s: float = 0.0  # histogram: every observation has this value
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    since: float = 0.0  # counters and histograms grow from here


@dataclass
class FakeExporter:
    """Series a test sets, served over HTTP for Prometheus to scrape. Thread-safe."""

    clock: Callable[[], float] = time.time
    _series: dict[tuple[str, tuple[tuple[str, str], ...]], _Series] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> None:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urllib.parse.urlparse(self.path).path
                if path not in ("/metrics", "/text"):
                    self.send_error(404)
                    return
                families = exporter.families(path)
                accept = self.headers.get("Accept", "")
                if path == "/metrics" and "application/openmetrics-text" in accept:
                    body, ctype = generate_openmetrics(_Registry(families)), OPENMETRICS_TYPE  # type: ignore[no-untyped-call]
                else:
                    body, ctype = (
                        generate_text(_Registry(families)),
                        "text/plain; version=0.0.4; charset=utf-8",
                    )
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
                return

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-exporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def address(self) -> str:
        assert self._server is not None, "exporter not started"
        return f"127.0.0.1:{self._server.server_address[1]}"

    # -- raw series

    def gauge(
        self,
        name: str,
        labels: Mapping[str, str],
        value: float,
        *,
        at: float | None = None,
        spelling: Spelling = "underscore",
    ) -> None:
        """Set a gauge. `at` pins the sample time (it then ages: Prometheus keeps it but it goes stale)."""
        self._put(_Series("gauge", name, dict(labels), _path(spelling), value=value, at=at))

    def counter(
        self, name: str, labels: Mapping[str, str], per_s: float, *, spelling: Spelling = "underscore"
    ) -> None:
        """A counter (name without `_total`) growing at `per_s` from now on; rate() reads `per_s`."""
        self._put(_Series("counter", name, dict(labels), _path(spelling), value=per_s, since=self.clock()))

    def histogram(
        self,
        name: str,
        labels: Mapping[str, str],
        per_s: float,
        observed_s: float,
        *,
        buckets: Sequence[float] = LATENCY_BUCKETS,
        spelling: Spelling = "underscore",
    ) -> None:
        """A histogram receiving `per_s` observations a second, each of `observed_s` seconds."""
        self._put(
            _Series(
                "histogram",
                name,
                dict(labels),
                _path(spelling),
                value=per_s,
                observed_s=observed_s,
                buckets=tuple(sorted(buckets)),
                since=self.clock(),
            )
        )

    def remove(self, **labels: str) -> int:
        """Remove every series whose labels include `labels`; returns how many went."""
        with self._lock:
            gone = [
                k for k, s in self._series.items() if all(s.labels.get(a) == b for a, b in labels.items())
            ]
            for k in gone:
                del self._series[k]
        return len(gone)

    def clear(self) -> None:
        with self._lock:
            self._series.clear()

    # -- shaped series

    def dcgm_node(
        self,
        node: str,
        *,
        gpus: int = 8,
        active: float | None = 0.5,
        util_pct: float | None = 90.0,
        fb_used_mib: float = 30_000.0,
        fb_free_mib: float = 10_000.0,
        xid: float = 0,
        row_remap_failure: float = 0,
        temperature_c: float = 60.0,
        power_w: float = 300.0,
        host_label: str = "Hostname",
        at: float | None = None,
        extra_labels: Mapping[str, str] | None = None,
        per_gpu: Mapping[int, Mapping[str, float | None]] | None = None,
    ) -> None:
        """dcgm-exporter's series for one node's GPUs (None: that field is not exported, e.g. no DCP).

        `per_gpu` overrides fields for single GPUs by index, e.g. {3: {"xid": 79}}.
        """
        for gpu in range(gpus):
            labels = {
                "gpu": str(gpu),
                "UUID": f"GPU-{node}-{gpu:02d}",
                "pci_bus_id": f"00000000:{0x10 + gpu:02X}:00.0",
                "device": f"nvidia{gpu}",
                "modelName": "NVIDIA A100-SXM4-40GB",
                host_label: node,
                "operatord_test_node": node,
                **(extra_labels or {}),
            }
            fields: dict[str, float | None] = {
                "active": active,
                "util_pct": util_pct,
                "fb_used_mib": fb_used_mib,
                "fb_free_mib": fb_free_mib,
                "xid": xid,
                "row_remap_failure": row_remap_failure,
                "temperature_c": temperature_c,
                "power_w": power_w,
            }
            override = dict((per_gpu or {}).get(gpu, {}))
            unknown = set(override) - set(fields)
            if unknown:
                raise ValueError(
                    f"per_gpu[{gpu}]: unknown field(s) {sorted(unknown)}; known: {sorted(fields)}"
                )
            fields.update(override)
            for field_name, value in fields.items():
                name = _DCGM_NAMES[field_name]
                if value is not None:
                    self.gauge(name, labels, value, at=at)

    def vllm_model(
        self,
        model: str,
        *,
        waiting: float = 0,
        running: float = 0,
        kv_cache: float | None = 0.5,
        legacy_kv_cache: float | None = None,
        prompt_tokens_per_s: float = 0,
        generation_tokens_per_s: float = 0,
        requests_per_s: float = 0,
        aborted_per_s: float = 0,
        ttft_s: float = 0.2,
        e2e_s: float = 3.0,
        spelling: Spelling = "underscore",
        pod: str = "vllm-0",
    ) -> None:
        """vLLM's series for one replica. `requests_per_s` includes `aborted_per_s`."""
        labels = {"model_name": model, "engine": "0", "pod": pod, "operatord_test_model": model}
        self.gauge("vllm:num_requests_waiting", labels, waiting, spelling=spelling)
        self.gauge("vllm:num_requests_running", labels, running, spelling=spelling)
        if kv_cache is not None:
            self.gauge("vllm:kv_cache_usage_perc", labels, kv_cache, spelling=spelling)
        if legacy_kv_cache is not None:
            self.gauge("vllm:gpu_cache_usage_perc", labels, legacy_kv_cache, spelling=spelling)
        self.counter("vllm:prompt_tokens", labels, prompt_tokens_per_s, spelling=spelling)
        self.counter("vllm:generation_tokens", labels, generation_tokens_per_s, spelling=spelling)
        ok = max(0.0, requests_per_s - aborted_per_s)
        self.counter("vllm:request_success", {**labels, "finished_reason": "stop"}, ok, spelling=spelling)
        self.counter(
            "vllm:request_success", {**labels, "finished_reason": "abort"}, aborted_per_s, spelling=spelling
        )
        self.histogram("vllm:time_to_first_token_seconds", labels, requests_per_s, ttft_s, spelling=spelling)
        self.histogram("vllm:e2e_request_latency_seconds", labels, requests_per_s, e2e_s, spelling=spelling)

    def sglang_model(
        self,
        model: str,
        *,
        waiting: float = 0,
        running: float = 0,
        token_usage: float = 0.5,
        prompt_tokens_per_s: float = 0,
        generation_tokens_per_s: float = 0,
        requests_per_s: float = 0,
        aborted_per_s: float = 0,
        ttft_s: float = 0.2,
        e2e_s: float = 3.0,
        spelling: Spelling = "underscore",
    ) -> None:
        """SGLang's series (`--enable-metrics`) for one server."""
        labels = {"model_name": model, "operatord_test_model": model}
        self.gauge("sglang:num_queue_reqs", labels, waiting, spelling=spelling)
        self.gauge("sglang:num_running_reqs", labels, running, spelling=spelling)
        self.gauge("sglang:token_usage", labels, token_usage, spelling=spelling)
        self.counter("sglang:prompt_tokens", labels, prompt_tokens_per_s, spelling=spelling)
        self.counter("sglang:generation_tokens", labels, generation_tokens_per_s, spelling=spelling)
        self.counter("sglang:num_requests", labels, requests_per_s, spelling=spelling)
        self.counter("sglang:num_aborted_requests", labels, aborted_per_s, spelling=spelling)
        self.histogram(
            "sglang:time_to_first_token_seconds", labels, requests_per_s, ttft_s, spelling=spelling
        )
        self.histogram("sglang:e2e_request_latency_seconds", labels, requests_per_s, e2e_s, spelling=spelling)

    # -- exposition

    def families(self, path: str) -> list[Metric]:
        """The metric families served on `path` right now (counters and histograms grown to now)."""
        now = self.clock()
        with self._lock:
            series = [s for s in self._series.values() if s.path == path]
        grouped: dict[tuple[str, str], list[_Series]] = {}
        for s in series:
            grouped.setdefault((s.kind, s.name), []).append(s)
        out: list[Metric] = []
        for (kind, name), members in sorted(grouped.items()):
            names = sorted({k for m in members for k in m.labels})
            if kind == "gauge":
                gauge = GaugeMetricFamily(name, f"fake {name}", labels=names)
                for m in members:
                    gauge.add_metric([m.labels.get(k, "") for k in names], m.value, timestamp=m.at)
                out.append(gauge)
            elif kind == "counter":
                counter = CounterMetricFamily(name, f"fake {name}", labels=names)
                for m in members:
                    counter.add_metric(
                        [m.labels.get(k, "") for k in names], m.value * max(0.0, now - m.since)
                    )
                out.append(counter)
            else:
                hist = HistogramMetricFamily(name, f"fake {name}", labels=names)
                for m in members:
                    count = m.value * max(0.0, now - m.since)
                    buckets = [(_le(b), count if m.observed_s <= b else 0.0) for b in m.buckets]
                    buckets.append(("+Inf", count))
                    hist.add_metric([m.labels.get(k, "") for k in names], buckets, count * m.observed_s)
                out.append(hist)
        return out

    def _put(self, series: _Series) -> None:
        key = (series.name + "#" + series.kind, tuple(sorted(series.labels.items())))
        with self._lock:
            self._series[key] = series


_DCGM_NAMES = {
    "active": "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "util_pct": "DCGM_FI_DEV_GPU_UTIL",
    "fb_used_mib": "DCGM_FI_DEV_FB_USED",
    "fb_free_mib": "DCGM_FI_DEV_FB_FREE",
    "xid": "DCGM_FI_DEV_XID_ERRORS",
    "row_remap_failure": "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "temperature_c": "DCGM_FI_DEV_GPU_TEMP",
    "power_w": "DCGM_FI_DEV_POWER_USAGE",
}


class _QuietServer(ThreadingHTTPServer):
    """A scrape that Prometheus abandoned (scrape timeout) is not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _path(spelling: Spelling) -> str:
    return "/text" if spelling == "colon" else "/metrics"


def _le(bound: float) -> str:
    return repr(float(bound))


class _Registry:
    """The minimal registry interface prometheus_client's generators use."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


# ---------------------------------------------------------------- backfilled history


@dataclass
class History:
    """OpenMetrics text for `promtool tsdb create-blocks-from openmetrics` (samples in unix seconds)."""

    _families: dict[str, tuple[str, list[tuple[dict[str, str], list[tuple[float, float]]]]]] = field(
        default_factory=dict
    )

    def gauge(self, name: str, labels: Mapping[str, str], points: Iterable[tuple[float, float]]) -> None:
        self._add(name, "gauge", labels, points)

    def counter(self, name: str, labels: Mapping[str, str], points: Iterable[tuple[float, float]]) -> None:
        """`name` without `_total`; `points` are the cumulative counter values."""
        self._add(name, "counter", labels, points)

    def _add(
        self, name: str, kind: str, labels: Mapping[str, str], points: Iterable[tuple[float, float]]
    ) -> None:
        family = self._families.setdefault(name, (kind, []))
        if family[0] != kind:
            raise ValueError(f"{name} is already a {family[0]}, not a {kind}")
        family[1].append((dict(labels), sorted(points)))

    def render(self) -> str:
        lines: list[str] = []
        for name, (kind, members) in self._families.items():
            lines.append(f"# HELP {name} backfilled {name}")
            lines.append(f"# TYPE {name} {kind}")
            sample = f"{name}_total" if kind == "counter" else name
            for labels, points in members:
                body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
                prefix = f"{sample}{{{body}}}" if body else sample
                lines.extend(f"{prefix} {_num(v)} {ts:.3f}" for ts, v in points)
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


# ---------------------------------------------------------------- the server


class PrometheusNotInstalled(RuntimeError):
    pass


@dataclass
class PrometheusServer:
    """A real Prometheus on 127.0.0.1 for one test session (or module). Killed by PID on stop()."""

    exporter: FakeExporter | None = None
    history: History | None = None
    scrape_interval_s: float = 0.2
    retention: str = "90d"
    binary: str = "prometheus"
    promtool: str = "promtool"
    startup_timeout_s: float = 60.0
    port: int = 0
    _dir: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        return {"OPERATORD_PROMETHEUS_URL": self.url}

    def start(self) -> None:
        prometheus, promtool = shutil.which(self.binary), shutil.which(self.promtool)
        if prometheus is None or promtool is None:
            raise PrometheusNotInstalled(
                "prometheus/promtool not found on PATH; install Debian's package: "
                "apt-get install -y --no-install-recommends prometheus"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="operatord-prom-"))
        data = self._dir / "data"
        data.mkdir()
        if self.history is not None:
            source = self._dir / "history.om"
            source.write_text(self.history.render())
            done = subprocess.run(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"promtool backfill failed ({done.returncode}): {done.stderr[-2000:]}")
        if self.exporter is not None and self.exporter._server is None:
            self.exporter.start()
        config = self._dir / "prometheus.yml"
        config.write_text(self._config())
        self.port = self.port or free_port()
        self._log = (self._dir / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--storage.tsdb.retention.time={self.retention}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--query.lookback-delta=5m",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait(lambda: self._get("/-/ready") is not None, "ready")
            if self.exporter is not None:
                self._wait(self._scraped, "the first scrape")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Prometheus (by its PID) and remove its storage. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.exporter is not None:
            self.exporter.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query through plain HTTP (independent of the adapter under test)."""
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if body is None:
            raise RuntimeError(f"query failed: {promql}")
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result

    def wait_for(self, check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
        """Poll `check` until it holds (new exporter values land on the next scrape)."""
        self._wait(check, what, timeout_s)

    def wait_scraped(self, scrapes: int = 2) -> None:
        """Wait until `scrapes` more scrapes happened, so values set before the call are in Prometheus
        (and, with enough scrapes, a rate window is covered)."""
        first = self._scrape_count()
        self._wait(lambda: self._scrape_count() >= first + scrapes, f"{scrapes} more scrapes")

    def _scrape_count(self) -> float:
        rows = self.query(f'count_over_time(up{{job="{DEFAULT_JOB}-metrics"}}[1h])')
        return float(rows[0]["value"][1]) if rows else 0.0

    def _scraped(self) -> bool:
        rows = self.query(f'up{{job=~"{DEFAULT_JOB}-.*"}} == 1')
        return len(rows) == 2

    def _config(self) -> str:
        interval = f"{max(10, round(self.scrape_interval_s * 1000))}ms"
        jobs = []
        if self.exporter is not None:
            for path in ("/metrics", "/text"):
                jobs.append(
                    {
                        "job_name": f"{DEFAULT_JOB}-{path.strip('/')}",
                        "scrape_interval": interval,
                        "scrape_timeout": interval,
                        "metrics_path": path,
                        "static_configs": [{"targets": [self.exporter.address]}],
                    }
                )
        return json.dumps(
            {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": jobs}
        )

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:  # noqa: S310 (loopback only)
                data: bytes = resp.read()
                return data
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def _wait(self, check: Callable[[], bool], what: str, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.startup_timeout_s)
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {self._proc.returncode} waiting for {what}: {self._tail()}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.05)
        raise TimeoutError(
            f"prometheus at {self.url}: no {what} within {timeout_s or self.startup_timeout_s:g}s"
        )

    def _tail(self) -> str:
        if self._dir is None:
            return ""
        path = self._dir / "prometheus.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
