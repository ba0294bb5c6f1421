"""Simulator: the simulated world on a virtual clock. Shell-level: it drives ports, decides nothing.

The cluster is the in-memory FakeClusterApi (real semantics: resourceVersion, 409, PDB-aware
eviction). Around it the world plays the parts Kubernetes and the hardware play in production:

* **ReplicaSet controller**: the serving workload's pods follow its scale subresource; scale-in
  removes pods in the ReplicaSet's order (unscheduled, not running, not ready, lowest
  `pod-deletion-cost`, newest), so operatord's deletion-cost marking of burst pods matters.
* **Scheduler**: pending pods bind to Ready, schedulable nodes with free GPUs whose taints they
  tolerate (serving pods tolerate the burst taint), local pools first.
* **Kubelet**: a bound pod is Ready after the model-load time (local or burst); a pod on a node
  whose fault took it down is not Ready; pods of a deleted node are removed.
* **Burst instances**: every launch (`instance_launched`) registers a Node (label
  operatord.io/instance-id, burst pool, burst taint) after the boot delays, gets its GPUs later,
  and goes away when terminated.
* **Node faults**: each scenario fault writes real log lines into an in-memory log source of
  that node's *real* agent (shell.agent.Agent with the policy's fault rules and, unless the
  scenario turns it off, its NVML probe judged by the real `judge` over what NVML would read:
  a missing or lost GPU, uncorrected ECC, a driver mismatch, or nothing wrong), which publishes
  the findings annotation and conditions as on a real node; the fault's impact (down, degraded)
  acts on the replica there until the repair time.
* **Metrics**: the serving model (operatord.sim.serving) turns ready replicas and the traffic into
  the vLLM series a Prometheus would return, through FakeMetrics (same `assemble` as the real
  adapter); a Prometheus outage makes the source fail.

Everything is deterministic for a scenario and seed.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from operatord.core.faults.catalog import Catalog
from operatord.core.faults.probe import GpuReading, ProbeReading, ProbeVerdict, judge
from operatord.core.model import Listing, Node, NodeCondition, OwnerKind, Pod, Taint, WorkloadKey
from operatord.policies.load import LoadedPolicy
from operatord.policies.model import Policy
from operatord.ports.cluster import NotFound
from operatord.ports.logs import LogChunk, Position
from operatord.shell.agent import Agent
from operatord.shell.burst import DELETION_COST_ANNOTATION
from operatord.shell.scan import Scanner
from operatord.sim.scenario import Scenario, ScenarioError
from operatord.sim.serving import Demand, FluidQueue, TickServing, Trace
from operatord.testing.fake_metrics import FakeMetrics
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import (
    CONDITION_GPU_HEALTHY,
    CONDITION_NCCL_HEALTHY,
    LABEL_INSTANCE_ID,
    LABEL_POOL,
    TAINT_BURST,
    LogSourceKind,
)

NAMESPACE = "operatord"
APP_LABEL = "app.kubernetes.io/name"


@dataclass
class SimInstance:
    instance_id: str
    instance_type: str
    availability_zone: str
    launched_at: datetime
    registered_at: datetime
    gpu_ready_at: datetime
    terminated_at: datetime | None = None
    node: str | None = None
    gpus_set: bool = False


@dataclass
class InjectedFault:
    index: int
    node: str
    at: datetime
    node_fault: bool
    impact: str
    repaired_at: datetime | None
    next_repeat: datetime | None = None
    detected_at: datetime | None = None
    cordoned_at: datetime | None = None


@dataclass(frozen=True)
class TickRecord:
    at: datetime
    demand_tokens_per_s: float
    served_tokens_per_s: float
    capacity_tokens_per_s: float
    ready_replicas: int
    desired_replicas: int
    burst_instances: int
    backlog_requests: float
    arrived_requests: float
    within_slo_requests: float
    unserved_requests: float
    metrics_blind: bool


class MemoryLogSource:
    """A LogSource the world writes lines into (one stream per node)."""

    def __init__(self, node: str, kind: LogSourceKind) -> None:
        self.name = f"sim:{node}"
        self._kind = kind
        self._lines: list[str] = []
        self._read = 0
        self._idle = False

    def write(self, lines: Sequence[str]) -> None:
        self._lines.extend(lines)

    def start(self, positions: Mapping[str, Position], now: datetime, lookback: timedelta) -> None:
        self._read = int(positions.get(self.name, {}).get("line", 0))

    def poll(self) -> Sequence[LogChunk]:
        if self._read >= len(self._lines):
            self._idle = True
            return ()
        new = self._lines[self._read :]
        first = self._read + 1
        self._read = len(self._lines)
        self._idle = False
        data = "".join(line.rstrip("\n") + "\n" for line in new).encode()
        return (LogChunk(self.name, self._kind, data, first, {"line": self._read}),)

    def idle_streams(self) -> Sequence[str]:
        return (self.name,) if self._idle else ()

    def close(self) -> None:
        return


class MemoryCursors:
    def __init__(self) -> None:
        self._saved: dict[str, Position] = {}

    def load(self) -> dict[str, Position]:
        return dict(self._saved)

    def save(self, positions: Mapping[str, Position]) -> None:
        self._saved = dict(positions)


class SimClusterApi(FakeClusterApi):
    """FakeClusterApi whose server-side timestamps come from the virtual clock: the API server
    stamps a condition's lastTransitionTime when the writer leaves it empty (the agent does)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__(history=2_000)
        self._clock = clock

    def set_node_condition(self, name: str, condition: NodeCondition) -> Node:
        if condition.last_transition_time is None:
            old = self.get_node(name).condition(condition.type)
            same = old is not None and old.status == condition.status
            at = old.last_transition_time if same and old is not None else None
            condition = replace(condition, last_transition_time=at or self._clock())
        return super().set_node_condition(name, condition)


class World:
    """The simulated cluster, cloud boot, faults, serving and metrics (module docstring)."""

    def __init__(self, scenario: Scenario, loaded: LoadedPolicy, trace: Trace) -> None:
        self.scenario = scenario
        self.loaded = loaded
        self.policy: Policy = loaded.policy
        self.now = scenario.start
        self.api = SimClusterApi(lambda: self.now)
        self._rng = random.Random(scenario.seed)  # noqa: S311 (boot jitter, not cryptography)
        models = self.policy.serving.models
        if len(models) > 1:
            names = ", ".join(m.name for m in models)
            raise ScenarioError(
                f"serving: the simulator serves one model and the policy has {len(models)} ({names}); "
                "keep one with policy_overrides: {serving: {models: [...]}}"
            )
        served = models[0]
        self.model = served
        self.workload = WorkloadKey(served.workload.kind, served.workload.namespace, served.workload.name)
        self.local_pools = [p.name for p in scenario.pools]
        pools = {p.name: p for p in self.policy.pools}
        for sp in scenario.pools:
            pol = pools.get(sp.name)
            if pol is None or pol.kind != "local":
                raise ScenarioError(f"pools: {sp.name!r} is not a local pool of the policy")
        self.burst_pool = self.policy.burst.pool if self.policy.burst is not None else None
        gpu_type = pools[scenario.pools[0].name].gpu_type
        profile = served.profile_for(gpu_type)
        assert profile is not None  # the policy validator requires a profile per local pool
        self.gpus_per_replica = profile.gpus_per_replica
        if any(self.gpus_per_replica > p.gpus_per_node for p in scenario.pools):
            raise ScenarioError(
                "serving: replicas spanning nodes are not simulated (gpus_per_replica > gpus_per_node)"
            )
        self.per_replica = scenario.serving.tokens_per_s_per_replica or profile.tokens_per_s_per_replica
        self.weights = self.policy.serving.demand_weights
        self.demand = Demand(trace, scenario.traffic, scenario.start)
        self.queue = FluidQueue(
            base_latency=scenario.serving.base_latency,
            abandon_after=scenario.serving.abandon_after,
            slo_ttft=self.policy.serving.slo.ttft_p99,
        )
        self.metrics = FakeMetrics(self.policy.metrics, models=[served.name])
        self.instances: dict[str, SimInstance] = {}
        self.records: list[TickRecord] = []
        self.faults: list[InjectedFault] = []
        self._impact: dict[str, str] = {}
        self._agents: dict[str, tuple[Agent, MemoryLogSource]] = {}
        self._scanner: Scanner | None = None
        self._pod_seq = 0
        self._node_seq = 0
        self._pod_ready_at: dict[str, datetime] = {}
        self._pod_order: dict[str, int] = {}
        self._last_serving: TickServing | None = None
        self._serving: tuple[Listing[Pod] | None, tuple[Pod, ...]] = (None, ())
        self._node_ready: tuple[Listing[Node] | None, dict[str, bool]] = (None, {})
        self._capacity_of: tuple[tuple[Pod, ...] | None, tuple[tuple[str, str], ...], tuple[float, int]] = (
            None,
            (),
            (0.0, 0),
        )
        # (seconds, served weighted tokens, prompt share, served requests) per recent tick: what
        # rate(...[rate_window]) over vLLM's counters reports.
        self._window: list[tuple[float, float, float, float]] = []
        self._seed_cluster()

    # -- seeding -----------------------------------------------------------------------------------

    def _seed_cluster(self) -> None:
        names: set[str] = set()
        for sp in self.scenario.pools:
            for i in range(1, sp.nodes + 1):
                name = f"{sp.name_prefix}-{i:03d}"
                names.add(name)
                self.api.add_node(self._node(name, sp.name, sp.gpus_per_node, ()))
        for f in self.scenario.faults:
            if f.node not in names:
                raise ScenarioError(f"faults: node {f.node!r} is not a node of the scenario's pools")
        self.api.add_workload(self.workload, self.scenario.serving.initial_replicas)
        # No PodDisruptionBudget: FakeClusterApi derives a PDB's expected pods from the most pods it
        # ever selected (a fixed-size controller's view), which blocks every eviction once the
        # workload has scaled in; real Kubernetes uses the controller's current scale.
        self._controller()
        self._schedule(warm=True)

    def _node(self, name: str, pool: str, gpus: int, taints: tuple[Taint, ...], **labels: str) -> Node:
        return Node(
            name,
            labels={"kubernetes.io/hostname": name, LABEL_POOL: pool, **labels},
            taints=taints,
            conditions=(NodeCondition("Ready", "True", "KubeletReady", "", self.now),),
            gpus=gpus,
            created_at=self.now,
        )

    # -- the ledger of instances (cloud.InstanceLedger) --------------------------------------------

    def instance_launched(self, instance_id: str, instance_type: str, az: str, at: datetime) -> None:
        boot = self.scenario.cloud.boot

        def jittered(d: timedelta) -> timedelta:
            return d * (1 + self._rng.uniform(-boot.jitter, boot.jitter))

        reg = jittered(boot.registered)
        gpu = max(reg, jittered(boot.gpu_ready))
        self.instances[instance_id] = SimInstance(instance_id, instance_type, az, at, at + reg, at + gpu)

    def instance_terminated(self, instance_id: str, at: datetime) -> None:
        inst = self.instances.get(instance_id)
        if inst is not None and inst.terminated_at is None:
            inst.terminated_at = at

    def live_vcpus(self, vcpus_of: Callable[[str], int]) -> int:
        return sum(vcpus_of(i.instance_type) for i in self.instances.values() if i.terminated_at is None)

    def launched_at(self, instance_id: str) -> datetime | None:
        inst = self.instances.get(instance_id)
        return inst.launched_at if inst is not None else None

    def has_live(self) -> bool:
        return any(i.terminated_at is None for i in self.instances.values())

    def live_instances(self) -> list[SimInstance]:
        return [i for i in self.instances.values() if i.terminated_at is None]

    # -- one tick ----------------------------------------------------------------------------------

    def step(self, now: datetime) -> TickRecord:
        """Serve the interval since the last step with the capacity that was in place, then move
        the world to `now` (faults, agents, controller, scheduler, kubelet) and publish metrics."""
        before = self.now
        dt = (now - before).total_seconds()
        capacity, ready = self._capacity()
        arrivals = self.demand.between(before, now) if dt > 0 else None
        if arrivals is not None:
            tokens = arrivals.weighted(self.weights.prompt, self.weights.generation)
            serving = self.queue.step(tokens, arrivals.requests, capacity, dt)
            self._last_serving = serving
        self.now = now
        self._faults()
        self._instances()
        self._controller()
        self._schedule()
        self._kubelet()
        blind = self._publish_metrics(arrivals, dt)
        s = self._last_serving
        desired = self.api.get_scale(self.workload).replicas
        rec = TickRecord(
            at=before,
            demand_tokens_per_s=(s.arrived_tokens / dt) if s and dt > 0 else 0.0,
            served_tokens_per_s=(s.served_tokens / dt) if s and dt > 0 else 0.0,
            capacity_tokens_per_s=capacity,
            ready_replicas=ready,
            desired_replicas=desired,
            burst_instances=len(self.live_instances()),
            backlog_requests=s.backlog_requests if s else 0.0,
            arrived_requests=s.arrived_requests if s and dt > 0 else 0.0,
            within_slo_requests=s.within_slo_requests if s and dt > 0 else 0.0,
            unserved_requests=s.unserved_requests if s and dt > 0 else 0.0,
            metrics_blind=blind,
        )
        if dt > 0:
            self.records.append(rec)
        self.api.calls.clear()  # the call log is for tests; a long run must not keep it
        return rec

    def _capacity(self) -> tuple[float, int]:
        pods = self._serving_pods()
        impact = tuple(self._impact.items())
        if self._capacity_of[0] is pods and self._capacity_of[1] == impact:
            return self._capacity_of[2]  # asked twice a tick, usually of the same pods
        total = 0.0
        ready = 0
        for p in pods:
            if p.ready and p.node_name is not None:
                ready += 1
                total += self.per_replica * (0.5 if self._impact.get(p.node_name) == "degraded" else 1.0)
        self._capacity_of = (pods, impact, (total, ready))
        return total, ready

    # -- faults and agents -------------------------------------------------------------------------

    def _faults(self) -> None:
        start = self.scenario.start
        for i, f in enumerate(self.scenario.faults):
            at = start + f.at
            injected = next((x for x in self.faults if x.index == i), None)
            if injected is None and self.now >= at:
                repaired = at + f.repair_after if f.repair_after is not None else None
                injected = InjectedFault(i, f.node, at, f.node_fault, f.impact, repaired)
                self.faults.append(injected)
                self._write(f.node, f.lines, f.source)
                if f.impact != "none":
                    self._impact[f.node] = f.impact
                injected.next_repeat = at + f.repeat_every if f.repeat_every is not None else None
            elif injected is not None:
                active = injected.repaired_at is None or self.now < injected.repaired_at
                if active and injected.next_repeat is not None and self.now >= injected.next_repeat:
                    self._write(f.node, f.lines, f.source)
                    assert f.repeat_every is not None
                    injected.next_repeat = injected.next_repeat + f.repeat_every
                if not active and self._impact.get(f.node) == f.impact:
                    del self._impact[f.node]
        for _, (agent, _src) in sorted(self._agents.items()):
            agent.tick()
        nodes = {n.name: n for n in self.api.list_nodes().items}
        for x in self.faults:
            n = nodes.get(x.node)
            if n is None:
                continue
            if x.detected_at is None and _shows_fault(n):
                x.detected_at = self.now
            if x.cordoned_at is None and n.unschedulable:
                x.cordoned_at = self.now

    def _write(self, node: str, lines: Sequence[str], source: str) -> None:
        if node not in self._agents:
            if self._scanner is None:
                self._scanner = Scanner(
                    Catalog.of(self.loaded.rules), silence=self.policy.faults.burst_silence
                )
            src = MemoryLogSource(node, LogSourceKind(source))
            agent = Agent(
                node=node,
                cluster=self.api,
                sources=[src],
                cursors=MemoryCursors(),
                scanner=self._scanner,
                policy=self.policy.faults,
                clock=lambda: self.now,
                probe=self._probe(node) if self.scenario.agent_probe else None,
            )
            agent.start()
            self._agents[node] = (agent, src)
        self._agents[node][1].write(lines)

    def _probe(self, node: str) -> Callable[[datetime], ProbeVerdict]:
        """The agent's NVML probe on `node`: the real judge over what NVML would read now."""
        gpus = next((p.gpus_per_node for p in self.scenario.pools if node.startswith(p.name_prefix)), 8)

        def probe(now: datetime) -> ProbeVerdict:
            return judge(self.nvml_reading(node, gpus), node=node, now=now, expected_gpus=gpus)

        return probe

    def nvml_reading(self, node: str, gpus: int) -> ProbeReading:
        """What NVML reads on `node` given its active faults (scenario `nvml`, defaulted from impact)."""
        kinds: set[str] = set()
        for x in self.faults:
            f = self.scenario.faults[x.index]
            if x.node != node or (x.repaired_at is not None and self.now >= x.repaired_at):
                continue
            kinds.add(f.nvml or ("gpu_missing" if f.impact == "down" else "healthy"))
        if "driver_mismatch" in kinds:
            return ProbeReading(error="Driver/library version mismatch")
        readings = [GpuReading(i, f"0000:{0x10 + i:02x}:00.0", "NVIDIA A100-SXM4-40GB") for i in range(gpus)]
        if "gpu_lost" in kinds:
            readings[0] = replace(readings[0], error="GPU is lost")
        if "ecc_uncorrected" in kinds:
            readings[0] = replace(readings[0], ecc_uncorrected_volatile=1)
        if "gpu_missing" in kinds:
            readings = readings[1:]
        return ProbeReading(gpus=tuple(readings))

    # -- burst instances → nodes -------------------------------------------------------------------

    def _instances(self) -> None:
        for inst in self.instances.values():
            if inst.terminated_at is not None:
                if inst.node is not None:
                    with contextlib.suppress(NotFound):  # operatord deleted it already (retire)
                        self.api.delete_node(inst.node)
                    inst.node = None
                continue
            if inst.node is None and not inst.gpus_set and self.now >= inst.registered_at:
                if self.burst_pool is None:
                    continue
                self._node_seq += 1
                name = f"burst-{self._node_seq:03d}"
                inst.node = name
                taint = Taint(TAINT_BURST, "NoSchedule", "true")
                self.api.add_node(
                    self._node(name, self.burst_pool, 0, (taint,), **{LABEL_INSTANCE_ID: inst.instance_id})
                )
            if inst.node is not None and not inst.gpus_set and self.now >= inst.gpu_ready_at:
                inst.gpus_set = True
                try:
                    node = self.api.get_node(inst.node)
                except NotFound:  # operatord deleted it (a release that raced the boot)
                    continue
                self.api.update_node(replace(node, gpus=8))

    # -- ReplicaSet controller, scheduler, kubelet -------------------------------------------------

    def _serving_pods(self) -> tuple[Pod, ...]:
        listing = self.api.list_pods(namespace=self.workload.namespace)
        if listing is not self._serving[0]:  # the fake lists anew only after a write
            name = self.workload.name
            self._serving = (listing, tuple(p for p in listing.items if p.labels.get(APP_LABEL) == name))
        return self._serving[1]

    def _controller(self) -> None:
        want = self.api.get_scale(self.workload).replicas
        pods = [p for p in self._serving_pods() if not p.deleting]
        if len(pods) < want:
            for _ in range(want - len(pods)):
                self._pod_seq += 1
                name = f"{self.workload.name}-5d8f7c9b4-{self._pod_seq:05d}"
                self._pod_order[name] = self._pod_seq
                self.api.add_pod(
                    Pod(
                        self.workload.namespace,
                        name,
                        labels={APP_LABEL: self.workload.name},
                        controller_kind=OwnerKind.REPLICA_SET,
                        controller_name=f"{self.workload.name}-5d8f7c9b4",
                        phase="Pending",
                        ready=False,
                        gpus=self.gpus_per_replica,
                        termination_grace_s=120,
                    )
                )
        elif len(pods) > want:

            def rank(p: Pod) -> tuple[int, int, int, int, int]:
                cost = p.annotations.get(DELETION_COST_ANNOTATION)
                return (
                    1 if p.node_name else 0,
                    1 if p.phase == "Running" else 0,
                    1 if p.ready else 0,
                    int(cost) if cost and cost.lstrip("-").isdigit() else 0,
                    -self._pod_order.get(p.name, 0),
                )

            for p in sorted(pods, key=rank)[: len(pods) - want]:
                self.api.remove_pod(p.namespace, p.name)
                self._pod_ready_at.pop(p.name, None)

    def _schedule(self, *, warm: bool = False) -> None:
        pods = self._serving_pods()
        pending = sorted(
            (p for p in pods if p.node_name is None), key=lambda p: self._pod_order.get(p.name, 0)
        )
        if not pending:
            return
        nodes = self.api.list_nodes().items
        used: dict[str, int] = {}
        for p in pods:
            if p.node_name is not None:
                used[p.node_name] = used.get(p.node_name, 0) + p.gpus
        order = {name: i for i, name in enumerate(self.local_pools)}

        def key(n: Node) -> tuple[int, str]:
            return (order.get(n.pool or "", len(order)), n.name)

        candidates = sorted(
            (
                n
                for n in nodes
                if n.ready and not n.unschedulable and all(t.key == TAINT_BURST for t in n.taints)
            ),
            key=key,
        )
        for p in pending:
            for n in candidates:
                if n.gpus - used.get(n.name, 0) >= p.gpus:
                    used[n.name] = used.get(n.name, 0) + p.gpus
                    burst = LABEL_INSTANCE_ID in n.labels
                    load = (
                        self.scenario.serving.model_load_burst
                        if burst
                        else self.scenario.serving.model_load_local
                    )
                    self._pod_ready_at[p.name] = self.now if warm else self.now + load
                    self.api.add_pod(replace(p, node_name=n.name, phase="Running", ready=warm))
                    break

    def _kubelet(self) -> None:
        listing = self.api.list_nodes()
        if listing is not self._node_ready[0]:  # the fake lists anew only after a node changed
            self._node_ready = (listing, {n.name: n.ready for n in listing.items})
        node_ready = self._node_ready[1]
        for p in self._serving_pods():
            if p.node_name is None:
                continue
            up = node_ready.get(p.node_name)
            if up is None:
                self.api.remove_pod(p.namespace, p.name)
                self._pod_ready_at.pop(p.name, None)
                continue
            at = self._pod_ready_at.get(p.name, self.now)
            ready = self.now >= at and up and self._impact.get(p.node_name) != "down"
            if p.ready != ready:
                self.api.add_pod(replace(p, ready=ready))

    # -- metrics -----------------------------------------------------------------------------------

    def _publish_metrics(self, arrivals: object, dt: float) -> bool:
        off = self.now - self.scenario.start
        blind = any(w.start <= off < w.end for w in self.scenario.metrics.outages)
        if blind:
            self.metrics.fail()
            return True
        self.metrics.recover()
        s = self._last_serving
        if s is not None and dt > 0 and arrivals is not None:
            pt = getattr(arrivals, "prompt_tokens", 0.0) * self.weights.prompt
            gt = getattr(arrivals, "generation_tokens", 0.0) * self.weights.generation
            share = pt / (pt + gt) if pt + gt > 0 else 0.0
            self._window.append((dt, s.served_tokens, share, s.served_requests))
        limit = self.policy.metrics.rate_window.total_seconds()
        while len(self._window) > 1 and sum(w[0] for w in self._window[1:]) >= limit:
            self._window.pop(0)
        span = sum(w[0] for w in self._window)
        if s is None or span <= 0:
            served = share_prompt = requests_per_s = waiting = util = 0.0
            delay = self.scenario.serving.base_latency.total_seconds()
        else:
            served = sum(w[1] for w in self._window) / span
            share_prompt = sum(w[1] * w[2] for w in self._window) / max(sum(w[1] for w in self._window), 1e-9)
            requests_per_s = sum(w[3] for w in self._window) / span
            waiting = s.backlog_requests
            delay = min(s.delay_s, 3600.0)
            util = (
                (s.served_tokens / dt) / s.capacity_tokens_per_s
                if s.capacity_tokens_per_s > 0 and dt > 0
                else 1.0
            )
        # Split the weighted served tokens back into prompt and generation tokens/s as vLLM counts them.
        wp, wg = self.weights.prompt, self.weights.generation
        prompt = served * share_prompt / wp if wp > 0 else 0.0
        generation = served * (1 - share_prompt) / wg if wg > 0 else 0.0
        _, ready = self._capacity()
        self.metrics.set_model(
            self.model.name,
            at=self.now,
            prompt_tokens_per_s=prompt,
            generation_tokens_per_s=generation,
            requests_waiting=waiting,
            requests_running=float(ready * 16) * min(1.0, util),
            kv_cache_usage=min(1.0, 0.95 * util),
            requests_per_s=requests_per_s,
            success_ratio=1.0,
            ttft_p99_s=delay,
            e2e_p99_s=delay + 10.0,
        )
        return False


def _shows_fault(node: Node) -> bool:
    return any(
        c.type in (CONDITION_GPU_HEALTHY, CONDITION_NCCL_HEALTHY) and c.status == "False"
        for c in node.conditions
    )


@dataclass
class Ledger:
    """Spend and instance-hours of the world's instances up to `end`."""

    instance_hours: float = 0.0
    cost_usd: float = 0.0
    by_type: dict[str, float] = field(default_factory=dict)


def bill(world: World, end: datetime, prices: Mapping[str, float]) -> Ledger:
    out = Ledger()
    for inst in world.instances.values():
        stop = inst.terminated_at or end
        hours = max(0.0, (stop - inst.launched_at).total_seconds()) / 3600
        # EC2 Linux on-demand bills per second with a 60-second minimum.
        hours = max(hours, 60 / 3600)
        out.instance_hours += hours
        cost = hours * prices.get(inst.instance_type, 0.0)
        out.cost_usd += cost
        out.by_type[inst.instance_type] = out.by_type.get(inst.instance_type, 0.0) + cost
    return out
