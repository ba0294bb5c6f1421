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
        clf = Classifier(self.catalog, source=source, node=node, node_from_host=node_from_host, year=year)
        folder = Folder(self.silence)

        def emit(found: list[Finding]) -> None:
            for f in found:
                for closed in folder.add(f):
                    result.findings.append(closed)
                    if on_finding is not None:
                        on_finding(closed)

        next_line = 1
        follow_over = 0  # lines to deliver from the start of the next piece (multi-line continuation)
        for piece in _pieces(_reader(stream, source), chunk_bytes):
            result.bytes += len(piece)
            lines, follow_over = self._lines(piece, next_line, follow_over)
            result.candidates += len(lines)
            for line in lines:
                emit(clf.feed(line))
            next_line += piece.count(b"\n")
        emit(clf.flush())
        for closed in folder.close():
            result.findings.append(closed)
            if on_finding is not None:
                on_finding(closed)
        result.findings.sort(key=lambda f: (f.line, f.rule))
        result.lines = next_line - 1
        result.versions = dict(clf.versions)
        return result

    def _lines(self, piece: bytes, first_line: int, follow_over: int) -> tuple[list[Line], int]:
        """The lines of `piece` to classify, with their numbers and hints; and the overhang."""
        chosen: dict[int, tuple[int, frozenset[int]]] = {}
        pos = 0
        for _ in range(follow_over):  # continuation lines owed from the previous piece
            if pos >= len(piece):
                break
            end = piece.find(b"\n", pos)
            end = len(piece) if end < 0 else end
            chosen[pos] = (end, frozenset())
            pos = end + 1
        over = 0
        for start, end, hints in self.prefilter.candidates(piece):
            chosen[start] = (end, hints)
            if hints & self._multiline:
                nxt = end + 1
                for k in range(self._follow):
                    if nxt >= len(piece):
                        over = max(over, self._follow - k)
                        break
                    e = piece.find(b"\n", nxt)
                    e = len(piece) if e < 0 else e
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
                raw = self._window(raw, hints)
            out.append(Line(line_no, raw.decode("utf-8", "replace"), hints))
        return out, over

    def _window(self, raw: bytes, hints: frozenset[int]) -> bytes:
        """Of a huge line, the part around the first prefilter match (regexes never see megabytes)."""
        first = min(
            (m.start() for i in hints if (m := self._bytes_patterns[i].search(raw)) is not None), default=0
        )
        begin = max(0, first - 1024)
        return raw[begin : begin + MAX_MESSAGE_CHARS]


def _reader(stream: BinaryIO, source: str) -> Iterator[bytes]:
    """Raw blocks of the stream, gunzipped when it starts with the gzip magic (members concatenated)."""
    try:
        head = stream.read(2)
        if head != GZIP_MAGIC:
            if head:
                yield head
            while block := stream.read(CHUNK_BYTES):
                yield block
            return
        dec = zlib.decompressobj(wbits=31)
        data = head + stream.read(CHUNK_BYTES)
        while True:
            if dec.eof:
                rest = dec.unused_data or stream.read(CHUNK_BYTES)
                if not rest.strip(b"\0"):  # end, or tape-style zero padding
                    return
                if rest[:2] != GZIP_MAGIC:
                    raise ScanInputError(f"{source}: trailing garbage after gzip data")
                dec, data = zlib.decompressobj(wbits=31), rest
            elif not data:
                data = stream.read(CHUNK_BYTES)
                if not data:
                    raise ScanInputError(f"{source}: truncated gzip data (unexpected end of file)")
            out = dec.decompress(data, CHUNK_BYTES)
            data = dec.unconsumed_tail
            if out:
                yield out
    except zlib.error as err:
        raise ScanInputError(f"{source}: corrupt gzip data ({err})") from None
    except OSError as err:
        raise ScanInputError(f"{source}: cannot read ({err.strerror or err})") from None


def _pieces(blocks: Iterator[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """Re-cut blocks into pieces of about `chunk_bytes` that end on a newline (or EOF / MAX_LINE_BYTES)."""
    buf = bytearray()
    for block in blocks:
        buf += block
        if len(buf) < chunk_bytes:
            continue
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) >= MAX_LINE_BYTES:
                yield bytes(buf)
                buf.clear()
            continue
        yield bytes(buf[: cut + 1])
        del buf[: cut + 1]
    if buf:
        yield bytes(buf)
