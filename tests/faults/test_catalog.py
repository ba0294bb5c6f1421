"""The shipped catalog: runbooks exist, prefilters are ERE both engines accept, and never hide a match."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from operatord.core.faults.catalog import Catalog, ere_to_python
from operatord.core.faults.prefilter import Prefilter, PrefilterError
from operatord.policies.faultrules import FaultRules
from operatord.policies.load import LoadedPolicy
from operatord.vocab import FaultClass
from tests.faults.conftest import CORPUS_ENTRIES, ROOT

RUNBOOK_SECTIONS = (
    "## What fired",
    "## What operatord did",
    "## Impact",
    "## Verify",
    "## Manual steps",
    "## Undo",
    "## Escalate",
)


def _classes(loaded: LoadedPolicy) -> set[FaultClass]:
    return {r.class_ for r in loaded.rules} | {
        o.then.class_ for r in loaded.rules for o in r.overrides if o.then.class_ is not None
    }


def test_every_rule_points_at_an_existing_runbook(loaded: LoadedPolicy) -> None:
    missing = sorted({r.runbook for r in loaded.rules if not (ROOT / "runbooks" / r.runbook).is_file()})
    assert not missing, f"runbooks missing: {missing}"


def test_every_class_a_rule_can_produce_has_a_runbook_with_the_fixed_sections(loaded: LoadedPolicy) -> None:
    for cls in sorted(_classes(loaded)):
        path = ROOT / "runbooks" / f"{cls.value}.md"
        assert path.is_file(), f"{path} missing"
        text = path.read_text()
        positions = [text.find(s) for s in RUNBOOK_SECTIONS]
        assert all(p >= 0 for p in positions), (
            f"{path}: missing sections {[s for s, p in zip(RUNBOOK_SECTIONS, positions, strict=True) if p < 0]}"
        )
        assert positions == sorted(positions), f"{path}: sections out of order"
        assert "kubectl" in text, f"{path}: show the kubectl commands and output the reader will see"


def test_rule_runbook_is_its_class(loaded: LoadedPolicy) -> None:
    assert all(r.runbook == f"{r.class_.value}.md" for r in loaded.rules)


def test_hyperscan_accepts_every_prefilter(catalog: Catalog) -> None:
    assert Prefilter(catalog.prefilters, engine="hyperscan").engine == "hyperscan"


def test_grep_accepts_every_prefilter_and_agrees_with_the_engine(catalog: Catalog, tmp_path: Path) -> None:
    """The benchmark baseline and the fast engine must select the same candidate lines."""
    patterns = tmp_path / "prefilters.txt"
    patterns.write_text("\n".join(catalog.prefilters) + "\n")
    lines = [ln for e in CORPUS_ENTRIES for ln in e.text.splitlines()]
    sample = tmp_path / "sample.log"
    sample.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        ["grep", "-E", "-n", "-f", str(patterns), str(sample)],
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C"},
    )
    assert proc.returncode in (0, 1), proc.stderr
    grep_lines = {int(x.split(":", 1)[0]) for x in proc.stdout.splitlines()}
    data = sample.read_bytes()
    engine_lines = {
        data.count(b"\n", 0, start) + 1 for start, _, _ in Prefilter(catalog.prefilters).candidates(data)
    }
    assert grep_lines == engine_lines


def test_prefilter_never_hides_a_line_the_pattern_confirms(catalog: Catalog) -> None:
    """A rule's prefilter must match (at least) the first line of every corpus entry its pattern accepts."""
    for e in CORPUS_ENTRIES:
        first = e.text.splitlines()[0]
        for r in catalog.rules:
            if r.rule.multiline is None and r.rule.pattern.search(first):
                assert r.prefilter.search(first), (
                    f"{r.rule.id}: pattern matches but prefilter misses: {first!r}"
                )


def test_prefilter_engine_error_names_the_pattern() -> None:
    with pytest.raises(PrefilterError, match="bad"):
        Prefilter(["ok", "(bad"], engine="hyperscan")


def test_rule_file_rejects_non_ere_prefilter() -> None:
    with pytest.raises(ValueError, match="POSIX ERE"):
        FaultRules.model_validate(
            {
                "kind": "FaultRules",
                "rules": [
                    {
                        "id": "x-1",
                        "class": "cuda_oom",
                        "node_fault": False,
                        "severity": "app",
                        "action": "none",
                        "sources": ["file"],
                        "prefilter": r"CUDA\s+out",
                        "pattern": "CUDA",
                        "runbook": "cuda_oom.md",
                    }
                ],
            }
        )


def test_posix_classes_translate_for_the_python_fallback() -> None:
    assert re.search(ere_to_python("a[[:space:]]+b[[:digit:]]"), "a  b7")
