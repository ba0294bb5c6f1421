"""`operatord policy check|schema`: validate policy and fault-rule files before they ship."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from operatord.cli.common import ExitCode, OutputFormat, context, print_json, worst
from operatord.policies.faultrules import FaultRules
from operatord.policies.load import (
    LoadedPolicy,
    PolicyInvalid,
    PolicyUnreadable,
    Problem,
    load_rules,
    parse_document,
    read_text,
    rule_files,
)
from operatord.policies.model import Policy
from operatord.policies.schema import SchemaKind, json_schema
from operatord.settings import DEFAULT_POLICY

app = typer.Typer(help="Validate policy files and print their schema.", no_args_is_help=True)


@app.command(
    "check",
    epilog="Exit codes: 0 every file valid; 1 a file is invalid (one line per problem: "
    "FILE:LINE:COL: field.path: message); 2 a file cannot be read or is not YAML.",
)
def check(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Policy or FaultRules files. Default: --policy / OPERATORD_POLICY, else policies/default.yaml."
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Check policy files (kind: Policy) and fault-rule files (kind: FaultRules).

    A Policy is checked together with the FaultRules files its `faults.rules` globs name, so a bad regex in a rule fails the policy that would load it.

    \b
    Example:
      operatord policy check policies/default.yaml policies/examples/*.yaml
    """
    paths = list(files or [])
    if not paths:
        paths = [context(ctx).settings.policy or DEFAULT_POLICY]
    results: list[dict[str, object]] = []
    problems: list[Problem] = []
    codes: list[ExitCode] = []
    for path in paths:
        code, file_problems, summary = _check_one(path)
        codes.append(code)
        problems.extend(file_problems)
        results.append({"file": str(path), "valid": code == ExitCode.OK, **summary})
    unique = sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line, p.column))
    final = worst(*codes)
    if output == OutputFormat.JSON:
        print_json(
            {
                "valid": final == ExitCode.OK,
                "files": results,
                "problems": [
                    {"file": p.file, "line": p.line, "column": p.column, "path": p.path, "message": p.message}
                    for p in unique
                ],
            }
        )
    else:
        for p in unique:
            sys.stdout.write(f"{p}\n")
        for r in results:
            if r["valid"]:
                parts = [str(r["kind"])]
                parts += [f"mode {r['mode']}"] if "mode" in r else []
                parts += [f"revision {r['revision']}"] if "revision" in r else []
                parts.append(f"{r['rules']} rules")
                detail = ", ".join(parts)
                sys.stdout.write(f"{r['file']}: ok ({detail})\n")
        bad = sum(1 for r in results if not r["valid"])
        sys.stderr.write(f"{len(results)} file(s) checked, {bad} invalid, {len(unique)} problem(s)\n")
    raise typer.Exit(int(final))


def _check_one(path: Path) -> tuple[ExitCode, list[Problem], dict[str, object]]:
    try:
        kind, value = parse_document(read_text(path), str(path))
    except PolicyUnreadable as err:
        return ExitCode.USAGE, list(err.problems), {}
    except PolicyInvalid as err:
        return ExitCode.FOUND, list(err.problems), {}
    if isinstance(value, FaultRules):
        return ExitCode.OK, [], {"kind": kind, "rules": len(value.rules)}
    assert isinstance(value, Policy)
    files = rule_files(value, path.parent)
    if not files:
        return (
            ExitCode.FOUND,
            [Problem(str(path), 1, 1, "faults.rules", f"no FaultRules file matches {value.faults.rules}")],
            {},
        )
    try:
        rules = load_rules(files)
    except PolicyUnreadable as err:
        return ExitCode.USAGE, list(err.problems), {}
    except PolicyInvalid as err:
        return ExitCode.FOUND, list(err.problems), {}
    loaded = LoadedPolicy(value, rules, str(path), tuple(str(f) for f in files))
    return (
        ExitCode.OK,
        [],
        {"kind": kind, "revision": loaded.revision, "rules": len(rules), "mode": str(value.mode)},
    )


@app.command("schema", epilog="Exit codes: 0 printed.")
def schema(
    kind: Annotated[
        str, typer.Option("--kind", help="Policy or FaultRules.", case_sensitive=True)
    ] = "Policy",
) -> None:
    """Print the JSON Schema of policy files (for editors, CI and the Helm chart)."""
    if kind not in ("Policy", "FaultRules"):
        sys.stderr.write(f"operatord: --kind must be Policy or FaultRules, got {kind!r}\n")
        raise typer.Exit(int(ExitCode.USAGE))
    chosen: SchemaKind = "Policy" if kind == "Policy" else "FaultRules"
    sys.stdout.write(json.dumps(json_schema(chosen), indent=2) + "\n")
