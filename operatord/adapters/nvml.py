"""Adapter: NVML (nvidia-ml-py) → a ProbeReading of this node's GPUs; judging is pure (core/faults/probe.py).

Reads per GPU: PCI bus id, volatile uncorrectable ECC count, row-remapper state, PCIe link
generation/width (current and max), NVLink states, clocks-event (throttle) reasons. Calls a
GPU does not support (NVML_ERROR_NOT_SUPPORTED) read as unknown; a GPU NVML has lost
(NVML_ERROR_GPU_IS_LOST, after Xid 79) is reported as such; a driver/library version mismatch
at init is a reading with an error, not an exception, because it *is* the finding.

The NVML module is injected (`NvmlProbe(nvml=...)`), so tests replay recorded return values
(tests/faults/fixtures/nvml/*.json) through the same code; `NvmlProbe.open()` uses pynvml.
"""

from __future__ import annotations

import contextlib
from typing import Any

from operatord.core.faults.probe import GpuReading, ProbeReading

# NVML return codes (nvml.h) this adapter distinguishes
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
MAX_NVLINKS = 18  # NVLink links per GPU on A100/H100 (NVML_NVLINK_MAX_LINKS is larger on newer headers)


class NvmlUnavailable(Exception):
    """No NVML on this machine (library or driver missing): the probe is off, not failing."""


class NvmlProbe:
    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._init_error: str | None = None
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            code = getattr(err, "value", None)
            if code in (NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_DRIVER_NOT_LOADED):
                raise NvmlUnavailable(f"NVML unavailable: {err}") from None
            self._init_error = _mismatch_text(code, err)

    @classmethod
    def open(cls) -> NvmlProbe:
        try:
            import pynvml  # noqa: PLC0415 - only nodes with a probe load NVML
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise NvmlUnavailable(f"nvidia-ml-py is not installed ({err})") from None
        return cls(pynvml)

    def read(self) -> ProbeReading:
        n = self._nvml
        if self._init_error is not None:
            return ProbeReading(error=self._init_error)
        try:
            driver = _text(n.nvmlSystemGetDriverVersion())
            cuda_raw = self._optional(n.nvmlSystemGetCudaDriverVersion)
            count = n.nvmlDeviceGetCount()
        except n.NVMLError as err:
            return ProbeReading(error=_mismatch_text(getattr(err, "value", None), err))
        cuda = f"{cuda_raw // 1000}.{cuda_raw % 1000 // 10}" if isinstance(cuda_raw, int) else None
        gpus = tuple(self._gpu(i) for i in range(count))
        return ProbeReading(gpus=gpus, driver=driver, cuda=cuda)

    def _gpu(self, index: int) -> GpuReading:
        n = self._nvml
        try:
            h = n.nvmlDeviceGetHandleByIndex(index)
            bus_id = _text(n.nvmlDeviceGetPciInfo(h).busId)
        except n.NVMLError as err:
            return GpuReading(index=index, bus_id=str(index), error=_gpu_error(err))
        try:
            name = _text(n.nvmlDeviceGetName(h))
            ecc = self._optional(
                n.nvmlDeviceGetTotalEccErrors, h, n.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, n.NVML_VOLATILE_ECC
            )
            remap = self._optional(n.nvmlDeviceGetRemappedRows, h)
            links = self._nvlinks(h)
            reasons_fn = (
                getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None)
                or n.nvmlDeviceGetCurrentClocksThrottleReasons
            )
            return GpuReading(
                index=index,
                bus_id=bus_id,
                name=name,
                ecc_uncorrected_volatile=ecc if isinstance(ecc, int) else None,
                remap_pending=bool(remap[2]) if remap is not None else None,
                remap_failure=bool(remap[3]) if remap is not None else None,
                pcie_gen=self._optional(n.nvmlDeviceGetCurrPcieLinkGeneration, h),
                pcie_gen_max=self._optional(n.nvmlDeviceGetMaxPcieLinkGeneration, h),
                pcie_width=self._optional(n.nvmlDeviceGetCurrPcieLinkWidth, h),
                pcie_width_max=self._optional(n.nvmlDeviceGetMaxPcieLinkWidth, h),
                nvlinks_total=len(links),
                nvlinks_down=tuple(i for i, up in links if not up),
                throttle_reasons=self._optional(reasons_fn, h),
            )
        except n.NVMLError as err:
            return GpuReading(index=index, bus_id=bus_id, error=_gpu_error(err))

    def _nvlinks(self, handle: Any) -> list[tuple[int, bool]]:
        """(link, active) for every link the GPU has; links past the last one raise INVALID_ARGUMENT."""
        n = self._nvml
        out = []
        for link in range(MAX_NVLINKS):
            try:
                state = n.nvmlDeviceGetNvLinkState(handle, link)
            except n.NVMLError as err:
                if getattr(err, "value", None) in (NVML_ERROR_INVALID_ARGUMENT, NVML_ERROR_NOT_SUPPORTED):
                    break
                raise
            out.append((link, state == n.NVML_FEATURE_ENABLED))
        return out

    def _optional(self, fn: Any, *args: Any) -> Any:
        """A value the GPU may not support: None instead of NOT_SUPPORTED; other errors propagate."""
        try:
            return fn(*args)
        except self._nvml.NVMLError as err:
            if getattr(err, "value", None) == NVML_ERROR_NOT_SUPPORTED:
                return None
            raise

    def close(self) -> None:
        if self._init_error is None:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _gpu_error(err: Exception) -> str:
    if getattr(err, "value", None) == NVML_ERROR_GPU_IS_LOST:
        return "GPU is lost"
    return str(err)


def _mismatch_text(code: Any, err: Exception) -> str:
    if code == NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return "Driver/library version mismatch"
    return str(err)
