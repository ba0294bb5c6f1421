"""One contract, two implementations: FakeCapacity and Ec2Capacity on moto must behave the same
through the CapacityProvider port (design §3.5). Cases moto cannot model (ClientToken
deduplication) run against the fake only and say so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from operatord.adapters.ec2 import Ec2Capacity
from operatord.core.burst.intent import Attempt, AttemptOutcome, Offering, client_token
from operatord.policies.model import LaunchTemplate
from operatord.ports.capacity import CapacityProvider, LaunchRequest
from operatord.testing.fake_capacity import FakeCapacity
from operatord.vocab import TAG_CLUSTER, TAG_MANAGED_BY

from .conftest import Aws

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class World:
    provider: CapacityProvider
    subnets: list[dict[str, str]]
    kind: str
    aws: Aws | None = None

    def request(
        self,
        intent: str,
        count: int = 1,
        number: int = 1,
        az: int = 0,
        dry_run: bool = False,
        itype: str = "p4d.24xlarge",
    ) -> LaunchRequest:
        sub = self.subnets[az]
        token = client_token(intent, number, itype, sub["id"])
        attempt = Attempt(
            number, Offering(itype, sub["id"], sub["availability_zone"]), count, token, datetime.now(UTC)
        )
        return LaunchRequest(intent, "burst", attempt, EXPIRES, dry_run=dry_run)


@pytest.fixture(params=["fake", "ec2-moto"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        subnets = [
            {"id": "subnet-0a1b2c3d4e5f60001", "availability_zone": "us-east-1a"},
            {"id": "subnet-0a1b2c3d4e5f60002", "availability_zone": "us-east-1b"},
        ]
        yield World(FakeCapacity(cluster="test", clock=lambda: datetime.now(UTC)), subnets, "fake")
        return
    aws: Aws = request.getfixturevalue("aws")
    provider = Ec2Capacity(
        aws.ec2,
        cluster="test",
        launch_template=LaunchTemplate(name="operatord-gpu-burst"),
        sleep=lambda s: None,
    )
    yield World(provider, aws.subnets, "ec2", aws)


def test_launch_then_list_shows_tagged_instances(world: World) -> None:
    result = world.provider.launch(world.request("intent-a", count=2))
    assert result.outcome is AttemptOutcome.LAUNCHED
    assert len(result.instances) == 2  # MinCount = MaxCount: exactly the count, all or nothing
    listed = {c.instance_id: c for c in world.provider.list_instances()}
    assert set(listed) == {c.instance_id for c in result.instances}
    for c in listed.values():
        assert c.intent_id == "intent-a"
        assert c.expires_at == EXPIRES
        assert c.instance_type == "p4d.24xlarge"
        assert c.availability_zone == "us-east-1a"
        assert not c.gone


def test_each_attempt_lands_in_its_subnet(world: World) -> None:
    result = world.provider.launch(world.request("intent-b", az=1))
    assert [c.availability_zone for c in result.instances] == ["us-east-1b"]


def test_terminate_is_idempotent_and_terminated_are_gone(world: World) -> None:
    result = world.provider.launch(world.request("intent-c"))
    ids = [c.instance_id for c in result.instances]
    world.provider.terminate(ids)
    world.provider.terminate(ids)  # again: no error
    world.provider.terminate(["i-0123456789abcdef0"])  # never existed: no error
    remaining = [c for c in world.provider.list_instances() if c.instance_id in ids]
    assert all(c.gone for c in remaining)


def test_dry_run_launches_nothing(world: World) -> None:
    result = world.provider.launch(world.request("intent-d", dry_run=True))
    assert result.outcome is AttemptOutcome.DRY_RUN
    assert list(world.provider.list_instances()) == []


def test_dry_run_terminate_terminates_nothing(world: World) -> None:
    result = world.provider.launch(world.request("intent-e"))
    ids = [c.instance_id for c in result.instances]
    world.provider.terminate(ids, dry_run=True)
    assert [c.instance_id for c in world.provider.list_instances() if not c.gone] == ids


def test_foreign_instances_are_never_listed(world: World) -> None:
    if world.aws is not None:
        ec2: Any = world.aws.ec2
        sub = world.subnets[0]["id"]
        base = {"ImageId": "ami-12c6146b", "MinCount": 1, "MaxCount": 1, "SubnetId": sub}
        ec2.run_instances(**base)  # untagged
        ec2.run_instances(
            **base,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": TAG_CLUSTER, "Value": "other-cluster"},
                        {"Key": TAG_MANAGED_BY, "Value": "operatord"},
                    ],
                }
            ],
        )
        ec2.run_instances(
            **base,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": TAG_CLUSTER, "Value": "test"}]}],
        )  # ours by name, not managed by operatord
    else:
        other = FakeCapacity(cluster="other")
        other.launch(world.request("foreign"))
    assert list(world.provider.list_instances()) == []


def test_fake_only_same_token_is_deduplicated_like_ec2() -> None:
    """EC2 semantics moto lacks (research §3.6), so fake-only: the same ClientToken and parameters
    launch once; the same token with other parameters is IdempotentParameterMismatch. (Against moto,
    operatord's own protocol covers it: test_crash_points.)"""
    world = World(
        FakeCapacity(cluster="test"),
        [{"id": "subnet-0a1b2c3d4e5f60001", "availability_zone": "us-east-1a"}],
        "fake",
    )
    req = world.request("intent-f")
    first = world.provider.launch(req)
    second = world.provider.launch(req)
    assert [c.instance_id for c in second.instances] == [c.instance_id for c in first.instances]
    assert len(world.provider.list_instances()) == 1
    other = replace(req, attempt=replace(req.attempt, count=2))
    mismatch = world.provider.launch(other)
    assert mismatch.outcome is AttemptOutcome.CONFIG
    assert mismatch.code == "IdempotentParameterMismatch"


def test_launch_times_are_timezone_aware(world: World) -> None:
    result = world.provider.launch(world.request("intent-g"))
    (inst,) = result.instances
    assert inst.launched_at.tzinfo is not None
    assert abs(inst.launched_at - datetime.now(UTC)) < timedelta(days=1)
