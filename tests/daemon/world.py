"""A whole cluster in memory for daemon tests: FakeClusterApi + FakeCapacity + FakeMetrics on a
virtual clock, a kubelet/scheduler stand-in for burst nodes, and daemons wired as `run` wires them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from operatord.core.model import Node, NodeCondition, OwnerKind, Pod, Taint, WorkloadKey, frozen_map
from operatord.policies.load import LoadedPolicy
from operatord.policies.model import Policy
from operatord.shell.leader import LeaderElector
from operatord.shell.loop import Daemon, LoopConfig
from operatord.shell.metrics import build_metrics
from operatord.shell.observe import Deadlines, Observer
from operatord.testing.fake_capacity import FakeCapacity
from operatord.testing.fake_metrics import FakeMetrics
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import LABEL_INSTANCE_ID, LABEL_POOL, TAINT_BURST

from .conftest import MODEL, NOW, PER_REPLICA, a_fatal_node, a_node, a_policy

NAMESPACE = "operatord"
WORKLOAD = WorkloadKey("Deployment", "llm", "vllm-70b")


class VirtualClock:
    """Wall clock and monotonic clock in one; `sleep` advances both (nothing really waits)."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class StaticPolicy:
    """PolicySource for tests: `token` and `loaded` are set by the test."""

    def __init__(self, loaded: LoadedPolicy) -> None:
        self.loaded = loaded
        self.token: str | None = "1"
        self.error: Exception | None = None

    def revision_token(self) -> str | None:
        return self.token

    def load(self) -> LoadedPolicy:
        if self.error is not None:
            raise self.error
        return self.loaded


def loaded(policy: Policy) -> LoadedPolicy:
    return LoadedPolicy(policy, (), "test")


@dataclass
class World:
    policy: Policy = field(default_factory=a_policy)
    clock: VirtualClock = field(default_factory=VirtualClock)
    cluster: FakeClusterApi = field(default_factory=FakeClusterApi)
    capacity: FakeCapacity = field(init=False)
    metrics: FakeMetrics = field(init=False)
    demand_replicas: float = 3.5

    def __post_init__(self) -> None:
        # Like moto: a repeated ClientToken launches again, so only operatord's protocol prevents it.
        self.capacity = FakeCapacity(cluster="test", clock=self.clock, honor_client_token=False)
        self.metrics = FakeMetrics(self.policy.metrics, models=[MODEL])

    def seed(self, local: int = 4, fatal: tuple[str, ...] = ("gpu-03",)) -> World:
        for i in range(local):
            name = f"gpu-{i:02d}"
            self.cluster.add_node(a_fatal_node_healthy(name) if name in fatal else a_node(name))
            self.cluster.add_pod(serving_pod(f"vllm-70b-6f7c9-{i}", name))
        self.cluster.add_workload(WORKLOAD, local)
        self.kubelet()
        return self

    def kubelet(self) -> None:
        """What the rest of the cluster does between ticks: metrics scraped now, launched instances
        join as burst nodes, the scheduler places a serving replica on each empty burst node."""
        self.metrics.set_model(
            MODEL,
            at=self.clock.now,
            generation_tokens_per_s=self.demand_replicas * PER_REPLICA,
            prompt_tokens_per_s=0.0,
            requests_waiting=0.0,
            kv_cache_usage=0.3,
        )
        nodes = {n.labels.get(LABEL_INSTANCE_ID): n for n in self.cluster.list_nodes().items}
        for inst in self.capacity.list_instances():
            if inst.gone or inst.instance_id in nodes:
                continue
            name = f"burst-{inst.instance_id[-6:]}"
            self.cluster.add_node(burst_node(name, inst.instance_id))
            self.cluster.add_pod(serving_pod(f"vllm-70b-6f7c9-{name}", name))

    def daemon(
        self, identity: str, *, cluster: Any = None, capacity: Any = None, executor: Any = None, **config: Any
    ) -> Daemon:
        cluster = cluster if cluster is not None else self.cluster
        capacity = capacity if capacity is not None else self.capacity
        observer = Observer(
            cluster,
            NAMESPACE,
            metrics=self.metrics,
            capacity=capacity,
            deadlines=Deadlines(5, 5, 5),
            executor=executor,
        )
        elector = LeaderElector(cluster, NAMESPACE, identity, self.clock, duration=timedelta(seconds=15))
        policy = loaded(self.policy)
        return Daemon(
            cluster=cluster,
            namespace=NAMESPACE,
            observer=observer,
            elector=elector,
            policy_source=StaticPolicy(policy),
            policy=policy,
            metrics=build_metrics(),
            capacity=capacity,
            config=LoopConfig(**config),
            clock=self.clock,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
        )


def a_fatal_node_healthy(name: str) -> Node:
    """A schedulable node whose agent just reported a fatal fault (remediation cordons it first)."""
    from operatord.testing.builders import a_finding

    return a_node(name, findings=[a_finding(first=NOW - timedelta(minutes=1), node=name)])


def serving_pod(name: str, node: str) -> Pod:
    return Pod(
        "llm",
        name,
        node,
        labels=frozen_map({"app": "vllm-70b"}),
        controller_kind=OwnerKind.REPLICA_SET,
        controller_name="vllm-70b-6f7c9",
        gpus=8,
    )


def burst_node(name: str, instance_id: str) -> Node:
    return Node(
        name=name,
        labels=frozen_map({LABEL_INSTANCE_ID: instance_id, LABEL_POOL: "burst"}),
        taints=(Taint(TAINT_BURST, "NoSchedule", "true"),),
        conditions=(NodeCondition("Ready", "True"),),
        gpus=8,
    )


__all__ = ["NAMESPACE", "WORKLOAD", "StaticPolicy", "VirtualClock", "World", "a_fatal_node", "loaded"]
