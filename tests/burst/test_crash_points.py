"""Idempotency under crashes: moto ignores ClientToken and launches MinCount, so operatord's own
protocol (write-ahead intent, token per attempt, lookup by tag, orphan reconcile) must prevent
double launches and leaks. A crash is injected before or after every write and every cloud call
of a launch and of the reconcile that follows; a restarted operatord then reconciles until done.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from operatord.core.burst.lifecycle import BurstState
from operatord.shell.burst import BurstRunner
from operatord.shell.intents import IntentStore
from operatord.testing.fake_capacity import FakeCapacity
from operatord.vocab import Reason

from .conftest import NOW, Clock, MemoryConfigMaps, a_policy, multinode_policy

WRITES = {"create_configmap", "replace_configmap", "delete_configmap", "launch", "terminate"}


class Crash(Exception):
    """The process died here."""


class CrashAt:
    """Proxy that counts writes and cloud calls across wrapped objects and dies at one of them."""

    def __init__(self, at: int | None, after: bool) -> None:
        self.at = at
        self.after = after
        self.count = 0

    def wrap(self, target: Any) -> Any:
        crash = self

        class Proxy:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(target, name)
                if name not in WRITES or not callable(attr):
                    return attr

                def call(*args: Any, **kwargs: Any) -> Any:
                    crash.count += 1
                    hit = crash.at is not None and crash.count == crash.at
                    if hit and not crash.after:
                        raise Crash(name)
                    result = attr(*args, **kwargs)
                    if hit:
                        raise Crash(name)
                    return result

                return call

        return Proxy()


def run_with_crash(
    policy: Any,
    fake: FakeCapacity,
    cms: MemoryConfigMaps,
    clock: Clock,
    crash: CrashAt,
    action: str,
    replicas: int,
) -> None:
    store = IntentStore(crash.wrap(cms), "operatord", "test")
    runner = BurstRunner(store=store, capacity=crash.wrap(fake), policy=policy, clock=clock)
    try:
        if action == "launch":
            runner.launch(replicas=replicas, model="llama-70b", reason=Reason.DEMAND_OVER_SUPPLY.value)
        else:
            runner.reconcile()
    except Crash:
        pass


def settle(policy: Any, fake: FakeCapacity, cms: MemoryConfigMaps, clock: Clock) -> None:
    """A healthy operatord restarts and reconciles, past every grace period."""
    runner = BurstRunner(
        store=IntentStore(cms, "operatord", "test"), capacity=fake, policy=policy, clock=clock
    )
    for _ in range(4):
        clock.advance(minutes=6)
        runner.reconcile()


@given(
    launch_crash=st.one_of(st.none(), st.integers(1, 12)),
    launch_after=st.booleans(),
    reconcile_crash=st.one_of(st.none(), st.integers(1, 8)),
    reconcile_after=st.booleans(),
    first_error=st.sampled_from(
        [None, "InsufficientInstanceCapacity", "RequestLimitExceeded", "InternalError"]
    ),
    replicas=st.integers(1, 2),
    multinode=st.booleans(),
)
def test_no_double_launch_and_no_untracked_instance(
    launch_crash: int | None,
    launch_after: bool,
    reconcile_crash: int | None,
    reconcile_after: bool,
    first_error: str | None,
    replicas: int,
    multinode: bool,
) -> None:
    policy = multinode_policy() if multinode else a_policy()
    clock = Clock(NOW)
    # Like moto: a repeated ClientToken launches again, so only operatord's protocol can prevent it.
    fake = FakeCapacity(
        cluster="test", clock=clock, fail_next=[first_error] if first_error else [], honor_client_token=False
    )
    cms = MemoryConfigMaps()

    run_with_crash(policy, fake, cms, clock, CrashAt(launch_crash, launch_after), "launch", replicas)
    clock.advance(seconds=30)
    run_with_crash(policy, fake, cms, clock, CrashAt(reconcile_crash, reconcile_after), "reconcile", replicas)
    settle(policy, fake, cms, clock)

    intents, bad = IntentStore(cms, "operatord", "test").list()
    assert not bad
    assert len(intents) <= 1
    for intent in intents:
        # One RunInstances that created instances per intent, never two.
        assert len(fake.launches(intent.id)) <= 1, fake.calls
    tracked = {r.instance_id for i in intents for r in i.instances if r.state.live}
    for inst in fake.live():
        # Every instance still running is tracked by a live intent record; nothing leaked.
        assert inst.instance_id in tracked, (inst, intents)
    for intent in intents:
        want = max((a.count for a in intent.attempts), default=0)
        assert len(fake.live(intent.id)) <= want


def test_crash_after_run_instances_is_adopted_not_relaunched() -> None:
    policy = a_policy()
    clock = Clock(NOW)
    fake = FakeCapacity(cluster="test", clock=clock)
    cms = MemoryConfigMaps()
    # writes: create intent (1), persist attempt (2), RunInstances (3): die right after EC2 answered.
    run_with_crash(policy, fake, cms, clock, CrashAt(3, after=True), "launch", 1)
    assert len(fake.live()) == 1
    (intent,), _ = IntentStore(cms, "operatord", "test").list()
    assert intent.state is BurstState.REQUESTED
    assert not intent.instances

    clock.advance(seconds=20)
    runner = BurstRunner(
        store=IntentStore(cms, "operatord", "test"), capacity=fake, policy=policy, clock=clock
    )
    runner.reconcile()
    (intent,), _ = IntentStore(cms, "operatord", "test").list()
    assert intent.state is BurstState.RUNNING
    assert [r.instance_id for r in intent.instances] == [i.instance_id for i in fake.live()]
    assert len([c for c in fake.calls if c.op == "launch"]) == 1


def test_crash_before_run_instances_reissues_the_same_token() -> None:
    policy = a_policy()
    clock = Clock(NOW)
    fake = FakeCapacity(cluster="test", clock=clock)
    cms = MemoryConfigMaps()
    run_with_crash(
        policy, fake, cms, clock, CrashAt(3, after=False), "launch", 1
    )  # attempt persisted, no call
    (intent,), _ = IntentStore(cms, "operatord", "test").list()
    token = intent.attempts[0].client_token
    clock.advance(seconds=20)
    BurstRunner(
        store=IntentStore(cms, "operatord", "test"), capacity=fake, policy=policy, clock=clock
    ).reconcile()
    launches = [c for c in fake.calls if c.op == "launch"]
    assert [c.client_token for c in launches] == [token]
    assert len(fake.live()) == 1


def test_untracked_tagged_instance_is_terminated_after_grace_only() -> None:
    from operatord.core.burst.observed import CloudInstance

    policy = a_policy(orphan_grace="10m")
    clock = Clock(NOW)
    fake = FakeCapacity(cluster="test", clock=clock)
    fake.add_foreign(
        CloudInstance("i-0000000000000dead", "p4d.24xlarge", "us-east-1a", "running", NOW, "gone-intent")
    )
    runner = BurstRunner(
        store=IntentStore(MemoryConfigMaps(), "operatord", "test"), capacity=fake, policy=policy, clock=clock
    )
    clock.advance(minutes=9)
    assert not [o for o in runner.reconcile() if o.kind == "orphan_terminated"]
    assert fake.live()
    clock.advance(minutes=2)
    out = [o for o in runner.reconcile() if o.kind == "orphan_terminated"]
    assert [o.instance_ids for o in out] == [("i-0000000000000dead",)]
    assert out[0].reason == "orphan_instance"
    assert not fake.live()
