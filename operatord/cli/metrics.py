"""`operatord metrics`: what operatord reads from Prometheus right now, per node and per model.

Wires PromMetrics (the adapter) to the policy's metric settings; registered in operatord.cli as
`app.command("metrics", epilog=EPILOG)(metrics)`. Unknown values print as null
(`?` in the table) with the reason under `unknown`; an unreachable Prometheus still prints the
object, with exit code 3.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from operatord.cli.common import CliError, ExitCode, OutputFormat, context, print_json, print_table
from operatord.policies.model import MetricsPolicy

if TYPE_CHECKING:
    from operatord.core.metrics import MetricsSnapshot
    from operatord.policies.load import LoadedPolicy
    from operatord.policies.model import Policy

EPILOG = (
    "Exit codes: 0 read (some values may be unknown: see `unknown`); 2 usage error, no Prometheus URL "
    "or an invalid policy; 3 Prometheus could not be reached or timed out (the object is still printed, "
    "every value unknown)."
)


@dataclass(frozen=True, slots=True)
class MetricsSetup:
    """The policy in force (or None: built-in defaults) and the Prometheus URL to use."""

    policy: Policy | None
    policy_source: str
    policy_revision: str | None
    url: str

    @property
    def metrics(self) -> MetricsPolicy:
        return self.policy.metrics if self.policy is not None else MetricsPolicy()

    def policy_json(self) -> dict[str, Any]:
        return {"source": self.policy_source, "revision": self.policy_revision}


def load_setup(ctx: typer.Context, url_option: str | None, *, need_policy: bool = False) -> MetricsSetup:
    """Resolve the policy (--policy, else policies/default.yaml when present, else defaults) and the URL
    (this command's --prometheus-url, then the root option / OPERATORD_PROMETHEUS_URL, then the policy)."""
    from operatord.policies.load import PolicyError, load_policy
    from operatord.settings import DEFAULT_POLICY

    settings = context(ctx).settings
    path: Path | None = settings.policy
    if path is None:
        live = _cluster_policy(ctx)
        if live is not None:
            return _setup(ctx, url_option, live.policy, live.source, live.revision)
    if path is None and DEFAULT_POLICY.is_file():
        path = DEFAULT_POLICY
    policy: Policy | None = None
    revision: str | None = None
    if path is not None:
        try:
            loaded = load_policy(path)
        except PolicyError as err:
            sys.stderr.write(f"operatord: cannot load the policy {path}:\n{err}\n")
            raise typer.Exit(int(ExitCode.USAGE)) from None
        policy, revision = loaded.policy, loaded.revision
    elif need_policy:
        sys.stderr.write(
            f"operatord: no policy: pass --policy FILE or set OPERATORD_POLICY ({DEFAULT_POLICY} not found)\n"
        )
        raise typer.Exit(int(ExitCode.USAGE))
    source = str(path) if path is not None else "built-in defaults"
    return _setup(ctx, url_option, policy, source, revision)


def _cluster_policy(ctx: typer.Context) -> LoadedPolicy | None:
    """The operatord-policy ConfigMap the daemon uses (design §1.2), when a cluster is configured.

    Reading metrics must not depend on the API server: an unreachable cluster is noted on stderr
    and the local policy is used instead; an invalid ConfigMap policy is still a usage error.
    """
    from operatord.cli.kube import connect, live_policy

    settings = context(ctx).settings
    in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
    configured = (
        settings.kubeconfig or os.environ.get("KUBECONFIG") or (Path.home() / ".kube" / "config").is_file()
    )
    if not (in_cluster or configured):
        return None
    try:
        return live_policy(ctx, connect(ctx))
    except CliError as err:
        if err.code == ExitCode.USAGE:
            raise
        sys.stderr.write(f"operatord: policy ConfigMap not read ({err}); using the local policy\n")
        return None


def _setup(
    ctx: typer.Context, url_option: str | None, policy: Policy | None, source: str, revision: str | None
) -> MetricsSetup:
    settings = context(ctx).settings
    url = url_option or settings.prometheus_url or (policy.metrics.prometheus_url if policy else None)
    if not url:
        sys.stderr.write(
            "operatord: no Prometheus URL: pass --prometheus-url URL, set OPERATORD_PROMETHEUS_URL, "
            "or set metrics.prometheus_url in the policy\n"
        )
        raise typer.Exit(int(ExitCode.USAGE))
    if not url.startswith(("http://", "https://")):
        sys.stderr.write(f"operatord: --prometheus-url must start with http:// or https://, got {url!r}\n")
        raise typer.Exit(int(ExitCode.USAGE))
    return MetricsSetup(policy, source, revision, url.rstrip("/"))


def metrics(
    ctx: typer.Context,
    prometheus_url: Annotated[
        str | None,
        typer.Option("--prometheus-url", help="Prometheus base URL; overrides OPERATORD_PROMETHEUS_URL."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Read GPU health per node and LLM load per model from Prometheus, as the daemon would this tick.

    Nodes come from dcgm-exporter (host label Hostname or hostname, or the policy's metrics.node_label);
    models from vLLM (vllm: or vllm_ names) and SGLang. Missing, empty, NaN and stale series are unknown,
    never 0.

    Example:  operatord metrics --prometheus-url http://prometheus:9090 -o json
    """
    from operatord.adapters.prometheus import PromMetrics

    setup = load_setup(ctx, prometheus_url)
    weights = setup.policy.serving.demand_weights if setup.policy else _default_weights()
    models = [m.name for m in setup.policy.serving.models] if setup.policy else []
    snap = PromMetrics(setup.url, setup.metrics, models=models).snapshot(datetime.now(UTC))
    if output == OutputFormat.JSON:
        print_json({"prometheus_url": setup.url, "policy": setup.policy_json(), **snap.to_json(weights)})
    else:
        _table(snap, setup, weights)
    raise typer.Exit(int(ExitCode.OK if snap.reachable else ExitCode.UNREACHABLE))


def _default_weights() -> Any:
    from operatord.policies.model import DemandWeights

    return DemandWeights()


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "?" if value is None else pattern.format(value)


def _table(snap: MetricsSnapshot, setup: MetricsSetup, weights: Any) -> None:
    body = snap.to_json(weights)
    state = "reachable" if snap.reachable else "NOT REACHABLE"
    sys.stdout.write(
        f"prometheus {setup.url} ({state}, {snap.queries} queries)  policy {setup.policy_source}"
        + (f" (revision {setup.policy_revision})" if setup.policy_revision else "")
        + "\n\n"
    )
    nodes = body["nodes"]
    if nodes:
        rows = [
            [
                name,
                _fmt(n["gpus"], "{:d}"),
                _fmt(n["gpu_active"], "{:.0%}") + ("*" if n["gpu_active_source"] == "gpu_util" else ""),
                _fmt(n["vram_used_fraction"], "{:.0%}"),
                _fmt(n["xid_last"], "{:d}"),
                "?" if n["row_remap_failure"] is None else ("FAILED" if n["row_remap_failure"] else "ok"),
                _fmt(n["temperature_c"], "{:.0f}"),
                _fmt(n["power_w"], "{:.0f}"),
            ]
            for name, n in nodes.items()
        ]
        print_table(rows, ["NODE", "GPUS", "ACTIVE", "VRAM", "XID", "ROW_REMAP", "TEMP_C", "POWER_W"])
        if any(n["gpu_active_source"] == "gpu_util" for n in nodes.values()):
            sys.stdout.write("* DCGM_FI_DEV_GPU_UTIL (no DCP GR_ENGINE_ACTIVE on that node)\n")
        sys.stdout.write("\n")
    models = body["models"]
    if models:
        rows = [
            [
                name,
                _fmt(m["requests_waiting"], "{:.0f}"),
                _fmt(m["requests_running"], "{:.0f}"),
                _fmt(m["kv_cache_usage"], "{:.0%}"),
                _fmt(m["prompt_tokens_per_s"], "{:.1f}"),
                _fmt(m["generation_tokens_per_s"], "{:.1f}"),
                _fmt(m["demand_tokens_per_s"], "{:.1f}"),
                _fmt(m["requests_per_s"], "{:.2f}"),
                _fmt(m["success_ratio"], "{:.1%}"),
                _fmt(m["ttft_p99_s"], "{:.3f}"),
                _fmt(m["e2e_p99_s"], "{:.2f}"),
            ]
            for name, m in models.items()
        ]
        print_table(
            rows,
            [
                "MODEL",
                "WAITING",
                "RUNNING",
                "KV",
                "PROMPT_T/S",
                "GEN_T/S",
                "DEMAND_T/S",
                "QPS",
                "SUCCESS",
                "TTFT_P99_S",
                "E2E_P99_S",
            ],
        )
        sys.stdout.write("\n")
    if not nodes and not models:
        sys.stdout.write("no GPU nodes or models found\n\n")
    gaps = body["unknown"]
    if gaps:
        sys.stdout.write(f"unknown ({len(gaps)}):\n")
        for g in gaps:
            sys.stdout.write(
                f"  {g['what']}: {g['reason']}" + (f" ({g['detail']})" if g["detail"] else "") + "\n"
            )
