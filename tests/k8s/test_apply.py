"""shell.apply and shell.state on FakeClusterApi: modes, dry-run, failure isolation, CAS, a full node cycle."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from operatord.core.health import HealthState
from operatord.core.history import decode_history
from operatord.core.model import ConfigMap, CordonOwner, Node, NodeCondition, OwnerKind, Pod, frozen_map
from operatord.core.plan import Cordon, Drain, Plan, RecordTransition, Uncordon
from operatord.core.remediation import plan_remediation
from operatord.core.state import CapacityRequest
from operatord.ports.cluster import Conflict, Unreachable
from operatord.shell.apply import CONDITION_AWAITING_REPAIR, ApplyContext, apply_plan
from operatord.shell.observe_nodes import observe_nodes
from operatord.shell.remediate import remediation_tick
from operatord.shell.state import StateStore
from operatord.testing.builders import a_finding
from operatord.testing.fakes import FakeClusterApi, FakePdb
from operatord.vocab import ANNOTATION_FINDINGS, ANNOTATION_HISTORY, LABEL_POOL, FaultClass, Mode

from .conftest import a_policy

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
NS = "operatord"
POLICY = a_policy(drain_spacing="0s")
WRITES = {
    "cordon",
    "uncordon",
    "evict",
    "delete_pod",
    "patch_node_annotations",
    "set_node_condition",
    "create_configmap",
    "replace_configmap",
    "create_event",
}


def cluster_with(n: int = 10) -> FakeClusterApi:
    fake = FakeClusterApi()
    for i in range(n):
        fake.add_node(
            Node(
                f"gpu-{i}",
                labels=frozen_map({LABEL_POOL: "local-a100"}),
                conditions=(NodeCondition("Ready", "True"),),
                gpus=8,
            )
        )
        fake.add_pod(Pod("llm", f"vllm-{i}", f"gpu-{i}", controller_kind=OwnerKind.REPLICA_SET, gpus=8))
    return fake


def set_findings(fake: FakeClusterApi, node: str, findings: list[object]) -> None:
    current = fake.get_node(node)
    annotations = {k: v for k, v in current.annotations.items() if k != ANNOTATION_FINDINGS}
    if findings:
        annotations[ANNOTATION_FINDINGS] = json.dumps([f.to_json() for f in findings])  # type: ignore[attr-defined]
    fake.update_node(replace(current, annotations=frozen_map(annotations)))


def tick(
    fake: FakeClusterApi, now: datetime, mode: Mode = Mode.FULL, dry_run: bool = False
) -> tuple[Plan, list]:
    snap = observe_nodes(fake, NS, now)
    plan = plan_remediation(snap, POLICY, now)
    ctx = ApplyContext(fake, NS, POLICY, mode, dry_run=dry_run, clock=lambda: now, sleep=lambda s: None)
    return plan, apply_plan(plan, ctx)


def history_states(fake: FakeClusterApi, node: str) -> list[str]:
    history = decode_history(fake.get_node(node).annotations.get(ANNOTATION_HISTORY))
    return [f"{e.event}>{e.state.value if e.state else '-'}" for e in history.entries]


def test_full_cycle_cordon_drain_hand_off_recover_uncordon() -> None:
    fake = cluster_with()
    set_findings(fake, "gpu-3", [a_finding(first=T0, last=T0)])
    _, out = tick(fake, T0)
    assert [(o.kind, o.status) for o in out] == [("cordon", "applied")]
    assert fake.get_node("gpu-3").cordon_owner == CordonOwner("operatord", "gpu_fallen_off_bus", T0)
    _, out = tick(fake, T0 + timedelta(minutes=1))
    assert [(o.kind, o.status) for o in out] == [("drain", "applied")]
    assert [p.name for p in fake.list_pods(node_name="gpu-3").items] == []
    _, out = tick(fake, T0 + timedelta(minutes=2))
    assert [(o.kind, o.status) for o in out] == [("hand_off", "applied")]
    cond = fake.get_node("gpu-3").condition(CONDITION_AWAITING_REPAIR)
    assert cond is not None
    assert (cond.status, cond.reason) == ("True", "GpuFallenOffBus")
    # the repair happened; the agent stops reporting; after the quiet period the node recovers
    set_findings(fake, "gpu-3", [])
    _, out = tick(fake, T0 + timedelta(minutes=40))
    assert [(o.kind, o.status) for o in out] == [("record", "applied"), ("uncordon", "applied")]
    node = fake.get_node("gpu-3")
    assert not node.unschedulable
    assert node.condition(CONDITION_AWAITING_REPAIR).status == "False"  # type: ignore[union-attr]
    assert history_states(fake, "gpu-3") == [
        "cordoned>cordoned",
        "drain_started>draining",
        "drain_completed>drained",
        "handed_off>awaiting_repair",
        "fault_cleared>recovering",
        "uncordoned>healthy",
    ]
    reasons = [e.reason for e in fake.events]
    assert reasons[0] == "gpu_fallen_off_bus"
    assert "awaiting_repair" in reasons


def test_observe_mode_records_but_never_cordons() -> None:
    fake = cluster_with()
    set_findings(fake, "gpu-3", [a_finding(first=T0, last=T0)])
    _, out = tick(fake, T0, mode=Mode.OBSERVE)
    assert [(o.kind, o.status) for o in out] == [("cordon", "would")]
    assert not fake.get_node("gpu-3").unschedulable


def test_cordon_only_mode_cordons_but_does_not_drain() -> None:
    fake = cluster_with()
    set_findings(fake, "gpu-3", [a_finding(first=T0, last=T0)])
    tick(fake, T0, mode=Mode.CORDON_ONLY)
    _, out = tick(fake, T0 + timedelta(minutes=1), mode=Mode.CORDON_ONLY)
    assert [(o.kind, o.status) for o in out] == [("drain", "would")]
    assert [p.name for p in fake.list_pods(node_name="gpu-3").items] == ["vllm-3"]


def test_dry_run_writes_nothing() -> None:
    fake = cluster_with()
    set_findings(fake, "gpu-3", [a_finding(first=T0, last=T0)])
    before = len(fake.calls)
    _, out = tick(fake, T0, dry_run=True)
    assert [o.status for o in out] == ["would"]
    assert not [c for c in fake.calls[before:] if c.method in WRITES]


def test_failed_cordon_skips_the_drain_of_that_node_only() -> None:
    fake = cluster_with()
    plan = Plan.of(
        Cordon(key="c3", reason="r", node="gpu-3", owner="operatord"),
        Drain(key="d3", reason="r", node="gpu-3", actor="operatord"),
        RecordTransition(
            key="r4", reason="r", node="gpu-4", event="fault_seen", to_state=HealthState.SUSPECT
        ),
    )
    fake.fail_next("cordon", Unreachable("timeout"))
    out = apply_plan(plan, ApplyContext(fake, NS, POLICY, Mode.FULL, clock=lambda: T0))
    assert [(o.node, o.status) for o in out] == [
        ("gpu-3", "failed"),
        ("gpu-3", "skipped"),
        ("gpu-4", "applied"),
    ]
    assert not [c for c in fake.calls if c.method == "evict"]


def test_uncordon_loses_to_a_human_who_took_the_cordon_in_between() -> None:
    fake = cluster_with()
    fake.cordon("gpu-3", CordonOwner("operatord", "r", T0))
    fake.patch_node_annotations("gpu-3", CordonOwner("human:bob", "keep it out", T0).annotations())
    plan = Plan.of(Uncordon(key="u", reason="node_recovered", node="gpu-3", actor="operatord"))
    (out,) = apply_plan(plan, ApplyContext(fake, NS, POLICY, Mode.FULL, clock=lambda: T0))
    assert out.status == "refused"
    assert fake.get_node("gpu-3").unschedulable


def test_uncordon_write_is_conditioned_on_the_version_read() -> None:
    fake = cluster_with()
    fake.cordon("gpu-3", CordonOwner("operatord", "r", T0))
    fake.fail_next("uncordon", Conflict("changed", 409))
    plan = Plan.of(Uncordon(key="u", reason="node_recovered", node="gpu-3", actor="operatord"))
    (out,) = apply_plan(plan, ApplyContext(fake, NS, POLICY, Mode.FULL, clock=lambda: T0))
    assert out.status == "refused"
    assert fake.get_node("gpu-3").unschedulable


def test_state_store_compare_and_set_keeps_both_writers() -> None:
    fake = FakeClusterApi()
    store = StateStore(fake, NS)
    store.pause("rollout", "human:ann", T0)
    # another writer changes the ConfigMap between our read and our write: we re-read, not overwrite
    current = fake.get_configmap(NS, "operatord-state")
    original = fake.replace_configmap

    def racing(cm: ConfigMap) -> ConfigMap:
        fake.replace_configmap = original  # type: ignore[method-assign]
        other = StateStore(fake, NS)
        other.update(lambda s: s.with_request(CapacityRequest("gpu-9", 8, "r", T0)))
        return original(cm)

    fake.replace_configmap = racing  # type: ignore[method-assign]
    state = store.update(lambda s: s.with_request(CapacityRequest("gpu-1", 8, "r", T0)))
    assert current.resource_version != state.resource_version
    assert {r.node for r in store.load().capacity_requests} == {"gpu-1", "gpu-9"}
    assert store.load().pause is not None


def test_state_store_gives_up_on_endless_conflicts() -> None:
    fake = FakeClusterApi()
    store = StateStore(fake, NS)
    fake.fail_next("create_configmap", Conflict("busy", 409), times=20)
    with pytest.raises(Conflict):
        store.pause("x", "y", T0)


def test_breaker_trip_persists_and_silences_later_ticks() -> None:
    fake = cluster_with(4)
    for i, cls in enumerate(["gpu_fallen_off_bus", "gpu_ecc_uncorrectable", "gpu_gsp_error"]):
        set_findings(fake, f"gpu-{i}", [a_finding(FaultClass(cls), first=T0, last=T0)])
    policy_state = StateStore(fake, NS)
    snap = observe_nodes(fake, NS, T0)
    policy = a_policy(max_unhealthy_fraction=1.0)
    plan = plan_remediation(snap, policy, T0)
    apply_plan(plan, ApplyContext(fake, NS, policy, Mode.FULL, clock=lambda: T0))
    assert policy_state.load().breaker.open
    later = plan_remediation(
        observe_nodes(fake, NS, T0 + timedelta(minutes=1)), policy, T0 + timedelta(minutes=1)
    )
    assert not later.actions
    assert {h.reason for h in later.holds} == {"breaker_open"}
    policy_state.reset_breaker(
        "human:ann", "driver rolled back", T0 + timedelta(minutes=2), skip_backlog=True
    )
    after = plan_remediation(
        observe_nodes(fake, NS, T0 + timedelta(minutes=3)), policy, T0 + timedelta(minutes=3)
    )
    assert after.is_empty  # the backlog (findings before the reset) is skipped


class Clock:
    """Virtual time shared by the daemon's clock and the drain's sleep."""

    def __init__(self) -> None:
        self.now = T0
        self.t = 0.0

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.now += timedelta(seconds=seconds)


def test_daemon_drain_slices_resume_across_ticks_until_the_timeout() -> None:
    fake = cluster_with()
    fake.add_pdb(FakePdb("llm", "vllm", {"app": "vllm"}, min_available=10))
    for i in range(10):  # label the serving pods so the PDB selects them
        pod = fake.list_pods(namespace="llm", node_name=f"gpu-{i}").items[0]
        fake.remove_pod("llm", pod.name)
        fake.add_pod(replace(pod, labels=frozen_map({"app": "vllm"})))
    set_findings(fake, "gpu-3", [a_finding(first=T0, last=T0 + timedelta(hours=1))])
    clock = Clock()

    def daemon_tick() -> list:
        snap = observe_nodes(fake, NS, clock.now)
        plan = plan_remediation(snap, POLICY, clock.now)
        ctx = ApplyContext(
            fake,
            NS,
            POLICY,
            Mode.FULL,
            clock=lambda: clock.now,
            sleep=clock.sleep,
            monotonic=lambda: clock.t,
            drain_slice=timedelta(seconds=30),
        )
        return apply_plan(plan, ctx)

    daemon_tick()  # cordon
    out = daemon_tick()
    assert [(o.kind, o.status) for o in out] == [("drain", "in_progress")]
    assert history_states(fake, "gpu-3")[-1] == "drain_started>draining"
    out = daemon_tick()  # resumed: no second drain_started entry
    assert [(o.kind, o.status) for o in out] == [("drain", "in_progress")]
    assert [s for s in history_states(fake, "gpu-3") if s.startswith("drain_started")] == [
        "drain_started>draining"
    ]
    clock.now += timedelta(minutes=15)  # past remediation.drain.timeout from the start
    out = daemon_tick()
    assert [(o.kind, o.status, o.reason) for o in out] == [("drain", "failed", "drain_timeout")]
    assert history_states(fake, "gpu-3")[-1] == "drain_failed>cordoned"


def test_remediation_tick_lowers_the_mode_never_raises_it() -> None:
    fake = cluster_with()
    set_findings(fake, "gpu-3", [a_finding(first=T0, last=T0)])
    ceiling = a_policy().model_copy(update={"mode": Mode.CORDON_ONLY})
    result = remediation_tick(fake, NS, ceiling, T0, mode=Mode.FULL)
    assert [(o.kind, o.status) for o in result.outcomes] == [("cordon", "applied")]  # cordon-only allows it
    result = remediation_tick(fake, NS, ceiling, T0 + timedelta(minutes=1), mode=Mode.FULL)
    assert [(o.kind, o.status) for o in result.outcomes] == [
        ("drain", "would")
    ]  # --mode full cannot raise it
    dry = remediation_tick(fake, NS, POLICY, T0 + timedelta(minutes=2), dry_run=True)
    assert [o.status for o in dry.outcomes] == ["would"]
    assert fake.list_pods(node_name="gpu-3").items
