"""Shell: structlog configuration, done once per process.

JSON when stderr is not a terminal or inside a cluster (one object a line for log shippers),
a readable console format for a person at a terminal; UTC ISO timestamps either way.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog


class _CurrentStderr:
    """Writes to whatever sys.stderr is *now*: test runners and CLI runners swap it per call, and a
    logger bound to a stream that has since been closed would crash the next log line."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return getattr(sys.stderr, "isatty", lambda: False)()


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info", *, stream: object | None = None
) -> None:
    out = stream if stream is not None else _CurrentStderr()
    if fmt == "auto":
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
        fmt = "json" if in_cluster or not getattr(out, "isatty", lambda: False)() else "console"
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
