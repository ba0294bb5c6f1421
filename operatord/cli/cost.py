"""`operatord cost`: capacity and cost from Prometheus history — owned GPUs against burst prices.

Reads the load history (one range query per series, constant in the fleet), turns it into a
CostReport with the pure core (operatord.core.cost) and prints a table or JSON; `--chart FILE`
writes a PNG (matplotlib, Agg backend: no display needed). Registered in operatord.cli as
`app.command("cost", epilog=EPILOG)(cost)`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from operatord.cli.common import ExitCode, OutputFormat, print_json, print_table
from operatord.cli.metrics import load_setup

if TYPE_CHECKING:
    from operatord.core.cost import CostReport

EPILOG = (
    "Exit codes: 0 report printed; 2 usage error (bad --window/--step, no policy, no Prometheus URL, "
    "chart not writable); 3 Prometheus could not be reached or timed out (an empty report is still printed)."
)
MAX_POINTS = 2000  # per series: p95 needs a few hundred; Prometheus refuses more than 11 000


def default_step(window: timedelta) -> timedelta:
    """At least 5 minutes, and at most MAX_POINTS steps over the window (whole seconds)."""
    seconds = max(300.0, window.total_seconds() / MAX_POINTS)
    return timedelta(seconds=int(seconds + 0.999))


def cost(
    ctx: typer.Context,
    window: Annotated[str, typer.Option("--window", help='History to read, e.g. "7d", "30d".')] = "30d",
    step: Annotated[
        str | None, typer.Option("--step", help="Resolution; default: 5m, or window/2000 when longer.")
    ] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="Write a PNG chart to this file.")] = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option("--prometheus-url", help="Prometheus base URL; overrides OPERATORD_PROMETHEUS_URL."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Peak and p95 load, GPUs needed at the policy's targets, and local cost of ownership vs burst prices.

    GPUs needed use each model's serving profile (tokens/s per replica at the SLO, your measurement)
    at scaling.target_utilization (or cost.target_utilization). Local cost: hardware amortisation,
    power (idle..full by utilisation) × PUE × electricity price, other costs per node-hour. Burst:
    the dated prices in cost.prices and burst.instance_types.

    Example:  operatord cost --window 30d --chart cost.png
    """
    from operatord.adapters.prometheus import PromMetrics
    from operatord.core.cost import cost_report
    from operatord.policies.types import parse_duration

    try:
        span = parse_duration(window)
        resolution = parse_duration(step) if step is not None else default_step(span)
    except ValueError as err:
        raise _usage(f"--window/--step: {err}") from None
    if span <= timedelta(0) or resolution <= timedelta(0):
        raise _usage("--window and --step must be positive")
    if span / resolution > 11_000:
        raise _usage(
            f"--step {step} gives {int(span / resolution)} points; Prometheus allows 11000 (use a larger step)"
        )
    if chart is not None and not chart.parent.is_dir():
        raise _usage(f"--chart {chart}: folder {chart.parent} does not exist")
    setup = load_setup(ctx, prometheus_url, need_policy=True)
    assert setup.policy is not None
    end = datetime.now(UTC)
    history = PromMetrics(setup.url, setup.metrics).history(end - span, end, resolution)
    report = cost_report(history, setup.policy)
    chart_written: str | None = None
    if chart is not None and history.outage is None:
        try:
            write_chart(report, chart)
        except OSError as err:
            raise _usage(f"--chart {chart}: {err}") from None
        chart_written = str(chart)
    if output == OutputFormat.JSON:
        body = report.to_json()
        body["unknown"] = (
            [{"what": "prometheus", "reason": history.outage.reason.value, "detail": history.outage.detail}]
            if history.outage
            else []
        ) + body["unknown"]
        print_json(
            {
                "prometheus_url": setup.url,
                "policy": setup.policy_json(),
                "reachable": history.outage is None,
                "queries": history.queries,
                "chart": chart_written,
                **body,
            }
        )
    else:
        _table(report, setup.url, history.outage.detail if history.outage else None, chart_written)
    raise typer.Exit(int(ExitCode.UNREACHABLE if history.outage else ExitCode.OK))


def _usage(message: str) -> typer.Exit:
    sys.stderr.write(f"operatord: {message}\n")
    return typer.Exit(int(ExitCode.USAGE))


def _f(value: float | None, pattern: str = "{:.1f}") -> str:
    return "?" if value is None else pattern.format(value)


def _table(report: CostReport, url: str, outage: str | None, chart: str | None) -> None:
    w = sys.stdout.write
    w(
        f"window {report.start:%Y-%m-%d %H:%M} .. {report.end:%Y-%m-%d %H:%M} UTC, step "
        f"{report.step.total_seconds():.0f}s, load known for {report.coverage:.0%} ({report.covered_hours:.1f} h)"
        f"  prometheus {url}\n"
    )
    if outage:
        w(f"PROMETHEUS NOT REACHABLE: {outage}\n")
    w("\n")
    rows = [
        [
            "requests/s",
            _f(report.requests_per_s.peak, "{:.2f}"),
            _f(report.requests_per_s.p95, "{:.2f}"),
            _f(report.requests_per_s.mean, "{:.2f}"),
        ],
        [
            "demand tokens/s (weighted)",
            _f(report.demand_tokens_per_s.peak),
            _f(report.demand_tokens_per_s.p95),
            _f(report.demand_tokens_per_s.mean),
        ],
        [
            "generated tokens/s",
            _f(report.generation_tokens_per_s.peak),
            _f(report.generation_tokens_per_s.p95),
            _f(report.generation_tokens_per_s.mean),
        ],
        [
            "GPU utilisation",
            _f(report.gpu_active.peak, "{:.0%}"),
            _f(report.gpu_active.p95, "{:.0%}"),
            _f(report.gpu_active.mean, "{:.0%}"),
        ],
        [
            "GPUs reporting",
            _f(report.gpus_reporting.peak, "{:.0f}"),
            _f(report.gpus_reporting.p95, "{:.0f}"),
            _f(report.gpus_reporting.mean, "{:.1f}"),
        ],
        [
            "GPUs needed",
            _f(report.gpus_needed.peak, "{:.0f}"),
            _f(report.gpus_needed.p95, "{:.0f}"),
            _f(report.gpus_needed.mean, "{:.1f}"),
        ],
    ]
    print_table(rows, ["LOAD", "PEAK", "P95", "MEAN"])
    parts = report.local_usd_per_node_hour
    w(
        f"\nlocal node-hour at the measured utilisation: ${parts['total']:.2f} (hardware ${parts['hardware']:.2f}, "
        f"power ${parts['power']:.2f}, other ${parts['other']:.2f})\n\n"
    )
    if report.scenarios:
        print_table(
            [
                [
                    s.name,
                    f"{s.node_hours:.1f}",
                    f"{s.usd:,.2f}",
                    f"{s.usd_per_month:,.0f}",
                    _f(s.usd_per_million_tokens, "{:.3f}"),
                    s.description,
                ]
                for s in report.scenarios
            ],
            ["SCENARIO", "NODE_H", "USD", "USD/MONTH", "USD/M_TOK", "WHAT"],
        )
    else:
        w("no scenarios: no load was known in the window\n")
    for note in report.notes:
        w(f"note: {note}\n")
    for gap in report.gaps:
        w(f"unknown: {gap.what}: {gap.reason.value} ({gap.detail})\n")
    if chart:
        w(f"chart: {chart}\n")


def write_chart(report: CostReport, path: Path) -> None:
    """GPUs needed over time against the fleet, and monthly cost per scenario, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), gridspec_kw={"height_ratios": [3, 2]})
    try:
        if report.gpus_needed_series:
            times = [t for t, _ in report.gpus_needed_series]
            top.step(times, [v for _, v in report.gpus_needed_series], where="post", label="GPUs needed")
            if report.gpus_needed.p95 is not None:
                top.axhline(report.gpus_needed.p95, linestyle="--", color="tab:orange", label="p95 needed")
            if report.gpus_reporting.peak is not None:
                top.axhline(
                    report.gpus_reporting.peak,
                    linestyle=":",
                    color="tab:green",
                    label="GPUs reporting (peak)",
                )
            top.legend(loc="lower right")
        else:
            top.text(
                0.5, 0.5, "no load known in the window", ha="center", va="center", transform=top.transAxes
            )
        top.set_title(f"GPUs needed, {report.start:%Y-%m-%d} .. {report.end:%Y-%m-%d} (UTC)")
        top.set_ylabel("GPUs")
        top.grid(alpha=0.3)
        if report.scenarios:
            names = [s.name.replace("_", " ") for s in report.scenarios]
            values = [s.usd_per_month for s in report.scenarios]
            bottom.barh(names, values, color="tab:blue")
            for i, v in enumerate(values):
                bottom.text(v, i, f" ${v:,.0f}", va="center", fontsize=8)
        bottom.set_xlabel("USD per month (730 h) at this load")
        bottom.grid(alpha=0.3, axis="x")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)
