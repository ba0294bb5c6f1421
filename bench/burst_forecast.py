"""Benchmark: the scaling decision with the Holt forecast vs a purely reactive rule, replaying a real
LLM arrival trace through the real code (core.scaling.plan_scaling, shell.burst.BurstRunner,
FakeCapacity) on a virtual clock.

Not a test, and not the simulator of design §1.4 (issue 7): a focused replay that answers one
question of issue 6, "does looking ahead by the boot-to-serving time pay, and what does it cost?".
The reactive run (`scaling.forecast.method: none`) is the baseline, measured in the same run;
every figure is printed absolute and as a ratio to it.

    .venv/bin/python bench/burst_forecast.py                  # both scenarios
    .venv/bin/python bench/burst_forecast.py --scenario conv-1h

Scenarios (arrivals from /work/shared/traces, Azure LLM inference 2023, CC-BY 4.0, Patel et al.,
ISCA 2024):
  conv-1h          the conversation trace as recorded, demand scaled so its peak minute is 1.5x
                   the local fleet's SLO throughput;
  conv-diurnal-8h  the same trace tiled 8 times under a half-sine daily curve (0.35 -> 1.0 -> 0.35),
                   peak scaled to 1.6x local throughput: a slow ramp, where forecasting should help.

Assumptions (labelled, not measurements): 6 local nodes of 8x A100-40GB, one replica per node at
2,400 weighted tokens/s (the policy's default profile), target utilization 0.8; a p4d burst node is
registered 3 min, GPU-ready 5 min and serving 10 min after RunInstances (research/autoscaling.md
§3.2 planning numbers: 5-15 min); local replica changes take effect the next tick (30 s); demand
weights prompt 0.2, generation 1.0; served fraction = demand-weighted share of tokens/s within the
serving replicas' SLO throughput (a proxy for SLO attainment, not a latency model).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.burst.lifecycle import BurstState
from operatord.core.burst.observed import NodeView
from operatord.core.scaling import (
    DemandSample,
    LocalNode,
    LocalPool,
    ModelSignals,
    ScalingInputs,
    plan_scaling,
)
from operatord.policies.model import Policy
from operatord.shell.burst import BurstRunner
from operatord.shell.intents import IntentStore
from operatord.shell.telemetry import configure_logging
from operatord.testing.fake_capacity import FakeCapacity
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import Reason

ROOT = Path(__file__).resolve().parents[1]
TRACES = Path("/work/shared/traces")
TICK = timedelta(seconds=30)
LOCAL_NODES = 6
PER_REPLICA = 2400.0
REGISTER_AFTER = timedelta(minutes=3)
GPU_AFTER = timedelta(minutes=5)
SERVING_AFTER = timedelta(minutes=10)
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def load_trace(name: str) -> list[tuple[float, float]]:
    """(seconds since the first request, weighted tokens) per request."""
    rows: list[tuple[float, float]] = []
    with (TRACES / name).open() as fh:
        reader = csv.DictReader(fh)
        first: datetime | None = None
        for r in reader:
            at = datetime.fromisoformat(r["TIMESTAMP"][:26])
            first = first or at
            rows.append(
                ((at - first).total_seconds(), 0.2 * int(r["ContextTokens"]) + int(r["GeneratedTokens"]))
            )
    return rows


def per_minute(rows: list[tuple[float, float]]) -> list[float]:
    """Weighted tokens/s averaged per minute (what rate(...[1m]) reports)."""
    minutes = int(rows[-1][0] // 60) + 1
    out = [0.0] * minutes
    for t, w in rows:
        out[int(t // 60)] += w / 60.0
    return out


def scenario(name: str) -> list[float]:
    base = per_minute(load_trace("azure-llm-2023-conv.csv"))
    local = LOCAL_NODES * PER_REPLICA
    if name == "conv-1h":
        factor = 1.5 * local / max(base)
        return [x * factor for x in base]
    if name == "conv-diurnal-8h":
        tiled = base * 8
        n = len(tiled)
        curve = [0.35 + 0.65 * math.sin(math.pi * i / (n - 1)) for i in range(n)]
        shaped = [x * c for x, c in zip(tiled, curve, strict=True)]
        factor = 1.6 * local / max(shaped)
        return [x * factor for x in shaped]
    raise SystemExit(f"unknown scenario {name!r}")


def policy(method: str) -> Policy:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "policies/default.yaml").read_text())
    doc["mode"] = "full"
    doc["faults"] = {"rules": [str(ROOT / "policies/faults/*.yaml")]}
    doc["scaling"]["forecast"]["method"] = method
    doc["burst"].update(enabled=True, max_instances=8, max_usd_per_hour=200, max_usd_per_day=4000)
    return Policy.model_validate(doc)


@dataclass
class Nodes:
    """Kubernetes as the runner sees it: burst nodes appear, get GPUs and serve on a fixed schedule."""

    capacity: FakeCapacity
    clock: Any
    draining: set[str] = field(default_factory=set)

    def burst_nodes(self) -> Mapping[str, NodeView]:
        now = self.clock()
        out = {}
        for inst in self.capacity.live():
            age = now - inst.launched_at
            if age < REGISTER_AFTER:
                continue
            gpus = 8 if age >= GPU_AFTER else 0
            serving = 1 if age >= SERVING_AFTER and inst.instance_id not in self.draining else 0
            out[inst.instance_id] = NodeView(
                f"burst-{inst.instance_id[-6:]}", inst.instance_id, gpus > 0, gpus, serving
            )
        return out

    def begin_drain(self, node_name: str) -> int:
        for inst in self.capacity.live():
            if node_name.endswith(inst.instance_id[-6:]):
                self.draining.add(inst.instance_id)
        return 1

    def evict_serving(self, node_name: str) -> int:
        return self.begin_drain(node_name)

    def retire(self, node_name: str) -> None:
        return


@dataclass
class Result:
    served_fraction: float
    unserved_tokens: float
    short_minutes: float
    burst_instance_hours: float
    burst_cost_usd: float
    max_burst_instances: int
    launches: int
    wall_s: float


def run(demand_per_minute: list[float], method: str) -> Result:
    started = time.perf_counter()
    pol = policy(method)
    now = START
    clock = lambda: now  # noqa: E731
    fake = FakeCapacity(cluster=pol.cluster, clock=clock)
    store = IntentStore(FakeClusterApi(), "operatord", pol.cluster)
    nodes = Nodes(fake, clock)
    runner = BurstRunner(store=store, capacity=fake, policy=pol, clock=clock, nodes=nodes)
    model = pol.serving.models[0]
    replicas = 1
    ready_local = 1
    history: list[DemandSample] = []
    last_out: datetime | None = None
    last_in: datetime | None = None
    served = total = short_s = 0.0
    peak_burst = 0
    launches = 0
    ticks = len(demand_per_minute) * 2
    pools = (
        LocalPool(
            "local-a100", "A100-SXM4-40GB", 8, tuple(LocalNode(f"gpu-{i}", 8) for i in range(LOCAL_NODES))
        ),
    )
    for k in range(ticks):
        now = START + k * TICK
        demand = demand_per_minute[k // 2]
        runner.reconcile()
        intents, _ = store.list()
        serving_burst = sum(1 for i in intents for r in i.instances if r.state is BurstState.SERVING)
        peak_burst = max(peak_burst, len(fake.live()))
        capacity = (min(ready_local, LOCAL_NODES) + serving_burst) * PER_REPLICA
        served += min(demand, capacity) * TICK.total_seconds()
        total += demand * TICK.total_seconds()
        if demand > capacity:
            short_s += TICK.total_seconds()
        queue = max(0.0, demand - capacity) / 200.0  # waiting requests, ~200 weighted tokens/request/s
        signals = ModelSignals(
            model.name,
            demand,
            queue_depth=queue,
            kv_cache_usage=min(1.0, demand / max(capacity, 1)),
            history=tuple(history),
            replicas=replicas,
        )
        plan = plan_scaling(ScalingInputs(now, (signals,), pools, intents, (), last_out, last_in), pol, now)
        ready_local = min(replicas, LOCAL_NODES)  # local replica changes land one tick later
        for action in plan.actions:
            if isinstance(action, SetReplicas):
                if action.replicas > replicas:
                    last_out = now
                else:
                    last_in = now
                replicas = action.replicas
            elif isinstance(action, LaunchBurst):
                runner.launch(
                    replicas=action.replicas, model=action.model, reason=action.reason, seq=action.key
                )
                launches += 1
                last_out = now
            elif isinstance(action, ReleaseBurst):
                for iid in action.instance_ids:
                    runner.release(action.intent_id, iid, Reason(action.reason))
                last_in = now
        history.append(DemandSample(now, demand))
        history = [h for h in history if now - h.at <= timedelta(minutes=30)]
    end = START + ticks * TICK
    intents, _ = store.list()
    records = [r for i in intents for r in i.instances]
    cost = sum(r.cost_usd(end) for r in records)
    hours = sum(r.cost_usd(end) / r.price_usd_per_hour for r in records if r.price_usd_per_hour)
    return Result(
        served / total,
        total - served,
        short_s / 60,
        hours,
        cost,
        peak_burst,
        launches,
        time.perf_counter() - started,
    )


def ratio(a: float, b: float) -> str:
    if b == 0:
        return "n/a" if a == 0 else "inf"
    return f"{a / b:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=["conv-1h", "conv-diurnal-8h"])
    args = parser.parse_args()
    configure_logging("console", "warning")  # one log event per action would drown the table
    for name in args.scenario or ["conv-1h", "conv-diurnal-8h"]:
        demand = scenario(name)
        base = run(demand, "none")
        holt = run(demand, "holt")
        print(
            f"\n== {name}: {len(demand)} min, peak {max(demand):,.0f} weighted tokens/s "
            f"(local SLO throughput {LOCAL_NODES * PER_REPLICA:,.0f})"
        )
        print(f"{'metric':<28}{'reactive (baseline)':>22}{'holt forecast':>16}{'holt / reactive':>18}")
        rows = [
            (
                "served fraction",
                f"{base.served_fraction:.4f}",
                f"{holt.served_fraction:.4f}",
                ratio(holt.served_fraction, base.served_fraction),
            ),
            (
                "unserved token-s (M)",
                f"{base.unserved_tokens / 1e6:.2f}",
                f"{holt.unserved_tokens / 1e6:.2f}",
                ratio(holt.unserved_tokens, base.unserved_tokens),
            ),
            (
                "minutes short of capacity",
                f"{base.short_minutes:.1f}",
                f"{holt.short_minutes:.1f}",
                ratio(holt.short_minutes, base.short_minutes),
            ),
            (
                "burst instance-hours",
                f"{base.burst_instance_hours:.2f}",
                f"{holt.burst_instance_hours:.2f}",
                ratio(holt.burst_instance_hours, base.burst_instance_hours),
            ),
            (
                "burst cost (USD)",
                f"{base.burst_cost_usd:.2f}",
                f"{holt.burst_cost_usd:.2f}",
                ratio(holt.burst_cost_usd, base.burst_cost_usd),
            ),
            ("max burst instances", str(base.max_burst_instances), str(holt.max_burst_instances), ""),
            ("launch decisions", str(base.launches), str(holt.launches), ""),
            ("wall seconds", f"{base.wall_s:.1f}", f"{holt.wall_s:.1f}", ratio(holt.wall_s, base.wall_s)),
        ]
        for r in rows:
            print(f"{r[0]:<28}{r[1]:>22}{r[2]:>16}{r[3]:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
