"""The operatord policy (`kind: Policy`): one frozen, validated object every decision takes.

Each section is the knob set of one capability; cross-field rules sit next to the fields they
relate, and every field's description becomes the JSON Schema (`operatord policy schema`, the
Helm chart's values.schema.json and the reference docs).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal, Self

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, field_validator, model_validator

from operatord.policies.base import CrossFieldError, Strict
from operatord.policies.types import CountOrPercent, CountOrPercentField, Duration, Fraction
from operatord.vocab import LABEL_POOL, FaultClass, Mode

_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class Pool(Strict):
    """A group of interchangeable GPU nodes."""

    name: str = Field(pattern=_NAME, description="Pool name (DNS label).")
    kind: Literal["local", "burst"] = Field(description="local: owned hardware; burst: EC2 instances.")
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description=f"Labels selecting the pool's nodes; empty means {{{LABEL_POOL}: <name>}}.",
    )
    gpu_type: str = Field(
        min_length=1, description="GPU model, e.g. A100-SXM4-40GB; matches serving profiles."
    )
    gpus_per_node: PositiveInt = Field(8, description="GPUs a healthy node of this pool advertises.")
    min_healthy_gpu_fraction: Fraction | None = Field(
        None, description="Overrides remediation.min_healthy_gpu_fraction for this pool."
    )
    max_unhealthy_fraction: Fraction | None = Field(
        None, description="Overrides remediation.max_unhealthy_fraction for this pool."
    )

    @property
    def selector(self) -> dict[str, str]:
        return dict(self.node_selector) or {LABEL_POOL: self.name}


class WorkloadRef(Strict):
    kind: Literal["Deployment", "StatefulSet", "LeaderWorkerSet"] = "Deployment"
    namespace: str = Field(pattern=_NAME)
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


class ServingProfile(Strict):
    """How one model serves on one GPU type (a user-measured assumption)."""

    gpu_type: str = Field(min_length=1)
    gpus_per_replica: PositiveInt = Field(description="GPUs one serving replica uses (may span nodes).")
    tokens_per_s_per_replica: PositiveFloat = Field(
        description="Weighted tokens/s one replica sustains within the SLO (measured by you)."
    )


class DemandWeights(Strict):
    """Demand = prompt × prompt_weight + generation × generation_weight tokens/s (design §1.7)."""

    prompt: float = Field(0.2, ge=0, description="Weight of prompt (prefill) tokens/s.")
    generation: float = Field(1.0, ge=0, description="Weight of generated (decode) tokens/s.")

    @model_validator(mode="after")
    def _not_all_zero(self) -> Self:
        if self.prompt == 0 and self.generation == 0:
            raise CrossFieldError("generation", "at least one demand weight must be positive")
        return self


class ServedModel(Strict):
    name: str = Field(min_length=1, description="Model name as served (the metrics' model_name label).")
    workload: WorkloadRef
    replica_owner: Literal["operatord", "hpa"] = Field(
        "operatord",
        description="operatord sets replicas itself; hpa: an HPA/KEDA does, operatord only adds nodes.",
    )
    min_replicas: NonNegativeInt = 1
    max_replicas: PositiveInt = 64
    profiles: list[ServingProfile] = Field(min_length=1)

    @model_validator(mode="after")
    def _replica_bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise CrossFieldError(
                "min_replicas",
                f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})",
            )
        types = [p.gpu_type for p in self.profiles]
        for i, gpu_type in enumerate(types):
            if gpu_type in types[:i]:
                raise CrossFieldError(
                    f"profiles.{i}.gpu_type", f"duplicate profile for GPU type {gpu_type!r}"
                )
        return self

    def profile_for(self, gpu_type: str) -> ServingProfile | None:
        return next((p for p in self.profiles if p.gpu_type == gpu_type), None)


class Slo(Strict):
    ttft_p99: Duration = Field(timedelta(seconds=2), description="Time-to-first-token target (p99).")
    e2e_p99: Duration = Field(timedelta(seconds=30), description="End-to-end request latency target (p99).")


class Serving(Strict):
    models: list[ServedModel] = Field(min_length=1)
    demand_weights: DemandWeights = DemandWeights()
    slo: Slo = Slo()

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [m.name for m in self.models]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise CrossFieldError(f"models.{i}.name", f"duplicate model {name!r}")
        return self


class Breaker(Strict):
    """Quarantine circuit breaker: too many cordons in a window means a shared cause; stop."""

    fraction: Fraction = Field(
        0.5,
        gt=0,
        description="Trip when operatord's cordons in the window would exceed this share of the nodes "
        "(and one node); open stops automatic cordons, drains and uncordons until `operatord breaker reset`.",
    )
    window: Duration = Field(timedelta(minutes=5), description="Sliding window for the breaker.")


class Escalation(Strict):
    after_remediations: PositiveInt = Field(
        5, description="Hand a node to a human after this many remediations."
    )
    window: Duration = Field(timedelta(days=7), description="Window in which remediations are counted.")


class DrainOptions(Strict):
    timeout: Duration = Field(
        timedelta(minutes=15), description="Give up (and report) a drain after this long."
    )
    grace_period: Duration | None = Field(None, description="Pod termination grace; default: each pod's own.")
    delete_emptydir_data: bool = Field(
        True, description="Evict pods with emptyDir volumes (their data is lost)."
    )
    unmanaged_pods: Literal["refuse", "skip", "delete"] = Field(
        "refuse", description="Pods without a controller: refuse the drain, skip them, or delete them."
    )
    eviction_retry: Duration = Field(timedelta(seconds=5), description="First backoff after a PDB 429.")


class RemediationPolicy(Strict):
    """Cordon and drain, inside blast-radius guards (research/faults.md §1.7, §5)."""

    max_concurrent_drains: CountOrPercentField = Field(
        CountOrPercent(1, percent=False), description='Nodes draining at once per pool: N or "N%".'
    )
    min_healthy_gpu_fraction: Fraction = Field(
        0.75,
        description="Never start a drain that leaves less than this share of a pool's GPUs serving "
        "(Ready, not drained, no fatal fault; a cordoned node still serves until drained).",
    )
    max_unhealthy_fraction: Fraction = Field(
        0.2,
        description="More unhealthy nodes than this share of a pool (and always more than one) stops "
        "automatic cordons and drains there (fleet sick; Karpenter's repair stop is 20 %).",
    )
    breaker: Breaker = Breaker()
    drain_spacing: Duration = Field(
        timedelta(minutes=10),
        description="Minimum time between two automatic drain starts (a fatal fault does not wait).",
    )
    drain: DrainOptions = DrainOptions()
    toleration: dict[FaultClass, Duration] = Field(
        default_factory=dict,
        description="Per fault class: how long a non-fatal node fault is watched before cordon and drain.",
    )
    capacity_request_timeout: Duration = Field(
        timedelta(minutes=20), description="Drain anyway when replacement capacity is not serving by then."
    )
    escalation: Escalation = Escalation()
    uncordon_on_recovery: bool = Field(
        True, description="Uncordon nodes operatord cordoned once they recover."
    )


class FaultsPolicy(Strict):
    rules: list[str] = Field(
        default_factory=lambda: ["faults/*.yaml"],
        min_length=1,
        description="Globs of FaultRules files, relative to this policy file.",
    )
    burst_silence: Duration = Field(
        timedelta(minutes=3), description="Repeats closer than this fold into one finding."
    )
    repeat_window: Duration = Field(
        timedelta(hours=24), description="The same Xid on the same GPU within this escalates."
    )
    fleet_event_nodes: PositiveInt = Field(
        3, description="The same class on this many nodes is one fleet event."
    )
    fleet_event_window: Duration = Field(
        timedelta(minutes=5), description="Window for fleet-event correlation."
    )
    recovery_quiet_period: Duration = Field(
        timedelta(minutes=30),
        description="A node fault clears after this long without a repeat (or a healthy probe).",
    )
    lookback: Duration = Field(
        timedelta(hours=1), description="How far back the agent reads logs on first start."
    )


class Forecast(Strict):
    method: Literal["holt", "none"] = Field(
        "holt", description="holt: double exponential smoothing of demand; none: purely reactive."
    )
    horizon: Duration | None = Field(
        None,
        description="Look-ahead; default: the measured median request-to-serving time of the last ten "
        "burst instances, else 10 minutes.",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """alpha/beta (smoothing per sample) were replaced: name the new fields, not 'unknown field'."""
        if isinstance(data, dict):
            for old, new in (("alpha", "level_half_life"), ("beta", "trend_half_life")):
                if old in data:
                    raise CrossFieldError(
                        old,
                        f"replaced by {new}, a duration such as 1m or 10m (smoothing per sample made "
                        "the forecast depend on the tick interval)",
                    )
        return data

    level_half_life: Duration = Field(
        timedelta(minutes=1),
        description="Holt level smoothing: a sample this old weighs half as much as a fresh one. "
        "Set in time, not per sample, so the forecast is the same at any tick interval.",
    )
    trend_half_life: Duration = Field(
        timedelta(minutes=10),
        description="Holt trend smoothing: the slope is averaged over about this long, so tick-to-tick "
        "noise is not extrapolated over the whole horizon (a burst instance bought on noise costs an hour).",
    )


class ScalingPolicy(Strict):
    target_utilization: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Run replicas at this share of their SLO throughput (the rest is headroom).",
    )
    queue_depth_per_replica: PositiveFloat = Field(
        8, description="Waiting requests per replica above which the fast path adds capacity."
    )
    kv_cache_high: Fraction = Field(0.9, description="KV-cache usage above this counts as saturation.")
    spike_factor: float = Field(
        2.0, gt=1, description="Demand this many times the smoothed value skips stabilization."
    )
    scale_out_stabilization: Duration = Field(timedelta(seconds=30))
    scale_in_stabilization: Duration = Field(
        timedelta(minutes=15),
        description="Scale in to the highest recommendation of this window. Longer than the HPA's 5 min: "
        "an LLM replica takes minutes to load and demand on real traces swings by 40 % within minutes, "
        "so a quick scale-in of local replicas (which cost nothing to keep) is paid for in SLO.",
    )
    scale_out_cooldown: Duration = Field(timedelta(minutes=2))
    scale_in_cooldown: Duration = Field(timedelta(minutes=10))
    forecast: Forecast = Forecast()

    @model_validator(mode="after")
    def _scale_in_slower(self) -> Self:
        if self.scale_in_stabilization <= self.scale_out_stabilization:
            raise CrossFieldError(
                "scale_in_stabilization",
                "must be longer than scale_out_stabilization, or capacity flaps (scale in slower than out)",
            )
        if self.scale_in_cooldown < self.scale_out_cooldown:
            raise CrossFieldError(
                "scale_in_cooldown", "must be at least scale_out_cooldown (scale in slower than out)"
            )
        return self


class BurstInstanceType(Strict):
    """One entry of the burst preference chain, with a dated price."""

    instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", description="e.g. p4d.24xlarge")
    gpu_type: str = Field(min_length=1, description="Matches a serving profile's gpu_type.")
    gpus_per_node: PositiveInt = 8
    nodes_per_replica: PositiveInt = Field(
        1, description="Nodes one serving replica spans (launched all-or-nothing)."
    )
    vcpus: PositiveInt = Field(description="vCPUs per instance; counted against the regional quota.")
    price_usd_per_hour: PositiveFloat = Field(description="On-demand $/hour used for caps and reports.")
    price_as_of: date = Field(
        description="Date the price was read (prices change; research/autoscaling.md §3.1)."
    )


class Subnet(Strict):
    id: str = Field(pattern=r"^subnet-[0-9a-f]{8,17}$")
    availability_zone: str = Field(pattern=r"^[a-z]{2}-[a-z]+-\d[a-z]$")


class LaunchTemplate(Strict):
    name: str | None = None
    id: str | None = Field(None, pattern=r"^lt-[0-9a-f]{8,17}$")
    version: str = "$Latest"

    @model_validator(mode="after")
    def _one_reference(self) -> Self:
        if (self.name is None) == (self.id is None):
            raise CrossFieldError("name", "set exactly one of name or id")
        return self


class BurstTimeouts(Strict):
    """Deadlines of the burst lifecycle: boot deadlines count from the launch request, drain and
    terminate from entering that state (research/autoscaling.md §3.2, §5)."""

    launch: Duration = Field(timedelta(minutes=5), description="Instance running.")
    register_: Duration = Field(
        timedelta(minutes=15), alias="register", description="Node registered and Ready."
    )
    serving: Duration = Field(timedelta(minutes=30), description="Replica serving on it.")
    drain: Duration = Field(
        timedelta(minutes=10),
        description="Serving pods leave a burst node by then (≥ preStop + vLLM --shutdown-timeout).",
    )
    terminate: Duration = Field(
        timedelta(minutes=10),
        description="EC2 reports the instance terminated by then, else it is retried and alerted.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.launch < self.register_ < self.serving:
            raise CrossFieldError("register", "timeouts must increase: launch < register < serving")
        return self


class BurstScaleIn(Strict):
    min_age: Duration = Field(
        timedelta(minutes=10), description="Never release an instance younger than this."
    )
    low_demand_for: Duration = Field(
        timedelta(minutes=5), description="Demand must stay low this long first."
    )


class BurstPolicy(Strict):
    """EC2 capacity when local GPUs run out, inside hard caps."""

    enabled: bool = Field(False, description="Launch burst instances at all.")
    pool: str = Field(pattern=_NAME, description="The kind: burst pool burst nodes join.")
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}-[a-z]+-\d$")
    instance_types: list[BurstInstanceType] = Field(
        min_length=1, description="Preference chain, first preferred."
    )
    subnets: list[Subnet] = Field(min_length=1, description="One per AZ, tried in order.")
    launch_template: LaunchTemplate
    max_instances: NonNegativeInt = Field(4, description="Hard ceiling on live burst instances.")
    max_instance_lifetime: Duration = Field(
        timedelta(hours=24), description="Every instance is terminated by then."
    )
    max_usd_per_hour: PositiveFloat = Field(description="Cap on the burst spend rate.")
    max_usd_per_day: PositiveFloat = Field(description="Cap on burst spend per UTC day.")
    vcpu_quota: PositiveInt | None = Field(
        None, description="Regional P-instance vCPU quota; default: ask AWS."
    )
    timeouts: BurstTimeouts = BurstTimeouts()
    capacity_backoff: Duration = Field(
        timedelta(minutes=3), description="After a capacity error, skip that (type, AZ) this long."
    )
    orphan_grace: Duration = Field(
        timedelta(minutes=10), description="A tagged instance without a live intent is terminated after this."
    )
    quota_backoff: Duration = Field(
        timedelta(minutes=30),
        description="After a vCPU/instance quota error, launch nothing this long (and alert).",
    )
    scale_in: BurstScaleIn = BurstScaleIn()

    @model_validator(mode="after")
    def _caps(self) -> Self:
        if self.max_usd_per_day < self.max_usd_per_hour:
            raise CrossFieldError("max_usd_per_day", "must be at least max_usd_per_hour")
        if self.max_instance_lifetime <= self.timeouts.serving:
            raise CrossFieldError("max_instance_lifetime", "must exceed timeouts.serving")
        types = [t.instance_type for t in self.instance_types]
        for i, name in enumerate(types):
            if name in types[:i]:
                raise CrossFieldError(
                    f"instance_types.{i}.instance_type", f"duplicate instance type {name!r}"
                )
        return self


_METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


def _name(default: str, description: str) -> str:
    """A metric-name field: validated so an override cannot inject PromQL."""
    return Field(default, pattern=_METRIC_NAME, description=description)


class MetricNames(Strict):
    """Metric names read from Prometheus (research/autoscaling.md §2); override when your exporters rename them.

    Names written with a colon (`vllm:...`) are also read with the colon turned into an underscore:
    a current prometheus_client serving OpenMetrics to Prometheus 2.x stores them that way.
    vLLM and SGLang names of the same signal are read together, so a model served by either shows.
    """

    gpu_active: str = _name("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "GPU graphics-engine active ratio (0..1, DCP).")
    gpu_util: str = _name(
        "DCGM_FI_DEV_GPU_UTIL", "GPU utilisation in %; the fallback when gpu_active is absent."
    )
    fb_used: str = _name("DCGM_FI_DEV_FB_USED", "Framebuffer used, MiB.")
    fb_free: str = _name("DCGM_FI_DEV_FB_FREE", "Framebuffer free, MiB.")
    xid: str = _name("DCGM_FI_DEV_XID_ERRORS", "Last Xid per GPU (a gauge: it holds only the last value).")
    row_remap_failure: str = _name("DCGM_FI_DEV_ROW_REMAP_FAILURE", "1 when HBM row remapping failed.")
    temperature: str = _name("DCGM_FI_DEV_GPU_TEMP", "GPU temperature, °C.")
    power: str = _name("DCGM_FI_DEV_POWER_USAGE", "GPU power draw, W.")
    requests_waiting: str = _name("vllm:num_requests_waiting", "vLLM queue depth.")
    requests_running: str = _name("vllm:num_requests_running", "vLLM requests in the running batch.")
    kv_cache_usage: str = _name("vllm:kv_cache_usage_perc", "vLLM KV-cache usage 0..1 (current name).")
    kv_cache_usage_legacy: str = _name(
        "vllm:gpu_cache_usage_perc", "Deprecated vLLM KV-cache name, read when the current one is absent."
    )
    prompt_tokens: str = _name("vllm:prompt_tokens_total", "vLLM prompt tokens counter.")
    generation_tokens: str = _name("vllm:generation_tokens_total", "vLLM generated tokens counter.")
    request_success: str = _name(
        "vllm:request_success_total",
        "vLLM finished requests counter (label finished_reason; abort is a failure).",
    )
    ttft_seconds: str = _name("vllm:time_to_first_token_seconds", "vLLM time-to-first-token histogram.")
    e2e_seconds: str = _name("vllm:e2e_request_latency_seconds", "vLLM end-to-end latency histogram.")
    sglang_requests_waiting: str = _name("sglang:num_queue_reqs", "SGLang queue depth.")
    sglang_requests_running: str = _name("sglang:num_running_reqs", "SGLang running requests.")
    sglang_kv_cache_usage: str = _name("sglang:token_usage", "SGLang KV pool usage 0..1.")
    sglang_prompt_tokens: str = _name("sglang:prompt_tokens_total", "SGLang prompt tokens counter.")
    sglang_generation_tokens: str = _name(
        "sglang:generation_tokens_total", "SGLang generated tokens counter."
    )
    sglang_requests: str = _name("sglang:num_requests_total", "SGLang requests counter.")
    sglang_aborted_requests: str = _name(
        "sglang:num_aborted_requests_total", "SGLang aborted requests counter."
    )
    sglang_ttft_seconds: str = _name(
        "sglang:time_to_first_token_seconds", "SGLang time-to-first-token histogram."
    )
    sglang_e2e_seconds: str = _name(
        "sglang:e2e_request_latency_seconds", "SGLang end-to-end latency histogram."
    )


class MetricsPolicy(Strict):
    """Where and how operatord reads Prometheus; unknown values never count as zero."""

    prometheus_url: str | None = Field(
        None, pattern=r"^https?://", description="Default Prometheus URL; --prometheus-url overrides."
    )
    staleness_limit: Duration = Field(timedelta(minutes=2), description="Older samples count as unknown.")
    query_timeout: Duration = Field(
        timedelta(seconds=10), description="Per PromQL query; a timeout makes the whole snapshot unknown."
    )
    rate_window: Duration = Field(timedelta(minutes=1), description="Window of rate() for counters.")
    node_label: str = Field(
        "Hostname",
        pattern=_LABEL_NAME,
        description="Label naming the node (e.g. one set by relabeling __meta_kubernetes_pod_node_name); "
        "dcgm-exporter's Hostname and hostname are always read as well, in that order after this one.",
    )
    model_label: str = Field("model_name", pattern=_LABEL_NAME, description="Label naming the served model.")
    names: MetricNames = MetricNames()

    @model_validator(mode="after")
    def _windows(self) -> Self:
        if self.rate_window <= timedelta(0):
            raise CrossFieldError("rate_window", "must be positive")
        if self.query_timeout <= timedelta(0):
            raise CrossFieldError("query_timeout", "must be positive")
        return self


class BurstPrice(Strict):
    """One dated price of a burst instance (prices change: research/autoscaling.md §3.1)."""

    instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", description="e.g. p4d.24xlarge")
    kind: Literal["on_demand", "reserved", "savings_plan", "capacity_block", "spot"] = Field(
        description="Purchase option the price is for."
    )
    usd_per_hour: PositiveFloat = Field(description="$ per instance-hour.")
    as_of: date = Field(description="Date the price was read.")
    gpus: PositiveInt = Field(8, description="GPUs per instance.")
    note: str = Field("", description="Where the price comes from.")


class CostPolicy(Strict):
    """Inputs of `operatord cost`: local cost of ownership against burst prices. Every number is yours to set."""

    node_power_kw_full: PositiveFloat = Field(
        2.4, description="Power of one local node at full GPU load, kW."
    )
    node_power_kw_idle: float = Field(0.8, ge=0, description="Power of one local node with idle GPUs, kW.")
    electricity_usd_per_kwh: float = Field(0.12, ge=0, description="Electricity price, $/kWh.")
    pue: float = Field(
        1.4, ge=1, le=3, description="Power usage effectiveness: cooling and facility overhead factor."
    )
    hardware_usd_per_node: float = Field(150_000, ge=0, description="Purchase price of one local node, $.")
    amortisation: Duration = Field(
        timedelta(days=3 * 365), description="Period over which hardware is written off."
    )
    other_usd_per_node_hour: float = Field(
        0, ge=0, description="Everything else per node-hour (rack space, network, support), $."
    )
    target_utilization: Fraction | None = Field(
        None,
        gt=0,
        description="Run replicas at this share of their SLO throughput; default: scaling.target_utilization.",
    )
    prices: list[BurstPrice] = Field(
        default_factory=list, description="Dated burst prices to compare against."
    )

    @model_validator(mode="after")
    def _power(self) -> Self:
        if self.node_power_kw_idle > self.node_power_kw_full:
            raise CrossFieldError("node_power_kw_idle", "must not exceed node_power_kw_full")
        if self.amortisation <= timedelta(0):
            raise CrossFieldError("amortisation", "must be positive")
        return self


StackComponent = Literal[
    "driver", "cuda", "nccl", "kernel", "os_image", "container_runtime", "kubelet", "gpu_product"
]


class FleetPolicy(Strict):
    """Version-skew checks across each pool (driver, CUDA, NCCL, kernel, runtime, GPU model)."""

    pinned: dict[str, dict[StackComponent, list[str]]] = Field(
        default_factory=dict,
        description="Per pool: the accepted versions of a component (e.g. during an upgrade, the target). "
        "Unpinned components are compared with the pool's strict majority.",
    )
    ignore: list[StackComponent] = Field(default_factory=list, description="Components never compared.")
    cordon_outliers: bool = Field(
        False, description="In cordon-only and full modes, cordon nodes whose stack differs from the pool's."
    )

    @field_validator("pinned", mode="before")
    @classmethod
    def _one_version_is_a_list(cls, value: object) -> object:
        """`driver: 550.54.15` means `driver: [550.54.15]` (quote numeric versions: `cuda: "12.10"`)."""
        if not isinstance(value, dict):
            return value
        return {
            pool: (
                {c: v if isinstance(v, list) else [v] for c, v in comps.items()}
                if isinstance(comps, dict)
                else comps
            )
            for pool, comps in value.items()
        }

    @field_validator("pinned", mode="after")
    @classmethod
    def _versions_not_empty(
        cls, value: dict[str, dict[StackComponent, list[str]]]
    ) -> dict[str, dict[StackComponent, list[str]]]:
        for pool, comps in value.items():
            for component, versions in comps.items():
                if not versions or any(not v.strip() for v in versions):
                    raise CrossFieldError(f"{pool}.{component}", "list at least one non-empty version")
        return value


class Policy(Strict):
    """The root of an operatord policy file."""

    api_version: Literal["operatord.io/v1"] = Field("operatord.io/v1", alias="apiVersion")
    kind: Literal["Policy"]
    mode: Mode = Field(
        Mode.OBSERVE, description="observe | cordon-only | full; a ceiling `run --mode` may lower."
    )
    cluster: str = Field(
        pattern=_NAME, description="Cluster name; tags burst instances (operatord.io/cluster)."
    )
    pools: list[Pool] = Field(min_length=1)
    serving: Serving
    remediation: RemediationPolicy = RemediationPolicy()
    faults: FaultsPolicy = FaultsPolicy()
    scaling: ScalingPolicy = ScalingPolicy()
    burst: BurstPolicy | None = None
    metrics: MetricsPolicy = MetricsPolicy()
    cost: CostPolicy = CostPolicy()
    fleet: FleetPolicy = FleetPolicy()

    @model_validator(mode="after")
    def _references(self) -> Self:
        names = [p.name for p in self.pools]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise CrossFieldError(f"pools.{i}.name", f"duplicate pool {name!r}")
        for pool_name in self.fleet.pinned:
            if pool_name not in names:
                raise CrossFieldError(
                    f"fleet.pinned.{pool_name}", f"no pool named {pool_name!r} (pools: {', '.join(names)})"
                )
        if self.burst is not None:
            pool = next((p for p in self.pools if p.name == self.burst.pool), None)
            if pool is None:
                raise CrossFieldError(
                    "burst.pool", f"no pool named {self.burst.pool!r} (pools: {', '.join(names)})"
                )
            if pool.kind != "burst":
                raise CrossFieldError("burst.pool", f"pool {pool.name!r} is kind {pool.kind}, not burst")
            for i, itype in enumerate(self.burst.instance_types):
                for model in self.serving.models:
                    profile = model.profile_for(itype.gpu_type)
                    if profile is None:
                        raise CrossFieldError(
                            f"burst.instance_types.{i}.gpu_type",
                            f"model {model.name!r} has no serving profile for GPU type {itype.gpu_type!r}",
                        )
                    if itype.gpus_per_node * itype.nodes_per_replica < profile.gpus_per_replica:
                        raise CrossFieldError(
                            f"burst.instance_types.{i}.nodes_per_replica",
                            f"{itype.nodes_per_replica} × {itype.gpus_per_node} GPUs cannot hold a replica of "
                            f"{model.name!r} ({profile.gpus_per_replica} GPUs)",
                        )
        for i, pool in enumerate(self.pools):
            for model in self.serving.models:
                if pool.kind == "local" and model.profile_for(pool.gpu_type) is None:
                    raise CrossFieldError(
                        f"pools.{i}.gpu_type",
                        f"model {model.name!r} has no serving profile for GPU type {pool.gpu_type!r}",
                    )
        return self

    def pool(self, name: str) -> Pool | None:
        return next((p for p in self.pools if p.name == name), None)
