"""Log-source adapters: whole lines, exact resume, rotation, look-back, kmsg records, journald cursor."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operatord.adapters import logs as logs_mod
from operatord.adapters.logs import FileTail, Journald, Kmsg, PodLogs, parse_kmsg_record, split_kmsg
from operatord.ports.logs import LogSourceError

NOW = datetime.now(UTC)
HOUR = timedelta(hours=1)


def drain(src: object) -> list[tuple[str, int, bytes]]:
    out = []
    for chunk in src.poll():  # type: ignore[attr-defined]
        out.append((chunk.stream, chunk.first_line, chunk.data))
    return out


def test_file_tail_hands_out_whole_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_bytes(b"a\nb\npart")
    src = FileTail(log)
    src.start({}, NOW, HOUR)
    assert drain(src) == [(str(log), 1, b"a\nb\n")]
    assert drain(src) == []
    assert src.idle_streams() == [str(log)]
    with log.open("ab") as fh:
        fh.write(b"ial\nc\n")
    assert drain(src) == [(str(log), 3, b"partial\nc\n")]


def test_file_tail_resumes_exactly_at_its_position(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_bytes(b"1\n2\n")
    first = FileTail(log)
    first.start({}, NOW, HOUR)
    (chunk,) = first.poll()
    log.write_bytes(b"1\n2\n3\n")
    second = FileTail(log)
    second.start({str(log): chunk.position}, NOW, HOUR)
    assert drain(second) == [(str(log), 3, b"3\n")]


def test_file_tail_starts_again_after_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_bytes(b"old1\nold2\n")
    src = FileTail(log)
    src.start({}, NOW, HOUR)
    drain(src)
    os.rename(log, tmp_path / "k.log.1")
    log.write_bytes(b"new\n")
    assert drain(src) == [(str(log), 1, b"new\n")]
    log.write_bytes(b"")  # truncated in place (copytruncate)
    drain(src)
    log.write_bytes(b"again\n")
    assert drain(src) == [(str(log), 1, b"again\n")]


def test_file_not_touched_within_lookback_starts_at_its_end(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_bytes(b"ancient\n" * 3)
    old = time.time() - 5 * 3600
    os.utime(log, (old, old))
    src = FileTail(log)
    src.start({}, NOW, HOUR)
    assert drain(src) == []
    with log.open("ab") as fh:
        fh.write(b"fresh\n")
    assert drain(src) == [(str(log), 4, b"fresh\n")]


def test_big_file_reads_back_at_most_the_lookback_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs_mod, "LOOKBACK_BYTES", 100)
    log = tmp_path / "k.log"
    log.write_bytes(b"".join(f"line {i:04d}\n".encode() for i in range(100)))  # 10 bytes a line
    src = FileTail(log)
    src.start({}, NOW, HOUR)
    ((_, first, data),) = drain(src)
    assert data.startswith(b"line ")
    assert len(data) <= 100
    assert first == 100 - data.count(b"\n") + 1  # true line numbers, not relative ones


def test_pod_logs_one_stream_per_file_and_new_files_from_their_start(tmp_path: Path) -> None:
    c1 = tmp_path / "llm_vllm-0_uid1" / "vllm"
    c1.mkdir(parents=True)
    (c1 / "0.log").write_bytes(b"2026-01-01T00:00:00Z stdout F hello\n")
    src = PodLogs(tmp_path, rescan_every=1)
    src.start({}, NOW, HOUR)
    assert [(s.split("/")[-3], n) for s, n, _ in drain(src)] == [("llm_vllm-0_uid1", 1)]
    c2 = tmp_path / "llm_vllm-1_uid2" / "vllm"
    c2.mkdir(parents=True)
    (c2 / "0.log").write_bytes(b"2026-01-01T00:00:01Z stderr F boom\n")
    got = drain(src)
    assert [(s.split("/")[-3], d) for s, _, d in got] == [
        ("llm_vllm-1_uid2", b"2026-01-01T00:00:01Z stderr F boom\n")
    ]


def test_pod_logs_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(LogSourceError, match="not a directory"):
        PodLogs(tmp_path / "missing").start({}, NOW, HOUR)


@pytest.mark.parametrize(
    ("record", "parsed"),
    [
        (
            b"6,1234,5000000,-;NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus.",
            (1234, 5_000_000, "NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus."),
        ),
        (b"4,7,12,c,caller=T1;hello\n SUBSYSTEM=pci\n DEVICE=+pci:0000:91:00.0", (7, 12, "hello")),
        (b"garbage", None),
        (b"6,x,1,-;m", None),
    ],
)
def test_parse_kmsg_record(record: bytes, parsed: tuple[int, int, str] | None) -> None:
    assert parse_kmsg_record(record) == parsed


def test_split_kmsg_keeps_continuation_lines_with_their_record() -> None:
    assert split_kmsg(b"6,1,1,-;a\n SUB=x\n6,2,2,-;b\n") == [b"6,1,1,-;a\n SUB=x", b"6,2,2,-;b"]


def test_kmsg_reads_records_resumes_by_sequence_and_bounds_lookback(tmp_path: Path) -> None:
    fifo = tmp_path / "kmsg"
    os.mkfifo(fifo)
    boot = NOW - timedelta(hours=3)
    src = Kmsg(fifo, hostname="gpu-a17", boot_time=lambda: boot)
    writer = os.open(fifo, os.O_RDWR)  # keep the pipe open so reads do not see EOF
    try:
        src.start({}, NOW, HOUR)
        old_us, new_us = (
            int(timedelta(minutes=10).total_seconds() * 1e6),
            int(timedelta(hours=2, minutes=30).total_seconds() * 1e6),
        )
        os.write(
            writer,
            f"6,1,{old_us},-;NVRM: too old\n6,2,{new_us},-;NVRM: Xid (PCI:0000:91:00): 79, x\n".encode(),
        )
        ((stream, first, data),) = drain(src)
        assert (stream, first) == ("kmsg", 1)
        assert data.count(b"\n") == 1
        assert b"gpu-a17 kernel: NVRM: Xid" in data
        chunk_pos = {"seq": 2, "line": 2}
        src.close()
        again = Kmsg(fifo, hostname="gpu-a17", boot_time=lambda: boot)
        again.start({"kmsg": chunk_pos}, NOW, HOUR)
        os.write(writer, f"6,2,{new_us},-;dup\n6,3,{new_us},-;three\n".encode())
        ((_, first, data),) = drain(again)
        assert (first, data.endswith(b"kernel: three\n"), b"dup" in data) == (2, True, False)
        again.close()
    finally:
        os.close(writer)


def test_kmsg_missing_device_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(LogSourceError, match="cannot open"):
        Kmsg(tmp_path / "nope").start({}, NOW, HOUR)


FAKE_JOURNALCTL = """#!{python}
import json, sys, time
entries = [json.loads(l) for l in open({entries!r})]
after = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--after-cursor=")), None)
with open({argv_log!r}, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
start = 0 if after is None else next(i + 1 for i, e in enumerate(entries) if e["__CURSOR"] == after)
for e in entries[start:]:
    print(json.dumps(e), flush=True)
time.sleep(30)
"""


def test_journald_follows_and_resumes_by_cursor(tmp_path: Path) -> None:
    entries = tmp_path / "entries.jsonl"
    rows = [
        {
            "__CURSOR": f"s=1;i={i}",
            "MESSAGE": m,
            "__REALTIME_TIMESTAMP": str(1_767_268_800_000_000 + i),
            "_HOSTNAME": "gpu-a17",
        }
        for i, m in enumerate(
            ["boot", "NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus.", "later"]
        )
    ]
    entries.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    argv_log = tmp_path / "argv.jsonl"
    script = tmp_path / "journalctl"
    script.write_text(
        FAKE_JOURNALCTL.format(python=sys.executable, entries=str(entries), argv_log=str(argv_log))
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    src = Journald(journalctl=str(script))
    src.start({}, NOW, HOUR)
    got: list[tuple[str, int, bytes]] = []
    deadline = time.monotonic() + 20
    while sum(d.count(b"\n") for _, _, d in got) < 2 and time.monotonic() < deadline:
        got += drain(src)
        time.sleep(0.05)
    src.close()
    assert [json.loads(line)["MESSAGE"] for _, _, d in got for line in d.splitlines()] == [
        "boot",
        rows[1]["MESSAGE"],
    ]
    first_args = json.loads(argv_log.read_text().splitlines()[0])
    assert "-k" in first_args
    assert "--since=-3600s" in first_args
    entries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    again = Journald(journalctl=str(script))
    again.start({"journald": {"cursor": "s=1;i=1", "line": 3}}, NOW, HOUR)
    got = []
    deadline = time.monotonic() + 20
    while not got and time.monotonic() < deadline:
        got += drain(again)
        time.sleep(0.05)
    again.close()
    assert [(n, json.loads(d)["MESSAGE"]) for _, n, d in got] == [(3, "later")]
    assert "--after-cursor=s=1;i=1" in json.loads(argv_log.read_text().splitlines()[1])


def test_journald_without_journalctl_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(LogSourceError, match="not found"):
        Journald(journalctl=str(tmp_path / "journalctl")).start({}, NOW, HOUR)


def test_lines_written_just_before_rotation_are_not_lost(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(b"a\n")
    src = FileTail(log)
    src.start({}, NOW, HOUR)
    drain(src)
    with log.open("ab") as fh:
        fh.write(b"late\nunfinished")  # the writer adds lines, then the file is rotated away
    os.rename(log, tmp_path / "0.log.20260101-120000")
    log.write_bytes(b"new\n")
    assert drain(src) == [(str(log), 2, b"late\nunfinished\n")]
    assert drain(src) == [(str(log), 1, b"new\n")]


def test_rotation_while_stopped_finishes_the_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(b"1\n")
    first = FileTail(log)
    first.start({}, NOW, HOUR)
    (chunk,) = first.poll()
    first.close()
    with log.open("ab") as fh:
        fh.write(b"2\n")
    os.rename(log, tmp_path / "kern.log.1")
    log.write_bytes(b"fresh\n")
    second = FileTail(log)
    second.start({str(log): chunk.position}, NOW, HOUR)
    assert drain(second) == [(str(log), 2, b"2\n")]
    assert drain(second) == [(str(log), 1, b"fresh\n")]
