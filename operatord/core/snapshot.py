"""Pure. The Snapshot: what one tick observed, as plain values (design §3.1).

The shell builds it (operatord.shell.observe for the daemon, operatord.shell.observe_nodes for
remediation alone); the decision functions read it; the simulator builds it from its in-memory
world. Every source beyond nodes and state is optional, and "not observed" is `None`, never an
empty value: no pods listed is not "no pods", no cloud listing is not "no instances", no metrics
is not "zero demand". decide() holds whatever rests on a missing source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

from operatord.core.burst.intent import Intent
from operatord.core.burst.observed import CloudInstance
from operatord.core.metrics import MetricsSnapshot
from operatord.core.model import Node, Pod
from operatord.core.scaling import DemandSample
from operatord.core.state import OperatordState

_NO_REPLICAS: Mapping[str, int] = MappingProxyType({})
_NO_HISTORY: Mapping[str, tuple[DemandSample, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CloudView:
    """Burst capacity as observed: intent records (ConfigMaps) and the provider's tagged instances.

    `instances` is None when the provider could not be read this tick (then nothing that rests on
    it — reconcile, orphan collection — is decided). `unreadable` names intent ConfigMaps that did
    not parse (reconcile still runs; those are reported, never guessed at)."""

    intents: tuple[Intent, ...] = ()
    instances: tuple[CloudInstance, ...] | None = None
    vcpu_quota: int | None = None
    unreadable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    observed_at: datetime
    nodes: tuple[Node, ...] = ()
    state: OperatordState = field(default_factory=OperatordState)
    # GPUs the current serving demand needs. None: decide() derives it from the metrics (still None
    # when they are unknown, in which case remediation's capacity check is skipped and only the
    # guards protect capacity). A value given here wins (tests, `remediation_tick`).
    demand_gpus: float | None = None
    # Every pod (for serving pods per burst node and pending replicas); None: not listed this tick.
    pods: tuple[Pod, ...] | None = None
    # Metrics of this tick; None: not read (every model's load is unknown).
    metrics: MetricsSnapshot | None = None
    # Desired replicas (scale subresource spec) per served model; a model missing here is unknown.
    replicas: Mapping[str, int] = field(default_factory=lambda: _NO_REPLICAS)
    # Weighted demand per model over the recent window, oldest first (the shell keeps it between ticks).
    demand_history: Mapping[str, tuple[DemandSample, ...]] = field(default_factory=lambda: _NO_HISTORY)
    # Burst intents and cloud instances; None: burst capacity was not observed.
    cloud: CloudView | None = None
    # When serving replicas last went up / down (the shell remembers its own changes; burst launches
    # and releases come from the intent records, so cooldowns survive a restart for those).
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    tick: timedelta = timedelta(seconds=30)
