"""`operatord agent --node-name NAME`: the per-node log watcher (run as a DaemonSet).

Wires the log sources (kmsg, journald, files, /var/log/pods), the cursor file, the optional
NVML probe and the Kubernetes adapter into shell.agent.Agent. Heavy imports stay inside the
command so `operatord --help` does not pay for them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from operatord.cli.common import CliError, ExitCode

if TYPE_CHECKING:
    from operatord.ports.logs import LogSource
    from operatord.shell.agent import Probe

DEFAULT_STATE_DIR = Path("/var/lib/operatord")
DEFAULT_PODS = Path("/var/log/pods")

EPILOG = (
    "Exit codes: 0 stopped cleanly (SIGTERM/SIGINT, or --once done); 2 usage error: bad --source, "
    "a source that cannot be opened, no such node, invalid policy; 3 the Kubernetes API could not be reached at start."
)


def parse_source(spec: str) -> LogSource:
    """`kmsg` | `journald` | `file:PATH` | `pods:DIR` → a log source (usage error otherwise)."""
    from operatord.adapters.logs import FileTail, Journald, Kmsg, PodLogs

    kind, _, arg = spec.partition(":")
    if kind == "kmsg" and not arg:
        return Kmsg()
    if kind == "kmsg":
        return Kmsg(Path(arg))
    if kind == "journald" and not arg:
        return Journald()
    if kind == "file" and arg:
        return FileTail(Path(arg))
    if kind == "pods" and arg:
        return PodLogs(Path(arg))
    raise CliError(f"--source {spec!r}: expected kmsg, journald, file:PATH or pods:DIR", ExitCode.USAGE)


def default_sources() -> list[str]:
    """kmsg when readable (else journald), plus the pod logs folder when it exists."""
    specs = ["kmsg" if os.access("/dev/kmsg", os.R_OK) else "journald"]
    if DEFAULT_PODS.is_dir():
        specs.append(f"pods:{DEFAULT_PODS}")
    return specs


def agent(
    ctx: typer.Context,
    node_name: Annotated[
        str,
        typer.Option(
            "--node-name", envvar="NODE_NAME", help="This node's name (DaemonSet: the downward API)."
        ),
    ],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            help="kmsg | journald | file:PATH | pods:DIR; repeatable. Default: kmsg (journald when "
            "/dev/kmsg is not readable) and pods:/var/log/pods when it exists.",
        ),
    ] = None,
    state_dir: Annotated[
        Path,
        typer.Option(
            "--state-dir", envvar="OPERATORD_AGENT_STATE_DIR", help="Where the cursor file lives (hostPath)."
        ),
    ] = DEFAULT_STATE_DIR,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between polls when idle.")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Read what is there, publish, exit.")] = False,
    probe: Annotated[
        bool | None,
        typer.Option("--probe/--no-probe", help="NVML probe every minute (default: when NVML loads)."),
    ] = None,
    expected_gpus: Annotated[
        int | None, typer.Option("--expected-gpus", min=0, help="GPUs this node must have (probe compares).")
    ] = None,
) -> None:
    """Watch this node's kernel and container logs for GPU/NCCL/CUDA faults and publish them on the Node.

    Publishes (design §1.5): NodeConditions GPUHealthy / NCCLHealthy (False while a node fault is
    active, cleared after the policy's recovery_quiet_period or a healthy NVML probe), the
    operatord.io/findings annotation (latest 50 folded findings), operatord.io/stack (driver,
    CUDA, NCCL versions seen) and one Event per new burst. Positions are kept in
    STATE_DIR/agent-cursor.json, so a restart neither repeats nor loses findings.
    """
    from operatord.adapters.logs import JsonCursorStore
    from operatord.cli.kube import connect, live_policy, unreachable
    from operatord.core.faults.catalog import Catalog
    from operatord.ports.cluster import ClusterError, NotFound
    from operatord.ports.logs import LogSourceError
    from operatord.shell.agent import Agent
    from operatord.shell.scan import Scanner

    sources = [parse_source(s) for s in (source or default_sources())]
    wiring = connect(ctx)
    loaded = live_policy(ctx, wiring)
    nvml_probe: Probe | None = None
    if probe is not False:
        nvml_probe = _nvml_probe(node_name, expected_gpus, required=probe is True)
    agent_ = Agent(
        node=node_name,
        cluster=wiring.cluster,
        sources=sources,
        cursors=JsonCursorStore(state_dir / "agent-cursor.json"),
        scanner=Scanner(Catalog.of(loaded.rules), silence=loaded.policy.faults.burst_silence),
        policy=loaded.policy.faults,
        clock=lambda: datetime.now(UTC),
        probe=nvml_probe,
    )
    try:
        agent_.start()
    except NotFound:
        agent_.close()
        raise CliError(
            f"node {node_name!r} not found (check --node-name / NODE_NAME)", ExitCode.USAGE
        ) from None
    except ClusterError as err:
        agent_.close()
        raise unreachable(err) from None
    except LogSourceError as err:
        agent_.close()
        raise CliError(str(err), ExitCode.USAGE) from None
    if once:
        try:
            agent_.tick()
        finally:
            agent_.close()
        return
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent_.run(stop, timedelta(seconds=interval))
    sys.stderr.flush()


def _nvml_probe(node: str, expected_gpus: int | None, *, required: bool) -> Probe | None:
    from operatord.adapters.nvml import NvmlProbe, NvmlUnavailable
    from operatord.core.faults.probe import ProbeVerdict, judge

    try:
        reader = NvmlProbe.open()
    except NvmlUnavailable as err:
        if required:
            raise CliError(f"--probe: {err}", ExitCode.USAGE) from None
        return None

    def run(now: datetime) -> ProbeVerdict:
        return judge(reader.read(), node=node, now=now, expected_gpus=expected_gpus)

    return run
