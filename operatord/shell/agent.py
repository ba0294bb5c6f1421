"""Shell. The node agent loop: read the node's logs, classify, fold, publish on the Node object.

Each tick: poll every log source (whole lines, per stream), feed them to a per-stream
incremental scanner (operatord/shell/scan.py), decide any multi-line block left open by an
idle stream, stamp lines without a time with the time they were read, drop sightings older
than the look-back, optionally judge an NVML probe, then let the pure `publication` say what
the node should show and write only what changed: annotations (`operatord.io/findings`,
`operatord.io/stack`), NodeConditions, one Event per new burst.

State lives on the Node (the findings annotation is read back at start) and in the cursor
store (stream positions). Positions are saved only *after* the Node was updated, so a crash
re-reads at most what was not yet published (and re-read lines fold into the same findings);
a clean stop saves everything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from operatord.core.faults.probe import ProbeVerdict
from operatord.core.faults.publish import AgentState, Publication, parse_findings_annotation, publication
from operatord.core.findings import Finding
from operatord.core.model import Node, NodeCondition
from operatord.policies.model import FaultsPolicy
from operatord.ports.cluster import ClusterApi, ClusterError
from operatord.ports.logs import CursorStore, LogSource, LogSourceError, Position
from operatord.shell.scan import Scanner, StreamScan
from operatord.vocab import ANNOTATION_FINDINGS, ANNOTATION_STACK

log = structlog.get_logger("operatord.agent")

RESYNC_EVERY = timedelta(minutes=5)  # re-read the Node even when nothing changed (a human may have edited it)
Clock = Callable[[], datetime]
Probe = Callable[[datetime], ProbeVerdict]


@dataclass
class TickResult:
    lines: int = 0
    new_findings: int = 0
    published: bool = False
    wrote: list[str] = field(
        default_factory=list
    )  # what changed on the Node: annotations, conditions, events


class Agent:
    """One node's agent. `start()` once, then `tick()` repeatedly (or `run()` until stopped)."""

    def __init__(
        self,
        *,
        node: str,
        cluster: ClusterApi,
        sources: Sequence[LogSource],
        cursors: CursorStore,
        scanner: Scanner,
        policy: FaultsPolicy,
        clock: Clock,
        probe: Probe | None = None,
        probe_every: timedelta = timedelta(seconds=60),
    ) -> None:
        self.node = node
        self._cluster = cluster
        self._sources = list(sources)
        self._cursors = cursors
        self._scanner = scanner
        self._policy = policy
        self._clock = clock
        self._probe = probe
        self._probe_every = probe_every
        self._last_probe: datetime | None = None
        self._healthy_probe_at: datetime | None = None
        self._streams: dict[str, StreamScan] = {}
        self._saved: dict[str, Position] = {}
        self._unsaved: dict[str, Position] = {}
        self._pending: list[Finding] = []
        self._versions: dict[str, str] = {}
        self._state = AgentState()
        self._conditions: tuple[NodeCondition, ...] = ()
        self._last_pub: tuple[str, str | None, tuple[NodeCondition, ...]] | None = None
        self._last_sync: datetime | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Read back what the node already shows, then open every source at its saved position.

        Raises ClusterError when the API cannot be reached and LogSourceError for a broken source.
        """
        node = self._cluster.get_node(self.node)
        self._adopt(node)
        self._saved = self._cursors.load()
        now = self._clock()
        for src in self._sources:
            src.start(self._saved, now, self._policy.lookback)
        log.info(
            "agent.started",
            node=self.node,
            sources=[s.name for s in self._sources],
            resumed=sorted(self._saved),
            findings=len(self._state.findings),
        )

    def _adopt(self, node: Node) -> None:
        findings = parse_findings_annotation(node.annotations.get(ANNOTATION_FINDINGS))
        self._state = AgentState(findings=findings, versions=self._state.versions)
        self._conditions = node.conditions

    def close(self) -> None:
        for src in self._sources:
            try:
                src.close()
            except OSError as err:  # closing is best effort
                log.warning("agent.source_close_failed", source=src.name, error=str(err))

    def run(self, stop: threading.Event, interval: timedelta) -> None:
        """Tick every `interval` until `stop` is set; a last tick publishes what was read."""
        try:
            while not stop.is_set():
                busy = self.tick().lines > 0
                if not busy:
                    stop.wait(interval.total_seconds())
            self.tick()
        finally:
            self.close()

    # ------------------------------------------------------------------ one step

    def tick(self) -> TickResult:
        result = TickResult()
        now = self._clock()
        for src in self._sources:
            try:
                chunks = src.poll()
            except LogSourceError as err:
                log.warning("agent.source_failed", source=src.name, error=str(err))
                continue
            for chunk in chunks:
                scan = self._stream(chunk.stream, chunk.first_line)
                self._pending.extend(scan.feed(chunk.data))
                self._versions.update(scan.versions)
                self._unsaved[chunk.stream] = dict(chunk.position)
                result.lines += chunk.data.count(b"\n")
            for stream in src.idle_streams():
                if stream in self._streams:
                    self._pending.extend(self._streams[stream].flush())
        if self._probe is not None and (
            self._last_probe is None or now - self._last_probe >= self._probe_every
        ):
            self._last_probe = now
            verdict = self._probe(now)
            self._pending.extend(verdict.findings)
            self._versions.update(verdict.versions)
            if verdict.healthy:
                self._healthy_probe_at = now
        new = self._fresh(self._pending, now)
        result.new_findings = len(new)
        state, pub = publication(
            self.node,
            self._state,
            new,
            self._versions,
            self._policy,
            now,
            previous=self._conditions,
            healthy_probe_at=self._healthy_probe_at,
        )
        unchanged = (
            not pub.events
            and self._last_pub is not None
            and (pub.findings, pub.stack, pub.conditions) == self._last_pub
            and self._last_sync is not None
            and now - self._last_sync < RESYNC_EVERY
        )
        try:
            if not unchanged:
                result.wrote = self._apply(pub)
                self._last_pub = (pub.findings, pub.stack, pub.conditions)
                self._last_sync = now
        except ClusterError as err:
            log.warning("agent.publish_failed", node=self.node, error=str(err), pending=len(self._pending))
            return result
        self._state = state
        self._pending = []
        if self._unsaved:
            self._saved.update(self._unsaved)
            self._unsaved = {}
            self._cursors.save(self._saved)
        result.published = True
        return result

    def _stream(self, name: str, first_line: int) -> StreamScan:
        scan = self._streams.get(name)
        if scan is None:
            scan = self._scanner.stream(
                source=name, node=self.node, node_from_host=False, first_line=first_line
            )
            self._streams[name] = scan
        return scan

    def _fresh(self, findings: Sequence[Finding], now: datetime) -> list[Finding]:
        """Stamp untimed findings with `now`; drop sightings older than the look-back (stale logs)."""
        out = []
        horizon = now - self._policy.lookback
        for found in findings:
            f = found if found.time is not None else replace(found, time=now, first_seen=now, last_seen=now)
            if (f.last_seen or f.time or now) < horizon:
                continue
            out.append(f)
        return out

    def _apply(self, pub: Publication) -> list[str]:
        """Write what differs from what the node shows; Events last and best effort."""
        wrote: list[str] = []
        node = self._cluster.get_node(self.node)
        annotations: dict[str, str | None] = {}
        if node.annotations.get(ANNOTATION_FINDINGS) != pub.findings:
            annotations[ANNOTATION_FINDINGS] = pub.findings
        if pub.stack is not None and node.annotations.get(ANNOTATION_STACK) != pub.stack:
            annotations[ANNOTATION_STACK] = pub.stack
        if annotations:
            node = self._cluster.patch_node_annotations(self.node, annotations)
            wrote.append("annotations")
        for cond in pub.conditions:
            current = node.condition(cond.type)
            if current is None or (current.status, current.reason, current.message) != (
                cond.status,
                cond.reason,
                cond.message,
            ):
                node = self._cluster.set_node_condition(self.node, cond)
                wrote.append(f"condition:{cond.type}={cond.status}")
                log.info(
                    "agent.condition_set",
                    node=self.node,
                    type=cond.type,
                    status=cond.status,
                    reason=cond.reason,
                )
        self._conditions = node.conditions
        for event in pub.events:
            try:
                self._cluster.create_event(event)
                wrote.append(f"event:{event.reason}")
            except ClusterError as err:
                log.warning("agent.event_failed", node=self.node, reason=event.reason, error=str(err))
            log.info(
                "agent.finding_recorded", node=self.node, reason=event.reason, message=event.message[:200]
            )
        return wrote
