"""Testing: a moto EC2 server on 127.0.0.1 for the shared harness (design §1.6), with server-side
fault hooks for what moto cannot produce.

moto has no capacity, quota or throttling errors and ignores ClientToken (research §3.6). The
real CLI runs in a subprocess, so client-side `before-call` hooks cannot reach it; instead a WSGI
layer in front of moto answers chosen calls with a real EC2 error document (the same XML EC2
sends, so botocore raises the same ClientError), matching the action and, optionally, request
parameters:

    with Harness(MotoServer()) as h:
        aws = h.components[0]
        aws.fail("RunInstances", "InsufficientInstanceCapacity", status=500,
                 where={"SubnetId": subnet_a})           # ICE in one AZ, once
        h.cli("burst", "launch", "1", "--yes")          # falls back to the next AZ

`env()` gives AWS_ENDPOINT_URL, dummy credentials and the region, so boto3 in any process talks to
this server and nothing else. State lives in this process's moto backends; `reset()` wipes it.
"""

from __future__ import annotations

import io
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from operatord.testing.prometheus_server import free_port

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Fault:
    """Answer `times` matching calls of `action` with EC2 error `code` (HTTP `status`)."""

    action: str
    code: str
    status: int = 400
    times: int = 1
    where: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    hits: int = 0

    def matches(self, action: str, params: Mapping[str, str]) -> bool:
        if action != self.action or self.hits >= self.times:
            return False
        return all(params.get(k) == v for k, v in self.where.items())


@dataclass(frozen=True)
class SeenCall:
    action: str
    params: Mapping[str, str]
    fault: str | None  # the injected error code, or None when moto answered


class _FaultLayer:
    """WSGI middleware: inspect EC2 query-protocol calls, inject faults, log every call."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.faults: list[Fault] = []
        self.calls: list[SeenCall] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        query = environ.get("QUERY_STRING", "")
        params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace") or query).items()}
        action = params.get("Action", "")
        fault: Fault | None = None
        if action:
            with self.lock:
                fault = next((f for f in self.faults if f.matches(action, params)), None)
                if fault is not None:
                    fault.hits += 1
                self.calls.append(SeenCall(action, params, fault.code if fault else None))
        if fault is None:
            return self.app(environ, start_response)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{escape(fault.code)}</Code><Message>{escape(fault.message or 'injected by the harness')}</Message>"
            "</Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
        ).encode()
        reason = {
            400: "Bad Request",
            403: "Forbidden",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        start_response(
            f"{fault.status} {reason.get(fault.status, 'Error')}",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))],
        )
        return [xml]


class MotoServer:
    """Harness component (start/stop/env): moto on a free 127.0.0.1 port behind the fault layer."""

    def __init__(self, region: str = "us-east-1", port: int | None = None) -> None:
        self.region = region
        self.port = port or free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._layer: _FaultLayer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        self._layer = _FaultLayer(DomainDispatcherApplication(create_backend_app))

        class Quiet(MotoRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # every request is not news
                return

            def log(self, type: str, message: str, *args: Any) -> None:  # werkzeug's own request log
                return

        self._server = make_server("127.0.0.1", self.port, self._layer, threaded=True, request_handler=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        self.reset()

    def stop(self) -> None:
        if self._server is not None:
            self.reset()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "harness",
            "AWS_SECRET_ACCESS_KEY": "harness",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    # -- hooks and inspection ----------------------------------------------------------------------

    def fail(
        self,
        action: str,
        code: str,
        *,
        status: int = 400,
        times: int = 1,
        where: Mapping[str, str] | None = None,
        message: str = "",
    ) -> Fault:
        """Queue an injected error for the next `times` matching calls (matched in the order queued)."""
        fault = Fault(action, code, status, times, dict(where or {}), message)
        assert self._layer is not None, "start() first"
        with self._layer.lock:
            self._layer.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        assert self._layer is not None
        with self._layer.lock:
            self._layer.faults.clear()

    def calls(self, action: str | None = None) -> list[SeenCall]:
        assert self._layer is not None
        with self._layer.lock:
            return [c for c in self._layer.calls if action is None or c.action == action]

    def reset(self) -> None:
        """Wipe moto's state, the faults and the call log."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback: our own server)
            resp.read()
        if self._layer is not None:
            with self._layer.lock:
                self._layer.faults.clear()
                self._layer.calls.clear()

    def client(self, service: str = "ec2") -> Any:
        """A boto3 client on this server (for seeding VPCs, subnets, launch templates in tests)."""
        import boto3  # noqa: PLC0415

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id="harness",
            aws_secret_access_key="harness",  # noqa: S106 (a dummy for the local moto server)
        )
