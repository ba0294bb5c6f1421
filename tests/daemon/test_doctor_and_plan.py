"""`operatord doctor` and `operatord plan` against the shared harness (stand-in, moto, real
Prometheus): every doctor check passes on a well-set-up cluster and each failure is one line
saying what to do (exit 1); plan shows decide()'s whole plan with the demand it read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from operatord.testing import kubeobjects as k
from operatord.testing.harness import Harness
from operatord.testing.moto_server import MotoServer
from operatord.testing.prometheus_server import FakeExporter, PrometheusServer

from .conftest import MODEL, policy_doc

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Site:
    h: Harness
    aws: MotoServer
    exporter: FakeExporter
    prom: PrometheusServer
    doc: dict[str, Any]
    dir: Path

    def doctor(self, doc: dict[str, Any] | None = None, **env: str) -> tuple[int, dict[str, Any]]:
        path = self.dir / "policy.yaml"
        path.write_text(yaml.safe_dump(doc or self.doc))
        result = self.h.cli("--policy", str(path), "doctor", "-o", "json", env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, json.loads(result.stdout)


def checks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in body["checks"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    exporter = FakeExporter()
    exporter.dcgm_node("gpu-00")
    exporter.vllm_model(MODEL, generation_tokens_per_s=100, requests_per_s=1)
    prom = PrometheusServer(exporter=exporter, scrape_interval_s=0.2)
    aws = MotoServer()
    with Harness(prom, aws) as h:
        ec2 = aws.client()
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        sid = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1a")["Subnet"][
            "SubnetId"
        ]
        ec2.create_launch_template(
            LaunchTemplateName="operatord-gpu-burst", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )
        h.seed([k.node("gpu-00"), k.workload("vllm-70b", replicas=1)])
        doc = policy_doc(subnets=[{"id": sid, "availability_zone": "us-east-1a"}], vcpu_quota=384)
        doc["faults"] = {"rules": [str(ROOT / "policies/faults/*.yaml")]}
        doc["metrics"] = {"rate_window": "2s"}  # a token rate after a few scrapes
        prom.wait_scraped(15)
        yield Site(h, aws, exporter, prom, doc, tmp_path_factory.mktemp("doctor"))


def test_a_ready_cluster_passes_every_check(site: Site) -> None:
    code, body = site.doctor()
    failing = {n: c for n, c in checks(body).items() if not c["ok"]}
    assert failing == {}
    assert code == 0
    names = set(checks(body))
    assert {
        "kubernetes.api",
        "policy",
        "rbac.remediation",
        "rbac.leader_election",
        "rbac.scaling.llama-70b",
    } <= names
    assert {"prometheus.reachable", "prometheus.metrics", "aws.credentials", "aws.launch_template"} <= names
    assert {"aws.offerings", "aws.quota", "aws.dry_run", "aws.terminate"} <= names
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in checks(body)["prometheus.metrics"]["detail"]
    assert [n for n, c in checks(body).items() if c["skipped"]] == ["aws.terminate"]  # no instance yet


def test_terminate_without_a_managed_instance_is_skipped_not_failed(site: Site) -> None:
    """The IAM policy allows TerminateInstances only on tagged instances: a made-up id would be
    refused whatever the policy says, so with none running the check says so and passes."""
    code, body = site.doctor()
    line = checks(body)["aws.terminate"]
    assert (line["ok"], line["skipped"]) == (True, True)
    assert "not provable now" in line["detail"]
    assert "managed-by=operatord, operatord.io/cluster=test" in line["detail"]
    assert code == 0
    assert site.aws.calls("TerminateInstances") == []
    table = site.h.cli("--policy", str(site.dir / "policy.yaml"), "doctor")
    assert table.returncode == 0
    row = next(r for r in table.stdout.splitlines() if r.startswith("aws.terminate"))
    assert row.split()[1] == "skip"
    assert "skipped (not provable now)" in table.stdout


@pytest.fixture
def managed_instance(site: Site) -> Iterator[str]:
    """One running instance tagged as operatord's for the policy's cluster (removed afterwards)."""
    ec2 = site.aws.client()
    [instance] = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="p4d.24xlarge",
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "managed-by", "Value": "operatord"},
                    {"Key": "operatord.io/cluster", "Value": "test"},
                    {"Key": "operatord.io/intent", "Value": "doctor-test"},
                ],
            }
        ],
    )["Instances"]
    iid = instance["InstanceId"]
    try:
        yield iid
    finally:
        site.aws.clear_faults()
        ec2.terminate_instances(InstanceIds=[iid])


def test_terminate_is_proven_by_dry_run_on_a_managed_instance(site: Site, managed_instance: str) -> None:
    before = len(site.aws.calls("TerminateInstances"))
    code, body = site.doctor()
    line = checks(body)["aws.terminate"]
    assert (line["ok"], line["skipped"]) == (True, False), line
    assert f"TerminateInstances {managed_instance} would succeed" in line["detail"]
    assert code == 0
    [call] = site.aws.calls("TerminateInstances")[before:]
    assert (call.params.get("DryRun"), call.params.get("InstanceId.1")) == ("true", managed_instance)
    state = site.aws.client().describe_instances(InstanceIds=[managed_instance])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_terminate_refused_by_iam_fails_naming_the_action_and_the_tag_condition(
    site: Site, managed_instance: str
) -> None:
    # moto authorises everything; the harness's fault layer answers as EC2 does for a denied DryRun.
    site.aws.fail(
        "TerminateInstances",
        "UnauthorizedOperation",
        status=403,
        where={"DryRun": "true", "InstanceId.1": managed_instance},
        message="You are not authorized to perform this operation. Encoded authorization failure message: x",
    )
    code, body = site.doctor()
    assert code == 1
    assert [n for n, c in checks(body).items() if not c["ok"]] == ["aws.terminate"]
    line = checks(body)["aws.terminate"]
    assert "UnauthorizedOperation" in line["detail"]
    assert "ec2:TerminateInstances" in line["fix"]
    assert "aws:ResourceTag/managed-by=operatord" in line["fix"]
    assert "aws:ResourceTag/operatord.io/cluster=test" in line["fix"]
    assert "TerminateOnlyOurs" in line["fix"]


def test_missing_rbac_is_one_failing_line_naming_the_verb(site: Site) -> None:
    site.h.kube.denied.add(("create", "", "pods", "eviction"))
    try:
        code, body = site.doctor()
        table = site.h.cli("--policy", str(site.dir / "policy.yaml"), "doctor")
    finally:
        site.h.kube.denied.clear()
    assert code == 1
    line = checks(body)["rbac.remediation"]
    assert not line["ok"]
    assert "create pods/eviction" in line["detail"]
    assert "Helm chart" in line["fix"]
    assert [n for n, c in checks(body).items() if not c["ok"]] == ["rbac.remediation"]
    assert table.returncode == 1
    assert "rbac.remediation" in table.stdout
    assert "FAIL" in table.stdout


def test_aws_problems_say_what_to_do(site: Site) -> None:
    doc = json.loads(json.dumps(site.doc))
    doc["burst"]["launch_template"] = {"name": "no-such-template"}
    doc["burst"]["vcpu_quota"] = 8
    code, body = site.doctor(doc)
    assert code == 1
    found = checks(body)
    assert not found["aws.launch_template"]["ok"]
    assert "docs/aws.md" in found["aws.launch_template"]["fix"]
    assert not found["aws.quota"]["ok"]
    assert "below one instance" in found["aws.quota"]["detail"]


def test_prometheus_unreachable_or_unset_fails_its_line_only(site: Site) -> None:
    code, body = site.doctor(None, OPERATORD_PROMETHEUS_URL="http://127.0.0.1:9")
    assert code == 1
    failing = [n for n, c in checks(body).items() if not c["ok"]]
    assert failing == ["prometheus.reachable"]


def test_plan_is_the_whole_decision_with_the_demand_it_read(site: Site) -> None:
    path = site.dir / "plan-policy.yaml"
    path.write_text(yaml.safe_dump(site.doc))
    result = site.h.cli("--policy", str(path), "plan", "-o", "json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["schema_version"] == 1
    assert {"policy", "mode", "at", "actions", "holds"} <= set(body)  # the keys plan always had
    [model] = body["models"]
    assert model["model"] == MODEL
    assert model["demand_tokens_per_s"] == pytest.approx(100, rel=0.2)
    assert body["demand_gpus"] == 8  # one replica of 8 GPUs for 100 tokens/s
    assert body["unknown"] == []
