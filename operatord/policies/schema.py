"""JSON Schema of the policy files: for `operatord policy schema`, editors and the Helm chart."""

from __future__ import annotations

from typing import Any, Literal

from operatord.policies.faultrules import FaultRules
from operatord.policies.model import Policy

SchemaKind = Literal["Policy", "FaultRules"]


def json_schema(kind: SchemaKind = "Policy") -> dict[str, Any]:
    model = Policy if kind == "Policy" else FaultRules
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://operatord.io/schemas/{kind.lower()}.json"
    return schema
