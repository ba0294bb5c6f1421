"""Pure. Judging an NVML reading of the node's GPUs: what a log cannot say.

A GPU can vanish without a log line (NVSentinel#684), a row remap can fail silently, links
can train down. The NVML adapter (operatord/adapters/nvml.py) reads; `judge` turns a reading
into findings with the same shape as log findings (rule ids `probe-…`, source `nvml`), and
says whether the reading is *healthy*: every expected GPU present and none with a node fault,
which lets the agent clear GPUHealthy before the quiet period ends (after a reset or reboot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from operatord.core.faults.classify import normalize_gpu
from operatord.core.findings import Finding
from operatord.vocab import FaultAction, FaultClass, Severity

# nvmlClocksEventReasons bits that mean the hardware itself is slowing the GPU down
# (nvml.h: HwSlowdown 0x8, HwThermalSlowdown 0x40, HwPowerBrakeSlowdown 0x80); SW power cap
# and idle are routine and ignored.
THROTTLE_HW_SLOWDOWN = 0x8
THROTTLE_HW_THERMAL = 0x40
THROTTLE_HW_POWER_BRAKE = 0x80
HW_THROTTLE_MASK = THROTTLE_HW_SLOWDOWN | THROTTLE_HW_THERMAL | THROTTLE_HW_POWER_BRAKE


@dataclass(frozen=True, slots=True)
class GpuReading:
    index: int
    bus_id: str
    name: str = ""
    error: str | None = None  # NVML could not read this GPU (e.g. "GPU is lost")
    ecc_uncorrected_volatile: int | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    pcie_width: int | None = None
    pcie_width_max: int | None = None
    pcie_gen: int | None = None
    pcie_gen_max: int | None = None
    nvlinks_total: int = 0
    nvlinks_down: tuple[int, ...] = ()
    throttle_reasons: int | None = None


@dataclass(frozen=True, slots=True)
class ProbeReading:
    gpus: tuple[GpuReading, ...] = ()
    driver: str | None = None
    cuda: str | None = None
    error: str | None = None  # NVML itself failed (init, library mismatch)


@dataclass(frozen=True, slots=True)
class ProbeVerdict:
    findings: tuple[Finding, ...]
    healthy: bool
    versions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def judge(reading: ProbeReading, *, node: str, now: datetime, expected_gpus: int | None) -> ProbeVerdict:
    """Findings for everything wrong in `reading`; healthy when nothing is the node's fault."""
    out: list[Finding] = []

    def add(
        rule: str,
        cls: FaultClass,
        node_fault: bool,
        severity: Severity,
        action: FaultAction,
        text: str,
        gpu: str | None = None,
    ) -> None:
        out.append(
            Finding(
                node=node,
                source="nvml",
                line=0,
                time=now,
                class_=cls,
                node_fault=node_fault,
                severity=severity,
                action=action,
                rule=rule,
                text=text,
                gpu=gpu,
                first_seen=now,
                last_seen=now,
            )
        )

    versions = {k: v for k, v in (("driver", reading.driver), ("cuda", reading.cuda)) if v}
    if reading.error is not None:
        mismatch = "mismatch" in reading.error.lower()
        add(
            "probe-nvml-init",
            FaultClass.DRIVER_LIBRARY_MISMATCH if mismatch else FaultClass.NVML_ERROR,
            True,
            Severity.FATAL,
            FaultAction.REBOOT,
            f"NVML: {reading.error}",
        )
        return ProbeVerdict(tuple(out), False, MappingProxyType(versions))
    if expected_gpus is not None and len(reading.gpus) < expected_gpus:
        add(
            "probe-gpu-count",
            FaultClass.GPU_FALLEN_OFF_BUS,
            True,
            Severity.FATAL,
            FaultAction.REBOOT,
            f"NVML sees {len(reading.gpus)} GPUs, {expected_gpus} expected",
        )
    for g in reading.gpus:
        gpu = normalize_gpu(g.bus_id)
        where = f"GPU {g.index} ({gpu})"
        if g.error is not None:
            add(
                "probe-gpu-lost",
                FaultClass.NVML_ERROR,
                True,
                Severity.FATAL,
                FaultAction.REBOOT,
                f"NVML: {where}: {g.error}",
                gpu,
            )
            continue
        if g.remap_failure:
            add(
                "probe-row-remap-failure",
                FaultClass.GPU_ROW_REMAP_FAILURE,
                True,
                Severity.FATAL,
                FaultAction.DRAIN,
                f"{where}: row remapping failure occurred",
                gpu,
            )
        if g.ecc_uncorrected_volatile:
            add(
                "probe-ecc-uncorrected",
                FaultClass.GPU_ECC_UNCORRECTABLE,
                True,
                Severity.FATAL,
                FaultAction.RESET_GPU,
                f"{where}: {g.ecc_uncorrected_volatile} uncorrectable ECC errors (volatile)",
                gpu,
            )
        elif g.remap_pending:
            add(
                "probe-row-remap-pending",
                FaultClass.GPU_ROW_REMAP_FAILURE,
                False,
                Severity.INFO,
                FaultAction.NONE,
                f"{where}: row remap pending (reset at the next convenience)",
                gpu,
            )
        if g.nvlinks_down:
            links = ", ".join(str(n) for n in g.nvlinks_down)
            add(
                "probe-nvlink-down",
                FaultClass.GPU_NVLINK_ERROR,
                True,
                Severity.FATAL,
                FaultAction.RESET_GPU,
                f"{where}: NVLink(s) {links} of {g.nvlinks_total} inactive",
                gpu,
            )
        if g.pcie_width is not None and g.pcie_width_max and g.pcie_width < g.pcie_width_max:
            add(
                "probe-pcie-width",
                FaultClass.GPU_XID_OTHER_HW,
                False,
                Severity.DEGRADED,
                FaultAction.NONE,
                f"{where}: PCIe link x{g.pcie_width} of x{g.pcie_width_max} (trained down)",
                gpu,
            )
        if g.throttle_reasons and g.throttle_reasons & HW_THROTTLE_MASK:
            add(
                "probe-hw-slowdown",
                FaultClass.THERMAL_OR_POWER,
                False,
                Severity.DEGRADED,
                FaultAction.NONE,
                f"{where}: hardware slowdown active (clocks event reasons 0x{g.throttle_reasons:x})",
                gpu,
            )
    healthy = not any(f.node_fault for f in out)
    return ProbeVerdict(tuple(out), healthy, MappingProxyType(versions))
