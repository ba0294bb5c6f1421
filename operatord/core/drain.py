"""Pure. Which pods a drain evicts, skips or refuses — `kubectl drain`'s rules, per policy.

Skipped: DaemonSet pods (their controller ignores unschedulable and would put them back),
mirror (static) pods (the kubelet owns them; the API cannot delete them), pods already
terminating. Pods with emptyDir volumes are evicted only when `delete_emptydir_data` (their
data is lost); unmanaged pods (no controller: nothing recreates them) are refused, skipped or
deleted per `unmanaged_pods`. A refusal refuses the whole drain before anything is evicted,
as kubectl does, so a drain never stops half-way because of a pod it should not touch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from operatord.core.model import OwnerKind, Pod
from operatord.policies.model import DrainOptions


@dataclass(frozen=True, slots=True)
class DrainSelection:
    evict: tuple[Pod, ...] = ()
    delete: tuple[Pod, ...] = ()  # unmanaged pods under `unmanaged_pods: delete`
    waiting: tuple[Pod, ...] = ()  # already terminating: the drain waits for them to go
    skipped: tuple[tuple[Pod, str], ...] = ()
    refused: tuple[tuple[Pod, str], ...] = ()

    @property
    def done(self) -> bool:
        """Nothing left to evict, delete or wait for."""
        return not self.evict and not self.delete and not self.waiting


def select_pods(pods: Iterable[Pod], options: DrainOptions) -> DrainSelection:
    """Classify the pods on a node. Total and ordered (by namespace/name)."""
    evict: list[Pod] = []
    delete: list[Pod] = []
    waiting: list[Pod] = []
    skipped: list[tuple[Pod, str]] = []
    refused: list[tuple[Pod, str]] = []
    for pod in sorted(pods, key=lambda p: (p.namespace, p.name)):
        if pod.mirror or pod.controller_kind == OwnerKind.NODE:
            skipped.append((pod, "mirror pod"))
        elif pod.controller_kind == OwnerKind.DAEMON_SET:
            skipped.append((pod, "DaemonSet pod"))
        elif pod.deleting:
            waiting.append(pod)
        elif pod.finished:
            evict.append(pod)  # holds no resources; evicting it keeps the node empty for repair
        elif pod.has_emptydir and not options.delete_emptydir_data:
            refused.append(
                (pod, "has emptyDir data (set remediation.drain.delete_emptydir_data to evict it)")
            )
        elif pod.controller_kind is None:
            if options.unmanaged_pods == "refuse":
                refused.append((pod, "has no controller (remediation.drain.unmanaged_pods: refuse)"))
            elif options.unmanaged_pods == "skip":
                skipped.append((pod, "unmanaged pod (unmanaged_pods: skip)"))
            else:
                delete.append(pod)
        else:
            evict.append(pod)
    return DrainSelection(tuple(evict), tuple(delete), tuple(waiting), tuple(skipped), tuple(refused))


def grace_period_s(pod: Pod, options: DrainOptions) -> int | None:
    """The policy's grace period when set, else None (the pod's own terminationGracePeriodSeconds)."""
    if options.grace_period is None:
        return None
    return int(options.grace_period.total_seconds())
