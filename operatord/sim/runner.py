"""Simulator: run a scenario. operatord's side is the daemon's own path, nothing simulated.

Every tick: the world moves to `now` (serves the last interval, faults, kubelet, controller,
metrics), then the controller acts. For operatord the controller is `shell.loop.Daemon` itself,
ticked on the virtual clock: `Daemon.tick()` observes through `shell.observe.Observer`, decides
with `core.decide.decide_detailed` and applies with `shell.apply.apply_plan` and the daemon's
executors, with virtual clock, sleep and monotonic. The ports are the world's FakeClusterApi and
metrics, and the CapacityProvider the CLI wired (operatord's Ec2Capacity on moto, in process),
wrapped in sim.cloud.SimCapacity. Baselines (sim.baselines) are other controllers over the same
world.

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
from prometheus_client import CollectorRegistry

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.plan import Cordon, Drain, RequestCapacity
from operatord.policies.load import LoadedPolicy, load_policy_text, read_text
from operatord.shell.intents import IntentStore
from operatord.shell.leader import LeaderElector
from operatord.shell.loop import Daemon, LoopConfig
from operatord.shell.metrics import build_metrics
from operatord.shell.observe import Deadlines, InlineExecutor, Observer
from operatord.sim.cloud import SimCapacity
from operatord.sim.scenario import Scenario, deep_merge, relative
from operatord.sim.serving import Trace
from operatord.sim.world import NAMESPACE, World
from operatord.vocab import Mode


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
    errors: list[str] = field(default_factory=list)  # ticks that failed (a bug, never expected)


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


class _Policy:
    """The daemon's PolicySource: the scenario's policy, loaded once (it never changes in a run)."""

    def __init__(self, loaded: LoadedPolicy) -> None:
        self._loaded = loaded

    def revision_token(self) -> str | None:
        return self._loaded.revision

    def load(self) -> LoadedPolicy:
        return self._loaded


class Operatord:
    """operatord as the controller: `shell.loop.Daemon` itself, ticked on the virtual clock.

    Each tick renews the Lease (the scheduler's lease job) and runs `Daemon.tick()` — observe,
    decide_detailed, apply_plan with the daemon's ApplyContext (drain slices, keep_going) — then
    reads what it did from the TickReport. A tick that fails is an invariant violation.
    """

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
            executor=InlineExecutor(),
        )
        self.vt = _VirtualTime()
        tick = world.scenario.tick
        loaded = world.loaded
        self.daemon = Daemon(
            cluster=world.api,
            namespace=NAMESPACE,
            observer=self.observer,
            # A Lease longer than a tick: renewed every tick, as the scheduler's lease job does.
            elector=LeaderElector(
                world.api, NAMESPACE, "operatord-sim", lambda: world.now, duration=tick * 3
            ),
            policy_source=_Policy(loaded),
            policy=loaded,
            metrics=build_metrics(CollectorRegistry()),
            capacity=capacity,
            config=LoopConfig(tick=tick, drain_slice=timedelta(seconds=20)),
            clock=lambda: world.now,
            sleep=self.vt.sleep,
            monotonic=self.vt.monotonic,
        )
        self.daemon.prime()
        self.breaker_was_open = False
        self.errors: list[str] = []

    def tick(self, world: World, now: datetime, journal: list[Entry]) -> None:
        self.daemon.renew()
        report = self.daemon.tick()
        if report.error is not None:
            self.errors.append(f"tick at {now.isoformat()} failed: {report.error}")
        if report.observation is None or report.decision is None:
            return
        snap = report.observation.snapshot
        blind = snap.metrics is None or snap.metrics.outage is not None
        breaker_open = snap.state.breaker.open
        if breaker_open and not self.breaker_was_open:
            journal.append(Entry(now, "breaker_open", reason=snap.state.breaker.reason))
        self.breaker_was_open = breaker_open
        decision = report.decision
        by_key = {a.key: a for a in decision.plan.actions}
        for o in report.outcomes:
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
        result.errors = list(self.errors)
        if self.capacity is None:
            return
        # Orphans: instances the cloud lists that no live intent accounts for (uncached listing).
        intents, _ = IntentStore(world.api, NAMESPACE, world.policy.cluster).list()
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
