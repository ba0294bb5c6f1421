"""values.schema.json is generated from the policy models and checked in: it must be current."""

from __future__ import annotations

import json
from pathlib import Path

from chartkit import CHART

from operatord.policies.schema import CHART_VALUES_SCHEMA, json_schema, main, render_helm_values_schema


def test_checked_in_values_schema_is_current() -> None:
    current = (CHART / CHART_VALUES_SCHEMA).read_text()
    assert current == render_helm_values_schema(CHART), (
        "stale: run python -m operatord.policies.schema helm deploy/helm/operatord"
    )


def test_check_mode_exits_1_when_stale_and_0_when_current(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "schema").mkdir(parents=True)
    (chart / "schema" / "values.base.json").write_text((CHART / "schema" / "values.base.json").read_text())
    assert main(["helm", str(chart), "--check"]) == 1
    assert main(["helm", str(chart)]) == 0
    assert main(["helm", str(chart), "--check"]) == 0


def test_policy_part_is_the_model_schema() -> None:
    values = json.loads((CHART / CHART_VALUES_SCHEMA).read_text())
    model = json_schema("Policy")
    assert values["properties"]["policy"]["properties"] == model["properties"]
    assert values["properties"]["policy"]["required"] == model["required"]
    for name, definition in model["$defs"].items():
        assert values["$defs"][name] == definition
