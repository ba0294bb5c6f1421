"""Port: burst capacity outside the cluster (EC2 today; FakeCapacity in tests and the simulator).

Properties every implementation must have (checked by tests/burst/test_capacity_contract.py
against FakeCapacity and the moto-backed Ec2Capacity):

* **Ownership by tag.** `list_instances` returns only instances tagged `managed-by=operatord` and
  `operatord.io/cluster=<cluster>`; every instance `launch` creates carries those tags plus
  `operatord.io/intent` and `operatord.io/expires-at`, so a crash can never hide one.
* **Eventually consistent.** A launched instance may appear in `list_instances` late; callers
  treat absence within the launch deadline as "not yet", never as "gone".
* **All-or-nothing launch.** `launch` asks for exactly `attempt.count` instances
  (MinCount = MaxCount); a result with fewer is reported as it is and the caller rolls it back.
* **Idempotent per attempt.** The attempt's ClientToken goes to EC2; a repeated launch with the
  same token and parameters launches nothing new (EC2 guarantees it for ≥ 24 h; moto does not,
  which is why callers also look instances up by intent tag before re-issuing an attempt).
* **Failures are results.** Capacity, quota, configuration and (after the implementation's own
  throttling/5xx retries, same token) transient failures come back as a `LaunchResult` outcome,
  never as an exception. Only "the cloud cannot be reached at all" raises `CapacityUnreachable`.
* **Terminate is idempotent.** Terminating an already terminated or unknown id succeeds.
* **Dry run writes nothing.** `dry_run=True` validates (EC2 DryRun) and launches or terminates nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from operatord.core.burst.intent import Attempt
from operatord.core.burst.observed import CloudInstance, LaunchResult


class CapacityUnreachable(Exception):
    """The cloud API could not be reached or refused our credentials (CLI exit code 3)."""


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """One attempt of one intent, with what the tags must say."""

    intent_id: str
    pool: str
    attempt: Attempt
    expires_at: datetime
    dry_run: bool = False


class CapacityProvider(Protocol):
    """See the module docstring for the properties every implementation has."""

    @property
    def cluster(self) -> str:
        """The value of the operatord.io/cluster tag this provider owns."""
        ...

    def list_instances(self) -> Sequence[CloudInstance]:
        """Tagged instances of this cluster that are not long terminated (pending to shutting-down)."""
        ...

    def launch(self, request: LaunchRequest) -> LaunchResult: ...

    def terminate(self, instance_ids: Sequence[str], *, dry_run: bool = False) -> None:
        """Terminate; unknown or already terminated ids are fine (idempotent)."""
        ...

    def vcpu_quota(self) -> int | None:
        """The regional on-demand vCPU quota for the burst family, or None when unknown."""
        ...
