"""`operatord doctor`: preflight (design §1.2) — can operatord do its job from here, and if not, why.

One line per check, each with what to do when it fails:

* Kubernetes: the API answers; the policy loads; the RBAC each feature needs
  (SelfSubjectAccessReview, as the identity the command runs as — run it in the pod, or with
  the service account's kubeconfig, to check the chart's roles).
* Prometheus: reachable, and which of the policy's metric names actually have series (GPU
  health from dcgm-exporter, load from vLLM or SGLang).
* AWS (when the policy enables burst): credentials, the launch template, the instance types'
  offerings per subnet AZ, the P-family vCPU quota against one instance, an EC2 DryRun of
  RunInstances with the template (proves the IAM policy allows the launch; launches nothing),
  and an EC2 DryRun of TerminateInstances on one instance operatord manages (proves it may
  terminate what it launched; terminates nothing). The IAM policy of docs/aws.md allows
  terminate only on instances tagged for operatord and this cluster, so with no such instance
  running there is nothing that proves it: that check is reported as skipped, not failed.

Exit 0 when every check passes or is skipped, 1 when any fails (even when the failure is an
unreachable dependency: doctor's job is to report it), 2 on usage errors.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from operatord.cli.common import CliError, ExitCode, OutputFormat, context, print_json, print_table
from operatord.cli.kube import Wiring, connect, live_policy, policy_json
from operatord.policies.load import LoadedPolicy, PolicyError, load_policy
from operatord.policies.model import Policy
from operatord.settings import DEFAULT_POLICY
from operatord.vocab import TAG_CLUSTER, TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE

EPILOG = (
    "Exit codes: 0 every check passed (or was skipped: it cannot be proven now, the line says why); "
    "1 a check failed (each failing line says what to do); 2 usage error."
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False  # not provable now (ok stays True: nothing is known to be wrong)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "skipped": self.skipped,
            "detail": self.detail,
            "fix": self.fix if not self.ok else "",
        }


class NotProvable(Exception):
    """A check that cannot be decided now (its message says why): reported as skipped."""


# Feature → the accesses it needs: (verb, group, resource, subresource, namespaced-in-operatord's-namespace).
Access = tuple[str, str, str, str, bool]
_FEATURES: tuple[tuple[str, tuple[Access, ...], str], ...] = (
    (
        "rbac.observe",
        (
            ("list", "", "nodes", "", False),
            ("watch", "", "nodes", "", False),
            ("list", "", "pods", "", False),
        ),
        "read nodes and pods cluster-wide (the chart's controller ClusterRole)",
    ),
    (
        "rbac.remediation",
        (
            ("patch", "", "nodes", "", False),
            ("create", "", "pods", "eviction", False),
            ("list", "policy", "poddisruptionbudgets", "", False),
            ("create", "", "events", "", False),
        ),
        "cordon, annotate and drain nodes (nodes patch, pods/eviction create), Events in any namespace",
    ),
    (
        "rbac.state",
        (
            ("get", "", "configmaps", "", True),
            ("list", "", "configmaps", "", True),
            ("create", "", "configmaps", "", True),
            ("update", "", "configmaps", "", True),
            ("delete", "", "configmaps", "", True),
        ),
        "operatord-state, operatord-policy and burst intents (ConfigMaps in operatord's namespace)",
    ),
    (
        "rbac.leader_election",
        (
            ("get", "coordination.k8s.io", "leases", "", True),
            ("create", "coordination.k8s.io", "leases", "", True),
            ("update", "coordination.k8s.io", "leases", "", True),
        ),
        "the Lease operatord-leader in operatord's namespace",
    ),
)
_WORKLOAD_RESOURCE = {
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "LeaderWorkerSet": ("leaderworkerset.x-k8s.io", "leaderworkersets"),
}
_FIX_RBAC = "install or upgrade the Helm chart (rbac.create=true), or grant these verbs to operatord's service account"


def doctor(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat, typer.Option("-o", "--output", help="table or json.")
    ] = OutputFormat.TABLE,
) -> None:
    """Preflight: API access and RBAC, Prometheus and its metric names, AWS credentials, template, offerings, quota.

    AWS launch and terminate permissions are proven with EC2 DryRun (nothing is launched or
    terminated). Terminate can only be proven on an instance operatord manages: with none
    running, that line is "skip" (not provable now) and does not fail doctor.

    Example:  operatord doctor -o json
    """
    checks: list[Check] = []
    wiring: Wiring | None = None
    try:
        wiring = connect(ctx)
    except CliError as err:
        checks.append(
            Check("kubernetes.config", False, err.format_message(), "fix --kubeconfig / KUBECONFIG")
        )
    api_ok = False
    if wiring is not None:
        api_ok = _check(
            checks, "kubernetes.api", lambda: _api(wiring), "check the API server address and network"
        )
    loaded = _policy(ctx, wiring if api_ok else None, checks)
    if wiring is not None and api_ok and loaded is not None:
        _rbac(checks, wiring, loaded.policy)
    elif wiring is not None:
        checks.append(
            Check("rbac", False, "not checked: the API or the policy is unavailable", "fix the lines above")
        )
    if loaded is not None:
        _prometheus(ctx, checks, loaded)
        _aws(ctx, checks, loaded.policy)
    failed = [c for c in checks if not c.ok]
    skipped = [c for c in checks if c.skipped]
    if output == OutputFormat.JSON:
        print_json(
            {
                "ok": not failed,
                "policy": policy_json(loaded) if loaded is not None else None,
                "checks": [c.to_json() for c in checks],
            }
        )
    else:
        rows = [
            [
                c.name,
                "skip" if c.skipped else "ok" if c.ok else "FAIL",
                c.detail + ("" if c.ok or not c.fix else f" → {c.fix}"),
            ]
            for c in checks
        ]
        print_table(rows, ["CHECK", "RESULT", "DETAIL"])
        passed = len(checks) - len(failed) - len(skipped)
        sys.stdout.write(
            f"\n{passed}/{len(checks)} checks passed"
            + (f", {len(skipped)} skipped (not provable now)" if skipped else "")
            + "\n"
        )
    raise typer.Exit(int(ExitCode.FOUND if failed else ExitCode.OK))


def _check(checks: list[Check], name: str, run: Callable[[], str], fix: str) -> bool:
    try:
        detail = run()
    except NotProvable as why:
        checks.append(Check(name, True, str(why), skipped=True))
        return True
    except Exception as err:  # every dependency failure is a failed line, never a traceback
        checks.append(Check(name, False, _one_line(err), fix))
        return False
    checks.append(Check(name, True, detail))
    return True


def _one_line(err: BaseException) -> str:
    text = err.format_message() if isinstance(err, CliError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())[:300]


# -- Kubernetes ------------------------------------------------------------------------------------


def _api(wiring: Wiring) -> str:
    nodes = wiring.cluster.list_nodes().items
    return f"reachable; {len(nodes)} nodes; namespace {wiring.namespace}"


def _policy(ctx: typer.Context, wiring: Wiring | None, checks: list[Check]) -> LoadedPolicy | None:
    settings = context(ctx).settings
    try:
        if wiring is not None:
            loaded = live_policy(ctx, wiring)
        elif settings.policy is not None:
            loaded = load_policy(settings.policy)
        elif DEFAULT_POLICY.is_file():
            loaded = load_policy(DEFAULT_POLICY)
        else:
            raise CliError("no policy: the API is unavailable and no --policy was given")
    except (CliError, PolicyError) as err:
        checks.append(
            Check("policy", False, _one_line(err), "pass --policy FILE or fix the operatord-policy ConfigMap")
        )
        return None
    checks.append(
        Check("policy", True, f"{loaded.source} rev {loaded.revision}, mode {loaded.policy.mode.value}")
    )
    return loaded


def _rbac(checks: list[Check], wiring: Wiring, policy: Policy) -> None:
    features = list(_FEATURES)
    burst = policy.burst is not None and policy.burst.enabled
    if burst:
        features.append(
            (
                "rbac.burst",
                (("delete", "", "nodes", "", False),),
                "delete the Node of a terminated burst instance",
            )
        )
    for name, accesses, what in features:
        _check(checks, name, functools.partial(_accesses, wiring, accesses, what), _FIX_RBAC)
    for served in policy.serving.models:
        wl = served.workload
        group, resource = _WORKLOAD_RESOURCE[wl.kind]
        wanted = [("get", group, resource, "scale", wl.namespace, wl.name)]
        if served.replica_owner == "operatord":
            wanted.append(("patch", group, resource, "scale", wl.namespace, wl.name))
        if burst:  # pod-deletion-cost on burst-node replicas
            wanted.append(("patch", "", "pods", "", wl.namespace, ""))
        what = f"scale {wl.kind} {wl.namespace}/{wl.name}"
        _check(
            checks,
            f"rbac.scaling.{served.name}",
            functools.partial(_named, wiring, wanted, what),
            _FIX_RBAC,
        )


def _accesses(wiring: Wiring, accesses: tuple[Access, ...], what: str) -> str:
    wanted = [(v, g, r, s, wiring.namespace if ns else "", "") for v, g, r, s, ns in accesses]
    return _named(wiring, wanted, what)


def _named(wiring: Wiring, wanted: list[tuple[str, str, str, str, str, str]], what: str) -> str:
    missing = []
    for verb, group, resource, sub, namespace, name in wanted:
        allowed, _ = wiring.cluster.can_i(
            verb, resource, group=group, namespace=namespace or None, subresource=sub, name=name
        )
        if not allowed:
            target = f"{group + '/' if group else ''}{resource}{'/' + sub if sub else ''}"
            missing.append(f"{verb} {target}{' in ' + namespace if namespace else ''}")
    if missing:
        raise PermissionError(f"{what}: missing " + ", ".join(missing))
    return what


# -- Prometheus ------------------------------------------------------------------------------------


# Load must come from vLLM or SGLang, GPU health from dcgm-exporter: one of each group must exist.
_NEEDED = {
    "queue depth": ("requests_waiting", "sglang_requests_waiting"),
    "generated tokens": ("generation_tokens", "sglang_generation_tokens"),
    "GPU activity": ("gpu_active", "gpu_util"),
}


def _prometheus(ctx: typer.Context, checks: list[Check], loaded: LoadedPolicy) -> None:
    from operatord.cli.wiring import prometheus_url

    url = prometheus_url(ctx, loaded)
    if url is None:
        checks.append(
            Check(
                "prometheus",
                False,
                "no Prometheus URL",
                "pass --prometheus-url, set OPERATORD_PROMETHEUS_URL or metrics.prometheus_url in the policy",
            )
        )
        return
    from operatord.adapters.prometheus import PromMetrics
    from operatord.core.metrics import Unknown

    source = PromMetrics(url, loaded.policy.metrics, models=[m.name for m in loaded.policy.serving.models])
    present = source.names_present(datetime.now(UTC))
    if isinstance(present, Unknown):
        checks.append(
            Check(
                "prometheus.reachable",
                False,
                f"{url}: {present.reason.value}: {present.detail}",
                "check the URL, the network policy and that Prometheus is up",
            )
        )
        return
    checks.append(Check("prometheus.reachable", True, url))
    names = loaded.policy.metrics.names.model_dump()
    have = sorted(names[f] for f, ok in present.items() if ok)
    absent = sorted(names[f] for f, ok in present.items() if not ok)
    lacking = [what for what, fields in _NEEDED.items() if not any(present.get(f) for f in fields)]
    detail = f"present: {', '.join(have) or 'none'}; absent: {', '.join(absent) or 'none'}"
    checks.append(
        Check(
            "prometheus.metrics",
            not lacking,
            detail if not lacking else f"no series for {', '.join(lacking)}; {detail}",
            "scrape dcgm-exporter and the vLLM/SGLang pods, or set metrics.names in the policy to your names",
        )
    )


# -- AWS -------------------------------------------------------------------------------------------


def _aws(ctx: typer.Context, checks: list[Check], policy: Policy) -> None:
    burst = policy.burst
    if burst is None or not burst.enabled:
        checks.append(Check("aws", True, "burst is disabled in the policy: nothing to check"))
        return
    import boto3
    import botocore.config

    from operatord.adapters.ec2 import Ec2Capacity, clients, quotas_client

    settings = context(ctx).settings
    region = settings.aws_region or burst.region
    try:
        general, runner = clients(region, profile=settings.aws_profile)
        session = boto3.Session(profile_name=settings.aws_profile, region_name=region)
        sts = session.client("sts", config=botocore.config.Config(retries={"total_max_attempts": 2}))
    except Exception as err:
        checks.append(
            Check("aws.credentials", False, _one_line(err), "fix --aws-profile / the boto3 credential chain")
        )
        return

    def identity() -> str:
        who = sts.get_caller_identity()
        return f"{who.get('Arn', '?')} in {region}"

    if not _check(
        checks,
        "aws.credentials",
        identity,
        "give the pod an IAM role (IRSA) or set the boto3 credential chain",
    ):
        return
    template = burst.launch_template
    ref = {"LaunchTemplateIds": [template.id]} if template.id else {"LaunchTemplateNames": [template.name]}

    def launch_template() -> str:
        found = general.describe_launch_templates(**ref)["LaunchTemplates"]
        if not found:
            raise LookupError(f"launch template {template.id or template.name} not found")
        return (
            f"{found[0]['LaunchTemplateName']} ({found[0]['LaunchTemplateId']}), version {template.version}"
        )

    _check(
        checks, "aws.launch_template", launch_template, "create it (docs/aws.md) or fix burst.launch_template"
    )

    types = [t.instance_type for t in burst.instance_types]
    zones = sorted({s.availability_zone for s in burst.subnets})

    def offerings() -> str:
        resp = general.describe_instance_type_offerings(
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": types}, {"Name": "location", "Values": zones}],
        )
        offered = {(o["InstanceType"], o["Location"]) for o in resp.get("InstanceTypeOfferings", [])}
        missing = [f"{t}@{z}" for t in types for z in zones if (t, z) not in offered]
        if len(missing) == len(types) * len(zones):
            raise LookupError(f"none of {', '.join(types)} is offered in {', '.join(zones)}")
        return (
            "offered: "
            + ", ".join(f"{t}@{z}" for t, z in sorted(offered))
            + (f"; not offered: {', '.join(missing)}" if missing else "")
        )

    _check(
        checks,
        "aws.offerings",
        offerings,
        "add subnets in AZs that offer the types, or change burst.instance_types",
    )

    def quota() -> str:
        need = min(t.vcpus for t in burst.instance_types)
        if burst.vcpu_quota is not None:
            have: int | None = burst.vcpu_quota
            where = "policy burst.vcpu_quota"
        else:
            cap = Ec2Capacity(
                general,
                cluster=policy.cluster,
                launch_template=template,
                quotas=quotas_client(region, profile=settings.aws_profile),
            )
            have, where = cap.vcpu_quota(), "Service Quotas L-417A185B"
        if have is None:
            raise LookupError("the P-family vCPU quota could not be read (servicequotas:GetServiceQuota)")
        if have < need:
            raise ValueError(f"{have} vCPUs ({where}) is below one instance ({need} vCPUs)")
        return f"{have} vCPUs ({where}): room for {have // need} of the smallest burst type"

    _check(
        checks,
        "aws.quota",
        quota,
        "request a quota increase for Running On-Demand P instances, or pin burst.vcpu_quota",
    )

    def dry_run() -> str:
        subnet = burst.subnets[0]
        params: dict[str, Any] = {
            "DryRun": True,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": types[0],
            "SubnetId": subnet.id,
            "LaunchTemplate": {
                "Version": template.version,
                **(
                    {"LaunchTemplateId": template.id}
                    if template.id
                    else {"LaunchTemplateName": template.name}
                ),
            },
        }
        return _dry_run(
            lambda: runner.run_instances(**params),
            "launched",
            f"RunInstances {types[0]} in {subnet.availability_zone} would succeed",
        )

    _check(
        checks,
        "aws.dry_run",
        dry_run,
        "allow ec2:RunInstances/CreateTags with the launch template (docs/aws.md)",
    )

    tags = f"{TAG_MANAGED_BY}={TAG_MANAGED_BY_VALUE}, {TAG_CLUSTER}={policy.cluster}"

    def terminate() -> str:
        managed = Ec2Capacity(general, cluster=policy.cluster, launch_template=template).list_instances()
        if not managed:
            raise NotProvable(
                f"not provable now: no instance tagged {tags} exists, and the IAM policy allows "
                "TerminateInstances only on tagged instances, so a made-up id would prove nothing; "
                "rerun doctor while a burst instance runs"
            )
        one = min(managed, key=lambda i: (i.state == "shutting-down", i.instance_id)).instance_id
        return _dry_run(
            lambda: general.terminate_instances(InstanceIds=[one], DryRun=True),
            "terminated",
            f"TerminateInstances {one} would succeed ({len(managed)} managed instance(s))",
        )

    _check(
        checks,
        "aws.terminate",
        terminate,
        f"allow ec2:TerminateInstances on instances with aws:ResourceTag/{TAG_MANAGED_BY}={TAG_MANAGED_BY_VALUE} "
        f"and aws:ResourceTag/{TAG_CLUSTER}={policy.cluster} (docs/aws.md, statement TerminateOnlyOurs)",
    )


def _dry_run(call: Callable[[], object], did: str, success: str) -> str:
    """`success` when the EC2 call made with DryRun=True is answered DryRunOperation (IAM allows it)."""
    import botocore.exceptions

    try:
        call()
    except botocore.exceptions.ClientError as err:
        if err.response.get("Error", {}).get("Code", "") == "DryRunOperation":
            return success
        raise
    raise RuntimeError(f"DryRun {did} without a DryRunOperation answer (is the endpoint an emulator?)")


__all__ = ["EPILOG", "Check", "doctor"]
