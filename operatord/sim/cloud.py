"""Simulator: the cloud side. What EC2 does that moto does not, and the provider the runner uses.

moto launches instances at once, never runs out of capacity, has no quota and never throttles
(research/autoscaling.md §3.6). The scenario's cloud behaviour is a `CloudFaults` plan over the
virtual clock, applied at the boto3 client with `before-call` event hooks (`install_hooks`), so
operatord's own EC2 adapter sees the real error documents and classifies them itself. With the
in-memory FakeCapacity (the benchmark's comparison run) `SimCapacity` applies the same plan.

`SimCapacity` wraps whichever CapacityProvider the CLI wired (Ec2Capacity on moto, or
FakeCapacity) and is the runner's provider:

* it tells the world about every launch and termination (the world boots instances into nodes
  on the virtual clock, and bills them);
* it reports launch times on the virtual clock (moto stamps the wall clock);
* it lists EC2 on a cadence and after each write, not every tick (a moto describe costs ~20 ms),
  and not at all while the last listing was empty and nothing it launched can still be alive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from operatord.core.burst.intent import AttemptOutcome
from operatord.core.burst.observed import CloudInstance, LaunchResult, classify_code
from operatord.ports.capacity import CapacityProvider, CapacityUnreachable, LaunchRequest
from operatord.sim.scenario import Cloud


class InstanceLedger(Protocol):
    """Where the world keeps the instances that exist (the runner's world implements it)."""

    def instance_launched(self, instance_id: str, instance_type: str, az: str, at: datetime) -> None: ...

    def instance_terminated(self, instance_id: str, at: datetime) -> None: ...

    def live_vcpus(self, vcpus_of: Callable[[str], int]) -> int: ...

    def launched_at(self, instance_id: str) -> datetime | None: ...

    def has_live(self) -> bool:
        """Whether any instance launched through the provider may still be listed."""
        ...


@dataclass
class CloudFaults:
    """The scenario's cloud behaviour over the virtual clock."""

    cloud: Cloud
    start: datetime
    clock: Callable[[], datetime]
    ledger: InstanceLedger
    vcpus: dict[str, int]  # instance type → vCPUs (from the policy)
    injected: int = 0

    def throttled(self) -> bool:
        off = self.clock() - self.start
        return any(w.start <= off < w.end for w in self.cloud.throttle)

    def launch_error(self, instance_type: str, az: str, count: int) -> str | None:
        """The EC2 error code RunInstances gets now, or None (moto may launch)."""
        off = self.clock() - self.start
        if self.throttled():
            return "RequestLimitExceeded"
        for w in self.cloud.capacity_errors:
            if w.instance_type == instance_type and w.availability_zone == az and w.start <= off < w.end:
                return w.code
        quota = self.cloud.vcpu_quota
        if quota is not None:
            used = self.ledger.live_vcpus(lambda t: self.vcpus.get(t, 0))
            if used + count * self.vcpus.get(instance_type, 0) > quota:
                return "VcpuLimitExceeded"
        return None


def install_hooks(client: Any, faults: CloudFaults, subnet_az: dict[str, str]) -> None:
    """Register before-call hooks on a boto3 EC2 client that answer with the plan's errors."""
    from botocore.awsrequest import AWSResponse  # noqa: PLC0415 (only runs that use boto3 pay for it)

    def answer(code: str) -> tuple[Any, dict[str, Any]]:
        faults.injected += 1
        status = 503 if code == "RequestLimitExceeded" else (500 if code.startswith("Insufficient") else 400)
        body = {"Error": {"Code": code, "Message": f"{code} (injected by the simulator)"}}
        return (
            AWSResponse("https://ec2.simulated", status, {}, None),
            {**body, "ResponseMetadata": {"HTTPStatusCode": status}},
        )

    def on_run(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        body = params.get("body", {})
        itype = str(body.get("InstanceType", ""))
        az = subnet_az.get(str(body.get("SubnetId", "")), "")
        count = int(body.get("MinCount", 1))
        if body.get("DryRun") in (True, "true"):
            return None
        code = faults.launch_error(itype, az, count)
        return answer(code) if code is not None else None

    def on_other(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        return answer("RequestLimitExceeded") if faults.throttled() else None

    events = client.meta.events
    events.register("before-call.ec2.RunInstances", on_run)
    events.register("before-call.ec2.DescribeInstances", on_other)
    events.register("before-call.ec2.TerminateInstances", on_other)


class SimCapacity:
    """The runner's CapacityProvider (see the module docstring)."""

    def __init__(
        self,
        inner: CapacityProvider,
        *,
        ledger: InstanceLedger,
        clock: Callable[[], datetime],
        list_every_s: float,
        faults: CloudFaults | None = None,
    ) -> None:
        self._inner = inner
        self._ledger = ledger
        self._clock = clock
        self._every = list_every_s
        self._faults = faults  # applied here only when the inner provider has no boto3 client
        self._cached: tuple[CloudInstance, ...] | None = None
        self._listed_at: datetime | None = None
        self.lists = 0
        self.launch_calls = 0

    @property
    def cluster(self) -> str:
        return self._inner.cluster

    def list_instances(self) -> Sequence[CloudInstance]:
        now = self._clock()
        fresh = (
            self._cached is not None
            and self._listed_at is not None
            and (now - self._listed_at).total_seconds() < self._every
        )
        # Exact, not a shortcut: with nothing launched alive, the cloud's answer is the empty list
        # it gave last time (only instances this provider launched carry the cluster's tags).
        idle = self._cached == () and not self._ledger.has_live()
        if not fresh and not idle:
            self._cached = tuple(self.list_now())
            self._listed_at = now
        assert self._cached is not None
        return self._cached

    def list_now(self) -> Sequence[CloudInstance]:
        """List the provider now (uncached), with virtual launch times."""
        if self._faults is not None and self._faults.throttled():
            self._faults.injected += 1
            raise CapacityUnreachable("RequestLimitExceeded (injected by the simulator)")
        self.lists += 1
        return tuple(self._virtual(i) for i in self._inner.list_instances())

    def launch(self, request: LaunchRequest) -> LaunchResult:
        self.launch_calls += 1
        if self._faults is not None and not request.dry_run:
            off = request.attempt.offering
            code = self._faults.launch_error(off.instance_type, off.availability_zone, request.attempt.count)
            if code is not None:
                self._faults.injected += 1
                return LaunchResult(classify_code(code), code=code, message="injected by the simulator")
        result = self._inner.launch(request)
        if result.outcome is AttemptOutcome.LAUNCHED and not request.dry_run:
            now = self._clock()
            for inst in result.instances:
                if self._ledger.launched_at(inst.instance_id) is None:
                    self._ledger.instance_launched(
                        inst.instance_id, inst.instance_type, inst.availability_zone, now
                    )
            result = replace(result, instances=tuple(self._virtual(i) for i in result.instances))
            self._cached = None
        return result

    def terminate(self, instance_ids: Sequence[str], *, dry_run: bool = False) -> None:
        if self._faults is not None and self._faults.throttled():
            self._faults.injected += 1
            raise CapacityUnreachable("ec2 TerminateInstances kept failing: RequestLimitExceeded (injected)")
        self._inner.terminate(instance_ids, dry_run=dry_run)
        if not dry_run:
            now = self._clock()
            for iid in instance_ids:
                self._ledger.instance_terminated(iid, now)
            self._cached = None

    def vcpu_quota(self) -> int | None:
        return self._inner.vcpu_quota()

    def _virtual(self, inst: CloudInstance) -> CloudInstance:
        at = self._ledger.launched_at(inst.instance_id)
        return inst if at is None else replace(inst, launched_at=at)
