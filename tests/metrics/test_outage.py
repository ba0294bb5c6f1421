"""Outages are values: a stopped, hanging or failing Prometheus gives an unknown snapshot, never an exception."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from operatord.adapters.prometheus import PromMetrics, snapshot_queries
from operatord.core.metrics import Unknown, UnknownReason, metrics_gate
from operatord.policies.model import DemandWeights
from operatord.testing.prometheus_server import PrometheusServer
from operatord.vocab import Reason

from .conftest import POLICY_MODELS, metrics_policy
from .test_metrics_cli import run

WEIGHTS = DemandWeights()


def test_empty_prometheus_then_stopped_mid_test(policy_file: Path) -> None:
    policy = metrics_policy()
    prom = PrometheusServer()  # nothing to scrape: ready in well under a second
    prom.start()
    try:
        source = PromMetrics(prom.url, policy, models=POLICY_MODELS)
        empty = source.snapshot(datetime.now(UTC))
        # Reachable, but every vector is empty: no nodes, every model missing (not zero).
        assert empty.reachable
        assert empty.nodes == {}
        assert all(
            isinstance(r, Unknown) and r.reason is UnknownReason.MISSING
            for r in empty.model("llama-underscore").readings().values()
        )
        done = run(
            "--policy", str(policy_file), "metrics", "-o", "json", env={"OPERATORD_PROMETHEUS_URL": prom.url}
        )
        assert done.returncode == 0, done.stderr
    finally:
        prom.stop()

    down = source.snapshot(datetime.now(UTC))
    assert not down.reachable
    assert down.outage is not None
    assert down.outage.reason is UnknownReason.UNREACHABLE
    assert down.queries == 1  # the first failure ends the snapshot: no 18 timeouts in a row
    assert [g.what for g in down.gaps()] == ["prometheus"]
    m = down.model("llama-underscore")
    assert all(
        isinstance(r, Unknown) and r.reason is UnknownReason.UNREACHABLE for r in m.readings().values()
    )
    gate = metrics_gate(down, "llama-underscore", WEIGHTS, down.observed_at, timedelta(minutes=1))
    assert (gate.metric_driven, gate.scale_in, gate.reason) == (False, False, Reason.METRICS_UNKNOWN)

    done = run(
        "--policy", str(policy_file), "metrics", "-o", "json", env={"OPERATORD_PROMETHEUS_URL": prom.url}
    )
    assert done.returncode == 3, done.stderr
    body = json.loads(done.stdout)
    assert body["reachable"] is False
    assert body["nodes"] == {}
    assert body["unknown"][0]["what"] == "prometheus"
    assert body["unknown"][0]["reason"] == "unreachable"
    assert all(v is None for v in body["models"]["llama-underscore"].values())
    assert "Traceback" not in done.stderr

    table = run("--policy", str(policy_file), "metrics", env={"OPERATORD_PROMETHEUS_URL": prom.url})
    assert table.returncode == 3
    assert "NOT REACHABLE" in table.stdout


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung Prometheus)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def test_timeout_is_an_outage(silent_port: int) -> None:
    source = PromMetrics(
        f"http://127.0.0.1:{silent_port}", metrics_policy(query_timeout="300ms"), models=["m"]
    )
    s = source.snapshot(datetime.now(UTC))
    assert s.outage is not None
    assert s.outage.reason is UnknownReason.TIMEOUT
    assert s.queries == 1
    assert isinstance(s.model("m").requests_waiting, Unknown)


@pytest.fixture
def canned() -> Iterator[Callable[[int], str]]:
    """Start servers answering every request with one HTTP status and a Prometheus error body."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"error","errorType":"bad_data","error":"parse error"}')

            def log_message(self, format: str, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_rejected_queries_are_gaps_per_signal(canned: Callable[[int], str]) -> None:
    policy = metrics_policy()
    s = PromMetrics(canned(400), policy).snapshot(datetime.now(UTC))
    assert s.reachable  # the server answered; each query was refused on its own
    assert s.queries == len(snapshot_queries(policy))
    gaps = s.gaps()
    assert len(gaps) == len(snapshot_queries(policy))
    assert {g.reason for g in gaps} == {UnknownReason.QUERY_ERROR}


@pytest.mark.parametrize("status", [500, 503], ids=["internal-error", "unavailable"])
def test_server_errors_are_outages(canned: Callable[[int], str], status: int) -> None:
    s = PromMetrics(canned(status), metrics_policy()).snapshot(datetime.now(UTC))
    assert s.outage is not None
    assert s.outage.reason is UnknownReason.UNREACHABLE
    assert s.queries == 1
