"""Builders and in-memory stand-ins for the burst tests."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from operatord.core.model import ConfigMap, Listing
from operatord.policies.model import Policy
from operatord.ports.cluster import Conflict, NotFound
from operatord.shell.intents import IntentStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
P4D = {
    "instance_type": "p4d.24xlarge",
    "gpu_type": "A100-SXM4-40GB",
    "gpus_per_node": 8,
    "nodes_per_replica": 1,
    "vcpus": 96,
    "price_usd_per_hour": 21.957642,
    "price_as_of": "2025-06-01",
}
P4DE = {
    "instance_type": "p4de.24xlarge",
    "gpu_type": "A100-SXM4-80GB",
    "gpus_per_node": 8,
    "nodes_per_replica": 1,
    "vcpus": 96,
    "price_usd_per_hour": 27.44705,
    "price_as_of": "2025-06-01",
}
SUBNETS = [
    {"id": "subnet-0a1b2c3d4e5f60001", "availability_zone": "us-east-1a"},
    {"id": "subnet-0a1b2c3d4e5f60002", "availability_zone": "us-east-1b"},
]


def policy_doc(**burst: Any) -> dict[str, Any]:
    """A full policy document with an enabled burst section; `burst` overrides its keys."""
    doc: dict[str, Any] = {
        "kind": "Policy",
        "mode": "full",
        "cluster": "test",
        "pools": [
            {"name": "local-a100", "kind": "local", "gpu_type": "A100-SXM4-40GB"},
            {"name": "burst", "kind": "burst", "gpu_type": "A100-SXM4-40GB"},
        ],
        "serving": {
            "models": [
                {
                    "name": "llama-70b",
                    "workload": {"kind": "Deployment", "namespace": "llm", "name": "vllm-70b"},
                    "min_replicas": 1,
                    "max_replicas": 32,
                    "profiles": [
                        {
                            "gpu_type": "A100-SXM4-40GB",
                            "gpus_per_replica": 8,
                            "tokens_per_s_per_replica": 2400,
                        },
                        {
                            "gpu_type": "A100-SXM4-80GB",
                            "gpus_per_replica": 8,
                            "tokens_per_s_per_replica": 2600,
                        },
                    ],
                }
            ]
        },
        "burst": {
            "enabled": True,
            "pool": "burst",
            "instance_types": [P4D, P4DE],
            "subnets": SUBNETS,
            "launch_template": {"name": "operatord-gpu-burst"},
            "max_instances": 4,
            "max_usd_per_hour": 120,
            "max_usd_per_day": 2000,
        },
    }
    doc["burst"].update(burst)
    return doc


def a_policy(**burst: Any) -> Policy:
    return Policy.model_validate(policy_doc(**burst))


def multinode_policy(**burst: Any) -> Policy:
    """A model that needs 16 GPUs: two p4d per replica, or one p4de."""
    doc = policy_doc(**burst)
    doc["serving"]["models"][0]["profiles"][0]["gpus_per_replica"] = 16
    doc["burst"]["instance_types"] = [dict(P4D, nodes_per_replica=2), P4DE]
    return Policy.model_validate(doc)


@dataclass
class MemoryConfigMaps:
    """The ConfigMap methods of ClusterApi in memory, with resourceVersion compare-and-set."""

    items: dict[tuple[str, str], ConfigMap] = field(default_factory=dict)
    rv: int = 0

    def _next(self) -> str:
        self.rv += 1
        return str(self.rv)

    def list_configmaps(self, namespace: str, label_selector: str | None = None) -> Listing[ConfigMap]:
        terms = [t for t in (label_selector or "").split(",") if t]

        def match(labels: Mapping[str, str]) -> bool:
            for t in terms:
                if "=" in t:
                    k, v = t.split("=", 1)
                    if labels.get(k) != v:
                        return False
                elif t not in labels:
                    return False
            return True

        found = tuple(
            cm for (ns, _), cm in sorted(self.items.items()) if ns == namespace and match(cm.labels)
        )
        return Listing(found, str(self.rv))

    def create_configmap(self, configmap: ConfigMap) -> ConfigMap:
        key = (configmap.namespace, configmap.name)
        if key in self.items:
            raise Conflict(f"configmap {configmap.name} already exists", 409)
        made = replace(configmap, data=copy.deepcopy(dict(configmap.data)), resource_version=self._next())
        self.items[key] = made
        return made

    def replace_configmap(self, configmap: ConfigMap) -> ConfigMap:
        key = (configmap.namespace, configmap.name)
        current = self.items.get(key)
        if current is None:
            raise NotFound(f"configmap {configmap.name} not found", 404)
        if configmap.resource_version != current.resource_version:
            raise Conflict(f"configmap {configmap.name}: stale resourceVersion", 409)
        made = replace(configmap, data=dict(configmap.data), resource_version=self._next())
        self.items[key] = made
        return made

    def delete_configmap(self, namespace: str, name: str, *, resource_version: str | None = None) -> None:
        key = (namespace, name)
        current = self.items.get(key)
        if current is None:
            raise NotFound(f"configmap {name} not found", 404)
        if resource_version and resource_version != current.resource_version:
            raise Conflict(f"configmap {name}: stale resourceVersion", 409)
        del self.items[key]


class Clock:
    """A virtual clock tests move by hand."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def configmaps() -> MemoryConfigMaps:
    return MemoryConfigMaps()


@pytest.fixture
def store(configmaps: MemoryConfigMaps) -> IntentStore:
    return IntentStore(configmaps, "operatord", "test")


@dataclass
class Aws:
    """A moto EC2 world: a VPC with one subnet per AZ and the burst launch template."""

    ec2: Any
    subnets: list[dict[str, str]]
    template_id: str


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3
    import botocore.config
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ec2 = boto3.client(
            "ec2",
            region_name="us-east-1",
            config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = []
        for i, az in enumerate(("us-east-1a", "us-east-1b")):
            sid = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"][
                "SubnetId"
            ]
            subnets.append({"id": sid, "availability_zone": az})
        lt = ec2.create_launch_template(
            LaunchTemplateName="operatord-gpu-burst", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        yield Aws(ec2, subnets, lt)
