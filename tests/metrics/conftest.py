"""Fixtures for metrics tests: one real Prometheus per session scraping a fake DCGM/vLLM/SGLang exporter.

The scenario is set before Prometheus starts (so the first scrape, ~5 s after start, has it all):
each node and model exercises one trap. Tests read it through the adapter under test, or through
the real CLI in a subprocess. Prometheus start-ups are few: this one (session), plus cheap
no-scrape ones (ready in well under a second) for outage and backfill tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
import yaml

from operatord.policies.model import MetricsPolicy
from operatord.testing.prometheus_server import FakeExporter, PrometheusServer

REPO = Path(__file__).resolve().parents[2]
SCRAPE_S = 0.1
RATE_WINDOW = "2s"
STALE_LIMIT_S = 30.0
POLICY_MODELS = (
    "llama-underscore",
    "llama-colon",
    "llama-legacy",
    "qwen-sglang",
    "idle-model",
    "absent-model",
)


@dataclass(frozen=True)
class Live:
    prom: PrometheusServer
    exporter: FakeExporter
    policy: MetricsPolicy

    @property
    def url(self) -> str:
        return self.prom.url


def metrics_policy(**overrides: object) -> MetricsPolicy:
    base: dict[str, object] = {
        "rate_window": RATE_WINDOW,
        "staleness_limit": f"{STALE_LIMIT_S:.0f}s",
        "query_timeout": "5s",
    }
    return MetricsPolicy.model_validate({**base, **overrides})


def seed(exporter: FakeExporter) -> None:
    """One node or model per trap (see the names)."""
    exporter.dcgm_node(
        "gpu-upper",
        gpus=8,
        active=0.6,
        util_pct=99,
        fb_used_mib=30_000,
        fb_free_mib=10_000,
        temperature_c=65,
        power_w=350,
        per_gpu={2: {"fb_used_mib": 38_000, "fb_free_mib": 2_000}},
        extra_labels={"DCGM_FI_DRIVER_VERSION": "550.54.15"},
    )
    exporter.dcgm_node(
        "gpu-lower",
        gpus=4,
        host_label="hostname",
        active=None,
        util_pct=80,
        per_gpu={3: {"xid": 79, "row_remap_failure": 1, "temperature_c": 91}},
        extra_labels={"DCGM_FI_DRIVER_VERSION": "535.104.05"},
    )
    exporter.dcgm_node("gpu-nan", gpus=2, active=math.nan, util_pct=math.nan, temperature_c=math.nan)
    exporter.dcgm_node("gpu-stale", gpus=2, at=time.time() - 2 * STALE_LIMIT_S)
    exporter.dcgm_node("dcgm-pod-7f9c", gpus=1, extra_labels={"node": "k8s-node-7"})
    exporter.vllm_model(
        "llama-underscore",
        waiting=4,
        running=6,
        kv_cache=0.42,
        prompt_tokens_per_s=300,
        generation_tokens_per_s=120,
        requests_per_s=5,
        aborted_per_s=1,
        ttft_s=0.2,
        e2e_s=3.0,
    )
    exporter.vllm_model(
        "llama-colon",
        waiting=2,
        running=3,
        kv_cache=0.25,
        generation_tokens_per_s=50,
        requests_per_s=1,
        spelling="colon",
        pod="vllm-colon-0",
    )
    exporter.vllm_model(
        "llama-legacy", waiting=1, kv_cache=None, legacy_kv_cache=0.66, requests_per_s=1, pod="vllm-legacy-0"
    )
    exporter.sglang_model(
        "qwen-sglang",
        waiting=7,
        running=9,
        token_usage=0.3,
        prompt_tokens_per_s=80,
        generation_tokens_per_s=50,
        requests_per_s=2,
        aborted_per_s=0.5,
    )
    exporter.vllm_model("idle-model", waiting=0, running=0, kv_cache=0.0, requests_per_s=0, pod="vllm-idle-0")


@pytest.fixture(autouse=True)
def _plain_structlog() -> None:
    """The adapter logs outages; a structlog config left by another test (e.g. bound to a closed
    capture stream) must not turn a warning into an error here."""
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    exporter = FakeExporter()
    seed(exporter)
    prom = PrometheusServer(exporter=exporter, scrape_interval_s=SCRAPE_S)
    prom.start()
    try:
        # Rates need the 2 s window covered by scrapes: wait for enough of them (poll, never sleep).
        prom.wait_scraped(scrapes=int(2.0 / SCRAPE_S) + 5)
        yield Live(prom, exporter, metrics_policy())
    finally:
        prom.stop()


def write_policy(path: Path, **extra: object) -> Path:
    """A Policy whose served models are the scenario's, with the shipped fault rules."""
    body: dict[str, object] = {
        "apiVersion": "operatord.io/v1",
        "kind": "Policy",
        "cluster": "test",
        "pools": [{"name": "local-a100", "kind": "local", "gpu_type": "A100-SXM4-40GB"}],
        "serving": {
            "models": [
                {
                    "name": name,
                    "workload": {"kind": "Deployment", "namespace": "llm", "name": name},
                    "profiles": [
                        {
                            "gpu_type": "A100-SXM4-40GB",
                            "gpus_per_replica": 8,
                            "tokens_per_s_per_replica": 2400,
                        }
                    ],
                }
                for name in POLICY_MODELS
            ]
        },
        "faults": {"rules": [f"{REPO}/policies/faults/*.yaml"]},
        "metrics": {
            "rate_window": RATE_WINDOW,
            "staleness_limit": f"{STALE_LIMIT_S:.0f}s",
            "query_timeout": "5s",
        },
        **extra,
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write_policy(tmp_path / "policy.yaml")
