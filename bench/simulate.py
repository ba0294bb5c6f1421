"""Benchmark: `operatord simulate` speed — 24 simulated hours at 10 s ticks with 64 local nodes.

Not a test. Runs operatord's controller (observe → decide → apply, the daemon's path) over the
promo-spike day scaled to 64 local nodes, once with the in-memory FakeCapacity and once with
operatord's Ec2Capacity on moto in process (as `operatord simulate` wires it), and prints wall
seconds and the simulated-to-real ratio of each, and moto's cost as the ratio moto / fake (the
baseline measured in the same run). Goals: ≤ 10 s with the fake, ≤ 60 s with moto.

    .venv/bin/python bench/simulate.py [--hours 24] [--tick 10] [--nodes 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import yaml

from operatord.cli.simulate import capacity_wiring
from operatord.shell.telemetry import configure_logging
from operatord.sim import scenario as sc
from operatord.sim.runner import load_scenario_policy, load_trace, operatord_factory, run


def bench_scenario(hours: float, tick_s: float, nodes: int) -> tuple[sc.Scenario, Path]:
    src = sc.resolve("promo-spike")
    doc = yaml.safe_load(src.read_text())
    doc["policy"] = str(sc.relative(src, doc["policy"]))
    doc["traffic"]["trace"] = str(sc.relative(src, doc["traffic"]["trace"]))
    doc["name"] = f"bench-{nodes}-nodes"
    doc["duration"] = f"{hours}h"
    doc["tick"] = f"{tick_s}s"
    doc["pools"][0]["nodes"] = nodes
    doc["serving"]["initial_replicas"] = max(1, nodes * 3 // 8)
    doc["traffic"]["rate_multiplier"] = 8 * nodes / 16  # the same load per node as promo-spike
    # The shipped policy caps the model at 32 replicas; let it use every local node and burst.
    policy = yaml.safe_load(Path(doc["policy"]).read_text())
    models = policy["serving"]["models"]
    models[0]["max_replicas"] = nodes + 32
    doc["policy_overrides"] = {**doc.get("policy_overrides", {}), "serving": {"models": models}}
    return sc.Scenario.model_validate(doc), src


def measure(kind: str, scenario: sc.Scenario, path: Path) -> tuple[float, int, int]:
    loaded = load_scenario_policy(scenario, path)
    with capacity_wiring(scenario, path, loaded.policy, kind) as (scen, capacity_for):
        loaded = load_scenario_policy(scen, path)
        trace = load_trace(scen, path)
        started = time.perf_counter()
        result = run(scen, loaded, trace, operatord_factory(capacity_for))
        wall = time.perf_counter() - started
    return wall, result.ticks, len(result.world.instances)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--tick", type=float, default=10)
    parser.add_argument("--nodes", type=int, default=64)
    args = parser.parse_args()
    configure_logging("console", "error")
    scenario, path = bench_scenario(args.hours, args.tick, args.nodes)
    simulated = scenario.duration / timedelta(seconds=1)
    print(
        f"{args.hours:g} simulated hours at {args.tick:g} s ticks, {args.nodes} local nodes (promo-spike day)"
    )
    print(f"{'capacity provider':<34}{'wall s':>9}{'ticks':>8}{'sim/real':>10}{'instances':>11}{'goal':>8}")
    rows = {}
    for kind, label, goal in (
        ("fake", "FakeCapacity (baseline)", 10.0),
        ("moto", "Ec2Capacity on moto", 60.0),
    ):
        wall, ticks, instances = measure(kind, scenario, path)
        rows[kind] = wall
        met = "ok" if wall <= goal else "MISSED"
        print(f"{label:<34}{wall:>9.1f}{ticks:>8}{simulated / wall:>9.0f}x{instances:>11}{met:>8}")
    print(f"moto / fake wall ratio: {rows['moto'] / rows['fake']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
