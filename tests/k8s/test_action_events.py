"""Every action the apply path can run writes its Event on the object it concerns, naming a runbook
that exists: one case per registered executor (a new executor without a case fails the coverage
test), run through shell.apply.apply_plan against FakeClusterApi and FakeCapacity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog.testing

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.burst.observed import CloudInstance
from operatord.core.decide import ReconcileBurst
from operatord.core.fleet import SetStackCondition
from operatord.core.health import HealthState
from operatord.core.model import (
    CordonOwner,
    Event,
    Node,
    NodeCondition,
    ObjectRef,
    OwnerKind,
    Pod,
    WorkloadKey,
)
from operatord.core.plan import (
    Action,
    CloseCapacityRequest,
    Cordon,
    Drain,
    HandOff,
    Plan,
    RecordTransition,
    RequestCapacity,
    TripBreaker,
    Uncordon,
    detail,
)
from operatord.ports.cluster import Unreachable
from operatord.shell import burst_apply, fleet_apply, reconcile_apply  # noqa: F401  (register executors)
from operatord.shell.apply import EXECUTORS, ApplyContext, Outcome, apply_plan
from operatord.shell.intents import IntentStore, name_of
from operatord.testing.fake_capacity import FakeCapacity
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import LABEL_POOL, STATE_CONFIGMAP, Mode
from tests.burst.conftest import NOW, Clock, a_policy

ROOT = Path(__file__).resolve().parents[2]
NS = "operatord"
POLICY = a_policy()
STATE = ObjectRef("ConfigMap", STATE_CONFIGMAP, NS)


@dataclass
class World:
    cluster: FakeClusterApi = field(default_factory=FakeClusterApi)
    clock: Clock = field(default_factory=lambda: Clock(NOW))
    capacity: FakeCapacity = field(init=False)

    def __post_init__(self) -> None:
        self.capacity = FakeCapacity(cluster="test", clock=self.clock)
        for name in ("gpu-1", "gpu-2"):
            self.cluster.add_node(
                Node(
                    name,
                    labels={LABEL_POOL: "local-a100"},
                    conditions=(NodeCondition("Ready", "True"),),
                    gpus=8,
                )
            )
        self.cluster.add_pod(Pod("llm", "vllm-1", "gpu-1", controller_kind=OwnerKind.REPLICA_SET, gpus=8))
        self.cluster.cordon("gpu-2", CordonOwner("operatord", "gpu_fallen_off_bus", NOW))
        self.cluster.add_workload(WorkloadKey("Deployment", "llm", "vllm-70b"), 2)
        self.cluster.add_workload(WorkloadKey("StatefulSet", "llm", "sglang-70b"), 2)

    def apply(self, *actions: Action) -> list[Outcome]:
        ctx = ApplyContext(
            self.cluster,
            NS,
            POLICY,
            Mode.FULL,
            clock=self.clock,
            sleep=lambda s: None,
            capacity=self.capacity,
        )
        return apply_plan(Plan(tuple(actions)), ctx)

    def launched(self) -> tuple[str, tuple[str, ...]]:
        """Launch one burst replica first (its Event is not the one under test) and return the intent."""
        assert [o.status for o in self.apply(launch())] == ["applied"]
        (intent,), _ = IntentStore(self.cluster, NS, "test").list()
        self.cluster.events.clear()
        return intent.id, tuple(r.instance_id for r in intent.instances)


def launch(key: str = "lb-1") -> LaunchBurst:
    return LaunchBurst(
        key=key,
        reason="demand_over_supply",
        model="llama-70b",
        replicas=1,
        instance_type="p4d.24xlarge",
        instances=1,
        usd_per_hour=21.96,
    )


def set_replicas(kind: str, name: str) -> SetReplicas:
    return SetReplicas(
        key=f"sr-{name}",
        reason="demand_over_supply",
        model="llama-70b",
        workload_kind=kind,
        namespace="llm",
        name=name,
        replicas=3,
        previous=2,
    )


def intent_ref(intent_id: str) -> ObjectRef:
    return ObjectRef("ConfigMap", name_of(intent_id), NS)


Prepared = tuple[Action, Callable[[], ObjectRef]]  # the action, and (asked after it ran) its object


@dataclass(frozen=True)
class Case:
    """An action (built against a prepared world) and the one Event it must write."""

    kind: type[Action]
    prepare: Callable[[World], Prepared]
    type: str
    reason: str
    events: int = 1


def _release(w: World) -> Prepared:
    intent, ids = w.launched()
    action = ReleaseBurst(
        key="rb-1",
        reason="supply_over_demand",
        intent_id=intent,
        instance_ids=ids,
        model="llama-70b",
        replicas=1,
        usd_per_hour=21.96,
    )
    return action, lambda: intent_ref(intent)


def _reconcile_intent(w: World) -> Prepared:
    intent, ids = w.launched()
    w.clock.advance(minutes=16)  # no Node registered within timeouts.register: terminate it
    action = ReconcileBurst(
        key="rc-1", reason="register_timeout", intents=(intent,), terminate=ids, orphans=()
    )
    return action, lambda: intent_ref(intent)


def _reconcile_orphan(w: World) -> Prepared:
    w.capacity.add_foreign(
        CloudInstance("i-0000000000000dead", "p4d.24xlarge", "us-east-1a", "running", NOW, "gone-intent")
    )
    w.clock.advance(hours=1)
    action = ReconcileBurst(
        key="rc-2", reason="orphan_instance", intents=(), terminate=(), orphans=("i-0000000000000dead",)
    )
    return action, lambda: STATE


def _launch(w: World) -> Prepared:
    def about() -> ObjectRef:
        (intent,), _ = IntentStore(w.cluster, NS, "test").list()
        return intent_ref(intent.id)

    return launch(), about


def _node(action: Action) -> Callable[[World], Prepared]:
    node = action.node
    assert node is not None
    return lambda w: (action, lambda: ObjectRef.node(node))


def _fixed(action: Action, about: ObjectRef) -> Callable[[World], Prepared]:
    return lambda w: (action, lambda: about)


CASES = {
    "cordon": Case(
        Cordon,
        _node(Cordon(key="c", reason="gpu_fallen_off_bus", node="gpu-1", owner="operatord")),
        "Warning",
        "gpu_fallen_off_bus",
    ),
    # A drain that finishes in one call says when it started and when it ended.
    "drain": Case(
        Drain,
        _node(Drain(key="d", reason="gpu_fallen_off_bus", node="gpu-1", actor="operatord")),
        "Normal",
        "gpu_fallen_off_bus",
        events=2,
    ),
    "uncordon": Case(
        Uncordon,
        _node(Uncordon(key="u", reason="node_recovered", node="gpu-2", actor="operatord")),
        "Normal",
        "node_recovered",
    ),
    "hand_off": Case(
        HandOff,
        _node(
            HandOff(
                key="h",
                reason="awaiting_repair",
                node="gpu-2",
                fault="gpu_fallen_off_bus",
                runbook="runbooks/gpu_fallen_off_bus.md",
            )
        ),
        "Warning",
        "awaiting_repair",
    ),
    "record": Case(
        RecordTransition,
        _node(
            RecordTransition(
                key="r",
                reason="gpu_nvlink_error",
                node="gpu-1",
                event="fault_seen",
                to_state=HealthState.SUSPECT,
            )
        ),
        "",
        "",
        events=0,
    ),
    "request_capacity": Case(
        RequestCapacity,
        _node(
            RequestCapacity(
                key="rq",
                reason="capacity_request",
                node="gpu-1",
                gpus=8,
                since=NOW,
                detail=detail(fault="gpu_nvlink_error"),
            )
        ),
        "Normal",
        "capacity_request",
    ),
    "close_capacity_request": Case(
        CloseCapacityRequest,
        _node(CloseCapacityRequest(key="cl", reason="node_recovered", node="gpu-1")),
        "Normal",
        "node_recovered",
    ),
    "trip_breaker": Case(
        TripBreaker,
        _fixed(
            TripBreaker(key="t", reason="breaker_open", since=NOW, detail=detail(recent=5, nodes=10)), STATE
        ),
        "Warning",
        "breaker_open",
    ),
    "stack_condition": Case(
        SetStackCondition,
        _node(
            SetStackCondition(
                key="s", reason="version_skew", node="gpu-1", consistent=False, message="driver 550 vs 535"
            )
        ),
        "Warning",
        "version_skew",
    ),
    "set_replicas_deployment": Case(
        SetReplicas,
        _fixed(set_replicas("Deployment", "vllm-70b"), ObjectRef("Deployment", "vllm-70b", "llm", "apps/v1")),
        "Normal",
        "demand_over_supply",
    ),
    "set_replicas_statefulset": Case(
        SetReplicas,
        _fixed(
            set_replicas("StatefulSet", "sglang-70b"),
            ObjectRef("StatefulSet", "sglang-70b", "llm", "apps/v1"),
        ),
        "Normal",
        "demand_over_supply",
    ),
    "launch_burst": Case(LaunchBurst, _launch, "Normal", "demand_over_supply"),
    "release_burst": Case(ReleaseBurst, _release, "Normal", "supply_over_demand"),
    "reconcile_burst_intent": Case(ReconcileBurst, _reconcile_intent, "Warning", "register_timeout"),
    "reconcile_burst_orphan": Case(ReconcileBurst, _reconcile_orphan, "Warning", "orphan_instance"),
}


def test_every_registered_executor_has_a_case() -> None:
    assert set(EXECUTORS) == {c.kind for c in CASES.values()}


@pytest.mark.parametrize("name", list(CASES))
def test_applied_action_writes_its_event_on_the_object_it_concerns(name: str) -> None:
    case = CASES[name]
    w = World()
    action, about = case.prepare(w)
    (outcome,) = w.apply(action)
    assert outcome.status == "applied", outcome
    events = w.cluster.events
    assert len(events) == case.events, events
    for event in events:
        assert event.involved == about()
        assert event.reason == case.reason
        runbook = f"runbooks/{case.reason}.md"
        assert runbook in event.message
        assert (ROOT / runbook).is_file()
    if events:
        assert events[-1].type == case.type


def _only_event(w: World) -> Event:
    (event,) = w.cluster.events
    return event


def test_a_launch_refused_by_a_cap_warns_on_operatord_state_with_the_cap_as_reason() -> None:
    w = World()
    big = LaunchBurst(
        key="lb-big",
        reason="demand_over_supply",
        model="llama-70b",
        replicas=8,
        instance_type="p4d.24xlarge",
        instances=8,
        usd_per_hour=8 * 21.96,
    )
    (outcome,) = w.apply(big)
    assert outcome.status == "failed"
    event = _only_event(w)
    assert (event.involved, event.type) == (STATE, "Warning")
    assert event.reason in ("burst_ceiling", "spend_cap")
    assert f"runbooks/{event.reason}.md" in event.message
    assert (ROOT / "runbooks" / f"{event.reason}.md").is_file()


def test_a_launch_with_the_cloud_unreachable_warns() -> None:
    w = World()
    w.capacity.unreachable = True
    (outcome,) = w.apply(launch())
    assert outcome.status == "failed"
    event = _only_event(w)
    assert (event.involved, event.type, event.reason) == (STATE, "Warning", "demand_over_supply")


@pytest.mark.parametrize(
    "action",
    [
        set_replicas("Deployment", "vllm-70b"),
        Uncordon(key="u", reason="node_recovered", node="gpu-1", actor="operatord"),  # not cordoned
        Cordon(key="c", reason="gpu_fallen_off_bus", node="gpu-2", owner="operatord"),  # already
    ],
    ids=["same-replicas", "uncordon-schedulable", "cordon-cordoned"],
)
def test_unchanged_actions_write_no_event(action: Action) -> None:
    w = World()
    if isinstance(action, SetReplicas):
        w.cluster.set_scale(WorkloadKey("Deployment", "llm", "vllm-70b"), action.replicas)
    (outcome,) = w.apply(action)
    assert outcome.status == "unchanged"
    assert w.cluster.events == []


def test_a_second_trip_of_an_open_breaker_writes_no_second_event() -> None:
    w = World()
    w.apply(TripBreaker(key="t1", reason="breaker_open", since=NOW))
    w.clock.advance(minutes=1)
    (outcome,) = w.apply(TripBreaker(key="t2", reason="breaker_open", since=w.clock.now))
    assert outcome.status == "unchanged"
    assert len(w.cluster.events) == 1


def test_an_event_that_cannot_be_written_is_logged_and_the_action_still_applies() -> None:
    w = World()
    w.cluster.fail_next("create_event", Unreachable("api server down", 503))
    with structlog.testing.capture_logs() as logs:
        (outcome,) = w.apply(set_replicas("Deployment", "vllm-70b"))
    assert outcome.status == "applied"
    assert w.cluster.get_scale(WorkloadKey("Deployment", "llm", "vllm-70b")).replicas == 3
    (lost,) = [e for e in logs if e["event"] == "event.not_recorded"]
    assert (lost["kind"], lost["namespace"], lost["name"]) == ("Deployment", "llm", "vllm-70b")


def test_a_long_message_keeps_its_runbook_within_the_limit() -> None:
    w = World()
    action = SetStackCondition(
        key="s", reason="version_skew", node="gpu-1", consistent=False, message="x" * 5000
    )
    w.apply(action)
    event = _only_event(w)
    assert len(event.message) <= 1024
    assert event.message.endswith("(runbooks/version_skew.md)")
