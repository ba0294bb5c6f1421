"""Simulator: one `operatord simulate` invocation — operatord, the baselines and the oracle on the
same scenario, invariants, and the report object (sim.report). The CLI wires the capacity
provider (operatord's Ec2Capacity on moto, in process) through `capacity_for`; this module never
imports adapters (design §3.2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operatord.sim import baselines as bl
from operatord.sim.cloud import SimCapacity
from operatord.sim.invariants import check
from operatord.sim.report import Summary, build, summarize
from operatord.sim.runner import RunResult, load_scenario_policy, load_trace, operatord_factory, run
from operatord.sim.scenario import Scenario
from operatord.sim.world import World

Progress = Callable[[str, int, int], None]


@dataclass
class Simulation:
    report: dict[str, Any]
    results: list[RunResult]
    description: str


def simulate(
    scenario: Scenario,
    scenario_file: Path,
    *,
    compare: Sequence[str],
    capacity_for: Callable[[World], SimCapacity | None],
    capacity_provider: str,
    progress: Progress | None = None,
) -> Simulation:
    started = time.perf_counter()
    loaded = load_scenario_policy(scenario, scenario_file)
    trace = load_trace(scenario, scenario_file)

    def step(name: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda k, n: progress(name, k, n)

    main = run(scenario, loaded, trace, operatord_factory(capacity_for), progress=step("operatord"))
    results = [main]
    summaries: list[Summary] = []
    for name in compare:
        res = run(scenario, loaded, trace, bl.factory(name), progress=step(name))
        results.append(res)
        s = summarize(res, acts_on_faults=False)
        summaries.append(s)
    oracle = bl.oracle(World(scenario, loaded, trace), main.ticks)
    me = summarize(main, acts_on_faults=True)
    me.invariant_violations = check(
        main, [f"{d['node']} at {d['at']} ({d['reason']})" for d in me.wrong_drains]
    )
    policy = loaded.policy
    served = policy.serving.models[0]
    world = main.world
    assumptions = {
        "tokens_per_s_per_replica": f"{world.per_replica:g} weighted tokens/s at the SLO "
        f"({'scenario' if scenario.serving.tokens_per_s_per_replica else 'policy profile'}; user-measured in production)",
        "demand_weights": f"prompt {policy.serving.demand_weights.prompt:g}, generation {policy.serving.demand_weights.generation:g}",
        "serving_model": "fluid FIFO queue per tick; no queueing below saturation; degraded replica = half throughput",
        "base_latency_s": scenario.serving.base_latency.total_seconds(),
        "abandon_after_s": scenario.serving.abandon_after.total_seconds(),
        "model_load_local_s": scenario.serving.model_load_local.total_seconds(),
        "model_load_burst_s": scenario.serving.model_load_burst.total_seconds(),
        "boot_registered_s": scenario.cloud.boot.registered.total_seconds(),
        "boot_gpu_ready_s": scenario.cloud.boot.gpu_ready.total_seconds(),
        "boot_jitter": scenario.cloud.boot.jitter,
        "model": served.name,
        "billing": "per second, 60 s minimum, the policy's dated on-demand prices",
        "time_to_cordon": f"quantised to the {scenario.tick.total_seconds():g} s tick: a line's agent publishes "
        "and the daemon decides in the tick the line appears (0 s = within that tick; production adds the "
        "agent's poll and up to one daemon tick)",
    }
    report = build(
        scenario_name=scenario.name,
        scenario_file=str(scenario_file),
        seed=scenario.seed,
        duration_s=scenario.duration.total_seconds(),
        ticks=main.ticks,
        slo={"ttft_p99_s": policy.serving.slo.ttft_p99.total_seconds()},
        policy={"source": loaded.source, "revision": loaded.revision},
        capacity_provider=capacity_provider,
        main=me,
        baselines=summaries,
        oracle=oracle,
        assumptions=assumptions,
        wall_seconds=time.perf_counter() - started,
    )
    return Simulation(report, results, scenario.description)
