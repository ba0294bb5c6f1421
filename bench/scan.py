"""Benchmark: `operatord faults scan` against `grep -E -c -f <the rules' prefilters>` on the same files.

Not a test. Generates realistic mixed logs (journald kernel lines and CRI container lines of a
vLLM/NCCL node, ~0.1 % fault lines taken from the labelled corpus, some of them multi-line),
then times both tools in this same run and prints MB/s, lines/s, peak RSS, the end-to-end ratio
per size and the marginal ratio between the two largest sizes (start-up cost cancels out).

    .venv/bin/python bench/scan.py                       # 1M and 10M lines (about 1.3 GB of logs)
    .venv/bin/python bench/scan.py --lines 20000 200000  # quick look

Required (issue 3): marginal ratio >= 1.0x grep; peak RSS flat from the smallest to the largest file.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FAULT_RATE = 0.001
POOL = 50_000  # distinct benign lines; the file is written from random slices of this pool

KERNEL = [
    "IPv6: ADDRCONF(NETDEV_CHANGE): eth{n}: link becomes ready",
    "mlx5_core 0000:{b:02x}:00.0 mlx5_{n}: Port: 1 Link ACTIVE",
    "nvidia-nvlink: Unregistered Nvlink Core, major device number {n}",
    "EXT4-fs (nvme{n}n1p1): mounted filesystem with ordered data mode. Quota mode: none.",
    "cali{h}: Link UP",
    "IPVS: rr: TCP 10.96.{n}.{b}:443 - no destination available",
    "NVRM: GPU at PCI:0000:{b:02x}:00: GPU-{h}-5c9e-1c09-cd37-d4dd60ea1b58",
    'audit: type=1400 audit({t}.123:{n}): apparmor="STATUS" operation="profile_load" name="cri-containerd.apparmor.d"',
    "TCP: request_sock_TCP: Possible SYN flooding on port {n}. Sending cookies.",
    "nvidia-persistenced[{n}]: Verbose syslog connection opened",
]
CONTAINER = [
    "INFO {md} {hm} [engine.py:310] Added request chatcmpl-{h}{h}.",
    "INFO {md} {hm} [metrics.py:455] Avg prompt throughput: {n}.{b} tokens/s, Avg generation throughput: {b}.{n} tokens/s, Running: {n} reqs, Swapped: 0 reqs, Pending: 0 reqs, GPU KV cache usage: {b}.{n}%, CPU KV cache usage: 0.0%.",
    'INFO:     10.0.{n}.{b}:{t} - "POST /v1/chat/completions HTTP/1.1" 200 OK',
    "gpu-a17:{n}:{t} [{g}] NCCL INFO Channel {b:02d}/0 : {g}[{g}] -> {n}[{n}] via P2P/CUMEM",
    "gpu-a17:{n}:{t} [{g}] NCCL INFO Connected all rings",
    "(VllmWorker rank={g} pid={t}) INFO {md} {hm} [custom_all_reduce.py:{n}] Registering {b} cuda graph addresses",
    "DEBUG {md} {hm} [scheduler.py:{n}] Scheduled {b} sequences, {n} tokens, KV blocks free: {t}",
]


def benign_pool(rng: random.Random) -> list[bytes]:
    out = []
    for i in range(POOL):
        fields = {
            "n": rng.randrange(1000),
            "b": rng.randrange(256),
            "g": rng.randrange(8),
            "t": rng.randrange(10**6),
            "h": f"{rng.getrandbits(32):08x}",
            "md": f"{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "hm": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}",
        }
        stamp = f"2026-01-{1 + i % 28:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        if rng.random() < 0.4:
            line = f"{stamp}.{rng.randrange(10**6):06d}+0000 gpu-a17 kernel: {rng.choice(KERNEL).format(**fields)}"
        else:
            line = f"{stamp}.{rng.randrange(10**9):09d}Z stdout F {rng.choice(CONTAINER).format(**fields)}"
        out.append(line.encode() + b"\n")
    return out


def fault_blocks() -> list[bytes]:
    corpus = yaml.safe_load((ROOT / "tests" / "faults" / "corpus.yaml").read_text())
    blocks = []
    for e in corpus:
        if e.get("expect") in (None, "none"):
            continue
        lines = e["text"].splitlines()
        blocks.append(
            "".join(f"2026-01-02T03:04:05.000000+0000 gpu-a17 kernel: {ln}\n" for ln in lines).encode()
        )
    return blocks


def generate(path: Path, lines: int, seed: int = 7) -> tuple[int, int]:
    """Write `lines` lines (about FAULT_RATE of them faults); returns (lines, fault blocks)."""
    rng = random.Random(seed)
    pool, faults = benign_pool(rng), fault_blocks()
    written = blocks = 0
    with path.open("wb", buffering=16 * 1024 * 1024) as out:
        while written < lines:
            run = min(rng.randrange(200, 2000), lines - written)
            start = rng.randrange(POOL - run) if run < POOL else 0
            out.write(b"".join(pool[start : start + run]))
            written += run
            if rng.random() < FAULT_RATE * 1000 and written < lines:  # ~1 fault per 1000 lines on average
                block = rng.choice(faults)
                out.write(block)
                written += block.count(b"\n")
                blocks += 1
    return written, blocks


@dataclass
class Timing:
    seconds: float
    peak_rss_mb: float


def timed(cmd: list[str], out_path: Path) -> Timing:
    """Run `cmd` with stdout to a file (grep to /dev/null stops at the first match); wall time and peak RSS."""
    with out_path.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed with exit code {code}")
    return Timing(elapsed, usage.ru_maxrss / 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--lines", type=int, nargs="+", default=[1_000_000, 10_000_000], help="file sizes in lines"
    )
    ap.add_argument("--dir", type=Path, default=None, help="where to write the logs (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per tool and size; the best is kept")
    args = ap.parse_args()
    sizes = sorted(args.lines)

    sys.path.insert(0, str(ROOT))
    from operatord.core.faults.catalog import Catalog  # noqa: PLC0415
    from operatord.policies.load import load_policy  # noqa: PLC0415

    catalog = Catalog.of(load_policy(ROOT / "policies" / "default.yaml").rules)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        patterns = work / "prefilters.txt"
        patterns.write_text("\n".join(catalog.prefilters) + "\n")
        rows = []
        for n in sizes:
            log = work / f"mixed-{n}.log"
            t0 = time.perf_counter()
            written, blocks = generate(log, n)
            gen_s = time.perf_counter() - t0
            size_mb = log.stat().st_size / 1e6
            scan_cmd = [
                sys.executable,
                "-m",
                "operatord",
                "--policy",
                str(ROOT / "policies" / "default.yaml"),
                "faults",
                "scan",
                "-o",
                "jsonl",
                str(log),
            ]
            grep_cmd = ["grep", "-E", "-c", "-f", str(patterns), str(log)]
            scan = min(
                (timed(scan_cmd, work / "scan.out") for _ in range(args.repeat)), key=lambda t: t.seconds
            )
            grep = min(
                (timed(grep_cmd, work / "grep.out") for _ in range(args.repeat)), key=lambda t: t.seconds
            )
            findings = sum(1 for _ in (work / "scan.out").open())
            candidates = (work / "grep.out").read_text().strip()
            rows.append((n, written, size_mb, scan, grep))
            print(
                f"{written:>11,} lines  {size_mb:8.1f} MB  generated in {gen_s:5.1f} s  ({blocks} fault blocks; "
                f"grep candidates {candidates}, scan findings {findings})"
            )
            for name, t in (("operatord faults scan", scan), ("grep -E -c -f prefilters", grep)):
                print(
                    f"    {name:<26} {t.seconds:7.2f} s  {size_mb / t.seconds:8.1f} MB/s  "
                    f"{written / t.seconds / 1e6:6.2f} M lines/s  peak RSS {t.peak_rss_mb:7.1f} MB"
                )
            print(f"    end-to-end ratio (grep time / scan time): {grep.seconds / scan.seconds:.2f}x")
        if len(rows) >= 2:
            (_, w1, _, s1, g1), (_, w2, _, s2, g2) = rows[0], rows[-1]
            ds, dg = s2.seconds - s1.seconds, g2.seconds - g1.seconds
            marginal = dg / ds if ds > 0 else float("inf")
            print(
                f"marginal ratio ({w2:,} - {w1:,} lines; grep / scan): {marginal:.2f}x "
                f"(scan {(w2 - w1) / ds / 1e6 if ds > 0 else float('inf'):.2f} M lines/s, "
                f"grep {(w2 - w1) / dg / 1e6 if dg > 0 else float('inf'):.2f} M lines/s)"
            )
            print(
                f"peak RSS of the scan: {s1.peak_rss_mb:.1f} MB at {w1:,} lines -> {s2.peak_rss_mb:.1f} MB at {w2:,} lines "
                f"({s2.peak_rss_mb / s1.peak_rss_mb:.2f}x)"
            )


if __name__ == "__main__":
    main()
