"""The agent's publication, pure: conditions, folding into the annotation, Events, size limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from operatord.core.faults.publish import (
    MAX_ANNOTATION_BYTES,
    AgentState,
    conditions,
    findings_annotation,
    merge,
    parse_findings_annotation,
    publication,
    stack_annotation,
)
from operatord.core.findings import Finding
from operatord.core.model import NodeCondition
from operatord.policies.model import FaultsPolicy
from operatord.vocab import FaultAction, FaultClass, Severity

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
POLICY = FaultsPolicy()


def f(
    at: timedelta = timedelta(0),
    *,
    cls: FaultClass = FaultClass.GPU_FALLEN_OFF_BUS,
    node_fault: bool = True,
    rule: str = "xid-79",
    gpu: str | None = "0000:91:00.0",
    line: int = 1,
    severity: Severity = Severity.FATAL,
    text: str = "NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus.",
) -> Finding:
    when = T0 + at
    return Finding(
        node="gpu-a17",
        source="kmsg",
        line=line,
        time=when,
        class_=cls,
        node_fault=node_fault,
        severity=severity,
        action=FaultAction.REBOOT,
        rule=rule,
        text=text,
        xid=79 if rule == "xid-79" else None,
        gpu=gpu,
        first_seen=when,
        last_seen=when,
    )


def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


def by_type(conds: tuple[NodeCondition, ...]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in conds}


def test_node_fault_sets_its_condition_false_with_camel_reason_and_rule_message() -> None:
    conds = conditions([f()], POLICY, T0 + minutes(1))
    assert by_type(conds) == {
        "GPUHealthy": ("False", "GpuFallenOffBus"),
        "NCCLHealthy": ("True", "NoNodeFault"),
    }
    gpu = next(c for c in conds if c.type == "GPUHealthy")
    assert gpu.message.startswith("xid-79: NVRM: Xid (PCI:0000:91:00): 79")


def test_ib_fault_speaks_to_nccl_healthy() -> None:
    conds = conditions(
        [f(cls=FaultClass.IB_LINK_DOWN, rule="mlx5-link-down", severity=Severity.DEGRADED)], POLICY, T0
    )
    assert by_type(conds)["NCCLHealthy"] == ("False", "IbLinkDown")


def test_app_fault_never_sets_a_condition() -> None:
    conds = conditions(
        [f(cls=FaultClass.CUDA_OOM, node_fault=False, rule="cuda-oom", severity=Severity.APP)], POLICY, T0
    )
    assert {c.status for c in conds} == {"True"}


def test_condition_clears_after_the_quiet_period() -> None:
    assert by_type(conditions([f()], POLICY, T0 + minutes(29)))["GPUHealthy"][0] == "False"
    assert by_type(conditions([f()], POLICY, T0 + minutes(30)))["GPUHealthy"][0] == "True"


def test_healthy_probe_after_the_fault_clears_gpu_healthy_early() -> None:
    assert (
        by_type(conditions([f()], POLICY, T0 + minutes(5), healthy_probe_at=T0 + minutes(4)))["GPUHealthy"][0]
        == "True"
    )
    assert (
        by_type(conditions([f(minutes(5))], POLICY, T0 + minutes(6), healthy_probe_at=T0 + minutes(4)))[
            "GPUHealthy"
        ][0]
        == "False"
    )


def test_most_severe_active_finding_names_the_condition() -> None:
    degraded = f(minutes(2), cls=FaultClass.GPU_XID_OTHER_HW, rule="xid-157", severity=Severity.DEGRADED)
    conds = conditions([f(), degraded], POLICY, T0 + minutes(3))
    gpu = next(c for c in conds if c.type == "GPUHealthy")
    assert (gpu.reason, gpu.message.endswith("(+1 more)")) == ("GpuFallenOffBus", True)


def test_repeats_fold_and_only_new_bursts_are_events() -> None:
    state, opened = merge(
        AgentState(), [f(), f(minutes(1), line=2), f(minutes(2), line=3)], POLICY.burst_silence
    )
    assert (len(state.findings), state.findings[0].count, len(opened)) == (1, 3, 1)
    state, opened = merge(state, [f(minutes(20), line=9)], POLICY.burst_silence)
    assert ([x.count for x in state.findings], len(opened)) == ([3, 1], 1)


def test_publication_events_and_recovery_event() -> None:
    state, pub = publication("gpu-a17", AgentState(), [f()], {}, POLICY, T0)
    assert [(e.reason, e.type) for e in pub.events] == [("gpu_fallen_off_bus", "Warning")]
    assert "runbooks/gpu_fallen_off_bus.md" in pub.events[0].message
    _, later = publication("gpu-a17", state, [], {}, POLICY, T0 + minutes(31), previous=pub.conditions)
    assert [e.reason for e in later.events] == ["node_recovered"]


def test_annotation_round_trips_and_respects_limits() -> None:
    many = [f(minutes(i * 10), line=i, text="x" * 5000) for i in range(80)]
    raw = findings_annotation(many)
    assert len(raw.encode()) <= MAX_ANNOTATION_BYTES
    back = parse_findings_annotation(raw)
    assert 0 < len(back) <= 50
    assert back[-1].line == 79  # the newest survive
    small = findings_annotation([f()])
    assert parse_findings_annotation(small) == (f(),)


def test_malformed_annotation_reads_as_empty_or_skips_entries() -> None:
    assert parse_findings_annotation("not json") == ()
    assert parse_findings_annotation('{"a": 1}') == ()
    good = json.loads(findings_annotation([f()]))[0]
    assert len(parse_findings_annotation(json.dumps([{"bad": True}, good]))) == 1


def test_stack_annotation_is_flat_and_only_known_keys() -> None:
    assert json.loads(
        stack_annotation({"driver": "570.148.06", "nccl": "2.21.5", "cuda": "12.4", "x": "1"}) or ""
    ) == {
        "cuda": "12.4",
        "driver": "570.148.06",
        "nccl": "2.21.5",
    }
    assert stack_annotation({}) is None
