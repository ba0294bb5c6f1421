"""`operatord faults scan|rules`: find GPU/NCCL/CUDA faults in log files with the shipped rule catalog.

Heavy imports (the scanner, hyperscan) happen inside the commands so `operatord --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from operatord.cli.common import ExitCode, OutputFormat, context, print_json, print_table, worst

if TYPE_CHECKING:
    from operatord.core.faults.correlate import Correlated
    from operatord.policies.load import LoadedPolicy
    from operatord.shell.scan import StreamResult

app = typer.Typer(help="Find GPU/NCCL/CUDA faults in logs; list the rule catalog.", no_args_is_help=True)


class ScanFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"


def _policy(ctx: typer.Context) -> LoadedPolicy:
    from operatord.policies.load import PolicyError, load_policy
    from operatord.settings import DEFAULT_POLICY

    path = context(ctx).settings.policy or DEFAULT_POLICY
    try:
        return load_policy(path)
    except PolicyError as err:
        sys.stderr.write(f"operatord: cannot load the policy {path}:\n{err}\n")
        raise typer.Exit(int(ExitCode.USAGE)) from None


@app.command(
    "scan",
    epilog="Exit codes: 0 no node fault; 1 a node fault (or a fleet event) was found; "
    "2 an input could not be read or the policy is invalid (the other inputs are still scanned).",
)
def scan(
    ctx: typer.Context,
    files: Annotated[
        list[str] | None, typer.Argument(help="Log files (plain or gzip) or - for stdin. Default: stdin.")
    ] = None,
    output: Annotated[
        ScanFormat, typer.Option("-o", "--output", help="table, json or jsonl.")
    ] = ScanFormat.TABLE,
    node: Annotated[
        str | None,
        typer.Option("--node", help="Node the logs belong to (default: the host in each line, if any)."),
    ] = None,
    node_faults_only: Annotated[
        bool, typer.Option("--node-faults-only", help="Show only findings that are the node's fault.")
    ] = False,
) -> None:
    """Scan logs for GPU, NCCL and CUDA faults; print one finding per folded burst.

    Understands dmesg, dmesg -T, journald (short-iso, json), syslog, rsyslog #012, CRI
    container logs (/var/log/pods) and vLLM worker prefixes. Repeats fold into one finding with
    a count; the same class on several nodes within minutes is reported as one fleet event.

    Examples:  operatord faults scan /var/log/kern.log      journalctl -k -o json | operatord faults scan -o jsonl
    """
    from operatord.core.faults.catalog import Catalog
    from operatord.core.faults.correlate import correlate
    from operatord.core.faults.prefilter import PrefilterError
    from operatord.shell.scan import ScanInputError, Scanner

    loaded = _policy(ctx)
    try:
        scanner = Scanner(Catalog.of(loaded.rules), silence=loaded.policy.faults.burst_silence)
    except PrefilterError as err:
        sys.stderr.write(f"operatord: {err}\n")
        raise typer.Exit(int(ExitCode.USAGE)) from None
    if not files and sys.stdin.isatty():
        sys.stderr.write(
            "operatord: no input: pass log FILE... or pipe logs into `operatord faults scan -`\n"
        )
        raise typer.Exit(int(ExitCode.USAGE))
    inputs = list(files or ["-"])
    results: list[StreamResult] = []
    errors: list[dict[str, str]] = []
    this_year = datetime.now(UTC).year
    for name in inputs:
        try:
            if name == "-":
                results.append(scanner.scan(sys.stdin.buffer, source="-", node=node, year=this_year))
                continue
            path = Path(name)
            if path.is_dir():
                raise ScanInputError(f"{name}: is a directory, not a log file")
            year = datetime.fromtimestamp(path.stat().st_mtime, UTC).year
            with path.open("rb") as stream:
                results.append(scanner.scan(stream, source=name, node=node, year=year))
        except FileNotFoundError:
            errors.append({"source": name, "error": f"{name}: no such file"})
        except PermissionError:
            errors.append({"source": name, "error": f"{name}: permission denied"})
        except (ScanInputError, OSError) as err:
            errors.append({"source": name, "error": str(err)})
    for e in errors:
        sys.stderr.write(f"operatord: {e['error']}\n")
    findings = [f for r in results for f in r.findings]
    corr = correlate(findings, loaded.policy.faults)
    found = bool(corr.node_faults) or any(
        any(o.node_fault for o in findings if o.class_ is ev.class_) for ev in corr.fleet_events
    )
    shown = [f for f in corr.findings if f.node_fault or not node_faults_only]
    if output == ScanFormat.JSONL:
        for f in shown:
            sys.stdout.write(json.dumps(f.to_json()) + "\n")
    elif output == ScanFormat.JSON:
        print_json(_json_body(loaded, results, errors, corr, shown, found))
    else:
        _print_table(results, corr, shown)
    codes = [ExitCode.FOUND if found else ExitCode.OK]
    if errors:
        codes.append(ExitCode.USAGE)
    raise typer.Exit(int(worst(*codes)))


def _json_body(
    loaded: LoadedPolicy,
    results: list[StreamResult],
    errors: list[dict[str, str]],
    corr: Correlated,
    shown: list[Any],
    found: bool,
) -> dict[str, Any]:
    return {
        "policy": {"source": loaded.source, "revision": loaded.revision, "rules": len(loaded.rules)},
        "node_fault": found,
        "inputs": [
            {
                "source": r.source,
                "lines": r.lines,
                "bytes": r.bytes,
                "findings": len(r.findings),
                "versions": r.versions,
            }
            for r in results
        ],
        "errors": errors,
        "findings": [f.to_json() for f in shown],
        "fleet_events": [e.to_json() for e in corr.fleet_events],
        "escalations": [e.to_json() for e in corr.escalations],
        "suspect_peers": [p.to_json() for p in corr.suspect_peers],
    }


def _print_table(results: list[StreamResult], corr: Correlated, shown: list[Any]) -> None:
    rows = [
        [
            f"{f.source}:{f.line}",
            f.time.strftime("%Y-%m-%dT%H:%M:%SZ") if f.time else "-",
            f.node or "-",
            f.class_.value,
            "yes" if f.node_fault else "no",
            f.action.value,
            str(f.count),
            f.gpu or "-",
            str(f.xid) if f.xid is not None else "-",
            f.rule,
        ]
        for f in shown
    ]
    if rows:
        print_table(
            rows, ["WHERE", "TIME", "NODE", "CLASS", "NODE_FAULT", "ACTION", "COUNT", "GPU", "XID", "RULE"]
        )
    for ev in corr.fleet_events:
        sys.stdout.write(
            f"fleet event ({ev.kind}): {ev.class_.value} on {len(ev.nodes)} nodes "
            f"{ev.first_seen:%H:%M:%S}..{ev.last_seen:%H:%M:%S}: {', '.join(ev.nodes)}\n"
        )
    for es in corr.escalations:
        sys.stdout.write(
            f"escalation ({es.verdict}): Xid {es.xid} {es.occurrences} times on {es.node} GPU {es.gpu} "
            f"between {es.first_seen:%Y-%m-%d %H:%M} and {es.last_seen:%Y-%m-%d %H:%M}\n"
        )
    for sp in corr.suspect_peers:
        sys.stdout.write(f"suspect peer: {sp.peer} (named by {', '.join(sp.reported_by)})\n")
    lines = sum(r.lines for r in results)
    faults = sum(1 for f in corr.findings if f.node_fault)
    sys.stderr.write(
        f"{len(results)} input(s), {lines} lines, {len(corr.findings)} finding(s), {faults} node fault(s)\n"
    )


@app.command("rules", epilog="Exit codes: 0 listed; 2 the policy or a rule file is invalid.")
def rules(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """List the fault-rule catalog the policy loads: id, class, verdict and runbook of each rule."""
    loaded = _policy(ctx)
    if output == OutputFormat.JSON:
        print_json(
            {
                "policy": {"source": loaded.source, "revision": loaded.revision},
                "rules": [r.model_dump(mode="json", by_alias=True) for r in loaded.rules],
            }
        )
        return
    print_table(
        [
            [
                r.id,
                r.class_.value,
                "yes" if r.node_fault else "no",
                r.severity.value,
                r.action.value,
                ",".join(s.value for s in r.sources),
                f"{len(r.overrides)}" if r.overrides else "-",
                f"runbooks/{r.runbook}",
            ]
            for r in loaded.rules
        ],
        ["ID", "CLASS", "NODE_FAULT", "SEVERITY", "ACTION", "SOURCES", "OVERRIDES", "RUNBOOK"],
    )
