"""Test helper: FakeMetrics, an in-memory MetricsSource with the adapter's semantics.

Values are set per node and per model as the adapter's rows would carry them (NaN, a sample
time, or absent), and `snapshot` runs them through the same pure `assemble`, so staleness,
NaN, fallbacks (gpu_util for gpu_active, legacy KV-cache name) and outages behave exactly as
with PromMetrics. `fail()` turns the source into an outage until `recover()`. A call log
(`calls`) lets tests see what the shell asked for; `queries` is constant, like the adapter's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from operatord.core.cost import LoadHistory
from operatord.core.metrics import (
    MetricsSnapshot,
    ModelSignal,
    NodeSignal,
    Row,
    SignalResult,
    Unknown,
    UnknownReason,
    assemble,
)
from operatord.policies.model import MetricsPolicy

_SIGNALS: tuple[NodeSignal | ModelSignal, ...] = (*NodeSignal, *ModelSignal)
QUERIES = len(_SIGNALS)  # one per signal, as PromMetrics issues


@dataclass
class FakeMetrics:
    """MetricsSource in memory (see module docstring)."""

    policy: MetricsPolicy = field(default_factory=MetricsPolicy)
    models: Sequence[str] = ()
    history_result: LoadHistory | None = None
    calls: list[tuple[str, datetime]] = field(default_factory=list)
    drivers: dict[str, str] = field(default_factory=dict)  # node → driver version (dcgm label)
    _outage: Unknown | None = None
    _rows: dict[NodeSignal | ModelSignal, dict[str, Row]] = field(default_factory=dict)
    # The query result of each signal as of its last change (the simulator sets the model's
    # signals every tick and the nodes' never, and snapshots every tick).
    _results: dict[NodeSignal | ModelSignal, SignalResult] = field(default_factory=dict)

    def set_node(self, node: str, *, at: datetime | None = None, **values: float | None) -> None:
        """Set node signals by name (gpu_active, gpu_util, vram_used_fraction, xid_last, ...).

        A value of None means "series present, no value" (empty); leave a signal out for "missing".
        """
        for name, value in values.items():
            signal = NodeSignal(name)
            self._rows.setdefault(signal, {})[node] = Row({self.policy.node_label: node}, value, at)
            self._results.pop(signal, None)

    def set_model(self, model: str, *, at: datetime | None = None, **values: float | None) -> None:
        """Set model signals by name (requests_waiting, generation_tokens_per_s, kv_cache_usage, ...)."""
        for name, value in values.items():
            signal = ModelSignal(name)
            self._rows.setdefault(signal, {})[model] = Row({self.policy.model_label: model}, value, at)
            self._results.pop(signal, None)

    def remove(self, key: str) -> None:
        """Drop every series of a node or model (its exporter went away)."""
        self._results.clear()
        for rows in self._rows.values():
            rows.pop(key, None)

    def fail(
        self, reason: UnknownReason = UnknownReason.UNREACHABLE, detail: str = "injected outage"
    ) -> None:
        self._outage = Unknown(reason, detail)

    def recover(self) -> None:
        self._outage = None

    def snapshot(self, now: datetime) -> MetricsSnapshot:
        self.calls.append(("snapshot", now))
        if self._outage is not None:
            results = [SignalResult(NodeSignal.GPU_ACTIVE, error=self._outage)]
            queries = 1  # the adapter stops at the first failure
        else:
            results = [self._result(s) for s in _SIGNALS]
            queries = QUERIES
        return assemble(
            results,
            now=now,
            staleness_limit=self.policy.staleness_limit,
            node_label=self.policy.node_label,
            model_label=self.policy.model_label,
            models=self.models,
            queries=queries,
        )

    def _result(self, signal: NodeSignal | ModelSignal) -> SignalResult:
        found = self._results.get(signal)
        if found is None:
            found = self._results[signal] = SignalResult(
                signal, rows=tuple(self._rows.get(signal, {}).values())
            )
        return found

    def driver_versions(self, now: datetime) -> dict[str, str] | Unknown:
        self.calls.append(("driver_versions", now))
        if self._outage is not None:
            return self._outage
        return dict(sorted(self.drivers.items()))

    def history(self, start: datetime, end: datetime, step: timedelta) -> LoadHistory:
        self.calls.append(("history", start))
        if self._outage is not None:
            return LoadHistory(start=start, end=end, step=step, outage=self._outage, queries=1)
        if self.history_result is not None:
            return self.history_result
        return LoadHistory(start=start, end=end, step=step)
