"""Simulator: the policies teams use today, run over the same world, and the oracle lower bound.

Parameters are the anchors' defaults (research/autoscaling.md §1; report.md cites them):

* `static` — no autoscaling and no burst: the workload runs one replica per local node slot from
  the start; nothing remediates faults (a replica on a failed node stays down).
* `reactive` — the HPA/KEDA + cluster-autoscaler stack:
  - KEDA polls the metric every 30 s (`pollingInterval`, §1.4) and feeds the HPA; the metric is
    current utilisation (served tokens/s over the ready replicas' SLO throughput) with the
    policy's `target_utilization` as target (the same target operatord uses);
  - HPA (§1.5): desired = ceil(ready × utilisation / target), tolerance 0.1, scale-up at most
    max(4 pods, 100 %) per 15 s, scale-down to the highest recommendation of the last 300 s,
    bounded by the model's min/max replicas;
  - during a Prometheus outage KEDA's `ignoreNullValues` default turns the empty result into 0
    (§1.4, kedacore/keda #3065), so the HPA scales toward the minimum;
  - cluster-autoscaler (§1.2): every scan (10 s; here every tick) unschedulable serving pods make
    it add burst nodes (one per pending replica, up to the policy's `max_instances`, counting
    nodes still booting); node groups are the policy's (instance type, AZ) offerings in order; a
    capacity error backs the group off 5 min, doubling to 30 min; a node that has been unneeded
    (no serving pod) for 10 min (`scale-down-unneeded-time`) and is ≥ 10 min past the last
    scale-up (`scale-down-delay-after-add`) is removed;
  - nothing remediates faults.
* `oracle` — a lower bound on burst cost: perfect foresight of demand and of the boot-to-serving
  time, no cap on decisions other than `max_instances`: for each instance slot, the intervals in
  which demand exceeds healthy local capacity (at full SLO throughput per replica, faulty nodes
  excluded as if remediated instantly) are billed from boot start (gaps shorter than a boot are
  bridged), at the cheapest instance type of the policy. Its SLO attainment is the serving model
  run on that capacity.

Baselines launch through the world directly (not EC2): the same boot delays and the same
scenario capacity/quota errors apply (sim.cloud.CloudFaults).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from operatord.core.model import WorkloadKey
from operatord.sim.cloud import CloudFaults
from operatord.sim.runner import Controller, Entry, RunResult
from operatord.sim.serving import FluidQueue
from operatord.sim.world import World

KEDA_POLL = timedelta(seconds=30)
HPA_TOLERANCE = 0.1
HPA_DOWN_WINDOW = timedelta(seconds=300)
HPA_UP_PODS_PER_15S = 4
CA_BACKOFF_INITIAL = timedelta(minutes=5)
CA_BACKOFF_MAX = timedelta(minutes=30)
CA_UNNEEDED = timedelta(minutes=10)
CA_DELAY_AFTER_ADD = timedelta(minutes=10)

NAMES = ("static", "reactive")


class Static:
    name = "static"

    def __init__(self, world: World) -> None:
        slots = sum(p.nodes * (p.gpus_per_node // world.gpus_per_replica) for p in world.scenario.pools)
        self.replicas = max(1, min(world.model.max_replicas, slots))
        world.api.set_scale(world.workload, self.replicas)

    def tick(self, world: World, now: datetime, journal: list[Entry]) -> None:
        return

    def finish(self, world: World, now: datetime, result: RunResult) -> None:
        return


@dataclass
class _Group:
    instance_type: str
    az: str
    backoff_until: datetime | None = None
    backoff: timedelta = CA_BACKOFF_INITIAL


@dataclass
class Reactive:
    world: World
    name: str = "reactive"
    last_poll: datetime | None = None
    recommendations: list[tuple[datetime, int]] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=list)
    last_add: datetime | None = None
    unneeded_since: dict[str, datetime] = field(default_factory=dict)
    seq: int = 0
    faults: CloudFaults | None = None

    def __post_init__(self) -> None:
        policy = self.world.policy
        if policy.burst is not None and policy.burst.enabled:
            self.groups = [
                _Group(t.instance_type, s.availability_zone)
                for t in policy.burst.instance_types
                for s in policy.burst.subnets
            ]
            self.faults = CloudFaults(
                self.world.scenario.cloud,
                self.world.scenario.start,
                lambda: self.world.now,
                self.world,
                {t.instance_type: t.vcpus for t in policy.burst.instance_types},
            )

    # -- HPA fed by KEDA ---------------------------------------------------------------------------

    def tick(self, world: World, now: datetime, journal: list[Entry]) -> None:
        if self.last_poll is None or now - self.last_poll >= KEDA_POLL:
            self.last_poll = now
            self._hpa(world, now, journal)
        self._cluster_autoscaler(world, now, journal)

    def _hpa(self, world: World, now: datetime, journal: list[Entry]) -> None:
        wl: WorkloadKey = world.workload
        current = world.api.get_scale(wl).replicas
        rec = world.records[-1] if world.records else None
        blind = rec is not None and rec.metrics_blind
        target = world.policy.scaling.target_utilization
        if rec is None:
            return
        if blind:
            util = 0.0  # KEDA ignoreNullValues: an empty Prometheus result counts as 0
        elif rec.capacity_tokens_per_s > 0:
            util = rec.served_tokens_per_s / rec.capacity_tokens_per_s
        else:
            util = 1.0
        ready = max(rec.ready_replicas, 1)
        ratio = util / target
        desired = current if abs(ratio - 1) <= HPA_TOLERANCE else math.ceil(ready * ratio)
        model = world.model
        desired = max(model.min_replicas, min(model.max_replicas, desired))
        self.recommendations.append((now, desired))
        self.recommendations = [(t, d) for t, d in self.recommendations if now - t <= HPA_DOWN_WINDOW]
        if desired > current:
            limit = max(current + HPA_UP_PODS_PER_15S * 2, current * 2)  # two 15 s periods per poll
            new = min(desired, limit)
        elif desired < current:
            new = min(current, max(d for _, d in self.recommendations))
        else:
            new = current
        if new != current:
            world.api.set_scale(wl, new)
            kind = "scale_out" if new > current else "scale_in"
            journal.append(Entry(now, kind, None, "hpa", new, blind))

    # -- cluster-autoscaler ------------------------------------------------------------------------

    def _cluster_autoscaler(self, world: World, now: datetime, journal: list[Entry]) -> None:
        burst = world.policy.burst
        if burst is None or not burst.enabled or self.faults is None:
            return
        pods = world.api.list_pods(namespace=world.workload.namespace).items
        pending = sum(1 for p in pods if p.node_name is None and not p.deleting and p.gpus > 0)
        live = world.live_instances()
        booting = sum(1 for i in live if not i.gpus_set)
        want = pending - booting
        room = burst.max_instances - len(live)
        added = 0
        while want > 0 and room > 0:
            group = next((g for g in self.groups if g.backoff_until is None or now >= g.backoff_until), None)
            if group is None:
                break
            code = self.faults.launch_error(group.instance_type, group.az, 1)
            if code is not None:
                group.backoff_until = now + group.backoff
                group.backoff = min(group.backoff * 2, CA_BACKOFF_MAX)
                continue
            self.seq += 1
            world.instance_launched(f"ca-{self.seq:05d}", group.instance_type, group.az, now)
            want -= 1
            room -= 1
            added += 1
        if added:
            self.last_add = now
            journal.append(Entry(now, "launch", None, "unschedulable_pods", added))
        # Scale-down: burst nodes without serving pods for CA_UNNEEDED, not soon after a scale-up.
        on_node: dict[str, int] = {}
        for p in pods:
            if p.node_name is not None and p.gpus > 0:
                on_node[p.node_name] = on_node.get(p.node_name, 0) + 1
        removed = 0
        for inst in live:
            if inst.node is None or not inst.gpus_set:
                continue
            if on_node.get(inst.node, 0) > 0:
                self.unneeded_since.pop(inst.instance_id, None)
                continue
            since = self.unneeded_since.setdefault(inst.instance_id, now)
            recent_add = self.last_add is not None and now - self.last_add < CA_DELAY_AFTER_ADD
            if now - since >= CA_UNNEEDED and not recent_add:
                world.instance_terminated(inst.instance_id, now)
                removed += 1
        if removed:
            journal.append(Entry(now, "release", None, "unneeded", removed))

    def finish(self, world: World, now: datetime, result: RunResult) -> None:
        return


def factory(name: str) -> Callable[[World], Controller]:
    """The controller factory of a baseline by name."""
    if name == "static":
        return Static
    if name == "reactive":
        return Reactive
    raise ValueError(f"unknown baseline {name!r} (known: {', '.join(NAMES)})")


# -- the oracle ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Oracle:
    burst_cost_usd: float
    burst_instance_hours: float
    max_burst_instances: int
    slo_attainment: float
    unserved_requests: float
    requests: float
    boot_s: float
    instance_type: str


def oracle(world: World, ticks: int) -> Oracle:
    """The oracle lower bound over the scenario (module docstring). `world` is a fresh world."""
    sc = world.scenario
    policy = world.policy
    dt = sc.tick.total_seconds()
    per = world.per_replica
    burst = policy.burst
    if burst is not None and burst.enabled:
        cheapest = min(burst.instance_types, key=lambda t: t.price_usd_per_hour)
        price, itype, cap = cheapest.price_usd_per_hour, cheapest.instance_type, burst.max_instances
        per_node = cheapest.gpus_per_node // world.gpus_per_replica
    else:
        price, itype, cap, per_node = 0.0, "", 0, 1
    boot = max(sc.cloud.boot.registered, sc.cloud.boot.gpu_ready) + sc.serving.model_load_burst
    boot_ticks = math.ceil(boot.total_seconds() / dt)
    local_slots = sum(p.nodes * (p.gpus_per_node // world.gpus_per_replica) for p in sc.pools)
    slot_nodes = {
        f"{p.name_prefix}-{i:03d}": p.gpus_per_node // world.gpus_per_replica
        for p in sc.pools
        for i in range(1, p.nodes + 1)
    }
    demand: list[tuple[float, float]] = []
    need: list[int] = []
    local_rates: list[float] = []
    for k in range(ticks):
        a = sc.start + k * sc.tick
        arr = world.demand.between(a, a + sc.tick)
        tokens = arr.weighted(policy.serving.demand_weights.prompt, policy.serving.demand_weights.generation)
        demand.append((tokens, arr.requests))
        down = 0
        for f in sc.faults:
            start = sc.start + f.at
            end = start + f.repair_after if f.repair_after is not None else None
            if f.impact == "down" and start <= a and (end is None or a < end):
                down += slot_nodes.get(f.node, 0)
        local = max(0, local_slots - down) * per
        local_rates.append(local)
        replicas = math.ceil(max(0.0, tokens / dt - local) / per - 1e-9)
        need.append(min(cap, math.ceil(replicas / max(per_node, 1))))
    hours = 0.0
    for slot in range(1, max(need, default=0) + 1):
        intervals: list[list[int]] = []
        k = 0
        while k < ticks:
            if need[k] < slot:
                k += 1
                continue
            j = k
            while j < ticks and need[j] >= slot:
                j += 1
            if intervals and k - intervals[-1][1] <= boot_ticks:
                intervals[-1][1] = j  # cheaper to keep it than to boot another
            else:
                intervals.append([k, j])
            k = j
        for a_, b_ in intervals:
            hours += ((b_ - a_) * dt + boot.total_seconds()) / 3600
    queue = FluidQueue(
        base_latency=sc.serving.base_latency,
        abandon_after=sc.serving.abandon_after,
        slo_ttft=policy.serving.slo.ttft_p99,
    )
    within = unserved = total = 0.0
    for k, (tokens, requests) in enumerate(demand):
        s = queue.step(tokens, requests, local_rates[k] + need[k] * per_node * per, dt)
        within += s.within_slo_requests
        unserved += s.unserved_requests
        total += requests
    return Oracle(
        burst_cost_usd=hours * price,
        burst_instance_hours=hours,
        max_burst_instances=max(need, default=0),
        slo_attainment=within / total if total > 0 else 1.0,
        unserved_requests=unserved,
        requests=total,
        boot_s=boot.total_seconds(),
        instance_type=itype,
    )
