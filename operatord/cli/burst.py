"""`operatord burst list | launch COUNT | terminate ID...|--all | reconcile`: EC2 burst on call.

Wires the EC2 adapter (boto3's own credential chain, including AWS_ENDPOINT_URL) and the intent
store (ConfigMaps in operatord's namespace) into shell.burst.BurstRunner, the same code the
daemon runs. `--dry-run` computes and prints and writes nothing (EC2 calls carry DryRun=True).
`-o json` prints an object with `schema_version`; keys are only ever added.
"""

from __future__ import annotations

import functools
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import botocore.exceptions
import typer

from operatord.cli.common import (
    CliError,
    ExitCode,
    OutputFormat,
    confirm,
    context,
    print_json,
    print_table,
    worst,
)
from operatord.cli.kube import Wiring, connect, live_policy, policy_json, unreachable
from operatord.core.burst.caps import instance_type, usage
from operatord.core.burst.intent import Intent
from operatord.core.burst.observed import CloudInstance
from operatord.core.state import StateCorrupt
from operatord.policies.load import LoadedPolicy
from operatord.policies.model import BurstPolicy, Policy
from operatord.ports.capacity import CapacityUnreachable
from operatord.ports.cluster import ClusterError
from operatord.shell.burst import BurstRunner, ClusterBurstNodes, Outcome
from operatord.shell.intents import IntentStore
from operatord.shell.state import StateStore
from operatord.vocab import Reason

app = typer.Typer(help="EC2 burst instances: list, launch, terminate, reconcile.", no_args_is_help=True)

OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help="table or json.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print what would happen; write nothing (EC2 DryRun).")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

EPILOG_LIST = (
    "Exit codes: 0 listed; 2 usage error or invalid policy (no burst section); 3 the Kubernetes API or AWS "
    "could not be reached."
)
EPILOG_LAUNCH = (
    "Exit codes: 0 launched (or, with --dry-run, EC2 says it would succeed); 1 refused: burst disabled, paused, "
    "a cap (instances, $/hour, $/day, vCPU quota), no capacity in any offering, or EC2 rejected the request; "
    "2 usage error, invalid policy, or declined at the prompt; 3 the Kubernetes API or AWS could not be reached."
)
EPILOG_TERMINATE = (
    "Exit codes: 0 terminated (or would be, with --dry-run); 1 an ID is not a burst instance of this cluster "
    "(refused, nothing done to it); 2 usage error or declined at the prompt; 3 the Kubernetes API or AWS could "
    "not be reached."
)
EPILOG_RECONCILE = (
    "Exit codes: 0 reconciled (or would be, with --dry-run); 1 an intent record is unreadable or a launch failed; "
    "2 usage error or invalid policy; 3 the Kubernetes API or AWS could not be reached."
)


def _now() -> datetime:
    return datetime.now(UTC)


class _Setup:
    """Everything a burst command needs, built once per invocation."""

    def __init__(self, ctx: typer.Context, dry_run: bool) -> None:
        self.wiring: Wiring = connect(ctx)
        self.loaded: LoadedPolicy = live_policy(ctx, self.wiring)
        self.policy: Policy = self.loaded.policy
        if self.policy.burst is None:
            raise CliError(f"{self.loaded.source}: the policy has no burst section", ExitCode.USAGE)
        self.burst: BurstPolicy = self.policy.burst
        settings = context(ctx).settings
        region = settings.aws_region or self.burst.region
        self.capacity = _ec2(self.policy, region, settings.aws_profile)
        self.store = IntentStore(self.wiring.cluster, self.wiring.namespace, self.policy.cluster)
        self.nodes = ClusterBurstNodes(self.wiring.cluster)
        self.runner = BurstRunner(
            store=self.store,
            capacity=self.capacity,
            policy=self.policy,
            clock=_now,
            nodes=self.nodes,
            dry_run=dry_run,
        )


def _ec2(policy: Policy, region: str, profile: str | None) -> Any:
    from operatord.adapters.ec2 import Ec2Capacity, clients, quotas_client

    assert policy.burst is not None
    try:
        general, launcher = clients(region, profile=profile)
        quotas = None if policy.burst.vcpu_quota is not None else quotas_client(region, profile=profile)
    except botocore.exceptions.ProfileNotFound as err:
        raise CliError(f"AWS: {err}", ExitCode.USAGE) from None
    except botocore.exceptions.BotoCoreError as err:
        raise CliError(f"AWS: cannot build a client: {err}", ExitCode.UNREACHABLE) from None
    return Ec2Capacity(
        general,
        cluster=policy.cluster,
        launch_template=policy.burst.launch_template,
        run_client=launcher,
        quotas=quotas,
    )


def _guard(fn: Any) -> Any:
    """Map dependency failures to exit 3 with one line (never a traceback)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CapacityUnreachable as err:
            raise CliError(f"AWS: {err}", ExitCode.UNREACHABLE) from None
        except botocore.exceptions.NoCredentialsError:
            raise CliError(
                "AWS: no credentials (boto3 chain: env, profile, instance role)", ExitCode.UNREACHABLE
            ) from None
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as err:
            raise CliError(f"AWS: unreachable: {err}", ExitCode.UNREACHABLE) from None
        except botocore.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "Unknown")
            raise CliError(f"AWS refused {err.operation_name}: {code}: {err}", ExitCode.UNREACHABLE) from None
        except ClusterError as err:
            raise unreachable(err) from None

    return run


def _outcome_json(o: Outcome) -> dict[str, Any]:
    return {
        "kind": o.kind,
        "reason": o.reason,
        "intent": o.intent_id,
        "instances": list(o.instance_ids),
        "detail": dict(o.detail),
    }


def _print_outcomes(
    outcomes: list[Outcome],
    output: OutputFormat,
    setup: _Setup,
    dry_run: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    if output == OutputFormat.JSON:
        print_json(
            {
                "policy": policy_json(setup.loaded),
                "dry_run": dry_run,
                **(extra or {}),
                "outcomes": [_outcome_json(o) for o in outcomes],
            }
        )
        return
    if not outcomes:
        sys.stdout.write("nothing to do\n")
        return
    rows = [
        [
            o.kind,
            o.reason,
            o.intent_id or "-",
            ",".join(o.instance_ids) or "-",
            " ".join(f"{k}={v}" for k, v in o.detail.items()) or "-",
        ]
        for o in outcomes
    ]
    print_table(rows, ["OUTCOME", "REASON", "INTENT", "INSTANCES", "DETAIL"])


# -------------------------------------------------------------------------------------------- list


@app.command("list", epilog=EPILOG_LIST)
@_guard
def list_(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Burst instances with state, age, type, AZ, $/hour and accrued cost; pending intents; untracked tagged instances.

    Example:  operatord burst list -o json
    """
    setup = _Setup(ctx, dry_run=True)
    now = _now()
    intents, unreadable = setup.store.list()
    cloud = {c.instance_id: c for c in setup.capacity.list_instances()}
    nodes = setup.nodes.burst_nodes()
    rows = _rows(intents, cloud, nodes, setup.burst, now)
    held = usage(intents, setup.policy, now)
    pending = [i for i in intents if i.live and not i.live_instances]
    totals = {
        "instances": sum(1 for r in rows if r["state"] not in ("terminated",)),
        "usd_per_hour": round(held.usd_per_hour, 4),
        "spent_today_usd": round(held.spent_today_usd, 2),
        "max_usd_per_hour": setup.burst.max_usd_per_hour,
        "max_usd_per_day": setup.burst.max_usd_per_day,
    }
    if output == OutputFormat.JSON:
        print_json(
            {
                "policy": policy_json(setup.loaded),
                "instances": rows,
                "pending_intents": [_intent_json(i) for i in pending],
                "unreadable_intents": [{"configmap": u.name, "error": u.error} for u in unreadable],
                "totals": totals,
            }
        )
        return
    table = [
        [
            r["instance_id"],
            r["state"],
            _age(r["age_s"]),
            r["instance_type"],
            r["availability_zone"],
            f"{r['usd_per_hour']:.2f}",
            f"{r['accrued_usd']:.2f}",
            r["node"] or "-",
            r["intent"] or "-",
        ]
        for r in rows
    ]
    print_table(table, ["INSTANCE", "STATE", "AGE", "TYPE", "AZ", "$/H", "ACCRUED$", "NODE", "INTENT"])
    for i in pending:
        sys.stdout.write(
            f"pending intent {i.id}: {i.state.value}, {i.replicas} replica(s), {len(i.attempts)} attempt(s)\n"
        )
    for u in unreadable:
        sys.stdout.write(f"unreadable intent {u.name}: {u.error}\n")
    sys.stdout.write(
        f"total: {totals['instances']} instance(s), ${totals['usd_per_hour']:.2f}/h "
        f"(cap {setup.burst.max_usd_per_hour:g}), ${totals['spent_today_usd']:.2f} today "
        f"(cap {setup.burst.max_usd_per_day:g})\n"
    )


def _rows(
    intents: tuple[Intent, ...],
    cloud: dict[str, CloudInstance],
    nodes: Any,
    burst: BurstPolicy,
    now: datetime,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tracked: set[str] = set()
    for intent in intents:
        for rec in intent.instances:
            tracked.add(rec.instance_id)
            if not rec.state.live and rec.instance_id not in cloud:
                continue
            node = nodes.get(rec.instance_id)
            rows.append(
                {
                    "instance_id": rec.instance_id,
                    "state": rec.state.value,
                    "tracked": True,
                    "intent": intent.id,
                    "age_s": int((now - rec.launched_at).total_seconds()),
                    "instance_type": rec.instance_type,
                    "availability_zone": rec.availability_zone,
                    "usd_per_hour": rec.price_usd_per_hour,
                    "accrued_usd": round(rec.cost_usd(now), 2),
                    "node": node.name if node else rec.node,
                    "expires_at": intent.expires_at.isoformat(),
                    "model": intent.model,
                }
            )
    for c in cloud.values():
        if c.instance_id in tracked or c.gone:
            continue
        itype = instance_type(burst, c.instance_type)
        price = itype.price_usd_per_hour if itype else 0.0
        hours = max(0.0, (now - c.launched_at).total_seconds()) / 3600
        node = nodes.get(c.instance_id)
        rows.append(
            {
                "instance_id": c.instance_id,
                "state": "untracked",
                "tracked": False,
                "intent": c.intent_id,
                "age_s": int((now - c.launched_at).total_seconds()),
                "instance_type": c.instance_type,
                "availability_zone": c.availability_zone,
                "usd_per_hour": price,
                "accrued_usd": round(price * hours, 2),
                "node": node.name if node else None,
                "expires_at": c.expires_at.isoformat() if c.expires_at else None,
                "model": None,
            }
        )
    return sorted(rows, key=lambda r: (-r["age_s"], r["instance_id"]))


def _intent_json(i: Intent) -> dict[str, Any]:
    return {
        "id": i.id,
        "state": i.state.value,
        "model": i.model,
        "replicas": i.replicas,
        "reason": i.reason,
        "created_at": i.created_at.isoformat(),
        "failure": i.failure,
        "attempts": [
            {
                "number": a.number,
                "instance_type": a.offering.instance_type,
                "availability_zone": a.offering.availability_zone,
                "count": a.count,
                "outcome": a.outcome.value if a.outcome else None,
                "code": a.code,
            }
            for a in i.attempts
        ],
    }


def _age(seconds: int) -> str:
    seconds = max(0, seconds)
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


# ------------------------------------------------------------------------------------------ launch


@app.command("launch", epilog=EPILOG_LAUNCH)
@_guard
def launch(
    ctx: typer.Context,
    count: Annotated[
        int,
        typer.Argument(
            min=1,
            help="Serving replicas of burst capacity to add (each is "
            "nodes_per_replica instances of the chosen type).",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model the capacity is for (default: the first served model); sizes multi-node replicas.",
        ),
    ] = None,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Launch burst capacity now, inside every cap; falls back along the instance-type chain and AZs.

    Example:  operatord burst launch 1 --model llama-70b --dry-run
    """
    setup = _Setup(ctx, dry_run)
    names = [m.name for m in setup.policy.serving.models]
    if model is not None and model not in names:
        raise CliError(
            f"--model {model!r}: not a served model (policy has: {', '.join(names)})", ExitCode.USAGE
        )
    chosen = model or names[0]
    if not setup.burst.enabled:
        raise CliError(f"refused: burst.enabled is false in {setup.loaded.source}", ExitCode.FOUND)
    try:
        state = StateStore(setup.wiring.cluster, setup.wiring.namespace).load()
    except StateCorrupt as err:
        raise CliError(f"operatord-state is unreadable: {err}", ExitCode.USAGE) from None
    if state.pause is not None:
        raise CliError(
            f"refused: operatord is paused ({state.pause.reason}); `operatord resume` first", ExitCode.FOUND
        )
    if not dry_run:
        confirm(
            f"Launch {count} burst replica(s) of {chosen} on EC2 (caps: {setup.burst.max_instances} instances, "
            f"${setup.burst.max_usd_per_hour:g}/h, ${setup.burst.max_usd_per_day:g}/day)?",
            yes,
        )
    outcomes = setup.runner.launch(replicas=count, model=chosen, reason=Reason.HUMAN_REQUEST.value)
    _print_outcomes(outcomes, output, setup, dry_run)
    last = outcomes[-1] if outcomes else None
    if last is None:
        raise typer.Exit(int(ExitCode.FOUND))
    if last.kind in ("launched", "would_launch"):
        raise typer.Exit(int(ExitCode.OK))
    if last.kind == "launch_pending":
        sys.stderr.write(
            "operatord: AWS did not answer in time; `operatord burst reconcile` finishes the launch\n"
        )
        raise typer.Exit(int(ExitCode.UNREACHABLE))
    sys.stderr.write(f"operatord: launch refused: {last.reason}\n")
    raise typer.Exit(int(ExitCode.FOUND))


# --------------------------------------------------------------------------------------- terminate


@app.command("terminate", epilog=EPILOG_TERMINATE)
@_guard
def terminate(
    ctx: typer.Context,
    ids: Annotated[list[str] | None, typer.Argument(help="Instance ids (i-...).")] = None,
    all_: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every burst instance of this cluster, tracked or not, "
            "and cancel launches not yet sent (the Helm pre-delete hook).",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Terminate burst instances now (cordon, delete the Node, terminate); only ones tagged for this cluster.

    Example:  operatord burst terminate --all --yes
    """
    if bool(ids) == all_:
        raise CliError("give instance ids or --all (not both)", ExitCode.USAGE)
    bad = [i for i in ids or [] if not i.startswith("i-")]
    if bad:
        raise CliError(f"not an EC2 instance id: {', '.join(bad)}", ExitCode.USAGE)
    setup = _Setup(ctx, dry_run)
    targets = list(ids or [])
    if all_:
        intents, _ = setup.store.list()
        live = {r.instance_id for i in intents for r in i.live_instances}
        targets = sorted(live | {c.instance_id for c in setup.capacity.list_instances() if not c.gone})
    if not dry_run and targets:
        confirm(f"Terminate {len(targets)} burst instance(s): {', '.join(targets)}?", yes)
    outcomes: list[Outcome] = []
    if all_:
        outcomes.extend(setup.runner.cancel_pending(Reason.HUMAN_REQUEST))
    if targets:
        outcomes.extend(setup.runner.terminate(targets, Reason.HUMAN_REQUEST))
    _print_outcomes(outcomes, output, setup, dry_run)
    refused = any(o.kind == "refused" for o in outcomes)
    raise typer.Exit(int(ExitCode.FOUND if refused else ExitCode.OK))


# --------------------------------------------------------------------------------------- reconcile


@app.command("reconcile", epilog=EPILOG_RECONCILE)
@_guard
def reconcile(ctx: typer.Context, dry_run: DryRunOpt = False, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Bring intents up to date with EC2 and Kubernetes once: finish interrupted launches, advance the
    lifecycle, terminate timed-out, expired and orphaned instances (what the daemon does every tick).

    Example:  operatord burst reconcile --dry-run
    """
    setup = _Setup(ctx, dry_run)
    outcomes = setup.runner.reconcile()
    _print_outcomes(outcomes, output, setup, dry_run)
    codes = [ExitCode.FOUND for o in outcomes if o.kind in ("unreadable_intent", "launch_failed")]
    codes += [ExitCode.UNREACHABLE for o in outcomes if o.kind == "launch_pending"]
    raise typer.Exit(int(worst(*codes)))
