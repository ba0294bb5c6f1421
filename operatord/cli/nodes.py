"""`operatord status | plan | explain | drain | uncordon | pause | resume | breaker`: node remediation on call.

Every command reads the live cluster (kubeconfig or in-cluster) and the policy the daemon uses
(--policy overrides the operatord-policy ConfigMap). `plan` and `explain` call the same
core.remediation.plan_remediation as the daemon; `drain` goes through
core.remediation.plan_manual_drain and shell.apply, the daemon's apply path, so pause, the
breaker and the budgets hold unless --force. Human actions are recorded as `human:<user>`.
`--dry-run` prints what would happen and writes nothing. `-o json` objects carry
`schema_version`; keys are documented per command and only ever added.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from operatord.cli.common import CliError, ExitCode, OutputFormat, confirm, print_json, print_table
from operatord.cli.fleet import report_json as fleet_json
from operatord.cli.kube import Wiring, connect, live_policy, policy_json, unreachable, whoami
from operatord.core import guards
from operatord.core.fleet import check_fleet
from operatord.core.health import NodeEvent, transition
from operatord.core.history import HistoryEntry
from operatord.core.model import Event
from operatord.core.nodes import NodeView, build_views
from operatord.core.plan import Action, Hold, Plan
from operatord.core.remediation import plan_manual_drain, plan_remediation
from operatord.core.state import OperatordState, StateCorrupt
from operatord.policies.load import LoadedPolicy
from operatord.policies.types import parse_duration
from operatord.ports.cluster import ClusterError, NotFound
from operatord.shell.apply import ApplyContext, Outcome, apply_plan
from operatord.shell.observe_nodes import observe_nodes
from operatord.shell.state import StateStore, append_history
from operatord.vocab import Mode, Reason

OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help="table or json.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print what would happen; write nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

EPILOG_READ = (
    "Exit codes: 0 printed; 2 usage error or invalid policy; 3 the Kubernetes API could not be reached."
)
EPILOG_EXPLAIN = "Exit codes: 0 printed; 2 no such node, usage error or invalid policy; 3 the Kubernetes API could not be reached."
EPILOG_DRAIN = (
    "Exit codes: 0 drained (or, with --dry-run, would drain); 1 refused by pause, the breaker or a budget, "
    "or the drain did not complete (PDB timeout, misconfigured PDB, pods the policy refuses); "
    "2 usage error, no such node, or declined at the prompt; 3 the Kubernetes API could not be reached."
)
EPILOG_WRITE = (
    "Exit codes: 0 done (or, with --dry-run, would be done); 2 usage error, no such node, or declined at "
    "the prompt; 3 the Kubernetes API could not be reached."
)


def _now() -> datetime:
    return datetime.now(UTC)


class _Session:
    """Wiring + policy + snapshot, read once per command; cluster failures become exit 3."""

    def __init__(self, ctx: typer.Context) -> None:
        self.wiring: Wiring = connect(ctx)
        self.loaded: LoadedPolicy = live_policy(ctx, self.wiring)
        self.now = _now()
        try:
            self.snapshot = observe_nodes(self.wiring.cluster, self.wiring.namespace, self.now)
        except ClusterError as err:
            raise unreachable(err) from None
        except StateCorrupt as err:
            raise CliError(str(err), ExitCode.USAGE) from None

    @property
    def views(self) -> tuple[NodeView, ...]:
        return build_views(self.snapshot.nodes, self.loaded.policy, self.snapshot.state, self.now)

    def plan(self) -> Plan:
        return plan_remediation(self.snapshot, self.loaded.policy, self.now)

    def node(self, name: str) -> NodeView:
        view = next((v for v in self.views if v.name == name), None)
        if view is None:
            known = any(n.name == name for n in self.snapshot.nodes)
            if known:
                raise CliError(
                    f"node {name} is in no pool of the policy ({self.loaded.source})", ExitCode.USAGE
                )
            raise CliError(f"no node named {name!r} in the cluster", ExitCode.USAGE)
        return view

    def store(self) -> StateStore:
        return StateStore(self.wiring.cluster, self.wiring.namespace)


# ---------------------------------------------------------------------- JSON shapes


def _action_json(a: Action) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": a.kind,
        "key": a.key,
        "node": a.node,
        "reason": a.reason,
        "detail": dict(a.detail),
    }
    to_state = getattr(a, "to_state", None)
    if to_state is not None:
        out["to_state"] = str(to_state)
    return out


def _hold_json(h: Hold) -> dict[str, Any]:
    return {"reason": h.reason, "node": h.node, "blocked": h.blocked, "detail": dict(h.detail)}


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {"actions": [_action_json(a) for a in plan.actions], "holds": [_hold_json(h) for h in plan.holds]}


def _state_json(state: OperatordState) -> dict[str, Any]:
    b = state.breaker
    return {
        "paused": state.pause is not None,
        "pause": None
        if state.pause is None
        else {"reason": state.pause.reason, "by": state.pause.by, "at": state.pause.at.isoformat()},
        "breaker": {
            "open": b.open,
            "since": b.since.isoformat() if b.since else None,
            "reason": b.reason,
            "detail": b.detail,
            "last_reset_at": b.counts_from.isoformat() if b.counts_from else None,
            "last_reset_by": b.reset_by or None,
            "ignore_findings_before": b.ignore_before.isoformat() if b.ignore_before else None,
        },
        "capacity_requests": [
            {"node": r.node, "gpus": r.gpus, "reason": r.reason, "since": r.since.isoformat()}
            for r in state.capacity_requests
        ],
    }


def _node_json(v: NodeView) -> dict[str, Any]:
    owner = v.node.cordon_owner
    return {
        "name": v.name,
        "pool": v.pool,
        "health": v.history.state.value,
        "ready": v.node.ready,
        "unschedulable": v.node.unschedulable,
        "cordoned_by": owner.by if owner else None,
        "cordon_reason": owner.reason if owner else None,
        "gpus": v.node.gpus,
        "faults": [
            {
                "class": f.class_.value,
                "fatal": f.fatal,
                "drain": f.drain,
                "rule": f.rule,
                "first_seen": f.first_seen.isoformat(),
                "last_seen": f.last_seen.isoformat(),
            }
            for f in v.faults
        ],
        "fleet_event_faults": [f.class_.value for f in v.fleet_faults],
        "problems": list(v.problems),
    }


def _pools_json(s: _Session) -> list[dict[str, Any]]:
    rp = s.loaded.policy.remediation
    out = []
    for pool in s.loaded.policy.pools:
        members = [v for v in s.views if v.pool == pool.name]
        sick, unhealthy, total = guards.fleet_sick(
            members, pool.max_unhealthy_fraction or rp.max_unhealthy_fraction
        )
        out.append(
            {
                "name": pool.name,
                "kind": pool.kind,
                "nodes": total,
                "unhealthy": unhealthy,
                "fleet_sick": sick,
                "gpus": sum(v.node.gpus for v in members),
                "serving_gpus": guards.serving_gpus(members),
                "draining": guards.draining(members),
                "drain_budget": guards.drain_budget(total, rp.max_concurrent_drains),
                "min_healthy_gpu_fraction": pool.min_healthy_gpu_fraction or rp.min_healthy_gpu_fraction,
            }
        )
    return out


# ---------------------------------------------------------------------- read-only commands


def status(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Nodes by pool with health state, cordon owner, GPUs and active faults; pause, breaker and budgets."""
    try:
        s = _Session(ctx)
    except CliError as err:
        if err.code != ExitCode.UNREACHABLE:
            raise
        # Print what we could (nothing about nodes) with the reason under `unknown`, then exit 3.
        if output == OutputFormat.JSON:
            print_json(
                {
                    "policy": None,
                    "mode": None,
                    "observed_at": _now().isoformat(),
                    "nodes": [],
                    "pools": [],
                    "guards": None,
                    "unmanaged_nodes": [],
                    "unknown": [{"source": "kubernetes", "error": str(err)}],
                }
            )
        raise
    views = s.views
    rp = s.loaded.policy.remediation
    recent = guards.recent_cordons(
        (v.history for v in views),
        window=rp.breaker.window,
        counts_from=s.snapshot.state.breaker.counts_from,
        now=s.now,
    )
    fleet = check_fleet(s.snapshot.nodes, s.loaded.policy)
    body: dict[str, Any] = {
        "policy": policy_json(s.loaded),
        "mode": s.loaded.policy.mode.value,
        "observed_at": s.now.isoformat(),
        "nodes": [_node_json(v) for v in views],
        "pools": _pools_json(s),
        "guards": {
            **_state_json(s.snapshot.state),
            "breaker_window_cordons": recent,
            "breaker_limit": guards.share_limit(len(views), rp.breaker.fraction),
        },
        "unmanaged_nodes": sorted(n.name for n in s.snapshot.nodes if n.name not in {v.name for v in views}),
        "fleet": fleet_json(fleet, s.snapshot.nodes),
        "unknown": [],
    }
    if output == OutputFormat.JSON:
        print_json(body)
        return
    rows = [
        [
            v.pool,
            v.name,
            v.history.state.value,
            "Ready" if v.node.ready else "NotReady",
            (v.node.cordon_owner.by if v.node.cordon_owner else "-"),
            str(v.node.gpus),
            ",".join(f.class_.value + ("!" if f.fatal else "") for f in v.faults) or "-",
        ]
        for v in sorted(views, key=lambda v: (v.pool, v.name))
    ]
    print_table(rows, ["POOL", "NODE", "HEALTH", "READY", "CORDONED-BY", "GPUS", "FAULTS (! fatal)"])
    g = body["guards"]
    sys.stdout.write(
        f"\nmode {body['mode']}; policy {s.loaded.source} rev {s.loaded.revision}\n"
        f"pause: {'PAUSED by ' + g['pause']['by'] + ': ' + g['pause']['reason'] if g['paused'] else 'no'}\n"
        f"breaker: {'OPEN since ' + str(g['breaker']['since']) if g['breaker']['open'] else 'closed'} "
        f"({recent} cordon(s) in window, trips above {g['breaker_limit']})\n"
    )
    for p in _pools_json(s):
        sys.stdout.write(
            f"pool {p['name']}: {p['serving_gpus']}/{p['gpus']} GPUs serving, {p['unhealthy']}/{p['nodes']} unhealthy"
            f"{' (FLEET SICK)' if p['fleet_sick'] else ''}, draining {p['draining']}/{p['drain_budget']}\n"
        )
    for verdict in fleet.outliers:
        sys.stdout.write(f"version skew: {verdict.node} ({verdict.pool}): {verdict.summary()}\n")
    for r in s.snapshot.state.capacity_requests:
        sys.stdout.write(
            f"capacity request: {r.gpus} GPUs for {r.node} since {r.since.isoformat()} ({r.reason})\n"
        )


def _print_plan(plan: Plan) -> None:
    rows = [["ACTION", a.kind, a.node or "-", a.reason, _fmt_detail(dict(a.detail))] for a in plan.actions]
    rows += [
        ["HOLD", h.blocked or "-", h.node or "-", h.reason, _fmt_detail(dict(h.detail))] for h in plan.holds
    ]
    if not rows:
        sys.stdout.write("nothing to do\n")
        return
    print_table(rows, ["", "KIND", "NODE", "REASON", "DETAIL"])


def _fmt_detail(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items() if v not in (None, ""))


def plan(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """What the next tick would do (nodes, serving replicas, burst), with the reason for each action and hold.

    Computed by the daemon's own decide() from the same sources (cluster, Prometheus, EC2); a source
    that cannot be read is listed under `unknown` and whatever rests on it is held.
    """
    from operatord.cli.wiring import observer  # adapters only where they are needed
    from operatord.core.decide import decide_detailed
    from operatord.shell.observe import ObserveFailed

    s = _Session(ctx)
    watcher, _ = observer(ctx, s.wiring, s.loaded)
    try:
        seen = watcher.observe(s.loaded.policy, s.now)
    except ObserveFailed as err:
        raise CliError(f"the Kubernetes API: {err}", ExitCode.UNREACHABLE) from None
    finally:
        watcher.close()
    decision = decide_detailed(seen.snapshot, s.loaded.policy, s.now)
    result = decision.plan
    unknown = [
        {"source": st.source, "kind": st.kind, "detail": st.error} for st in seen.statuses if not st.ok
    ]
    if output == OutputFormat.JSON:
        print_json(
            {
                "policy": policy_json(s.loaded),
                "mode": s.loaded.policy.mode.value,
                "at": s.now.isoformat(),
                **_plan_json(result),
                "demand_gpus": decision.demand_gpus,
                "models": [
                    {
                        "model": m.model,
                        "demand_tokens_per_s": m.demand,
                        "forecast_tokens_per_s": m.forecast,
                        "desired_replicas": m.desired_replicas,
                        "local_replicas": m.local_replicas,
                        "burst_replicas_needed": m.burst_replicas_needed,
                        "burst_replicas_held": m.burst_replicas_held,
                        "fast_path": m.fast_path,
                    }
                    for m in decision.models
                ],
                "unknown": unknown,
            }
        )
        return
    _print_plan(result)
    for u in unknown:
        sys.stdout.write(f"unknown: {u['source']} ({u['kind']}): {u['detail']}\n")
    mode = s.loaded.policy.mode
    sys.stdout.write(
        f"\nmode {mode.value}: "
        + (
            "every action is carried out\n"
            if mode is Mode.FULL
            else "actions above it are only logged as 'would'\n"
        )
    )


def explain(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Node name.")],
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Why operatord did (or did not) act on NODE: its history, active faults and the current decision."""
    s = _Session(ctx)
    view = s.node(node)
    full = s.plan()
    decision = full.for_node(node)
    fleet = [
        h
        for h in full.holds
        if h.reason == Reason.FLEET_EVENT.value and node in str(h.detail.get("nodes", ""))
    ]
    decision = Plan(decision.actions, decision.holds + tuple(fleet))
    history = [e.to_json() for e in view.history.entries]
    if output == OutputFormat.JSON:
        print_json(
            {
                "policy": policy_json(s.loaded),
                "node": _node_json(view),
                "history": history,
                "decision": _plan_json(decision),
            }
        )
        return
    n = _node_json(view)
    sys.stdout.write(
        f"node {node} (pool {view.pool}): {n['health']}, {'Ready' if n['ready'] else 'NotReady'}, "
        f"{'cordoned by ' + n['cordoned_by'] if n['cordoned_by'] else 'schedulable'}\n"
    )
    for f in view.faults:
        sys.stdout.write(
            f"  fault {f.class_.value} ({'fatal' if f.fatal else 'non-fatal'}) rule {f.rule} since {f.first_seen.isoformat()}\n"
        )
    for p in view.problems:
        sys.stdout.write(f"  problem: {p}\n")
    sys.stdout.write("history:\n" if history else "history: none\n")
    for e in view.history.entries:
        state = f" -> {e.state.value}" if e.state else ""
        sys.stdout.write(
            f"  {e.at.isoformat()}  {e.event}{state}  {e.reason}  by {e.actor}{'  ' + e.note if e.note else ''}\n"
        )
    sys.stdout.write("decision now:\n")
    _print_plan(decision)


# ---------------------------------------------------------------------- human actions


def drain(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Node to cordon and drain.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the node's history and Events).")],
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="Ignore pause, the breaker and the budgets.")
    ] = False,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help='Drain timeout, e.g. "10m" (default: the policy).')
    ] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Cordon NODE (recording you as its owner) and evict its pods like `kubectl drain`, through the
    daemon's apply path: pause, the breaker and the drain budgets apply unless --force."""
    if not reason.strip():
        raise CliError("--reason must not be empty", ExitCode.USAGE)
    try:
        drain_timeout = parse_duration(timeout) if timeout is not None else None
    except ValueError as err:
        raise CliError(f"--timeout: {err}", ExitCode.USAGE) from None
    s = _Session(ctx)
    s.node(node)
    actor = whoami()
    result = plan_manual_drain(s.snapshot, s.loaded.policy, node, actor, reason, s.now, force=force)
    if result.holds and not result.actions:
        if output == OutputFormat.JSON:
            print_json(
                {"node": node, "refused": True, "dry_run": dry_run, **_plan_json(result), "outcomes": []}
            )
        else:
            h = result.holds[0]
            sys.stderr.write(
                f"operatord: drain of {node} refused: {h.reason} {_fmt_detail(dict(h.detail))} (use --force to override)\n"
            )
        raise typer.Exit(int(ExitCode.FOUND))
    if dry_run:
        if output == OutputFormat.JSON:
            print_json(
                {"node": node, "refused": False, "dry_run": True, **_plan_json(result), "outcomes": []}
            )
        else:
            _print_plan(result)
            sys.stdout.write("dry run: nothing was changed\n")
        return
    confirm(f"Cordon and drain {node} ({reason})?", yes)
    policy = s.loaded.policy
    if drain_timeout is not None:
        rem = policy.remediation
        policy = policy.model_copy(
            update={
                "remediation": rem.model_copy(
                    update={"drain": rem.drain.model_copy(update={"timeout": drain_timeout})}
                )
            }
        )
    apply_ctx = ApplyContext(s.wiring.cluster, s.wiring.namespace, policy, Mode.FULL)
    try:
        outcomes = apply_plan(result, apply_ctx)
    except ClusterError as err:
        raise unreachable(err) from None
    failed = [o for o in outcomes if o.status in ("failed", "refused", "skipped")]
    _report(node, outcomes, output, dry_run=False, plan=result)
    if failed:
        raise typer.Exit(int(ExitCode.FOUND))


def _report(node: str, outcomes: list[Outcome], output: OutputFormat, *, dry_run: bool, plan: Plan) -> None:
    if output == OutputFormat.JSON:
        print_json(
            {
                "node": node,
                "refused": False,
                "dry_run": dry_run,
                **_plan_json(plan),
                "outcomes": [o.to_json() for o in outcomes],
            }
        )
        return
    for o in outcomes:
        d = o.detail
        extra = ""
        if o.kind == "drain":
            extra = (
                f" evicted {len(d.get('evicted', []))}, skipped {len(d.get('skipped', {}))}"
                f"{', blocked ' + ','.join(d['blocked']) if d.get('blocked') else ''}"
                f"{', failed ' + '; '.join(f'{k}: {v}' for k, v in d['failed'].items()) if d.get('failed') else ''}"
                f"{', refused ' + '; '.join(f'{k}: {v}' for k, v in d['refused'].items()) if d.get('refused') else ''}"
            )
        sys.stdout.write(f"{o.kind} {o.node or ''}: {o.status} ({o.reason}){extra}\n")


def uncordon(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Node to make schedulable again.")],
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Uncordon NODE as a human: operatord cancels its break-fix and never re-cordons it for the
    findings seen until now (a new fault still counts)."""
    s = _Session(ctx)
    view = s.node(node)
    actor = whoami()
    body = {"node": node, "dry_run": dry_run, "was_unschedulable": view.node.unschedulable, "actor": actor}
    if dry_run:
        if output == OutputFormat.JSON:
            print_json({**body, "changed": False})
        else:
            sys.stdout.write(
                f"would uncordon {node} as {actor} (history: human_uncordoned); nothing was changed\n"
            )
        return
    confirm(f"Uncordon {node}?", yes)
    cluster = s.wiring.cluster
    try:
        _, changed = cluster.uncordon(node)
        now = _now()
        state = transition(view.history.state, NodeEvent.HUMAN_UNCORDONED)
        append_history(
            cluster,
            node,
            [
                HistoryEntry(
                    now,
                    NodeEvent.HUMAN_UNCORDONED.value,
                    Reason.HUMAN_UNCORDON.value,
                    actor,
                    state,
                    ack_before=now,
                )
            ],
            now,
        )
        with contextlib.suppress(ClusterError):  # the Event is a courtesy; the history is the record
            cluster.create_event(
                Event(
                    "Node",
                    node,
                    Reason.HUMAN_UNCORDON.value,
                    f"uncordoned by {actor}",
                    "Normal",
                    action="Uncordon",
                    at=now,
                )
            )
    except NotFound:
        raise CliError(f"no node named {node!r} in the cluster", ExitCode.USAGE) from None
    except ClusterError as err:
        raise unreachable(err) from None
    if output == OutputFormat.JSON:
        print_json({**body, "changed": changed})
    else:
        sys.stdout.write(
            f"{node}: {'uncordoned' if changed else 'was already schedulable'}; recorded as {actor}\n"
        )


def pause(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown by status and in logs).")],
    dry_run: DryRunOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Stop every automatic write except recording findings, until `operatord resume` (survives restarts)."""
    if not reason.strip():
        raise CliError("--reason must not be empty", ExitCode.USAGE)
    _write_state(
        ctx, dry_run, output, lambda store, who, now: store.pause(reason, who, now), f"pause ({reason})"
    )


def resume(ctx: typer.Context, dry_run: DryRunOpt = False, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Lift a pause: automatic remediation continues within the policy's mode and guards."""
    _write_state(ctx, dry_run, output, lambda store, who, now: store.resume(), "resume")


def _write_state(ctx: typer.Context, dry_run: bool, output: OutputFormat, change: Any, what: str) -> None:
    wiring = connect(ctx)
    store = StateStore(wiring.cluster, wiring.namespace)
    try:
        before = store.load()
        after = before if dry_run else change(store, whoami(), _now())
    except StateCorrupt as err:
        raise CliError(str(err), ExitCode.USAGE) from None
    except ClusterError as err:
        raise unreachable(err) from None
    if output == OutputFormat.JSON:
        print_json({"dry_run": dry_run, "guards": _state_json(after)})
    else:
        sys.stdout.write(
            f"{'would ' if dry_run else ''}{what}: {'done' if not dry_run else 'nothing was changed'}\n"
        )


breaker_app = typer.Typer(help="The quarantine circuit breaker: see it, reset it.", no_args_is_help=True)


@breaker_app.command("status", epilog=EPILOG_READ)
def breaker_status(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Open or closed, since when and why, and how many cordons the window holds against the limit."""
    s = _Session(ctx)
    rp = s.loaded.policy.remediation
    views = s.views
    recent = guards.recent_cordons(
        (v.history for v in views),
        window=rp.breaker.window,
        counts_from=s.snapshot.state.breaker.counts_from,
        now=s.now,
    )
    limit = guards.share_limit(len(views), rp.breaker.fraction)
    b = _state_json(s.snapshot.state)["breaker"]
    if output == OutputFormat.JSON:
        print_json(
            {
                "breaker": b,
                "window_cordons": recent,
                "limit": limit,
                "nodes": len(views),
                "window_s": rp.breaker.window.total_seconds(),
            }
        )
        return
    state = f"OPEN since {b['since']} ({b['reason']}: {b['detail']})" if b["open"] else "closed"
    sys.stdout.write(
        f"breaker {state}\n{recent} cordon(s) by operatord in the last {rp.breaker.window}; trips above {limit} of {len(views)} nodes\n"
    )


@breaker_app.command("reset", epilog=EPILOG_WRITE)
def breaker_reset(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why it is safe to resume (recorded).")],
    skip_backlog: Annotated[
        bool,
        typer.Option(
            "--skip-backlog", help="Ignore findings first seen before now (the backlog while open)."
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Close the breaker; cordons before now stop counting toward the next trip."""
    if not reason.strip():
        raise CliError("--reason must not be empty", ExitCode.USAGE)
    _write_state(
        ctx,
        dry_run,
        output,
        lambda store, who, now: store.reset_breaker(who, reason, now, skip_backlog=skip_backlog),
        "reset the breaker" + (" and skip the backlog" if skip_backlog else ""),
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the root app (called from operatord.cli)."""
    app.command("status", epilog=EPILOG_READ)(status)
    app.command("plan", epilog=EPILOG_READ)(plan)
    app.command("explain", epilog=EPILOG_EXPLAIN)(explain)
    app.command("drain", epilog=EPILOG_DRAIN)(drain)
    app.command("uncordon", epilog=EPILOG_WRITE)(uncordon)
    app.command("pause", epilog=EPILOG_WRITE)(pause)
    app.command("resume", epilog=EPILOG_WRITE)(resume)
    app.add_typer(breaker_app, name="breaker")
