"""Simulator: invariants checked on every operatord run (design §3.8). Each returns violations as
short sentences; report.json lists them under `invariant_violations` and the CLI exits 1.

* **burst ceiling** — live burst instances never exceed `burst.max_instances`;
* **$ caps** — the live spend rate never exceeds `max_usd_per_hour`; spend per UTC day never
  exceeds `max_usd_per_day` by more than one tick of the live rate (the cap is checked per tick);
* **drain budget** — drains started per pool never overlap beyond `max_concurrent_drains`
  (a drain counts from its start until its node is uncordoned, deleted or the run ends, capped
  at `remediation.drain.timeout`);
* **breaker respected** — no cordon or drain decided on a snapshot whose breaker was open;
* **no flapping** — no scale-in (replicas down or burst release) sooner than
  `scaling.scale_in_stabilization` after a scale-out, and no burst release of an instance
  younger than `burst.scale_in.min_age` for supply_over_demand;
* **blind means no scale-in** — no scale-in decided while the metrics were unknown;
* **no orphans** — no tagged instance untracked by a live intent at the end;
* **no wrong drains** — no drain of a node without an injected node fault.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from operatord.sim.runner import RunResult


def check(result: RunResult, wrong_drains: list[str]) -> list[str]:
    world = result.world
    policy = world.policy
    end = result.end or world.now
    out: list[str] = []
    burst = policy.burst
    prices = {t.instance_type: t.price_usd_per_hour for t in burst.instance_types} if burst else {}
    if burst is not None:
        events: list[tuple[datetime, int, float]] = []
        for inst in world.instances.values():
            price = prices.get(inst.instance_type, 0.0)
            events.append((inst.launched_at, 1, price))
            if inst.terminated_at is not None:
                events.append((inst.terminated_at, -1, -price))
        events.sort(key=lambda e: (e[0], e[1]))
        live, rate = 0, 0.0
        for at, d, p in events:
            live += d
            rate += p
            if live > burst.max_instances:
                out.append(
                    f"burst ceiling: {live} live instances at {at.isoformat()} (max {burst.max_instances})"
                )
                break
            if rate > burst.max_usd_per_hour + 1e-6:
                out.append(f"$/hour cap: {rate:.2f} at {at.isoformat()} (max {burst.max_usd_per_hour})")
                break
        tick_h = world.scenario.tick.total_seconds() / 3600
        days: dict[str, float] = {}
        for inst in world.instances.values():
            price = prices.get(inst.instance_type, 0.0)
            t = inst.launched_at
            stop = inst.terminated_at or end
            while t < stop:
                day_end = datetime(t.year, t.month, t.day, tzinfo=t.tzinfo) + timedelta(days=1)
                seg = min(stop, day_end)
                days[t.date().isoformat()] = (
                    days.get(t.date().isoformat(), 0.0) + (seg - t).total_seconds() / 3600 * price
                )
                t = seg
        slack = burst.max_usd_per_hour * tick_h
        for day, spent in sorted(days.items()):
            if spent > burst.max_usd_per_day + slack:
                out.append(f"$/day cap: {spent:.2f} spent on {day} (max {burst.max_usd_per_day})")

    # Drain budget per pool.
    limit = policy.remediation.max_concurrent_drains
    timeout = policy.remediation.drain.timeout
    spans: list[tuple[str, str | None, datetime, datetime]] = []
    for e in result.journal:
        if e.kind != "drain" or e.node is None:
            continue
        done = next(
            (x.at for x in result.journal if x.kind == "drain_end" and x.node == e.node and x.at >= e.at),
            None,
        )
        stop = min(done if done is not None else end, e.at + timeout)
        spans.append((e.node, None, e.at, stop))
    pools = {n.name: n.pool for n in world.api.list_nodes().items}
    for node, _, start, _stop in spans:
        pool = pools.get(node)
        running = [s for s in spans if (pools.get(s[0]) == pool and s[2] <= start < s[3]) or s[0] == node]
        nodes_in_pool = sum(1 for p in pools.values() if p == pool)
        allowed = max(limit.of(nodes_in_pool), 1)
        if len({s[0] for s in running}) > allowed:
            out.append(
                f"drain budget: {len(running)} drains in {pool} at {start.isoformat()} (max {allowed})"
            )
            break

    for e in result.journal:
        if e.kind in ("cordon", "drain") and e.breaker_open and not e.reason.startswith("fleet"):
            out.append(f"breaker: {e.kind} of {e.node} at {e.at.isoformat()} while the breaker was open")

    stab = policy.scaling.scale_in_stabilization
    last_out: datetime | None = None
    for e in result.journal:
        if e.kind in ("scale_out", "launch"):
            last_out = e.at
        elif e.kind in ("scale_in", "release"):
            if e.blind:
                out.append(f"scale-in while metrics were unknown at {e.at.isoformat()} ({e.kind})")
            if e.kind == "scale_in" and last_out is not None and e.at - last_out < stab:
                out.append(
                    f"flapping: {e.kind} at {e.at.isoformat()} {int((e.at - last_out).total_seconds())}s after a "
                    f"scale-out (scale_in_stabilization {int(stab.total_seconds())}s)"
                )
    if burst is not None:
        for inst in world.instances.values():
            if inst.terminated_at is None:
                continue
            age = inst.terminated_at - inst.launched_at
            released = any(
                e.kind == "release" and e.reason == "supply_over_demand" and e.at == inst.terminated_at
                for e in result.journal
            )
            if released and age < burst.scale_in.min_age:
                out.append(f"flapping: {inst.instance_id} released {int(age.total_seconds())}s after launch")

    out.extend(result.errors)
    if result.orphans:
        out.append(f"orphan instances at the end: {', '.join(result.orphans)}")
    out.extend(f"wrong drain: {w}" for w in wrong_drains)
    return out
