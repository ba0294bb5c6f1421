"""The scan benchmark runs end to end at a tiny size (the real sizes are run by hand, not in CI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_scan_runs_and_prints_every_figure(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scan.py"), "--lines", "3000", "6000", "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("MB/s", "M lines/s", "peak RSS", "end-to-end ratio", "marginal ratio"):
        assert needle in out
    # every generated file has fault blocks and the scan found some of them
    assert all(int(n) > 0 for n in re.findall(r"\((\d+) fault blocks", out))
    assert all(int(n) > 0 for n in re.findall(r"scan findings (\d+)\)", out))
