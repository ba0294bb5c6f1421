"""The PrometheusRule: promtool accepts the rules and its unit tests pass; every alert names the
operatord series it needs, and those series exist in operatord/shell/metrics.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import ROOT, Rendered
from prometheus_client import generate_latest

from operatord.shell.metrics import build_metrics

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (apt-get install prometheus)")
EXPECTED = {
    "OperatordBreakerOpen",
    "OperatordPaused",
    "OperatordBurstSpendNearCap",
    "OperatordMetricsStale",
    "OperatordAgentMissing",
    "OperatordBurstWithoutLeader",
}


def _spec(rendered: dict[str, Rendered]) -> dict[str, Any]:
    return rendered["monitoring-and-burst"].one("PrometheusRule")["spec"]


def _rules_file(rendered: dict[str, Rendered], tmp_path: Path) -> Path:
    path = tmp_path / "operatord-rules.yaml"
    path.write_text(yaml.safe_dump(_spec(rendered)))
    return path


def test_promtool_accepts_the_rules(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(_rules_file(rendered, tmp_path))], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in result.stdout


def test_alert_unit_tests_pass(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    rules = _rules_file(rendered, tmp_path)
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(
        (Path(__file__).parent / "alerts_test.yaml").read_text().replace("[RULES]", f"[{rules}]")
    )
    result = subprocess.run([PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_names_the_series_it_needs_and_they_exist(rendered: dict[str, Rendered]) -> None:
    rules = [r for g in _spec(rendered)["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == EXPECTED
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in generate_latest(build_metrics().registry).decode().splitlines()
        if not line.startswith("#")
    }
    for rule in rules:
        named = {m.strip() for m in rule["annotations"]["metric"].split(",")}
        used = set(re.findall(r"\b((?:operatord|kube)_[a-z_]+)\b", rule["expr"]))
        assert used == named, rule["alert"]
        for metric in named:
            if metric.startswith("operatord_"):
                assert metric in exposed, f"{rule['alert']}: {metric} is not in operatord/shell/metrics.py"
        assert rule["annotations"]["runbook_url"].endswith(f"/{rule['alert']}.md")
        assert (ROOT / "runbooks" / f"{rule['alert']}.md").is_file(), (
            f"runbooks/{rule['alert']}.md is missing"
        )


def test_thresholds_come_from_values(renderer: Any) -> None:
    r = renderer({"prometheusRule": {"enabled": True, "spendNearCapRatio": 0.5, "heartbeatMaxAge": "1h30m"}})
    exprs = {x["alert"]: x["expr"] for g in r.one("PrometheusRule")["spec"]["groups"] for x in g["rules"]}
    assert ">= 0.5 * max by (period)" in exprs["OperatordBurstSpendNearCap"]
    assert "< 5400" in exprs["OperatordBurstWithoutLeader"]
