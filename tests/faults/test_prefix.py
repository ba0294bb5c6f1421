"""Prefix stripping: every shipper wrapper of research §3.1/§3.4 yields the bare message, time and host."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from operatord.core.faults.prefix import normalize, parse_time

MSG = "NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus."
T = datetime(2024, 8, 30, 11, 43, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "time", "host"),
    [
        pytest.param(MSG, None, None, id="bare"),
        pytest.param(f"[ 8123.456789] {MSG}", None, None, id="dmesg"),
        pytest.param(f"[8123.456789] {MSG}", None, None, id="dmesg-no-pad"),
        pytest.param(f"[Fri Aug 30 11:43:09 2024] {MSG}", T, None, id="dmesg-T"),
        pytest.param(
            f"2024-08-30T11:43:09+0000 gpu-a17 kernel: {MSG}", T, "gpu-a17", id="journald-short-iso"
        ),
        pytest.param(
            f"2024-08-30T11:43:09.000000+00:00 gpu-a17 kernel: [ 8123.4] {MSG}",
            T,
            "gpu-a17",
            id="journald-precise+dmesg",
        ),
        pytest.param(f"Aug 30 11:43:09 gpu-a17 kernel: [ 8123.456789] {MSG}", T, "gpu-a17", id="syslog"),
        pytest.param(
            f"Aug 30 11:43:09 gpu-a17 kernel: kern: warning: [2024-08-30T11:43:09Z]: {MSG}",
            T,
            "gpu-a17",
            id="syslog+kern-warning",
        ),
        pytest.param(
            f"192.168.11.119: kern: warning: [2024-08-30T11:43:09.000000000Z]: {MSG}",
            T,
            "192.168.11.119",
            id="talos",
        ),
        pytest.param(f"kern  :warn  : [ 8123.456789] {MSG}", None, None, id="dmesg-x"),
        pytest.param(f"<4>{MSG}", None, None, id="kmsg-level"),
        pytest.param(f"kernel: {MSG}", None, None, id="bare-kernel-tag"),
        pytest.param(
            f"2024-08-30T11:43:09.123456789Z stderr F {MSG}", T.replace(microsecond=123456), None, id="cri"
        ),
        pytest.param(
            f'{{"MESSAGE": "{MSG}", "__REALTIME_TIMESTAMP": "1725018189000000", "_HOSTNAME": "gpu-a17"}}',
            T,
            "gpu-a17",
            id="journald-json",
        ),
        pytest.param(
            f"2024-08-30T11:43:09Z stdout F (VllmWorker rank=1 pid=194255) ERROR 08-30 11:43:09 [multiproc_executor.py:435] {MSG}",
            T,
            None,
            id="cri+vllm-worker",
        ),
        pytest.param(f"INFO 08-30 11:43:09 [engine.py:12] {MSG}", None, None, id="vllm-no-worker"),
    ],
)
def test_prefix_is_stripped(raw: str, time: datetime | None, host: str | None) -> None:
    (rec,) = normalize(raw, 7, year=2024)
    assert (rec.message, rec.time, rec.host, rec.line) == (MSG, time, host, 7)


def test_rsyslog_012_splits_into_records() -> None:
    recs = normalize("Aug 30 11:43:09 h kernel: a#012[ 1.0] b#011c", 3, year=2024)
    assert [(r.sub, r.message, r.host) for r in recs] == [(0, "a", "h"), (1, "b\tc", "h")]


def test_journald_json_binary_message() -> None:
    raw = '{"MESSAGE": [78, 86, 82, 77, 58, 32, 255], "_HOSTNAME": "n"}'
    (rec,) = normalize(raw, 1)
    assert rec.message.startswith("NVRM: ")
    assert rec.host == "n"


def test_syslog_time_without_year_is_unknown() -> None:
    (rec,) = normalize(f"Aug 30 11:43:09 gpu-a17 kernel: {MSG}", 1)
    assert rec.time is None
    assert rec.message == MSG


@pytest.mark.parametrize(
    "value", ["", "garbage", "Feb 30 11:43:09", "2024-13-01T00:00:00Z", "Xyz Aug 99 99:99:99 2024"]
)
def test_bad_times_are_none(value: str) -> None:
    assert parse_time(value, year=2024) is None


def test_not_json_is_kept_as_text() -> None:
    (rec,) = normalize('{"MESSAGE": broken', 1)
    assert rec.message == '{"MESSAGE": broken'
