"""Suite-wide settings: hypothesis profiles, and in CI no silent skips (only GPU tests may skip)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    bad = [r for r in reporter.stats.get("skipped", []) if "gpu" not in getattr(r, "keywords", {})]
    if bad:
        reporter.write_line(
            f"CI: {len(bad)} test(s) skipped that must run here (only @pytest.mark.gpu may skip):"
        )
        for r in bad:
            reporter.write_line(f"  {r.nodeid}: {r.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
