"""IntentStore with a decoded-intent cache (the Observer keeps one): a record is decoded again only
when its resourceVersion changed, a deleted one is forgotten, and what it lists equals an uncached
store's list."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from operatord.core.burst import intent as intent_module
from operatord.core.burst.lifecycle import BurstState
from operatord.shell import intents as store_module
from operatord.shell.intents import DecodedIntents, IntentStore

from .conftest import MemoryConfigMaps
from .test_lifecycle import an_intent


def test_only_changed_records_are_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    cms = MemoryConfigMaps()
    writer = IntentStore(cms, "operatord", "test")
    first = writer.create(an_intent())
    second = writer.create(replace(an_intent(2), id="x2", created_at=first.created_at + timedelta(seconds=1)))
    expected = IntentStore(cms, "operatord", "test").list()[0]
    decoded: list[str] = []

    def counting(data: Any, version: str | None = None) -> Any:
        decoded.append(str(data["id"]))
        return intent_module.from_json(data, version)

    monkeypatch.setattr(store_module, "from_json", counting)
    cache: DecodedIntents = {}
    reader = IntentStore(cms, "operatord", "test", cache)

    listed, bad = reader.list()
    assert decoded == ["x1", "x2"]
    assert bad == ()
    assert listed == expected

    assert reader.list()[0] == listed
    assert decoded == ["x1", "x2"]  # nothing changed: nothing decoded

    moved = writer.update(replace(second, state=BurstState.SERVING))
    (_, now_second), _ = reader.list()
    assert decoded == ["x1", "x2", "x2"]
    assert now_second.state is BurstState.SERVING
    assert now_second.version == moved.version

    writer.delete(first)
    assert [i.id for i in reader.list()[0]] == ["x2"]
    assert set(cache) == {"operatord-intent-x2"}


def test_an_unreadable_record_is_reported_every_time() -> None:
    cms = MemoryConfigMaps()
    IntentStore(cms, "operatord", "test").create(an_intent())
    key = next(iter(cms.items))
    cms.items[key] = replace(cms.items[key], data={"intent": "{not json"}, resource_version="99")
    reader = IntentStore(cms, "operatord", "test", {})
    for _ in range(2):
        intents, bad = reader.list()
        assert intents == ()
        assert [b.name for b in bad] == ["operatord-intent-x1"]
