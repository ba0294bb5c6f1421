"""The agent loop against FakeClusterApi, real file sources and a fixed clock."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operatord.adapters.logs import FileTail, JsonCursorStore
from operatord.core.faults.catalog import Catalog
from operatord.core.faults.probe import ProbeVerdict
from operatord.core.model import Node
from operatord.policies.load import LoadedPolicy
from operatord.ports.cluster import Unreachable
from operatord.ports.logs import Position
from operatord.shell.agent import Agent
from operatord.shell.scan import Scanner
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import ANNOTATION_FINDINGS, ANNOTATION_STACK

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
XID79 = "{t} gpu-a17 kernel: NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n"
OOM = "{t} gpu-a17 kernel: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 has a total capacity of 21.98 GiB\n"
BANNER = "{t} gpu-a17 kernel: NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.148.06  Wed May 14 20:48:35 UTC 2025\n"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class MemoryCursors:
    def __init__(self) -> None:
        self.saved: dict[str, Position] = {}
        self.saves = 0

    def load(self) -> dict[str, Position]:
        return dict(self.saved)

    def save(self, positions: Mapping[str, Position]) -> None:
        self.saved = dict(positions)
        self.saves += 1


def stamp(clock: Clock) -> str:
    return clock.now.strftime("%Y-%m-%dT%H:%M:%S+0000")


@pytest.fixture
def world(tmp_path: Path, loaded: LoadedPolicy, catalog: Catalog):  # type: ignore[no-untyped-def]
    cluster = FakeClusterApi()
    cluster.add_node(Node("gpu-a17"))
    log = tmp_path / "kern.log"
    log.write_text("")
    clock = Clock()
    cursors = MemoryCursors()

    def make(**kw: object) -> Agent:
        return Agent(
            node="gpu-a17",
            cluster=cluster,
            sources=[FileTail(log)],
            cursors=cursors,
            scanner=Scanner(catalog, silence=loaded.policy.faults.burst_silence),
            policy=loaded.policy.faults,
            clock=clock,
            **kw,  # type: ignore[arg-type]
        )

    return cluster, log, clock, cursors, make


def findings_of(cluster: FakeClusterApi) -> list[dict[str, object]]:
    return json.loads(cluster.get_node("gpu-a17").annotations.get(ANNOTATION_FINDINGS, "[]"))


def condition(cluster: FakeClusterApi, type_: str) -> tuple[str, str] | None:
    c = cluster.get_node("gpu-a17").condition(type_)
    return None if c is None else (c.status, c.reason)


def append(log: Path, text: str) -> None:
    with log.open("a") as fh:
        fh.write(text)


def test_publishes_condition_annotation_stack_and_one_event_per_burst(world) -> None:  # type: ignore[no-untyped-def]
    cluster, log, clock, _, make = world
    agent = make()
    agent.start()
    append(
        log, BANNER.format(t=stamp(clock)) + XID79.format(t=stamp(clock)) * 500 + OOM.format(t=stamp(clock))
    )
    agent.tick()
    assert condition(cluster, "GPUHealthy") == ("False", "GpuFallenOffBus")
    assert condition(cluster, "NCCLHealthy") == ("True", "NoNodeFault")
    rows = {r["rule"]: r for r in findings_of(cluster)}
    assert (rows["xid-79"]["count"], rows["cuda-oom"]["node_fault"]) == (500, False)
    assert json.loads(cluster.get_node("gpu-a17").annotations[ANNOTATION_STACK]) == {"driver": "570.148.06"}
    assert sorted(e.reason for e in cluster.events) == ["cuda_oom", "gpu_fallen_off_bus"]


def test_condition_recovers_after_quiet_period_with_an_event(world) -> None:  # type: ignore[no-untyped-def]
    cluster, log, clock, _, make = world
    agent = make()
    agent.start()
    append(log, XID79.format(t=stamp(clock)))
    agent.tick()
    clock.advance(minutes=29)
    agent.tick()
    assert condition(cluster, "GPUHealthy") == ("False", "GpuFallenOffBus")
    clock.advance(minutes=2)
    agent.tick()
    assert condition(cluster, "GPUHealthy") == ("True", "NoNodeFault")
    assert cluster.events[-1].reason == "node_recovered"


def test_restart_neither_repeats_nor_loses(world) -> None:  # type: ignore[no-untyped-def]
    cluster, log, clock, cursors, make = world
    first = make()
    first.start()
    append(log, XID79.format(t=stamp(clock)) * 3)
    first.tick()
    first.close()
    events_before = len(cluster.events)
    clock.advance(minutes=1)
    append(log, OOM.format(t=stamp(clock)))  # written while the agent was down
    second = make()
    second.start()
    second.tick()
    rows = {r["rule"]: r for r in findings_of(cluster)}
    assert rows["xid-79"]["count"] == 3  # not re-read
    assert "cuda-oom" in rows  # not lost
    assert [e.reason for e in cluster.events[events_before:]] == ["cuda_oom"]
    assert cursors.saved[str(log)]["line"] == 5


def test_unreachable_api_keeps_findings_and_does_not_advance_the_cursor(world) -> None:  # type: ignore[no-untyped-def]
    cluster, log, clock, cursors, make = world
    agent = make()
    agent.start()
    saves = cursors.saves
    append(log, XID79.format(t=stamp(clock)))
    cluster.fail_next("get_node", Unreachable("connection refused"))
    result = agent.tick()
    assert not result.published
    assert cursors.saves == saves
    assert findings_of(cluster) == []
    agent.tick()
    assert [r["rule"] for r in findings_of(cluster)] == ["xid-79"]
    assert cursors.saves == saves + 1


def test_lines_older_than_the_lookback_are_ignored(world) -> None:  # type: ignore[no-untyped-def]
    cluster, log, clock, _, make = world
    old = (clock.now - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    append(log, XID79.format(t=old))
    agent = make()
    agent.start()
    agent.tick()
    assert findings_of(cluster) == []
    assert condition(cluster, "GPUHealthy") == ("True", "NoNodeFault")


def test_findings_already_on_the_node_keep_folding(world) -> None:  # type: ignore[no-untyped-def]
    cluster, log, clock, _, make = world
    agent = make()
    agent.start()
    append(log, XID79.format(t=stamp(clock)))
    agent.tick()
    # a new agent process with no cursor (fresh hostPath) sees the same burst continue
    cluster2_agent = make()
    cluster2_agent.start()
    clock.advance(minutes=1)
    append(log, XID79.format(t=stamp(clock)))
    cluster2_agent.tick()
    assert [r["count"] for r in findings_of(cluster)] == [2]


def test_healthy_probe_clears_gpu_condition(world) -> None:  # type: ignore[no-untyped-def]
    cluster, log, clock, _, make = world
    healthy = {"value": False}

    def probe(now: datetime) -> ProbeVerdict:
        return ProbeVerdict((), healthy["value"])

    agent = make(probe=probe, probe_every=timedelta(seconds=0))
    agent.start()
    append(log, XID79.format(t=stamp(clock)))
    agent.tick()
    assert condition(cluster, "GPUHealthy") == ("False", "GpuFallenOffBus")
    healthy["value"] = True
    clock.advance(minutes=2)
    agent.tick()
    assert condition(cluster, "GPUHealthy") == ("True", "NoNodeFault")


def test_unchanged_state_does_not_write(world) -> None:  # type: ignore[no-untyped-def]
    cluster, _log, clock, _, make = world
    agent = make()
    agent.start()
    agent.tick()
    writes = [c for c in cluster.calls if c.method != "get_node"]
    for _ in range(5):
        clock.advance(seconds=2)
        agent.tick()
    assert [c for c in cluster.calls if c.method != "get_node"] == writes


def test_cursor_file_is_atomic_json(tmp_path: Path) -> None:
    store = JsonCursorStore(tmp_path / "state" / "agent-cursor.json")
    assert store.load() == {}
    store.save({"/var/log/kern.log": {"inode": 1, "offset": 10, "line": 3}})
    assert store.load() == {"/var/log/kern.log": {"inode": 1, "offset": 10, "line": 3}}
    (tmp_path / "state" / "agent-cursor.json").write_text("{corrupt")
    assert store.load() == {}
