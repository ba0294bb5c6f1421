"""Shell: operatord's OWN Prometheus metrics (not the GPU/vLLM metrics it reads).

`build_metrics()` creates every series on a fresh `CollectorRegistry` and returns them in one
`OperatordMetrics` object; nothing is registered globally, so a test, the CLI and the daemon
each get their own. The daemon (issue 7) updates them from its loop and serves
`registry` on :9102/metrics; the chart's PrometheusRule and the runbooks name these series, so
names and labels are a contract: add, never rename.

Series (labels in braces; the values each label takes are listed):

* `operatord_ticks_total{outcome}` counter: controller ticks finished; outcome `ok` | `error`
  (an exception escaped the tick) | `skipped` (not the leader, or paused before observing).
* `operatord_tick_duration_seconds` histogram: observe → decide → apply wall time of one tick.
* `operatord_decisions_total{reason, decision}` counter: decisions per tick; reason is a
  `vocab.Reason` or `vocab.FaultClass` value, decision `action` | `hold`.
* `operatord_actions_total{kind, outcome}` counter: applied actions; kind is the Action kind
  (`cordon`, `drain`, `uncordon`, `taint`, `set_replicas`, `launch_burst`, `release_burst`, …),
  outcome the apply Outcome status: `applied` | `unchanged` | `would` | `failed` | `refused` | `skipped`.
* `operatord_breaker_open` gauge: 1 while the quarantine circuit breaker is open, else 0.
* `operatord_paused` gauge: 1 while `operatord pause` is in force, else 0.
* `operatord_burst_instances{state}` gauge: burst instances per lifecycle state
  (core.burst.lifecycle.BurstState: planned, requested, running, registered, gpu_ready, serving,
  draining, terminating, terminated, launch_failed, terminate_failed). Every state is set each
  tick (0 when empty) so a vanished state reads 0, not stale.
* `operatord_burst_spend_usd{period}` gauge: spend measured as its cap measures it;
  period `hour`: the $/hour rate of the burst capacity held now; `day`: USD spent since 00:00 UTC.
* `operatord_burst_cap_usd{period}` gauge: the policy caps `burst.max_usd_per_hour` (period
  `hour`) and `burst.max_usd_per_day` (`day`); 0 when burst is disabled.
* `operatord_data_age_seconds{source}` gauge: age of the newest data operatord used, per source
  `kubernetes` | `prometheus` | `ec2`.
* `operatord_data_stale{source}` gauge: 1 when that age exceeds the policy's limit
  (`metrics.staleness_limit` for prometheus), so decisions hold; else 0.
* `operatord_api_errors_total{dependency, kind}` counter: failed calls; dependency
  `kubernetes` | `prometheus` | `ec2`; kind `unreachable` | `timeout` | `throttled` | `conflict`
  | `client` (4xx) | `server` (5xx).
* `operatord_leader` gauge: 1 on the replica holding the Lease, 0 on standbys.
* `operatord_leader_heartbeat_timestamp_seconds` gauge: Unix time of the leader's last
  completed tick (set only by the leader). Alert OperatordBurstWithoutLeader fires when burst
  instances exist and this is older than the chart's `prometheusRule.heartbeatMaxAge`.
* `operatord_build_info{version}` gauge: always 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from operatord import __version__

M = TypeVar("M", bound=MetricWrapperBase)

# Ticks are seconds long at most when healthy; the long tail is drains waiting on PDBs.
TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BURST_STATES = (
    "planned",
    "requested",
    "running",
    "registered",
    "gpu_ready",
    "serving",
    "draining",
    "terminating",
    "terminated",
    "launch_failed",
    "terminate_failed",
)
SPEND_PERIODS = ("hour", "day")
DATA_SOURCES = ("kubernetes", "prometheus", "ec2")


@dataclass(frozen=True)
class OperatordMetrics:
    """Every operatord series, on its own `registry` (see the module docstring for meanings)."""

    registry: CollectorRegistry
    ticks: Counter
    tick_duration: Histogram
    decisions: Counter
    actions: Counter
    breaker_open: Gauge
    paused: Gauge
    burst_instances: Gauge
    burst_spend_usd: Gauge
    burst_cap_usd: Gauge
    data_age_seconds: Gauge
    data_stale: Gauge
    api_errors: Counter
    leader: Gauge
    leader_heartbeat: Gauge
    build_info: Gauge
    _children: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def child(self, metric: M, **labels: str) -> M:
        """metric.labels(**labels), looked up once per label set: the loop sets some twenty
        labelled series every tick, and labels() validates and locks on every call."""
        key = (metric, *labels.items())
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(**labels)
        return found


def build_metrics(registry: CollectorRegistry | None = None) -> OperatordMetrics:
    """Create operatord's series on `registry` (a fresh one when None) and return them.

    Gauges with a fixed label set start at 0 for every label value, so dashboards and alerts
    see a value from the first scrape instead of an absent series.
    """
    reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
    m = OperatordMetrics(
        registry=reg,
        ticks=Counter("operatord_ticks", "Controller ticks finished, by outcome.", ["outcome"], registry=reg),
        tick_duration=Histogram(
            "operatord_tick_duration_seconds",
            "Wall time of one tick (observe, decide, apply).",
            buckets=TICK_BUCKETS,
            registry=reg,
        ),
        decisions=Counter(
            "operatord_decisions",
            "Decisions per reason; decision is action or hold.",
            ["reason", "decision"],
            registry=reg,
        ),
        actions=Counter(
            "operatord_actions", "Applied actions by kind and outcome.", ["kind", "outcome"], registry=reg
        ),
        breaker_open=Gauge(
            "operatord_breaker_open", "1 while the quarantine circuit breaker is open.", registry=reg
        ),
        paused=Gauge("operatord_paused", "1 while operatord is paused (operatord pause).", registry=reg),
        burst_instances=Gauge(
            "operatord_burst_instances", "Burst instances per lifecycle state.", ["state"], registry=reg
        ),
        burst_spend_usd=Gauge(
            "operatord_burst_spend_usd",
            "Burst spend as its cap measures it: period=hour is the $/hour rate now, period=day the USD spent today (UTC).",
            ["period"],
            registry=reg,
        ),
        burst_cap_usd=Gauge(
            "operatord_burst_cap_usd",
            "Policy burst caps: max_usd_per_hour (period=hour), max_usd_per_day (period=day).",
            ["period"],
            registry=reg,
        ),
        data_age_seconds=Gauge(
            "operatord_data_age_seconds",
            "Age of the newest data operatord used, per source.",
            ["source"],
            registry=reg,
        ),
        data_stale=Gauge(
            "operatord_data_stale",
            "1 when a source's data is older than the policy allows (decisions hold).",
            ["source"],
            registry=reg,
        ),
        api_errors=Counter(
            "operatord_api_errors",
            "Failed calls to a dependency, by error kind.",
            ["dependency", "kind"],
            registry=reg,
        ),
        leader=Gauge("operatord_leader", "1 on the replica holding the leader Lease.", registry=reg),
        leader_heartbeat=Gauge(
            "operatord_leader_heartbeat_timestamp_seconds",
            "Unix time of the leader's last completed tick.",
            registry=reg,
        ),
        build_info=Gauge("operatord_build_info", "Always 1; the version label.", ["version"], registry=reg),
    )
    for state in BURST_STATES:
        m.burst_instances.labels(state=state).set(0)
    for period in SPEND_PERIODS:
        m.burst_spend_usd.labels(period=period).set(0)
        m.burst_cap_usd.labels(period=period).set(0)
    for source in DATA_SOURCES:
        m.data_stale.labels(source=source).set(0)
    m.build_info.labels(version=__version__).set(1)
    return m
