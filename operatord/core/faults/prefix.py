"""Pure. Strip log-shipper prefixes so rules see the message, and keep the time and host they carry.

A kernel line reaches operatord in many wrappers: plain dmesg `[ 12.345678]`, `dmesg -T`
`[Fri Aug 30 11:43:09 2024]`, journald short-iso and short-precise, classic syslog,
Talos/`kern: warning:` shippers, rsyslog's `#012` newline escapes, `journalctl -o json`,
the CRI container-log format of /var/log/pods, and vLLM worker prefixes. `normalize` peels
any stack of them; one input line may carry several messages (`#012`), so it returns records.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_PEELS = 6

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}

# Each entry: a prefix regex anchored at the start, with optional groups `time`, `host`.
_CRI = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) (?:stdout|stderr) [PF] "
)
_TALOS = re.compile(
    r"^(?P<host>[\w.:-]+): (?:kern|user|daemon|syslog|auth|local\d): *\w+: *"
    r"\[(?P<time>\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?)\]: "
)
_KERN_WARNING = re.compile(
    r"^(?:kern|user|daemon|syslog|auth|local\d): *(?:emerg|alert|crit|err|warn|warning|notice|info|debug): *"
    r"(?:\[(?P<time>\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?)\]: )?"
)
_ISO = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(?P<host>[\w.-]+) (?P<tag>[\w.@/-]+)(?:\[\d+\])?: "
)
_SYSLOG = re.compile(
    r"^(?P<time>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d) "
    r"(?P<host>[\w.-]+) (?P<tag>[\w.@/-]+)(?:\[\d+\])?: "
)
_DMESG_T = re.compile(r"^\[(?P<time>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\] ?")
_DMESG = re.compile(r"^\[ *\d+\.\d+\] ?")
_DMESG_X = re.compile(
    r"^(?:kern|user|daemon) *: *(?:emerg|alert|crit|err|warn|warning|notice|info|debug) *: "
)
_KERN_LEVEL = re.compile(r"^<\d>")
_KERNEL_TAG = re.compile(r"^kernel: ")  # `journalctl -o cat`-like exports and pasted journal lines
_VLLM = re.compile(
    r"^(?:\((?:VllmWorker|RayWorkerWrapper|EngineCore|Worker|APIServer)[^)]{0,80}\) )?"
    r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[^\]]{1,120}\] "
)
_VLLM_WORKER = re.compile(r"^\((?:VllmWorker|RayWorkerWrapper|EngineCore|Worker|APIServer)[^)]{0,80}\) ")
_PREFIXES = (
    _CRI,
    _TALOS,
    _KERN_WARNING,
    _ISO,
    _SYSLOG,
    _DMESG_T,
    _DMESG,
    _DMESG_X,
    _KERN_LEVEL,
    _KERNEL_TAG,
    _VLLM,
    _VLLM_WORKER,
)


_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
# Which prefixes can start with which character: a line is only tried against those (a flood of
# 800K lines makes every regex call count). Order within a bucket is the order of _PREFIXES.
_FIRST_CHARS: dict[re.Pattern[str], str] = {
    _CRI: _DIGITS,
    _TALOS: _DIGITS + _UPPER + _LOWER + ":._-",
    _KERN_WARNING: _LOWER,
    _ISO: _DIGITS,
    _SYSLOG: "ADFJMNOS",
    _DMESG_T: "[",
    _DMESG: "[",
    _DMESG_X: _LOWER,
    _KERN_LEVEL: "<",
    _KERNEL_TAG: "k",
    _VLLM: "(DIWEC",
    _VLLM_WORKER: "(",
}
_BY_FIRST_CHAR: dict[str, tuple[re.Pattern[str], ...]] = {
    c: tuple(p for p in _PREFIXES if c in _FIRST_CHARS[p])
    for c in {ch for chars in _FIRST_CHARS.values() for ch in chars}
}


@dataclass(frozen=True, slots=True)
class Record:
    """One log message: `line` is the 1-based input line, `sub` its index among `#012` parts."""

    line: int
    sub: int
    message: str
    time: datetime | None = None
    host: str | None = None


def normalize(text: str, line: int, *, year: int | None = None) -> list[Record]:
    """Split one raw input line into records with prefixes removed. Total: never raises."""
    text = text.rstrip("\r\n")
    time: datetime | None = None
    host: str | None = None
    if text.startswith("{") and '"MESSAGE"' in text:
        decoded = _journal_json(text)
        if decoded is not None:
            text, time, host = decoded
    for _ in range(MAX_PEELS):
        peeled = False
        for prefix in _BY_FIRST_CHAR.get(text[:1], ()):
            m = prefix.match(text)
            if m is None or m.end() == 0:
                continue
            groups = m.groupdict()
            if groups.get("time") and time is None:
                time = parse_time(groups["time"], year=year)
            if groups.get("host") and host is None:
                host = groups["host"]
            text = text[m.end() :]
            peeled = True
            break
        if not peeled:
            break
    if "#012" not in text:
        return [Record(line, 0, text.replace("#011", "\t"), time, host)]
    parts = text.split("#012")
    return [Record(line, i, _peel_dmesg(p).replace("#011", "\t"), time, host) for i, p in enumerate(parts)]


def _peel_dmesg(text: str) -> str:
    m = _DMESG.match(text)
    return text[m.end() :] if m else text


def _journal_json(text: str) -> tuple[str, datetime | None, str | None] | None:
    """`journalctl -o json` line → (message, time, host); None when it is not such an object."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    message = obj.get("MESSAGE")
    if isinstance(message, list):  # journald sends non-UTF-8 messages as a byte array
        try:
            message = bytes(int(b) & 0xFF for b in message).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return None
    if not isinstance(message, str):
        return None
    time: datetime | None = None
    stamp = obj.get("__REALTIME_TIMESTAMP")
    if isinstance(stamp, str) and stamp.isdigit():
        time = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(stamp))
    host = obj.get("_HOSTNAME")
    return message, time, host if isinstance(host, str) else None


def parse_time(value: str, *, year: int | None = None) -> datetime | None:
    """Memoised (a pure function; floods repeat the same stamp thousands of times): see _parse_time."""
    return _parse_time_cached(value, year)


@functools.lru_cache(maxsize=1024)
def _parse_time_cached(value: str, year: int | None) -> datetime | None:
    return _parse_time(value, year=year)


def _parse_time(value: str, *, year: int | None = None) -> datetime | None:
    """ISO, syslog (`Aug 30 11:43:09`, needs `year`) or `dmesg -T` stamps → aware UTC datetime.

    Stamps without a zone are taken as UTC (journald short-iso carries one; dmesg -T and
    syslog do not, and node clocks of GPU fleets run in UTC). Unparseable → None.
    """
    value = value.strip()
    try:
        if value[:4].isdigit():
            iso = value.replace(",", ".")
            if iso.endswith("Z"):
                iso = iso[:-1] + "+00:00"
            m = re.match(r"^(.*?\d\d:\d\d:\d\d)(\.\d+)?(.*)$", iso)
            if m and m.group(2) and len(m.group(2)) > 7:  # nanoseconds: Python keeps microseconds
                iso = m.group(1) + m.group(2)[:7] + m.group(3)
            if re.search(r"[+-]\d{4}$", iso):
                iso = iso[:-2] + ":" + iso[-2:]
            parsed = datetime.fromisoformat(iso)
        elif value[:3] in _MONTHS:
            if year is None:
                return None
            mon, day, clock = value.split()
            h, mi, s = (int(x) for x in clock.split(":"))
            parsed = datetime(year, _MONTHS[mon], int(day), h, mi, s)
        else:  # dmesg -T: "Fri Aug 30 11:43:09 2024"
            _, mon, day, clock, yr = value.split()
            h, mi, s = (int(x) for x in clock.split(":"))
            parsed = datetime(int(yr), _MONTHS[mon], int(day), h, mi, s)
    except (ValueError, KeyError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
