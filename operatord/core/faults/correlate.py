"""Pure. Correlation of folded findings across time and nodes (research/faults.md §4–5).

Four questions, each a total function of the findings and the policy:

* Xid 154 on R565+ drivers states the recovery action for the Xid just before it on the same
  GPU; that statement is authoritative (`apply_recovery_actions`).
* The same Xid on the same GPU again within `repeat_window` escalates: an app Xid (13, 31, …)
  that keeps coming back to one GPU points at the GPU, so it becomes a node fault asking for a
  cordon (NVSentinel ADR-014); a repeating node fault is reported for RMA (`escalations`).
* The same class on `fleet_event_nodes` or more nodes within `fleet_event_window` is one fleet
  event (a job crash, a fabric fault, a driver rollout), not many bad nodes: member findings
  stop counting as node faults and the event is reported instead (`fleet_events`). Xid 45 on 77
  healthy nodes (NVSentinel#1710) is the case this prevents.
* NCCL network errors blame no node by themselves (this node is usually the victim). With link
  evidence on the same machine (an `ib_link_down` finding within `fleet_event_window`) they
  become that node's fault (`blame_with_link_evidence`); a peer that several nodes name is
  reported as a suspect for a person or for link evidence to confirm (`suspect_peers`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from operatord.core.findings import Finding
from operatord.policies.model import FaultsPolicy
from operatord.vocab import FaultAction, FaultClass, Severity

FleetKind = Literal["job", "fabric", "fleet"]

_JOB_CLASSES = frozenset(
    {
        FaultClass.GPU_XID_APP,
        FaultClass.NCCL_TIMEOUT,
        FaultClass.NCCL_CUDA_ERROR,
        FaultClass.NCCL_INTERNAL_OR_USAGE,
        FaultClass.CUDA_ILLEGAL_MEMORY_ACCESS,
        FaultClass.CUDA_DEVICE_ASSERT,
        FaultClass.CUDA_OOM,
    }
)
_FABRIC_CLASSES = frozenset(
    {
        FaultClass.NCCL_NETWORK_ERROR,
        FaultClass.IB_LINK_DOWN,
        FaultClass.FABRIC_MANAGER_ERROR,
        FaultClass.GPU_NVLINK_ERROR,
    }
)
RECOVERY_XID = 154
APP_REPEAT_THRESHOLD = 2  # NVSentinel ADR-014: Xid 13/31 twice on the same GPU in 24 h → diagnose the GPU
NODE_REPEAT_THRESHOLD = 2  # a node fault that returns after a repair is an RMA conversation


@dataclass(frozen=True, slots=True)
class FleetEvent:
    class_: FaultClass
    kind: FleetKind
    nodes: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    findings: int

    def to_json(self) -> dict[str, object]:
        return {
            "reason": "fleet_event",
            "class": self.class_.value,
            "kind": self.kind,
            "nodes": list(self.nodes),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "findings": self.findings,
        }


@dataclass(frozen=True, slots=True)
class Escalation:
    node: str
    gpu: str
    xid: int
    class_: FaultClass
    occurrences: int
    first_seen: datetime
    last_seen: datetime
    verdict: Literal["suspect_gpu", "rma_candidate"]

    def to_json(self) -> dict[str, object]:
        return {
            "node": self.node,
            "gpu": self.gpu,
            "xid": self.xid,
            "class": self.class_.value,
            "occurrences": self.occurrences,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class SuspectPeer:
    peer: str
    reported_by: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"peer": self.peer, "reported_by": list(self.reported_by)}


@dataclass(frozen=True, slots=True)
class Correlated:
    findings: tuple[Finding, ...]
    fleet_events: tuple[FleetEvent, ...]
    escalations: tuple[Escalation, ...]
    suspect_peers: tuple[SuspectPeer, ...]

    @property
    def node_faults(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.node_fault)


def identity(f: Finding) -> str:
    """Which machine a finding is about: its node, else the file or stream it came from."""
    return f.node if f.node is not None else f.source


def correlate(findings: Sequence[Finding], policy: FaultsPolicy) -> Correlated:
    """All four correlations, in a fixed order; output findings keep the input order."""
    out = apply_recovery_actions(findings, policy.burst_silence)
    out = blame_with_link_evidence(out, policy.fleet_event_window)
    out, escalations = escalate_repeats(out, policy.repeat_window)
    out, events = fleet_events(out, policy.fleet_event_nodes, policy.fleet_event_window)
    return Correlated(tuple(out), tuple(events), tuple(escalations), tuple(suspect_peers(out)))


def apply_recovery_actions(findings: Sequence[Finding], within: timedelta) -> list[Finding]:
    """Give the Xid just before each Xid 154 (same machine and GPU) the verdict 154 states."""
    out = list(findings)
    last_xid: dict[tuple[str, str | None], int] = {}
    for i in sorted(range(len(out)), key=lambda k: _when_key(out[k])):
        f = out[i]
        if f.xid is None:
            continue
        key = (identity(f), f.gpu)
        if f.xid != RECOVERY_XID:
            last_xid[key] = i
            continue
        j = last_xid.get(key)
        if j is None:
            continue
        before = out[j]
        gap = _gap(before, f)
        if gap is not None and gap > within:
            continue
        out[j] = replace(before, node_fault=f.node_fault, severity=f.severity, action=f.action)
    return out


def blame_with_link_evidence(findings: Sequence[Finding], window: timedelta) -> list[Finding]:
    """NCCL network errors on a machine whose own IB link failed within `window` are that node's fault."""
    links: dict[str, list[datetime]] = defaultdict(list)
    for f in findings:
        if f.class_ is FaultClass.IB_LINK_DOWN and f.node_fault and f.first_seen is not None:
            links[identity(f)].append(f.first_seen)
    out = list(findings)
    for i, f in enumerate(out):
        if f.class_ is not FaultClass.NCCL_NETWORK_ERROR or f.node_fault or f.first_seen is None:
            continue
        start, end = _first(f), _last(f)
        if any(start - window <= t <= end + window for t in links.get(identity(f), ())):
            out[i] = replace(f, node_fault=True, severity=Severity.DEGRADED, action=FaultAction.CORDON)
    return out


def escalate_repeats(
    findings: Sequence[Finding], window: timedelta
) -> tuple[list[Finding], list[Escalation]]:
    """Same Xid on the same GPU of one machine in ≥2 bursts within `window` escalates."""
    out = list(findings)
    groups: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for i, f in enumerate(out):
        if f.xid is not None and f.gpu is not None and f.first_seen is not None and f.xid != RECOVERY_XID:
            groups[(identity(f), f.gpu, f.xid)].append(i)
    escalations: list[Escalation] = []
    for (who, gpu, xid), idx in sorted(groups.items()):
        idx.sort(key=lambda k: _when_key(out[k]))
        start = 0
        best: tuple[int, int] | None = None  # (start, end) of the densest window
        for end in range(len(idx)):
            while _first(out[idx[end]]) - _first(out[idx[start]]) > window:
                start += 1
            if best is None or end - start > best[1] - best[0]:
                best = (start, end)
            if end - start + 1 >= APP_REPEAT_THRESHOLD:
                f = out[idx[end]]
                if not f.node_fault:
                    out[idx[end]] = replace(
                        f, node_fault=True, severity=Severity.DEGRADED, action=FaultAction.CORDON
                    )
        assert best is not None
        n = best[1] - best[0] + 1
        sample = out[idx[best[1]]]
        threshold = NODE_REPEAT_THRESHOLD if findings[idx[best[1]]].node_fault else APP_REPEAT_THRESHOLD
        if n >= threshold:
            escalations.append(
                Escalation(
                    node=who,
                    gpu=gpu,
                    xid=xid,
                    class_=sample.class_,
                    occurrences=n,
                    first_seen=_first(out[idx[best[0]]]),
                    last_seen=_last(sample),
                    verdict="rma_candidate" if findings[idx[best[1]]].node_fault else "suspect_gpu",
                )
            )
    return out, escalations


def fleet_events(
    findings: Sequence[Finding], min_nodes: int, window: timedelta
) -> tuple[list[Finding], list[FleetEvent]]:
    """Group same-class findings of ≥ `min_nodes` machines whose first sightings fall in one window."""
    out = list(findings)
    by_class: dict[FaultClass, list[int]] = defaultdict(list)
    for i, f in enumerate(out):
        if f.first_seen is not None and f.class_ is not FaultClass.NONE:
            by_class[f.class_].append(i)
    events: list[FleetEvent] = []
    for cls in sorted(by_class):
        idx = sorted(by_class[cls], key=lambda k: _when_key(out[k]))
        start = 0
        while start < len(idx):
            end = start
            while end + 1 < len(idx) and _first(out[idx[end + 1]]) - _first(out[idx[start]]) <= window:
                end += 1
            members = idx[start : end + 1]
            nodes = sorted({identity(out[k]) for k in members})
            if len(nodes) >= min_nodes:
                events.append(
                    FleetEvent(
                        class_=cls,
                        kind=_kind(cls),
                        nodes=tuple(nodes),
                        first_seen=min(_first(out[k]) for k in members),
                        last_seen=max(_last(out[k]) for k in members),
                        findings=len(members),
                    )
                )
                for k in members:
                    if out[k].node_fault:
                        out[k] = replace(out[k], node_fault=False)
                start = end + 1
            else:
                start += 1
    return out, events


def suspect_peers(findings: Sequence[Finding], min_reporters: int = 2) -> list[SuspectPeer]:
    """Peers named in NCCL network errors by at least `min_reporters` different machines."""
    reporters: dict[str, set[str]] = defaultdict(set)
    for f in findings:
        if f.class_ is FaultClass.NCCL_NETWORK_ERROR and f.peer:
            reporters[f.peer].add(identity(f))
    return [SuspectPeer(p, tuple(sorted(r))) for p, r in sorted(reporters.items()) if len(r) >= min_reporters]


def _kind(cls: FaultClass) -> FleetKind:
    if cls in _JOB_CLASSES:
        return "job"
    if cls in _FABRIC_CLASSES:
        return "fabric"
    return "fleet"


def _first(f: Finding) -> datetime:
    value = f.first_seen or f.time or f.last_seen
    assert value is not None
    return value


def _last(f: Finding) -> datetime:
    value = f.last_seen or f.first_seen or f.time
    assert value is not None
    return value


def _when_key(f: Finding) -> tuple[str, int, str, int]:
    stamp = f.first_seen or f.time
    return (stamp.isoformat() if stamp else "", 0, f.source, f.line)


def _gap(a: Finding, b: Finding) -> timedelta | None:
    end, start = a.last_seen or a.first_seen, b.first_seen or b.last_seen
    if end is None or start is None:
        return None
    return start - end
