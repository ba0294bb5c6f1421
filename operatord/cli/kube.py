"""CLI wiring for commands that talk to Kubernetes: the cluster adapter and the live policy.

`connect()` builds KubeClusterApi from --kubeconfig / KUBECONFIG / in-cluster config (a bad
kubeconfig is a usage error, exit 2). `live_policy()` resolves the policy the daemon uses: the
`--policy` file when given, else the `operatord-policy` ConfigMap in operatord's namespace
(first key ending in .yaml), else policies/default.yaml; the result names its source and
revision. `unreachable()` turns a cluster error into the one-line exit-3 message.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from operatord.cli.common import CliError, ExitCode, context
from operatord.policies.load import LoadedPolicy, PolicyError, load_policy, load_policy_text
from operatord.ports.cluster import ClusterError, NotFound, Unreachable
from operatord.settings import DEFAULT_POLICY
from operatord.vocab import POLICY_CONFIGMAP

if TYPE_CHECKING:
    from operatord.adapters.k8s import KubeClusterApi


@dataclass(frozen=True)
class Wiring:
    cluster: KubeClusterApi
    namespace: str


def connect(ctx: typer.Context) -> Wiring:
    from operatord.adapters.k8s import ConfigError, KubeClusterApi

    settings = context(ctx).settings
    try:
        cluster = KubeClusterApi.connect(settings.kubeconfig, settings.kube_context)
    except ConfigError as err:
        raise CliError(f"cannot configure the Kubernetes client: {err}", ExitCode.USAGE) from None
    return Wiring(cluster, settings.namespace)


def unreachable(err: ClusterError, what: str = "the Kubernetes API") -> CliError:
    """A cluster failure as the CLI reports it: unreachable → 3, anything else the API refused → 3 too
    (the dependency did not do what we asked), with the API's message."""
    kind = "unreachable" if isinstance(err, Unreachable) else f"error (HTTP {err.status})"
    return CliError(f"{what}: {kind}: {err}", ExitCode.UNREACHABLE)


def live_policy(ctx: typer.Context, wiring: Wiring) -> LoadedPolicy:
    settings = context(ctx).settings
    try:
        if settings.policy is not None:
            return load_policy(settings.policy)
        try:
            cm = wiring.cluster.get_configmap(wiring.namespace, POLICY_CONFIGMAP)
        except NotFound:
            cm = None
        if cm is not None:
            keys = sorted(k for k in cm.data if k.endswith((".yaml", ".yml")))
            if not keys:
                raise CliError(
                    f"configmap {wiring.namespace}/{POLICY_CONFIGMAP} has no *.yaml key; "
                    "pass --policy FILE or fix the ConfigMap",
                    ExitCode.USAGE,
                )
            name = f"configmap/{wiring.namespace}/{POLICY_CONFIGMAP}[{keys[0]}]"
            return load_policy_text(cm.data[keys[0]], name, DEFAULT_POLICY.parent)
        if DEFAULT_POLICY.is_file():
            return load_policy(DEFAULT_POLICY)
    except PolicyError as err:
        raise CliError(f"invalid policy:\n{err}", ExitCode.USAGE) from None
    except ClusterError as err:
        raise unreachable(err) from None
    raise CliError(
        f"no policy: pass --policy FILE, create configmap {wiring.namespace}/{POLICY_CONFIGMAP}, "
        f"or run where {DEFAULT_POLICY} exists",
        ExitCode.USAGE,
    )


def whoami() -> str:
    """The person at the keyboard, as recorded in cordon ownership (`human:<name>`)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"human:{name}"


def policy_json(loaded: LoadedPolicy) -> dict[str, str]:
    return {"source": loaded.source, "revision": loaded.revision}
