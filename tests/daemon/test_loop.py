"""The daemon loop with fakes on a virtual clock: one tick end to end, modes, followers, leader
hand-over, stopping mid-plan, slow sources, policy reload, metrics."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

from prometheus_client import generate_latest

from operatord.core.metrics import MetricsSnapshot
from operatord.policies.load import LoadedPolicy
from operatord.shell.leader import LEASE_NAME
from operatord.vocab import ANNOTATION_CORDONED_BY, Mode

from .conftest import a_policy
from .world import NAMESPACE, World, loaded


def sample(daemon: Any, name: str, **labels: str) -> float:
    value = daemon.metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def cordoned(world: World) -> list[str]:
    return sorted(n.name for n in world.cluster.list_nodes().items if n.unschedulable)


def test_a_tick_observes_decides_applies_and_records() -> None:
    w = World().seed()
    d = w.daemon("a")
    assert d.renew()
    report = d.tick()
    assert report.outcome == "ok"
    assert [(o.kind, o.node, o.status) for o in report.outcomes] == [("cordon", "gpu-03", "applied")]
    assert cordoned(w) == ["gpu-03"]
    [event] = [e for e in w.cluster.events if e.name == "gpu-03"]
    assert "runbooks/gpu_fallen_off_bus.md" in event.message
    assert sample(d, "operatord_ticks_total", outcome="ok") == 1
    assert sample(d, "operatord_actions_total", kind="cordon", outcome="applied") == 1
    assert sample(d, "operatord_decisions_total", reason="gpu_fallen_off_bus", decision="action") == 1
    assert sample(d, "operatord_leader") == 1
    assert sample(d, "operatord_leader_heartbeat_timestamp_seconds") == w.clock.now.timestamp()
    assert b"operatord_tick_duration_seconds_count 1.0" in generate_latest(d.metrics.registry)
    assert d.ready() == (True, "ok")


def test_mode_flag_only_lowers_the_policy_mode() -> None:
    w = World().seed()
    d = w.daemon("a", mode=Mode.OBSERVE)
    d.renew()
    assert [o.status for o in d.tick().outcomes] == ["would"]
    assert cordoned(w) == []
    w2 = World(policy=a_policy("cordon-only")).seed()
    d2 = w2.daemon("a", mode=Mode.FULL)  # asking for more than the policy allows changes nothing
    assert d2.mode is Mode.CORDON_ONLY


def test_dry_run_writes_nothing_not_even_the_lease() -> None:
    w = World().seed()
    d = w.daemon("a", dry_run=True)
    report = d.tick()
    assert [o.status for o in report.outcomes] == ["would"]
    assert not [
        c
        for c in w.cluster.calls
        if c.method not in ("list_nodes", "get_configmap", "list_pods", "get_scale", "list_configmaps")
    ]


def test_only_the_leader_acts_and_followers_still_observe() -> None:
    w = World().seed()
    a, b = w.daemon("a"), w.daemon("b")
    assert a.renew()
    assert not b.renew()
    follower = b.tick()
    assert follower.outcome == "skipped"
    assert follower.decision is None
    assert cordoned(w) == []
    assert sample(b, "operatord_ticks_total", outcome="skipped") == 1
    assert sample(b, "operatord_leader") == 0
    assert b.ready() == (True, "ok")  # followers serve metrics and are ready
    a.tick()
    assert cordoned(w) == ["gpu-03"]


def test_killing_the_leader_hands_over_within_the_lease_duration() -> None:
    w = World().seed()
    a, b = w.daemon("a"), w.daemon("b")
    a.renew()
    b.renew()
    step = a.elector.renew_every.total_seconds()
    killed_at = w.clock.now  # `a` dies: it never renews again
    both = 0
    while not b.elector.is_leader():
        w.clock.advance(step)
        b.renew()
        both += a.elector.is_leader() and b.elector.is_leader()
        assert w.clock.now - killed_at <= a.elector.duration + 2 * a.elector.renew_every
    assert both == 0  # never two leaders at once
    assert not a.elector.is_leader()
    assert w.cluster.get_lease(NAMESPACE, LEASE_NAME).holder == "b"
    assert b.tick().outcome == "ok"
    assert cordoned(w) == ["gpu-03"]


def test_a_released_lease_is_taken_at_the_next_round() -> None:
    w = World().seed()
    a, b = w.daemon("a"), w.daemon("b")
    a.renew()
    b.renew()
    a.elector.release()
    assert w.cluster.get_lease(NAMESPACE, LEASE_NAME).holder is None
    assert b.renew()
    assert not a.renew()  # a released elector never stands again (the process is exiting)


def test_a_leader_that_cannot_renew_stops_acting_before_anyone_else_may_start() -> None:
    w = World().seed()
    a = w.daemon("a")
    a.renew()
    from operatord.ports.cluster import Unreachable

    w.cluster.fail_next("get_lease", Unreachable("api down"), times=100)
    w.clock.advance(a.elector.renew_deadline.total_seconds())
    a.renew()
    assert not a.elector.is_leader()
    assert a.tick().outcome == "skipped"
    assert cordoned(w) == []


class StopAfterFirstCordon:
    """Stands in for SIGTERM arriving while the first action runs."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.daemon: Any = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.world.cluster, name)
        if name != "cordon":
            return attr

        def cordon(*args: Any, **kwargs: Any) -> Any:
            out = attr(*args, **kwargs)
            self.daemon.stopping.set()
            return out

        return cordon


def test_stopping_finishes_the_current_action_and_starts_no_other() -> None:
    w = World().seed(local=10, fatal=("gpu-01", "gpu-02"))
    proxy = StopAfterFirstCordon(w)
    d = w.daemon("a", cluster=proxy)
    proxy.daemon = d
    d.renew()
    report = d.tick()
    statuses = [(o.kind, o.status) for o in report.outcomes]
    assert statuses == [("cordon", "applied"), ("cordon", "skipped")]
    assert len(cordoned(w)) == 1


class SlowMetrics:
    def __init__(self) -> None:
        self.release = threading.Event()

    def snapshot(self, now: Any) -> MetricsSnapshot:
        self.release.wait(10)
        return MetricsSnapshot(now)

    def history(self, *args: Any) -> Any:
        raise NotImplementedError


def test_a_slow_source_degrades_the_snapshot_instead_of_stalling_the_tick() -> None:
    w = World().seed()
    d = w.daemon("a")
    slow = SlowMetrics()
    d.observer.metrics = slow
    d.observer.deadlines = replace(d.observer.deadlines, prometheus=0.2)
    d.renew()
    try:
        report = d.tick()
        assert report.outcome == "ok"
        assert report.observation is not None
        assert report.observation.snapshot.metrics is None
        assert report.observation.failed("prometheus")
        assert [o.kind for o in report.outcomes] == ["cordon"]  # remediation went on
        assert sample(d, "operatord_api_errors_total", dependency="prometheus", kind="timeout") == 1
        again = d.tick()  # the first read still hangs: not started twice, still degraded
        assert again.observation is not None
        assert again.observation.failed("prometheus")
    finally:
        slow.release.set()


def test_inline_reads_degrade_a_failing_source_as_threads_do() -> None:
    """The simulator reads its in-memory world inline (no thread per source); a source that fails
    still only degrades the snapshot, and the tick's locks are not taken twice."""
    from operatord.ports.cluster import Unreachable
    from operatord.shell.observe import InlineExecutor

    w = World().seed()
    d = w.daemon("a", executor=InlineExecutor())
    d.renew()
    w.cluster.fail_next("list_pods", Unreachable("connection refused"))
    report = d.tick()
    assert report.outcome == "ok"
    assert report.observation is not None
    assert report.observation.snapshot.pods is None
    assert report.observation.failed("kubernetes")
    assert [o.kind for o in report.outcomes] == ["cordon"]
    assert d.tick().observation.snapshot.pods is not None  # type: ignore[union-attr]


def test_policy_reload_when_the_revision_changes_and_a_bad_one_is_refused() -> None:
    w = World().seed()
    d = w.daemon("a")
    d.prime()
    source = d.policy_source
    assert not d.reload_policy()  # same token
    source.token = "2"
    source.loaded = loaded(a_policy("observe"))
    assert d.reload_policy()
    assert d.mode is Mode.OBSERVE
    assert d.loaded.revision == source.loaded.revision
    source.token = "3"
    source.error = ValueError("bad policy")
    assert not d.reload_policy()
    assert d.mode is Mode.OBSERVE  # the running policy stays


def test_the_api_down_makes_the_replica_unready_and_counts_the_error() -> None:
    from operatord.ports.cluster import Unreachable

    w = World().seed()
    d = w.daemon("a")
    d.renew()
    d.tick()
    w.cluster.fail_next("list_nodes", Unreachable("connection refused"))
    report = d.tick()
    assert report.outcome == "error"
    assert d.ready()[0] is False
    assert sample(d, "operatord_api_errors_total", dependency="kubernetes", kind="unreachable") == 1
    assert sample(d, "operatord_ticks_total", outcome="error") == 1


def test_burst_gauges_follow_the_intents() -> None:
    w = World().seed()
    d = w.daemon("a")
    d.renew()
    for _ in range(4):
        d.tick()
        w.clock.advance(30)
        w.kubelet()
        d.renew()
    d.tick()
    assert sample(d, "operatord_burst_instances", state="serving") == 1
    assert sample(d, "operatord_burst_spend_usd", period="hour") > 0
    assert sample(d, "operatord_burst_cap_usd", period="hour") == 120


def test_owner_annotation_marks_operatord() -> None:
    w = World().seed()
    d = w.daemon("a")
    d.renew()
    d.tick()
    node = w.cluster.get_node("gpu-03")
    assert node.annotations[ANNOTATION_CORDONED_BY] == "operatord"
    assert isinstance(d.loaded, LoadedPolicy)
    assert d.alive(w.clock.now + timedelta(seconds=30)) == (True, "ok")
    assert d.alive(w.clock.now + timedelta(hours=1))[0] is False


def test_every_action_kind_decide_plans_has_an_executor_in_the_daemon() -> None:
    """A driver outlier makes decide() plan stack conditions (fleet skew): the daemon applies them."""
    w = World()
    w.seed(local=4, fatal=())
    for i in range(4):
        node = w.cluster.get_node(f"gpu-{i:02d}")
        driver = "550.54.15" if i == 3 else "535.161.08"
        labels = {**node.labels, "nvidia.com/cuda.driver-version.full": driver}
        w.cluster.update_node(replace(node, labels=labels))
    d = w.daemon("a")
    d.renew()
    report = d.tick()
    assert report.outcome == "ok", report.error
    kinds = {(o.kind, o.status) for o in report.outcomes}
    assert ("stack_condition", "applied") in kinds
    assert not [o for o in report.outcomes if o.status == "failed"]
    from operatord.core import decide as decide_module
    from operatord.shell.apply import EXECUTORS

    planned = {type(a) for a in report.decision.plan.actions} if report.decision else set()
    assert planned <= set(EXECUTORS)
    assert decide_module.ReconcileBurst in EXECUTORS
