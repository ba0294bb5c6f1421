"""Adapter: node log sources for the agent (port operatord.ports.logs) and its cursor file.

* `FileTail`     one file (a kernel log written by syslog, or any log) followed by byte offset.
* `PodLogs`      every CRI container log under /var/log/pods/<ns>_<pod>_<uid>/<container>/*.log.
* `Kmsg`         /dev/kmsg records, resumed by sequence number.
* `Journald`     `journalctl -k -o json -f`, resumed by the journal cursor.
* `JsonCursorStore` positions in a JSON file, replaced atomically (write, fsync, rename).

Translation only: no classification here. Every source hands out whole lines and the position
just after them, and starts a stream it has no position for at most the look-back back.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from operatord.ports.logs import LogChunk, LogSourceError, Position
from operatord.vocab import LogSourceKind

MAX_CHUNK_BYTES = 8 * 1024 * 1024
LOOKBACK_BYTES = 64 * 1024 * 1024  # a file without a position: at most this much is read back


# ---------------------------------------------------------------------------------------- files


class _Tail:
    """One file followed by offset; detects rotation (new inode) and truncation (size < offset)."""

    def __init__(self, path: Path, stream: str, kind: LogSourceKind) -> None:
        self.path = path
        self.stream = stream
        self.kind = kind
        self.inode: int | None = None
        self.offset = 0
        self.line = 1
        self._fh: BinaryIO | None = None

    def start(
        self, position: Position | None, now: datetime, lookback: timedelta, *, from_start: bool = False
    ) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            st = None
        if position and isinstance(position.get("inode"), int):
            same = st is not None and position["inode"] == st.st_ino
            if not same or int(position.get("offset", 0)) <= st.st_size:  # type: ignore[union-attr]
                # Resume exactly; if the file was rotated meanwhile, the first poll finishes the old one.
                self.inode = int(position["inode"])
                self.offset, self.line = int(position.get("offset", 0)), int(position.get("line", 1))
                return
        if st is None:
            self.inode, self.offset, self.line = None, 0, 1
            return
        self.inode = st.st_ino
        if from_start:
            self.offset, self.line = 0, 1
            return
        self.offset, self.line = self._lookback_start(st.st_size, now, lookback, st.st_mtime)

    def _lookback_start(self, size: int, now: datetime, lookback: timedelta, mtime: float) -> tuple[int, int]:
        """Where a stream without a position starts: nothing older than the look-back, at most LOOKBACK_BYTES back."""
        if datetime.fromtimestamp(mtime, UTC) < now - lookback:
            return size, self._count_lines(size)  # untouched for longer than the look-back: only new lines
        if size <= LOOKBACK_BYTES:
            return 0, 1
        with self.path.open("rb") as fh:
            fh.seek(size - LOOKBACK_BYTES)
            fh.readline()  # skip to the next line start
            start = fh.tell()
        return start, self._count_lines(start)

    def _count_lines(self, upto: int) -> int:
        n, done = 1, 0
        with self.path.open("rb") as fh:
            while done < upto:
                block = fh.read(min(MAX_CHUNK_BYTES, upto - done))
                if not block:
                    break
                n += block.count(b"\n")
                done += len(block)
        return n

    def poll(self) -> LogChunk | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            st = None
        if self.inode is not None and (st is None or st.st_ino != self.inode):
            rest = self._rest_of_rotated()
            if rest is not None:
                return rest
            self._close()  # the old file is finished (or gone): follow the new one from its start
            self.inode, self.offset, self.line = (st.st_ino, 0, 1) if st is not None else (None, 0, 1)
        if st is None:
            return None
        if self.inode is None:
            self.inode, self.offset, self.line = st.st_ino, 0, 1
        if st.st_size < self.offset:  # truncated in place (copytruncate): start again
            self._close()
            self.offset, self.line = 0, 1
        if st.st_size == self.offset:
            return None
        if self._fh is None:
            self._fh = self.path.open("rb")
        self._fh.seek(self.offset)
        data = self._fh.read(MAX_CHUNK_BYTES)
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) < MAX_CHUNK_BYTES:
                return None  # a partial line: wait for its newline
            cut = len(data) - 1  # a line longer than a chunk: hand it over in pieces
        data = data[: cut + 1]
        return self._chunk(data, len(data))

    def _chunk(self, data: bytes, consumed: int) -> LogChunk:
        position = {
            "inode": self.inode,
            "offset": self.offset + consumed,
            "line": self.line + data.count(b"\n"),
        }
        return LogChunk(self.stream, self.kind, data, self.line, position)

    def _rest_of_rotated(self) -> LogChunk | None:
        """Lines the old file got after our last read, when logrotate/kubelet renamed it away."""
        if self._fh is None:
            self._fh = self._find_rotated()
            if self._fh is None:
                return None
        self._fh.seek(self.offset)
        data = self._fh.read(MAX_CHUNK_BYTES)
        if not data:
            return None
        consumed = len(data)
        cut = data.rfind(b"\n")
        if cut >= 0 and len(data) == MAX_CHUNK_BYTES:
            data = data[: cut + 1]  # more follows in the next poll
            consumed = len(data)
        elif not data.endswith(b"\n"):
            data += b"\n"  # the rotated file's last line will not be finished any more
        return self._chunk(data, consumed)

    def _find_rotated(self) -> BinaryIO | None:
        """The renamed old file (same inode, e.g. `kern.log.1`, `0.log.20260101-120000`), opened."""
        for sibling in sorted(self.path.parent.glob(self.path.name + "*")):
            try:
                if sibling.stat().st_ino == self.inode:
                    return sibling.open("rb")
            except OSError:
                continue
        return None

    def commit(self, position: Position) -> None:
        """Advance after the agent consumed a chunk (positions move only forward with consumption)."""
        self.offset, self.line = int(position["offset"]), int(position["line"])

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class FileTail:
    """A single log file (kind `file`, or `kmsg`-like content written by syslog)."""

    def __init__(self, path: Path, *, kind: LogSourceKind = LogSourceKind.FILE) -> None:
        self.name = f"file:{path}"
        self._tail = _Tail(path, str(path), kind)
        self._idle: list[str] = []

    def start(self, positions: Mapping[str, Position], now: datetime, lookback: timedelta) -> None:
        self._tail.start(positions.get(self._tail.stream), now, lookback)

    def poll(self) -> Sequence[LogChunk]:
        try:
            chunk = self._tail.poll()
        except OSError as err:
            raise LogSourceError(f"{self._tail.path}: cannot read ({err.strerror or err})") from None
        if chunk is None:
            self._idle = [self._tail.stream]
            return []
        self._tail.commit(chunk.position)
        self._idle = []
        return [chunk]

    def idle_streams(self) -> Sequence[str]:
        return list(self._idle)

    def close(self) -> None:
        self._tail._close()


class PodLogs:
    """Every container log under a /var/log/pods-style folder, one stream per file (CRI format)."""

    PATTERN = "*/*/*.log"

    def __init__(self, root: Path, *, rescan_every: int = 5) -> None:
        self.name = f"pods:{root}"
        self._root = root
        self._tails: dict[str, _Tail] = {}
        self._positions: Mapping[str, Position] = {}
        self._now = datetime.now(UTC)
        self._lookback = timedelta(hours=1)
        self._rescan_every = rescan_every
        self._polls = 0
        self._idle: list[str] = []

    def start(self, positions: Mapping[str, Position], now: datetime, lookback: timedelta) -> None:
        if not self._root.is_dir():
            raise LogSourceError(f"{self._root}: not a directory (pod logs)")
        self._positions, self._now, self._lookback = positions, now, lookback
        self._discover(first=True)

    def _discover(self, *, first: bool) -> None:
        found = {str(p) for p in self._root.glob(self.PATTERN)}
        for path in sorted(found - set(self._tails)):
            tail = _Tail(Path(path), path, LogSourceKind.CONTAINER)
            # A file that appears after start is new: read it from its beginning.
            tail.start(self._positions.get(path), self._now, self._lookback, from_start=not first)
            self._tails[path] = tail
        for gone in set(self._tails) - found:
            self._tails.pop(gone)._close()

    def poll(self) -> Sequence[LogChunk]:
        self._polls += 1
        if self._polls % self._rescan_every == 0:
            self._discover(first=False)
        out: list[LogChunk] = []
        idle: list[str] = []
        for path, tail in self._tails.items():
            try:
                chunk = tail.poll()
            except OSError:
                continue  # the file went away between glob and read; the next rescan drops it
            if chunk is None:
                idle.append(path)
            else:
                tail.commit(chunk.position)
                out.append(chunk)
        self._idle = idle
        return out

    def idle_streams(self) -> Sequence[str]:
        return list(self._idle)

    def close(self) -> None:
        for tail in self._tails.values():
            tail._close()


# ---------------------------------------------------------------------------------------- kmsg


def parse_kmsg_record(record: bytes) -> tuple[int, int, str] | None:
    """`/dev/kmsg` record → (sequence, microseconds since boot, message). None when malformed.

    Format (Documentation/ABI/testing/dev-kmsg): `prio,seq,ts_usec,flags[,...];message\\n`
    followed by optional ` KEY=value` continuation lines; non-printable bytes are `\\xNN`-escaped.
    """
    head, sep, rest = record.partition(b";")
    if not sep:
        return None
    fields = head.split(b",")
    if len(fields) < 3:
        return None
    try:
        seq, usec = int(fields[1]), int(fields[2])
    except ValueError:
        return None
    message = rest.split(b"\n", 1)[0]
    return seq, usec, message.decode("utf-8", "replace")


def split_kmsg(buf: bytes) -> list[bytes]:
    """Records of a read: /dev/kmsg gives one per read(), a pipe or file may give several.

    A record is a header line plus the ` KEY=value` continuation lines after it.
    """
    out: list[bytes] = []
    for line in buf.split(b"\n"):
        if line.startswith(b" ") and out:
            out[-1] += b"\n" + line
        elif line:
            out.append(line)
    return out


class Kmsg:
    """The kernel ring buffer through /dev/kmsg; positions are record sequence numbers."""

    def __init__(
        self,
        path: Path = Path("/dev/kmsg"),
        *,
        hostname: str | None = None,
        boot_time: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = "kmsg"
        self._path = path
        self._host = hostname or socket.gethostname()
        self._boot_time = boot_time or _boot_time
        self._fd: int | None = None
        self._seq = -1
        self._line = 1
        self._not_before: datetime | None = None
        self._idle: list[str] = []

    def start(self, positions: Mapping[str, Position], now: datetime, lookback: timedelta) -> None:
        try:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as err:
            raise LogSourceError(f"{self._path}: cannot open ({err.strerror or err})") from None
        pos = positions.get(self.name)
        if pos:
            self._seq, self._line = int(pos.get("seq", -1)), int(pos.get("line", 1))
        else:
            self._not_before = now - lookback

    def poll(self) -> Sequence[LogChunk]:
        if self._fd is None:
            return []
        boot = self._boot_time()
        lines: list[bytes] = []
        while len(lines) < 10_000:
            try:
                record = os.read(self._fd, 16 * 1024)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.EPIPE:  # records were overwritten before we read them: go on
                    continue
                raise LogSourceError(f"{self._path}: read failed ({err.strerror or err})") from None
            if not record:
                break
            for one in split_kmsg(record):
                parsed = parse_kmsg_record(one)
                if parsed is None:
                    continue
                seq, usec, message = parsed
                if seq <= self._seq:
                    continue
                self._seq = seq
                when = boot + timedelta(microseconds=usec)
                if self._not_before is not None and when < self._not_before:
                    continue
                lines.append(f"{when.isoformat()} {self._host} kernel: {message}\n".encode())
        if not lines:
            self._idle = [self.name]
            return []
        self._idle = []
        data = b"".join(lines)
        first = self._line
        self._line += len(lines)
        return [LogChunk(self.name, LogSourceKind.KMSG, data, first, {"seq": self._seq, "line": self._line})]

    def idle_streams(self) -> Sequence[str]:
        return list(self._idle)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _boot_time() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=time.monotonic())


# ---------------------------------------------------------------------------------------- journald


class Journald:
    """`journalctl -k -o json -f`, resumed with `--after-cursor`; each JSON entry is one line.

    The classifier understands journald JSON (MESSAGE, __REALTIME_TIMESTAMP, _HOSTNAME), so the
    entries are passed on as they are. journalctl runs as a child process read by a thread; if it
    exits it is restarted from the last cursor.
    """

    def __init__(self, *, journalctl: str = "journalctl", extra_args: Sequence[str] = ()) -> None:
        self.name = "journald"
        self._cmd = journalctl
        self._extra = tuple(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=100_000)
        self._cursor: str | None = None
        self._since: str | None = None
        self._line = 1
        self._idle: list[str] = []
        self._restarts = 0

    def start(self, positions: Mapping[str, Position], now: datetime, lookback: timedelta) -> None:
        if shutil.which(self._cmd) is None:
            raise LogSourceError(f"{self._cmd}: not found (journald source needs journalctl)")
        pos = positions.get(self.name)
        if pos and pos.get("cursor"):
            self._cursor, self._line = str(pos["cursor"]), int(pos.get("line", 1))
        else:
            self._since = f"-{int(lookback.total_seconds())}s"
        self._spawn()

    def _spawn(self) -> None:
        args = [self._cmd, "-k", "-o", "json", "-f", "--no-pager", "--lines=all", *self._extra]
        args += [f"--after-cursor={self._cursor}"] if self._cursor else [f"--since={self._since}"]
        try:
            self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as err:
            raise LogSourceError(f"{self._cmd}: cannot start ({err.strerror or err})") from None
        proc = self._proc
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for raw in iter(stdout.readline, b""):
                self._queue.put(raw)
            self._queue.put(None)

        threading.Thread(target=pump, name="journalctl-reader", daemon=True).start()

    def poll(self) -> Sequence[LogChunk]:
        lines: list[bytes] = []
        ended = False
        while len(lines) < 50_000:
            try:
                raw = self._queue.get_nowait()
            except queue.Empty:
                break
            if raw is None:
                ended = True
                break
            if not raw.endswith(b"\n"):
                raw += b"\n"
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            cursor = entry.get("__CURSOR") if isinstance(entry, dict) else None
            if isinstance(cursor, str):
                self._cursor = cursor
            lines.append(raw)
        if ended:
            self._restart()
        if not lines:
            self._idle = [self.name]
            return []
        self._idle = []
        first = self._line
        self._line += len(lines)
        return [
            LogChunk(
                self.name,
                LogSourceKind.JOURNALD,
                b"".join(lines),
                first,
                {"cursor": self._cursor, "line": self._line},
            )
        ]

    def _restart(self) -> None:
        if self._proc is not None:
            self._proc.wait(timeout=5)
        self._restarts += 1
        if self._cursor is None and self._since is None:
            self._since = "-60s"
        self._spawn()

    def idle_streams(self) -> Sequence[str]:
        return list(self._idle)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None


# ---------------------------------------------------------------------------------------- cursors


class JsonCursorStore:
    """Stream positions in one JSON file (hostPath in a DaemonSet), replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Position]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # unreadable or corrupt: start by look-back rather than refuse to run
        streams = data.get("streams") if isinstance(data, dict) else None
        return (
            {str(k): v for k, v in streams.items() if isinstance(v, dict)}
            if isinstance(streams, dict)
            else {}
        )

    def save(self, positions: Mapping[str, Position]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = json.dumps({"version": 1, "streams": dict(positions)}, sort_keys=True)
        with tmp.open("w") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
