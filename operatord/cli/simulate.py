"""`operatord simulate SCENARIO.yaml`: replay a scenario through the daemon's own decide/apply path.

The only command with a simulated world (design §1.2, §1.4). The cluster is the in-memory fake,
EC2 is operatord's own adapter (Ec2Capacity) on moto in process — wired here, the only place that
may wire adapters — with the scenario's capacity errors, quota and throttling injected at the
boto3 client. Baselines (`--compare`) and the oracle run on the same scenario. Writes report.json,
report.md and timeline.png to `--out` and prints the comparison table (or the report, `-o json`).
Registered in operatord.cli as `app.command("simulate", epilog=EPILOG)(simulate)`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from operatord.cli.common import CliError, ExitCode, OutputFormat

if TYPE_CHECKING:
    from operatord.policies.model import Policy
    from operatord.sim.cloud import SimCapacity
    from operatord.sim.scenario import Scenario
    from operatord.sim.world import World

EPILOG = (
    "Exit codes: 0 simulated, every invariant held; 1 an invariant was violated (listed in report.json "
    "under invariant_violations); 2 usage error: unknown scenario, invalid scenario or policy, unknown baseline."
)


def simulate(
    ctx: typer.Context,
    scenario: Annotated[
        str | None,
        typer.Argument(help="Scenario file, or the NAME of a shipped one (promo-spike, xid-storm, ...)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder; default: operatord-sim/<scenario>.")
    ] = None,
    compare: Annotated[
        str, typer.Option("--compare", help="Baselines to run on the same scenario: static, reactive.")
    ] = "static,reactive",
    seed: Annotated[int | None, typer.Option("--seed", help="Override the scenario's seed.")] = None,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="table or json.")
    ] = OutputFormat.TABLE,
    capacity: Annotated[
        str, typer.Option("--capacity", help="moto (operatord's EC2 adapter on moto, default) or fake.")
    ] = "moto",
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the scenario JSON Schema and exit.")
    ] = False,
) -> None:
    """Replay a scenario: trace traffic, faults and cloud behaviour through operatord's decide() and apply path.

    Compares operatord with `static` (no burst), `reactive` (HPA/KEDA + cluster-autoscaler with the
    anchors' default timings) and the oracle lower bound on burst cost. Serving numbers are
    assumptions (see report.md). Shipped scenarios: promo-spike, xid-storm, nccl-bad-peer,
    ice-us-east-1a, prometheus-outage, driver-rollout-mass-fault, drain-needs-capacity.

    The simulated daemon logs errors only (all of it with --log-level debug).

    Example:  operatord simulate promo-spike --out /tmp/promo
    """
    from operatord.cli.common import context
    from operatord.shell.telemetry import configure_logging
    from operatord.sim import scenario as sc

    # The simulated daemon's own log (one event per decision) would drown the table: errors only,
    # unless --log-level debug asks for everything.
    settings = context(ctx).settings
    if settings.log_level != "debug":
        configure_logging(settings.log_format, "error")
    if schema:
        sys.stdout.write(json.dumps(sc.schema(), indent=2) + "\n")
        return
    if scenario is None:
        raise CliError("give a SCENARIO file or name (shipped: " + ", ".join(sc.shipped()) + ")")
    names = [n.strip() for n in compare.split(",") if n.strip()]
    from operatord.sim.baselines import NAMES

    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise CliError(f"--compare: unknown baseline {unknown[0]!r} (known: {', '.join(NAMES)})")
    if capacity not in ("moto", "fake"):
        raise CliError(f"--capacity: {capacity!r} is not moto or fake")
    try:
        path = sc.resolve(scenario)
        scen = sc.load(path)
    except sc.ScenarioError as err:
        raise CliError(str(err)) from None
    if seed is not None:
        scen = scen.model_copy(update={"seed": seed})
    code = run_simulation(scen, path, names, out or Path("operatord-sim") / scen.name, output, capacity)
    raise typer.Exit(int(code))


def run_simulation(
    scen: Scenario, path: Path, compare: list[str], out: Path, output: OutputFormat, capacity: str
) -> ExitCode:
    from operatord.policies.load import PolicyError
    from operatord.sim.report import table_text, write
    from operatord.sim.runner import load_scenario_policy
    from operatord.sim.simulate import simulate as run

    try:
        loaded = load_scenario_policy(scen, path)
    except PolicyError as err:
        raise CliError(f"{path}: policy: {err}") from None
    except OSError as err:
        raise CliError(f"{path}: policy: {err}") from None
    policy = loaded.policy
    with capacity_wiring(scen, path, policy, capacity) as (scen2, capacity_for), _progress(scen2) as progress:
        try:
            result = run(
                scen2,
                path,
                compare=compare,
                capacity_for=capacity_for,
                capacity_provider="moto (in process)" if capacity == "moto" else "FakeCapacity",
                progress=progress,
            )
        except (ValueError, OSError) as err:
            raise CliError(f"{path}: {err}") from None
    report = result.report
    paths = write(out, report, result.description, result.results)
    if output is OutputFormat.JSON:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(
            f"{report['scenario']}: {report['duration_s'] / 3600:g} simulated hours, seed {report['seed']}\n"
        )
        sys.stdout.write(table_text(report))
        from operatord.sim.report import losses

        for line in losses(report):
            sys.stdout.write(f"operatord loses: {line}\n")
        for v in report["invariant_violations"]:
            sys.stdout.write(f"INVARIANT VIOLATED: {v}\n")
        sys.stdout.write("wrote " + ", ".join(str(p) for p in paths) + "\n")
    return ExitCode.FOUND if report["invariant_violations"] else ExitCode.OK


@contextmanager
def capacity_wiring(
    scen: Scenario, path: Path, policy: Policy, kind: str
) -> Iterator[tuple[Scenario, Callable[[World], SimCapacity | None]]]:
    """The CapacityProvider for operatord's run: Ec2Capacity on moto in process (or FakeCapacity)."""
    from operatord.sim.cloud import CloudFaults, SimCapacity

    burst = policy.burst
    if burst is None or not burst.enabled:
        yield scen, lambda world: None
        return
    vcpus = {t.instance_type: t.vcpus for t in burst.instance_types}
    every = scen.cloud.list_every.total_seconds()
    if kind == "fake":
        from operatord.testing.fake_capacity import FakeCapacity

        def fake_for(world: World) -> SimCapacity:
            fake = FakeCapacity(cluster=policy.cluster, clock=lambda: world.now)
            faults = CloudFaults(scen.cloud, scen.start, lambda: world.now, world, vcpus)
            return SimCapacity(fake, ledger=world, clock=lambda: world.now, list_every_s=every, faults=faults)

        yield scen, fake_for
        return

    import os

    import boto3
    import botocore.config
    from moto import mock_aws

    from operatord.adapters.ec2 import Ec2Capacity
    from operatord.sim.cloud import install_hooks
    from operatord.sim.scenario import deep_merge

    keep = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_PROFILE")}
    for k in keep:
        os.environ.pop(k, None)  # in process: never talk to a configured endpoint or profile
    try:
        with mock_aws():
            region = burst.region
            setup = boto3.client("ec2", region_name=region)
            vpc = setup.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            subnets: list[dict[str, Any]] = []
            subnet_az: dict[str, str] = {}
            for i, s in enumerate(burst.subnets):
                sub = setup.create_subnet(
                    VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=s.availability_zone
                )["Subnet"]
                subnets.append({"id": sub["SubnetId"], "availability_zone": s.availability_zone})
                subnet_az[sub["SubnetId"]] = s.availability_zone
            template: dict[str, Any] = {"ImageId": "ami-12c6146b"}
            lt = burst.launch_template
            setup.create_launch_template(
                LaunchTemplateName=lt.name or "operatord-gpu-burst", LaunchTemplateData=template
            )
            ref: dict[str, Any] = {"name": lt.name or "operatord-gpu-burst", "version": lt.version}
            # The policy names the scenario's subnets; in moto they get moto's ids (same AZs, same order).
            overrides = deep_merge(
                scen.policy_overrides, {"burst": {"subnets": subnets, "launch_template": ref}}
            )
            scen2 = scen.model_copy(update={"policy_overrides": overrides})

            def ec2_for(world: World) -> SimCapacity:
                general = boto3.client(
                    "ec2",
                    region_name=region,
                    config=botocore.config.Config(retries={"total_max_attempts": 1}),
                )
                launcher = boto3.client(
                    "ec2",
                    region_name=region,
                    config=botocore.config.Config(retries={"total_max_attempts": 1}),
                )
                faults = CloudFaults(scen2.cloud, scen2.start, lambda: world.now, world, vcpus)
                install_hooks(general, faults, subnet_az)
                install_hooks(launcher, faults, subnet_az)
                adapter = Ec2Capacity(
                    general,
                    cluster=policy.cluster,
                    launch_template=world.policy.burst.launch_template if world.policy.burst else lt,
                    run_client=launcher,
                    sleep=lambda s: None,  # virtual time: backoff costs nothing
                )
                return SimCapacity(adapter, ledger=world, clock=lambda: world.now, list_every_s=every)

            yield scen2, ec2_for
    finally:
        for k, v in keep.items():
            if v is not None:
                os.environ[k] = v


@contextmanager
def _progress(scen: Scenario) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on stderr for long runs (a terminal only)."""
    ticks = int(scen.duration / scen.tick)
    if not sys.stderr.isatty() or ticks < 500:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} ticks"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(name: str, k: int, n: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"simulating {name}", total=n)
            if k % 20 == 0 or k == n:
                bar.update(tasks[name], completed=k)

        yield update
