"""History annotation and operatord-state codecs: round trips, bounds, and unreadable input reported."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operatord.core.health import HealthState
from operatord.core.history import MAX_BYTES, HistoryEntry, decode_history, encode_history
from operatord.core.state import (
    Breaker,
    CapacityRequest,
    OperatordState,
    Pause,
    StateCorrupt,
    decode_state,
    encode_state,
)

from .conftest import NOW, minutes


def test_history_round_trip_and_current_state() -> None:
    entries = [
        HistoryEntry(NOW - minutes(9), "cordoned", "gpu_fallen_off_bus", "operatord", HealthState.CORDONED),
        HistoryEntry(NOW - minutes(8), "note", "x", "operatord", None, note="no state change"),
        HistoryEntry(
            NOW - minutes(5),
            "human_uncordoned",
            "human_uncordon",
            "human:ann",
            HealthState.HEALTHY,
            ack_before=NOW - minutes(5),
        ),
    ]
    history = decode_history(encode_history(entries, NOW))
    assert history.entries == tuple(entries)
    assert history.state == HealthState.HEALTHY
    assert history.ack_before == NOW - minutes(5)
    assert history.state_since == NOW - minutes(5)


def test_history_drops_entries_older_than_30_days() -> None:
    old = HistoryEntry(NOW - timedelta(days=31), "cordoned", "r", "operatord", HealthState.CORDONED)
    new = HistoryEntry(NOW - timedelta(days=1), "drain_started", "r", "operatord", HealthState.DRAINING)
    assert decode_history(encode_history([old, new], NOW)).entries == (new,)


def test_history_is_bounded_and_keeps_newest_and_the_state() -> None:
    entries = [
        HistoryEntry(
            NOW - minutes(1000 - i),
            f"note-{i}",
            "r" * 50,
            "operatord",
            HealthState.AWAITING_REPAIR if i == 0 else None,
            note="n" * 200,
        )
        for i in range(400)
    ]
    text = encode_history(entries, NOW)
    assert len(text.encode()) <= MAX_BYTES
    history = decode_history(text)
    assert history.entries[-1] == entries[-1]
    assert history.state == HealthState.AWAITING_REPAIR


@pytest.mark.parametrize("text", ["{", '{"a": 1}', '[{"event": "x"}]'])
def test_unreadable_history_is_reported_not_raised(text: str) -> None:
    history = decode_history(text)
    assert history.entries == ()
    assert history.problem is not None


def test_state_round_trip_keeps_other_keys() -> None:
    state = OperatordState(
        pause=Pause("rollout", "human:ann", NOW),
        breaker=Breaker(
            open=True, since=NOW, reason="breaker_open", detail="recent=3", counts_from=NOW - minutes(60)
        ),
        capacity_requests=(CapacityRequest("gpu-1", 8, "nccl_timeout", NOW),),
        other={"burst_intents": "[]"},
    )
    data = encode_state(state)
    assert data["burst_intents"] == "[]"
    back = decode_state(data, "42")
    assert back.pause == state.pause
    assert back.breaker == state.breaker
    assert back.capacity_requests == state.capacity_requests
    assert back.resource_version == "42"
    assert back.requested_gpus == 8


def test_corrupt_state_names_the_key() -> None:
    with pytest.raises(StateCorrupt, match="'breaker'"):
        decode_state({"breaker": "{not json"})


@given(
    gpus=st.lists(st.integers(min_value=1, max_value=64), max_size=5),
    paused=st.booleans(),
)
def test_capacity_requests_replace_by_node(gpus: list[int], paused: bool) -> None:
    state = OperatordState(pause=Pause("x", "y", NOW) if paused else None)
    for i, g in enumerate(gpus):
        state = state.with_request(CapacityRequest(f"n{i % 2}", g, "r", NOW))
    assert len(state.capacity_requests) == len({i % 2 for i in range(len(gpus))})
    back = decode_state(encode_state(state))
    assert back.capacity_requests == state.capacity_requests
    assert json.loads(encode_state(back.without_request("n0"))["capacity_requests"]) == [
        {"node": r.node, "gpus": r.gpus, "reason": r.reason, "since": r.since.isoformat()}
        for r in state.capacity_requests
        if r.node != "n0"
    ]
