"""Simulator: run a scenario. operatord's side is the daemon's own path, nothing simulated.

Every tick: the world moves to `now` (serves the last interval, faults, kubelet, controller,
metrics), then the controller acts. For operatord the controller is exactly what
`shell.loop.Daemon.tick` does as the leader: `shell.observe.Observer` builds the Snapshot from
the ports, `core.decide.decide_detailed` makes the plan, `shell.apply.apply_plan` executes it
through the same executors (burst ones included) with an ApplyContext whose clock, sleep and
monotonic are virtual. The ports are the world's FakeClusterApi and metrics, and the
CapacityProvider the CLI wired (operatord's Ec2Capacity on moto, in process), wrapped in
sim.cloud.SimCapacity. Baselines (sim.baselines) are other controllers over the same world.

What the run yields (`RunResult`) is the world's records plus a journal of what the controller
did (cordons, drains, scale changes, launches and releases, breaker state), from which
report.py and invariants.py compute everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import yaml

import operatord.shell.burst_apply
import operatord.shell.fleet_apply
import operatord.shell.reconcile_apply
from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.decide import decide_detailed
from operatord.core.plan import Cordon, Drain, RequestCapacity
from operatord.policies.load import LoadedPolicy, load_policy_text, read_text
from operatord.shell.apply import ApplyContext, apply_plan
from operatord.shell.intents import IntentStore
from operatord.shell.observe import Deadlines, Observer
from operatord.sim.cloud import SimCapacity
from operatord.sim.scenario import Scenario, deep_merge, relative
from operatord.sim.serving import Trace
from operatord.sim.world import NAMESPACE, World
from operatord.vocab import Mode

# Imported for their executors (SetReplicas, LaunchBurst, ReleaseBurst; ReconcileBurst; the fleet's
# SetStackCondition), as the daemon must: decide() plans all of them.
_EXECUTORS = (operatord.shell.burst_apply, operatord.shell.reconcile_apply, operatord.shell.fleet_apply)


@dataclass(frozen=True)
class Entry:
    """One thing a controller did (applied, not planned)."""

    at: datetime
    kind: str  # cordon | drain | drain_end | capacity_request | scale_out | scale_in | launch | release | breaker_open
    node: str | None = None
    reason: str = ""
    amount: int = 0
    blind: bool = False  # metrics were unknown when it was decided
    breaker_open: bool = False  # the snapshot it was decided on had the breaker open


@dataclass
class RunResult:
    name: str
    world: World
    journal: list[Entry] = field(default_factory=list)
    end: datetime | None = None
    wall_seconds: float = 0.0
    ticks: int = 0
    orphans: list[str] = field(default_factory=list)
    tracked_at_end: list[str] = field(default_factory=list)


class Controller(Protocol):
    name: str

    def tick(self, world: World, now: datetime, journal: list[Entry]) -> None: ...

    def finish(self, world: World, now: datetime, result: RunResult) -> None: ...


def load_scenario_policy(scenario: Scenario, scenario_file: Path) -> LoadedPolicy:
    """The scenario's policy with its overrides, rules resolved relative to the policy file."""
    path = relative(scenario_file, scenario.policy)
    doc = yaml.safe_load(read_text(path))
    if scenario.policy_overrides:
        doc = deep_merge(doc, scenario.policy_overrides)
    return load_policy_text(yaml.safe_dump(doc, sort_keys=False), str(path), path.parent)


def load_trace(scenario: Scenario, scenario_file: Path) -> Trace:
    return Trace.load(relative(scenario_file, scenario.traffic.trace))


def run(
    scenario: Scenario,
    loaded: LoadedPolicy,
    trace: Trace,
    controller_factory: Callable[[World], Controller],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run one controller over a fresh world for the scenario's duration."""
    started = time.perf_counter()
    world = World(scenario, loaded, trace)
    controller = controller_factory(world)
    result = RunResult(controller.name, world)
    ticks = int(scenario.duration / scenario.tick)
    for k in range(1, ticks + 1):
        now = scenario.start + k * scenario.tick
        world.step(now)
        controller.tick(world, now, result.journal)
        if progress is not None:
            progress(k, ticks)
    end = scenario.start + ticks * scenario.tick
    result.end = end
    result.ticks = ticks
    controller.finish(world, end, result)
    result.wall_seconds = time.perf_counter() - started
    return result


class _VirtualTime:
    """Sleep and monotonic for the apply path: sleeping advances a counter, nothing waits."""

    def __init__(self) -> None:
        self.t = 0.0

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)

    def monotonic(self) -> float:
        return self.t


class Operatord:
    """operatord's daemon path as the controller (module docstring)."""

    name = "operatord"

    def __init__(self, world: World, capacity: SimCapacity | None) -> None:
        self.world = world
        self.capacity = capacity
        self.observer = Observer(
            world.api,
            NAMESPACE,
            metrics=world.metrics,
            capacity=capacity,
            deadlines=Deadlines(kubernetes=60.0, prometheus=60.0, ec2=60.0),
        )
        self.vt = _VirtualTime()
        self.policy = world.policy
        self.mode = self.policy.mode
        self.breaker_was_open = False

    def tick(self, world: World, now: datetime, journal: list[Entry]) -> None:
        obs = self.observer.observe(self.policy, now)
        snap = obs.snapshot
        blind = snap.metrics is None or snap.metrics.outage is not None
        breaker_open = snap.state.breaker.open
        if breaker_open and not self.breaker_was_open:
            journal.append(Entry(now, "breaker_open", reason=snap.state.breaker.reason))
        self.breaker_was_open = breaker_open
        decision = decide_detailed(snap, self.policy, now)
        ctx = ApplyContext(
            world.api,
            NAMESPACE,
            self.policy,
            self.mode,
            clock=lambda: now,
            sleep=self.vt.sleep,
            monotonic=self.vt.monotonic,
            capacity=self.capacity,
            drain_slice=timedelta(seconds=20),
        )
        outcomes = apply_plan(decision.plan, ctx)
        by_key = {a.key: a for a in decision.plan.actions}
        for o in outcomes:
            action = by_key.get(o.key)
            if isinstance(action, Drain) and o.status in ("applied", "failed", "refused"):
                journal.append(Entry(now, "drain_end", action.node, o.status))
            if action is None or o.status not in ("applied", "in_progress"):
                continue
            if isinstance(action, Cordon):
                journal.append(
                    Entry(now, "cordon", action.node, action.reason, blind=blind, breaker_open=breaker_open)
                )
            elif isinstance(action, Drain) and not action.detail.get("resume"):
                journal.append(
                    Entry(now, "drain", action.node, action.reason, blind=blind, breaker_open=breaker_open)
                )
            elif isinstance(action, SetReplicas):
                up = action.replicas > action.previous
                self.observer.replicas_changed(now, up=up)
                journal.append(
                    Entry(now, "scale_out" if up else "scale_in", None, action.reason, action.replicas, blind)
                )
            elif isinstance(action, LaunchBurst) and o.detail.get("instances"):
                journal.append(Entry(now, "launch", None, action.reason, action.instances, blind))
            elif isinstance(action, RequestCapacity):
                journal.append(Entry(now, "capacity_request", action.node, action.reason, action.gpus, blind))
            elif isinstance(action, ReleaseBurst):
                journal.append(Entry(now, "release", None, action.reason, len(action.instance_ids), blind))

    def finish(self, world: World, now: datetime, result: RunResult) -> None:
        self.observer.close()
        if self.capacity is None:
            return
        # Orphans: instances the cloud lists that no live intent accounts for (uncached listing).
        intents, _ = IntentStore(world.api, NAMESPACE, self.policy.cluster).list()
        tracked = {r.instance_id for i in intents for r in i.instances if r.state.live}
        listed = [c.instance_id for c in self.capacity.list_now() if not c.gone]
        result.orphans = sorted(i for i in listed if i not in tracked)
        result.tracked_at_end = sorted(i for i in listed if i in tracked)


def operatord_factory(capacity_for: Callable[[World], SimCapacity | None]) -> Callable[[World], Controller]:
    """A controller factory: the CLI passes how to build the (wrapped) CapacityProvider for a fresh world."""

    def make(world: World) -> Controller:
        return Operatord(world, capacity_for(world))

    return make


__all__ = [
    "Controller",
    "Entry",
    "Mode",
    "Operatord",
    "RunResult",
    "load_scenario_policy",
    "load_trace",
    "run",
]
