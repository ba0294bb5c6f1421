"""Shell. The chunked scanner behind `operatord faults scan` (and the agent's file catch-up).

Reads a byte stream in large chunks (8 MiB), cut on the last newline, so memory stays flat
however big the file is; the multi-pattern prefilter (core/faults/prefilter.py) finds the
candidate lines of a whole chunk in one call, and only those lines (plus the few lines after
a multi-line start) are decoded and handed to the pure classifier, then folded. Plain files,
gzip (detected by its magic bytes, not the name) and stdin; invalid UTF-8 is replaced, NUL
bytes pass through, a line longer than MAX_LINE_BYTES is cut into pieces that keep its
line number.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO

from operatord.core.faults.catalog import Catalog, ere_to_python
from operatord.core.faults.classify import MAX_MESSAGE_CHARS, Classifier, Line
from operatord.core.faults.fold import Folder
from operatord.core.faults.prefilter import Prefilter
from operatord.core.findings import Finding

CHUNK_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024  # a "line" longer than this is scanned in pieces
GZIP_MAGIC = b"\x1f\x8b"


class ScanInputError(Exception):
    """An input could not be read; the message names it and says why."""


@dataclass
class StreamResult:
    source: str
    findings: list[Finding] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    lines: int = 0
    bytes: int = 0
    candidates: int = 0


class Scanner:
    """Compiled once (catalog + prefilter database), then used for any number of streams."""

    def __init__(self, catalog: Catalog, *, silence: timedelta, engine: str = "auto") -> None:
        self.catalog = catalog
        self.silence = silence
        self.prefilter = Prefilter(catalog.prefilters, engine=engine)
        self._bytes_patterns = [re.compile(ere_to_python(p).encode()) for p in catalog.prefilters]
        self._multiline = catalog.multiline_ids
        self._follow = catalog.max_continuation

    def scan(
        self,
        stream: BinaryIO,
        *,
        source: str,
        node: str | None = None,
        node_from_host: bool = True,
        year: int | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        on_finding: Callable[[Finding], None] | None = None,
    ) -> StreamResult:
        """Scan one stream to its end. Raises ScanInputError when reading or decompressing fails."""
        result = StreamResult(source)
        stream_scan = self.stream(source=source, node=node, node_from_host=node_from_host, year=year)
        folder = Folder(self.silence)

        def emit(found: list[Finding]) -> None:
            for f in found:
                for closed in folder.add(f):
                    result.findings.append(closed)
                    if on_finding is not None:
                        on_finding(closed)

        unterminated = False
        for buf, limit in _buffers(stream, source, chunk_bytes):
            result.bytes += limit
            unterminated = buf[limit - 1] != 0x0A
            emit(stream_scan.feed(buf, limit))
        emit(stream_scan.flush())
        for closed in folder.close():
            result.findings.append(closed)
            if on_finding is not None:
                on_finding(closed)
        result.findings.sort(key=lambda f: (f.line, f.rule))
        result.lines = stream_scan.next_line - 1 + (1 if unterminated else 0)  # a last line without newline
        result.candidates = stream_scan.candidates
        result.versions = dict(stream_scan.versions)
        return result

    def stream(
        self,
        *,
        source: str,
        node: str | None = None,
        node_from_host: bool = True,
        year: int | None = None,
        first_line: int = 1,
    ) -> StreamScan:
        """An incremental scan of one growing stream (the agent's log sources)."""
        return StreamScan(
            self, source=source, node=node, node_from_host=node_from_host, year=year, first_line=first_line
        )

    def candidate_lines(
        self, piece: bytes | bytearray, limit: int, first_line: int, follow_over: int
    ) -> tuple[list[Line], int, int]:
        """The lines of `piece[:limit]` to classify (numbered, with hints), the overhang, the newline count.

        `follow_over` continuation lines owed by the previous piece are delivered first; the
        overhang is what this piece owes the next. Newlines are counted in one pass.
        """
        chosen: dict[int, tuple[int, frozenset[int]]] = {}
        pos = 0
        for _ in range(follow_over):  # continuation lines owed from the previous piece
            if pos >= limit:
                break
            end = piece.find(b"\n", pos, limit)
            end = limit if end < 0 else end
            chosen[pos] = (end, frozenset())
            pos = end + 1
        over = 0
        for start, end, hints in self.prefilter.candidates(piece, limit):
            chosen[start] = (end, hints)
            if hints & self._multiline:
                nxt = end + 1
                for k in range(self._follow):
                    if nxt >= limit:
                        over = max(over, self._follow - k)
                        break
                    e = piece.find(b"\n", nxt, limit)
                    e = limit if e < 0 else e
                    if nxt not in chosen:
                        chosen[nxt] = (e, frozenset())
                    nxt = e + 1
        out: list[Line] = []
        line_no, counted = first_line, 0
        for start in sorted(chosen):
            end, hints = chosen[start]
            line_no += piece.count(b"\n", counted, start)
            counted = start
            raw = piece[start:end]
            if len(raw) > MAX_MESSAGE_CHARS and hints:
                raw = self._window(bytes(raw), hints)
            out.append(Line(line_no, raw.decode("utf-8", "replace"), hints))
        newlines = (line_no - first_line) + piece.count(b"\n", counted, limit)
        return out, over, newlines

    def _window(self, raw: bytes, hints: frozenset[int]) -> bytes:
        """Of a huge line, the part around the first prefilter match (regexes never see megabytes)."""
        first = min(
            (m.start() for i in hints if (m := self._bytes_patterns[i].search(raw)) is not None), default=0
        )
        begin = max(0, first - 1024)
        return raw[begin : begin + MAX_MESSAGE_CHARS]


class StreamScan:
    """One stream scanned piece by piece: line numbers, multi-line blocks and versions carry over.

    `feed(buf, limit)` takes whole lines (`buf[:limit]` ends on a newline, except at EOF);
    `flush()` decides a multi-line block still open (end of input, or the source went idle).
    """

    def __init__(
        self,
        scanner: Scanner,
        *,
        source: str,
        node: str | None,
        node_from_host: bool,
        year: int | None,
        first_line: int = 1,
    ) -> None:
        self._scanner = scanner
        self._clf = Classifier(
            scanner.catalog, source=source, node=node, node_from_host=node_from_host, year=year
        )
        self.next_line = first_line
        self.candidates = 0
        self._follow_over = 0

    def feed(self, buf: bytes | bytearray, limit: int | None = None) -> list[Finding]:
        end = len(buf) if limit is None else limit
        lines, self._follow_over, newlines = self._scanner.candidate_lines(
            buf, end, self.next_line, self._follow_over
        )
        self.candidates += len(lines)
        out: list[Finding] = []
        for line in lines:
            out.extend(self._clf.feed(line))
        self.next_line += newlines
        return out

    def flush(self) -> list[Finding]:
        self._follow_over = 0
        return self._clf.flush()

    @property
    def versions(self) -> dict[str, str]:
        return dict(self._clf.versions)


def _buffers(stream: BinaryIO, source: str, chunk_bytes: int) -> Iterator[tuple[bytearray, int]]:
    """One reused buffer: yields (buf, limit) where buf[:limit] holds whole lines.

    Plain streams are read with readinto straight after the carried-over partial line, so the
    bulk of the data is never copied in Python; gzip (found by its magic bytes) is inflated
    into the same buffer. A line longer than MAX_LINE_BYTES is handed over in pieces.
    The consumer must be done with `buf` before asking for the next piece.
    """
    buf = bytearray(chunk_bytes + 64 * 1024)
    have = 0
    fill = _filler(stream, source)
    eof = False
    while not eof:
        while have < chunk_bytes and not eof:
            if len(buf) - have < 64 * 1024:
                buf.extend(bytes(max(chunk_bytes, 64 * 1024)))
            n = fill(buf, have)
            if n == 0:
                eof = True
            have += n
        if eof:
            limit = have
        else:
            cut = buf.rfind(b"\n", 0, have)
            if cut < 0 and have < MAX_LINE_BYTES:
                chunk_bytes = min(have * 2, MAX_LINE_BYTES)  # a long line: read more before cutting
                continue
            limit = have if cut < 0 else cut + 1
        if limit:
            yield buf, limit
        tail = have - limit
        if tail:
            buf[:tail] = buf[limit:have]
        have = tail


def _filler(stream: BinaryIO, source: str) -> Callable[[bytearray, int], int]:
    """A function that appends the next bytes of the stream to buf at `at` and says how many (0: end)."""
    try:
        head = stream.read(2)
    except OSError as err:
        raise ScanInputError(f"{source}: cannot read ({err.strerror or err})") from None
    if head != GZIP_MAGIC:
        pending = head

        def plain(buf: bytearray, at: int) -> int:
            nonlocal pending
            if pending:
                buf[at : at + len(pending)] = pending
                n, pending = len(pending), b""
                return n
            try:
                got = stream.readinto(memoryview(buf)[at:])  # type: ignore[attr-defined]
            except OSError as err:
                raise ScanInputError(f"{source}: cannot read ({err.strerror or err})") from None
            return got or 0

        return plain
    inflated = _inflate(stream, source, head)

    def gz(buf: bytearray, at: int) -> int:
        block = next(inflated, b"")
        buf[at : at + len(block)] = block
        return len(block)

    return gz


def _inflate(stream: BinaryIO, source: str, head: bytes) -> Iterator[bytes]:
    """Decompressed blocks of a gzip stream (members may be concatenated, as logrotate + cat make)."""
    try:
        dec = zlib.decompressobj(wbits=31)
        data = head + stream.read(64 * 1024)
        while True:
            if dec.eof:
                rest = dec.unused_data or stream.read(64 * 1024)
                if not rest.strip(b"\0"):  # end, or tape-style zero padding
                    return
                if rest[:2] != GZIP_MAGIC:
                    raise ScanInputError(f"{source}: trailing garbage after gzip data")
                dec, data = zlib.decompressobj(wbits=31), rest
            elif not data:
                data = stream.read(64 * 1024)
                if not data:
                    raise ScanInputError(f"{source}: truncated gzip data (unexpected end of file)")
            out = dec.decompress(data, 1024 * 1024)
            data = dec.unconsumed_tail
            if out:
                yield out
    except zlib.error as err:
        raise ScanInputError(f"{source}: corrupt gzip data ({err})") from None
    except OSError as err:
        raise ScanInputError(f"{source}: cannot read ({err.strerror or err})") from None
