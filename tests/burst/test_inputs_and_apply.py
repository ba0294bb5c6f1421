"""The scaling inputs built from the shared types (metrics, nodes, state), and the scaling/burst
actions executed through the daemon's apply path (shell.apply + shell.burst_apply)."""

from __future__ import annotations

from datetime import timedelta

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.burst.lifecycle import BurstState
from operatord.core.metrics import Known, MetricsSnapshot, ModelMetrics, Unknown, UnknownReason
from operatord.core.model import Node, NodeCondition, OwnerKind, Pod, Taint, WorkloadKey
from operatord.core.plan import Plan
from operatord.core.scaling import DemandSample
from operatord.core.scaling_inputs import (
    capacity_requests,
    demand_history,
    local_pools,
    model_signals,
    replica_pods,
)
from operatord.core.state import CapacityRequest, OperatordState
from operatord.shell import burst_apply  # noqa: F401  (registers the executors)
from operatord.shell.apply import ApplyContext, apply_plan
from operatord.shell.burst import DELETION_COST_ANNOTATION, ClusterBurstNodes
from operatord.shell.intents import IntentStore
from operatord.testing.fake_capacity import FakeCapacity
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import LABEL_INSTANCE_ID, LABEL_POOL, Mode

from .conftest import NOW, P4D, Clock, a_policy
from .test_scaling import burst_intent

READY = (NodeCondition("Ready", "True"),)


def metrics(prompt: float | None, generation: float | None, waiting: float | None = 3.0) -> MetricsSnapshot:
    def r(v: float | None) -> Known | Unknown:
        return Known(v, NOW) if v is not None else Unknown(UnknownReason.STALE)

    m = ModelMetrics(
        "llama-70b",
        r(waiting),
        r(4.0),
        r(0.5),
        None,
        r(prompt),
        r(generation),
        r(2.0),
        r(1.0),
        r(1.0),
        r(9.0),
    )
    return MetricsSnapshot(NOW, models={"llama-70b": m})


def test_model_signals_weight_tokens_and_keep_unknown_unknown() -> None:
    policy = a_policy()
    served = policy.serving.models[0]
    sig = model_signals(metrics(1000.0, 500.0), served, policy, replicas=3)
    assert sig.tokens_per_s == 0.2 * 1000 + 500
    assert (sig.queue_depth, sig.kv_cache_usage, sig.replicas) == (3.0, 0.5, 3)
    unknown = model_signals(metrics(None, 500.0), served, policy, replicas=3)
    assert unknown.tokens_per_s is None  # a partial sum would understate demand
    down = model_signals(
        MetricsSnapshot(NOW, outage=Unknown(UnknownReason.UNREACHABLE)), served, policy, replicas=3
    )
    assert (down.tokens_per_s, down.queue_depth) == (None, None)


def test_local_pools_count_only_healthy_schedulable_local_gpus() -> None:
    pool = {LABEL_POOL: "local-a100"}
    nodes = [
        Node("a", labels=pool, conditions=READY, gpus=8),
        Node("b", labels=pool, conditions=READY, gpus=8, unschedulable=True),
        Node("c", labels=pool, conditions=(NodeCondition("Ready", "False"),), gpus=8),
        Node("d", labels=pool, conditions=(*READY, NodeCondition("GPUHealthy", "False")), gpus=8),
        Node(
            "e",
            labels=pool,
            conditions=READY,
            gpus=8,
            taints=(Taint("operatord.io/burst", "NoSchedule", "true"),),
        ),
        Node("f", labels={LABEL_POOL: "burst"}, conditions=READY, gpus=8),
        Node("g", labels=pool, conditions=READY, gpus=7),
    ]
    (local,) = local_pools(nodes, a_policy())
    assert [(n.name, n.gpus) for n in local.nodes] == [("a", 8), ("g", 7)]


def test_local_pools_keep_what_faulty_nodes_still_serve() -> None:
    """A cordoned or GPU-unhealthy node keeps serving its replicas until it is drained: their GPUs
    stay local capacity (burst is bought for a drain, through a capacity request, not for a fault);
    its free GPUs take no new replica."""
    policy = a_policy()
    wl = policy.serving.models[0].workload
    pool = {LABEL_POOL: "local-a100"}
    sick = (*READY, NodeCondition("GPUHealthy", "False"))
    nodes = [
        Node("a", labels=pool, conditions=READY, gpus=8),
        Node("b", labels=pool, conditions=sick, gpus=8),
        Node("c", labels=pool, conditions=READY, gpus=8, unschedulable=True),
        Node("d", labels=pool, conditions=sick, gpus=8),
    ]

    def replica(name: str, node: str, **kw: object) -> Pod:
        return Pod(
            wl.namespace,
            name,
            node,
            controller_kind=OwnerKind.REPLICA_SET,
            controller_name=f"{wl.name}-7d9f",
            gpus=8,
            **kw,
        )  # type: ignore[arg-type]

    pods = [
        replica("r1", "b"),
        replica("r2", "c"),
        replica("r3", "d", ready=False),
        replica("r4", "d", deleting=True),
        Pod("kube-system", "dcgm", "d", controller_kind=OwnerKind.DAEMON_SET, controller_name="dcgm", gpus=0),
    ]
    (local,) = local_pools(nodes, policy, replica_pods(pods, policy.serving.models).serving_gpus)
    assert [(n.name, n.gpus) for n in local.nodes] == [("a", 8), ("b", 8), ("c", 8)]


def test_capacity_requests_and_history() -> None:
    state = OperatordState(capacity_requests=(CapacityRequest("gpu-1", 8, "gpu_fallen_off_bus", NOW),))
    assert [(r.node, r.gpus) for r in capacity_requests(state)] == [("gpu-1", 8)]
    policy = a_policy()
    sig = model_signals(metrics(1000.0, 500.0), policy.serving.models[0], policy, replicas=1)
    old = DemandSample(NOW - timedelta(minutes=31), 1.0)
    recent = DemandSample(NOW - timedelta(minutes=1), 2.0)
    assert demand_history([old, recent], NOW, sig.tokens_per_s) == (recent, DemandSample(NOW, 700.0))


def ctx(cluster: FakeClusterApi, capacity: FakeCapacity | None, mode: Mode = Mode.FULL) -> ApplyContext:
    return ApplyContext(
        cluster=cluster,
        namespace="operatord",
        policy=a_policy(),
        mode=mode,
        clock=Clock(NOW),
        capacity=capacity,
    )


def test_apply_sets_replicas_and_launches_burst_in_full_mode() -> None:
    cluster = FakeClusterApi()
    wl = WorkloadKey("Deployment", "llm", "vllm-70b")
    cluster.add_workload(wl, 2)
    fake = FakeCapacity(cluster="test", clock=Clock(NOW))
    plan = Plan(
        (
            SetReplicas(
                key="sr-1",
                reason="demand_over_supply",
                model="llama-70b",
                workload_kind="Deployment",
                namespace="llm",
                name="vllm-70b",
                replicas=3,
                previous=2,
            ),
            LaunchBurst(
                key="lb-1",
                reason="demand_over_supply",
                model="llama-70b",
                replicas=1,
                instance_type="p4d.24xlarge",
                instances=1,
                usd_per_hour=21.96,
            ),
        )
    )
    out = apply_plan(plan, ctx(cluster, fake))
    assert [o.status for o in out] == ["applied", "applied"]
    assert cluster.get_scale(wl).replicas == 3
    (intent,), _ = IntentStore(cluster, "operatord", "test").list()
    assert intent.state is BurstState.RUNNING
    assert [i.instance_id for i in fake.live()] == out[1].detail["instances"]


def test_apply_below_full_mode_only_logs_and_without_a_provider_refuses() -> None:
    cluster = FakeClusterApi()
    launch = LaunchBurst(
        key="lb-1",
        reason="demand_over_supply",
        model="llama-70b",
        replicas=1,
        instance_type="p4d.24xlarge",
        instances=1,
        usd_per_hour=21.96,
    )
    fake = FakeCapacity(cluster="test")
    assert [o.status for o in apply_plan(Plan((launch,)), ctx(cluster, fake, Mode.CORDON_ONLY))] == ["would"]
    assert fake.calls == []
    assert [o.status for o in apply_plan(Plan((launch,)), ctx(cluster, None))] == ["refused"]


def test_apply_release_moves_a_booting_instance_straight_to_terminating() -> None:
    cluster = FakeClusterApi()
    fake = FakeCapacity(cluster="test", clock=Clock(NOW))
    launch = LaunchBurst(
        key="lb-1",
        reason="demand_over_supply",
        model="llama-70b",
        replicas=1,
        instance_type="p4d.24xlarge",
        instances=1,
        usd_per_hour=21.96,
    )
    apply_plan(Plan((launch,)), ctx(cluster, fake))
    (intent,), _ = IntentStore(cluster, "operatord", "test").list()
    ids = tuple(r.instance_id for r in intent.instances)
    release = ReleaseBurst(
        key="rb-1",
        reason="supply_over_demand",
        intent_id=intent.id,
        instance_ids=ids,
        model="llama-70b",
        replicas=1,
        usd_per_hour=21.96,
    )
    (outcome,) = apply_plan(Plan((release,)), ctx(cluster, fake))
    assert outcome.status == "applied"
    (intent,), _ = IntentStore(cluster, "operatord", "test").list()
    assert [r.state for r in intent.instances] == [BurstState.TERMINATING]
    assert fake.live() == []


def test_cluster_burst_nodes_view_drain_evict_and_retire() -> None:
    cluster = FakeClusterApi()
    cluster.add_node(
        Node("burst-1", labels={LABEL_INSTANCE_ID: "i-1", LABEL_POOL: "burst"}, conditions=READY, gpus=8)
    )
    cluster.add_node(Node("gpu-1", labels={LABEL_POOL: "local-a100"}, conditions=READY, gpus=8))
    cluster.add_pod(Pod("llm", "vllm-a", node_name="burst-1", gpus=8))
    cluster.add_pod(Pod("kube-system", "dcgm-exporter-x", node_name="burst-1", gpus=0))
    nodes = ClusterBurstNodes(cluster)
    view = nodes.burst_nodes()
    assert list(view) == ["i-1"]
    assert (view["i-1"].name, view["i-1"].ready, view["i-1"].gpus_allocatable, view["i-1"].serving_pods) == (
        "burst-1",
        True,
        8,
        1,
    )

    assert nodes.begin_drain("burst-1") == 1
    assert cluster.get_node("burst-1").unschedulable
    pods = {p.name: p for p in cluster.list_pods(node_name="burst-1").items}
    assert pods["vllm-a"].annotations[DELETION_COST_ANNOTATION] == "-1000"
    assert DELETION_COST_ANNOTATION not in pods["dcgm-exporter-x"].annotations

    assert nodes.evict_serving("burst-1") == 1  # only the serving (GPU) pod
    nodes.retire("burst-1")
    nodes.retire("burst-1")  # idempotent
    assert [n.name for n in cluster.list_nodes().items] == ["gpu-1"]
    assert nodes.begin_drain("burst-1") == 0  # gone: nothing to do, no error


def test_burst_activity_comes_from_the_intent_records() -> None:
    from operatord.core.burst.launch import new_intent
    from operatord.core.scaling_inputs import burst_activity

    policy = a_policy()
    assert burst_activity([]) == (None, None)
    first = new_intent(policy, model="llama-70b", replicas=1, reason="demand_over_supply", now=NOW)
    second = new_intent(
        policy, model="llama-70b", replicas=1, reason="demand_over_supply", now=NOW + timedelta(minutes=5)
    )
    assert burst_activity([first, second]) == (NOW + timedelta(minutes=5), None)
    serving = burst_intent("b1", P4D)
    iid = serving.instances[0].instance_id
    released = serving.instance_moved(
        iid, BurstState.DRAINING, NOW + timedelta(minutes=7), "supply_over_demand"
    )
    expired = burst_intent("b2", P4D).instance_moved(
        "i-b20000", BurstState.DRAINING, NOW + timedelta(minutes=9), "instance_expired"
    )
    assert burst_activity([first, released, expired])[1] == NOW + timedelta(minutes=7)
