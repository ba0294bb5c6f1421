"""Every shipped scenario through `operatord simulate` (moto in process): invariants, the behaviour
each scenario exists for, and a golden compact report (OPERATORD_UPDATE_GOLDEN=1 rewrites them).

Suite scenarios stay at or under two simulated hours; promo-spike (24 h) runs here as a 2-hour
window around its promotion, built from the shipped file with absolute paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from operatord.sim import scenario as sc
from operatord.sim.report import compact
from operatord.sim.runner import load_scenario_policy

from .conftest import SimRun

GOLDEN = Path(__file__).parent / "golden"
SHORT = [
    "xid-storm",
    "nccl-bad-peer",
    "ice-us-east-1a",
    "prometheus-outage",
    "driver-rollout-mass-fault",
    "drain-needs-capacity",
]
DESIGN_KEYS = {
    "scenario", "duration_s", "ticks", "requests", "slo", "slo_attainment", "unserved_requests",
    "burst_instance_hours", "burst_cost_usd", "max_burst_instances", "drains", "wrong_drains",
    "faults_injected", "faults_detected", "time_to_cordon_s", "orphan_instances",
    "invariant_violations", "wall_seconds", "baselines",
}  # fmt: skip


@pytest.fixture(scope="session")
def promo_window(tmp_path_factory: pytest.TempPathFactory) -> str:
    """promo-spike as shipped, cut to 08:30–10:30 UTC with the promotion at 09:30."""
    src = sc.resolve("promo-spike")
    doc = yaml.safe_load(src.read_text())
    doc["policy"] = str(sc.relative(src, doc["policy"]))
    doc["traffic"]["trace"] = str(sc.relative(src, doc["traffic"]["trace"]))
    doc["name"] = "promo-spike-window"
    doc["start"] = "2026-03-02T08:30:00Z"
    doc["duration"] = "2h"
    doc["traffic"]["spikes"][0]["at"] = "1h"
    path = tmp_path_factory.mktemp("promo") / "promo-spike-window.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _golden(name: str, report: dict[str, Any]) -> None:
    got = compact(report)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("OPERATORD_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"no golden file {path.name}; run with OPERATORD_UPDATE_GOLDEN=1"
    assert got == json.loads(path.read_text())


def _acted_on(report: dict[str, Any], node: str) -> list[str]:
    return [a["kind"] for a in report["actions"] if a["node"] == node and a["kind"] in ("cordon", "drain")]


@pytest.mark.parametrize("name", SHORT)
def test_scenario_holds_invariants_and_matches_golden(simulate: SimRun, name: str) -> None:
    code, report, out = simulate(name)
    assert set(report) >= DESIGN_KEYS
    assert {"static", "reactive", "oracle", "oracle_burst_cost_usd"} <= set(report["baselines"])
    assert report["invariant_violations"] == []
    assert code == 0
    assert "operatord" in out
    assert "oracle (lower bound)" in out
    assert report["duration_s"] <= 2 * 3600
    _golden(name, report)


def test_promo_spike_window(simulate: SimRun, promo_window: str) -> None:
    code, report, _ = simulate(promo_window)
    assert code == 0
    assert report["invariant_violations"] == []
    assert report["max_burst_instances"] > 0  # the promotion outgrows the 16 local nodes
    assert report["baselines"]["static"]["burst_cost_usd"] == 0
    _golden("promo-spike-window", report)


def test_xid_storm_drains_the_broken_nodes_and_not_the_oom(simulate: SimRun) -> None:
    _, report, _ = simulate("xid-storm")
    drained = {d["node"] for d in report["drains"]}
    assert {"gpu-003", "gpu-007"} <= drained <= {"gpu-003", "gpu-007", "gpu-012"}
    assert _acted_on(report, "gpu-005") == []  # CUDA OOM is the application's fault
    assert report["faults_detected"] == 3
    assert report["wrong_drains"] == []


def test_nccl_bad_peer_blames_only_the_node_with_link_evidence(simulate: SimRun) -> None:
    _, report, _ = simulate("nccl-bad-peer")
    for peer in ("gpu-002", "gpu-006", "gpu-009"):
        assert _acted_on(report, peer) == []
    assert "cordon" in _acted_on(report, "gpu-004")


def test_ice_falls_back_to_the_next_az(simulate: SimRun) -> None:
    _, report, _ = simulate("ice-us-east-1a")
    offerings = report["burst_instances_by_offering"]
    assert offerings
    assert not any(k.endswith("/us-east-1a") for k in offerings)
    assert any(k.endswith("/us-east-1b") for k in offerings)


def test_prometheus_outage_operatord_never_scales_in_blind_and_keda_does(simulate: SimRun) -> None:
    _, report, _ = simulate("prometheus-outage")
    blind = [a for a in report["actions"] if a["metrics_unknown"]]
    assert not [a for a in blind if a["kind"] in ("scale_in", "release")]
    keda = report["baselines"]["reactive"]["actions"]
    assert [a for a in keda if a["kind"] == "scale_in" and a["metrics_unknown"]]  # ignoreNullValues → 0


def _breaker_trips(report: dict[str, Any]) -> list[str]:
    return [a["at"] for a in report["actions"] if a["kind"] == "breaker_open"]


def test_driver_rollout_trips_the_breaker_and_is_not_drained_wholesale(simulate: SimRun) -> None:
    """The first nodes of a bad rollout look like single bad nodes and are cordoned; once the fleet
    event explains them, the breaker trips and nothing more is cordoned, drained or uncordoned."""
    _, report, _ = simulate("driver-rollout-mass-fault")
    assert report["faults_detected"] == 8
    (tripped,) = _breaker_trips(report)
    acted = [a for a in report["actions"] if a["kind"] in ("cordon", "drain", "uncordon")]
    assert {a["node"] for a in acted if a["kind"] == "cordon"} == {"gpu-001", "gpu-003"}
    assert len(report["drains"]) <= 1
    assert all(a["at"] < tripped for a in acted)


@pytest.mark.parametrize("name", ["xid-storm", "nccl-bad-peer", "drain-needs-capacity"])
def test_single_node_faults_never_trip_the_breaker(simulate: SimRun, name: str) -> None:
    _, report, _ = simulate(name)
    assert _breaker_trips(report) == []


def test_drain_waits_for_a_capacity_request(simulate: SimRun) -> None:
    _, report, _ = simulate("drain-needs-capacity")
    asked = [a["at"] for a in report["actions"] if a["kind"] == "capacity_request" and a["node"] == "gpu-003"]
    drains = [a["at"] for a in report["actions"] if a["kind"] == "drain" and a["node"] == "gpu-003"]
    assert asked, "a non-fatal drain that would leave too little capacity asks for a replacement first"
    assert not drains or min(asked) < min(drains)


def test_same_seed_same_report_and_moto_equals_the_fake(simulate: SimRun) -> None:
    _, moto, _ = simulate("ice-us-east-1a")
    _, fake1, _ = simulate("ice-us-east-1a", "--capacity", "fake")
    _, fake2, _ = simulate("ice-us-east-1a", "--capacity", "fake", "--compare", "static,reactive")
    assert compact(fake1) == compact(fake2)
    assert compact(moto) == compact(fake1)


def test_every_shipped_scenario_loads_with_its_policy() -> None:
    names = sc.shipped()
    assert set(SHORT) | {"promo-spike"} <= set(names)
    for name in names:
        path = sc.resolve(name)
        scenario = sc.load(path)
        loaded = load_scenario_policy(scenario, path)
        assert loaded.policy.burst is not None
        assert loaded.policy.burst.enabled
    traces = sc.SCENARIOS_DIR / "traces"
    assert "CC-BY 4.0" in (traces / "README.md").read_text()  # attribution ships beside the files


def test_schema_and_usage_errors(simulate: SimRun) -> None:
    from typer.testing import CliRunner

    from operatord.cli import app

    r = CliRunner().invoke(app, ["simulate", "--schema"])
    assert r.exit_code == 0
    assert "traffic" in json.loads(r.stdout)["properties"]
    assert CliRunner().invoke(app, ["simulate", "no-such-scenario"]).exit_code == 2
    assert CliRunner().invoke(app, ["simulate", "xid-storm", "--compare", "hpa"]).exit_code == 2


def test_json_output_is_the_report(simulate: SimRun) -> None:
    code, report, out = simulate("nccl-bad-peer", "--capacity", "fake", "-o", "json")
    assert code == 0
    assert json.loads(out) == report
    assert report["schema_version"] == 1
