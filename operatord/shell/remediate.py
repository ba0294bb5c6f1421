"""Shell. One remediation tick: observe nodes and state → plan_remediation → apply, logged.

The daemon's loop (and anything else that wants remediation alone) calls `remediation_tick`
once per tick with its clock reading; `operatord plan` and the simulator call the same
plan_remediation without applying. The daemon passes `drain_slice` so a PDB-blocked drain
never holds up the tick (it resumes next tick).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from operatord.core.plan import Plan
from operatord.core.remediation import plan_remediation
from operatord.policies.model import Policy
from operatord.ports.cluster import ClusterApi
from operatord.shell.apply import ApplyContext, Outcome, apply_plan
from operatord.shell.observe_nodes import observe_nodes
from operatord.vocab import Mode

log = structlog.get_logger("operatord.remediate")


@dataclass(frozen=True)
class TickResult:
    plan: Plan
    outcomes: list[Outcome]


def remediation_tick(
    cluster: ClusterApi,
    namespace: str,
    policy: Policy,
    now: datetime,
    *,
    mode: Mode | None = None,
    dry_run: bool = False,
    demand_gpus: float | None = None,
    drain_slice: timedelta | None = timedelta(seconds=60),
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> TickResult:
    """Observe, decide, apply. `mode` may only lower the policy's mode (design §1.1).
    Cluster errors while observing propagate (nothing was decided); apply records per-action failures."""
    effective = policy.mode.lowered_to(mode)
    snap = observe_nodes(cluster, namespace, now, demand_gpus=demand_gpus)
    plan = plan_remediation(snap, policy, now)
    log.info(
        "plan.computed",
        area="remediation",
        actions=len(plan.actions),
        holds=len(plan.holds),
        reasons=sorted({a.reason for a in plan.actions} | {h.reason for h in plan.holds}),
        mode=effective.value,
    )
    ctx = ApplyContext(
        cluster,
        namespace,
        policy,
        effective,
        dry_run=dry_run,
        clock=lambda: now,
        sleep=sleep,
        monotonic=monotonic,
        drain_slice=drain_slice,
    )
    return TickResult(plan, apply_plan(plan, ctx))
