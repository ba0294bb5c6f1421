"""Testing: FakeCapacity, an in-memory CapacityProvider with EC2's semantics, a call log and
injectable errors (Karpenter's fake provider is the model).

Unlike moto it honours ClientToken the way EC2 does (same token and parameters: the same
instances, nothing new; same token, other parameters: IdempotentParameterMismatch), launches
MaxCount all-or-nothing, and has per-(type, AZ) capacity, so the simulator and the idempotency
tests see what production sees. Instance ids and launch times are deterministic. With
`honor_client_token=False` it launches on every call, as moto does, which is how tests prove that
operatord's own protocol (not EC2's token) prevents double launches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from operatord.core.burst.intent import AttemptOutcome
from operatord.core.burst.observed import CloudInstance, LaunchResult, classify_code
from operatord.ports.capacity import CapacityUnreachable, LaunchRequest


@dataclass(frozen=True, slots=True)
class Call:
    """One entry of the call log."""

    op: str  # launch | terminate | list
    intent_id: str | None = None
    client_token: str | None = None
    instance_type: str | None = None
    subnet: str | None = None
    count: int = 0
    instance_ids: tuple[str, ...] = ()
    dry_run: bool = False
    outcome: str | None = None


@dataclass
class FakeCapacity:
    """See the module docstring. `clock` gives launch times (a virtual clock in the simulator)."""

    cluster: str = "test"
    clock: Callable[[], datetime] = field(default=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    capacity: dict[tuple[str, str], int] = field(default_factory=dict)  # (type, AZ) -> instances left
    default_capacity: int = 1_000
    fail_next: list[str] = field(default_factory=list)  # EC2 error codes for the next launches
    quota_vcpus: int | None = None
    vcpus_per_instance: dict[str, int] = field(default_factory=dict)
    unreachable: bool = False
    honor_client_token: bool = True  # False: behave like moto (every call launches), for idempotency tests
    calls: list[Call] = field(default_factory=list)
    _instances: dict[str, CloudInstance] = field(default_factory=dict)
    _tokens: dict[str, tuple[tuple[str, str, int], tuple[str, ...]]] = field(default_factory=dict)
    _seq: int = 0
    _subnet_az: dict[str, str] = field(default_factory=dict)

    # -- the port ----------------------------------------------------------------------------------

    def list_instances(self) -> Sequence[CloudInstance]:
        self._check_reachable()
        self.calls.append(Call("list"))
        return tuple(
            sorted(
                (i for i in self._instances.values() if i.state != "terminated"), key=lambda i: i.instance_id
            )
        )

    def launch(self, request: LaunchRequest) -> LaunchResult:
        self._check_reachable()
        a = request.attempt
        off = a.offering
        self._subnet_az[off.subnet] = off.availability_zone
        log = Call(
            "launch",
            request.intent_id,
            a.client_token,
            off.instance_type,
            off.subnet,
            a.count,
            dry_run=request.dry_run,
        )
        if self.fail_next:
            code = self.fail_next.pop(0)
            self.calls.append(replace(log, outcome=code))
            return LaunchResult(classify_code(code), code=code, message="injected")
        params = (off.instance_type, off.subnet, a.count)
        if self.honor_client_token and a.client_token in self._tokens:
            seen, ids = self._tokens[a.client_token]
            if seen != params:
                self.calls.append(replace(log, outcome="IdempotentParameterMismatch"))
                return LaunchResult(
                    AttemptOutcome.CONFIG,
                    code="IdempotentParameterMismatch",
                    message="the same ClientToken with other parameters",
                )
            self.calls.append(replace(log, outcome="deduplicated", instance_ids=ids))
            return LaunchResult(AttemptOutcome.LAUNCHED, tuple(self._instances[i] for i in ids))
        key = (off.instance_type, off.availability_zone)
        left = self.capacity.get(key, self.default_capacity)
        if left < a.count:
            self.calls.append(replace(log, outcome="InsufficientInstanceCapacity"))
            return LaunchResult(
                AttemptOutcome.CAPACITY,
                code="InsufficientInstanceCapacity",
                message=f"only {left} {off.instance_type} left in {off.availability_zone}",
            )
        if self.quota_vcpus is not None:
            used = sum(self.vcpus_per_instance.get(i.instance_type, 0) for i in self._live())
            if used + a.count * self.vcpus_per_instance.get(off.instance_type, 0) > self.quota_vcpus:
                self.calls.append(replace(log, outcome="VcpuLimitExceeded"))
                return LaunchResult(AttemptOutcome.QUOTA, code="VcpuLimitExceeded", message="quota")
        if request.dry_run:
            self.calls.append(replace(log, outcome="DryRunOperation"))
            return LaunchResult(AttemptOutcome.DRY_RUN, code="DryRunOperation")
        self.capacity[key] = left - a.count
        now = self.clock()
        made = []
        for _ in range(a.count):
            self._seq += 1
            inst = CloudInstance(
                instance_id=f"i-{self._seq:017x}",
                instance_type=off.instance_type,
                availability_zone=off.availability_zone,
                state="running",
                launched_at=now,
                intent_id=request.intent_id,
                expires_at=request.expires_at,
                subnet=off.subnet,
                client_token=a.client_token,
            )
            self._instances[inst.instance_id] = inst
            made.append(inst)
        ids = tuple(i.instance_id for i in made)
        self._tokens[a.client_token] = (params, ids)
        self.calls.append(replace(log, outcome="launched", instance_ids=ids))
        return LaunchResult(AttemptOutcome.LAUNCHED, tuple(made))

    def terminate(self, instance_ids: Sequence[str], *, dry_run: bool = False) -> None:
        self._check_reachable()
        ids = tuple(sorted(set(instance_ids)))
        self.calls.append(Call("terminate", instance_ids=ids, dry_run=dry_run))
        if dry_run:
            return
        for iid in ids:
            inst = self._instances.get(iid)
            if inst is None or inst.state == "terminated":
                continue
            self._instances[iid] = replace(inst, state="terminated")
            key = (inst.instance_type, inst.availability_zone)
            if key in self.capacity:
                self.capacity[key] += 1

    def vcpu_quota(self) -> int | None:
        return self.quota_vcpus

    # -- test helpers (public, so tests never reach into private state) ----------------------------

    def add_foreign(self, instance: CloudInstance) -> None:
        """Put an instance into the world as if someone (or a lost call) had launched it."""
        self._instances[instance.instance_id] = instance

    def set_state(self, instance_id: str, state: str) -> None:
        self._instances[instance_id] = replace(self._instances[instance_id], state=state)

    def launches(self, intent_id: str | None = None) -> list[Call]:
        """Launch calls that created instances (deduplicated retries excluded)."""
        return [
            c
            for c in self.calls
            if c.op == "launch"
            and c.outcome == "launched"
            and (intent_id is None or c.intent_id == intent_id)
        ]

    def live(self, intent_id: str | None = None) -> list[CloudInstance]:
        return [i for i in self._live() if intent_id is None or i.intent_id == intent_id]

    def _live(self) -> list[CloudInstance]:
        return [i for i in self._instances.values() if i.state not in ("terminated", "shutting-down")]

    def _check_reachable(self) -> None:
        if self.unreachable:
            raise CapacityUnreachable("fake capacity: unreachable (injected)")
