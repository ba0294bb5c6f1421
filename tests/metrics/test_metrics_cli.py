"""`operatord metrics`, the real CLI in a subprocess, against the session's real Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, Live

NODE_KEYS = {
    "gpu_active",
    "gpu_active_source",
    "vram_used_fraction",
    "xid_last",
    "row_remap_failure",
    "temperature_c",
    "power_w",
    "gpus",
}
MODEL_KEYS = {
    "requests_waiting",
    "requests_running",
    "kv_cache_usage",
    "kv_cache_source",
    "prompt_tokens_per_s",
    "generation_tokens_per_s",
    "demand_tokens_per_s",
    "requests_per_s",
    "success_ratio",
    "ttft_p99_s",
    "e2e_p99_s",
}


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPERATORD_")}
    return subprocess.run(
        [sys.executable, "-m", "operatord", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_json_shape(live: Live, policy_file: Path) -> None:
    done = run(
        "--policy", str(policy_file), "metrics", "-o", "json", env={"OPERATORD_PROMETHEUS_URL": live.url}
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["schema_version"] == 1
    assert body["prometheus_url"] == live.url
    assert body["reachable"] is True
    assert isinstance(body["queries"], int)
    assert body["queries"] > 0
    assert body["policy"]["source"] == str(policy_file)
    assert len(body["policy"]["revision"]) == 12
    upper = body["nodes"]["gpu-upper"]
    assert set(upper) == NODE_KEYS
    assert upper["gpu_active"] == 0.6
    assert upper["xid_last"] == 0
    assert upper["row_remap_failure"] is False
    assert upper["gpus"] == 8
    assert upper["vram_used_fraction"] == 0.95
    assert body["nodes"]["gpu-lower"]["xid_last"] == 79
    assert body["nodes"]["gpu-lower"]["row_remap_failure"] is True
    llama = body["models"]["llama-underscore"]
    assert set(llama) == MODEL_KEYS
    assert llama["requests_waiting"] == 4
    assert llama["kv_cache_usage"] == 0.42
    assert abs(llama["demand_tokens_per_s"] - (0.2 * 300 + 120)) < 0.05 * 180
    # unknown values are null, with the reason listed
    assert body["nodes"]["gpu-nan"]["gpu_active"] is None
    assert body["models"]["absent-model"]["requests_waiting"] is None
    reasons = {g["what"]: g["reason"] for g in body["unknown"]}
    assert reasons["nodes.gpu-nan.gpu_active"] == "nan"
    assert reasons["nodes.gpu-stale.gpus"] == "stale"
    assert reasons["models.absent-model.requests_waiting"] == "missing"
    assert all(set(g) == {"what", "reason", "detail"} for g in body["unknown"])


def test_command_url_overrides_environment(live: Live, policy_file: Path) -> None:
    done = run(
        "--policy",
        str(policy_file),
        "metrics",
        "--prometheus-url",
        live.url,
        "-o",
        "json",
        env={"OPERATORD_PROMETHEUS_URL": "http://127.0.0.1:1"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prometheus_url"] == live.url


def test_table_output(live: Live, policy_file: Path) -> None:
    done = run("--policy", str(policy_file), "metrics", env={"OPERATORD_PROMETHEUS_URL": live.url})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"prometheus {live.url} (reachable,")
    assert any(line.split()[:2] == ["gpu-lower", "4"] and "79" in line.split() for line in lines)
    assert any(line.startswith("llama-underscore ") for line in lines)
    assert any(line.startswith("  nodes.gpu-stale.gpus: stale") for line in lines)


def test_without_any_url_is_a_usage_error(tmp_path: Path, policy_file: Path) -> None:
    done = run("--policy", str(policy_file), "metrics", cwd=tmp_path)
    assert done.returncode == 2
    assert "no Prometheus URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_url_is_a_usage_error(policy_file: Path) -> None:
    done = run("--policy", str(policy_file), "metrics", "--prometheus-url", "prometheus:9090")
    assert done.returncode == 2
    assert "http://" in done.stderr


def test_help_states_exit_codes() -> None:
    done = run("metrics", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # help text is wrapped to the terminal width
    assert "Exit codes: 0" in text
    assert "3 Prometheus could not be reached" in text
