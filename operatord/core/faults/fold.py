"""Pure. Fold repeats into one finding with a count; a burst ends after `silence` without a repeat.

One incident printed ~800K Xid-95 lines (NVSentinel#1120): stored or published one by one they
bury everything else. Repeats (same node, rule, class, Xid, GPU, peer and verdict) inside a
burst become one finding whose `count`, `first_seen` and `last_seen` widen; a repeat after a
silence longer than `silence` (policy faults.burst_silence, 3 min by default, NVSentinel's
suppression window) opens a new finding. Findings without a time fold with the open one.
Memory is bounded by the number of distinct keys, not by the number of lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from operatord.core.findings import Finding


class Folder:
    """Streaming fold: `add` returns the findings whose burst just closed; `close` the rest."""

    def __init__(self, silence: timedelta) -> None:
        self._silence = silence
        self._open: dict[tuple[object, ...], Finding] = {}

    def add(self, finding: Finding) -> list[Finding]:
        key = finding.fold_key
        current = self._open.get(key)
        if current is None:
            self._open[key] = finding
            return []
        if _same_burst(current, finding, self._silence):
            self._open[key] = current.folded(finding)
            return []
        self._open[key] = finding
        return [current]

    def close(self) -> list[Finding]:
        out = list(self._open.values())
        self._open.clear()
        return out

    def __len__(self) -> int:
        return len(self._open)


def _same_burst(current: Finding, repeat: Finding, silence: timedelta) -> bool:
    last = current.last_seen or current.first_seen
    start = repeat.first_seen or repeat.last_seen
    if last is None or start is None:
        return True
    return start - last <= silence


def fold(findings: Iterable[Finding], silence: timedelta) -> list[Finding]:
    """Batch form of Folder, in input order of each burst's first line. Idempotent."""
    folder = Folder(silence)
    out: list[Finding] = []
    for f in findings:
        out.extend(folder.add(f))
    out.extend(folder.close())
    return sorted(out, key=_order)


def _order(f: Finding) -> tuple[str, int, str]:
    return (f.source, f.line, f.rule)
