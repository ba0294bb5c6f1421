"""Pod security: the controller and the hook Job are "restricted"; the agent is the documented
exception with read-only host access, one writable cursor directory and no capabilities."""

from __future__ import annotations

from typing import Any

import pytest
from chartkit import VALUE_SETS, Rendered

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pods(r: Rendered, kind: str) -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in r.kind(kind)]


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_controller_and_hook_pods_are_restricted(rendered: dict[str, Rendered], name: str) -> None:
    pods = _pods(rendered[name], "Deployment") + _pods(rendered[name], "Job")
    assert pods
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert all("hostPath" not in v for v in pod.get("volumes", []))
        for c in pod["containers"]:
            assert c["securityContext"] == RESTRICTED_CONTAINER
            assert "add" not in c["securityContext"]["capabilities"]


@pytest.mark.parametrize("name", ["default", "monitoring-and-burst"])
def test_agent_reads_the_host_read_only_and_holds_no_capability(
    rendered: dict[str, Rendered], name: str
) -> None:
    (pod,) = _pods(rendered[name], "DaemonSet")
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    host = {v["name"]: v["hostPath"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    writable = {n for n in host if not mounts[n].get("readOnly")}
    assert writable == {"cursor"}, "only the cursor directory may be writable on the host"
    assert host["cursor"] == {"path": "/var/lib/operatord-agent", "type": "DirectoryOrCreate"}
    assert {"/var/log", "/var/log/journal", "/etc/machine-id"} <= {h["path"] for h in host.values()}
    assert "/dev/kmsg" not in {h["path"] for h in host.values()}


def test_agent_gets_kmsg_only_when_asked_and_then_syslog_capability(rendered: dict[str, Rendered]) -> None:
    (pod,) = _pods(rendered["kmsg-nvml-rules"], "DaemonSet")
    (c,) = pod["containers"]
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["SYSLOG"]}
    host = {v["name"]: v["hostPath"] for v in pod["volumes"] if "hostPath" in v}
    assert host["kmsg"] == {"path": "/dev/kmsg", "type": "CharDevice"}
    assert {m["name"]: m for m in c["volumeMounts"]}["kmsg"]["readOnly"] is True
    assert pod["runtimeClassName"] == "nvidia"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "utility"


def test_agent_args_follow_the_sources(rendered: dict[str, Rendered]) -> None:
    (pod,) = _pods(rendered["kmsg-nvml-rules"], "DaemonSet")
    args = pod["containers"][0]["args"]
    assert args == ["agent", "--node-name", "$(NODE_NAME)", "--source", "kmsg", "--source", "journald"]
