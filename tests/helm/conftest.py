"""Fixtures for the Helm chart tests (helpers and values sets live in chartkit.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from chartkit import CHART, VALUE_SETS, Rendered, render
from helm_python import chart as hc


@pytest.fixture(scope="session")
def chart() -> hc.Chart:
    return hc.Chart.load(str(CHART))


@pytest.fixture(scope="session")
def rendered(chart: hc.Chart) -> dict[str, Rendered]:
    return {name: render(chart, values) for name, values in VALUE_SETS.items()}


@pytest.fixture(scope="session")
def renderer(chart: hc.Chart) -> Callable[[Mapping[str, Any]], Rendered]:
    return lambda values: render(chart, values)
