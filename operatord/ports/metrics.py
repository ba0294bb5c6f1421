"""Port: the metrics operatord reads (GPU health per node, LLM load per model, load history).

Properties every implementation (PromMetrics over Prometheus, FakeMetrics in memory) must have:

* **Unknown is never zero.** A missing, empty, NaN or stale series is an `Unknown` reading with
  a reason; a value of 0 means the source said 0.
* **Outages are values.** When the source cannot be reached or times out, `snapshot` returns a
  snapshot whose `outage` says so (every model unknown); it never raises for that. `history`
  likewise returns a history with `outage` set.
* **Cost is constant in the fleet.** One `snapshot` issues the same number of queries whatever
  the number of nodes and models (aggregation happens at the source); `queries` reports it.
* **Time is given.** `now` is the caller's clock; staleness is judged against it, so the same
  source data and `now` give the same snapshot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from operatord.core.cost import LoadHistory
from operatord.core.metrics import MetricsSnapshot, Unknown


class MetricsSource(Protocol):
    def snapshot(self, now: datetime) -> MetricsSnapshot:
        """Everything known right now, per node and per model; never raises for an outage."""
        ...

    def history(self, start: datetime, end: datetime, step: timedelta) -> LoadHistory:
        """Fleet load between `start` and `end` at `step` resolution (for capacity and cost reports)."""
        ...

    def driver_versions(self, now: datetime) -> dict[str, str] | Unknown:
        """Node → NVIDIA driver version as dcgm-exporter labels its series (one query), for the
        fleet skew check; an Unknown when the source cannot be reached."""
        ...
