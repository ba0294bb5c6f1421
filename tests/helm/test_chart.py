"""The chart renders, lints and validates for the default and non-default values, ships the
policy the daemon reads, and rejects bad values with a message that names the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate as kv
import pytest
import yaml
from chartkit import CHART, KUBE_VERSION, KUBE_VERSIONS, ROOT, VALUE_SETS, Rendered
from helm_python import HelmValuesError
from helm_python import chart as hc

from operatord.policies.load import load_policy, load_policy_text
from operatord.vocab import POLICY_CONFIGMAP

CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}  # validated against their own schemas elsewhere


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_lint_reports_no_errors_or_warnings(name: str) -> None:
    report = hc.lint(str(CHART), VALUE_SETS[name], strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_core_manifest_is_valid_kubernetes_in_strict_mode(
    rendered: dict[str, Rendered], name: str, version: str
) -> None:
    checked = 0
    for path, doc in rendered[name].docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as err:
            pytest.fail(f"{path}: {doc['kind']}/{doc['metadata']['name']}: {err.message} at {list(err.path)}")
        checked += 1
    assert checked >= 10


def test_default_install_observes_only(rendered: dict[str, Rendered]) -> None:
    cm = rendered["default"].one("ConfigMap", POLICY_CONFIGMAP)
    assert yaml.safe_load(cm["data"]["policy.yaml"])["mode"] == "observe"
    assert (
        'in mode\n"observe": it records findings and decisions and changes nothing'
        in rendered["default"].notes
    )


def test_default_values_carry_the_shipped_default_policy() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["policy"] == yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_policy_configmap_loads_as_the_daemon_loads_it(rendered: dict[str, Rendered], name: str) -> None:
    """The daemon reads the first *.yaml key of configmap/operatord-policy and resolves relative
    rule globs against policies/ in the image (here: the repository's policies/)."""
    data = rendered[name].one("ConfigMap", POLICY_CONFIGMAP)["data"]
    first = sorted(k for k in data if k.endswith((".yaml", ".yml")))[0]
    assert first == "policy.yaml"
    loaded = load_policy_text(data[first], f"configmap[{first}]", ROOT / "policies")
    shipped = load_policy(ROOT / "policies" / "default.yaml")
    assert {r.id for r in shipped.rules} <= {r.id for r in loaded.rules}


def test_extra_fault_rules_ship_in_the_configmap_and_are_found_through_the_mount(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    r = rendered["kmsg-nvml-rules"]
    data = r.one("ConfigMap", POLICY_CONFIGMAP)["data"]
    policy = yaml.safe_load(data["policy.yaml"])
    assert policy["faults"]["rules"] == ["faults/*.yaml", "/etc/operatord/policy/rules.*.yaml"]
    # Reproduce the pod's mount: every key a file under the mount path.
    mount = tmp_path / "etc-operatord-policy"
    mount.mkdir()
    for key, text in data.items():
        (mount / key).write_text(text)
    policy["faults"]["rules"] = ["faults/*.yaml", str(mount / "rules.*.yaml")]
    loaded = load_policy_text(yaml.safe_dump(policy), "configmap", ROOT / "policies")
    assert "site-psu-fault" in {r.id for r in loaded.rules}
    for kind in ("Deployment", "DaemonSet"):
        mounts = r.one(kind)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        assert {"name": "policy", "mountPath": "/etc/operatord/policy", "readOnly": True} in mounts


def test_controller_runs_two_replicas_with_a_pdb_and_leader_election_rbac(
    rendered: dict[str, Rendered],
) -> None:
    r = rendered["default"]
    dep = r.one("Deployment", "-controller")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"] == ["run"]
    pdb = r.one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    lease_rules = [
        rule
        for rule in r.one("Role", "-controller")["rules"]
        if rule["resources"] == ["leases"] and rule["apiGroups"] == ["coordination.k8s.io"]
    ]
    assert lease_rules
    assert {"get", "create", "update"} <= set(lease_rules[0]["verbs"])
    assert r.one("Service")["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_single_replica_has_no_pdb_that_would_block_every_drain(rendered: dict[str, Rendered]) -> None:
    assert rendered["minimal"].kind("PodDisruptionBudget") == []
    assert rendered["minimal"].kind("DaemonSet") == []


def test_agent_runs_on_gpu_nodes_only_and_tolerates_gpu_taints(rendered: dict[str, Rendered]) -> None:
    spec = rendered["default"].one("DaemonSet", "-agent")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    keys = {t["key"] for t in spec["tolerations"]}
    assert {"nvidia.com/gpu", "operatord.io/burst"} <= keys
    args = spec["containers"][0]["args"]
    assert args[:3] == ["agent", "--node-name", "$(NODE_NAME)"]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_aws_comes_from_the_service_account_role_never_from_keys(rendered: dict[str, Rendered]) -> None:
    r = rendered["monitoring-and-burst"]
    sa = r.one("ServiceAccount", "-controller")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        "arn:aws:iam::123456789012:role/operatord-burst"
    )
    text = yaml.safe_dump_all([d for _, d in r.docs]).lower()
    assert "aws_access_key_id" not in text
    assert "aws_secret_access_key" not in text
    assert "secretkeyref" not in text


def test_burst_terminate_hook_runs_before_delete_only_when_burst_can_exist(
    rendered: dict[str, Rendered],
) -> None:
    assert rendered["default"].kind("Job") == []  # burst disabled: an AWS-less hook would block uninstall
    assert rendered["minimal"].kind("Job") == []  # mode never
    for name in ("monitoring-and-burst", "kmsg-nvml-rules"):
        job = rendered[name].one("Job", "-burst-terminate")
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
        pod = job["spec"]["template"]["spec"]
        assert pod["containers"][0]["args"] == ["burst", "terminate", "--all", "--yes"]
        assert (
            pod["serviceAccountName"]
            == rendered[name].one("ServiceAccount", "-controller")["metadata"]["name"]
        )


def test_notes_tell_the_user_what_to_check_next(rendered: dict[str, Rendered]) -> None:
    notes = rendered["default"].notes
    assert "operatord doctor" in notes
    for command in ("operatord status", "operatord plan", "operatord metrics"):
        assert command in notes
    assert "WARNING" not in notes


def test_notes_warn_when_burst_has_no_iam_role(renderer: Callable[[dict[str, Any]], Rendered]) -> None:
    r = renderer({"policy": VALUE_SETS["monitoring-and-burst"]["policy"]})
    assert "aws.roleArn is empty" in r.notes
    assert "operatord burst list" in r.notes


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"policy": {"mode": "yolo"}},
            "at '/policy/mode': value must be one of 'observe', 'cordon-only', 'full'",
            id="unknown-mode",
        ),
        pytest.param(
            {"policy": {"remediation": {"breaker": {"window": "5 minutes"}}}},
            "at '/policy/remediation/breaker/window': '5 minutes' does not match pattern",
            id="bad-duration",
        ),
        pytest.param(
            {"policy": {"remediation": {"breaker": {"wndow": "5m"}}}},
            "additional properties 'wndow' not allowed",
            id="typo-in-policy",
        ),
        pytest.param(
            {"controller": {"replicas": 0}},
            "at '/controller/replicas': minimum: got 0, want 1",
            id="no-controller",
        ),
        pytest.param(
            {"aws": {"accessKeyId": "AKIA..."}},
            "at '/aws': additional properties 'accessKeyId' not allowed",
            id="no-aws-keys",
        ),
        pytest.param(
            {"agent": {"sources": ["dmesg"]}},
            "at '/agent/sources/0': 'dmesg' does not match pattern",
            id="unknown-agent-source",
        ),
        pytest.param(
            {"faultRules": {"Bad_Name": {"kind": "FaultRules", "rules": []}}},
            "invalid propertyName 'Bad_Name'",
            id="configmap-unsafe-rule-name",
        ),
        pytest.param(
            {"burstTerminateHook": {"mode": "sometimes"}}, "at '/burstTerminateHook/mode'", id="hook-mode"
        ),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(chart: hc.Chart, values: dict, message: str) -> None:
    with pytest.raises(HelmValuesError) as err:
        chart.validate_schema(values)
    assert message in str(err.value)


@pytest.mark.parametrize("duration", ["5m", 300, "1h30m", 0.5])
def test_durations_accept_text_and_seconds(chart: hc.Chart, duration: object) -> None:
    chart.validate_schema({"policy": {"remediation": {"breaker": {"window": duration}}}})
