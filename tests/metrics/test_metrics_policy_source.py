"""`operatord metrics` reads the policy the daemon uses: the operatord-policy ConfigMap, else local."""

from __future__ import annotations

import json
from pathlib import Path

from operatord.testing import kubeobjects as k
from operatord.testing.harness import Harness, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]


def test_policy_and_url_come_from_the_configmap() -> None:
    text = (
        (ROOT / "policies" / "default.yaml")
        .read_text()
        .replace("metrics:\n", "metrics:\n  prometheus_url: http://127.0.0.1:9\n", 1)
    )
    with Harness() as h:
        h.kube.create(k.configmap("operatord-policy", {"policy.yaml": text}))
        result = h.cli("metrics", "-o", "json", cwd=ROOT)
    assert result.returncode == 3, result.stderr
    body = json.loads(result.stdout)
    assert body["policy"]["source"] == "configmap/operatord/operatord-policy[policy.yaml]"
    assert body["prometheus_url"] == "http://127.0.0.1:9"


def test_unreachable_cluster_falls_back_to_the_local_policy(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")  # nothing listens there
    with Harness() as h:
        result = h.cli(
            "metrics",
            "-o",
            "json",
            "--prometheus-url",
            "http://127.0.0.1:9",
            env={"KUBECONFIG": str(config)},
            cwd=ROOT,
        )
    assert result.returncode == 3
    assert json.loads(result.stdout)["policy"]["source"] == "policies/default.yaml"
    assert "policy ConfigMap not read" in result.stderr
