"""Shell. The daemon: observe → decide → apply once per tick, as the leader, and housekeeping.

`Daemon` is one replica of the controller. Its `tick()` is the whole of design §3.1:

1. bind the tick's log context (`tick_id`, `policy_rev`, `mode`) with structlog contextvars;
2. observe (operatord.shell.observe: every source inside its deadline; a missing source degrades
   the snapshot, only nodes/state are required);
3. followers stop here: they keep the gauges current and serve /metrics, and act on nothing;
4. the leader calls core.decide.decide_detailed — the same function as `operatord plan` and the
   simulator — and applies the plan through operatord.shell.apply within the effective mode
   (the policy's, only ever lowered by `--mode`; `--dry-run` writes nothing). Before every action
   the apply path asks `keep_going()`: a replica that lost its Lease or received SIGTERM starts
   nothing new; a drain in progress ends at its slice (its state is in the node's history, the
   next leader resumes it).

`run_scheduled()` drives it with an APScheduler 3.x BackgroundScheduler: the tick job with
`max_instances=1` and `coalesce=True` (a slow tick is never doubled, missed runs collapse into
one), and housekeeping jobs for Lease renewal and policy reload (when the operatord-policy
ConfigMap's resourceVersion changes; the new revision hash is logged, an invalid policy is
refused and the running one kept). Nothing that matters lives only in memory: state is in the
cluster (history, cordon owners, operatord-state, intents) and in instance tags, so a replica
killed at any point is replaced by one that converges from what it observes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

import operatord.shell.burst_apply
import operatord.shell.fleet_apply
import operatord.shell.reconcile_apply
from operatord.core.burst.actions import SetReplicas
from operatord.core.burst.caps import usage
from operatord.core.decide import Decision, decide_detailed
from operatord.core.memo import Memo
from operatord.core.snapshot import Snapshot
from operatord.policies.load import LoadedPolicy
from operatord.ports.capacity import CapacityProvider
from operatord.ports.cluster import ClusterApi
from operatord.shell.apply import ApplyContext, Outcome, apply_plan
from operatord.shell.leader import LeaderElector
from operatord.shell.metrics import BURST_STATES, OperatordMetrics
from operatord.shell.observe import Observation, ObserveFailed, Observer
from operatord.vocab import Mode

log = structlog.get_logger("operatord.loop")

# Imported for their executors: decide() plans every action kind (SetReplicas, LaunchBurst, ReleaseBurst;
# SetStackCondition; ReconcileBurst), and an action without an executor would fail the tick.
_EXECUTORS = (operatord.shell.burst_apply, operatord.shell.fleet_apply, operatord.shell.reconcile_apply)


class PolicySource(Protocol):
    """Where the live policy comes from (the CLI wires the operatord-policy ConfigMap or --policy)."""

    def revision_token(self) -> str | None:
        """A cheap token that changes when the policy may have changed (the ConfigMap's
        resourceVersion, a file's mtime); None when it cannot be read now."""
        ...

    def load(self) -> LoadedPolicy:
        """Load and validate; raises on an invalid policy or an unreachable source."""
        ...


@dataclass(frozen=True)
class LoopConfig:
    tick: timedelta = timedelta(seconds=30)
    mode: Mode | None = None  # `--mode`: only lowers the policy's
    dry_run: bool = False
    # One drain's share of a tick; well under the pod's termination grace (30 s by default), so
    # SIGTERM never has to wait for more than the action in progress.
    drain_slice: timedelta = timedelta(seconds=20)
    policy_poll: timedelta = timedelta(seconds=30)


@dataclass
class TickReport:
    tick_id: str
    leader: bool
    observation: Observation | None = None
    decision: Decision | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "error"
        return "ok" if self.leader else "skipped"


class Daemon:
    """One controller replica (see the module docstring). All clocks are injected."""

    def __init__(
        self,
        *,
        cluster: ClusterApi,
        namespace: str,
        observer: Observer,
        elector: LeaderElector,
        policy_source: PolicySource,
        policy: LoadedPolicy,
        metrics: OperatordMetrics,
        capacity: CapacityProvider | None = None,
        config: LoopConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.observer = observer
        self.elector = elector
        self.policy_source = policy_source
        self.loaded = policy
        self.metrics = metrics
        self.capacity = capacity
        self.config = config or LoopConfig()
        self.clock = clock
        self.stopping = threading.Event()
        self._sleep = sleep or self._interruptible_sleep
        self._monotonic = monotonic
        self._policy_token: str | None = None
        self._ticks = 0
        self._last_ok: dict[str, datetime] = {}
        self._last_tick_at: datetime | None = None
        self._ready = False
        self._lock = threading.Lock()
        self._memo = Memo()  # results of the last tick that depend only on the nodes and the policy
        self._set_caps()

    # -- the tick ----------------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self.loaded.policy.mode.lowered_to(self.config.mode)

    def tick(self) -> TickReport:
        """One tick (the scheduler's job; `run --once` calls it directly). Never raises."""
        with self._lock:
            self._ticks += 1
            tick_id = f"{self._ticks:06d}-{secrets.token_hex(3)}"
        loaded = self.loaded
        started = self._monotonic()
        now = self.clock()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            tick_id=tick_id, policy_rev=loaded.revision, mode=self.mode.value
        )
        # --dry-run writes nothing (not even the Lease): it plans as if leading and applies as "would".
        leader = (self.config.dry_run or self.elector.is_leader()) and not self.stopping.is_set()
        report = TickReport(tick_id, leader)
        try:
            try:
                obs = self.observer.observe(loaded.policy, now)
            except ObserveFailed as failed:
                self.metrics.child(
                    self.metrics.api_errors, dependency="kubernetes", kind=failed.status.kind
                ).inc()
                self._ready = False
                report.error = str(failed)
                log.error("tick.observe_failed", error=str(failed))
                return report
            report.observation = obs
            self._record_observation(obs, now)
            self._ready = True
            if not leader:
                log.debug("tick.standby", leader=False)
                return report
            decision = decide_detailed(obs.snapshot, loaded.policy, now, self._memo)
            report.decision = decision
            self._record_decision(decision)
            ctx = ApplyContext(
                self.cluster,
                self.namespace,
                loaded.policy,
                self.mode,
                dry_run=self.config.dry_run,
                clock=self.clock,
                sleep=self._sleep,
                monotonic=self._stoppable_monotonic,
                capacity=self.capacity,
                drain_slice=self.config.drain_slice,
                keep_going=self._keep_going,
            )
            report.outcomes = apply_plan(decision.plan, ctx)
            self._record_outcomes(report.outcomes, decision, now)
            self.metrics.leader_heartbeat.set(now.timestamp())
            return report
        except Exception as err:  # a bug must not kill the loop; it is logged and counted
            report.error = f"{type(err).__name__}: {err}"
            log.exception("tick.failed", error=report.error)
            return report
        finally:
            elapsed = self._monotonic() - started
            self.metrics.child(self.metrics.ticks, outcome=report.outcome).inc()
            self.metrics.tick_duration.observe(max(0.0, elapsed))
            self._last_tick_at = now
            log.info(
                "tick.finished",
                outcome=report.outcome,
                leader=report.leader,
                actions=len(report.outcomes),
                duration_s=round(elapsed, 3),
            )
            structlog.contextvars.clear_contextvars()

    def _interruptible_sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def _keep_going(self) -> bool:
        return not self.stopping.is_set() and (self.config.dry_run or self.elector.is_leader())

    def _stoppable_monotonic(self) -> float:
        # Once stopping, time "runs out": a drain in its slice returns at once as in progress.
        return self._monotonic() + (1e9 if not self._keep_going() else 0.0)

    # -- housekeeping ------------------------------------------------------------------------------

    def renew(self) -> bool:
        leading = self.elector.try_acquire_or_renew()
        self.metrics.leader.set(1 if leading else 0)
        return leading

    def reload_policy(self) -> bool:
        """Load the policy again when its source's revision token changed; True when it changed."""
        try:
            token = self.policy_source.revision_token()
        except Exception as err:
            log.warning("policy.reload_failed", error=f"{type(err).__name__}: {err}")
            return False
        if token is None or token == self._policy_token:
            return False
        try:
            loaded = self.policy_source.load()
        except Exception as err:
            log.error("policy.reload_failed", token=token, error=str(err), kept=self.loaded.revision)
            self._policy_token = token  # do not retry the same broken revision every poll
            return False
        self._policy_token = token
        if loaded.revision == self.loaded.revision:
            return False
        previous = self.loaded.revision
        self.loaded = loaded
        log.info("policy.reloaded", revision=loaded.revision, previous=previous, source=loaded.source)
        self._set_caps()
        return True

    def prime(self) -> None:
        """Record the policy token the daemon started with and the static gauges."""
        try:
            self._policy_token = self.policy_source.revision_token()
        except Exception:
            self._policy_token = None
        self._set_caps()

    # -- health ------------------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        """Ready once a tick observed the cluster; not ready while the API cannot be read."""
        return (True, "ok") if self._ready else (False, "no successful observation yet")

    def alive(self, now: datetime) -> tuple[bool, str]:
        """Alive unless ticks stopped finishing (a wedged scheduler): 10 ticks plus a drain slice."""
        last = self._last_tick_at
        limit = self.config.tick * 10 + self.config.drain_slice
        if last is None or now - last <= limit:
            return True, "ok"
        return False, f"no tick finished for {(now - last).total_seconds():.0f}s"

    # -- metrics -----------------------------------------------------------------------------------

    def _set_caps(self) -> None:
        burst = self.loaded.policy.burst
        enabled = burst is not None and burst.enabled
        self.metrics.child(self.metrics.burst_cap_usd, period="hour").set(
            burst.max_usd_per_hour if enabled and burst else 0
        )
        self.metrics.child(self.metrics.burst_cap_usd, period="day").set(
            burst.max_usd_per_day if enabled and burst else 0
        )

    def _record_observation(self, obs: Observation, now: datetime) -> None:
        m, snap, policy = self.metrics, obs.snapshot, self.loaded.policy
        failed = {s.source for s in obs.statuses if not s.ok}
        for status in obs.statuses:
            if status.ok:
                self._last_ok[status.source] = now
            else:
                m.child(m.api_errors, dependency=status.source, kind=status.kind).inc()
        limits = {
            "kubernetes": self.config.tick * 3,
            "prometheus": policy.metrics.staleness_limit,
            "ec2": self.config.tick * 3,
        }
        for source, limit in limits.items():
            last = self._last_ok.get(source)
            if source == "prometheus" and snap.metrics is not None and snap.metrics.outage is None:
                last = snap.metrics.observed_at
            if last is None:
                continue
            age = max(0.0, (now - last).total_seconds())
            m.child(m.data_age_seconds, source=source).set(age)
            m.child(m.data_stale, source=source).set(
                1 if source in failed and age > limit.total_seconds() else 0
            )
        m.breaker_open.set(1 if snap.state.breaker.open else 0)
        m.paused.set(1 if snap.state.pause is not None else 0)
        self._record_burst(snap, now)

    def _record_burst(self, snap: Snapshot, now: datetime) -> None:
        if snap.cloud is None:
            return
        m = self.metrics
        counts: Counter[str] = Counter()
        for intent in snap.cloud.intents:
            if intent.instances:
                counts.update(rec.state.value for rec in intent.instances)
            elif intent.live:
                counts[intent.state.value] += 1
        for state in BURST_STATES:
            m.child(m.burst_instances, state=state).set(counts.get(state, 0))
        held = usage(snap.cloud.intents, self.loaded.policy, now)
        m.child(m.burst_spend_usd, period="hour").set(round(held.usd_per_hour, 4))
        m.child(m.burst_spend_usd, period="day").set(round(held.spent_today_usd, 2))

    def _record_decision(self, decision: Decision) -> None:
        plan = decision.plan
        for a in plan.actions:
            self.metrics.child(self.metrics.decisions, reason=a.reason, decision="action").inc()
        for h in plan.holds:
            self.metrics.child(self.metrics.decisions, reason=h.reason, decision="hold").inc()
        log.info(
            "plan.computed",
            actions=len(plan.actions),
            holds=len(plan.holds),
            reasons=sorted({a.reason for a in plan.actions} | {h.reason for h in plan.holds}),
            demand_gpus=decision.demand_gpus,
        )

    def _record_outcomes(self, outcomes: list[Outcome], decision: Decision, now: datetime) -> None:
        by_key = {a.key: a for a in decision.plan.actions}
        for o in outcomes:
            self.metrics.child(self.metrics.actions, kind=o.kind, outcome=o.status).inc()
            action = by_key.get(o.key)
            if isinstance(action, SetReplicas) and o.status == "applied":
                self.observer.replicas_changed(now, up=action.replicas > action.previous)


# -- the scheduler ---------------------------------------------------------------------------------


def run_scheduled(daemon: Daemon, stop: threading.Event) -> None:
    """Run the daemon's jobs until `stop` is set; then finish the tick in progress (it starts no
    new action once stopping), release the Lease and return."""
    cfg = daemon.config
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(cfg.tick.total_seconds()),
        },
    )
    now = datetime.now(UTC)
    daemon.prime()
    if not cfg.dry_run:  # a dry run writes nothing, the Lease included
        daemon.renew()  # stand for election before the first tick, so a sole replica acts at once
        scheduler.add_job(
            daemon.renew,
            "interval",
            seconds=max(1.0, daemon.elector.renew_every.total_seconds()),
            id="lease",
            next_run_time=now + daemon.elector.renew_every,
        )
    scheduler.add_job(
        daemon.reload_policy,
        "interval",
        seconds=max(1.0, cfg.policy_poll.total_seconds()),
        id="policy",
        next_run_time=now + cfg.policy_poll,
    )
    scheduler.add_job(
        daemon.tick, "interval", seconds=max(1.0, cfg.tick.total_seconds()), id="tick", next_run_time=now
    )
    scheduler.start()
    log.info(
        "daemon.started",
        identity=daemon.elector.identity,
        tick_s=cfg.tick.total_seconds(),
        mode=daemon.mode.value,
        dry_run=cfg.dry_run,
        policy_rev=daemon.loaded.revision,
    )
    stop.wait()
    daemon.stopping.set()
    log.info("daemon.stopping", identity=daemon.elector.identity)
    scheduler.shutdown(wait=True)  # the tick in progress ends after its current action
    daemon.elector.release()
    daemon.metrics.leader.set(0)
    daemon.observer.close()
    log.info("daemon.stopped", identity=daemon.elector.identity)
