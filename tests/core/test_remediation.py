"""plan_remediation and plan_manual_drain: one behaviour per test, on snapshots built by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from operatord.core.health import HealthState
from operatord.core.model import NodeCondition, human
from operatord.core.plan import Cordon, Drain, RecordTransition, RequestCapacity, TripBreaker, Uncordon
from operatord.core.remediation import plan_manual_drain, plan_remediation
from operatord.core.state import Breaker, CapacityRequest, OperatordState, Pause
from operatord.vocab import CONDITION_GPU_HEALTHY, FaultAction, FaultClass, Reason

from .conftest import NOW, a_finding, a_node, a_policy, entry, fleet, minutes, snap, summarize

S = HealthState
POLICY = a_policy(drain_spacing="10m", toleration={"nccl_network_error": "10m", "gpu_nvlink_error": "5m"})
NVLINK = FaultClass.GPU_NVLINK_ERROR


def cordoned(name: str, *, ago: timedelta = timedelta(minutes=30), **kw: object) -> object:
    return a_node(name, cordoned_by="operatord", history=[entry("cordoned", S.CORDONED, ago=ago)], **kw)  # type: ignore[arg-type]


def test_healthy_fleet_needs_nothing() -> None:
    assert plan_remediation(snap(fleet(10)), POLICY, NOW).is_empty


def test_fatal_fault_cordons_at_once() -> None:
    nodes = fleet(10, **{"gpu-03": a_node("gpu-03", findings=[a_finding()])})
    plan = plan_remediation(snap(nodes), POLICY, NOW)
    assert summarize(plan) == ["cordon:gpu-03"]
    (cordon,) = plan.actions_of(Cordon)
    assert cordon.reason == "gpu_fallen_off_bus"
    assert cordon.to_state == S.CORDONED


def test_application_faults_never_act() -> None:
    app = a_finding(FaultClass.CUDA_OOM, fatal=False, action=FaultAction.RESTART_APP, node_fault=False)
    nodes = fleet(10, **{"gpu-03": a_node("gpu-03", findings=[app])})
    assert plan_remediation(snap(nodes), POLICY, NOW).is_empty


def test_quiet_fault_has_recovered() -> None:
    old = a_finding(first=NOW - timedelta(hours=2), last=NOW - timedelta(hours=1))  # quiet 1h > 30m
    nodes = fleet(10, **{"gpu-03": a_node("gpu-03", findings=[old])})
    assert plan_remediation(snap(nodes), POLICY, NOW).is_empty


def test_non_fatal_fault_is_tolerated_then_cordoned() -> None:
    f = a_finding(NVLINK, fatal=False, action=FaultAction.DRAIN)
    fresh = fleet(10, **{"gpu-03": a_node("gpu-03", findings=[f])})
    plan = plan_remediation(snap(fresh), POLICY, NOW)
    assert summarize(plan) == ["record:gpu-03", "hold:tolerating:gpu-03"]
    assert plan.actions_of(RecordTransition)[0].to_state == S.SUSPECT
    suspect = a_node("gpu-03", findings=[f], history=[entry("fault_seen", S.SUSPECT, ago=minutes(2))])
    assert summarize(plan_remediation(snap(fleet(10, **{"gpu-03": suspect})), POLICY, NOW)) == [
        "hold:tolerating:gpu-03"
    ]
    waited = a_node("gpu-03", findings=[f], history=[entry("fault_seen", S.SUSPECT, ago=minutes(6))])
    assert summarize(plan_remediation(snap(fleet(10, **{"gpu-03": waited})), POLICY, NOW)) == [
        "cordon:gpu-03"
    ]


def test_suspect_that_clears_goes_back_to_healthy() -> None:
    suspect = a_node("gpu-03", history=[entry("fault_seen", S.SUSPECT, ago=minutes(2))])
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": suspect})), POLICY, NOW)
    (rec,) = plan.actions_of(RecordTransition)
    assert rec.to_state == S.HEALTHY


def test_cordoned_node_with_drain_fault_drains() -> None:
    node = cordoned("gpu-03", findings=[a_finding()])
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": node})), POLICY, NOW)
    (drain,) = plan.actions_of(Drain)
    assert (drain.node, drain.fatal, drain.to_state) == ("gpu-03", True, S.DRAINING)


def test_cordon_only_fault_never_drains() -> None:
    f = a_finding(FaultClass.THERMAL_OR_POWER, fatal=True, action=FaultAction.CORDON)
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": cordoned("gpu-03", findings=[f])})), POLICY, NOW)
    assert not plan.actions
    assert plan.holds[0].blocked == "drain"


def test_condition_alone_is_a_fault() -> None:
    cond = NodeCondition(CONDITION_GPU_HEALTHY, "False", "GpuFallenOffBus", "xid-79 line", NOW - minutes(1))
    nodes = fleet(10, **{"gpu-03": a_node("gpu-03", conditions=[cond])})
    assert summarize(plan_remediation(snap(nodes), POLICY, NOW)) == ["cordon:gpu-03"]


def test_drain_budget_allows_one_at_a_time_fatal_first() -> None:
    nvlink = a_finding(NVLINK, fatal=False, action=FaultAction.DRAIN, first=NOW - minutes(20))
    nodes = fleet(
        20,
        **{
            "gpu-01": cordoned("gpu-01", findings=[nvlink]),
            "gpu-02": cordoned("gpu-02", findings=[a_finding(first=NOW - minutes(1))]),
        },
    )
    plan = plan_remediation(snap(nodes), POLICY, NOW)
    assert [a.node for a in plan.actions_of(Drain)] == ["gpu-02"]
    assert "hold:drain_budget:gpu-01" in summarize(plan)


def test_drain_in_progress_counts_against_budget_and_resumes() -> None:
    draining = a_node(
        "gpu-01",
        cordoned_by="operatord",
        findings=[a_finding()],
        history=[entry("drain_started", S.DRAINING, ago=minutes(3))],
    )
    nodes = fleet(10, **{"gpu-01": draining, "gpu-02": cordoned("gpu-02", findings=[a_finding()])})
    plan = plan_remediation(snap(nodes), POLICY, NOW)
    (resume,) = plan.actions_of(Drain)
    assert resume.node == "gpu-01"
    assert resume.detail["resume"] is True
    assert "hold:drain_budget:gpu-02" in summarize(plan)


def test_drain_spacing_holds_non_fatal_but_not_fatal() -> None:
    nvlink = a_finding(NVLINK, fatal=False, action=FaultAction.DRAIN)
    recent = a_node(
        "gpu-09",
        cordoned_by="operatord",
        history=[
            entry("drain_started", S.DRAINING, ago=minutes(4)),
            entry("drain_completed", S.DRAINED, ago=minutes(3)),
            entry("handed_off", S.AWAITING_REPAIR, ago=minutes(3)),
        ],
        findings=[a_finding()],
    )
    nodes = fleet(20, **{"gpu-09": recent, "gpu-01": cordoned("gpu-01", findings=[nvlink])})
    assert "hold:drain_spacing:gpu-01" in summarize(plan_remediation(snap(nodes), POLICY, NOW))
    nodes = fleet(20, **{"gpu-09": recent, "gpu-01": cordoned("gpu-01", findings=[a_finding()])})
    assert [a.node for a in plan_remediation(snap(nodes), POLICY, NOW).actions_of(Drain)] == ["gpu-01"]


def test_min_healthy_gpu_fraction_holds_a_capacity_losing_drain() -> None:
    nvlink = a_finding(NVLINK, fatal=False, action=FaultAction.DRAIN)
    policy = a_policy(drain_spacing="0s", max_unhealthy_fraction=0.5, max_concurrent_drains=4)
    drained = [
        a_node(
            f"gpu-0{i}",
            cordoned_by="operatord",
            history=[entry("handed_off", S.AWAITING_REPAIR)],
            findings=[a_finding()],
        )
        for i in range(2)
    ]
    nodes = fleet(8, **{n.name: n for n in drained}, **{"gpu-05": cordoned("gpu-05", findings=[nvlink])})
    # 8 nodes × 8 GPUs = 64; 2 drained → 48 serving; draining gpu-05 → 40 < 0.75 × 64 = 48
    plan = plan_remediation(snap(nodes), policy, NOW)
    assert "hold:min_healthy_capacity:gpu-05" in summarize(plan)


def test_fleet_sick_pool_stops_automatic_remediation() -> None:
    faulty = {
        f"gpu-0{i}": a_node(f"gpu-0{i}", findings=[a_finding(cls, first=NOW - minutes(20 * i), last=NOW)])
        for i, cls in enumerate(
            [FaultClass.GPU_FALLEN_OFF_BUS, FaultClass.GPU_ECC_UNCORRECTABLE, FaultClass.GPU_GSP_ERROR]
        )
    }
    plan = plan_remediation(snap(fleet(10, **faulty)), POLICY, NOW)
    assert not plan.actions_of(Cordon)
    assert [h.reason for h in plan.holds] == [Reason.FLEET_SICK.value] * 3


def test_same_class_on_many_nodes_is_one_fleet_event() -> None:
    faulty = {
        f"gpu-0{i}": a_node(f"gpu-0{i}", findings=[a_finding(first=NOW - minutes(i))]) for i in range(3)
    }
    plan = plan_remediation(snap(fleet(30, **faulty)), POLICY, NOW)
    assert not plan.actions
    (event,) = [h for h in plan.holds if h.reason == Reason.FLEET_EVENT.value]
    assert event.node is None
    assert event.detail["nodes"] == "gpu-00,gpu-01,gpu-02"


def test_same_class_spread_over_time_is_separate_faults() -> None:
    faulty = {
        f"gpu-0{i}": a_node(f"gpu-0{i}", findings=[a_finding(first=NOW - minutes(10 * i), last=NOW)])
        for i in range(3)
    }
    plan = plan_remediation(snap(fleet(30, **faulty)), POLICY, NOW)
    assert [a.node for a in plan.actions_of(Cordon)] == ["gpu-00", "gpu-01", "gpu-02"]


def test_breaker_trips_instead_of_mass_cordon() -> None:
    classes = [FaultClass.GPU_FALLEN_OFF_BUS, FaultClass.GPU_ECC_UNCORRECTABLE]
    policy = a_policy(max_unhealthy_fraction=1.0)
    faulty = {
        f"gpu-0{i}": a_node(f"gpu-0{i}", findings=[a_finding(classes[i % 2], first=NOW - minutes(7 * i))])
        for i in range(3)
    }
    plan = plan_remediation(snap(fleet(4, **faulty)), policy, NOW)
    assert len(plan.actions_of(TripBreaker)) == 1
    assert not plan.actions_of(Cordon)
    assert {h.reason for h in plan.holds} == {Reason.BREAKER_OPEN.value}


def _rollout(cordon_ago: timedelta, state: OperatordState | None = None) -> object:
    """Three nodes show one class within minutes; operatord had cordoned the first on its own."""
    first = a_node(
        "gpu-00",
        cordoned_by="operatord",
        findings=[a_finding(first=NOW - minutes(3))],
        history=[entry("cordoned", S.CORDONED, ago=cordon_ago)],
    )
    later = {
        f"gpu-0{i}": a_node(f"gpu-0{i}", findings=[a_finding(first=NOW - minutes(3 - i))]) for i in (1, 2)
    }
    return plan_remediation(snap(fleet(30, **{"gpu-00": first}, **later), state), POLICY, NOW)


def test_fleet_event_that_explains_our_cordon_trips_the_breaker() -> None:
    """Without the trip, the set-aside fault would make gpu-00 look recovered and be uncordoned."""
    plan = _rollout(minutes(2))
    (trip,) = plan.actions_of(TripBreaker)
    assert trip.detail == {"fleet_event": "gpu_fallen_off_bus", "cordoned": "gpu-00", "count": 1}
    assert plan.actions == (trip,)
    assert ("gpu-00", "uncordon") in {
        (h.node, h.blocked) for h in plan.holds if h.reason == Reason.BREAKER_OPEN.value
    }


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(OperatordState(), id="cordon-outside-window"),
        pytest.param(OperatordState(breaker=Breaker(open=True, since=NOW - minutes(1))), id="already-open"),
    ],
)
def test_fleet_event_trips_only_for_recent_cordons_and_once(state: OperatordState) -> None:
    plan = _rollout(minutes(2) if state.breaker.open else minutes(20), state)
    assert not plan.actions_of(TripBreaker)


def test_fleet_event_alone_never_trips_the_breaker() -> None:
    """A job crash shows one class on many nodes; operatord acted on none of them: hold, no page."""
    faulty = {
        f"gpu-0{i}": a_node(f"gpu-0{i}", findings=[a_finding(first=NOW - minutes(i))]) for i in range(3)
    }
    assert not plan_remediation(snap(fleet(30, **faulty)), POLICY, NOW).actions_of(TripBreaker)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        pytest.param(OperatordState(pause=Pause("rollout", "human:ann", NOW)), Reason.PAUSED, id="paused"),
        pytest.param(
            OperatordState(breaker=Breaker(open=True, since=NOW)), Reason.BREAKER_OPEN, id="breaker-open"
        ),
    ],
)
def test_pause_and_open_breaker_hold_every_automatic_action(state: OperatordState, reason: Reason) -> None:
    recovered = a_node("gpu-05", cordoned_by="operatord", history=[entry("cordoned", S.CORDONED)])
    nodes = fleet(
        10,
        **{
            "gpu-03": a_node("gpu-03", findings=[a_finding()]),
            "gpu-04": cordoned("gpu-04", findings=[a_finding()]),
            "gpu-05": recovered,
        },
    )
    plan = plan_remediation(snap(nodes, state), POLICY, NOW)
    assert not plan.actions
    assert sorted((h.node, h.blocked) for h in plan.holds if h.reason == reason.value) == [
        ("gpu-03", "cordon"),
        ("gpu-04", "drain"),
        ("gpu-05", "uncordon"),
    ]


def test_human_cordon_wins() -> None:
    node = a_node("gpu-03", cordoned_by=human("bob"), findings=[a_finding()])
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": node})), POLICY, NOW)
    assert summarize(plan) == ["hold:human_cordon:gpu-03"]


def test_plain_kubectl_cordon_counts_as_human() -> None:
    node = a_node("gpu-03", findings=[a_finding()])
    node = type(node)(**{**{f: getattr(node, f) for f in node.__dataclass_fields__}, "unschedulable": True})
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": node})), POLICY, NOW)
    assert summarize(plan) == ["hold:human_cordon:gpu-03"]


def test_human_uncordon_is_acknowledged_and_not_fought() -> None:
    finding = a_finding(first=NOW - minutes(40), last=NOW - minutes(1))
    uncordoned = a_node(
        "gpu-03", findings=[finding], history=[entry("cordoned", S.CORDONED, ago=minutes(39))]
    )
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": uncordoned})), POLICY, NOW)
    (rec,) = plan.actions_of(RecordTransition)
    assert (rec.to_state, rec.ack_before) == (S.HEALTHY, NOW)
    acked = a_node(
        "gpu-03",
        findings=[finding],
        history=[
            entry("cordoned", S.CORDONED, ago=minutes(39)),
            entry("human_uncordoned", S.HEALTHY, ago=minutes(0.5), ack_before=NOW - minutes(0.5)),
        ],
    )
    assert plan_remediation(snap(fleet(10, **{"gpu-03": acked})), POLICY, NOW).is_empty
    new = a_finding(FaultClass.GPU_ECC_UNCORRECTABLE, first=NOW)
    again = a_node(
        "gpu-03",
        findings=[finding, new],
        history=[entry("human_uncordoned", S.HEALTHY, ago=minutes(0.5), ack_before=NOW - minutes(0.5))],
    )
    assert summarize(plan_remediation(snap(fleet(10, **{"gpu-03": again})), POLICY, NOW)) == ["cordon:gpu-03"]


def test_escalation_hands_the_node_to_a_human() -> None:
    drains = [entry("drain_started", S.DRAINING, ago=timedelta(days=d)) for d in range(1, 6)]
    node = a_node(
        "gpu-03",
        cordoned_by="operatord",
        findings=[a_finding()],
        history=[*drains, entry("cordoned", S.CORDONED, ago=minutes(5))],
    )
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": node})), POLICY, NOW)
    assert summarize(plan) == ["hold:escalated:gpu-03"]


def test_recovery_uncordons_our_cordon() -> None:
    node = a_node(
        "gpu-03", cordoned_by="operatord", history=[entry("handed_off", S.AWAITING_REPAIR)], rv="77"
    )
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": node})), POLICY, NOW)
    assert summarize(plan) == ["record:gpu-03", "uncordon:gpu-03"]
    (unc,) = plan.actions_of(Uncordon)
    assert unc.actor == "operatord"
    off = a_policy(uncordon_on_recovery=False)
    assert "hold:node_recovered:gpu-03" in summarize(
        plan_remediation(snap(fleet(10, **{"gpu-03": node})), off, NOW)
    )


def test_drained_node_is_handed_off() -> None:
    node = a_node(
        "gpu-03",
        cordoned_by="operatord",
        findings=[a_finding()],
        history=[entry("drain_completed", S.DRAINED, reason="gpu_fallen_off_bus")],
    )
    plan = plan_remediation(snap(fleet(10, **{"gpu-03": node})), POLICY, NOW)
    assert summarize(plan) == ["hand_off:gpu-03"]


class TestCapacity:
    """Replace before drain: a non-fatal drain below demand waits for capacity; a fatal one does not."""

    nvlink = a_finding(NVLINK, fatal=False, action=FaultAction.DRAIN)
    policy = a_policy(drain_spacing="0s", min_healthy_gpu_fraction=0.0)

    def nodes(self) -> list:
        return fleet(10, **{"gpu-03": cordoned("gpu-03", findings=[self.nvlink])})

    def test_request_when_drain_would_starve_demand(self) -> None:
        plan = plan_remediation(snap(self.nodes(), demand_gpus=76), self.policy, NOW)
        (req,) = plan.actions_of(RequestCapacity)
        assert (req.node, req.gpus) == ("gpu-03", 8)
        assert "hold:awaiting_capacity:gpu-03" in summarize(plan)

    def test_waits_then_drains_on_timeout(self) -> None:
        waiting = OperatordState(capacity_requests=(CapacityRequest("gpu-03", 8, "x", NOW - minutes(5)),))
        assert summarize(plan_remediation(snap(self.nodes(), waiting, demand_gpus=76), self.policy, NOW)) == [
            "hold:awaiting_capacity:gpu-03"
        ]
        late = OperatordState(capacity_requests=(CapacityRequest("gpu-03", 8, "x", NOW - minutes(21)),))
        assert summarize(plan_remediation(snap(self.nodes(), late, demand_gpus=76), self.policy, NOW)) == [
            "close_capacity_request:gpu-03",
            "drain:gpu-03",
        ]

    def test_drains_once_replacement_serves(self) -> None:
        waiting = OperatordState(capacity_requests=(CapacityRequest("gpu-03", 8, "x", NOW - minutes(5)),))
        nodes = [*self.nodes(), a_node("replacement-1")]  # the replacement joined and serves
        assert summarize(plan_remediation(snap(nodes, waiting, demand_gpus=76), self.policy, NOW)) == [
            "close_capacity_request:gpu-03",
            "drain:gpu-03",
        ]

    def test_a_burst_replacement_counts_once_its_replica_serves_not_when_its_gpus_appear(self) -> None:
        from dataclasses import replace

        from operatord.core.model import Pod

        waiting = OperatordState(capacity_requests=(CapacityRequest("gpu-03", 8, "x", NOW - minutes(5)),))
        nodes = [*self.nodes(), a_node("burst-1", pool="burst-p4d")]
        loading = replace(snap(nodes, waiting, demand_gpus=76), pods=())
        assert summarize(plan_remediation(loading, self.policy, NOW)) == ["hold:awaiting_capacity:gpu-03"]
        replica = Pod("llm", "vllm-7", node_name="burst-1", gpus=8, ready=True)
        serving = replace(loading, pods=(replica,))
        assert summarize(plan_remediation(serving, self.policy, NOW)) == [
            "close_capacity_request:gpu-03",
            "drain:gpu-03",
        ]

    def test_fatal_never_waits(self) -> None:
        nodes = fleet(10, **{"gpu-03": cordoned("gpu-03", findings=[a_finding()])})
        assert summarize(plan_remediation(snap(nodes, demand_gpus=80), self.policy, NOW)) == ["drain:gpu-03"]

    def test_stale_request_is_closed(self) -> None:
        stale = OperatordState(capacity_requests=(CapacityRequest("gpu-07", 8, "x", NOW - minutes(5)),))
        assert summarize(plan_remediation(snap(fleet(10), stale, demand_gpus=10), self.policy, NOW)) == [
            "close_capacity_request:gpu-07"
        ]


def test_plan_is_deterministic() -> None:
    nodes = fleet(
        20,
        **{
            "gpu-03": cordoned("gpu-03", findings=[a_finding()]),
            "gpu-07": a_node("gpu-07", findings=[a_finding(FaultClass.GPU_GSP_ERROR)]),
        },
    )
    assert plan_remediation(snap(nodes), POLICY, NOW) == plan_remediation(
        snap(list(reversed(nodes))), POLICY, NOW
    )


class TestManualDrain:
    def test_cordons_as_the_human_and_drains(self) -> None:
        plan = plan_manual_drain(snap(fleet(10)), POLICY, "gpu-03", "human:ann", "bad fan", NOW)
        cordon, drain = plan.actions
        assert isinstance(cordon, Cordon)
        assert (cordon.owner, cordon.take_ownership, cordon.to_state) == ("human:ann", True, None)
        assert isinstance(drain, Drain)
        assert (drain.actor, drain.to_state) == ("human:ann", S.DRAINING)

    @pytest.mark.parametrize(
        ("state", "reason"),
        [
            pytest.param(OperatordState(pause=Pause("x", "human:bob", NOW)), Reason.PAUSED, id="paused"),
            pytest.param(OperatordState(breaker=Breaker(open=True)), Reason.BREAKER_OPEN, id="breaker"),
        ],
    )
    def test_refused_by_pause_and_breaker_unless_forced(self, state: OperatordState, reason: Reason) -> None:
        plan = plan_manual_drain(snap(fleet(10), state), POLICY, "gpu-03", "human:ann", "x", NOW)
        assert summarize(plan) == [f"hold:{reason.value}:gpu-03"]
        forced = plan_manual_drain(
            snap(fleet(10), state), POLICY, "gpu-03", "human:ann", "x", NOW, force=True
        )
        assert summarize(forced) == ["cordon:gpu-03", "drain:gpu-03"]

    def test_budget_applies(self) -> None:
        busy = a_node(
            "gpu-01",
            cordoned_by="operatord",
            history=[entry("drain_started", S.DRAINING)],
            findings=[a_finding()],
        )
        plan = plan_manual_drain(snap(fleet(10, **{"gpu-01": busy})), POLICY, "gpu-03", "human:ann", "x", NOW)
        assert summarize(plan) == ["hold:drain_budget:gpu-03"]

    def test_min_healthy_applies(self) -> None:
        drained = {
            f"gpu-0{i}": a_node(
                f"gpu-0{i}", cordoned_by="operatord", history=[entry("handed_off", S.AWAITING_REPAIR)]
            )
            for i in range(2)
        }
        plan = plan_manual_drain(snap(fleet(8, **drained)), POLICY, "gpu-05", "human:ann", "x", NOW)
        assert summarize(plan) == ["hold:min_healthy_capacity:gpu-05"]

    def test_unknown_node(self) -> None:
        with pytest.raises(KeyError):
            plan_manual_drain(snap(fleet(2)), POLICY, "nope", "human:ann", "x", NOW)
