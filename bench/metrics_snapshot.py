"""Benchmark: one `PromMetrics.snapshot` at a small and a large fleet, on a real local Prometheus.

Not a test. Starts Debian's prometheus scraping the fake DCGM/vLLM exporter, times snapshots at
`--small` nodes, grows the fleet to `--large` nodes (8 GPUs each), and times them again. The
baseline, measured in the same run against the same server, is the instant query `vector(1)`
issued as many times as one snapshot issues queries (pure request overhead). Prints the query
count (it must not grow), milliseconds per snapshot, and ratios against the baseline and between
the two fleet sizes.

    .venv/bin/python bench/metrics_snapshot.py                    # 8 and 256 nodes
    .venv/bin/python bench/metrics_snapshot.py --small 4 --large 64

Required (issue 5): the same number of queries at both sizes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from prometheus_api_client import PrometheusConnect

from operatord.adapters.prometheus import PromMetrics
from operatord.policies.model import MetricsPolicy
from operatord.testing.prometheus_server import FakeExporter, PrometheusServer


def timed(fn: object, repeat: int) -> float:
    """Median wall milliseconds of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=8)
    parser.add_argument("--large", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    exporter = FakeExporter()
    for m in range(4):
        exporter.vllm_model(f"model-{m}", waiting=3, running=5, generation_tokens_per_s=100, requests_per_s=2)
    for n in range(args.small):
        exporter.dcgm_node(f"node-{n:04d}")
    policy = MetricsPolicy()
    with PrometheusServer(exporter=exporter, scrape_interval_s=1.0) as prom:
        client = PrometheusConnect(url=prom.url)
        source = PromMetrics(prom.url, policy)
        queries = source.snapshot(datetime.now(UTC)).queries
        baseline = timed(lambda: [client.custom_query("vector(1)") for _ in range(queries)], args.repeat)
        small = timed(lambda: source.snapshot(datetime.now(UTC)), args.repeat)
        small_q = source.snapshot(datetime.now(UTC))

        for n in range(args.small, args.large):
            exporter.dcgm_node(f"node-{n:04d}")
        prom.wait_for(
            lambda: len(source.snapshot(datetime.now(UTC)).nodes) == args.large, "the large fleet", 120
        )
        large = timed(lambda: source.snapshot(datetime.now(UTC)), args.repeat)
        large_q = source.snapshot(datetime.now(UTC))

    print(f"baseline: {queries} × `vector(1)`           {baseline:8.1f} ms")
    print(
        f"snapshot, {len(small_q.nodes):4d} nodes: {small_q.queries} queries  {small:8.1f} ms  "
        f"{small / baseline:5.2f}x baseline"
    )
    print(
        f"snapshot, {len(large_q.nodes):4d} nodes: {large_q.queries} queries  {large:8.1f} ms  "
        f"{large / baseline:5.2f}x baseline"
    )
    print(
        f"large / small: {large / small:.2f}x time for {args.large / args.small:.0f}x nodes; "
        f"queries {'constant' if small_q.queries == large_q.queries else 'GREW (bug)'}"
    )
    if small_q.queries != large_q.queries:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
