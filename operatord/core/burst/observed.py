"""Pure. What the shell observed about burst capacity: cloud instances and their Kubernetes nodes.

These are the inputs of reconcile; the CapacityProvider port returns `CloudInstance`s and the
ClusterApi side is summarised into `NodeView`s, so the core never sees an SDK type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from operatord.core.burst.intent import AttemptOutcome

# EC2 instance-state names (pending, running, shutting-down, terminated, stopping, stopped).
GONE_STATES = frozenset({"shutting-down", "terminated"})
STOPPED_STATES = frozenset({"stopping", "stopped"})


@dataclass(frozen=True, slots=True)
class CloudInstance:
    """One instance tagged `managed-by=operatord` for this cluster, as the provider lists it."""

    instance_id: str
    instance_type: str
    availability_zone: str
    state: str
    launched_at: datetime
    intent_id: str | None  # the operatord.io/intent tag; None when the tag is missing
    expires_at: datetime | None = None  # the operatord.io/expires-at tag
    subnet: str | None = None
    client_token: str | None = None

    @property
    def gone(self) -> bool:
        return self.state in GONE_STATES


@dataclass(frozen=True, slots=True)
class NodeView:
    """The Kubernetes Node of a burst instance (found by label operatord.io/instance-id)."""

    name: str
    instance_id: str
    ready: bool
    gpus_allocatable: int
    serving_pods: int  # Ready serving pods on the node
    unschedulable: bool = False
    stack_consistent: bool = True  # False: its GPU stack differs from the pool's (never marked serving)


@dataclass(frozen=True, slots=True)
class LaunchResult:
    """What one RunInstances attempt came to, as the CapacityProvider classified it."""

    outcome: AttemptOutcome
    instances: tuple[CloudInstance, ...] = ()
    code: str | None = None
    message: str = ""


# EC2 error codes by what operatord does about them (research/autoscaling.md §3.3). Shared by the
# EC2 adapter and the fake capacity provider so both classify identically.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "ReservationCapacityExceeded",
        "UnfulfillableCapacity",
        "Unsupported",  # the type is not offered in that AZ: skip the offering like an ICE
        "InsufficientFreeAddressesInSubnet",  # the subnet is full: another AZ's subnet may not be
        "MaxSpotInstanceCountExceeded",
    }
)
QUOTA_CODES = frozenset({"VcpuLimitExceeded", "InstanceLimitExceeded"})
THROTTLE_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
TRANSIENT_CODES = frozenset(
    {"InternalError", "InternalFailure", "ServerInternal", "Unavailable", "ServiceUnavailable"}
)


def classify_code(code: str) -> AttemptOutcome:
    """Outcome class of an EC2 error code; unknown codes are configuration errors (fail the plan,
    never retry blindly: InvalidParameterCombination, UnauthorizedOperation, InvalidAMIID.*,
    IdempotentParameterMismatch, ...)."""
    if code in CAPACITY_CODES:
        return AttemptOutcome.CAPACITY
    if code in QUOTA_CODES:
        return AttemptOutcome.QUOTA
    if code in THROTTLE_CODES or code in TRANSIENT_CODES:
        return AttemptOutcome.TRANSIENT
    if code == "DryRunOperation":
        return AttemptOutcome.DRY_RUN
    return AttemptOutcome.CONFIG
