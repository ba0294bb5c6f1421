"""`operatord faults scan|rules` through the real console script: formats and exit codes (design §1.2/§1.3)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
XID79 = (
    "2026-01-01T10:00:00+0000 gpu-a17 kernel: NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus.\n"
)
OOM = "2026-01-01T10:00:05Z stderr F torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 has a total capacity of 21.98 GiB\n"
FINDING_KEYS = {
    "node",
    "source",
    "line",
    "time",
    "class",
    "node_fault",
    "severity",
    "action",
    "xid",
    "gpu",
    "peer",
    "rule",
    "count",
    "first_seen",
    "last_seen",
    "text",
}


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "operatord", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, "OPERATORD_POLICY": str(ROOT / "policies" / "default.yaml")},
    )


@pytest.fixture
def logs(tmp_path: Path) -> dict[str, Path]:
    kern = tmp_path / "kern.log"
    kern.write_text("boot\n" + XID79 * 3)
    app = tmp_path / "app.log.gz"
    app.write_bytes(gzip.compress(OOM.encode()))
    clean = tmp_path / "clean.log"
    clean.write_text("NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.148.06  Wed May 14 2025\n")
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    return {"kern": kern, "app": app, "clean": clean, "empty": empty}


def test_jsonl_lines_are_design_findings_and_node_fault_exits_1(logs: dict[str, Path]) -> None:
    r = run("faults", "scan", "-o", "jsonl", str(logs["kern"]), str(logs["app"]))
    assert r.returncode == 1, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert all(set(row) == FINDING_KEYS for row in rows)
    by_rule = {row["rule"]: row for row in rows}
    assert by_rule["xid-79"] | {"text": ""} == {
        "node": "gpu-a17",
        "source": str(logs["kern"]),
        "line": 2,
        "time": "2026-01-01T10:00:00+00:00",
        "class": "gpu_fallen_off_bus",
        "node_fault": True,
        "severity": "fatal",
        "action": "reboot",
        "xid": 79,
        "gpu": "0000:91:00.0",
        "peer": None,
        "rule": "xid-79",
        "count": 3,
        "first_seen": "2026-01-01T10:00:00+00:00",
        "last_seen": "2026-01-01T10:00:00+00:00",
        "text": "",
    }
    assert by_rule["cuda-oom"]["node_fault"] is False
    assert by_rule["cuda-oom"]["gpu"] == "1"


def test_app_faults_only_exit_0(logs: dict[str, Path]) -> None:
    r = run("faults", "scan", str(logs["app"]), str(logs["clean"]), str(logs["empty"]))
    assert r.returncode == 0, r.stderr
    assert b"cuda_oom" in r.stdout


def test_json_object_has_schema_version_inputs_and_versions(logs: dict[str, Path]) -> None:
    r = run("faults", "scan", "-o", "json", str(logs["clean"]), str(logs["kern"]))
    body = json.loads(r.stdout)
    assert body["schema_version"] == 1
    assert body["node_fault"] is True
    assert body["inputs"][0]["versions"] == {"driver": "570.148.06"}
    assert {"findings", "fleet_events", "escalations", "suspect_peers", "errors", "policy"} <= set(body)


def test_stdin(logs: dict[str, Path]) -> None:
    r = run("faults", "scan", "-o", "jsonl", "-", stdin=logs["kern"].read_bytes())
    assert r.returncode == 1
    assert json.loads(r.stdout)["source"] == "-"


def test_unreadable_input_exits_2_but_scans_the_rest(logs: dict[str, Path], tmp_path: Path) -> None:
    r = run("faults", "scan", "-o", "jsonl", str(tmp_path / "missing.log"), str(logs["kern"]), str(tmp_path))
    assert r.returncode == 2
    assert b"missing.log: no such file" in r.stderr
    assert b"is a directory" in r.stderr
    assert b"Traceback" not in r.stderr
    assert json.loads(r.stdout.splitlines()[0])["rule"] == "xid-79"


def test_corrupt_gzip_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(XID79.encode() * 50)[:-20])
    r = run("faults", "scan", str(bad))
    assert r.returncode == 2
    assert b"truncated gzip" in r.stderr
    assert b"Traceback" not in r.stderr


def test_fleet_event_across_files(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        p = tmp_path / f"n{i}.log"
        p.write_text(
            f"2026-01-01T10:0{i}:00+0000 n{i} kernel: NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus.\n"
        )
        files.append(str(p))
    r = run("faults", "scan", "-o", "json", *files)
    body = json.loads(r.stdout)
    assert r.returncode == 1
    assert [(e["class"], e["nodes"]) for e in body["fleet_events"]] == [
        ("gpu_fallen_off_bus", ["n0", "n1", "n2"])
    ]
    assert not any(f["node_fault"] for f in body["findings"])


def test_bad_policy_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("kind: Policy\nmode: sideways\n")
    r = run("--policy", str(bad), "faults", "scan", "-")
    assert r.returncode == 2
    assert b"cannot load the policy" in r.stderr


def test_rules_lists_the_catalog() -> None:
    r = run("faults", "rules", "-o", "json")
    body = json.loads(r.stdout)
    assert r.returncode == 0
    assert body["schema_version"] == 1
    ids = {rule["id"] for rule in body["rules"]}
    assert {"xid-79", "nvrm-fallen-off-bus-block", "torch-watchdog-timeout", "cuda-oom"} <= ids
    table = run("faults", "rules")
    assert table.returncode == 0
    assert b"runbooks/gpu_fallen_off_bus.md" in table.stdout


def test_help_states_exit_codes() -> None:
    r = run("faults", "scan", "--help")
    assert b"Exit codes: 0 no node fault; 1 a node fault" in b" ".join(r.stdout.split())
