"""The real `operatord` CLI (subprocess) against the harness: exit codes, JSON output, --dry-run writes nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from operatord.core.history import decode_history
from operatord.testing import kubeobjects as k
from operatord.testing.builders import a_finding
from operatord.testing.harness import Harness, write_kubeconfig
from operatord.vocab import ANNOTATION_CORDONED_BY, ANNOTATION_HISTORY

from .conftest import ROOT


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    raw["mode"] = "full"
    raw["faults"]["rules"] = [str(ROOT / "policies" / "faults" / "*.yaml")]
    raw["remediation"]["drain"]["eviction_retry"] = "100ms"
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def h() -> Iterator[Harness]:
    with Harness() as harness:
        harness.seed([k.node(f"gpu-{i}") for i in range(10)])
        harness.seed(
            [
                k.pod(f"vllm-{i}", node=f"gpu-{i}", namespace="llm", gpus=8, labels={"app": "vllm"})
                for i in range(10)
            ]
        )
        harness.seed([k.pod("dcgm-5", node="gpu-5", namespace="ops", owner="DaemonSet")])
        yield harness


def run(h: Harness, policy: Path, *args: str, stdin: str | None = None) -> Any:
    return h.cli("--policy", str(policy), *args, input=stdin)


def out_json(result: Any) -> dict[str, Any]:
    assert result.stdout, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    assert body["schema_version"] == 1
    return body


def fatal_on(h: Harness, name: str) -> None:
    now = datetime.now(UTC)
    h.kube.update(k.node(name, findings=[a_finding(first=now, last=now).to_json()]))


def test_status_json_shows_nodes_faults_and_guards(h: Harness, policy_file: Path) -> None:
    fatal_on(h, "gpu-3")
    result = run(h, policy_file, "status", "-o", "json")
    assert result.returncode == 0, result.stderr
    body = out_json(result)
    nodes = {n["name"]: n for n in body["nodes"]}
    assert nodes["gpu-3"]["faults"][0]["class"] == "gpu_fallen_off_bus"
    assert nodes["gpu-3"]["health"] == "healthy"
    assert body["guards"]["paused"] is False
    assert body["guards"]["breaker"]["open"] is False
    assert body["policy"]["source"] == str(policy_file)
    assert [p["name"] for p in body["pools"]] == ["local-a100", "burst-p4d"]
    table = run(h, policy_file, "status")
    assert table.returncode == 0
    assert "gpu_fallen_off_bus!" in table.stdout


def test_plan_names_the_reason_and_writes_nothing(h: Harness, policy_file: Path) -> None:
    fatal_on(h, "gpu-3")
    before = h.kube.resource_version
    result = run(h, policy_file, "plan", "-o", "json")
    assert result.returncode == 0, result.stderr
    body = out_json(result)
    assert [(a["kind"], a["node"], a["reason"]) for a in body["actions"]] == [
        ("cordon", "gpu-3", "gpu_fallen_off_bus")
    ]
    assert h.kube.resource_version == before


def test_explain_unknown_node_is_a_usage_error(h: Harness, policy_file: Path) -> None:
    result = run(h, policy_file, "explain", "nope")
    assert result.returncode == 2
    assert "no node named 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_drain_dry_run_writes_nothing(h: Harness, policy_file: Path) -> None:
    before = h.kube.resource_version
    result = run(h, policy_file, "drain", "gpu-5", "--reason", "fan", "--dry-run", "-o", "json")
    assert result.returncode == 0, result.stderr
    body = out_json(result)
    assert [a["kind"] for a in body["actions"]] == ["cordon", "drain"]
    assert body["dry_run"] is True
    assert h.kube.resource_version == before
    assert h.kube.list("Event") == []


def test_drain_declined_at_the_prompt_changes_nothing(h: Harness, policy_file: Path) -> None:
    before = h.kube.resource_version
    result = run(h, policy_file, "drain", "gpu-5", "--reason", "fan", stdin="n\n")
    assert result.returncode == 2
    assert "declined" in result.stderr
    assert h.kube.resource_version == before


def test_drain_cordons_as_the_human_and_evicts(h: Harness, policy_file: Path) -> None:
    result = run(h, policy_file, "drain", "gpu-5", "--reason", "fan noise", "--yes", "-o", "json")
    assert result.returncode == 0, result.stderr
    body = out_json(result)
    assert [(o["kind"], o["status"]) for o in body["outcomes"]] == [
        ("cordon", "applied"),
        ("drain", "applied"),
    ]
    node = h.kube.get("Node", "gpu-5")
    assert node is not None
    assert node["spec"]["unschedulable"] is True
    assert node["metadata"]["annotations"][ANNOTATION_CORDONED_BY].startswith("human:")
    assert [p["metadata"]["name"] for p in h.kube.list("Pod") if p["spec"].get("nodeName") == "gpu-5"] == [
        "dcgm-5"
    ]
    history = decode_history(node["metadata"]["annotations"][ANNOTATION_HISTORY])
    assert [e.event for e in history.entries] == ["cordoned", "drain_started", "drain_completed"]
    assert history.entries[0].note == "fan noise"
    assert {e["reason"] for e in h.kube.list("Event", "default")} == {"manual_drain"}


def test_drain_refused_while_paused_unless_forced(h: Harness, policy_file: Path) -> None:
    assert run(h, policy_file, "pause", "--reason", "driver rollout").returncode == 0
    refused = run(h, policy_file, "drain", "gpu-5", "--reason", "x", "--yes")
    assert refused.returncode == 1
    assert "paused" in refused.stderr
    assert not h.kube.get("Node", "gpu-5")["spec"].get("unschedulable")  # type: ignore[index]
    forced = run(h, policy_file, "drain", "gpu-5", "--reason", "x", "--yes", "--force")
    assert forced.returncode == 0, forced.stderr


def test_drain_blocked_by_pdb_times_out_with_exit_1(h: Harness, policy_file: Path) -> None:
    h.kube.create(k.pdb("vllm", match_labels={"app": "vllm"}, namespace="llm", min_available=10))
    result = run(h, policy_file, "drain", "gpu-5", "--reason", "x", "--yes", "--timeout", "1s", "-o", "json")
    assert result.returncode == 1
    body = out_json(result)
    drain = body["outcomes"][1]
    assert (drain["status"], drain["reason"]) == ("failed", "drain_timeout")
    assert list(drain["detail"]["blocked"]) == ["llm/vllm-5"]


def test_drain_bad_timeout_is_a_usage_error(h: Harness, policy_file: Path) -> None:
    result = run(h, policy_file, "drain", "gpu-5", "--reason", "x", "--timeout", "soon")
    assert result.returncode == 2
    assert "--timeout" in result.stderr


def test_uncordon_records_the_human_and_acknowledges(h: Harness, policy_file: Path) -> None:
    fatal_on(h, "gpu-3")
    h.kube.update({**h.kube.get("Node", "gpu-3"), "spec": {"unschedulable": True}})  # type: ignore[dict-item]
    result = run(h, policy_file, "uncordon", "gpu-3", "--yes", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert out_json(result)["changed"] is True
    node = h.kube.get("Node", "gpu-3")
    assert node is not None
    assert not node["spec"].get("unschedulable")
    (entry,) = decode_history(node["metadata"]["annotations"][ANNOTATION_HISTORY]).entries
    assert entry.event == "human_uncordoned"
    assert entry.ack_before is not None
    plan = out_json(run(h, policy_file, "plan", "-o", "json"))
    assert plan["actions"] == []  # the acknowledged finding does not re-cordon it


def test_pause_resume_and_breaker_state_round_trip(h: Harness, policy_file: Path) -> None:
    assert run(h, policy_file, "pause", "--reason", "incident 42").returncode == 0
    status = out_json(run(h, policy_file, "status", "-o", "json"))
    assert status["guards"]["pause"]["reason"] == "incident 42"
    assert out_json(run(h, policy_file, "resume", "-o", "json"))["guards"]["paused"] is False
    reset = out_json(
        run(h, policy_file, "breaker", "reset", "--reason", "checked", "--skip-backlog", "-o", "json")
    )
    assert reset["guards"]["breaker"]["ignore_findings_before"] is not None
    breaker = out_json(run(h, policy_file, "breaker", "status", "-o", "json"))
    assert breaker["breaker"]["open"] is False
    assert breaker["limit"] == 5


def test_pause_dry_run_writes_nothing(h: Harness, policy_file: Path) -> None:
    result = run(h, policy_file, "pause", "--reason", "x", "--dry-run")
    assert result.returncode == 0
    assert h.kube.get("ConfigMap", "operatord-state", "operatord") is None


def test_policy_from_the_live_configmap(h: Harness) -> None:
    text = (ROOT / "policies" / "default.yaml").read_text()
    h.kube.create(k.configmap("operatord-policy", {"policy.yaml": text}))
    result = h.cli("status", "-o", "json", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert out_json(result)["policy"]["source"] == "configmap/operatord/operatord-policy[policy.yaml]"


def test_unreachable_api_exits_3_without_traceback(policy_file: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    with Harness() as harness:
        result = harness.cli(
            "--policy", str(policy_file), "status", "-o", "json", env={"KUBECONFIG": str(kubeconfig)}
        )
    assert result.returncode == 3
    assert "unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    body = out_json(result)
    assert body["nodes"] == []
    assert body["unknown"][0]["source"] == "kubernetes"
