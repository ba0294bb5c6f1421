"""The labelled corpus: every real (or marked synthetic) line gives exactly the expected verdict."""

from __future__ import annotations

import io
from collections import Counter

import pytest

from operatord.core.faults.catalog import Catalog
from operatord.core.faults.classify import classify_text
from operatord.policies.load import LoadedPolicy
from operatord.shell.scan import Scanner
from operatord.vocab import FaultClass
from tests.faults.conftest import CORPUS_ENTRIES, Entry

FAULTS = [e for e in CORPUS_ENTRIES if e.expect is not None]
BENIGN = [e for e in CORPUS_ENTRIES if e.expect is None]

# Minimum share of a class's corpus entries that must be found with the right class through the
# full scanner, under every log-shipper prefix below. Node-fault-bearing classes must be perfect:
# a miss there is a bad GPU left serving. App classes tolerate one miss in ten.
RECALL_FLOOR = {c: 1.0 for c in FaultClass if c is not FaultClass.NONE}
RECALL_FLOOR.update(
    {
        FaultClass.CUDA_OOM: 0.9,
        FaultClass.CUDA_DEVICE_ASSERT: 0.9,
        FaultClass.NCCL_INTERNAL_OR_USAGE: 0.9,
        FaultClass.NCCL_TIMEOUT: 0.9,
        FaultClass.THERMAL_OR_POWER: 0.9,
    }
)

PREFIXES = {
    "bare": "{line}",
    "dmesg": "[ 8123.456789] {line}",
    "dmesg-T": "[Fri Aug 30 11:43:09 2024] {line}",
    "journald-short-iso": "2024-08-30T11:43:09+0000 gpu-a17 kernel: {line}",
    "syslog": "Aug 30 11:43:09 gpu-a17 kernel: [ 8123.456789] {line}",
    "talos": "192.168.11.119: kern: warning: [2026-04-22T21:26:20.599716692Z]: {line}",
    "cri": "2024-05-08T14:46:12.123456789Z stderr F {line}",
    "vllm": "(VllmWorker rank=1 pid=194255) ERROR 05-08 14:46:12 [multiproc_executor.py:435] {line}",
}


def test_every_entry_has_a_source_or_is_marked_synthetic() -> None:
    for e in CORPUS_ENTRIES:
        assert bool(e.source) != bool(e.synthetic), f"{e.label}: needs exactly one of source / synthetic"
        assert len(e.source or e.synthetic or "") >= 10, f"{e.label}: say where it comes from"


def test_corpus_has_enough_benign_look_alikes() -> None:
    assert len(BENIGN) >= 30


def test_every_class_the_rules_use_is_in_the_corpus(loaded: LoadedPolicy) -> None:
    used = {r.class_ for r in loaded.rules} | {
        o.then.class_ for r in loaded.rules for o in r.overrides if o.then.class_ is not None
    }
    covered = {FaultClass(e.expect["class"]) for e in FAULTS}
    assert used <= covered, f"classes without corpus lines: {sorted(used - covered)}"


def test_every_rule_fires_on_some_corpus_entry(loaded: LoadedPolicy) -> None:
    """Xid rules have their own table (test_xid_table.py); every other rule needs a corpus line."""
    covered = {e.expect["rule"] for e in FAULTS}
    missing = sorted(r.id for r in loaded.rules if r.id not in covered and not r.id.startswith("xid-"))
    assert not missing, f"rules no corpus entry exercises: {missing}"


@pytest.mark.parametrize("entry", FAULTS, ids=[e.label for e in FAULTS])
def test_fault_entry_gives_expected_verdict(catalog: Catalog, entry: Entry) -> None:
    found = classify_text(catalog, entry.text)
    assert len(found) == 1, f"expected one finding, got {[f.rule for f in found]}"
    f = found[0]
    expect = entry.expect or {}
    assert (f.rule, f.class_.value, f.node_fault) == (expect["rule"], expect["class"], expect["node_fault"])
    for field in ("xid", "gpu", "peer"):
        if field in expect:
            assert getattr(f, field) == expect[field], field


@pytest.mark.parametrize("entry", BENIGN, ids=[e.label for e in BENIGN])
def test_benign_entry_gives_nothing(catalog: Catalog, entry: Entry) -> None:
    assert classify_text(catalog, entry.text) == []


def test_recall_per_class_through_the_scanner_under_every_prefix(
    loaded: LoadedPolicy, catalog: Catalog
) -> None:
    """Each fault entry, wrapped in a shipper prefix and between benign lines, through the fast path.

    One scan per entry: entries that share rule and fields would otherwise fold into one finding.
    """
    scanner = Scanner(catalog, silence=loaded.policy.faults.burst_silence)
    hits: Counter[FaultClass] = Counter()
    total: Counter[FaultClass] = Counter()
    for name, prefix in PREFIXES.items():
        for i, e in enumerate(FAULTS):
            before, after = BENIGN[i % len(BENIGN)].text, BENIGN[(i + 7) % len(BENIGN)].text
            lines = [before, *e.text.splitlines(), after]
            body = "\n".join(prefix.format(line=ln) for ln in lines) + "\n"
            result = scanner.scan(io.BytesIO(body.encode()), source=name, node_from_host=False)
            cls = FaultClass(e.expect["class"])
            total[cls] += 1
            got = [(f.line, f.class_, f.node_fault) for f in result.findings]
            if got == [(2, cls, e.expect["node_fault"])]:
                hits[cls] += 1
    low = {c.value: round(hits[c] / total[c], 3) for c in total if hits[c] / total[c] < RECALL_FLOOR[c]}
    assert not low, f"recall below the floor: {low}"
