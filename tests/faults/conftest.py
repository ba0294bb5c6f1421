"""Fixtures for the fault-detection tests: the shipped catalog and the labelled corpus."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from operatord.core.faults.catalog import Catalog
from operatord.policies.load import LoadedPolicy, load_policy

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).with_name("corpus.yaml")


@dataclass(frozen=True)
class Entry:
    text: str
    expect: dict[str, Any] | None
    source: str | None
    synthetic: str | None

    @property
    def label(self) -> str:
        return str((self.expect or {}).get("rule", "benign")) + ":" + self.text.splitlines()[0][:60]


class _UniqueKeys(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (a second `expect:` would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError(f"{CORPUS}:{node.start_mark.line + 1}: duplicate key(s) {sorted(dup)}")
        return super().construct_mapping(node, deep=deep)


def load_corpus() -> list[Entry]:
    raw = yaml.load(CORPUS.read_text(), Loader=_UniqueKeys)
    out = []
    for item in raw:
        expect = item.get("expect")
        out.append(
            Entry(
                item["text"], None if expect == "none" else expect, item.get("source"), item.get("synthetic")
            )
        )
    return out


CORPUS_ENTRIES = load_corpus()


@pytest.fixture(scope="session")
def loaded() -> LoadedPolicy:
    return load_policy(ROOT / "policies" / "default.yaml")


@pytest.fixture(scope="session")
def catalog(loaded: LoadedPolicy) -> Catalog:
    return Catalog.of(loaded.rules)
