"""Random fault arrivals, clears and human actions against the real planner and apply path (fakes,
virtual time). After every tick: never more drains than the budget, never a capacity-losing
drain below the minimum healthy share, no automatic action while paused or with the breaker
open, and a node a human uncordoned is never re-cordoned for a finding seen before that."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from operatord.core import guards
from operatord.core.health import HealthState, NodeEvent
from operatord.core.history import HistoryEntry
from operatord.core.model import CordonOwner, Node, NodeCondition, OwnerKind, Pod, frozen_map, human
from operatord.core.nodes import build_views
from operatord.core.plan import Cordon, Drain, Plan, Uncordon
from operatord.core.remediation import plan_remediation
from operatord.core.snapshot import Snapshot
from operatord.ports.cluster import Unreachable
from operatord.shell.apply import ApplyContext, apply_plan
from operatord.shell.observe_nodes import observe_nodes
from operatord.shell.state import StateStore, append_history
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import ANNOTATION_FINDINGS, LABEL_POOL, FaultAction, FaultClass, Mode

from .conftest import NOW, a_finding, a_policy

NODES = [f"gpu-{i}" for i in range(8)]
NS = "operatord"
POLICY = a_policy(
    max_concurrent_drains="25%",
    min_healthy_gpu_fraction=0.6,
    max_unhealthy_fraction=0.75,
    drain_spacing="3m",
    toleration={"gpu_nvlink_error": "4m"},
    breaker={"fraction": 0.5, "window": "10m"},
)
STORM = [
    FaultClass.GPU_GSP_ERROR,
    FaultClass.GPU_ROW_REMAP_FAILURE,
    FaultClass.NVML_ERROR,
    FaultClass.GPU_XID_OTHER_HW,
]
CLASSES = [FaultClass.GPU_FALLEN_OFF_BUS, FaultClass.GPU_ECC_UNCORRECTABLE, FaultClass.GPU_NVLINK_ERROR]


class RemediationMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.now: datetime = NOW
        self.cluster = FakeClusterApi()
        for name in NODES:
            self.cluster.add_node(
                Node(name, labels=frozen_map({LABEL_POOL: "local-a100"}), conditions=_ready(), gpus=8)
            )
            self.cluster.add_pod(
                Pod("llm", f"vllm-{name}", name, controller_kind=OwnerKind.REPLICA_SET, gpus=8)
            )
        self.acked: dict[str, datetime] = {}
        self.store = StateStore(self.cluster, NS)

    # ---------------------------------------------------------------- the world
    @rule(node=st.sampled_from(NODES), cls=st.sampled_from(CLASSES))
    def fault_arrives(self, node: str, cls: FaultClass) -> None:
        fatal = cls != FaultClass.GPU_NVLINK_ERROR
        finding = a_finding(
            cls, fatal=fatal, action=FaultAction.REBOOT if fatal else FaultAction.DRAIN, first=self.now
        )
        current = self._findings(node)
        self._set_findings(node, [*current, finding.to_json()])

    @rule(nodes=st.sets(st.sampled_from(NODES), min_size=3, max_size=5))
    def storm(self, nodes: set[str]) -> None:
        # Many nodes at once with varied fatal symptoms (a bad driver rollout): at most two per
        # class, so it is not one fleet event, and it is what the breaker and the sick-pool stop are for.
        for i, node in enumerate(sorted(nodes)):
            cls = STORM[i // 2 % len(STORM)]
            finding = a_finding(cls, fatal=True, action=FaultAction.REBOOT, first=self.now)
            self._set_findings(node, [*self._findings(node), finding.to_json()])

    @rule(node=st.sampled_from(NODES))
    def fault_repeats(self, node: str) -> None:
        self._set_findings(node, [{**f, "last_seen": self.now.isoformat()} for f in self._findings(node)])

    @rule(node=st.sampled_from(NODES))
    def fault_clears(self, node: str) -> None:
        self._set_findings(node, [])

    @rule(node=st.sampled_from(NODES))
    def human_uncordons(self, node: str) -> None:
        if not self.cluster.get_node(node).unschedulable:
            return
        self.cluster.uncordon(node)
        entry = HistoryEntry(
            self.now,
            NodeEvent.HUMAN_UNCORDONED.value,
            "human_uncordon",
            human("ann"),
            HealthState.HEALTHY,
            ack_before=self.now,
        )
        append_history(self.cluster, node, [entry], self.now)
        self.acked[node] = self.now

    @rule(node=st.sampled_from(NODES))
    def human_cordons(self, node: str) -> None:
        self.cluster.cordon(node, CordonOwner(human("bob"), "maintenance", self.now))

    @rule()
    def api_flakes_during_next_drain(self) -> None:
        # The next pod listing fails: a drain that started is left half-done (state draining),
        # as after a crash, and must be resumed within the budget.
        self.cluster.fail_next("list_pods", Unreachable("connection reset", 0))

    @rule(skip=st.booleans())
    def breaker_reset(self, skip: bool) -> None:
        self.store.reset_breaker(human("ann"), "checked", self.now, skip_backlog=skip)

    @rule(paused=st.booleans())
    def pause_or_resume(self, paused: bool) -> None:
        if paused:
            self.store.pause("rollout", human("ann"), self.now)
        else:
            self.store.resume()

    # ---------------------------------------------------------------- the daemon's tick
    @rule(minutes=st.integers(min_value=0, max_value=12))
    def tick(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        snap = observe_nodes(self.cluster, NS, self.now)
        plan = plan_remediation(snap, POLICY, self.now)
        self._check_plan(snap, plan)
        now = self.now
        ctx = ApplyContext(self.cluster, NS, POLICY, Mode.FULL, clock=lambda: now, sleep=lambda s: None)
        outcomes = apply_plan(plan, ctx)
        # only the injected API failure may fail an action, and only a drain (it lists pods)
        failed = [o for o in outcomes if o.status == "failed"]
        assert all(o.kind == "drain" and "connection reset" in str(o.detail.get("error")) for o in failed), (
            outcomes
        )

    def _check_plan(self, snap: Snapshot, plan: Plan) -> None:
        views = build_views(snap.nodes, POLICY, snap.state, self.now)
        automatic = [a for a in plan.actions if isinstance(a, Cordon | Drain | Uncordon)]
        # breaker open or paused: no automatic action at all
        if snap.state.pause is not None or snap.state.breaker.open:
            assert not automatic, automatic
        # never more drains than the budget
        new = [a for a in plan.actions_of(Drain) if not a.detail.get("resume")]
        budget = guards.drain_budget(len(views), POLICY.remediation.max_concurrent_drains)
        assert guards.draining(views) + len(new) <= budget
        # never a capacity-losing drain below the minimum healthy share
        by_name = {v.name: v for v in views}
        loss = sum(guards.gpu_loss(by_name[a.node]) for a in new if a.node)
        if loss:
            total = sum(v.node.gpus for v in views)
            assert guards.serving_gpus(views) - loss >= POLICY.remediation.min_healthy_gpu_fraction * total
        for a in automatic:
            assert a.node is not None
            view = by_name[a.node]
            owner = view.node.cordon_owner
            # a human's cordon is never drained or lifted by operatord
            assert owner is None or owner.is_operatord
            # a node a human uncordoned is not re-cordoned for a finding seen before that
            if isinstance(a, Cordon) and a.node in self.acked:
                assert any(f.first_seen > self.acked[a.node] for f in view.faults), (a, view.faults)

    @invariant()
    def state_is_readable(self) -> None:
        if hasattr(self, "store"):
            self.store.load()

    # ---------------------------------------------------------------- helpers
    def _findings(self, node: str) -> list[dict[str, object]]:
        text = self.cluster.get_node(node).annotations.get(ANNOTATION_FINDINGS)
        return json.loads(text) if text else []

    def _set_findings(self, node: str, findings: list[dict[str, object]]) -> None:
        current = self.cluster.get_node(node)
        annotations = dict(current.annotations)
        if findings:
            annotations[ANNOTATION_FINDINGS] = json.dumps(findings)
        else:
            annotations.pop(ANNOTATION_FINDINGS, None)
        self.cluster.update_node(replace(current, annotations=frozen_map(annotations)))


def _ready() -> tuple[NodeCondition, ...]:
    return (NodeCondition("Ready", "True"),)


RemediationMachine.TestCase.settings = settings(stateful_step_count=30)
TestRemediationMachine = RemediationMachine.TestCase
