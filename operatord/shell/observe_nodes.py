"""Shell. Observe what remediation needs: nodes and the operatord-state ConfigMap, as a Snapshot.

Demand (GPUs the serving load needs) comes from the metrics side; callers that have it pass
it in, otherwise it is unknown and remediation's capacity check steps aside (the guards stay).
"""

from __future__ import annotations

from datetime import datetime

from operatord.core.snapshot import Snapshot
from operatord.ports.cluster import ClusterApi
from operatord.shell.state import StateStore


def observe_nodes(
    cluster: ClusterApi, namespace: str, now: datetime, *, demand_gpus: float | None = None
) -> Snapshot:
    """Read nodes and state (two API calls). Cluster errors propagate to the caller."""
    nodes = cluster.list_nodes().items
    state = StateStore(cluster, namespace).load()
    return Snapshot(observed_at=now, nodes=nodes, state=state, demand_gpus=demand_gpus)
