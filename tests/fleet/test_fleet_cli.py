"""`operatord fleet versions` through the real CLI against the harness's Kubernetes API stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from operatord.testing import kubeobjects as k
from operatord.testing.harness import Harness, write_kubeconfig

from .test_fleet import GFD, INFO

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "policies" / "default.yaml")


def gpu_node(
    name: str, driver: str = "545.23.08", count: str = "8", kernel: str = INFO["kernelVersion"]
) -> dict:
    major, minor, rev = driver.split(".")
    obj = k.node(
        name,
        labels={
            **GFD,
            "nvidia.com/cuda.driver.major": major,
            "nvidia.com/cuda.driver.minor": minor,
            "nvidia.com/cuda.driver.rev": rev,
            "nvidia.com/gpu.count": count,
        },
    )
    obj["status"]["nodeInfo"] = {**INFO, "kernelVersion": kernel}
    return obj


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with Harness() as h:
        for i in range(3):
            h.kube.create(gpu_node(f"gpu-{i}"))
        h.kube.create(gpu_node("gpu-old", driver="535.104.05"))
        h.kube.create(gpu_node("gpu-lost", count="7"))
        yield h


def test_json_names_the_outliers_and_what_differs(harness: Harness) -> None:
    result = harness.cli("--policy", POLICY, "fleet", "versions", "-o", "json")
    assert result.returncode == 1, result.stderr
    body = json.loads(result.stdout)
    assert body["schema_version"] == 1
    assert body["outliers"] == ["gpu-lost", "gpu-old"]
    (pool, burst) = body["pools"]
    assert pool["name"] == "local-a100"
    assert pool["reference"]["driver"] == {
        "accepted": ["545.23.08"],
        "source": "majority",
        "detail": "4 of 5 nodes",
    }
    old = next(n for n in pool["nodes"] if n["node"] == "gpu-old")
    assert old["differences"] == [
        {"component": "driver", "have": "535.104.05", "want": ["545.23.08"], "source": "majority"}
    ]
    lost = next(n for n in pool["nodes"] if n["node"] == "gpu-lost")
    assert (lost["gpus_advertised"], lost["gpus_expected"]) == (7, 8)
    assert burst["nodes"] == []


def test_table_marks_outliers(harness: Harness) -> None:
    result = harness.cli("--policy", POLICY, "fleet", "versions")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("! gpu-old") and "driver 535.104.05 (pool: 545.23.08, majority)" in line
        for line in lines
    )
    assert any(line.startswith("  gpu-0") for line in lines)
    assert lines[-1] == "2 outlier(s): gpu-lost, gpu-old"


def test_consistent_fleet_exits_0(tmp_path: Path) -> None:
    with Harness() as h:
        for i in range(3):
            h.kube.create(gpu_node(f"gpu-{i}"))
        result = h.cli("--policy", POLICY, "fleet", "versions")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "0 outlier(s)"


def test_api_unreachable_is_exit_3(harness: Harness, tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")  # nothing listens there
    result = harness.cli("--policy", POLICY, "fleet", "versions", env={"KUBECONFIG": str(config)})
    assert result.returncode == 3
    assert "Traceback" not in result.stderr


def test_status_shows_the_skew(harness: Harness) -> None:
    table = harness.cli("--policy", POLICY, "status")
    assert table.returncode == 0, table.stderr
    assert "version skew: gpu-old (local-a100): driver 535.104.05 (pool: 545.23.08, majority)" in table.stdout
    body = json.loads(harness.cli("--policy", POLICY, "status", "-o", "json").stdout)
    assert body["fleet"]["outliers"] == ["gpu-lost", "gpu-old"]


def test_driver_from_dcgm_when_gfd_labels_are_missing() -> None:
    from operatord.testing.prometheus_server import FakeExporter, PrometheusServer

    exporter = FakeExporter()
    no_gfd = {
        "nvidia.com/cuda.driver.major": "",
        "nvidia.com/cuda.driver.minor": "",
        "nvidia.com/cuda.driver.rev": "",
    }
    prom = PrometheusServer(exporter=exporter, scrape_interval_s=0.2)
    with Harness(prom) as h:
        for i, driver in enumerate(["550.54.15", "550.54.15", "550.54.15", "535.104.05"]):
            obj = gpu_node(f"gpu-{i}")
            obj["metadata"]["labels"].update(no_gfd)
            h.kube.create(obj)
            exporter.dcgm_node(f"gpu-{i}", gpus=8, extra_labels={"DCGM_FI_DRIVER_VERSION": driver})
        prom.wait_scraped()
        result = h.cli("--policy", POLICY, "fleet", "versions", "-o", "json")
        assert result.returncode == 1, result.stdout + result.stderr
        body = json.loads(result.stdout)
        assert body["outliers"] == ["gpu-3"]
        assert body["unknown"] == []
        down = h.cli(
            "--policy", POLICY, "--prometheus-url", "http://127.0.0.1:9", "fleet", "versions", "-o", "json"
        )
    assert down.returncode == 3
    assert json.loads(down.stdout)["unknown"][0].startswith(
        "driver versions from Prometheus http://127.0.0.1:9"
    )
