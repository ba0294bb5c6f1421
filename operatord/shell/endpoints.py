"""Shell. The daemon's HTTP endpoints: /metrics (operatord's own series), /healthz, /readyz.

Every replica serves them, leader or not (the chart's probes and ServiceMonitor use port
`http-metrics`, 9102). /healthz answers 500 when the loop is wedged (no tick finished for far
longer than the tick interval), so the kubelet restarts the pod; /readyz answers 503 until a tick
has read the cluster, and again while the API cannot be read. The server runs on its own daemon
threads and never blocks the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = structlog.get_logger("operatord.http")

Check = Callable[[], tuple[bool, str]]


class Endpoints:
    """A running endpoint server; `port` is the bound port (useful with port 0), `close()` stops it."""

    def __init__(
        self, registry: CollectorRegistry, healthz: Check, readyz: Check, host: str, port: int
    ) -> None:
        handler = _handler(registry, healthz, readyz)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[0], int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)
        self._thread.start()
        log.info("http.listening", host=self.host, port=self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(registry: CollectorRegistry, healthz: Check, readyz: Check) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok, why = (healthz if path == "/healthz" else readyz)()
                code = 200 if ok else (500 if path == "/healthz" else 503)
                self._send(code, (why + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found: /metrics, /healthz, /readyz\n", "text/plain; charset=utf-8")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # the http.server API
            return  # scrapes and probes every few seconds would drown the log

    return Handler


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `PORT`; raises ValueError with the reason."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT, :PORT or PORT")
    return host or "0.0.0.0", int(port)  # noqa: S104  (the pod's metrics port must be reachable)
