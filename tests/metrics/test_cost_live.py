"""`operatord cost` through the shared harness, on a real Prometheus holding a backfilled 7-day history."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from operatord.testing.harness import Harness
from operatord.testing.prometheus_server import History, PrometheusServer

from .conftest import REPO, write_policy

STEP_S = 300  # the backfill's sample spacing: 5 minutes keeps 7 days at ~2 000 points a series
DAYS = 7
MODEL = "llama-underscore"


def generation_rate(t: float) -> float:
    """Generated tokens/s: a daily cycle between 200 and 1 800 (peak at 06:00 UTC)."""
    return 1000.0 + 800.0 * math.sin(2 * math.pi * t / 86_400)


def build_history(end: float) -> History:
    start = end - DAYS * 86_400
    times = [start + i * STEP_S for i in range(DAYS * 86_400 // STEP_S + 1)]
    hist = History()
    prompt, gen, done = 0.0, 0.0, 0.0
    prompt_pts, gen_pts, done_pts = [], [], []
    for t in times:  # counters integrate the rate over each 5-minute step
        g = generation_rate(t)
        gen += g * STEP_S
        prompt += 2 * g * STEP_S
        done += g / 200 * STEP_S
        gen_pts.append((t, gen))
        prompt_pts.append((t, prompt))
        done_pts.append((t, done))
    labels = {"model_name": MODEL, "job": "vllm", "instance": "vllm-0:8000"}
    hist.counter("vllm_generation_tokens", labels, gen_pts)
    hist.counter("vllm_prompt_tokens", labels, prompt_pts)
    hist.counter("vllm_request_success", {**labels, "finished_reason": "stop"}, done_pts)
    for node in ("gpu-a", "gpu-b"):
        for gpu in range(2):
            gl = {"Hostname": node, "gpu": str(gpu), "job": "dcgm", "instance": f"{node}:9400"}
            hist.gauge("DCGM_FI_DEV_GPU_UTIL", gl, [(t, 100 * generation_rate(t) / 2000) for t in times])
            hist.gauge("DCGM_FI_DEV_FB_USED", gl, [(t, 30_000.0) for t in times])
            hist.gauge("DCGM_FI_DEV_POWER_USAGE", gl, [(t, 250.0) for t in times])
    return hist


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    end = (time.time() // STEP_S) * STEP_S - STEP_S
    with Harness(PrometheusServer(history=build_history(end))) as h:
        yield h


PRICES = {
    "prices": [
        {
            "instance_type": "p4d.24xlarge",
            "kind": "on_demand",
            "usd_per_hour": 21.957642,
            "as_of": "2025-06-01",
        },
        {
            "instance_type": "p4d.24xlarge",
            "kind": "capacity_block",
            "usd_per_hour": 14.75,
            "as_of": "2024-12-01",
        },
    ]
}


def test_cost_over_backfilled_week(harness: Harness, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml", cost=PRICES)
    chart = tmp_path / "cost.png"
    done = harness.cli(
        "--policy", str(policy), "cost", "--window", "7d", "-o", "json", "--chart", str(chart), cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["schema_version"] == 1
    assert body["reachable"] is True
    assert body["queries"] == 6
    assert body["window"]["coverage"] > 0.95
    gen = body["load"]["generation_tokens_per_s"]
    assert gen["peak"] == pytest.approx(1800, rel=0.03)
    assert gen["p95"] == pytest.approx(1000 + 800 * math.sin(0.45 * math.pi), rel=0.03)
    assert gen["mean"] == pytest.approx(1000, rel=0.03)
    assert body["load"]["requests_per_s"]["peak"] == pytest.approx(9, rel=0.03)
    assert body["load"]["gpus_reporting"]["peak"] == 4
    assert body["load"]["gpu_active"]["mean"] == pytest.approx(0.5, rel=0.03)
    # demand = 0.2 × prompt + generation = 1.4 × generation; a replica serves 2 400 × 0.8 = 1 920 t/s
    # peak 2 520 t/s → 2 replicas × 8 GPUs; the five quiet policy models hold min_replicas (1 × 8 GPUs each)
    assert body["gpus_needed"]["peak"] == 16 + 5 * 8
    names = {s["name"] for s in body["scenarios"]}
    assert names == {
        "local_current_fleet",
        "local_sized_for_peak",
        "burst_only_on_demand_p4d.24xlarge",
        "local_p95_plus_burst_on_demand_p4d.24xlarge",
        "committed_capacity_block_p4d.24xlarge",
    }
    for scenario in body["scenarios"]:
        assert scenario["usd"] > 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert body["chart"] == str(chart)


def test_cost_table(harness: Harness, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml")
    done = harness.cli("--policy", str(policy), "cost", "--window", "7d", cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "GPUs needed" in done.stdout
    assert "local_sized_for_peak" in done.stdout


def test_cost_bad_window_is_a_usage_error(harness: Harness, tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml")
    done = harness.cli("--policy", str(policy), "cost", "--window", "a week", cwd=REPO)
    assert done.returncode == 2
    assert "--window" in done.stderr
    assert "Traceback" not in done.stderr


def test_cost_unreachable_exits_3(tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml")
    with Harness() as h:
        done = h.cli(
            "--policy",
            str(policy),
            "cost",
            "--window",
            "1d",
            "-o",
            "json",
            cwd=REPO,
            env={"OPERATORD_PROMETHEUS_URL": "http://127.0.0.1:1"},
        )
    assert done.returncode == 3
    body = json.loads(done.stdout)
    assert body["reachable"] is False
    assert body["unknown"][0]["reason"] == "unreachable"
    assert body["scenarios"] == []
