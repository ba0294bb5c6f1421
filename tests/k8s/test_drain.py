"""shell.drain over both backends: kubectl's pod rules, PDB 429 backoff on virtual time, timeout, 500 reported."""

from __future__ import annotations

from datetime import timedelta

from operatord.policies.model import DrainOptions
from operatord.shell.drain import DrainStatus, drain_node

from .conftest import World


class VirtualTime:
    """Injected sleep + monotonic: sleeping advances the clock; `on_sleep` lets the world move."""

    def __init__(self, on_sleep: object = None) -> None:
        self.t = 0.0
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        if callable(self.on_sleep):
            self.on_sleep(len(self.slept))

    def monotonic(self) -> float:
        return self.t


def remaining(world: World) -> list[str]:
    return [p.name for p in world.api.list_pods(node_name="gpu-1").items]


def test_evicts_managed_pods_and_skips_daemonset_and_mirror(world: World) -> None:
    world.pod("vllm-0", node="gpu-1", gpus=8)
    world.pod("job-0", node="gpu-1", owner="Job")
    world.pod("dcgm", node="gpu-1", owner="DaemonSet")
    world.pod("static", node="gpu-1", owner="Node", mirror=True)
    world.pod("elsewhere", node="gpu-2")
    vt = VirtualTime()
    report = drain_node(world.api, "gpu-1", DrainOptions(), sleep=vt.sleep, monotonic=vt.monotonic)
    assert report.status == DrainStatus.COMPLETED
    assert sorted(report.evicted) == ["default/job-0", "default/vllm-0"]
    assert sorted(report.skipped) == ["default/dcgm", "default/static"]
    assert remaining(world) == ["dcgm", "static"]
    assert vt.slept == []


def test_pdb_429_is_retried_with_backoff_until_a_replacement_is_ready(world: World) -> None:
    world.pod("vllm-0", node="gpu-1", labels={"app": "vllm"})
    world.pod("vllm-1", node="gpu-2", labels={"app": "vllm"})
    world.pdb("vllm", {"app": "vllm"}, min_available=2)

    def controller(n: int) -> None:
        if n == 3:  # the replacement replica becomes Ready elsewhere after the third backoff
            world.pod("vllm-2", node="gpu-3", labels={"app": "vllm"})

    vt = VirtualTime(controller)
    options = DrainOptions(eviction_retry=timedelta(seconds=5))
    report = drain_node(world.api, "gpu-1", options, sleep=vt.sleep, monotonic=vt.monotonic)
    assert report.status == DrainStatus.COMPLETED
    assert report.evicted == ["default/vllm-0"]
    assert len(vt.slept) == 3
    assert vt.slept == sorted(vt.slept)
    assert vt.slept[0] >= 5
    assert report.rounds == 4


def test_pdb_that_never_allows_times_out_and_reports_the_pod(world: World) -> None:
    world.pod("vllm-0", node="gpu-1", labels={"app": "vllm"})
    world.pod("other", node="gpu-1")
    world.pdb("vllm", {"app": "vllm"}, min_available=1)
    vt = VirtualTime()
    options = DrainOptions(timeout=timedelta(minutes=2), eviction_retry=timedelta(seconds=5))
    report = drain_node(world.api, "gpu-1", options, sleep=vt.sleep, monotonic=vt.monotonic)
    assert report.status == DrainStatus.TIMED_OUT
    assert list(report.blocked) == ["default/vllm-0"]
    assert report.evicted == ["default/other"]
    assert 120 <= vt.t < 120 + 60  # stopped at the deadline, not long after
    assert max(vt.slept) <= 60  # backoff is capped


def test_misconfigured_pdb_500_is_reported_not_retried(world: World) -> None:
    world.pod("vllm-0", node="gpu-1", labels={"app": "vllm", "tier": "gpu"})
    world.pod("other", node="gpu-1")
    world.pdb("one", {"app": "vllm"}, min_available=0)
    world.pdb("two", {"tier": "gpu"}, min_available=0)
    vt = VirtualTime()
    report = drain_node(world.api, "gpu-1", DrainOptions(), sleep=vt.sleep, monotonic=vt.monotonic)
    assert report.status == DrainStatus.FAILED
    assert "more than one PodDisruptionBudget" in report.failed["default/vllm-0"]
    assert report.evicted == ["default/other"]
    assert vt.slept == []


def test_unmanaged_pod_refuses_the_whole_drain_before_any_eviction(world: World) -> None:
    world.pod("vllm-0", node="gpu-1")
    world.pod("debug", node="gpu-1", owner=None)
    vt = VirtualTime()
    report = drain_node(
        world.api, "gpu-1", DrainOptions(unmanaged_pods="refuse"), sleep=vt.sleep, monotonic=vt.monotonic
    )
    assert report.status == DrainStatus.REFUSED
    assert list(report.refused) == ["default/debug"]
    assert remaining(world) == ["debug", "vllm-0"]


def test_unmanaged_pods_deleted_when_policy_says_so(world: World) -> None:
    world.pod("debug", node="gpu-1", owner=None)
    world.pod("scratch", node="gpu-1", emptydir=True)
    vt = VirtualTime()
    options = DrainOptions(unmanaged_pods="delete", delete_emptydir_data=True)
    report = drain_node(world.api, "gpu-1", options, sleep=vt.sleep, monotonic=vt.monotonic)
    assert report.status == DrainStatus.COMPLETED
    assert report.deleted == ["default/debug"]
    assert report.evicted == ["default/scratch"]
    assert remaining(world) == []


def test_emptydir_refused_when_data_must_be_kept(world: World) -> None:
    world.pod("scratch", node="gpu-1", emptydir=True)
    vt = VirtualTime()
    report = drain_node(
        world.api, "gpu-1", DrainOptions(delete_emptydir_data=False), sleep=vt.sleep, monotonic=vt.monotonic
    )
    assert report.status == DrainStatus.REFUSED
    assert remaining(world) == ["scratch"]
