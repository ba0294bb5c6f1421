"""bench/tick runs end to end at a tiny size and prints every figure (real sizes are run by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_tick_runs_and_prints_every_figure() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "tick.py"),
            "--nodes",
            "60",
            "--pods",
            "600",
            "--repeat",
            "1",
            "--faulty",
            "10",
            "--baseline-nodes",
            "10",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for needle in (
        "60 nodes, 480 GPUs, 600 pods",
        "decide():",
        "baseline:",
        "ratio baseline/decide",
        "peak",
        "goal",
    ):
        assert needle in proc.stdout
