"""Helpers for the Helm chart tests: the values sets and a renderer using real Helm
(helm-python-sdk bundles Helm's Go library; no cluster, no helm binary)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from helm_python import chart as hc

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "operatord"
KUBE_VERSION = "1.33.0"  # a current Kubernetes; kubernetes-validate ships 1.25–1.37
# Validated against the oldest the chart claims (Chart.yaml kubeVersion), a current and the newest.
KUBE_VERSIONS = ("1.27.0", KUBE_VERSION, "1.37.0")
RELEASE = "ops"
NAMESPACE = "operatord"

# Values sets every structural test runs on: the default and the non-default shapes that change
# which manifests and rules render.
# Values reach Helm as JSON, as a values file would (dates are strings there too).
BURST_POLICY = json.loads(
    json.dumps(
        yaml.safe_load((ROOT / "policies" / "examples" / "burst-multinode.yaml").read_text()), default=str
    )
)
BURST_POLICY["faults"]["rules"] = ["faults/*.yaml"]  # the example's glob is relative to examples/
# Helm merges values.policy into the default policy key by key; null removes a default key
# (the chart README says so). The example names its launch template by id, the default by name.
BURST_POLICY["burst"]["launch_template"]["name"] = None
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "monitoring-and-burst": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True},
        "aws": {"roleArn": "arn:aws:iam::123456789012:role/operatord-burst"},
        "policy": BURST_POLICY,
        "prometheusUrl": "http://prometheus-operated.monitoring:9090",
    },
    "kmsg-nvml-rules": {
        "agent": {"sources": ["kmsg", "journald"], "runtimeClassName": "nvidia"},
        "faultRules": {
            "site": {
                "kind": "FaultRules",
                "rules": [
                    {
                        "id": "site-psu-fault",
                        "class": "thermal_or_power",
                        "node_fault": True,
                        "severity": "degraded",
                        "action": "cordon",
                        "sources": ["journald"],
                        "prefilter": "PSU [0-9]+ fault",
                        "pattern": r"PSU (?P<psu>\d+) fault",
                        "runbook": "runbooks/thermal_or_power.md",
                    }
                ],
            }
        },
        "burstTerminateHook": {"mode": "always"},
    },
    "minimal": {
        "agent": {"enabled": False},
        "controller": {"replicas": 1},
        "rbac": {"create": True},
        "burstTerminateHook": {"mode": "never"},
    },
}


@dataclass(frozen=True)
class Rendered:
    """One render: every non-empty manifest, in template order, with the template it came from."""

    values: Mapping[str, Any]
    docs: list[tuple[str, dict[str, Any]]]
    notes: str

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for _, d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [d for d in self.kind(kind) if d["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"{kind} *{name_suffix}: {[d['metadata']['name'] for d in found]}"
        return found[0]


def render(chart: hc.Chart, values: Mapping[str, Any]) -> Rendered:
    out = chart.render(copy.deepcopy(dict(values)), name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[tuple[str, dict[str, Any]]] = []
    notes = ""
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return Rendered(values, docs, notes)
