"""`operatord policy check|schema`, `--help`, `--version` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from operatord import __version__
from operatord.cli import app

ROOT = Path(__file__).resolve().parents[2]
OPERATORD = [sys.executable, "-m", "operatord"]


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*OPERATORD, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"operatord {__version__}"


def test_root_help_lists_exit_codes_and_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "Exit codes: 0 ok; 1 found or refused; 2 usage or input error" in " ".join(result.stdout.split())
    assert "policy" in result.stdout


def test_check_help_states_exit_codes() -> None:
    out = " ".join(run("policy", "check", "--help").stdout.split())
    assert "Exit codes: 0 every file valid; 1 a file is invalid" in out
    assert "2 a file cannot be read or is not YAML" in out


def test_check_shipped_policies_exit_0() -> None:
    files = [str(p) for p in sorted((ROOT / "policies").rglob("*.yaml"))]
    result = run("policy", "check", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok (") == len(files)


def test_check_defaults_to_settings_policy(tmp_path: Path) -> None:
    result = run("policy", "check", env={"OPERATORD_POLICY": str(ROOT / "policies/examples/minimal.yaml")})
    assert result.returncode == 0
    assert "minimal.yaml: ok (Policy" in result.stdout


def test_check_invalid_exit_1_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Policy\ncluster: Not_A_Dns_Name\nmystery: 1\n")
    result = run("policy", "check", str(bad))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{bad}:1:1: pools: required field is missing" in lines
    assert f"{bad}:1:1: serving: required field is missing" in lines
    assert any(line.startswith(f"{bad}:2:1: cluster: String should match pattern") for line in lines)
    assert any(line.startswith(f"{bad}:3:1: mystery: unknown field") for line in lines)
    assert "Traceback" not in result.stderr


def test_check_unreadable_beats_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Policy\n")
    broken = tmp_path / "broken.yaml"
    broken.write_bytes(b"kind: Policy\ncluster: \xff\xfe\n")
    result = run("policy", "check", str(bad), str(broken), str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert f"{broken}:2:10: not valid UTF-8" in result.stdout
    assert f"{tmp_path / 'missing.yaml'}:1:1: no such file" in result.stdout


def test_check_json_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: FaultRules\nrules: []\n")
    result = run("policy", "check", "-o", "json", str(bad), str(ROOT / "policies/default.yaml"))
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["schema_version"] == 1
    assert body["valid"] is False
    assert [f["valid"] for f in body["files"]] == [False, True]
    assert body["problems"] == [
        {
            "file": str(bad),
            "line": 2,
            "column": 1,
            "path": "rules",
            "message": "List should have at least 1 item after validation, not 0",
        }
    ]


def test_schema_prints_json_schema() -> None:
    result = run("policy", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Policy"
    assert "remediation" in schema["properties"]
    rules = json.loads(run("policy", "schema", "--kind", "FaultRules").stdout)
    assert rules["title"] == "FaultRules"


def test_schema_unknown_kind_is_usage_error() -> None:
    result = run("policy", "schema", "--kind", "Nope")
    assert result.returncode == 2
    assert "--kind must be Policy or FaultRules" in result.stderr


def test_unknown_command_is_usage_error() -> None:
    result = run("polcy")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_bad_config_file_is_a_clear_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("log_level: loud\n")
    result = run("--config", str(cfg), "policy", "check", str(ROOT / "policies/default.yaml"))
    assert result.returncode == 2
    assert "log_level" in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- property

_KEYS = st.sampled_from(
    [
        "kind",
        "cluster",
        "pools",
        "serving",
        "models",
        "mode",
        "burst",
        "name",
        "gpu_type",
        "rules",
        "pattern",
        "prefilter",
        "remediation",
        "breaker",
        "fraction",
        "window",
        "x",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.sampled_from(["Policy", "FaultRules", "observe", "5m", "10%", "(", "[a-", "local", "burst"]),
    st.text(max_size=20),
)
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=25,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=120)
@given(doc=_DOCS, raw=st.binary(max_size=200), use_raw=st.booleans())
def test_check_never_tracebacks(tmp_path: Path, doc: object, raw: bytes, use_raw: bool) -> None:
    path = tmp_path / "random.yaml"
    if use_raw:
        path.write_bytes(raw)
    else:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2)


@pytest.mark.parametrize("args", [["policy"], ["policy", "check", "--help"], ["policy", "schema", "--help"]])
def test_help_works_without_settings(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env={"OPERATORD_LOG_LEVEL": "nonsense"})
    assert result.exit_code in (0, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)
