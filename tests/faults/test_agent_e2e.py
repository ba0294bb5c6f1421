"""End to end: the real `operatord agent` process against the harness's Kubernetes API stand-in,
reading a kernel log and a pod-log folder that grow while it runs, stopped and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from operatord.testing import kubeobjects as k
from operatord.testing.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
NODE = "gpu-a17"


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def xid79() -> str:
    return f"{stamp()} {NODE} kernel: NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n"


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def wait_for(what: str, check: Callable[[], Any], proc: subprocess.Popen[bytes], timeout: float = 60) -> Any:
    """Poll until `check()` is truthy; fail with the agent's stderr if it dies or never gets there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(
                f"agent exited ({proc.returncode}) before {what}: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def h() -> Iterator[Harness]:
    with Harness() as harness:
        harness.seed([k.node(NODE)])
        yield harness


def start_agent(h: Harness, log: Path, pods: Path, state: Path) -> subprocess.Popen[bytes]:
    drop = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
    env = {k_: v for k_, v in os.environ.items() if k_ not in drop and not k_.startswith("OPERATORD_")}
    env.update(h.env())
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "operatord",
            "--policy",
            str(ROOT / "policies" / "default.yaml"),
            "--log-format",
            "json",
            "agent",
            "--node-name",
            NODE,
            "--source",
            f"file:{log}",
            "--source",
            f"pods:{pods}",
            "--state-dir",
            str(state),
            "--interval",
            "0.1",
            "--no-probe",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return err.decode()


def node(h: Harness) -> dict[str, Any]:
    obj = h.kube.get("Node", NODE)
    assert obj is not None
    return obj


def condition(h: Harness, type_: str) -> tuple[str, str] | None:
    for c in node(h).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c["status"], c.get("reason", "")
    return None


def findings(h: Harness) -> dict[str, dict[str, Any]]:
    raw = node(h)["metadata"].get("annotations", {}).get("operatord.io/findings", "[]")
    return {f["rule"]: f for f in json.loads(raw)}


def event_reasons(h: Harness) -> list[str]:
    return sorted(e["reason"] for e in h.kube.list("Event", "default") if e["involvedObject"]["name"] == NODE)


def test_agent_publishes_a_growing_log_and_resumes_after_restart(h: Harness, tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_text(f"{stamp()} {NODE} kernel: Linux version 6.8.0\n")
    container = tmp_path / "pods" / "llm_vllm-0_uid1" / "vllm"
    container.mkdir(parents=True)
    (container / "0.log").write_text("")
    state = tmp_path / "state"

    agent = start_agent(h, log, tmp_path / "pods", state)
    wait_for("the agent to report in", lambda: condition(h, "GPUHealthy") == ("True", "NoNodeFault"), agent)

    # the log grows while the agent runs
    append(
        log,
        f"{stamp()} {NODE} kernel: NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.148.06  Wed May 14 2025\n",
    )
    append(log, xid79() * 3)
    append(
        container / "0.log",
        f"{datetime.now(UTC).isoformat()} stderr F torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
        "GPU 1 has a total capacity of 21.98 GiB\n"
        f"{datetime.now(UTC).isoformat()} stdout F gpu-a17:1:2 [0] NCCL INFO NCCL version 2.21.5+cuda12.4\n",
    )
    wait_for("GPUHealthy=False", lambda: condition(h, "GPUHealthy") == ("False", "GpuFallenOffBus"), agent)
    wait_for("the OOM finding", lambda: "cuda-oom" in findings(h), agent)
    wait_for("the xid count", lambda: findings(h)["xid-79"]["count"] == 3, agent)
    stack = wait_for(
        "the stack annotation",
        lambda: (s := node(h)["metadata"]["annotations"].get("operatord.io/stack")) and "nccl" in s and s,
        agent,
    )
    assert json.loads(stack) == {"cuda": "12.4", "driver": "570.148.06", "nccl": "2.21.5"}
    assert findings(h)["cuda-oom"]["node_fault"] is False
    assert condition(h, "NCCLHealthy") == ("True", "NoNodeFault")
    wait_for("the events", lambda: event_reasons(h) == ["cuda_oom", "gpu_fallen_off_bus"], agent)
    stop(agent)
    assert (state / "agent-cursor.json").is_file()

    # while it is down: the same burst goes on, and a new fault appears
    append(log, xid79() * 2)
    append(log, f"{stamp()} {NODE} kernel: mlx5_core 0000:08:00.0 mlx5_0: Port: 1 Link DOWN\n")

    agent = start_agent(h, log, tmp_path / "pods", state)
    wait_for("NCCLHealthy=False", lambda: condition(h, "NCCLHealthy") == ("False", "IbLinkDown"), agent)
    wait_for("the folded count", lambda: findings(h)["xid-79"]["count"] == 5, agent)
    time.sleep(0.5)  # a few more polls: nothing may be read twice
    stop(agent)
    final = findings(h)
    assert final["xid-79"]["count"] == 5  # neither repeated nor lost across the restart
    assert final["cuda-oom"]["count"] == 1
    assert event_reasons(h) == ["cuda_oom", "gpu_fallen_off_bus", "ib_link_down"]


def test_agent_exit_codes_for_user_mistakes(h: Harness, tmp_path: Path) -> None:
    r = h.cli(
        "--policy",
        str(ROOT / "policies" / "default.yaml"),
        "agent",
        "--node-name",
        "nope",
        "--source",
        f"file:{tmp_path / 'x.log'}",
        "--state-dir",
        str(tmp_path),
        "--once",
        "--no-probe",
    )
    assert r.returncode == 2
    assert "node 'nope' not found" in r.stderr
    r = h.cli(
        "--policy",
        str(ROOT / "policies" / "default.yaml"),
        "agent",
        "--node-name",
        NODE,
        "--source",
        "bogus:thing",
        "--once",
    )
    assert r.returncode == 2
    assert "expected kmsg, journald, file:PATH or pods:DIR" in r.stderr
    r = h.cli(
        "--policy",
        str(ROOT / "policies" / "default.yaml"),
        "agent",
        "--node-name",
        NODE,
        "--source",
        f"pods:{tmp_path / 'missing'}",
        "--state-dir",
        str(tmp_path),
        "--once",
        "--no-probe",
    )
    assert r.returncode == 2
    assert "not a directory" in r.stderr


def test_agent_unreachable_api_exits_3(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    from operatord.testing.harness import write_kubeconfig

    write_kubeconfig(kubeconfig, "http://127.0.0.1:9")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "operatord",
            "--policy",
            str(ROOT / "policies" / "default.yaml"),
            "agent",
            "--node-name",
            NODE,
            "--source",
            f"file:{tmp_path / 'x.log'}",
            "--state-dir",
            str(tmp_path),
            "--once",
            "--no-probe",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
