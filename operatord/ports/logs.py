"""Port: node logs as the agent reads them (kmsg, journald, a file, a folder of CRI container logs).

Properties every implementation must have:

* **Whole lines.** `poll()` returns chunks of complete, newline-terminated lines; a partial
  last line waits for its newline.
* **Never blocks long.** `poll()` returns what is there now (possibly nothing) within about a
  second; following (`journalctl -f`, kmsg) happens across calls.
* **Exact resume.** Each chunk carries the JSON-able position just *after* its last line and the
  number of its first line; `start(positions)` with those positions resumes exactly there, so
  a restart neither repeats nor skips lines. A stream whose file was rotated or truncated starts
  again at its beginning.
* **Bounded look-back.** A stream without a saved position starts at most `lookback` back in
  time (or, where the log has no time index, at most a bounded number of bytes back).
* **Streams are independent.** One source may carry several streams (a folder of pod logs):
  line numbers, multi-line state and positions are per `stream`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from operatord.vocab import LogSourceKind

Position = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LogChunk:
    stream: str  # stable name (file path, "kmsg", "journald"); the findings' `source`
    kind: LogSourceKind
    data: bytes  # whole lines
    first_line: int  # 1-based number of the first line in data, within the stream
    position: Position  # where to resume after this chunk


class LogSourceError(Exception):
    """A source cannot be read (missing device, permission, journalctl not installed); says which and why."""


class LogSource(Protocol):
    name: str

    def start(self, positions: Mapping[str, Position], now: datetime, lookback: timedelta) -> None:
        """Open the source; `positions` maps stream names to saved positions (others start by look-back)."""
        ...

    def poll(self) -> Sequence[LogChunk]:
        """New whole lines since the last call (or since start)."""
        ...

    def idle_streams(self) -> Sequence[str]:
        """Streams that had no new data on the last poll (their open multi-line block can be decided)."""
        ...

    def close(self) -> None: ...


class CursorStore(Protocol):
    """Where the agent keeps stream positions between runs (a node-local file in production).

    `save` is atomic: after a crash the store holds either the old or the new positions, never a mix.
    """

    def load(self) -> dict[str, Position]: ...

    def save(self, positions: Mapping[str, Position]) -> None: ...
