"""The `operatord` command line (design §1.2): the on-call surface and the only place adapters are wired.

One module per command group; this module builds the root app, turns root options into
Settings, configures logging once, and maps every failure to an exit code without a traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from operatord import __version__
from operatord.cli import agent, burst, cost, doctor, faults, fleet, metrics, nodes, policy, run, simulate
from operatord.cli.common import EXIT_CODES_HELP, CliContext, CliError, ExitCode
from operatord.shell.telemetry import configure_logging

_ARGV_KEY = "operatord.argv"


class _RootGroup(TyperGroup):
    """Keeps the sub-command's arguments visible to the root callback (for `_asks_for_help`)."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        ctx.meta[_ARGV_KEY] = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        return super().invoke(ctx)


app = typer.Typer(
    cls=_RootGroup,
    rich_markup_mode=None,
    name="operatord",
    help="Keeps a self-hosted GPU inference cluster healthy and big enough.\n\n"
    "Finds GPU/NCCL/CUDA faults in node logs, cordons and drains bad nodes inside safety budgets, "
    "scales serving and bursts to EC2 when local GPUs run out.",
    epilog=EXIT_CODES_HELP + " Set OPERATORD_DEBUG=1 to see a traceback for an internal error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
app.add_typer(policy.app, name="policy")
app.add_typer(fleet.app, name="fleet")
app.add_typer(faults.app, name="faults")
app.add_typer(burst.app, name="burst")
app.command("metrics", epilog=metrics.EPILOG)(metrics.metrics)
app.command("cost", epilog=cost.EPILOG)(cost.cost)
app.command("agent", epilog=agent.EPILOG)(agent.agent)
app.command("run", epilog=run.EPILOG)(run.run)
app.command("simulate", epilog=simulate.EPILOG)(simulate.simulate)
app.command("doctor", epilog=doctor.EPILOG)(doctor.doctor)
nodes.register(app)  # status, plan, explain, drain, uncordon, pause, resume, breaker


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"operatord {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings YAML (not the policy). Env: OPERATORD_*.")
    ] = None,
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Policy file; overrides the operatord-policy ConfigMap.")
    ] = None,
    prometheus_url: Annotated[
        str | None, typer.Option("--prometheus-url", help="Prometheus base URL.")
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", help="kubeconfig; default: in-cluster, then ~/.kube/config."),
    ] = None,
    aws_region: Annotated[str | None, typer.Option("--aws-region", help="AWS region for burst.")] = None,
    aws_profile: Annotated[
        str | None, typer.Option("--aws-profile", help="AWS profile (boto3 chain).")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="auto (JSON unless a terminal), json or console.")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = None,
) -> None:
    cli = CliContext(
        config_file=config,
        overrides={
            "policy": policy_file,
            "prometheus_url": prometheus_url,
            "kubeconfig": kubeconfig,
            "aws_region": aws_region,
            "aws_profile": aws_profile,
            "log_format": log_format,
            "log_level": log_level,
        },
    )
    ctx.obj = cli
    if ctx.resilient_parsing:
        return
    try:
        settings = cli.settings
    except CliError:
        if _asks_for_help(ctx):
            configure_logging()
            return
        raise
    configure_logging(settings.log_format, settings.log_level)


def _asks_for_help(ctx: typer.Context) -> bool:
    """--help must work even when the environment or --config is broken."""
    rest: list[str] = ctx.meta.get(_ARGV_KEY, [])
    return any(arg in ("-h", "--help") for arg in rest)


def main() -> None:
    """Console-script entry point: run the app; user errors and bugs never print a bare traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("operatord: interrupted\n")
        sys.exit(130)
    except Exception as err:
        if os.environ.get("OPERATORD_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(
            f"operatord: internal error ({type(err).__name__}: {err}); this is a bug, please report it "
            "with OPERATORD_DEBUG=1 output\n"
        )
        sys.exit(int(ExitCode.INTERNAL))
