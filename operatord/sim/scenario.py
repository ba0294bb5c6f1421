"""Simulator: the scenario format (pydantic), loaded from YAML with located errors.

A scenario is everything the simulated world needs and nothing operatord decides: the local
pools, how a model serves (assumptions, labelled as such in the report), the traffic (a real
trace in the Azure CSV format `TIMESTAMP,ContextTokens,GeneratedTokens`, a rate multiplier, a
daily curve that tiles the hour-long trace into days, spikes), how the cloud behaves (boot
delays, capacity errors per (type, AZ) over time windows, a vCPU quota, throttling), Prometheus
outages, a fault timeline (node, time, real log lines), the policy file (with overrides), the
duration, the tick and the seed. Times inside the run are offsets from `start` ("30m", "2h").
Paths (`policy`, `traffic.trace`) resolve relative to the scenario file. `operatord simulate
--schema` prints the JSON Schema of this model.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import Field, PositiveFloat, PositiveInt, ValidationError, model_validator

from operatord.policies.base import Strict
from operatord.policies.types import Duration

SCENARIOS_DIR = Path(__file__).parent / "scenarios"


class LocalPool(Strict):
    """Owned GPU nodes; the pool must exist in the policy (kind local)."""

    name: str = Field(description="Policy pool name (kind local).")
    nodes: PositiveInt = Field(description="Nodes in the pool at the start.")
    gpus_per_node: PositiveInt = Field(8, description="GPUs each node advertises.")
    name_prefix: str = Field("gpu", description="Node names are <prefix>-<nnn>.")


class Serving(Strict):
    """How the served model behaves in the simulated cluster. ASSUMPTIONS, not measurements."""

    initial_replicas: PositiveInt = Field(description="Replicas at the start (all placed on local nodes).")
    tokens_per_s_per_replica: PositiveFloat | None = Field(
        None,
        description="Weighted tokens/s one replica serves; default: the policy profile's (an assumption).",
    )
    base_latency: Duration = Field(
        timedelta(milliseconds=400), description="Time to first token of a request that never queues."
    )
    abandon_after: Duration = Field(
        timedelta(seconds=60), description="A request still queued after this long is given up (unserved)."
    )
    model_load_local: Duration = Field(
        timedelta(minutes=3), description="Bound pod → Ready on a local node (weights cached on the node)."
    )
    model_load_burst: Duration = Field(
        timedelta(minutes=7), description="Bound pod → Ready on a fresh burst node (image pull + weights)."
    )


class Spike(Strict):
    at: Duration = Field(description="Offset from the start.")
    duration: Duration
    factor: PositiveFloat = Field(description="Demand multiplier while the spike lasts.")
    ramp: Duration = Field(timedelta(minutes=2), description="Linear ramp up and down inside the duration.")


class Traffic(Strict):
    trace: str = Field(
        description="Azure-format CSV (TIMESTAMP,ContextTokens,GeneratedTokens), relative path."
    )
    rate_multiplier: PositiveFloat = Field(
        1.0, description="Every request of the trace counts this many times (scales the arrival rate)."
    )
    daily_curve: list[float] | None = Field(
        None,
        min_length=24,
        max_length=24,
        description="24 hourly factors (UTC hour of the simulated clock), interpolated; the hour-long "
        "trace is tiled under it. None: the trace as recorded, tiled.",
    )
    spikes: list[Spike] = Field(default_factory=list)


class BootDelays(Strict):
    """RunInstances → each step (research/autoscaling.md §3.2 planning numbers)."""

    registered: Duration = Field(timedelta(minutes=3), description="Node object registered and Ready.")
    gpu_ready: Duration = Field(timedelta(minutes=5), description="nvidia.com/gpu allocatable.")
    jitter: float = Field(0.2, ge=0, le=0.9, description="± fraction, drawn per instance from the seed.")


class CapacityWindow(Strict):
    """EC2 answers RunInstances for (type, AZ) with `code` between start and end."""

    instance_type: str
    availability_zone: str
    start: Duration
    end: Duration
    code: str = "InsufficientInstanceCapacity"


class Window(Strict):
    start: Duration
    end: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Cloud(Strict):
    boot: BootDelays = BootDelays()
    capacity_errors: list[CapacityWindow] = Field(default_factory=list)
    vcpu_quota: PositiveInt | None = Field(
        None, description="Regional P-family vCPU quota EC2 enforces (VcpuLimitExceeded); None: unlimited."
    )
    throttle: list[Window] = Field(
        default_factory=list, description="Windows in which every EC2 call gets RequestLimitExceeded."
    )
    list_every: Duration = Field(
        timedelta(minutes=5),
        description="The simulated reconcile lists EC2 after each write and otherwise on this cadence "
        "(moto's describe calls cost ~20 ms in process; moto's state only changes on our writes).",
    )


class Metrics(Strict):
    outages: list[Window] = Field(
        default_factory=list, description="Prometheus unreachable in these windows."
    )


class Fault(Strict):
    """Log lines that appear on a node at a time; they go through the real classifier."""

    at: Duration
    node: str = Field(description="Node name, e.g. gpu-003.")
    lines: list[str] = Field(min_length=1, description="Kernel / container log lines, as logged.")
    source: Literal["kmsg", "journald", "container"] = "kmsg"
    repeat_every: Duration | None = Field(None, description="The lines repeat at this interval while active.")
    node_fault: bool = Field(
        True,
        description="Ground truth: is this the node's fault (draining it is right)? False: an app fault.",
    )
    impact: Literal["down", "degraded", "none"] = Field(
        "down", description="What the fault does to the replica on the node (degraded: half throughput)."
    )
    repair_after: Duration | None = Field(
        None, description="The node is healthy again after this; None: not in the run."
    )
    nvml: Literal["healthy", "gpu_missing", "gpu_lost", "ecc_uncorrected", "driver_mismatch"] | None = Field(
        None,
        description="What the agent's NVML probe reads on the node while the fault lasts; default: "
        "gpu_missing when impact is down, else healthy (NVML sees nothing wrong).",
    )


class Scenario(Strict):
    """One simulation: world, traffic, cloud behaviour, faults, policy, duration, tick, seed."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    policy: str = Field(description="Policy file, relative to the scenario file.")
    policy_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Deep-merged into the policy document before validation."
    )
    start: datetime = Field(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), description="Virtual clock at t=0 (UTC).")
    duration: Duration
    tick: Duration = timedelta(seconds=30)
    seed: int = 1
    pools: list[LocalPool] = Field(min_length=1)
    serving: Serving
    traffic: Traffic
    cloud: Cloud = Cloud()
    metrics: Metrics = Metrics()
    faults: list[Fault] = Field(default_factory=list)
    agent_probe: bool = Field(
        True,
        description="Node agents run with their NVML probe (as `operatord agent` does where NVML is "
        "available); a healthy probe clears GPUHealthy before the quiet period ends.",
    )

    @model_validator(mode="after")
    def _times(self) -> Self:
        if self.tick <= timedelta(0) or self.duration < self.tick:
            raise ValueError("tick must be positive and duration at least one tick")
        if self.start.tzinfo is None:
            raise ValueError("start needs a time zone (UTC)")
        return self


class ScenarioError(Exception):
    """The scenario cannot be read or is invalid; the message names file and field."""


def resolve(name_or_path: str) -> Path:
    """A path to a scenario file, or the bare NAME of a shipped one (operatord/sim/scenarios/NAME.yaml)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    shipped = SCENARIOS_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    names = ", ".join(sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml")))
    raise ScenarioError(
        f"{name_or_path}: no such file and no shipped scenario of that name (shipped: {names})"
    )


def shipped() -> list[str]:
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml"))


def load(path: Path) -> Scenario:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ScenarioError(f"{where}: not YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping")
    try:
        return Scenario.model_validate(doc)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in err.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from None


def relative(scenario_file: Path, value: str) -> Path:
    """A path named in the scenario, resolved relative to the scenario file."""
    p = Path(value)
    return p if p.is_absolute() else (scenario_file.parent / p).resolve()


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def schema() -> dict[str, Any]:
    return Scenario.model_json_schema()
