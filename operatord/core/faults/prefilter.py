"""Pure. The fast multi-pattern pass: which lines of a byte chunk can possibly hold a fault.

Hyperscan scans a whole chunk (megabytes) in one call against every rule's prefilter at once;
only the lines it reports reach Python `re`. Hyperscan is pure computation (no I/O) and is
imported lazily, so `operatord --help` does not pay for it. Without hyperscan the same
answer comes, slower, from Python `re` over the chunk.

Contract: `candidates(chunk)` returns, in line order, every line of `chunk` on which at least
one prefilter matches, as (start offset, end offset, hint ids). A line is the bytes between
two b"\\n" (the chunk is expected to end on a line boundary). Prefilters are POSIX ERE, the
same expressions `grep -E` is benchmarked with; a prefilter match is a *candidate*, never a
finding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from operatord.core.faults.catalog import ere_to_python

Candidate = tuple[int, int, frozenset[int]]


class PrefilterError(ValueError):
    """A prefilter the multi-pattern engine refuses; names the pattern."""


class Prefilter:
    """Compiled once per catalog; `candidates` may be called for any number of chunks."""

    def __init__(self, patterns: Sequence[str], *, engine: str = "auto") -> None:
        self._patterns = tuple(patterns)
        self._db: Any = None
        self._fallback: tuple[re.Pattern[bytes], ...] = ()
        self.engine = "re"
        if engine in ("auto", "hyperscan"):
            try:
                import hyperscan  # noqa: PLC0415 - lazy: heavy native module, only needed to scan
            except ImportError:
                if engine == "hyperscan":
                    raise
            else:
                self._db = _compile(hyperscan, self._patterns)
                self.engine = "hyperscan"
        if self._db is None:
            self._fallback = tuple(re.compile(ere_to_python(p).encode()) for p in self._patterns)

    def candidates(self, chunk: bytes | bytearray, limit: int | None = None) -> list[Candidate]:
        """Candidate lines of `chunk[:limit]` (the whole chunk when `limit` is None)."""
        end_of = len(chunk) if limit is None else limit
        hits: dict[int, set[int]] = {}  # line start → pattern ids
        if self._db is not None:

            def on_match(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
                start = chunk.rfind(b"\n", 0, max(end - 1, 0)) + 1 if end > 0 else 0
                ids = hits.get(start)
                if ids is None:
                    hits[start] = {pid}
                else:
                    ids.add(pid)

            self._db.scan(
                memoryview(chunk)[:end_of] if end_of < len(chunk) else chunk, match_event_handler=on_match
            )
        else:
            for pid, pattern in enumerate(self._fallback):
                for m in pattern.finditer(chunk, 0, end_of):
                    start = chunk.rfind(b"\n", 0, m.start()) + 1
                    hits.setdefault(start, set()).add(pid)
        out: list[Candidate] = []
        for start in sorted(hits):
            end = chunk.find(b"\n", start, end_of)
            out.append((start, end_of if end < 0 else end, frozenset(hits[start])))
        return out


def _compile(hyperscan: Any, patterns: Sequence[str]) -> Any:
    db = hyperscan.Database()
    flags = hyperscan.HS_FLAG_MULTILINE
    try:
        db.compile(
            expressions=[p.encode() for p in patterns],
            ids=list(range(len(patterns))),
            elements=len(patterns),
            flags=[flags] * len(patterns),
        )
    except hyperscan.error as err:
        raise PrefilterError(
            f"hyperscan cannot compile a prefilter{_culprit(hyperscan, patterns)} ({err})"
        ) from None
    return db


def _culprit(hyperscan: Any, patterns: Sequence[str]) -> str:
    """Which pattern hyperscan refuses (its multi-pattern error does not always say)."""
    for p in patterns:
        try:
            hyperscan.Database().compile(
                expressions=[p.encode()], ids=[0], elements=1, flags=[hyperscan.HS_FLAG_MULTILINE]
            )
        except hyperscan.error:
            return f" {p!r}"
    return ""
