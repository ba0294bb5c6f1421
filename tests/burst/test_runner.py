"""The launch loop and reconcile through BurstRunner: fallback along AZs and the chain in one tick,
quota and configuration errors, partial multi-node results, and the boot/scale-in lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import botocore.awsrequest

from operatord.adapters.ec2 import Ec2Capacity
from operatord.core.burst.intent import AttemptOutcome
from operatord.core.burst.lifecycle import BurstState
from operatord.core.burst.observed import LaunchResult, NodeView
from operatord.policies.model import LaunchTemplate, Policy
from operatord.ports.capacity import LaunchRequest
from operatord.shell.burst import BurstRunner
from operatord.shell.intents import IntentStore
from operatord.testing.fake_capacity import FakeCapacity
from operatord.vocab import Reason

from .conftest import Aws, Clock, MemoryConfigMaps, a_policy, multinode_policy, policy_doc

MODEL = "llama-70b"


@dataclass
class Nodes:
    """BurstNodes in memory: tests set what Kubernetes shows per instance."""

    views: dict[str, NodeView] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)

    def burst_nodes(self) -> Mapping[str, NodeView]:
        return dict(self.views)

    def begin_drain(self, node_name: str) -> int:
        self.marked.append(node_name)
        return 1

    def evict_serving(self, node_name: str) -> int:
        self.evicted.append(node_name)
        return 1

    def retire(self, node_name: str) -> None:
        self.retired.append(node_name)
        self.views = {k: v for k, v in self.views.items() if v.name != node_name}

    def show(self, instance_id: str, *, ready: bool = True, gpus: int = 8, serving: int = 0) -> None:
        self.views[instance_id] = NodeView(f"node-{instance_id[-4:]}", instance_id, ready, gpus, serving)


def runner(
    policy: Policy,
    capacity: Any,
    clock: Clock,
    cms: MemoryConfigMaps,
    nodes: Nodes | None = None,
    dry_run: bool = False,
) -> BurstRunner:
    return BurstRunner(
        store=IntentStore(cms, "operatord", "test"),
        capacity=capacity,
        policy=policy,
        clock=clock,
        nodes=nodes,
        dry_run=dry_run,
    )


def intents(cms: MemoryConfigMaps) -> list[Any]:
    return list(IntentStore(cms, "operatord", "test").list()[0])


def test_ice_falls_back_to_the_next_az_in_the_same_tick_on_moto(aws: Aws) -> None:
    policy = Policy.model_validate(policy_doc(subnets=aws.subnets))
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    calls: list[str] = []

    def ice_in_1a(params: dict[str, Any], **_: Any) -> Any:
        az_a = aws.subnets[0]["id"]
        calls.append("call")
        if (
            f"SubnetId={az_a}" in str(params.get("body"))
            or (params.get("body") or {}).get("SubnetId") == az_a
        ):
            body = {
                "Error": {"Code": "InsufficientInstanceCapacity", "Message": "no p4d"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            }
            return botocore.awsrequest.AWSResponse("https://ec2", 500, {}, None), body
        return None

    aws.ec2.meta.events.register("before-call.ec2.RunInstances", ice_in_1a)
    cap = Ec2Capacity(
        aws.ec2,
        cluster="test",
        launch_template=LaunchTemplate(name="operatord-gpu-burst"),
        sleep=lambda s: None,
    )
    cms = MemoryConfigMaps()
    out = runner(policy, cap, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    assert [o.kind for o in out] == ["launched"]
    assert out[0].detail["availability_zone"] == "us-east-1b"
    (intent,) = intents(cms)
    assert [(a.offering.availability_zone, a.outcome) for a in intent.attempts] == [
        ("us-east-1a", AttemptOutcome.CAPACITY),
        ("us-east-1b", AttemptOutcome.LAUNCHED),
    ]
    assert len(calls) == 2

    # The (p4d, us-east-1a) offering is remembered for capacity_backoff: the next launch skips it.
    clock.advance(seconds=30)
    runner(policy, cap, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply", seq=1)
    assert len(calls) == 3
    clock.advance(minutes=3)
    runner(policy, cap, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply", seq=2)
    assert len(calls) == 5  # backoff over: 1a is tried again (and refused again)


def test_fallback_walks_the_instance_type_chain_after_every_az() -> None:
    clock = Clock()
    fake = FakeCapacity(
        clock=clock, capacity={("p4d.24xlarge", "us-east-1a"): 0, ("p4d.24xlarge", "us-east-1b"): 0}
    )
    cms = MemoryConfigMaps()
    out = runner(a_policy(), fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    assert out[-1].kind == "launched"
    assert out[-1].detail == {"instance_type": "p4de.24xlarge", "availability_zone": "us-east-1a"}
    assert [(c.instance_type, c.subnet[-1]) for c in fake.calls if c.op == "launch"] == [
        ("p4d.24xlarge", "1"),
        ("p4d.24xlarge", "2"),
        ("p4de.24xlarge", "1"),
    ]


def test_no_capacity_anywhere_fails_the_intent_and_holds_offerings() -> None:
    clock = Clock()
    fake = FakeCapacity(clock=clock, default_capacity=0)
    cms = MemoryConfigMaps()
    out = runner(a_policy(), fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    assert out[-1].kind == "launch_failed"
    assert out[-1].reason == Reason.NO_CAPACITY.value
    assert len([c for c in fake.calls if c.op == "launch"]) == 4
    (intent,) = intents(cms)
    assert intent.state is BurstState.LAUNCH_FAILED


def test_quota_error_stops_launching_until_the_backoff_passes() -> None:
    clock = Clock()
    fake = FakeCapacity(clock=clock, fail_next=["VcpuLimitExceeded"])
    cms = MemoryConfigMaps()
    policy = a_policy(quota_backoff="30m")
    out = runner(policy, fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    assert (out[-1].kind, out[-1].reason) == ("launch_failed", "quota_exhausted")
    clock.advance(minutes=10)
    out = runner(policy, fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply", seq=1)
    assert (out[-1].kind, out[-1].reason) == ("launch_failed", "quota_exhausted")
    assert len([c for c in fake.calls if c.op == "launch"]) == 1  # no hot retry against a quota
    clock.advance(minutes=21)
    out = runner(policy, fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply", seq=2)
    assert out[-1].kind == "launched"


def test_configuration_error_fails_the_plan_without_fallback() -> None:
    clock = Clock()
    fake = FakeCapacity(clock=clock, fail_next=["InvalidParameterCombination"])
    cms = MemoryConfigMaps()
    out = runner(a_policy(), fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    assert (out[-1].kind, out[-1].reason) == ("launch_failed", "launch_rejected")
    assert out[-1].detail["code"] == "InvalidParameterCombination"
    assert len([c for c in fake.calls if c.op == "launch"]) == 1


class PartialCapacity(FakeCapacity):
    """Returns one instance fewer than asked on the first launch (what a MinCount=1 bug would do)."""

    def launch(self, request: LaunchRequest) -> LaunchResult:
        result = super().launch(request)
        if result.outcome is AttemptOutcome.LAUNCHED and len(self.launches()) == 1:
            return replace(result, instances=result.instances[:-1])
        return result


def test_partial_multinode_result_is_rolled_back_and_the_next_offering_tried() -> None:
    clock = Clock()
    fake = PartialCapacity(clock=clock)
    cms = MemoryConfigMaps()
    out = runner(multinode_policy(), fake, clock, cms).launch(
        replicas=1, model=MODEL, reason="demand_over_supply"
    )
    assert [o.kind for o in out] == ["rolled_back", "launched"]
    (intent,) = intents(cms)
    rolled = [r for r in intent.instances if r.state is BurstState.TERMINATING]
    assert len(rolled) == 1  # tracked until EC2 confirms, never untracked
    assert len([r for r in intent.instances if r.state is BurstState.RUNNING]) == 2
    # The orphaned half-group instance the fake returned but did not report is cleaned up by the orphan GC.
    clock.advance(minutes=11)
    runner(multinode_policy(), fake, clock, cms).reconcile()
    assert sorted(i.instance_id for i in fake.live()) == sorted(
        r.instance_id for r in intents(cms)[0].instances if r.state.live
    )


def test_boot_to_serving_then_scale_in_protocol() -> None:
    clock = Clock()
    fake = FakeCapacity(clock=clock)
    cms = MemoryConfigMaps()
    nodes = Nodes()
    policy = a_policy()
    runner(policy, fake, clock, cms, nodes).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    (iid,) = [i.instance_id for i in fake.live()]

    clock.advance(minutes=3)
    nodes.show(iid, ready=False, gpus=0)
    runner(policy, fake, clock, cms, nodes).reconcile()
    assert intents(cms)[0].instances[0].state is BurstState.REGISTERED

    clock.advance(minutes=4)
    nodes.show(iid, ready=True, gpus=8, serving=1)
    runner(policy, fake, clock, cms, nodes).reconcile()
    rec = intents(cms)[0].instances[0]
    assert rec.state is BurstState.SERVING
    assert rec.node == f"node-{iid[-4:]}"

    out = runner(policy, fake, clock, cms, nodes).release(intents(cms)[0].id, iid, Reason.SUPPLY_OVER_DEMAND)
    assert [o.kind for o in out] == ["draining"]
    assert nodes.marked == [rec.node]  # pod-deletion-cost first: burst replicas go before local ones
    assert fake.live()  # still running while its pods finish

    # Pods still there after a minute (replicas moved to local nodes, not removed) are evicted.
    runner(policy, fake, clock, cms, nodes).reconcile()
    assert nodes.evicted == []
    clock.advance(minutes=1)
    runner(policy, fake, clock, cms, nodes).reconcile()
    assert nodes.evicted == [rec.node]
    assert intents(cms)[0].instances[0].state is BurstState.DRAINING

    nodes.show(iid, serving=0)
    runner(policy, fake, clock, cms, nodes).reconcile()
    assert intents(cms)[0].instances[0].state is BurstState.TERMINATING
    assert nodes.retired == [rec.node]  # cordon + delete the Node, then terminate
    assert not fake.live()
    runner(policy, fake, clock, cms, nodes).reconcile()
    assert intents(cms)[0].instances[0].state is BurstState.TERMINATED


def test_an_instance_that_never_registers_is_terminated_at_the_register_deadline() -> None:
    clock = Clock()
    fake = FakeCapacity(clock=clock)
    cms = MemoryConfigMaps()
    policy = a_policy(timeouts={"launch": "5m", "register": "15m", "serving": "30m"})
    runner(policy, fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    clock.advance(minutes=14)
    runner(policy, fake, clock, cms).reconcile()
    assert fake.live()
    clock.advance(minutes=1)
    out = runner(policy, fake, clock, cms).reconcile()
    assert [(o.kind, o.reason) for o in out if o.kind == "terminated"] == [("terminated", "register_timeout")]
    assert not fake.live()


def test_dry_run_writes_nothing_and_launches_nothing() -> None:
    clock = Clock()
    fake = FakeCapacity(clock=clock)
    cms = MemoryConfigMaps()
    out = runner(a_policy(), fake, clock, cms, dry_run=True).launch(
        replicas=2, model=MODEL, reason="human_request"
    )
    assert [o.kind for o in out] == ["would_launch"]
    assert out[0].detail["count"] == 2
    assert cms.items == {}
    assert fake.live() == []
    assert [c.dry_run for c in fake.calls if c.op == "launch"] == [True]


def test_terminate_refuses_instances_operatord_does_not_own() -> None:
    clock = Clock()
    fake = FakeCapacity(clock=clock)
    cms = MemoryConfigMaps()
    r = runner(a_policy(), fake, clock, cms)
    r.launch(replicas=1, model=MODEL, reason="demand_over_supply")
    (iid,) = [i.instance_id for i in fake.live()]
    out = r.terminate([iid, "i-0000000000000beef"], Reason.HUMAN_REQUEST)
    assert {(o.kind, o.instance_ids) for o in out} == {
        ("terminated", (iid,)),
        ("refused", ("i-0000000000000beef",)),
    }
    assert intents(cms)[0].instances[0].state is BurstState.TERMINATING
    assert not fake.live()


def test_fallback_never_breaks_a_cap_with_a_pricier_type() -> None:
    """p4d has no capacity; p4de would fit the instance count but not the $/hour cap: nothing launches."""
    clock = Clock()
    fake = FakeCapacity(
        clock=clock, capacity={("p4d.24xlarge", "us-east-1a"): 0, ("p4d.24xlarge", "us-east-1b"): 0}
    )
    cms = MemoryConfigMaps()
    policy = a_policy(max_usd_per_hour=25, max_usd_per_day=600)
    out = runner(policy, fake, clock, cms).launch(replicas=1, model=MODEL, reason="demand_over_supply")
    assert (out[-1].kind, out[-1].reason) == ("launch_failed", "no_capacity")
    assert [c.instance_type for c in fake.calls if c.op == "launch"] == ["p4d.24xlarge", "p4d.24xlarge"]
    assert fake.live() == []
