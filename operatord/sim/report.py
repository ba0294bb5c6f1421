"""Simulator: the report of design §1.4 — report.json, report.md (comparison table), timeline.png.

Numbers are as measured, including where operatord loses; report.md says so in its own section.
Serving numbers are labelled assumptions; baseline parameters cite research/autoscaling.md.
`compact()` is the deterministic subset the golden-file tests compare (no wall times).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from operatord.sim.baselines import Oracle
from operatord.sim.runner import RunResult
from operatord.sim.world import World, bill

SCHEMA_VERSION = 1

BASELINE_SOURCES = {
    "static": "no autoscaling, no burst, no remediation: one replica per local node slot",
    "reactive": (
        "KEDA pollingInterval 30 s and ignoreNullValues=true (research/autoscaling.md §1.4, kedacore/keda #3065); "
        "HPA tolerance 0.1, scale-up max(4 pods, 100 %)/15 s, scale-down stabilization 300 s (§1.5); "
        "cluster-autoscaler scan 10 s, node-group backoff 5 m→30 m, scale-down-unneeded-time 10 m, "
        "scale-down-delay-after-add 10 m (§1.2); utilisation target = the policy's target_utilization; "
        "same max_instances as operatord; no remediation"
    ),
    "oracle": (
        "perfect foresight of demand and boot-to-serving time; burst only while demand exceeds healthy local "
        "capacity at full SLO throughput, billed from boot start, gaps shorter than a boot bridged, cheapest "
        "instance type, same max_instances (a lower bound on burst cost)"
    ),
}


@dataclass
class Summary:
    """One policy's figures (the keys of design §1.4)."""

    name: str
    requests: float
    slo_attainment: float
    unserved_requests: float
    burst_instance_hours: float
    burst_cost_usd: float
    max_burst_instances: int
    drains: list[dict[str, Any]] = field(default_factory=list)
    wrong_drains: list[dict[str, Any]] = field(default_factory=list)
    faults_injected: int = 0
    faults_detected: int | None = None
    time_to_cordon_s: list[dict[str, Any]] = field(default_factory=list)
    orphan_instances: list[str] = field(default_factory=list)
    invariant_violations: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    ticks: int = 0
    launches: int = 0
    scale_changes: int = 0
    instances_by_offering: dict[str, int] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": round(self.requests, 1),
            "slo_attainment": round(self.slo_attainment, 5),
            "unserved_requests": round(self.unserved_requests, 1),
            "burst_instance_hours": round(self.burst_instance_hours, 3),
            "burst_cost_usd": round(self.burst_cost_usd, 2),
            "max_burst_instances": self.max_burst_instances,
            "drains": self.drains,
            "wrong_drains": self.wrong_drains,
            "faults_injected": self.faults_injected,
            "faults_detected": self.faults_detected,
            "time_to_cordon_s": self.time_to_cordon_s,
            "orphan_instances": self.orphan_instances,
            "invariant_violations": self.invariant_violations,
            "wall_seconds": round(self.wall_seconds, 2),
            "ticks": self.ticks,
            "launch_decisions": self.launches,
            "replica_changes": self.scale_changes,
            "burst_instances_by_offering": dict(sorted(self.instances_by_offering.items())),
            "actions": self.actions,
        }


def wrong_drains(result: RunResult) -> list[dict[str, Any]]:
    """Drains of nodes that had no injected node fault at the time (ground truth of the scenario)."""
    truth: dict[str, datetime] = {}
    for f in result.world.faults:
        if f.node_fault:
            truth[f.node] = min(truth.get(f.node, f.at), f.at)
    out = []
    for e in result.journal:
        if e.kind == "drain" and e.node is not None:
            at = truth.get(e.node)
            if at is None or e.at < at:
                out.append({"node": e.node, "reason": e.reason, "at": e.at.isoformat()})
    return out


def summarize(result: RunResult, *, acts_on_faults: bool) -> Summary:
    world = result.world
    end = result.end or world.now
    burst = world.policy.burst
    prices = {t.instance_type: t.price_usd_per_hour for t in burst.instance_types} if burst else {}
    ledger = bill(world, end, prices)
    recs = world.records
    requests = sum(r.arrived_requests for r in recs)
    within = sum(r.within_slo_requests for r in recs)
    drains = [
        {"node": e.node, "reason": e.reason, "at": e.at.isoformat()}
        for e in result.journal
        if e.kind == "drain" and e.node is not None
    ]
    ttc = []
    detected = 0
    for f in world.faults:
        if not f.node_fault:
            continue
        if f.detected_at is not None:
            detected += 1
        cordon = next(
            (e.at for e in result.journal if e.kind == "cordon" and e.node == f.node and e.at >= f.at), None
        )
        ttc.append(
            {
                "node": f.node,
                "injected_at": f.at.isoformat(),
                "seconds": round((cordon - f.at).total_seconds(), 1)
                if cordon is not None and acts_on_faults
                else None,
            }
        )
    return Summary(
        name=result.name,
        requests=requests,
        slo_attainment=within / requests if requests > 0 else 1.0,
        unserved_requests=sum(r.unserved_requests for r in recs),
        burst_instance_hours=ledger.instance_hours,
        burst_cost_usd=ledger.cost_usd,
        max_burst_instances=max((r.burst_instances for r in recs), default=0),
        drains=drains,
        wrong_drains=wrong_drains(result),
        faults_injected=len(world.faults),
        faults_detected=detected if acts_on_faults else None,
        time_to_cordon_s=ttc,
        orphan_instances=list(result.orphans),
        wall_seconds=result.wall_seconds,
        ticks=result.ticks,
        launches=sum(1 for e in result.journal if e.kind == "launch"),
        scale_changes=sum(1 for e in result.journal if e.kind in ("scale_out", "scale_in")),
        instances_by_offering=_by_offering(world),
        actions=[
            {
                "at": e.at.isoformat(),
                "kind": e.kind,
                "node": e.node,
                "reason": e.reason,
                "amount": e.amount,
                "metrics_unknown": e.blind,
            }
            for e in result.journal
        ],
    )


def _by_offering(world: World) -> dict[str, int]:
    out: dict[str, int] = {}
    for inst in world.instances.values():
        key = f"{inst.instance_type}/{inst.availability_zone}"
        out[key] = out.get(key, 0) + 1
    return out


def oracle_summary(o: Oracle) -> dict[str, Any]:
    return {
        "requests": round(o.requests, 1),
        "slo_attainment": round(o.slo_attainment, 5),
        "unserved_requests": round(o.unserved_requests, 1),
        "burst_instance_hours": round(o.burst_instance_hours, 3),
        "burst_cost_usd": round(o.burst_cost_usd, 2),
        "max_burst_instances": o.max_burst_instances,
        "boot_to_serving_s": o.boot_s,
        "instance_type": o.instance_type,
    }


def build(
    *,
    scenario_name: str,
    scenario_file: str,
    seed: int,
    duration_s: float,
    ticks: int,
    slo: Mapping[str, float],
    policy: Mapping[str, str],
    capacity_provider: str,
    main: Summary,
    baselines: Sequence[Summary],
    oracle: Oracle | None,
    assumptions: Mapping[str, Any],
    wall_seconds: float,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario_name,
        "scenario_file": scenario_file,
        "seed": seed,
        "policy": dict(policy),
        "capacity_provider": capacity_provider,
        "duration_s": duration_s,
        "ticks": ticks,
        "slo": dict(slo),
        **main.to_json(),
        "wall_seconds": round(wall_seconds, 2),
        "baselines": {b.name: b.to_json() for b in baselines},
        "assumptions": dict(assumptions),
        "baseline_sources": dict(BASELINE_SOURCES),
    }
    if oracle is not None:
        body["baselines"]["oracle"] = oracle_summary(oracle)
        body["baselines"]["oracle_burst_cost_usd"] = round(oracle.burst_cost_usd, 2)
    return body


# -- the comparison table --------------------------------------------------------------------------

HEADERS = [
    "policy",
    "SLO attainment",
    "unserved req",
    "burst $",
    "burst inst-h",
    "max burst",
    "drains",
    "violations",
]


def rows(report: Mapping[str, Any]) -> list[list[str]]:
    out = [_row("operatord", report)]
    for name, b in report["baselines"].items():
        if name in ("oracle", "oracle_burst_cost_usd"):
            continue
        out.append(_row(name, b))
    o = report["baselines"].get("oracle")
    if o is not None:
        out.append(
            [
                "oracle (lower bound)",
                f"{o['slo_attainment']:.4f}",
                f"{o['unserved_requests']:,.0f}",
                f"{o['burst_cost_usd']:,.2f}",
                f"{o['burst_instance_hours']:.2f}",
                str(o["max_burst_instances"]),
                "-",
                "-",
            ]
        )
    return out


def _row(name: str, r: Mapping[str, Any]) -> list[str]:
    return [
        name,
        f"{r['slo_attainment']:.4f}",
        f"{r['unserved_requests']:,.0f}",
        f"{r['burst_cost_usd']:,.2f}",
        f"{r['burst_instance_hours']:.2f}",
        str(r["max_burst_instances"]),
        str(len(r["drains"])),
        str(len(r["invariant_violations"])),
    ]


def losses(report: Mapping[str, Any]) -> list[str]:
    """Where operatord does worse than a baseline, in words (computed, never edited)."""
    out = []
    me_slo, me_cost = report["slo_attainment"], report["burst_cost_usd"]
    for name, b in report["baselines"].items():
        if not isinstance(b, dict):
            continue
        label = "the oracle" if name == "oracle" else f"`{name}`"
        if b["slo_attainment"] > me_slo + 5e-5:
            out.append(
                f"SLO attainment: {label} {b['slo_attainment']:.4f} vs operatord {me_slo:.4f} "
                f"({(b['slo_attainment'] - me_slo) * 100:.2f} points better)."
            )
        if b["burst_cost_usd"] < me_cost - 0.005 and b["slo_attainment"] >= me_slo - 5e-5:
            out.append(
                f"Burst cost: {label} ${b['burst_cost_usd']:,.2f} vs operatord ${me_cost:,.2f} at an SLO "
                f"attainment at least as good."
            )
        elif name == "oracle" and b["burst_cost_usd"] < me_cost - 0.005:
            out.append(
                f"Burst cost above the oracle's lower bound: ${me_cost:,.2f} vs ${b['burst_cost_usd']:,.2f} "
                f"({me_cost / b['burst_cost_usd']:.1f}×)."
                if b["burst_cost_usd"] > 0
                else f"Burst cost above the oracle's lower bound: ${me_cost:,.2f} vs $0.00."
            )
    return out


def table_text(report: Mapping[str, Any]) -> str:
    cells = [HEADERS, *rows(report)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def markdown(report: Mapping[str, Any], description: str) -> str:
    r = report
    md = [
        f"# Simulation: {r['scenario']}",
        "",
        description.strip(),
        "",
        f"Seed {r['seed']}, {r['duration_s'] / 3600:g} simulated hours in {r['ticks']} ticks, policy "
        f"`{r['policy']['source']}` (revision {r['policy']['revision']}), EC2 through operatord's adapter on "
        f"{r['capacity_provider']}. Wall time {r['wall_seconds']:.1f} s.",
        "",
        "## Comparison (as measured)",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join("---" for _ in HEADERS) + " |",
    ]
    md += ["| " + " | ".join(row) + " |" for row in rows(r)]
    md += [
        "",
        f"SLO: a request is within it when its estimated time to first token is at most "
        f"{r['slo']['ttft_p99_s']:g} s (the policy's `serving.slo.ttft_p99`).",
        "",
        "## Where operatord loses",
        "",
    ]
    lost = losses(r)
    md += (
        [f"- {line}" for line in lost]
        if lost
        else ["- Nowhere in this run: no baseline did better on SLO, nor on cost at an equal SLO."]
    )
    md += ["", "## Invariants", ""]
    if r["invariant_violations"]:
        md += [f"- VIOLATED: {v}" for v in r["invariant_violations"]]
    else:
        md.append(
            "- All held (burst ceiling, $ caps, drain budget, breaker, no flapping, no scale-in while blind, "
            "no orphans, no wrong drains)."
        )
    md += ["", "## Faults and drains", ""]
    if r["time_to_cordon_s"]:
        md.append("| node | injected at | time to cordon (s) |")
        md.append("| --- | --- | --- |")
        for t in r["time_to_cordon_s"]:
            md.append(
                f"| {t['node']} | {t['injected_at']} | {t['seconds'] if t['seconds'] is not None else 'not cordoned'} |"
            )
        md.append("")
    md.append(
        f"Injected {r['faults_injected']}, detected {r['faults_detected']}; drains: "
        + (", ".join(f"{d['node']} ({d['reason']}, {d['at']})" for d in r["drains"]) or "none")
        + f"; wrong drains: {len(r['wrong_drains'])}."
    )
    md += ["", "## Baseline parameters (research/autoscaling.md)", ""]
    md += [f"- **{k}**: {v}" for k, v in r["baseline_sources"].items()]
    md += ["", "## Assumptions (serving numbers are assumptions, not measurements)", ""]
    md += [f"- {k}: {v}" for k, v in r["assumptions"].items()]
    md += [
        "",
        "Traffic: Azure LLM inference trace 2023 (Azure Public Dataset, CC-BY 4.0; Patel et al., "
        '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024), tiled and scaled '
        "as the scenario file says.",
        "",
    ]
    return "\n".join(md)


def compact(report: Mapping[str, Any]) -> dict[str, Any]:
    """The deterministic part of a report, for golden files (no wall times, no file paths)."""
    keep = (
        "scenario",
        "seed",
        "duration_s",
        "ticks",
        "requests",
        "slo_attainment",
        "unserved_requests",
        "burst_instance_hours",
        "burst_cost_usd",
        "max_burst_instances",
        "drains",
        "wrong_drains",
        "faults_injected",
        "faults_detected",
        "time_to_cordon_s",
        "orphan_instances",
        "invariant_violations",
        "launch_decisions",
        "replica_changes",
        "burst_instances_by_offering",
    )
    out = {k: report[k] for k in keep}
    out["baselines"] = {
        name: {k: v for k, v in b.items() if k not in ("wall_seconds", "actions")}
        if isinstance(b, dict)
        else b
        for name, b in report["baselines"].items()
    }
    return out


def write(
    out_dir: Path, report: Mapping[str, Any], description: str, results: Sequence[RunResult]
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "timeline.png"]
    paths[0].write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report, description), encoding="utf-8")
    timeline(paths[2], report, results)
    return paths


def timeline(path: Path, report: Mapping[str, Any], results: Sequence[RunResult]) -> None:
    import matplotlib  # noqa: PLC0415 (heavy; only when a report is written)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1]})
    main = results[0]
    recs = main.world.records
    t = [r.at for r in recs]
    ax = axes[0]
    ax.plot(
        t, [r.demand_tokens_per_s for r in recs], color="black", lw=0.8, label="demand (weighted tokens/s)"
    )
    styles = {"operatord": ("tab:blue", "-"), "reactive": ("tab:orange", "--"), "static": ("tab:gray", ":")}
    for res in results:
        color, ls = styles.get(res.name, ("tab:green", "-."))
        rr = res.world.records
        ax.plot(
            [r.at for r in rr],
            [r.capacity_tokens_per_s for r in rr],
            color=color,
            ls=ls,
            lw=1.0,
            label=f"{res.name} serving capacity",
        )
    ax.set_ylabel("tokens/s")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{report['scenario']}: demand vs capacity (serving model: assumptions)")
    ax2 = axes[1]
    for res in results:
        color, ls = styles.get(res.name, ("tab:green", "-."))
        rr = res.world.records
        ax2.step(
            [r.at for r in rr],
            [r.burst_instances for r in rr],
            where="post",
            color=color,
            ls=ls,
            label=f"{res.name} burst instances",
        )
    ax2.set_ylabel("instances")
    ax2.legend(loc="upper left", fontsize=8)
    ax3 = axes[2]
    for f in main.world.faults:
        ax3.axvline(f.at, color="tab:red", lw=0.8)
    for e in main.journal:
        if e.kind == "drain":
            ax3.plot([e.at], [1], marker="v", color="tab:purple")
        elif e.kind == "cordon":
            ax3.plot([e.at], [0.5], marker="o", color="tab:brown", ms=4)
        elif e.kind == "breaker_open":
            ax3.plot([e.at], [0.2], marker="x", color="black")
        elif e.kind in ("launch", "release"):
            ax3.plot([e.at], [1.4], marker="^" if e.kind == "launch" else "_", color="tab:blue", ms=5)
    ax3.set_yticks([0.2, 0.5, 1, 1.4], ["breaker", "cordon", "drain", "burst"])
    ax3.set_ylim(0, 1.7)
    ax3.set_xlabel("simulated time (UTC); red lines: injected faults")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
