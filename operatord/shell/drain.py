"""Shell. Drain one node through the cluster port, like `kubectl drain`, on injectable time.

Rounds of: list the node's pods → select (operatord.core.drain) → delete unmanaged pods the
policy says to delete → evict the rest through the Eviction API. A 429 (a PodDisruptionBudget
allows no disruption now) is retried with exponential backoff (tenacity, starting at
`remediation.drain.eviction_retry`, capped at a minute) until `remediation.drain.timeout`; a 500
(typically two PDBs selecting one pod) is reported and not retried, since retrying cannot fix
it. The drain is complete when no evictable or terminating pod is left on the node. Sleep and
the monotonic clock are parameters, so tests run on virtual time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from tenacity import RetryCallState, Retrying, retry_if_result, wait_exponential

from operatord.core.drain import grace_period_s, select_pods
from operatord.core.model import EvictResult
from operatord.policies.model import DrainOptions
from operatord.ports.cluster import ClusterApi

MAX_BACKOFF_S = 60.0
log = structlog.get_logger("operatord.drain")


class DrainStatus(StrEnum):
    COMPLETED = "completed"
    REFUSED = "refused"  # pods the policy will not touch: nothing was evicted
    TIMED_OUT = "timed_out"  # PDBs still blocked some pods at the deadline
    FAILED = "failed"  # an eviction answered 500 (misconfigured PDB); the other pods were drained


@dataclass
class DrainReport:
    node: str
    status: DrainStatus = DrainStatus.COMPLETED
    evicted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # pod → last 429 message
    failed: dict[str, str] = field(default_factory=dict)  # pod → 500 message
    skipped: dict[str, str] = field(default_factory=dict)  # pod → why
    refused: dict[str, str] = field(default_factory=dict)  # pod → why
    rounds: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "status": self.status.value,
            "evicted": self.evicted,
            "deleted": self.deleted,
            "blocked": self.blocked,
            "failed": self.failed,
            "skipped": self.skipped,
            "refused": self.refused,
            "rounds": self.rounds,
        }


def drain_node(
    cluster: ClusterApi,
    node: str,
    options: DrainOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> DrainReport:
    """Drain `node` (assumed cordoned). Never raises for PDB outcomes; ClusterError propagates."""
    report = DrainReport(node)
    start = monotonic()
    timeout = options.timeout.total_seconds()

    def one_round() -> bool:
        """True when finished (done, refused or only failures left); False to retry later."""
        report.rounds += 1
        selection = select_pods(cluster.list_pods(node_name=node).items, options)
        for pod, why in selection.skipped:
            report.skipped[pod.key] = why
        if selection.refused and report.rounds == 1:
            report.refused = {pod.key: why for pod, why in selection.refused}
            report.status = DrainStatus.REFUSED
            return True
        for pod in selection.delete:
            if cluster.delete_pod(pod.namespace, pod.name, grace_period_s=grace_period_s(pod, options)):
                report.deleted.append(pod.key)
        report.blocked = {}
        for pod in selection.evict:
            if pod.key in report.failed:
                continue
            outcome = cluster.evict(pod.namespace, pod.name, grace_period_s=grace_period_s(pod, options))
            if outcome.result in (EvictResult.EVICTED, EvictResult.GONE):
                report.evicted.append(pod.key)
            elif outcome.result == EvictResult.BLOCKED:
                report.blocked[pod.key] = outcome.message
            else:
                report.failed[pod.key] = outcome.message
                log.warning("drain.eviction_failed", node=node, pod=pod.key, error=outcome.message)
        return not report.blocked and not selection.waiting

    def timed_out(state: RetryCallState) -> bool:
        return monotonic() - start >= timeout

    retrying = Retrying(
        sleep=sleep,
        stop=timed_out,
        wait=wait_exponential(multiplier=options.eviction_retry.total_seconds(), max=MAX_BACKOFF_S),
        retry=retry_if_result(lambda finished: finished is False),
        retry_error_callback=lambda state: False,
    )
    finished = retrying(one_round)
    if report.status == DrainStatus.REFUSED:
        return report
    if not finished:
        report.status = DrainStatus.TIMED_OUT
    elif report.failed:
        report.status = DrainStatus.FAILED
    return report
