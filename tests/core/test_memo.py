"""core.memo.Memo: a result is reused only for the very same inputs; and decide() with the
daemon's memo plans exactly what decide() without one plans, tick by tick, on shipped scenarios."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from operatord.cli.simulate import capacity_wiring
from operatord.core import decide as decide_module
from operatord.core.decide import decide_detailed as real_decide
from operatord.core.fleet import check_fleet as real_check
from operatord.core.memo import Memo
from operatord.core.snapshot import Snapshot
from operatord.policies.model import Policy
from operatord.shell import loop
from operatord.sim import scenario as sc
from operatord.sim.runner import load_scenario_policy, load_trace, operatord_factory, run


def test_reuses_only_for_the_same_objects() -> None:
    memo = Memo()
    calls: list[int] = []
    first, second = [1, 2], [1, 2]  # equal, not the same

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert memo.reuse("x", (first,), compute) == 1
    assert memo.reuse("x", (first,), compute) == 1
    assert memo.reuse("x", (second,), compute) == 2  # equal is not enough: inputs may be mutable
    assert memo.reuse("x", (second, None), compute) == 3  # another arity is other inputs
    assert memo.reuse("y", (second, None), compute) == 4  # names are independent
    assert memo.reuse("x", (second, None), compute) == 3


def test_holds_its_inputs_so_an_id_is_never_recycled() -> None:
    memo = Memo()
    memo.reuse("x", (object(),), lambda: "old")
    # The first input is still referenced by the memo, so no new object can take its id.
    assert all(memo.reuse("x", (object(),), lambda: "new") == "new" for _ in range(100))


@pytest.mark.parametrize("name", ["driver-rollout-mass-fault", "drain-needs-capacity", "ice-us-east-1a"])
def test_decide_with_the_memo_plans_what_decide_without_plans(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []
    fleet_checks: list[int] = []

    def counted_check(*args: Any, **kwargs: Any) -> Any:
        fleet_checks.append(1)
        return real_check(*args, **kwargs)

    def both(snap: Snapshot, policy: Policy, now: datetime, memo: Memo | None = None) -> Any:
        kept = real_decide(snap, policy, now, memo)
        fresh = real_decide(snap, policy, now)
        assert kept == fresh, f"{name} at {now.isoformat()}: the memo changed the plan"
        checked.append(1)
        return kept

    monkeypatch.setattr(loop, "decide_detailed", both)
    monkeypatch.setattr(decide_module, "check_fleet", counted_check)
    path = sc.resolve(name)
    scenario = sc.load(path)
    loaded = load_scenario_policy(scenario, path)
    with capacity_wiring(scenario, path, loaded.policy, "fake") as (scen, capacity_for):
        result = run(
            scen, load_scenario_policy(scen, path), load_trace(scen, path), operatord_factory(capacity_for)
        )
    assert checked
    assert len(checked) == result.ticks
    # Every fresh decide checks the fleet; the memo's decide only when the nodes changed.
    assert len(checked) < len(fleet_checks) < 2 * len(checked)
