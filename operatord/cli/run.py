"""`operatord run`: the controller loop (design §1.2), as `helm install` starts it.

Wires the cluster, Prometheus and EC2 adapters into shell.loop.Daemon, serves /metrics, /healthz
and /readyz, stands for leader election on the Lease `operatord-leader` and ticks until SIGTERM
(or SIGINT), then finishes the action in progress, releases the Lease and exits 0.

`--mode` only lowers the policy's mode. `--dry-run` writes nothing at all (no Lease either): every
tick computes the plan and logs each action as "would". `--once` runs one tick and exits: it acts
only if it wins the Lease (a running daemon keeps it), prints what it did, and exits 0, 1 when
an action failed or was refused, or 3 when the cluster could not be read.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from operatord.cli.common import CliError, ExitCode, print_table
from operatord.cli.kube import Wiring, connect, live_policy
from operatord.policies.load import LoadedPolicy, load_policy
from operatord.ports.cluster import NotFound
from operatord.vocab import POLICY_CONFIGMAP, Mode

EPILOG = (
    "Exit codes: 0 stopped cleanly on SIGTERM/SIGINT (or, with --once, the tick went well); 1 with --once: an "
    "action failed or was refused; 2 usage error or invalid policy; 3 the Kubernetes API could not be reached "
    "at start (or, with --once, during the tick)."
)


class _PolicySource:
    """The live policy: --policy FILE (token: mtime and size) or the operatord-policy ConfigMap
    (token: its resourceVersion; 'absent' while it does not exist)."""

    def __init__(self, ctx: typer.Context, wiring: Wiring, path: Path | None) -> None:
        self._ctx = ctx
        self._wiring = wiring
        self._path = path

    def revision_token(self) -> str | None:
        if self._path is not None:
            try:
                st = self._path.stat()
            except OSError:
                return None
            return f"file:{st.st_mtime_ns}:{st.st_size}"
        try:
            cm = self._wiring.cluster.get_configmap(self._wiring.namespace, POLICY_CONFIGMAP)
        except NotFound:
            return "absent"
        return f"configmap:{cm.resource_version}"

    def load(self) -> LoadedPolicy:
        if self._path is not None:
            return load_policy(self._path)
        return live_policy(self._ctx, self._wiring)


def run(
    ctx: typer.Context,
    mode: Annotated[
        Mode | None, typer.Option("--mode", help="Lower the policy's mode: observe, cordon-only or full.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and log every plan; write nothing at all.")
    ] = False,
    listen: Annotated[
        str, typer.Option("--listen", help="Address of /metrics, /healthz, /readyz (HOST:PORT, :PORT).")
    ] = ":9102",
    tick: Annotated[float, typer.Option("--tick", help="Seconds between ticks.", min=1.0)] = 30.0,
    identity: Annotated[
        str | None,
        typer.Option("--identity", help="Leader-election identity; default: $POD_NAME, else the host."),
    ] = None,
    lease_duration: Annotated[
        float,
        typer.Option("--lease-duration", help="Seconds a leader's Lease lasts without renewal.", min=3.0),
    ] = 15.0,
) -> None:
    """Run the controller: observe → decide → apply every tick, as the elected leader.

    Example:  operatord run --mode cordon-only
    """
    from operatord.cli.common import context
    from operatord.cli.wiring import observer
    from operatord.shell.endpoints import Endpoints, parse_listen
    from operatord.shell.leader import LeaderElector
    from operatord.shell.loop import Daemon, LoopConfig, run_scheduled
    from operatord.shell.metrics import build_metrics
    from operatord.shell.observe import Deadlines

    try:
        host, port = parse_listen(listen)
    except ValueError as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    settings = context(ctx).settings
    wiring = connect(ctx)
    loaded = live_policy(ctx, wiring)  # exit 2 (invalid) or 3 (unreachable) before anything starts
    config = LoopConfig(tick=timedelta(seconds=tick), mode=mode, dry_run=dry_run)
    deadlines = Deadlines(kubernetes=min(20.0, tick), prometheus=min(15.0, tick), ec2=min(20.0, tick))
    watcher, capacity = observer(ctx, wiring, loaded, deadlines=deadlines)
    clock = _now
    elector = LeaderElector(
        wiring.cluster,
        wiring.namespace,
        identity or os.environ.get("POD_NAME") or socket.gethostname(),
        clock,
        duration=timedelta(seconds=lease_duration),
    )
    daemon = Daemon(
        cluster=wiring.cluster,
        namespace=wiring.namespace,
        observer=watcher,
        elector=elector,
        policy_source=_PolicySource(ctx, wiring, settings.policy),
        policy=loaded,
        metrics=build_metrics(),
        capacity=capacity,
        config=config,
        clock=clock,
    )
    if once:
        raise typer.Exit(int(_once(daemon)))

    try:
        endpoints = Endpoints(daemon.metrics.registry, lambda: daemon.alive(_now()), daemon.ready, host, port)
    except OSError as err:
        raise CliError(f"--listen {listen}: {err.strerror or err}", ExitCode.USAGE) from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        run_scheduled(daemon, stop)
    finally:
        endpoints.close()
    raise typer.Exit(int(ExitCode.OK))


def _once(daemon: Any) -> ExitCode:
    daemon.prime()
    try:
        if not daemon.config.dry_run:
            daemon.renew()
        report = daemon.tick()
    finally:
        daemon.stopping.set()
        daemon.elector.release()
        daemon.observer.close()
    if report.error is not None:
        sys.stderr.write(f"operatord: tick failed: {report.error}\n")
        return ExitCode.UNREACHABLE if report.observation is None else ExitCode.INTERNAL
    if not report.leader:
        sys.stdout.write(
            "not the leader (another replica holds the Lease): observed only, nothing decided or applied\n"
        )
        return ExitCode.OK
    rows = [[o.kind, o.node or "-", o.status, o.reason] for o in report.outcomes]
    holds = report.decision.plan.holds if report.decision is not None else ()
    rows += [[h.blocked or "-", h.node or "-", "held", h.reason] for h in holds]
    if rows:
        print_table(rows, ["KIND", "NODE", "OUTCOME", "REASON"])
    else:
        sys.stdout.write("nothing to do\n")
    bad = any(o.status in ("failed", "refused") for o in report.outcomes)
    return ExitCode.FOUND if bad else ExitCode.OK


def _now() -> datetime:
    return datetime.now(UTC)
