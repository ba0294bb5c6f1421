"""Runbooks never rot: one per fault class, reason and alert, fixed sections, and every
`operatord` command in their console blocks runs against the shared harness with the exit code
and output they document (runbooks/README.md explains the conventions)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harnessworld import World
from runbookkit import SECTIONS, mismatch, parse, runnable_elsewhere

from operatord.vocab import FaultClass, Reason

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
BOOKS = sorted(p for p in RUNBOOKS.glob("*.md") if p.name != "README.md")


def _alerts() -> set[str]:
    from chartkit import CHART, render
    from helm_python import chart as hc

    r = render(hc.Chart.load(str(CHART)), {"prometheusRule": {"enabled": True}})
    (rule,) = r.kind("PrometheusRule")
    return {x["alert"] for g in rule["spec"]["groups"] for x in g["rules"]}


def test_every_fault_class_reason_and_alert_has_a_runbook() -> None:
    names = {p.stem for p in BOOKS}
    wanted = {c.value for c in FaultClass if c is not FaultClass.NONE} | {r.value for r in Reason} | _alerts()
    assert sorted(wanted - names) == []
    assert sorted(names - wanted) == [], "runbooks for nothing operatord emits"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_runbook_has_the_fixed_sections_in_order(path: Path) -> None:
    book = parse(path)
    assert book.text.startswith(f"# {book.name}: "), "title: '# <name>: <what it means>'"
    headings = [h for h in book.headings() if h in SECTIONS]
    assert headings == list(SECTIONS), f"{path.name}: sections {book.headings()}"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_operatord_commands_outside_console_blocks_need_a_shell(path: Path) -> None:
    book = parse(path)
    for line, text in book.loose_commands:
        assert runnable_elsewhere(text), (
            f"{path.name}:{line}: put `{text}` in a ```console block so it is tested"
        )


# Runbooks with operatord console commands, grouped by scenario so read-only runbooks share one
# seeded cluster (World.prepare). Runbooks without such commands have nothing to run (no skip).
RUNNABLE = sorted((p for p in BOOKS if parse(p).commands), key=lambda p: (parse(p).scenario, p.stem))


def test_most_runbooks_have_commands_to_run() -> None:
    assert len(RUNNABLE) >= len(BOOKS) // 2


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.stem)
def test_console_commands_run_as_documented(world: World, path: Path) -> None:
    book = parse(path)
    world.prepare(book.scenario)
    for cmd in book.commands:
        result = world.run(cmd.args)
        where = f"{path.name}:{cmd.line}: `{cmd.text}`"
        assert result.crashed is None, f"{where} crashed: {result.crashed!r}"
        assert not any("No such command" in x for x in result.lines), f"{where}: no such command"
        assert result.exit_code == cmd.exit_code, f"{where}: exit {result.exit_code}\n" + "\n".join(
            result.lines
        )
        diff = mismatch(cmd.expected, result.lines)
        assert diff is None, f"{where}\n{diff}"


def test_the_readme_documents_every_scenario() -> None:
    from cluster import BURST_SCENARIOS, SCENARIOS

    readme = (RUNBOOKS / "README.md").read_text()
    for name in [*SCENARIOS, *BURST_SCENARIOS]:
        assert f"`{name}`" in readme, f"runbooks/README.md does not describe scenario {name}"
    used = {parse(p).scenario for p in BOOKS}
    assert used <= {*SCENARIOS, *BURST_SCENARIOS}


def test_placeholder_matching() -> None:
    from runbookkit import mismatch as m

    assert (
        m(["breaker OPEN since <time> (x)"], ["breaker OPEN since 2026-11-28T10:51:51.000667+00:00 (x)"])
        is None
    )
    assert m(["a   b", "...", "z"], ["a b", "1", "2", "z", ""]) is None
    assert m(["a"], ["b"]) is not None
    assert m(["a", "..."], []) is not None
