"""Shared CLI plumbing: exit codes, output formats, errors a user can act on."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import typer
from typer._click.exceptions import (
    ClickException,
)  # typer vendors click; plain `click` is not what it catches

from operatord.settings import Settings, SettingsError, load_settings

SCHEMA_VERSION = 1


class ExitCode(IntEnum):
    """Design §1.2. When several apply: USAGE > UNREACHABLE > FOUND > OK."""

    OK = 0
    FOUND = 1  # found or refused: a node fault, an invalid policy, a guard said no
    USAGE = 2  # usage or input error, or declined at a prompt
    UNREACHABLE = 3  # a dependency (API server, Prometheus, AWS) could not be reached
    INTERNAL = 70  # a bug in operatord (EX_SOFTWARE); never a user mistake


def worst(*codes: ExitCode) -> ExitCode:
    order = [ExitCode.INTERNAL, ExitCode.USAGE, ExitCode.UNREACHABLE, ExitCode.FOUND, ExitCode.OK]
    return next(c for c in order if c in codes) if codes else ExitCode.OK


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 found or refused; 2 usage or input error; 3 a dependency could not be reached."
)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class CliError(ClickException):
    """A problem the user can fix; printed as one line without a traceback, exits with `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = int(code)

    def show(self, file: Any = None) -> None:
        sys.stderr.write(f"operatord: {self.format_message()}\n")


@dataclass
class CliContext:
    """Options of the root command, turned into Settings on first use (so --help never fails)."""

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_file, **self.overrides)
            except SettingsError as err:
                raise CliError(str(err)) from None
        return self._settings


def context(ctx: typer.Context) -> CliContext:
    root = ctx.find_root()
    if not isinstance(root.obj, CliContext):
        root.obj = CliContext()
    return root.obj


def print_json(obj: dict[str, Any]) -> None:
    body = {"schema_version": SCHEMA_VERSION, **obj}
    sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")


def print_table(rows: list[list[str]], headers: list[str]) -> None:
    """Plain aligned columns: greppable, no box drawing, safe to paste into an incident channel."""
    cells = [headers, *rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(headers))]
    for row in cells:
        sys.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> typer.Exit:
    sys.stderr.write(f"operatord: {message}\n")
    return typer.Exit(int(code))


def confirm(question: str, yes: bool) -> None:
    """Ask on the terminal unless --yes; anything but y/yes (or no input) declines with exit 2."""
    if yes:
        return
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("declined; nothing was changed (use --yes to skip the prompt)", ExitCode.USAGE)
