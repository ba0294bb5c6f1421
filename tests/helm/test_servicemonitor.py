"""The optional ServiceMonitor: valid against a small schema of the CRD kept here, and it selects
the controller Service's metrics port."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from chartkit import Rendered

SCHEMA = json.loads((Path(__file__).parent / "servicemonitor.schema.json").read_text())


def test_servicemonitor_is_off_by_default(rendered: dict[str, Rendered]) -> None:
    assert rendered["default"].kind("ServiceMonitor") == []


def test_servicemonitor_matches_the_crd_schema_and_the_service(rendered: dict[str, Rendered]) -> None:
    r = rendered["monitoring-and-burst"]
    sm = r.one("ServiceMonitor")
    jsonschema.validate(sm, SCHEMA)
    svc = r.one("Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_schema_rejects_a_typo() -> None:
    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "intervall": "30s"}]},
    }
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        jsonschema.validate(bad, SCHEMA)
