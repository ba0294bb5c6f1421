"""RBAC is least privilege and sufficient: no secrets, no wildcards, a feature comment on every
rule, and every request operatord made against the harness's API stand-in while running a
representative set of commands (and the daemon's apply path for scaling) is granted to the
controller's ServiceAccount by the rendered chart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from chartkit import CHART, NAMESPACE, ROOT, Rendered, render
from helm_python import chart as hc
from rbacfit import Request, granted, parse_request
from typer.testing import CliRunner

from operatord.adapters.k8s import KubeClusterApi
from operatord.cli import app
from operatord.core.burst.actions import SetReplicas
from operatord.core.plan import Plan
from operatord.policies.load import load_policy_text
from operatord.shell import burst_apply  # noqa: F401  (registers the SetReplicas executor)
from operatord.shell.apply import ApplyContext, apply_plan
from operatord.testing import kubeobjects as k
from operatord.testing.harness import Harness
from operatord.testing.moto_server import MotoServer
from operatord.vocab import Mode

RBAC_KINDS = {"Role", "ClusterRole"}


def _rbac_docs(r: Rendered) -> list[dict[str, Any]]:
    return [d for _, d in r.docs if d["kind"] in RBAC_KINDS]


@pytest.mark.parametrize("name", ["default", "monitoring-and-burst", "kmsg-nvml-rules"])
def test_no_secrets_and_no_wildcards(rendered: dict[str, Rendered], name: str) -> None:
    for role in _rbac_docs(rendered[name]):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), f"{role['metadata']['name']}: wildcard in {key}"
            assert not any(r.startswith("secrets") for r in rule["resources"]), role["metadata"]["name"]
            assert "nonResourceURLs" not in rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_every_rule_names_the_feature_that_needs_it() -> None:
    for template in ("rbac-controller.yaml", "rbac-agent.yaml"):
        lines = (CHART / "templates" / template).read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("- apiGroups:"):
                above = [x.strip() for x in lines[:i] if x.strip() and not x.strip().startswith("{{")]
                assert above[-1].startswith("#"), f"{template}:{i + 1}: rule without a feature comment"


def test_readme_feature_table_matches_the_rendered_rules(
    rendered: dict[str, Rendered], renderer: Any
) -> None:
    """Every (group, resource, verb) the chart can grant appears in the README's table, and back."""
    table = set()
    readme = (CHART / "README.md").read_text()
    for row in re.findall(r"^\| ([^|]+)\| `([^`]*)` \| `([^`]+)` \| ([^|]+)\|", readme, flags=re.M):
        _, group, resource, verbs = (c.strip() for c in row)
        group = "" if group == "core" else group
        for verb in re.findall(r"[a-z]+", verbs):
            table.add((group, resource, verb))
    granted_set = set()
    models = [
        {**_model(kind, name), "name": name}
        for kind, name in [("Deployment", "a"), ("StatefulSet", "b"), ("LeaderWorkerSet", "c")]
    ]
    everything = renderer(
        {"policy": {"serving": {"models": models}, "remediation": {"drain": {"unmanaged_pods": "delete"}}}}
    )
    for r in (*rendered.values(), everything):
        for role in _rbac_docs(r):
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            granted_set.add((group, resource, verb))
    assert granted_set == table


def _model(kind: str, name: str) -> dict[str, Any]:
    return {
        "workload": {"kind": kind, "namespace": "llm", "name": name},
        "min_replicas": 1,
        "max_replicas": 4,
        "profiles": [{"gpu_type": "A100-SXM4-40GB", "gpus_per_replica": 8, "tokens_per_s_per_replica": 2400}],
    }


def test_optional_verbs_follow_the_policy(renderer: Any) -> None:
    def deletes(r: Rendered, resource: str) -> bool:
        return any(
            "delete" in rule["verbs"] and resource in rule["resources"]
            for role in _rbac_docs(r)
            for rule in role["rules"]
        )

    default = renderer({})
    assert not deletes(default, "nodes")
    assert not deletes(default, "pods")
    assert deletes(renderer({"policy": {"remediation": {"drain": {"unmanaged_pods": "delete"}}}}), "pods")
    assert deletes(renderer({"policy": {"burst": {"enabled": True}}}), "nodes")


# ---------------------------------------------------------------------- what operatord really uses


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Request], Rendered]]:
    """Run a representative set of on-call commands and the daemon's scaling write against the
    harness, with the policy the chart renders; yield what the API stand-in saw."""
    aws = MotoServer()
    aws_actions.clear()
    with Harness(aws, workdir=tmp_path_factory.mktemp("rbac")) as h:
        ec2 = aws.client()
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone="us-east-1a")[
            "Subnet"
        ]
        ec2.create_launch_template(
            LaunchTemplateName="operatord-gpu-burst", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )
        values = {
            "policy": {
                "mode": "full",
                "remediation": {"drain": {"unmanaged_pods": "delete"}},
                "burst": {
                    "enabled": True,
                    "subnets": [{"id": subnet["SubnetId"], "availability_zone": "us-east-1a"}],
                    "orphan_grace": "0s",
                },
            }
        }
        r = render(hc.Chart.load(str(CHART)), values)
        for _, doc in r.docs:
            if doc["kind"] == "ConfigMap":
                h.kube.create(doc)
        for n in ("gpu-a1", "gpu-a2", "gpu-a3", "gpu-a4"):  # one drain keeps 24/32 GPUs serving (>= 0.75)
            h.kube.create(k.node(n))
        h.kube.create(k.pod("vllm-0", node="gpu-a1", namespace="llm", labels={"app": "vllm"}, gpus=8))
        h.kube.create(k.pod("debug", node="gpu-a1", namespace="default", owner=None))
        h.kube.create(k.pdb("vllm", namespace="llm", match_labels={"app": "vllm"}, max_unavailable=1))
        h.kube.create(k.workload("vllm-r1-70b", namespace="llm", replicas=1))
        h.kube.requests.clear()
        seeded_calls = len(aws.calls())  # the VPC, subnet and launch template made above

        runner = CliRunner()
        env = {**h.env(), "USER": "oncall"}
        commands = [
            ["status"],
            ["plan", "-o", "json"],
            ["explain", "gpu-a1"],
            ["breaker", "status"],
            ["drain", "gpu-a1", "--reason", "rbac test", "--yes"],
            ["uncordon", "gpu-a1", "--yes"],
            ["pause", "--reason", "rbac test"],
            ["resume"],
            ["breaker", "reset", "--reason", "rbac test"],
            ["burst", "list"],
            ["burst", "launch", "1", "--yes"],
            ["burst", "reconcile"],
            ["burst", "terminate", "--all", "--yes"],
            ["run", "--once", "--listen", "127.0.0.1:0"],  # one controller tick, Lease included
        ]
        for args in commands:
            res = runner.invoke(app, args, env=env)
            assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
            assert res.exit_code == 0, (args, res.stdout, res.stderr)

        structlog.reset_defaults()  # the CLI configured logging onto the runner's (now closed) stderr
        # The daemon's apply path for a scaling decision (no CLI command sets replicas by itself).
        cluster = KubeClusterApi.connect(h.kubeconfig)
        loaded = load_policy_text(
            yaml.safe_dump(yaml.safe_load(r.one("ConfigMap")["data"]["policy.yaml"])), "cm", ROOT / "policies"
        )
        action = SetReplicas(
            key="rbac-scale",
            reason="demand_over_supply",
            model="deepseek-r1-distill-llama-70b",
            workload_kind="Deployment",
            namespace="llm",
            name="vllm-r1-70b",
            replicas=2,
            previous=1,
        )
        outcomes = apply_plan(Plan((action,)), ApplyContext(cluster, NAMESPACE, loaded.policy, Mode.FULL))
        assert [o.status for o in outcomes] == ["applied"]
        journal = [parse_request(m, p) for m, p in h.kube.requests if not p.startswith("/version")]
        aws_actions.update(c.action for c in aws.calls()[seeded_calls:])
        try:
            yield journal, r
        finally:
            structlog.reset_defaults()


aws_actions: set[str] = set()  # EC2/Service Quotas actions moto saw during the journal run


def test_iam_policy_allows_every_aws_call_and_no_untagged_instance_write(
    journal: tuple[list[Request], Rendered],
) -> None:
    """The policy of docs/aws.md (the chart README points to it) against what operatord called."""
    doc = (ROOT / "docs" / "aws.md").read_text()
    start = doc.index("```json", doc.index("## Least-privilege IAM policy")) + len("```json")
    policy = json.loads(doc[start : doc.index("```", start)])
    allowed: set[str] = set()
    for st in policy["Statement"]:
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        assert not any("*" in a for a in actions), st["Sid"]
        if st["Effect"] != "Allow":
            continue
        allowed.update(actions)
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        writes = {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:CreateTags"} & set(actions)
        if writes and any(r.endswith((":instance/*", ":volume/*")) for r in resources):
            assert "Condition" in st, f"{st['Sid']}: {sorted(writes)} on instances without a tag condition"
    seen = {("servicequotas:" if a == "GetServiceQuota" else "ec2:") + a for a in aws_actions}
    assert "ec2:RunInstances" in seen  # the run launched and terminated for real
    assert sorted(seen - allowed) == []


def test_every_request_operatord_made_is_granted(journal: tuple[list[Request], Rendered]) -> None:
    requests, r = journal
    sa = r.one("ServiceAccount", "-controller")["metadata"]["name"]
    docs = [d for _, d in r.docs]
    seen = sorted(set(requests))
    denied = [str(q) for q in seen if not granted(docs, sa, NAMESPACE, q)]
    assert denied == []
    # The run touched what matters, so the check above is not vacuous.
    kinds = {(q.verb, q.resource) for q in seen}
    for needed in [
        ("patch", "nodes"),
        ("create", "pods/eviction"),
        ("delete", "pods"),
        ("list", "pods"),
        ("update", "configmaps"),
        ("create", "events"),
        ("patch", "deployments/scale"),
        ("get", "deployments/scale"),
        ("create", "leases"),
        ("update", "leases"),
    ]:
        assert needed in kinds, f"the representative run never did {needed}: {sorted(kinds)}"
    # Events land where their objects live: a Node's in default, the scaled Deployment's in llm
    # (not operatord's namespace), so the events rule must reach beyond the controller's own Role.
    event_namespaces = {q.namespace for q in seen if (q.verb, q.resource) == ("create", "events")}
    assert {"default", "llm"} <= event_namespaces, event_namespaces


def test_every_request_the_agent_made_is_granted(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    """`operatord agent --once` on a node with an Xid 79 line: it reads the policy, publishes the
    finding (annotation, condition, Event); the agent's ServiceAccount must allow exactly that."""
    r = rendered["default"]
    with Harness(workdir=tmp_path) as h:
        for _, doc in r.docs:
            if doc["kind"] == "ConfigMap":
                h.kube.create(doc)
        h.kube.create(k.node("gpu-a17"))
        log = tmp_path / "kern.log"
        log.write_text(
            "Nov 28 10:00:00 gpu-a17 kernel: NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', "
            "name=<unknown>, GPU has fallen off the bus.\n"
        )
        h.kube.requests.clear()
        args = ["agent", "--node-name", "gpu-a17", "--source", f"file:{log}", "--once"]
        res = CliRunner().invoke(app, [*args, "--state-dir", str(tmp_path), "--no-probe"], env=h.env())
        structlog.reset_defaults()
        assert res.exit_code == 0, (res.stdout, res.stderr)
        requests = sorted({parse_request(m, p) for m, p in h.kube.requests if not p.startswith("/version")})
    sa = r.one("ServiceAccount", "-agent")["metadata"]["name"]
    docs = [d for _, d in r.docs]
    assert [str(q) for q in requests if not granted(docs, sa, NAMESPACE, q)] == []
    assert {(q.verb, q.resource) for q in requests} >= {
        ("patch", "nodes/status"),
        ("patch", "nodes"),
        ("create", "events"),
    }


def test_the_agent_cannot_touch_pods_or_state(rendered: dict[str, Rendered]) -> None:
    r = rendered["default"]
    sa = r.one("ServiceAccount", "-agent")["metadata"]["name"]
    docs = [d for _, d in r.docs]
    assert granted(docs, sa, NAMESPACE, Request("patch", "", "nodes/status", None, "gpu-a1"))
    assert granted(docs, sa, NAMESPACE, Request("get", "", "configmaps", NAMESPACE, "operatord-policy"))
    for forbidden in [
        Request("create", "", "pods/eviction", "llm", "vllm-0"),
        Request("get", "", "configmaps", NAMESPACE, "operatord-state"),
        Request("update", "", "configmaps", NAMESPACE, "operatord-policy"),
        Request("delete", "", "nodes", None, "gpu-a1"),
        Request("get", "", "secrets", NAMESPACE, "anything"),
    ]:
        assert not granted(docs, sa, NAMESPACE, forbidden), str(forbidden)


def test_serving_roles_are_limited_to_the_named_workloads(journal: tuple[list[Request], Rendered]) -> None:
    _, r = journal
    sa = r.one("ServiceAccount", "-controller")["metadata"]["name"]
    docs = [d for _, d in r.docs]
    assert granted(docs, sa, NAMESPACE, Request("patch", "apps", "deployments/scale", "llm", "vllm-r1-70b"))
    assert not granted(docs, sa, NAMESPACE, Request("patch", "apps", "deployments/scale", "llm", "other"))
    assert not granted(
        docs, sa, NAMESPACE, Request("patch", "apps", "deployments/scale", "kube-system", "coredns")
    )
    assert not granted(docs, sa, NAMESPACE, Request("update", "", "configmaps", "kube-system", "x"))


def test_request_parser_reads_subresources_and_watches() -> None:
    assert parse_request("POST", "/api/v1/namespaces/llm/pods/p/eviction") == Request(
        "create", "", "pods/eviction", "llm", "p"
    )
    assert parse_request("GET", "/api/v1/nodes?watch=true&resourceVersion=5").verb == "watch"
    assert parse_request("PATCH", "/apis/apps/v1/namespaces/llm/deployments/d/scale") == Request(
        "patch", "apps", "deployments/scale", "llm", "d"
    )
    assert parse_request("DELETE", "/api/v1/namespaces/operatord/configmaps").verb == "deletecollection"
