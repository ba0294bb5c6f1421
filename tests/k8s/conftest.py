"""Fixtures for the cluster port: one `World` seeding either FakeClusterApi or the API stand-in
(behind KubeClusterApi), so the contract suite runs the same assertions against both."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
import yaml
from kubernetes import client

from operatord.adapters.k8s import KubeClusterApi, node_from, pod_from
from operatord.core.model import ConfigMap, Node, Pod, WorkloadKey
from operatord.policies.model import Policy
from operatord.ports.cluster import ClusterApi
from operatord.testing import kubeobjects as k
from operatord.testing.fakes import FakeClusterApi, FakePdb
from operatord.testing.kube_server import KubeStandIn


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog output per test: logging configured by another test (to a stream that is
    closed by now) must not leak into these."""
    with structlog.testing.capture_logs() as logs:
        yield logs


ROOT = Path(__file__).resolve().parents[2]


def a_policy(**remediation: Any) -> Policy:
    """The shipped default policy in full mode, with remediation overrides (YAML-style values)."""
    raw = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    raw["mode"] = "full"
    raw["remediation"] = {**raw.get("remediation", {}), **remediation}
    return Policy.model_validate(raw)


@dataclass
class World:
    """Seeds objects into whichever backend `api` talks to."""

    api: ClusterApi
    fake: FakeClusterApi | None = None
    standin: KubeStandIn | None = None

    @property
    def name(self) -> str:
        return "fake" if self.fake is not None else "kube"

    def node(self, name: str, **kw: Any) -> Node:
        raw = k.node(name, **kw)
        if self.fake is not None:
            return self.fake.add_node(node_from(raw))
        assert self.standin is not None
        return node_from(self.standin.create(raw))

    def pod(self, name: str, **kw: Any) -> Pod:
        raw = k.pod(name, **kw)
        if self.fake is not None:
            return self.fake.add_pod(pod_from(raw))
        assert self.standin is not None
        return pod_from(self.standin.create(raw))

    def pdb(
        self,
        name: str,
        match_labels: Mapping[str, str],
        *,
        namespace: str = "default",
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
    ) -> None:
        if self.fake is not None:
            self.fake.add_pdb(FakePdb(namespace, name, dict(match_labels), min_available, max_unavailable))
            return
        assert self.standin is not None
        self.standin.create(
            k.pdb(
                name,
                match_labels=match_labels,
                namespace=namespace,
                min_available=min_available,
                max_unavailable=max_unavailable,
            )
        )

    def workload(self, kind: str, namespace: str, name: str, replicas: int) -> WorkloadKey:
        key = WorkloadKey(kind, namespace, name)
        if self.fake is not None:
            self.fake.add_workload(key, replicas)
        else:
            assert self.standin is not None
            self.standin.create(k.workload(name, kind=kind, namespace=namespace, replicas=replicas))
        return key

    def configmap(self, namespace: str, name: str, data: Mapping[str, str]) -> ConfigMap:
        return self.api.create_configmap(ConfigMap(namespace, name, dict(data)))

    def compact(self) -> None:
        if self.fake is not None:
            self.fake.compact()
        else:
            assert self.standin is not None
            self.standin.compact()


@pytest.fixture
def standin() -> Iterator[KubeStandIn]:
    server = KubeStandIn()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube_api(standin: KubeStandIn) -> KubeClusterApi:
    return KubeClusterApi(client.ApiClient(client.Configuration(host=standin.url)), request_timeout_s=10)


@pytest.fixture(params=["fake", "kube"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        fake = FakeClusterApi()
        yield World(api=fake, fake=fake)
        return
    server = KubeStandIn()
    server.start()
    try:
        api = KubeClusterApi(client.ApiClient(client.Configuration(host=server.url)), request_timeout_s=10)
        yield World(api=api, standin=server)
    finally:
        server.stop()
