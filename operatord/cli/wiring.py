"""CLI wiring of the whole observation: cluster, Prometheus and EC2 adapters into shell.observe.

Shared by `operatord run` and `operatord plan`, so the plan on-call reads is computed from the
same sources, by the same decide(), as the daemon's next tick. A dependency that is not
configured (no Prometheus URL, burst disabled) is simply absent: its part of the snapshot is
unknown and decide() holds what rests on it. The adapters are imported here, inside functions,
so commands that do not observe never pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import typer

from operatord.cli.common import CliError, context
from operatord.cli.kube import Wiring
from operatord.policies.load import LoadedPolicy
from operatord.shell.observe import Deadlines, Observer

if TYPE_CHECKING:
    from operatord.ports.capacity import CapacityProvider
    from operatord.ports.metrics import MetricsSource

log = structlog.get_logger("operatord.cli")


def prometheus_url(ctx: typer.Context, loaded: LoadedPolicy) -> str | None:
    settings = context(ctx).settings
    url = settings.prometheus_url or loaded.policy.metrics.prometheus_url
    return url.rstrip("/") if url else None


def metrics_source(ctx: typer.Context, loaded: LoadedPolicy) -> MetricsSource | None:
    url = prometheus_url(ctx, loaded)
    if url is None:
        return None
    from operatord.adapters.prometheus import PromMetrics

    policy = loaded.policy
    return PromMetrics(url, policy.metrics, models=[m.name for m in policy.serving.models])


def capacity_provider(ctx: typer.Context, loaded: LoadedPolicy) -> CapacityProvider | None:
    """The EC2 adapter when burst is enabled; None (burst unknown, logged) when it cannot be built."""
    burst = loaded.policy.burst
    if burst is None or not burst.enabled:
        return None
    from operatord.cli.burst import _ec2  # (boto3 only where burst is on)

    settings = context(ctx).settings
    try:
        provider: CapacityProvider = _ec2(
            loaded.policy, settings.aws_region or burst.region, settings.aws_profile
        )
    except CliError as err:
        log.error("aws.client_failed", error=err.format_message())
        return None
    return provider


def observer(
    ctx: typer.Context, wiring: Wiring, loaded: LoadedPolicy, *, deadlines: Deadlines | None = None
) -> tuple[Observer, CapacityProvider | None]:
    capacity = capacity_provider(ctx, loaded)
    obs = Observer(
        wiring.cluster,
        wiring.namespace,
        metrics=metrics_source(ctx, loaded),
        capacity=capacity,
        deadlines=deadlines or Deadlines(),
    )
    return obs, capacity
