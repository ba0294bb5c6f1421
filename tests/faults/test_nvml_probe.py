"""The NVML probe: the real adapter code over recorded NVML return values, judged by the pure core."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from operatord.adapters.nvml import NvmlProbe, NvmlUnavailable
from operatord.core.faults.probe import judge

FIXTURES = Path(__file__).with_name("fixtures") / "nvml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


class RecordedNvml:
    """Quacks like the pynvml module, answering from a fixture file."""

    NVMLError = FakeNVMLError
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_VOLATILE_ECC = 0
    NVML_FEATURE_ENABLED = 1

    def __init__(self, fixture: dict[str, Any]) -> None:
        self.f = fixture
        self.shutdown = False

    def _val(self, v: Any) -> Any:
        if isinstance(v, dict) and "error" in v:
            raise FakeNVMLError(v["error"])
        return v

    def nvmlInit(self) -> None:
        if "initError" in self.f:
            raise FakeNVMLError(self.f["initError"])

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.f["driver"]

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.f["cuda"]

    def nvmlDeviceGetCount(self) -> int:
        return len(self.f["gpus"])

    def nvmlDeviceGetHandleByIndex(self, i: int) -> dict[str, Any]:
        g = self.f["gpus"][i]
        if "handleError" in g:
            raise FakeNVMLError(g["handleError"])
        return g

    def nvmlDeviceGetPciInfo(self, h: dict[str, Any]) -> Any:
        return type("Pci", (), {"busId": h["busId"].encode()})()

    def nvmlDeviceGetName(self, h: dict[str, Any]) -> str:
        return h["name"]

    def nvmlDeviceGetTotalEccErrors(self, h: dict[str, Any], kind: int, counter: int) -> int:
        return self._val(h["eccUncorrectedVolatile"])

    def nvmlDeviceGetRemappedRows(self, h: dict[str, Any]) -> tuple[int, int, int, int]:
        return tuple(self._val(h["remappedRows"]))  # type: ignore[return-value]

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: dict[str, Any]) -> int:
        return h["pcieGen"]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: dict[str, Any]) -> int:
        return h["pcieGenMax"]

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: dict[str, Any]) -> int:
        return h["pcieWidth"]

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: dict[str, Any]) -> int:
        return h["pcieWidthMax"]

    def nvmlDeviceGetNvLinkState(self, h: dict[str, Any], link: int) -> int:
        if link >= len(h["nvlinks"]):
            raise FakeNVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT past the last link
        return h["nvlinks"][link]

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: dict[str, Any]) -> int:
        return h["clocksEventReasons"]


def probe(name: str) -> tuple[Any, RecordedNvml]:
    fake = RecordedNvml(json.loads((FIXTURES / name).read_text()))
    return NvmlProbe(fake), fake


def verdict(name: str, expected: int | None = 8) -> Any:
    p, _ = probe(name)
    return judge(p.read(), node="gpu-a17", now=NOW, expected_gpus=expected)


def test_healthy_node() -> None:
    p, fake = probe("healthy-a100x8.json")
    reading = p.read()
    assert (len(reading.gpus), reading.driver, reading.cuda) == (8, "550.90.07", "12.4")
    assert reading.gpus[0].bus_id == "00000000:07:00.0"
    assert reading.gpus[0].nvlinks_total == 12
    v = judge(reading, node="gpu-a17", now=NOW, expected_gpus=8)
    assert (v.findings, v.healthy, dict(v.versions)) == ((), True, {"driver": "550.90.07", "cuda": "12.4"})
    p.close()
    assert fake.shutdown


def test_gpu_lost_after_xid79() -> None:
    v = verdict("gpu-lost-after-xid79.json")
    assert [(f.rule, f.class_.value, f.node_fault) for f in v.findings] == [
        ("probe-gpu-lost", "nvml_error", True)
    ]
    assert not v.healthy


def test_missing_gpu_without_any_log_line() -> None:
    v = verdict("seven-of-eight.json")
    assert [(f.rule, f.class_.value, f.action.value) for f in v.findings] == [
        ("probe-gpu-count", "gpu_fallen_off_bus", "reboot")
    ]
    assert verdict("seven-of-eight.json", expected=None).healthy


def test_degraded_mix() -> None:
    v = verdict("degraded-mix.json")
    got = sorted((f.gpu, f.rule, f.node_fault) for f in v.findings)
    assert got == [
        ("0000:47:00.0", "probe-ecc-uncorrected", True),
        ("0000:47:00.0", "probe-row-remap-failure", True),
        ("0000:4e:00.0", "probe-row-remap-pending", False),
        ("0000:90:00.0", "probe-nvlink-down", True),
        ("0000:b7:00.0", "probe-pcie-width", False),
        ("0000:bd:00.0", "probe-hw-slowdown", False),
    ]
    assert not v.healthy


def test_library_mismatch_is_a_finding_not_an_exception() -> None:
    v = verdict("driver-library-mismatch.json")
    assert [(f.class_.value, f.node_fault) for f in v.findings] == [("driver_library_mismatch", True)]


@pytest.mark.parametrize("code", [9, 12])
def test_no_driver_or_library_means_no_probe(code: int) -> None:
    with pytest.raises(NvmlUnavailable):
        NvmlProbe(RecordedNvml({"initError": code, "gpus": []}))


def test_open_matches_this_machine() -> None:
    """Without an NVIDIA driver the real pynvml says unavailable; with one, the probe reads GPUs."""
    if Path("/dev/nvidiactl").exists():
        reading = NvmlProbe.open().read()
        assert reading.error is None
        assert reading.gpus
    else:
        with pytest.raises(NvmlUnavailable):
            NvmlProbe.open()
