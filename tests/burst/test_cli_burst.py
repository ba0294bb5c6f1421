"""`operatord burst ...` end to end: the real CLI in a subprocess against the shared harness
(Kubernetes stand-in + moto server with server-side EC2 fault hooks)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from operatord.testing.harness import Harness
from operatord.testing.moto_server import MotoServer
from operatord.vocab import LABEL_INTENT, TAG_CLUSTER, TAG_EXPIRES_AT, TAG_INTENT, TAG_MANAGED_BY

from .conftest import policy_doc


@dataclass
class World:
    h: Harness
    aws: MotoServer
    ec2: Any
    subnets: list[dict[str, str]]
    policy: Path

    def cli(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        return self.h.cli("--policy", str(self.policy), "burst", *args, input=input, env=env)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    aws = MotoServer()
    with Harness(aws) as h:
        ec2 = aws.client()
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = []
        for i, az in enumerate(("us-east-1a", "us-east-1b")):
            sid = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"][
                "SubnetId"
            ]
            subnets.append({"id": sid, "availability_zone": az})
        ec2.create_launch_template(
            LaunchTemplateName="operatord-gpu-burst", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )
        doc = policy_doc(subnets=subnets, orphan_grace="0s")
        doc["faults"] = {"rules": [str(Path.cwd() / "policies/faults/*.yaml")]}
        policy = tmp_path / "policy.yaml"
        policy.write_text(yaml.safe_dump(doc))
        yield World(h, aws, ec2, subnets, policy)


def out(result: Any) -> dict[str, Any]:
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def test_launch_list_terminate_round_trip(world: World) -> None:
    launched = world.cli("launch", "1", "--yes", "-o", "json")
    assert launched.returncode == 0, launched.stderr
    body = out(launched)
    assert body["schema_version"] == 1
    (outcome,) = body["outcomes"]
    assert outcome["kind"] == "launched"
    assert outcome["detail"]["availability_zone"] == "us-east-1a"
    (iid,) = outcome["instances"]

    # The intent was written (ConfigMap, labelled) and the instance carries every tag.
    cms = [
        c
        for c in world.h.kube.list("ConfigMap", "operatord")
        if LABEL_INTENT in c["metadata"].get("labels", {})
    ]
    assert [c["metadata"]["name"] for c in cms] == [f"operatord-intent-{outcome['intent']}"]
    tags = {
        t["Key"]: t["Value"]
        for t in world.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Tags"]
    }
    assert tags[TAG_CLUSTER] == "test"
    assert tags[TAG_INTENT] == outcome["intent"]
    assert tags[TAG_MANAGED_BY] == "operatord"
    assert TAG_EXPIRES_AT in tags

    listed = out(world.cli("list", "-o", "json"))
    (row,) = listed["instances"]
    assert row["instance_id"] == iid
    assert row["state"] == "running"
    assert (row["instance_type"], row["availability_zone"]) == ("p4d.24xlarge", "us-east-1a")
    assert row["usd_per_hour"] == pytest.approx(21.957642)
    assert row["accrued_usd"] >= 0
    assert listed["totals"]["usd_per_hour"] == pytest.approx(21.957642, abs=1e-3)

    table = world.cli("list")
    assert table.returncode == 0
    assert iid in table.stdout
    assert "ACCRUED$" in table.stdout

    gone = world.cli("terminate", "--all", "--yes", "-o", "json")
    assert gone.returncode == 0, gone.stderr
    assert [(o["kind"], o["instances"]) for o in out(gone)["outcomes"]] == [("terminated", [iid])]
    state = world.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"][
        "Name"
    ]
    assert state in ("shutting-down", "terminated")


def test_ice_in_one_az_falls_back_to_the_next_in_the_same_command(world: World) -> None:
    world.aws.fail(
        "RunInstances", "InsufficientInstanceCapacity", status=500, where={"SubnetId": world.subnets[0]["id"]}
    )
    result = world.cli("launch", "1", "--yes", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert out(result)["outcomes"][-1]["detail"]["availability_zone"] == "us-east-1b"
    runs = world.aws.calls("RunInstances")
    assert [c.fault for c in runs] == ["InsufficientInstanceCapacity", None]  # botocore did not retry the ICE
    assert runs[0].params["MinCount"] == runs[0].params["MaxCount"] == "1"


def test_quota_error_is_refused_with_exit_1(world: World) -> None:
    world.aws.fail("RunInstances", "VcpuLimitExceeded", status=400)
    result = world.cli("launch", "1", "--yes")
    assert result.returncode == 1
    assert "quota_exhausted" in result.stderr
    assert len(world.aws.calls("RunInstances")) == 1


def test_dry_run_writes_nothing(world: World) -> None:
    result = world.cli("launch", "2", "--dry-run", "-o", "json")
    assert result.returncode == 0, result.stderr
    body = out(result)
    assert body["dry_run"] is True
    assert body["outcomes"][0]["kind"] == "would_launch"
    assert [c.params.get("DryRun") for c in world.aws.calls("RunInstances")] == ["true"]
    assert world.ec2.describe_instances()["Reservations"] == []
    assert not [
        c
        for c in world.h.kube.list("ConfigMap", "operatord")
        if LABEL_INTENT in c["metadata"].get("labels", {})
    ]


def test_declined_prompt_changes_nothing(world: World) -> None:
    result = world.cli("launch", "1", input="n\n")
    assert result.returncode == 2
    assert "declined" in result.stderr
    assert world.aws.calls("RunInstances") == []


def test_reconcile_terminates_an_untracked_tagged_instance(world: World) -> None:
    tags = [
        {"Key": TAG_CLUSTER, "Value": "test"},
        {"Key": TAG_MANAGED_BY, "Value": "operatord"},
        {"Key": TAG_INTENT, "Value": "lost-intent"},
    ]
    iid = world.ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        SubnetId=world.subnets[0]["id"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]
    listed = out(world.cli("list", "-o", "json"))
    assert [(r["instance_id"], r["state"], r["tracked"]) for r in listed["instances"]] == [
        (iid, "untracked", False)
    ]
    dry = out(world.cli("reconcile", "--dry-run", "-o", "json"))
    assert [(o["kind"], o["reason"]) for o in dry["outcomes"]] == [("would_terminate", "orphan_instance")]
    result = world.cli("reconcile", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [(o["kind"], o["instances"]) for o in out(result)["outcomes"]] == [("orphan_terminated", [iid])]


def test_terminate_refuses_ids_it_does_not_own_and_bad_usage(world: World) -> None:
    foreign = world.ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    result = world.cli("terminate", foreign, "--yes", "-o", "json")
    assert result.returncode == 1
    assert out(result)["outcomes"][0]["kind"] == "refused"
    state = world.ec2.describe_instances(InstanceIds=[foreign])["Reservations"][0]["Instances"][0]["State"][
        "Name"
    ]
    assert state == "running"
    both = world.cli("terminate", foreign, "--all")
    assert both.returncode == 2
    assert "not both" in both.stderr


def test_aws_unreachable_is_exit_3_without_traceback(world: World) -> None:
    result = world.cli("list", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.returncode == 3
    assert "AWS" in result.stderr
    assert "Traceback" not in result.stderr
