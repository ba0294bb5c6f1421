"""The documented cluster the runbooks' console blocks run against (runbooks/README.md describes
it for readers). Each runbook names a scenario in a `<!-- scenario: NAME -->` comment; the
runbook test resets the API stand-in and seeds that scenario before the runbook's commands.

The cluster: pool `local-a100` of ten 8-GPU nodes (gpu-a17…gpu-a21, gpu-b01…gpu-b05), one
vLLM replica of `deepseek-r1-distill-llama-70b` on each (Deployment llm/vllm-r1-70b, PDB
maxUnavailable 1), and the chart's operatord-policy ConfigMap with `mode: full`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from operatord.core.health import HealthState
from operatord.core.history import HistoryEntry, encode_history
from operatord.core.state import Breaker, CapacityRequest, OperatordState, Pause, encode_state
from operatord.testing import kubeobjects as k
from operatord.testing.builders import a_finding
from operatord.testing.kube_server import KubeStandIn
from operatord.vocab import (
    ANNOTATION_CORDON_REASON,
    ANNOTATION_CORDONED_AT,
    ANNOTATION_CORDONED_BY,
    ANNOTATION_HISTORY,
    STATE_CONFIGMAP,
    FaultAction,
    FaultClass,
)

NODES = tuple(f"gpu-a{i}" for i in range(17, 22)) + tuple(f"gpu-b0{i}" for i in range(1, 6))
NAMESPACE = "operatord"

Seed = Callable[[KubeStandIn, list[dict[str, Any]], datetime], None]
Run = Callable[[list[str]], Any]


def _finding(
    cls: FaultClass, now: datetime, *, fatal: bool = True, ago: timedelta = timedelta(minutes=2)
) -> dict[str, Any]:
    action = FaultAction.REBOOT if fatal else FaultAction.DRAIN
    rule = {
        FaultClass.GPU_FALLEN_OFF_BUS: "xid-79",
        FaultClass.GPU_ECC_UNCORRECTABLE: "xid-48",
        FaultClass.NCCL_TIMEOUT: "nccl-watchdog-timeout",
        FaultClass.NCCL_NETWORK_ERROR: "nccl-net-ib-error",
    }.get(cls, f"rule-{cls.value}")
    return a_finding(cls, fatal=fatal, action=action, first=now - ago, last=now - ago, rule=rule).to_json()


def _base(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime, **per_node: dict[str, Any]) -> None:
    for obj in policy:
        kube.create(obj)
    for name in NODES:
        kube.create(k.node(name, **per_node.get(name, {})))
        kube.create(
            k.pod(
                f"vllm-r1-70b-{name[-3:]}", node=name, namespace="llm", gpus=8, labels={"app": "vllm-r1-70b"}
            )
        )
    kube.create(k.pdb("vllm-r1-70b", namespace="llm", match_labels={"app": "vllm-r1-70b"}, max_unavailable=1))
    kube.create(k.workload("vllm-r1-70b", namespace="llm", replicas=len(NODES)))


def _state(kube: KubeStandIn, state: OperatordState) -> None:
    kube.create(k.configmap(STATE_CONFIGMAP, encode_state(state), namespace=NAMESPACE))


def healthy(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    _base(kube, policy, now)


def fatal_fault(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17: GPU fell off the bus two minutes ago (a fatal node fault)."""
    _base(kube, policy, now, **{"gpu-a17": {"findings": [_finding(FaultClass.GPU_FALLEN_OFF_BUS, now)]}})


def fleet_sick(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """Three different fatal faults at once (gpu-a17, gpu-b02, gpu-b03): 30 % of the pool."""
    _base(
        kube,
        policy,
        now,
        **{
            "gpu-a17": {"findings": [_finding(FaultClass.GPU_FALLEN_OFF_BUS, now)]},
            "gpu-b02": {"findings": [_finding(FaultClass.GPU_ECC_UNCORRECTABLE, now)]},
            "gpu-b03": {"findings": [_finding(FaultClass.GPU_ROW_REMAP_FAILURE, now)]},
        },
    )


def fleet_event(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17, gpu-a18 and gpu-a19 report the same NCCL timeout within a minute: one fleet event."""
    f = [_finding(FaultClass.NCCL_TIMEOUT, now, fatal=False)]
    _base(kube, policy, now, **{n: {"findings": f} for n in ("gpu-a17", "gpu-a18", "gpu-a19")})


def tolerating(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17: an NCCL network error two minutes ago, inside its 10-minute toleration window."""
    _base(
        kube,
        policy,
        now,
        **{"gpu-a17": {"findings": [_finding(FaultClass.NCCL_NETWORK_ERROR, now, fatal=False)]}},
    )


def breaker_open(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """The breaker tripped ten minutes ago; gpu-a17 has a fatal fault that waits for a person."""
    fatal_fault(kube, policy, now)
    since = now - timedelta(minutes=10)
    _state(
        kube,
        OperatordState(
            breaker=Breaker(
                open=True,
                since=since,
                reason="breaker_open",
                detail="recent=5, wanted=5, nodes=10, fraction=0.5",
            )
        ),
    )


def paused(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """An on-call engineer paused operatord during a driver rollout; gpu-a17 has a fatal fault."""
    fatal_fault(kube, policy, now)
    _state(
        kube,
        OperatordState(
            pause=Pause(reason="driver rollout CHG-1234", by="human:alice", at=now - timedelta(minutes=30))
        ),
    )


def human_cordon(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17 was cordoned by a person (kubectl cordon + operatord's owner annotation) for maintenance."""
    _base(
        kube,
        policy,
        now,
        **{
            "gpu-a17": {
                "unschedulable": True,
                "annotations": {
                    ANNOTATION_CORDONED_BY: "human:alice",
                    ANNOTATION_CORDON_REASON: "BMC firmware update",
                    ANNOTATION_CORDONED_AT: (now - timedelta(hours=1)).isoformat(),
                },
            }
        },
    )


def _history(now: datetime, *entries: tuple[timedelta, str, str, str, HealthState | None]) -> str:
    return encode_history(
        [
            HistoryEntry(now - ago, event, reason, actor, state)
            for ago, event, reason, actor, state in entries
        ],
        now,
    )


def _cordoned_by_operatord(now: datetime, cls: FaultClass, ago: timedelta) -> dict[str, str]:
    return {
        ANNOTATION_CORDONED_BY: "operatord",
        ANNOTATION_CORDON_REASON: cls.value,
        ANNOTATION_CORDONED_AT: (now - ago).isoformat(),
    }


def _cordoned_nonfatal(now: datetime) -> dict[str, Any]:
    """gpu-a17 with an NVLink error (a node fault that asks for a drain, not fatal) seen 12 minutes
    ago, past its 5-minute toleration, and cordoned by operatord 5 minutes ago."""
    f = FaultClass.GPU_NVLINK_ERROR
    return {
        "unschedulable": True,
        "findings": [_finding(f, now, fatal=False, ago=timedelta(minutes=12))],
        "annotations": {
            **_cordoned_by_operatord(now, f, timedelta(minutes=5)),
            ANNOTATION_HISTORY: _history(
                now, (timedelta(minutes=5), "fault_confirmed", f.value, "operatord", HealthState.CORDONED)
            ),
        },
    }


def cordoned(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17 was cordoned by operatord for its fatal fault one minute ago; the drain is next."""
    f = FaultClass.GPU_FALLEN_OFF_BUS
    _base(
        kube,
        policy,
        now,
        **{
            "gpu-a17": {
                "unschedulable": True,
                "findings": [_finding(f, now)],
                "annotations": {
                    **_cordoned_by_operatord(now, f, timedelta(minutes=1)),
                    ANNOTATION_HISTORY: _history(
                        now,
                        (timedelta(minutes=1), "fault_confirmed", f.value, "operatord", HealthState.CORDONED),
                    ),
                },
            }
        },
    )


def draining(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17 is being drained (started 3 minutes ago); gpu-b02 was just cordoned for an ECC fault."""
    a, b = FaultClass.GPU_FALLEN_OFF_BUS, FaultClass.GPU_ECC_UNCORRECTABLE
    _base(
        kube,
        policy,
        now,
        **{
            "gpu-a17": {
                "unschedulable": True,
                "findings": [_finding(a, now, ago=timedelta(minutes=6))],
                "annotations": {
                    **_cordoned_by_operatord(now, a, timedelta(minutes=5)),
                    ANNOTATION_HISTORY: _history(
                        now,
                        (timedelta(minutes=5), "fault_confirmed", a.value, "operatord", HealthState.CORDONED),
                        (timedelta(minutes=3), "drain_started", a.value, "operatord", HealthState.DRAINING),
                    ),
                },
            },
            "gpu-b02": {
                "unschedulable": True,
                "findings": [_finding(b, now, ago=timedelta(minutes=1))],
                "annotations": {
                    **_cordoned_by_operatord(now, b, timedelta(seconds=30)),
                    ANNOTATION_HISTORY: _history(
                        now,
                        (
                            timedelta(seconds=30),
                            "fault_confirmed",
                            b.value,
                            "operatord",
                            HealthState.CORDONED,
                        ),
                    ),
                },
            },
        },
    )


def awaiting_repair(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime, quiet: int = 10) -> None:
    """gpu-a17 was drained for its fault 31 minutes ago and handed to a person for a reboot; the
    fault last repeated `quiet` minutes ago."""
    f = FaultClass.GPU_FALLEN_OFF_BUS
    _base(
        kube,
        policy,
        now,
        **{
            "gpu-a17": {
                "unschedulable": True,
                "findings": [_finding(f, now, ago=timedelta(minutes=quiet))],
                "annotations": {
                    **_cordoned_by_operatord(now, f, timedelta(minutes=39)),
                    ANNOTATION_HISTORY: _history(
                        now,
                        (
                            timedelta(minutes=39),
                            "fault_confirmed",
                            f.value,
                            "operatord",
                            HealthState.CORDONED,
                        ),
                        (timedelta(minutes=38), "drain_started", f.value, "operatord", HealthState.DRAINING),
                        (timedelta(minutes=31), "drain_completed", f.value, "operatord", HealthState.DRAINED),
                        (
                            timedelta(minutes=31),
                            "handed_off",
                            "awaiting_repair",
                            "operatord",
                            HealthState.AWAITING_REPAIR,
                        ),
                    ),
                },
            }
        },
    )


def unmanaged_pod(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17 also runs `default/debug-shell`, a bare pod with no controller."""
    healthy(kube, policy, now)
    kube.create(k.pod("debug-shell", node="gpu-a17", namespace="default", owner=None))


def spacing(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-b02's drain started 4 minutes ago (done, awaiting repair); gpu-a17 is cordoned for an
    NVLink error and waits for `remediation.drain_spacing` before its own drain."""
    f = FaultClass.GPU_ECC_UNCORRECTABLE
    b02 = {
        "unschedulable": True,
        "findings": [_finding(f, now, ago=timedelta(minutes=6))],
        "annotations": {
            **_cordoned_by_operatord(now, f, timedelta(minutes=5)),
            ANNOTATION_HISTORY: _history(
                now,
                (timedelta(minutes=5), "fault_confirmed", f.value, "operatord", HealthState.CORDONED),
                (timedelta(minutes=4), "drain_started", f.value, "operatord", HealthState.DRAINING),
                (timedelta(minutes=2), "drain_completed", f.value, "operatord", HealthState.DRAINED),
                (
                    timedelta(minutes=2),
                    "handed_off",
                    "awaiting_repair",
                    "operatord",
                    HealthState.AWAITING_REPAIR,
                ),
            ),
        },
    }
    _base(kube, policy, now, **{"gpu-a17": _cordoned_nonfatal(now), "gpu-b02": b02})


def escalated(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17 has been remediated five times in seven days; operatord cordoned it a minute ago for a
    sixth fault."""
    f = FaultClass.GPU_ECC_UNCORRECTABLE
    entries: list[tuple[timedelta, str, str, str, HealthState | None]] = []
    for day in (6, 5, 4, 2, 1):
        at = timedelta(days=day)
        entries += [
            (at, "fault_confirmed", f.value, "operatord", HealthState.CORDONED),
            (at - timedelta(minutes=1), "drain_started", f.value, "operatord", HealthState.DRAINING),
            (at - timedelta(minutes=8), "drain_completed", f.value, "operatord", HealthState.DRAINED),
            (
                at - timedelta(minutes=8),
                "handed_off",
                "awaiting_repair",
                "operatord",
                HealthState.AWAITING_REPAIR,
            ),
            (
                at - timedelta(hours=3),
                "human_uncordoned",
                "human_uncordon",
                "human:alice",
                HealthState.HEALTHY,
            ),
        ]
    entries.append((timedelta(minutes=1), "fault_confirmed", f.value, "operatord", HealthState.CORDONED))
    annotations = {
        **_cordoned_by_operatord(now, f, timedelta(minutes=1)),
        ANNOTATION_HISTORY: _history(now, *entries),
    }
    _base(
        kube,
        policy,
        now,
        **{"gpu-a17": {"unschedulable": True, "findings": [_finding(f, now)], "annotations": annotations}},
    )


def min_healthy(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-b01…gpu-b03 were drained by a person for maintenance; gpu-a17 is cordoned for an NVLink
    error. Draining it would leave 48 of 80 GPUs serving, under the 75 % floor."""
    human = {
        "unschedulable": True,
        "annotations": {
            ANNOTATION_CORDONED_BY: "human:alice",
            ANNOTATION_CORDON_REASON: "BMC firmware update",
            ANNOTATION_CORDONED_AT: (now - timedelta(hours=1)).isoformat(),
            ANNOTATION_HISTORY: _history(
                now,
                (timedelta(hours=1), "cordoned", "manual_drain", "human:alice", None),
                (timedelta(minutes=59), "human_drain", "manual_drain", "human:alice", HealthState.DRAINING),
                (
                    timedelta(minutes=50),
                    "drain_completed",
                    "manual_drain",
                    "human:alice",
                    HealthState.DRAINED,
                ),
            ),
        },
    }
    _base(
        kube,
        policy,
        now,
        **{"gpu-a17": _cordoned_nonfatal(now), **dict.fromkeys(("gpu-b01", "gpu-b02", "gpu-b03"), human)},
    )


def awaiting_capacity(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """gpu-a17 is cordoned for an NVLink error; a replacement was requested 4 minutes ago."""
    f = FaultClass.GPU_NVLINK_ERROR
    _base(
        kube,
        policy,
        now,
        **{
            "gpu-a17": {
                "unschedulable": True,
                "findings": [_finding(f, now, fatal=False, ago=timedelta(minutes=12))],
                "annotations": {
                    **_cordoned_by_operatord(now, f, timedelta(minutes=5)),
                    ANNOTATION_HISTORY: _history(
                        now,
                        (timedelta(minutes=5), "fault_confirmed", f.value, "operatord", HealthState.CORDONED),
                    ),
                },
            }
        },
    )
    request = CapacityRequest(node="gpu-a17", gpus=8, reason=f.value, since=now - timedelta(minutes=4))
    _state(kube, OperatordState(capacity_requests=(request,)))


def version_skew(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """Every node runs driver 550.90.07 (GPU feature discovery's label) but gpu-a17, on 570.124.06."""
    _base(
        kube,
        policy,
        now,
        **{
            n: {
                "labels": {
                    "nvidia.com/cuda.driver-version.full": "570.124.06" if n == "gpu-a17" else "550.90.07"
                }
            }
            for n in NODES
        },
    )


def burst_idle(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime, run: Run) -> None:
    """Burst enabled (the default policy's caps), no instance running."""
    healthy(kube, policy, now)


def burst_one(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime, run: Run) -> None:
    """One p4d.24xlarge launched a moment ago by `operatord burst launch 1 --yes`."""
    healthy(kube, policy, now)
    result = run(["burst", "launch", "1", "--yes"])
    assert result.exit_code == 0, result.lines


def recovered(kube: KubeStandIn, policy: list[dict[str, Any]], now: datetime) -> None:
    """Like awaiting-repair, but the fault has been quiet for 40 minutes (> recovery_quiet_period)."""
    awaiting_repair(kube, policy, now, quiet=40)


SCENARIOS: dict[str, Seed] = {
    "version-skew": version_skew,
    "unmanaged-pod": unmanaged_pod,
    "spacing": spacing,
    "escalated": escalated,
    "min-healthy": min_healthy,
    "awaiting-capacity": awaiting_capacity,
    "recovered": recovered,
    "cordoned": cordoned,
    "draining": draining,
    "awaiting-repair": awaiting_repair,
    "healthy": healthy,
    "fatal-fault": fatal_fault,
    "fleet-sick": fleet_sick,
    "fleet-event": fleet_event,
    "tolerating": tolerating,
    "breaker-open": breaker_open,
    "paused": paused,
    "human-cordon": human_cordon,
}


BURST_SCENARIOS: dict[str, Callable[[KubeStandIn, list[dict[str, Any]], datetime, Run], None]] = {
    "burst-idle": burst_idle,
    "burst-one": burst_one,
}
