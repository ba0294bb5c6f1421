"""Pure. Capacity and cost from load history: what the load needed, and what serving it costs each way.

Inputs are a `LoadHistory` (per-step series read from Prometheus) and the policy: serving
profiles (tokens/s a replica sustains within the SLO, a user-measured assumption), the scaling
target utilisation, and the `cost` section (power, electricity, cooling, hardware amortisation,
dated burst prices). Output is a `CostReport`: peak/p95 load, GPUs needed per step, and the
cost of serving that load with owned nodes, with burst capacity, or with both.

Every cost figure covers the same hours — the steps where load was known — so scenarios
compare like with like; `coverage` says how much of the window that is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from operatord.core.metrics import Gap, Unknown
from operatord.policies.model import BurstPrice, CostPolicy, Policy, ServedModel

Points = tuple[tuple[datetime, float], ...]
HOURS_PER_MONTH = 730.0  # 8760 / 12, the usual cloud-billing month


@dataclass(frozen=True, slots=True)
class LoadHistory:
    """Fleet load over a window at a fixed step. Points that were NaN or absent are simply not there."""

    start: datetime
    end: datetime
    step: timedelta
    requests_per_s: Points = ()
    prompt_tokens_per_s: Mapping[str, Points] = field(default_factory=dict)  # by model
    generation_tokens_per_s: Mapping[str, Points] = field(default_factory=dict)  # by model
    gpu_active: Points = ()  # fleet average, 0..1
    gpus: Points = ()  # GPUs reporting
    power_w: Points = ()  # fleet GPU power
    outage: Unknown | None = None
    gaps: tuple[Gap, ...] = ()
    queries: int = 0


@dataclass(frozen=True, slots=True)
class Stat:
    """Summary of one series over the known steps."""

    peak: float | None
    p95: float | None
    mean: float | None
    points: int

    def to_json(self) -> dict[str, Any]:
        return {"peak": self.peak, "p95": self.p95, "mean": self.mean, "points": self.points}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    node_hours: float  # local node-hours plus burst instance-hours
    usd: float
    usd_per_month: float
    usd_per_million_tokens: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "node_hours": round(self.node_hours, 3),
            "usd": round(self.usd, 2),
            "usd_per_month": round(self.usd_per_month, 2),
            "usd_per_million_tokens": None
            if self.usd_per_million_tokens is None
            else round(self.usd_per_million_tokens, 4),
        }


@dataclass(frozen=True, slots=True)
class CostReport:
    start: datetime
    end: datetime
    step: timedelta
    coverage: float  # share of the window's steps where load was known
    covered_hours: float
    requests_per_s: Stat
    demand_tokens_per_s: Stat
    generation_tokens_per_s: Stat
    gpu_active: Stat
    gpus_reporting: Stat
    gpus_needed: Stat
    gpus_needed_series: Points
    local_gpus_per_node: int
    local_usd_per_node_hour: dict[str, float]
    generated_tokens: float
    scenarios: tuple[Scenario, ...]
    notes: tuple[str, ...]
    gaps: tuple[Gap, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "step_s": self.step.total_seconds(),
                "coverage": round(self.coverage, 4),
                "covered_hours": round(self.covered_hours, 3),
            },
            "load": {
                "requests_per_s": self.requests_per_s.to_json(),
                "demand_tokens_per_s": self.demand_tokens_per_s.to_json(),
                "generation_tokens_per_s": self.generation_tokens_per_s.to_json(),
                "gpu_active": self.gpu_active.to_json(),
                "gpus_reporting": self.gpus_reporting.to_json(),
            },
            "gpus_needed": self.gpus_needed.to_json(),
            "local": {
                "gpus_per_node": self.local_gpus_per_node,
                "usd_per_node_hour": {k: round(v, 4) for k, v in self.local_usd_per_node_hour.items()},
            },
            "generated_tokens": round(self.generated_tokens),
            "scenarios": [s.to_json() for s in self.scenarios],
            "notes": list(self.notes),
            "unknown": [g.to_json() for g in self.gaps],
        }


# ---------------------------------------------------------------- small total helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values. Monotone in q."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def stat(values: Sequence[float]) -> Stat:
    if not values:
        return Stat(None, None, None, 0)
    return Stat(max(values), percentile(values, 95), sum(values) / len(values), len(values))


def replicas_needed(demand_tokens_per_s: float, model: ServedModel, gpu_type: str, target: float) -> int:
    """Replicas serving `demand` at `target` of the profile's SLO throughput, within the model's bounds.

    Total and monotone in demand; never below min_replicas, never above max_replicas.
    """
    profile = model.profile_for(gpu_type)
    if profile is None:
        raise ValueError(f"model {model.name!r} has no serving profile for {gpu_type!r}")
    raw = math.ceil(max(0.0, demand_tokens_per_s) / (profile.tokens_per_s_per_replica * target) - 1e-9)
    return min(model.max_replicas, max(model.min_replicas, raw))


def local_usd_per_node_hour(cost: CostPolicy, utilization: float) -> dict[str, float]:
    """Cost of one owned node for one hour at a GPU utilisation (0..1): hardware, power, other."""
    u = min(1.0, max(0.0, utilization))
    kw = cost.node_power_kw_idle + (cost.node_power_kw_full - cost.node_power_kw_idle) * u
    parts = {
        "hardware": cost.hardware_usd_per_node / (cost.amortisation.total_seconds() / 3600.0),
        "power": kw * cost.pue * cost.electricity_usd_per_kwh,
        "other": cost.other_usd_per_node_hour,
    }
    parts["total"] = sum(parts.values())
    return parts


def effective_prices(policy: Policy) -> list[BurstPrice]:
    """The cost section's dated prices, plus the burst section's on-demand prices not already listed."""
    prices = list(policy.cost.prices)
    if policy.burst is not None:
        for itype in policy.burst.instance_types:
            known = any(p.instance_type == itype.instance_type and p.kind == "on_demand" for p in prices)
            if not known:
                prices.append(
                    BurstPrice(
                        instance_type=itype.instance_type,
                        kind="on_demand",
                        usd_per_hour=itype.price_usd_per_hour,
                        as_of=itype.price_as_of,
                        gpus=itype.gpus_per_node,
                        note="from burst.instance_types",
                    )
                )
    return prices


# ---------------------------------------------------------------- the report


def cost_report(history: LoadHistory, policy: Policy) -> CostReport:
    """Load statistics, GPUs needed per step and the cost of each way to serve it (see module doc)."""
    cost = policy.cost
    target = cost.target_utilization or policy.scaling.target_utilization
    local_pool = next((p for p in policy.pools if p.kind == "local"), policy.pools[0])
    gpn = local_pool.gpus_per_node
    weights = policy.serving.demand_weights
    notes: list[str] = [
        f"GPUs needed = replicas at {target:.0%} of each profile's tokens/s (serving.models[].profiles, "
        f"an assumption you measure) × GPUs per replica, on {local_pool.gpu_type}",
    ]
    gaps = list(history.gaps)

    models = {m.name: m for m in policy.serving.models}
    seen = set(history.prompt_tokens_per_s) | set(history.generation_tokens_per_s)
    for name in sorted(seen - set(models)):
        notes.append(
            f"model {name!r} has load but no serving profile in the policy; excluded from GPUs needed"
        )
    quiet = sorted(set(models) - seen)
    for name in quiet:
        notes.append(f"model {name!r} has no token series in the window; counted at min_replicas")

    prompt = {m: dict(history.prompt_tokens_per_s.get(m, ())) for m in models}
    gen = {m: dict(history.generation_tokens_per_s.get(m, ())) for m in models}
    # With no model's tokens in the window, no step's load is known (min_replicas alone is not load).
    steps = _steps(history) if set(models) - set(quiet) else []
    needed: list[tuple[datetime, float]] = []
    busy_fraction: list[float] = []
    demand_total: list[float] = []
    for t in steps:
        gpus = 0
        busy = 0.0
        total = 0.0
        known = True
        for name, model in models.items():
            if name in quiet:
                profile = model.profile_for(local_pool.gpu_type)
                gpus += model.min_replicas * (profile.gpus_per_replica if profile else 0)
                continue
            p, g = prompt[name].get(t), gen[name].get(t)
            if (weights.prompt > 0 and p is None) or (weights.generation > 0 and g is None):
                known = False
                break
            demand = (p or 0.0) * weights.prompt + (g or 0.0) * weights.generation
            profile = model.profile_for(local_pool.gpu_type)
            assert profile is not None  # the policy guarantees a profile for every local pool's GPU type
            gpus += replicas_needed(demand, model, local_pool.gpu_type, target) * profile.gpus_per_replica
            busy += demand / profile.tokens_per_s_per_replica * profile.gpus_per_replica
            total += demand
        if known:
            needed.append((t, float(gpus)))
            busy_fraction.append(busy)
            demand_total.append(total)

    step_h = history.step.total_seconds() / 3600.0
    covered_h = len(needed) * step_h
    window_steps = max(1, len(steps))
    coverage = len(needed) / window_steps
    needed_values = [v for _, v in needed]
    needed_stat = stat(needed_values)
    gen_by_step: dict[datetime, float] = {}
    for series in history.generation_tokens_per_s.values():
        for t, v in series:
            gen_by_step[t] = gen_by_step.get(t, 0.0) + v
    tokens = sum(gen_by_step.get(t, 0.0) for t, _ in needed) * history.step.total_seconds()
    gpu_active = stat([v for _, v in history.gpu_active])
    gpus_reporting = stat([v for _, v in history.gpus])

    scenarios: list[Scenario] = []

    def add(name: str, description: str, node_hours: float, usd: float) -> None:
        per_month = usd / covered_h * HOURS_PER_MONTH if covered_h > 0 else 0.0
        per_mtok = usd / (tokens / 1e6) if tokens > 0 else None
        scenarios.append(Scenario(name, description, node_hours, usd, per_month, per_mtok))

    def busy_util(nodes: int) -> float:
        if nodes <= 0 or not busy_fraction:
            return 0.0
        return sum(min(1.0, b / (nodes * gpn)) for b in busy_fraction) / len(busy_fraction)

    fleet_gpus = gpus_reporting.peak
    if fleet_gpus is not None and covered_h > 0:
        nodes = math.ceil(fleet_gpus / gpn)
        util = gpu_active.mean if gpu_active.mean is not None else busy_util(nodes)
        rate = local_usd_per_node_hour(cost, util)["total"]
        short = (needed_stat.peak or 0.0) - fleet_gpus
        add(
            "local_current_fleet",
            f"{nodes} owned node(s) ({fleet_gpus:.0f} GPUs reporting) at the measured {util:.0%} utilisation"
            + (f"; {short:.0f} GPUs short of the peak need" if short > 0 else ""),
            nodes * covered_h,
            nodes * covered_h * rate,
        )
    elif fleet_gpus is None:
        notes.append("no GPU series in the window: the current fleet's cost is not shown")

    if needed_stat.peak is not None and covered_h > 0:
        peak_nodes = math.ceil(needed_stat.peak / gpn)
        rate = local_usd_per_node_hour(cost, busy_util(peak_nodes))["total"]
        add(
            "local_sized_for_peak",
            f"{peak_nodes} owned node(s), enough for the peak of {needed_stat.peak:.0f} GPUs",
            peak_nodes * covered_h,
            peak_nodes * covered_h * rate,
        )
        p95_nodes = math.ceil((needed_stat.p95 or 0.0) / gpn)
        for price in _newest(effective_prices(policy)):
            label = f"{price.instance_type} {price.kind.replace('_', '-')} ${price.usd_per_hour:g}/h as of {price.as_of}"
            if price.kind in ("on_demand", "spot"):
                inst_h = sum(math.ceil(v / price.gpus) for v in needed_values) * step_h
                add(
                    f"burst_only_{price.kind}_{price.instance_type}",
                    f"all load on {label}, scaled every step",
                    inst_h,
                    inst_h * price.usd_per_hour,
                )
                local_rate = local_usd_per_node_hour(cost, busy_util(p95_nodes))["total"]
                extra_h = (
                    sum(math.ceil(max(0.0, v - p95_nodes * gpn) / price.gpus) for v in needed_values) * step_h
                )
                add(
                    f"local_p95_plus_burst_{price.kind}_{price.instance_type}",
                    f"{p95_nodes} owned node(s) for the p95 load, the rest on {label}",
                    p95_nodes * covered_h + extra_h,
                    p95_nodes * covered_h * local_rate + extra_h * price.usd_per_hour,
                )
            else:
                committed = math.ceil(needed_stat.peak / price.gpus)
                add(
                    f"committed_{price.kind}_{price.instance_type}",
                    f"{committed} instance(s) for the peak, paid every hour, on {label}",
                    committed * covered_h,
                    committed * covered_h * price.usd_per_hour,
                )
    if not effective_prices(policy):
        notes.append("no burst prices in cost.prices or burst.instance_types: only owned capacity is costed")
    if coverage < 1.0:
        notes.append(f"load was known for {coverage:.1%} of the window's steps; costs cover those hours only")

    return CostReport(
        start=history.start,
        end=history.end,
        step=history.step,
        coverage=coverage,
        covered_hours=covered_h,
        requests_per_s=stat([v for _, v in history.requests_per_s]),
        demand_tokens_per_s=stat(demand_total),
        generation_tokens_per_s=stat(list(gen_by_step.values())),
        gpu_active=gpu_active,
        gpus_reporting=gpus_reporting,
        gpus_needed=needed_stat,
        gpus_needed_series=tuple(needed),
        local_gpus_per_node=gpn,
        local_usd_per_node_hour=local_usd_per_node_hour(
            cost, gpu_active.mean if gpu_active.mean is not None else 0.0
        ),
        generated_tokens=tokens,
        scenarios=tuple(scenarios),
        notes=tuple(notes),
        gaps=tuple(gaps),
    )


def _steps(history: LoadHistory) -> list[datetime]:
    """The window's step instants, start + k·step up to end (how range queries align their points)."""
    if history.step <= timedelta(0) or history.end < history.start:
        return []
    count = int((history.end - history.start) / history.step) + 1
    return [history.start + history.step * k for k in range(count)]


def _newest(prices: Sequence[BurstPrice]) -> list[BurstPrice]:
    """For each (instance type, kind), the most recent price only; stable order of first appearance."""
    chosen: dict[tuple[str, str], BurstPrice] = {}
    for price in prices:
        key = (price.instance_type, price.kind)
        if key not in chosen or price.as_of > chosen[key].as_of:
            chosen[key] = price
    return list(chosen.values())
