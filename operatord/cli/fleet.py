"""`operatord fleet versions`: GPU driver, CUDA, NCCL and kernel versions by pool, outliers marked.

Read-only: it lists nodes through the cluster API and judges them with core.fleet.check_fleet,
the same check the daemon runs each tick (the daemon also records the GPUStackConsistent
condition and, with `fleet.cordon_outliers`, cordons).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from operatord.cli.common import ExitCode, OutputFormat, context, print_json, print_table, worst
from operatord.cli.kube import connect, live_policy, policy_json, unreachable
from operatord.core.fleet import FleetReport, NodeVerdict, Reference, check_fleet, stack_of
from operatord.core.metrics import Unknown
from operatord.core.model import Node
from operatord.policies.model import MetricsPolicy
from operatord.ports.cluster import ClusterError

app = typer.Typer(help="Fleet consistency: version skew across each pool.", no_args_is_help=True)

EPILOG = (
    "Exit codes: 0 every pool consistent; 1 outliers found (a node's driver, CUDA, NCCL, kernel, runtime or "
    "GPU model differs from its pool's reference, or it advertises fewer GPUs than its pool expects); "
    "2 usage error or invalid policy; 3 the Kubernetes API could not be reached."
)


@app.command("versions", epilog=EPILOG)
def versions(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Versions by pool: each pool's reference stack (pinned in the policy, else the strict majority) and the nodes that differ.

    Versions come from GPU Feature Discovery labels, status.nodeInfo, the agent's operatord.io/stack annotation and, when a Prometheus URL is set, dcgm-exporter's driver label. A component a node does not publish is shown as unknown, never as an outlier. See runbooks/version_skew.md.
    """
    wiring = connect(ctx)
    loaded = live_policy(ctx, wiring)
    try:
        nodes = wiring.cluster.list_nodes().items
    except ClusterError as err:
        raise unreachable(err) from None
    url = context(ctx).settings.prometheus_url or loaded.policy.metrics.prometheus_url
    drivers, unknown = _dcgm_drivers(url, loaded.policy.metrics)
    report = check_fleet(nodes, loaded.policy, drivers)
    if output == OutputFormat.JSON:
        print_json({"policy": policy_json(loaded), **report_json(report, nodes, drivers), "unknown": unknown})
    else:
        _print(report, nodes, drivers)
        for gap in unknown:
            sys.stdout.write(f"unknown: {gap}\n")
    codes = [ExitCode.FOUND if report.outliers else ExitCode.OK]
    codes += [ExitCode.UNREACHABLE] if unknown else []
    raise typer.Exit(int(worst(*codes)))


def _dcgm_drivers(url: str | None, policy: MetricsPolicy) -> tuple[dict[str, str], list[str]]:
    """dcgm-exporter's driver label per node, when a Prometheus is configured; else nothing to add."""
    if url is None:
        return {}, []
    from operatord.adapters.prometheus import PromMetrics

    found = PromMetrics(url, policy).driver_versions(datetime.now(UTC))
    if isinstance(found, Unknown):
        return {}, [f"driver versions from Prometheus {url}: {found.reason.value} {found.detail}".strip()]
    return found, []


def report_json(
    report: FleetReport, nodes: tuple[Node, ...], drivers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The `fleet` object (also part of `operatord status -o json`)."""
    stacks = {n.name: stack_of(n, (drivers or {}).get(n.name)) for n in nodes}
    return {
        "pools": [
            {
                "name": p.pool,
                "reference": {c: _ref_json(r) for c, r in p.reference.items()},
                "nodes": [_verdict_json(v, dict(stacks[v.node].versions)) for v in p.nodes],
            }
            for p in report.pools
        ],
        "outliers": [v.node for v in report.outliers],
        "unpooled": list(report.unpooled),
    }


def _ref_json(ref: Reference) -> dict[str, Any]:
    return {"accepted": list(ref.accepted), "source": ref.source, "detail": ref.detail}


def _verdict_json(v: NodeVerdict, versions: dict[str, str]) -> dict[str, Any]:
    return {
        "node": v.node,
        "outlier": v.outlier,
        "versions": versions,
        "differences": [
            {"component": d.component, "have": d.have, "want": list(d.want), "source": d.source}
            for d in v.differences
        ],
        "unknown": list(v.unknown),
        "gpus_advertised": v.gpus_advertised,
        "gpus_expected": v.gpus_expected,
        "summary": v.summary(),
    }


def _print(report: FleetReport, nodes: tuple[Node, ...], drivers: Mapping[str, str]) -> None:
    stacks = {n.name: stack_of(n, drivers.get(n.name)) for n in nodes}
    for pool in report.pools:
        sys.stdout.write(f"pool {pool.pool}: {len(pool.nodes)} nodes, {len(pool.outliers)} outlier(s)\n")
        rows = [
            [c, " or ".join(r.accepted) or "-", r.source + (f" ({r.detail})" if r.detail else "")]
            for c, r in pool.reference.items()
        ]
        print_table(rows, ["  COMPONENT", "REFERENCE", "FROM"])
        if pool.nodes:
            node_rows = [
                [
                    ("! " if v.outlier else "  ") + v.node,
                    stacks[v.node].versions.get("driver", "?"),
                    stacks[v.node].versions.get("cuda", "?"),
                    stacks[v.node].versions.get("nccl", "?"),
                    stacks[v.node].versions.get("kernel", "?"),
                    f"{v.gpus_advertised if v.gpus_advertised is not None else '?'}/{v.gpus_expected}",
                    v.summary() if v.outlier else "",
                ]
                for v in pool.nodes
            ]
            print_table(node_rows, ["  NODE", "DRIVER", "CUDA", "NCCL", "KERNEL", "GPUS", "DIFFERS"])
        sys.stdout.write("\n")
    if report.unpooled:
        sys.stdout.write(f"nodes in no pool of the policy: {', '.join(report.unpooled)}\n")
    sys.stdout.write(
        f"{len(report.outliers)} outlier(s)"
        + (": " + ", ".join(v.node for v in report.outliers) if report.outliers else "")
        + "\n"
    )
