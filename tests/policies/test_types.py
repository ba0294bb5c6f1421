"""Durations and "N or N%" budgets: the two value syntaxes every section uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operatord.policies.types import CountOrPercent, format_duration, parse_count_or_percent, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90s", 90, id="seconds"),
        pytest.param("5m", 300, id="minutes"),
        pytest.param("2h", 7200, id="hours"),
        pytest.param("7d", 604800, id="days"),
        pytest.param("1h30m", 5400, id="compound"),
        pytest.param("250ms", 0.25, id="milliseconds"),
        pytest.param(45, 45, id="bare-int-is-seconds"),
        pytest.param(1.5, 1.5, id="bare-float-is-seconds"),
        pytest.param(" 5m ", 300, id="whitespace"),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "5", "5 minutes", "m5", "-5m", "5y", True, None, [], -3])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**8))
def test_duration_format_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("value", "total", "budget"),
    [
        pytest.param(2, 100, 2, id="count"),
        pytest.param("3", 100, 3, id="count-as-string"),
        pytest.param("10%", 100, 10, id="percent"),
        pytest.param("10%", 4, 1, id="percent-of-small-pool-still-allows-one"),
        pytest.param("10%", 0, 0, id="empty-pool"),
        pytest.param("0%", 50, 0, id="zero-percent-blocks"),
        pytest.param(0, 50, 0, id="zero-count-blocks"),
        pytest.param("25%", 10, 2, id="rounds-down"),
    ],
)
def test_count_or_percent(value: object, total: int, budget: int) -> None:
    assert parse_count_or_percent(value).of(total) == budget


@pytest.mark.parametrize("bad", ["ten", "110%", -1, "1.5", "%", True])
def test_count_or_percent_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_count_or_percent(bad)


@given(pct=st.floats(min_value=0, max_value=100), total=st.integers(min_value=0, max_value=10_000))
def test_percent_budget_never_exceeds_total(pct: float, total: int) -> None:
    assert 0 <= CountOrPercent(pct, percent=True).of(total) <= total
