"""`operatord run` as a process against the shared harness (Kubernetes stand-in, moto server, real
Prometheus scraping a fake vLLM exporter): it becomes leader, acts, serves /metrics, /healthz and
/readyz, and on SIGTERM finishes, releases its Lease and exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from operatord.testing import kubeobjects as k
from operatord.testing.builders import a_finding
from operatord.testing.harness import Harness, _clean_environ
from operatord.testing.moto_server import MotoServer, free_port
from operatord.testing.prometheus_server import FakeExporter, PrometheusServer
from operatord.vocab import ANNOTATION_CORDONED_BY

from .conftest import MODEL, PER_REPLICA, policy_doc

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, check: Callable[[], Any], proc: subprocess.Popen[str], limit_s: float = 60) -> Any:
    """Poll until `check()` is truthy; fail with the daemon's stderr if it exits or never gets there."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"operatord run exited ({proc.returncode}) while waiting for {what}")
        value = check()
        if value:
            return value
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"gave up waiting for {what}; stderr:\n{proc.communicate()[1][-4000:]}")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def metric(text: str, line_start: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_run_leads_acts_serves_metrics_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    exporter = FakeExporter()
    exporter.vllm_model(MODEL, generation_tokens_per_s=1.5 * PER_REPLICA, requests_per_s=3)
    aws = MotoServer()
    with Harness(PrometheusServer(exporter=exporter, scrape_interval_s=0.2), aws) as h:
        ec2 = aws.client()
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1a")
        doc = policy_doc(subnets=[{"id": subnet["Subnet"]["SubnetId"], "availability_zone": "us-east-1a"}])
        doc["faults"] = {"rules": [str(ROOT / "policies/faults/*.yaml")]}
        doc["metrics"] = {"rate_window": "2s", "query_timeout": "5s"}  # a rate after a few scrapes
        policy = tmp_path / "policy.yaml"
        policy.write_text(yaml.safe_dump(doc))
        now = datetime.now(UTC)
        h.seed([k.node(f"gpu-{i:02d}") for i in range(3)])
        h.seed([k.node("gpu-03", findings=[a_finding(first=now, last=now).to_json()])])
        h.seed([k.workload("vllm-70b", replicas=2)])

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**_clean_environ(), **h.env(), "OPERATORD_LOG_FORMAT": "json"}
        args = ["--policy", str(policy), "run", "--tick", "1", "--lease-duration", "3"]
        args += ["--listen", f"127.0.0.1:{port}", "--identity", "e2e-0"]
        log_path = tmp_path / "operatord.log"
        log_file = log_path.open("w")  # a file, not a pipe: a full pipe would block the daemon's logging
        proc = subprocess.Popen(
            [sys.executable, "-m", "operatord", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )

        def events() -> list[dict[str, Any]]:
            lines = log_path.read_text().splitlines()
            return [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]

        try:
            wait_for("/readyz", lambda: get(base + "/readyz")[0] == 200, proc)
            assert get(base + "/healthz")[0] == 200

            def cordoned() -> bool:
                node = h.kube.get("Node", "gpu-03")
                return node["metadata"]["annotations"].get(ANNOTATION_CORDONED_BY) == "operatord"

            wait_for("the faulty node cordoned", cordoned, proc)
            lease = h.kube.get("Lease", "operatord-leader", "operatord")
            assert lease["spec"]["holderIdentity"] == "e2e-0"

            def scraped() -> str | None:
                _, text = get(base + "/metrics")
                ok = metric(text, 'operatord_ticks_total{outcome="ok"}')
                return text if ok and ok >= 2 else None

            text = wait_for("two finished ticks on /metrics", scraped, proc)
            assert metric(text, "operatord_leader") == 1.0
            assert metric(text, 'operatord_actions_total{kind="cordon",outcome="applied"}') == 1.0
            assert metric(text, 'operatord_data_stale{source="prometheus"}') == 0.0
            assert metric(text, 'operatord_burst_cap_usd{period="hour"}') == 120.0
            assert get(base + "/nope")[0] == 404

            # Prometheus is read for real: once its rate window is covered, the plan knows the demand.
            def demand_known() -> bool:
                return any(e.get("demand_gpus") == 16.0 for e in events() if e["event"] == "plan.computed")

            wait_for("a plan with the demand from Prometheus", demand_known, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()
        stderr = log_path.read_text()
        assert proc.returncode == 0, stderr[-4000:]
        assert "Traceback" not in stderr
        names = [e["event"] for e in events()]
        assert names.index("daemon.stopping") < names.index("leader.released") < names.index("daemon.stopped")
        ticks = [e for e in events() if e["event"] == "tick.finished"]
        assert all(e.get("tick_id") and e.get("policy_rev") and e.get("mode") == "full" for e in ticks)
        assert h.kube.get("Lease", "operatord-leader", "operatord")["spec"].get("holderIdentity") in (
            None,
            "",
        )
