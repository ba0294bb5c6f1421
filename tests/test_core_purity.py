"""The core must stay pure (design §3.2): a scan, so the rule does not depend on review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "operatord" / "core"
FORBIDDEN = [
    (re.compile(r"\bdatetime\.now\(|\bdatetime\.utcnow\(|\bdate\.today\("), "reads the wall clock"),
    (re.compile(r"\btime\.(time|monotonic|sleep|perf_counter)\("), "reads the clock or sleeps"),
    (re.compile(r"^\s*(import random|from random import)", re.M), "uses randomness"),
    (re.compile(r"(?<!def )(?<![\w.])open\("), "does file I/O"),
    (
        re.compile(r"^\s*(import|from) (os|subprocess|socket|logging|structlog)\b", re.M),
        "imports an I/O module",
    ),
]


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_is_pure(path: Path) -> None:
    text = path.read_text()
    found = [why for pattern, why in FORBIDDEN if pattern.search(text)]
    assert not found, f"{path.name} {', '.join(found)}"
