"""Every policy and rule file we ship loads, and the JSON Schema accepts what the model accepts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from operatord.policies.faultrules import FaultRules
from operatord.policies.load import load_policy, parse_document, read_text
from operatord.policies.model import Policy
from operatord.policies.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILES = sorted(p for p in (ROOT / "policies").rglob("*.yaml") if "faults" not in p.parts)
RULE_FILES = sorted((ROOT / "policies" / "faults").glob("*.yaml"))


def _as_json(path: Path) -> object:
    """YAML as Helm would hand it over: JSON types only (dates become strings)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


def test_policies_are_shipped() -> None:
    assert ROOT / "policies" / "default.yaml" in POLICY_FILES
    assert RULE_FILES, "no FaultRules files shipped"


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_shipped_policy_loads_with_its_rules(path: Path) -> None:
    loaded = load_policy(path)
    assert isinstance(loaded.policy, Policy)
    assert loaded.rules, f"{path} loads no fault rules"
    assert len(loaded.revision) == 12


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_shipped_rule_file_loads(path: Path) -> None:
    kind, value = parse_document(read_text(path), str(path))
    assert kind == "FaultRules"
    assert isinstance(value, FaultRules)


def test_default_policy_is_observe_only() -> None:
    assert load_policy(ROOT / "policies" / "default.yaml").policy.mode.value == "observe"


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_json_schema_accepts_shipped_policy(path: Path) -> None:
    jsonschema.validate(_as_json(path), json_schema("Policy"))


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_json_schema_accepts_shipped_rules(path: Path) -> None:
    jsonschema.validate(_as_json(path), json_schema("FaultRules"))


def test_json_schema_rejects_unknown_field() -> None:
    doc = _as_json(ROOT / "policies" / "default.yaml")
    assert isinstance(doc, dict)
    doc["colour"] = "blue"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema("Policy"))


def test_policy_round_trips_through_its_own_dump() -> None:
    policy = load_policy(ROOT / "policies" / "default.yaml").policy
    dumped = policy.model_dump(mode="json", by_alias=True)
    assert Policy.model_validate(dumped) == policy
    jsonschema.validate(dumped, json_schema("Policy"))
