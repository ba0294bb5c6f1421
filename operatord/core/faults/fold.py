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
from dataclasses import replace
from datetime import timedelta

from operatord.core.findings import Finding


class Folder:
    """Streaming fold: `add` returns the findings whose burst just closed; `close` the rest.

    An open burst is kept as its first finding plus a running count and last sighting, so a
    repeat costs a dictionary lookup, not a new object (floods are the common case here).
    """

    def __init__(self, silence: timedelta) -> None:
        self._silence = silence
        self._open: dict[tuple[object, ...], _Burst] = {}

    def add(self, finding: Finding) -> list[Finding]:
        key = finding.fold_key
        burst = self._open.get(key)
        if burst is None:
            self._open[key] = _Burst(finding)
            return []
        if burst.takes(finding, self._silence):
            return []
        self._open[key] = _Burst(finding)
        return [burst.finding()]

    def close(self) -> list[Finding]:
        out = [b.finding() for b in self._open.values()]
        self._open.clear()
        return out

    def __len__(self) -> int:
        return len(self._open)


class _Burst:
    __slots__ = ("count", "first", "last", "start")

    def __init__(self, start: Finding) -> None:
        self.start = start
        self.count = start.count
        self.first = start.first_seen or start.time
        self.last = start.last_seen or start.first_seen or start.time

    def takes(self, repeat: Finding, silence: timedelta) -> bool:
        """Fold `repeat` in when it starts within `silence` of the last sighting (or either has no time)."""
        start = repeat.first_seen or repeat.last_seen or repeat.time
        if self.last is not None and start is not None and start - self.last > silence:
            return False
        self.count += repeat.count
        end = repeat.last_seen or start
        if start is not None and (self.first is None or start < self.first):
            self.first = start
        if end is not None and (self.last is None or end > self.last):
            self.last = end
        return True

    def finding(self) -> Finding:
        s = self.start
        if self.count == s.count and self.first == s.first_seen and self.last == s.last_seen:
            return s
        return replace(s, count=self.count, first_seen=self.first, last_seen=self.last)


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
