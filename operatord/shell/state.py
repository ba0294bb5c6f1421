"""Shell. Reads and writes the state of design §1.5 through the cluster port, always by compare-and-set.

`StateStore` owns the `operatord-state` ConfigMap (pause, breaker, capacity requests; codecs in
operatord.core.state); `append_history` appends to a node's `operatord.io/history` annotation
(codec in operatord.core.history). Both re-read and retry on Conflict, so concurrent writers
(the daemon, an on-call's `operatord pause`) never lose each other's change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from operatord.core.history import HistoryEntry, decode_history, encode_history
from operatord.core.model import ConfigMap, Node
from operatord.core.state import Breaker, OperatordState, Pause, decode_state, encode_state
from operatord.ports.cluster import ClusterApi, Conflict, NotFound
from operatord.vocab import ANNOTATION_HISTORY, STATE_CONFIGMAP

CAS_ATTEMPTS = 8


class StateStore:
    def __init__(self, cluster: ClusterApi, namespace: str, name: str = STATE_CONFIGMAP) -> None:
        self._cluster = cluster
        self.namespace = namespace
        self.name = name

    def load(self) -> OperatordState:
        """The current state; the defaults (not paused, breaker closed) when the ConfigMap does not exist.
        Raises core.state.StateCorrupt when a key cannot be read."""
        try:
            cm = self._cluster.get_configmap(self.namespace, self.name)
        except NotFound:
            return OperatordState()
        return decode_state(cm.data, cm.resource_version)

    def update(self, change: Callable[[OperatordState], OperatordState]) -> OperatordState:
        """Apply `change` to the current state and write it by compare-and-set, re-reading on Conflict."""
        for _ in range(CAS_ATTEMPTS):
            current = self.load()
            new = change(current)
            data = encode_state(new)
            try:
                if not current.resource_version:
                    cm = self._cluster.create_configmap(
                        ConfigMap(
                            self.namespace, self.name, data, {"app.kubernetes.io/managed-by": "operatord"}
                        )
                    )
                else:
                    cm = self._cluster.replace_configmap(
                        ConfigMap(
                            self.namespace,
                            self.name,
                            data,
                            {"app.kubernetes.io/managed-by": "operatord"},
                            current.resource_version,
                        )
                    )
            except Conflict:
                continue
            return replace(new, resource_version=cm.resource_version)
        raise Conflict(
            f"{self.namespace}/{self.name} kept changing; gave up after {CAS_ATTEMPTS} attempts", 409
        )

    # ---- the on-call operations
    def pause(self, reason: str, by: str, now: datetime) -> OperatordState:
        return self.update(lambda s: replace(s, pause=Pause(reason, by, now)))

    def resume(self) -> OperatordState:
        return self.update(lambda s: replace(s, pause=None))

    def trip_breaker(self, now: datetime, reason: str, detail: str) -> OperatordState:
        def change(s: OperatordState) -> OperatordState:
            if s.breaker.open:
                return s
            return replace(s, breaker=replace(s.breaker, open=True, since=now, reason=reason, detail=detail))

        return self.update(change)

    def reset_breaker(self, by: str, reason: str, now: datetime, *, skip_backlog: bool) -> OperatordState:
        """Close the breaker. Cordons before now stop counting; with skip_backlog, findings first seen
        before now are ignored too (the backlog that piled up while it was open)."""

        def change(s: OperatordState) -> OperatordState:
            return replace(
                s,
                breaker=Breaker(
                    open=False,
                    since=None,
                    reason=reason,
                    counts_from=now,
                    ignore_before=now if skip_backlog else s.breaker.ignore_before,
                    reset_by=by,
                ),
            )

        return self.update(change)


def append_history(cluster: ClusterApi, node: str, entries: Sequence[HistoryEntry], now: datetime) -> Node:
    """Append entries to the node's history annotation (bounded), by compare-and-set on the node."""
    for _ in range(CAS_ATTEMPTS):
        current = cluster.get_node(node)
        history = decode_history(current.annotations.get(ANNOTATION_HISTORY))
        text = encode_history([*history.entries, *entries], now)
        try:
            return cluster.patch_node_annotations(
                node, {ANNOTATION_HISTORY: text}, resource_version=current.resource_version
            )
        except Conflict:
            continue
    raise Conflict(f"node {node} kept changing; history not written after {CAS_ATTEMPTS} attempts", 409)
