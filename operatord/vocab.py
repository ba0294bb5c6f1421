"""Leaf vocabulary: stable names shared by policies, core, adapters, runbooks and alerts.

Nothing here is ever renamed: reasons appear in Events, metrics, annotations and runbook file
names (`runbooks/<reason>.md`), so a rename would break dashboards and on-call muscle memory.
Deprecate instead.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """How far operatord may act (design §1.1). The policy's mode is a ceiling."""

    OBSERVE = "observe"
    CORDON_ONLY = "cordon-only"
    FULL = "full"

    @property
    def rank(self) -> int:
        return _MODE_RANK[self]

    def lowered_to(self, requested: Mode | None) -> Mode:
        """The effective mode when `requested` may only lower this one."""
        if requested is None or requested.rank >= self.rank:
            return self
        return requested


_MODE_RANK = {Mode.OBSERVE: 0, Mode.CORDON_ONLY: 1, Mode.FULL: 2}


class FaultClass(StrEnum):
    """Fault classes of research/faults.md §4; also the reasons of fault findings."""

    GPU_FALLEN_OFF_BUS = "gpu_fallen_off_bus"
    GPU_ECC_UNCORRECTABLE = "gpu_ecc_uncorrectable"
    GPU_ROW_REMAP_FAILURE = "gpu_row_remap_failure"
    GPU_NVLINK_ERROR = "gpu_nvlink_error"
    GPU_GSP_ERROR = "gpu_gsp_error"
    GPU_XID_OTHER_HW = "gpu_xid_other_hw"
    GPU_XID_APP = "gpu_xid_app"
    DRIVER_LIBRARY_MISMATCH = "driver_library_mismatch"
    NVML_ERROR = "nvml_error"
    NCCL_TIMEOUT = "nccl_timeout"
    NCCL_NETWORK_ERROR = "nccl_network_error"
    NCCL_CUDA_ERROR = "nccl_cuda_error"
    NCCL_INTERNAL_OR_USAGE = "nccl_internal_or_usage"
    IB_LINK_DOWN = "ib_link_down"
    FABRIC_MANAGER_ERROR = "fabric_manager_error"
    CUDA_ILLEGAL_MEMORY_ACCESS = "cuda_illegal_memory_access"
    CUDA_DEVICE_ASSERT = "cuda_device_assert"
    CUDA_OOM = "cuda_oom"
    CUDA_ECC_ERROR = "cuda_ecc_error"
    THERMAL_OR_POWER = "thermal_or_power"
    NONE = "none"

    @property
    def camel(self) -> str:
        """NodeCondition reason form (design §1.5): `gpu_fallen_off_bus` → `GpuFallenOffBus`."""
        return "".join(part.capitalize() for part in self.value.split("_"))


class Severity(StrEnum):
    FATAL = "fatal"
    DEGRADED = "degraded"
    APP = "app"
    INFO = "info"


class FaultAction(StrEnum):
    """What a finding asks for; operatord itself only cordons and drains (design §1.8)."""

    DRAIN = "drain"
    RESET_GPU = "reset_gpu"
    REBOOT = "reboot"
    CORDON = "cordon"
    RESTART_APP = "restart_app"
    NONE = "none"


class LogSourceKind(StrEnum):
    KMSG = "kmsg"
    JOURNALD = "journald"
    CONTAINER = "container"
    FABRICMANAGER = "fabricmanager"
    FILE = "file"


class Reason(StrEnum):
    """Reasons of guard, remediation and burst decisions (fault reasons are `FaultClass`)."""

    BREAKER_OPEN = "breaker_open"
    PAUSED = "paused"
    FLEET_SICK = "fleet_sick"
    FLEET_EVENT = "fleet_event"
    DRAIN_BUDGET = "drain_budget"
    DRAIN_SPACING = "drain_spacing"
    MIN_HEALTHY_CAPACITY = "min_healthy_capacity"
    AWAITING_CAPACITY = "awaiting_capacity"
    ESCALATED = "escalated"
    HUMAN_CORDON = "human_cordon"
    HUMAN_UNCORDON = "human_uncordon"
    NODE_RECOVERED = "node_recovered"
    DEMAND_OVER_SUPPLY = "demand_over_supply"
    SUPPLY_OVER_DEMAND = "supply_over_demand"
    COOLDOWN = "cooldown"
    BURST_CEILING = "burst_ceiling"
    SPEND_CAP = "spend_cap"
    QUOTA_EXHAUSTED = "quota_exhausted"
    NO_CAPACITY = "no_capacity"
    LAUNCH_TIMEOUT = "launch_timeout"
    REGISTER_TIMEOUT = "register_timeout"
    SERVING_TIMEOUT = "serving_timeout"
    INSTANCE_EXPIRED = "instance_expired"
    ORPHAN_INSTANCE = "orphan_instance"
    METRICS_UNKNOWN = "metrics_unknown"
    STALE_SNAPSHOT = "stale_snapshot"
    # burst lifecycle and scaling (issue 6)
    LAUNCH_REJECTED = "launch_rejected"  # EC2 refused the request itself (template, AMI, permissions)
    PARTIAL_LAUNCH = "partial_launch"  # fewer instances than a multi-node replica needs: rolled back
    STABILIZING = "stabilizing"  # the change has not held for the stabilization window yet
    CAPACITY_REQUEST = "capacity_request"  # remediation asked for replacement capacity before a drain
    HUMAN_REQUEST = "human_request"  # `operatord burst launch|terminate` by a person
    DRAIN_TIMEOUT = "drain_timeout"  # serving pods did not leave a burst node in time
    TERMINATE_TIMEOUT = "terminate_timeout"  # EC2 still reports an instance running after terminate
    NODE_LOST = "node_lost"  # a burst instance stopped or vanished, or its serving Node was deleted, outside operatord
    VERSION_SKEW = "version_skew"
    # node remediation (issue 4)
    TOLERATING = "tolerating"  # a non-fatal node fault inside its class's toleration window
    DRAIN_REFUSED = "drain_refused"  # pods kubectl drain would also refuse (unmanaged, emptyDir) per policy
    PDB_MISCONFIGURED = "pdb_misconfigured"  # eviction answered 500: e.g. several PDBs select one pod
    AWAITING_REPAIR = "awaiting_repair"  # drained and handed to a human (reset, reboot, RMA)
    MANUAL_DRAIN = "manual_drain"  # `operatord drain` by a person


# Kubernetes label, annotation and condition names (design §1.5, §1.9).
DOMAIN = "operatord.io"
LABEL_POOL = f"{DOMAIN}/pool"
LABEL_INSTANCE_ID = f"{DOMAIN}/instance-id"
LABEL_INTENT = f"{DOMAIN}/intent"
TAINT_BURST = f"{DOMAIN}/burst"
ANNOTATION_FINDINGS = f"{DOMAIN}/findings"
ANNOTATION_HISTORY = f"{DOMAIN}/history"
ANNOTATION_STACK = f"{DOMAIN}/stack"
ANNOTATION_CORDONED_BY = f"{DOMAIN}/cordoned-by"
ANNOTATION_CORDON_REASON = f"{DOMAIN}/cordon-reason"
ANNOTATION_CORDONED_AT = f"{DOMAIN}/cordoned-at"
CONDITION_GPU_HEALTHY = "GPUHealthy"
CONDITION_NCCL_HEALTHY = "NCCLHealthy"
CONDITION_STACK_CONSISTENT = "GPUStackConsistent"
STATE_CONFIGMAP = "operatord-state"
POLICY_CONFIGMAP = "operatord-policy"
INTENT_CONFIGMAP_PREFIX = "operatord-intent-"

# EC2 tags on every burst instance (design §1.5).
TAG_CLUSTER = f"{DOMAIN}/cluster"
TAG_INTENT = f"{DOMAIN}/intent"
TAG_MANAGED_BY = "managed-by"
TAG_MANAGED_BY_VALUE = "operatord"
TAG_EXPIRES_AT = f"{DOMAIN}/expires-at"
