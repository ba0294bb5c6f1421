"""Value types used across policy models: durations, "N or N%" budgets, fractions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

_DURATION = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)\s*$")
_DURATION_PARTS = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?(ms|s|m|h|d))+\s*$"


def parse_duration(value: Any) -> timedelta:
    """Parse "90s", "5m", "2h", "7d", "1h30m", or a number of seconds, into a timedelta.

    Raises ValueError with the accepted forms for anything else, so the user sees how to fix it.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(_duration_help(value))
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text or not re.fullmatch(DURATION_PATTERN, text):
            raise ValueError(_duration_help(value))
        seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PARTS.findall(text))
    else:
        raise ValueError(_duration_help(value))
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Shortest exact form of a duration in the policy syntax ("90s", "5m", "2h", "1h30m")."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    if total != int(total):
        return f"{round(total * 1000)}ms"
    seconds = int(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def _duration_help(value: Any) -> str:
    return f'invalid duration {value!r}: use a number of seconds or "90s", "5m", "2h", "7d", "1h30m"'


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": 'A duration: seconds as a number, or "90s", "5m", "2h", "7d", "1h30m".',
        }
    ),
]


@dataclass(frozen=True, slots=True)
class CountOrPercent:
    """A budget written as an absolute count ("2") or a share of a total ("10%")."""

    value: float
    percent: bool

    def of(self, total: int) -> int:
        """The budget for `total` items; a percentage rounds down but never below 1 when total > 0
        and the percentage is positive (a 10 % budget on a 4-node pool still allows one drain)."""
        if not self.percent:
            return int(self.value)
        if total <= 0 or self.value <= 0:
            return 0
        return max(1, int(total * self.value / 100.0))

    def __str__(self) -> str:
        if self.percent:
            return f"{self.value:g}%"
        return str(int(self.value))


def parse_count_or_percent(value: Any) -> CountOrPercent:
    if isinstance(value, CountOrPercent):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return CountOrPercent(float(value), percent=False)
    if isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
        if match:
            pct = float(match.group(1))
            if pct > 100:
                raise ValueError(f"a percentage must be at most 100%, got {value!r}")
            return CountOrPercent(pct, percent=True)
        if text.isdigit():
            return CountOrPercent(float(text), percent=False)
    raise ValueError(f'expected a count like 2 or a percentage like "10%", got {value!r}')


CountOrPercentField = Annotated[
    CountOrPercent,
    BeforeValidator(parse_count_or_percent),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*%|\d+)\s*$"},
            ],
            "description": 'A count (2) or a percentage of the pool ("10%").',
        }
    ),
]

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
