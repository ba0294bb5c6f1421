"""JSON Schema of the policy files: for `operatord policy schema`, editors and the Helm chart.

`helm_values_schema()` builds the chart's values.schema.json: the chart's own values (a
hand-written schema kept beside the chart, `schema/values.base.json`) plus `policy` (the
Policy model) and `faultRules` (FaultRules files by name), so `helm lint`/`helm install` reject
the same policy mistakes `operatord policy check` does. Regenerate after a model change:

    python -m operatord.policies.schema helm deploy/helm/operatord          # writes values.schema.json
    python -m operatord.policies.schema helm deploy/helm/operatord --check  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from operatord.policies.faultrules import FaultRules
from operatord.policies.model import Policy

SchemaKind = Literal["Policy", "FaultRules"]

CHART_BASE_SCHEMA = Path("schema/values.base.json")  # relative to the chart folder
CHART_VALUES_SCHEMA = Path("values.schema.json")
# ConfigMap keys are file names; `rules.<name>.yaml` must sort after `policy.yaml` (the daemon
# reads the first *.yaml key as the policy) and be a valid key.
FAULT_RULES_NAME = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"


def json_schema(kind: SchemaKind = "Policy") -> dict[str, Any]:
    model = Policy if kind == "Policy" else FaultRules
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://operatord.io/schemas/{kind.lower()}.json"
    return schema


def helm_values_schema(chart_base: Mapping[str, Any]) -> dict[str, Any]:
    """The chart's values.schema.json: `chart_base` with `policy` and `faultRules` from the models.

    Deterministic (same models and base → same JSON), so the checked-in file can be compared.
    The models' `$defs` move to the root, where their `#/$defs/...` references resolve; a name
    clash with the base's own definitions is an error rather than a silent override.
    """
    out: dict[str, Any] = copy.deepcopy(dict(chart_base))
    defs: dict[str, Any] = dict(out.pop("$defs", {}))
    parts: dict[str, dict[str, Any]] = {}
    for kind in ("Policy", "FaultRules"):
        schema = json_schema(kind)
        for name, definition in schema.pop("$defs", {}).items():
            if name in defs and defs[name] != definition:
                raise ValueError(f"$defs/{name}: the chart base and the {kind} model define it differently")
            defs[name] = definition
        for key in ("$schema", "$id"):
            schema.pop(key)
        parts[kind] = schema
    props = dict(out.get("properties", {}))
    props["policy"] = {
        **parts["Policy"],
        "description": "The operatord policy (kind: Policy), stored in the operatord-policy ConfigMap.",
    }
    props["faultRules"] = {
        "type": "object",
        "description": "Extra fault-rule files (kind: FaultRules) by name; shipped as rules.<name>.yaml.",
        "propertyNames": {"pattern": FAULT_RULES_NAME},
        "additionalProperties": parts["FaultRules"],
    }
    out["properties"] = props
    out["$defs"] = dict(sorted(defs.items()))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://operatord.io/schemas/helm-values.json",
        "title": "operatord Helm chart values",
        **{k: v for k, v in out.items() if k not in ("$schema", "$id", "title")},
    }


def render_helm_values_schema(chart_dir: Path) -> str:
    """values.schema.json's text for the chart in `chart_dir` (sorted keys, two-space indent)."""
    base = json.loads((chart_dir / CHART_BASE_SCHEMA).read_text())
    return json.dumps(helm_values_schema(base), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m operatord.policies.schema", description="Write JSON Schemas of operatord's policy."
    )
    sub = parser.add_subparsers(dest="what", required=True)
    helm = sub.add_parser("helm", help="Write CHART/values.schema.json from the models and the chart base.")
    helm.add_argument("chart", type=Path)
    helm.add_argument("--check", action="store_true", help="Write nothing; exit 1 when the file is stale.")
    args = parser.parse_args(argv)
    target = args.chart / CHART_VALUES_SCHEMA
    text = render_helm_values_schema(args.chart)
    if args.check:
        current = target.read_text() if target.is_file() else ""
        if current != text:
            sys.stderr.write(
                f"{target} is stale: run python -m operatord.policies.schema helm {args.chart}\n"
            )
            return 1
        return 0
    target.write_text(text)
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
