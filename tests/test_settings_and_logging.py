"""Settings precedence (options > OPERATORD_* env > --config file > defaults) and log formats."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog

from operatord.settings import SettingsError, load_settings
from operatord.shell.telemetry import configure_logging


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPERATORD_PROMETHEUS_URL", "OPERATORD_LOG_LEVEL", "OPERATORD_POLICY"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert (s.prometheus_url, s.log_level, s.namespace) == (None, "info", "operatord")


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("prometheus_url: http://from-file:9090\nnamespace: ops\nlog_level: debug\n")
    monkeypatch.setenv("OPERATORD_PROMETHEUS_URL", "http://from-env:9090")
    monkeypatch.setenv("OPERATORD_LOG_LEVEL", "warning")
    s = load_settings(cfg, log_level="error")
    assert s.prometheus_url == "http://from-env:9090"  # env beats file
    assert s.namespace == "ops"  # file beats default
    assert s.log_level == "error"  # option beats env


def test_unknown_key_in_config_file_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("prometeus_url: http://typo:9090\n")
    with pytest.raises(SettingsError, match="prometeus_url"):
        load_settings(cfg)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_aws_variables_are_left_to_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_PROFILE", "burst")
    s = load_settings()
    assert s.aws_profile is None
    assert s.aws_region is None


def test_json_logs_have_event_level_and_utc_time() -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    structlog.get_logger().info("plan.computed", node="gpu-a17", actions=2)
    structlog.get_logger().debug("tick.noise")
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "plan.computed"
    assert record["node"] == "gpu-a17"
    assert record["level"] == "info"
    assert record["timestamp"].endswith("Z")


def test_auto_format_is_json_off_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("auto", "info", stream=out)
    structlog.get_logger().warning("breaker.tripped", pool="a100")
    assert json.loads(out.getvalue())["event"] == "breaker.tripped"
