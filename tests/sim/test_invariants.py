"""Invariant checks catch what they promise (a journal or world that breaks each one)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from operatord.sim.invariants import check
from operatord.sim.runner import Entry, RunResult, load_scenario_policy, load_trace
from operatord.sim.scenario import load, resolve
from operatord.sim.world import World


@pytest.fixture
def result() -> RunResult:
    path = resolve("ice-us-east-1a")
    scenario = load(path)
    world = World(scenario, load_scenario_policy(scenario, path), load_trace(scenario, path))
    return RunResult("operatord", world, end=scenario.start + scenario.duration)


def test_a_clean_run_has_no_violations(result: RunResult) -> None:
    assert check(result, []) == []


def test_scale_in_while_blind_is_a_violation(result: RunResult) -> None:
    at = result.world.scenario.start + timedelta(minutes=5)
    result.journal.append(Entry(at, "scale_in", None, "supply_over_demand", 3, blind=True))
    assert any("metrics were unknown" in v for v in check(result, []))


def test_scale_in_soon_after_a_scale_out_is_flapping(result: RunResult) -> None:
    at = result.world.scenario.start
    result.journal.append(Entry(at, "scale_out", None, "demand_over_supply", 5))
    result.journal.append(Entry(at + timedelta(seconds=60), "scale_in", None, "supply_over_demand", 4))
    assert any(v.startswith("flapping") for v in check(result, []))


def test_cordon_with_the_breaker_open_is_a_violation(result: RunResult) -> None:
    at = result.world.scenario.start
    result.journal.append(Entry(at, "cordon", "gpu-001", "gpu_fallen_off_bus", breaker_open=True))
    assert any(v.startswith("breaker") for v in check(result, []))


def test_burst_ceiling_and_hourly_cap(result: RunResult) -> None:
    world = result.world
    t = world.scenario.start
    for i in range(5):  # the shipped default allows 4
        world.instance_launched(f"i-{i}", "p4d.24xlarge", "us-east-1b", t)
    found = check(result, [])
    assert any(v.startswith("burst ceiling") for v in found)


def test_two_overlapping_drains_break_the_budget(result: RunResult) -> None:
    at = result.world.scenario.start
    result.journal.append(Entry(at, "drain", "gpu-001", "gpu_fallen_off_bus"))
    result.journal.append(Entry(at + timedelta(seconds=30), "drain", "gpu-002", "gpu_fallen_off_bus"))
    assert any(v.startswith("drain budget") for v in check(result, []))


def test_orphans_and_wrong_drains_are_listed(result: RunResult) -> None:
    result.orphans = ["i-0abc"]
    found = check(result, ["gpu-009 at t (gpu_fallen_off_bus)"])
    assert "orphan instances at the end: i-0abc" in found
    assert "wrong drain: gpu-009 at t (gpu_fallen_off_bus)" in found
