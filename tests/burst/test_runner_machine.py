"""Stateful property test: random launches, crashes, capacity errors, node boots, releases and time
passing, against the real runner and reconcile on FakeCapacity (ClientToken ignored, as in moto).
After every step: no intent launched twice, the caps hold, and nothing runs untracked past the
orphan grace period."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from operatord.core.burst.lifecycle import BurstState
from operatord.core.burst.observed import NodeView
from operatord.shell.burst import BurstRunner
from operatord.shell.intents import IntentStore
from operatord.testing.fake_capacity import FakeCapacity
from operatord.vocab import Reason

from .conftest import NOW, Clock, MemoryConfigMaps, a_policy
from .test_crash_points import Crash, CrashAt


class Nodes:
    def __init__(self) -> None:
        self.views: dict[str, NodeView] = {}

    def burst_nodes(self) -> Mapping[str, NodeView]:
        return dict(self.views)

    def begin_drain(self, node_name: str) -> int:
        return 1

    def evict_serving(self, node_name: str) -> int:
        for iid, v in list(self.views.items()):
            if v.name == node_name:
                self.views[iid] = NodeView(v.name, iid, v.ready, v.gpus_allocatable, 0)
        return 1

    def retire(self, node_name: str) -> None:
        self.views = {k: v for k, v in self.views.items() if v.name != node_name}


class BurstMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.policy = a_policy(max_instances=3, max_usd_per_hour=70, max_usd_per_day=1400, orphan_grace="5m")
        self.clock = Clock(NOW)
        self.fake = FakeCapacity(cluster="test", clock=self.clock, honor_client_token=False)
        self.cms = MemoryConfigMaps()
        self.nodes = Nodes()
        self.seq = 0

    def runner(self, crash: CrashAt | None = None) -> BurstRunner:
        cms: Any = crash.wrap(self.cms) if crash else self.cms
        cap: Any = crash.wrap(self.fake) if crash else self.fake
        return BurstRunner(
            store=IntentStore(cms, "operatord", "test"),
            capacity=cap,
            policy=self.policy,
            clock=self.clock,
            nodes=self.nodes,
        )

    def intents(self) -> tuple[Any, ...]:
        return IntentStore(self.cms, "operatord", "test").list()[0]

    @rule(replicas=st.integers(1, 2), crash_at=st.one_of(st.none(), st.integers(1, 6)), after=st.booleans())
    def launch(self, replicas: int, crash_at: int | None, after: bool) -> None:
        self.seq += 1
        with contextlib.suppress(Crash):
            self.runner(CrashAt(crash_at, after)).launch(
                replicas=replicas, model="llama-70b", reason="demand_over_supply", seq=self.seq
            )

    @rule(code=st.sampled_from(["InsufficientInstanceCapacity", "RequestLimitExceeded", "VcpuLimitExceeded"]))
    def next_launch_fails(self, code: str) -> None:
        self.fake.fail_next.append(code)

    @rule(minutes=st.integers(1, 20))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule(crash_at=st.one_of(st.none(), st.integers(1, 6)), after=st.booleans())
    def reconcile(self, crash_at: int | None, after: bool) -> None:
        with contextlib.suppress(Crash):
            self.runner(CrashAt(crash_at, after)).reconcile()

    @rule(data=st.data())
    def a_node_boots_and_serves(self, data: st.DataObject) -> None:
        live = self.fake.live()
        if live:
            inst = data.draw(st.sampled_from(live))
            self.nodes.views[inst.instance_id] = NodeView(
                f"n-{inst.instance_id[-6:]}", inst.instance_id, True, 8, 1
            )

    @rule(data=st.data())
    def release_one(self, data: st.DataObject) -> None:
        serving = [
            (i.id, r.instance_id)
            for i in self.intents()
            for r in i.instances
            if r.state is BurstState.SERVING
        ]
        if serving:
            intent_id, iid = data.draw(st.sampled_from(serving))
            self.runner().release(intent_id, iid, Reason.SUPPLY_OVER_DEMAND)

    @invariant()
    def never_two_launches_for_one_intent(self) -> None:
        for intent in self.intents():
            assert len(self.fake.launches(intent.id)) <= 1

    @invariant()
    def caps_hold(self) -> None:
        burst = self.policy.burst
        assert burst is not None
        live = self.fake.live()
        assert len(live) <= burst.max_instances
        prices = {t.instance_type: t.price_usd_per_hour for t in burst.instance_types}
        assert sum(prices[i.instance_type] for i in live) <= burst.max_usd_per_hour + 1e-6

    @invariant()
    def nothing_untracked_past_the_grace_period(self) -> None:
        burst = self.policy.burst
        assert burst is not None
        tracked = {r.instance_id for i in self.intents() for r in i.instances if r.state.live}
        open_intents = {i.id for i in self.intents() if i.open_attempt is not None}
        for inst in self.fake.live():
            if inst.instance_id in tracked or inst.intent_id in open_intents:
                continue
            # Untracked: allowed only until the next reconcile after the grace period.
            assert self.clock() - inst.launched_at < burst.orphan_grace + timedelta(minutes=20), inst


TestBurstMachine = BurstMachine.TestCase
