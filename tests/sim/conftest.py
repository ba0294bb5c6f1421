"""Fixtures of the simulator tests: run `operatord simulate` in process and keep each report.

Each scenario runs once per session (through the real CLI command, moto in process) and the
report is shared by the golden-file test and the scenario's own assertions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from operatord.cli import app

SimRun = Callable[..., tuple[int, dict[str, Any], str]]


@pytest.fixture(autouse=True)
def _fresh_structlog() -> None:
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def sim_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim")


@pytest.fixture(scope="session")
def simulate(sim_out: Path) -> SimRun:
    """simulate(scenario, *args) → (exit code, report.json, stdout); cached per argument list."""
    cache: dict[tuple[str, ...], tuple[int, dict[str, Any], str]] = {}

    def run(scenario: str, *args: str) -> tuple[int, dict[str, Any], str]:
        key = (scenario, *args)
        if key not in cache:
            out = sim_out / f"run{len(cache)}"
            result = CliRunner().invoke(app, ["simulate", scenario, "--out", str(out), *args])
            crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
            if crashed or result.exit_code not in (0, 1):
                raise AssertionError(f"simulate {key} exited {result.exit_code}: {result.output}") from (
                    result.exception
                )
            report = json.loads((out / "report.json").read_text())
            cache[key] = (result.exit_code, report, result.stdout)
        return cache[key]

    return run
