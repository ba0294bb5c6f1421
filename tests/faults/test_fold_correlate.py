"""Folding repeats into bursts, and correlation across GPUs, nodes and time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operatord.core.faults.correlate import (
    apply_recovery_actions,
    blame_with_link_evidence,
    correlate,
    escalate_repeats,
    fleet_events,
    suspect_peers,
)
from operatord.core.faults.fold import Folder, fold
from operatord.core.findings import Finding
from operatord.policies.model import FaultsPolicy
from operatord.vocab import FaultAction, FaultClass, Severity

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
POLICY = FaultsPolicy()


def a_finding(
    at: timedelta | None = timedelta(0),
    *,
    node: str | None = "n1",
    rule: str = "xid-79",
    cls: FaultClass = FaultClass.GPU_FALLEN_OFF_BUS,
    node_fault: bool = True,
    xid: int | None = 79,
    gpu: str | None = "0000:91:00.0",
    peer: str | None = None,
    line: int = 1,
    action: FaultAction = FaultAction.REBOOT,
) -> Finding:
    when = None if at is None else T0 + at
    return Finding(
        node=node,
        source=f"{node}.log",
        line=line,
        time=when,
        class_=cls,
        node_fault=node_fault,
        severity=Severity.FATAL if node_fault else Severity.APP,
        action=action,
        rule=rule,
        text="t",
        xid=xid,
        gpu=gpu,
        peer=peer,
        first_seen=when,
        last_seen=when,
    )


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


def test_repeats_inside_a_burst_fold_into_one_with_a_count() -> None:
    out = fold([a_finding(minutes(i), line=i + 1) for i in range(5)], minutes(3))
    assert [(f.count, f.first_seen, f.last_seen, f.line) for f in out] == [(5, T0, T0 + minutes(4), 1)]


def test_silence_longer_than_the_window_opens_a_new_burst() -> None:
    out = fold(
        [a_finding(minutes(0)), a_finding(minutes(1), line=2), a_finding(minutes(10), line=3)], minutes(3)
    )
    assert [f.count for f in out] == [2, 1]


def test_different_gpus_never_fold() -> None:
    out = fold([a_finding(), a_finding(gpu="0000:92:00.0", line=2)], minutes(3))
    assert len(out) == 2


def test_folder_memory_is_bounded_by_keys_not_lines() -> None:
    folder = Folder(minutes(3))
    for i in range(10_000):
        assert folder.add(a_finding(timedelta(seconds=i % 60), line=i)) == []
    assert len(folder) == 1
    (f,) = folder.close()
    assert f.count == 10_000


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=40))
def test_fold_preserves_the_total_count_and_is_idempotent(offsets: list[int]) -> None:
    items = [a_finding(minutes(m), line=i) for i, m in enumerate(sorted(offsets))]
    once = fold(items, minutes(3))
    assert sum(f.count for f in once) == len(items)
    assert fold(once, minutes(3)) == once


def test_xid_154_decides_the_action_of_the_xid_before_it() -> None:
    xid = a_finding(rule="xid-109", cls=FaultClass.GPU_XID_OTHER_HW, xid=109, action=FaultAction.RESET_GPU)
    rec = a_finding(
        minutes(0.1),
        rule="xid-154",
        cls=FaultClass.GPU_XID_OTHER_HW,
        xid=154,
        action=FaultAction.REBOOT,
        line=2,
    )
    other_gpu = replace(xid, gpu="0000:92:00.0", line=3)
    out = apply_recovery_actions([xid, rec, other_gpu], minutes(3))
    assert [f.action for f in out] == [FaultAction.REBOOT, FaultAction.REBOOT, FaultAction.RESET_GPU]


def test_xid_154_long_after_does_not_apply() -> None:
    xid = a_finding(rule="xid-109", xid=109, action=FaultAction.RESET_GPU)
    rec = a_finding(minutes(30), rule="xid-154", xid=154, action=FaultAction.NONE, node_fault=False, line=2)
    assert apply_recovery_actions([xid, rec], minutes(3))[0].action is FaultAction.RESET_GPU


def test_app_xid_repeating_on_one_gpu_escalates_to_a_cordon() -> None:
    app = {
        "rule": "xid-31",
        "cls": FaultClass.GPU_XID_APP,
        "xid": 31,
        "node_fault": False,
        "action": FaultAction.RESTART_APP,
    }
    first, again = a_finding(**app), a_finding(timedelta(hours=5), line=9, **app)  # type: ignore[arg-type]
    out, esc = escalate_repeats([first, again], timedelta(hours=24))
    assert [(f.node_fault, f.action) for f in out] == [
        (False, FaultAction.RESTART_APP),
        (True, FaultAction.CORDON),
    ]
    assert [(e.xid, e.occurrences, e.verdict) for e in esc] == [(31, 2, "suspect_gpu")]


def test_app_xid_on_different_gpus_stays_the_app() -> None:
    app = {"rule": "xid-31", "cls": FaultClass.GPU_XID_APP, "xid": 31, "node_fault": False}
    out, esc = escalate_repeats(
        [a_finding(**app), a_finding(minutes(60), gpu="0000:92:00.0", **app)], timedelta(hours=24)
    )  # type: ignore[arg-type]
    assert not any(f.node_fault for f in out)
    assert esc == []


def test_repeat_outside_the_window_does_not_escalate() -> None:
    app = {"rule": "xid-13", "cls": FaultClass.GPU_XID_APP, "xid": 13, "node_fault": False}
    out, esc = escalate_repeats(
        [a_finding(**app), a_finding(timedelta(hours=30), **app)], timedelta(hours=24)
    )  # type: ignore[arg-type]
    assert esc == []
    assert not any(f.node_fault for f in out)


def test_same_class_on_many_nodes_is_one_fleet_event_not_many_bad_nodes() -> None:
    xid45 = {"rule": "xid-45", "cls": FaultClass.NCCL_TIMEOUT, "xid": None, "node_fault": False}
    many = [a_finding(minutes(i), node=f"n{i}", **xid45) for i in range(4)]  # type: ignore[arg-type]
    hw = [a_finding(minutes(i * 0.5), node=f"h{i}") for i in range(3)]
    out, events = fleet_events([*many, *hw], 3, minutes(5))
    kinds = sorted((e.class_.value, e.kind, len(e.nodes)) for e in events)
    assert kinds == [("gpu_fallen_off_bus", "fleet", 3), ("nccl_timeout", "job", 4)]
    assert not any(f.node_fault for f in out)


def test_two_nodes_are_not_a_fleet_event() -> None:
    out, events = fleet_events([a_finding(node="a"), a_finding(node="b")], 3, minutes(5))
    assert events == []
    assert all(f.node_fault for f in out)


def test_nodes_spread_over_hours_are_separate_faults() -> None:
    out, events = fleet_events([a_finding(minutes(60 * i), node=f"n{i}") for i in range(4)], 3, minutes(5))
    assert events == []
    assert all(f.node_fault for f in out)


def test_nccl_network_errors_blame_no_node_but_name_a_suspect_peer() -> None:
    net = {
        "rule": "nccl-ib-completion-error",
        "cls": FaultClass.NCCL_NETWORK_ERROR,
        "xid": None,
        "gpu": None,
        "node_fault": False,
    }
    items = [a_finding(node=n, peer="10.0.0.5", **net) for n in ("a", "b")] + [
        a_finding(node="c", peer="10.0.0.6", **net)
    ]  # type: ignore[arg-type]
    assert [(p.peer, p.reported_by) for p in suspect_peers(items)] == [("10.0.0.5", ("a", "b"))]
    assert correlate(items, POLICY).node_faults == ()


def test_nccl_network_error_blames_the_node_only_with_its_own_link_evidence() -> None:
    net = {
        "rule": "nccl-ib-completion-error",
        "cls": FaultClass.NCCL_NETWORK_ERROR,
        "xid": None,
        "gpu": None,
        "node_fault": False,
    }
    link = {"rule": "mlx5-link-down", "cls": FaultClass.IB_LINK_DOWN, "xid": None, "gpu": None}
    items = [
        a_finding(minutes(1), node="a", peer="10.0.0.9", **net),  # type: ignore[arg-type]
        a_finding(minutes(0), node="a", **link),  # type: ignore[arg-type]
        a_finding(minutes(1), node="b", peer="10.0.0.9", **net),  # type: ignore[arg-type]  # no link evidence on b
        a_finding(minutes(60), node="a", peer="10.0.0.9", line=7, **net),  # type: ignore[arg-type]  # an hour later
    ]
    out = blame_with_link_evidence(items, minutes(5))
    assert [f.node_fault for f in out] == [True, True, False, False]


@pytest.mark.parametrize("n", [0, 1, 5])
def test_correlate_is_deterministic(n: int) -> None:
    items = [a_finding(minutes(i), node=f"n{i % 2}", line=i) for i in range(n)]
    assert correlate(items, POLICY) == correlate(list(items), POLICY)
