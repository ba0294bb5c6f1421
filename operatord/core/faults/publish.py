"""Pure. What the node agent publishes about its node (design §1.5), as a function of what it saw.

The agent's memory *is* what it publishes: the `operatord.io/findings` annotation (latest 50
folded bursts, at most 32 KiB) is read back on restart, so repeats keep folding into the same
finding and nothing depends on process memory. From those findings and `now`:

* NodeConditions `GPUHealthy` / `NCCLHealthy`: False while a node-fault finding of that
  condition was seen within `recovery_quiet_period` (reason: the class in CamelCase, message:
  rule id and line); True otherwise. A healthy NVML probe after the last sighting clears
  `GPUHealthy` early (the GPU was reset or the node rebooted).
* One Kubernetes Event per new burst (not per repeat: an 800K-line flood is one Event), and
  one when a condition recovers.
* `operatord.io/stack`: driver, CUDA and NCCL versions seen in the logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from operatord.core.findings import Finding
from operatord.core.model import Event, NodeCondition
from operatord.policies.model import FaultsPolicy
from operatord.vocab import CONDITION_GPU_HEALTHY, CONDITION_NCCL_HEALTHY, FaultClass, Reason, Severity

MAX_FINDINGS = 50
MAX_ANNOTATION_BYTES = 32 * 1024
MAX_CONDITION_MESSAGE = 512
HEALTHY_REASON = "NoNodeFault"
_NCCL_CLASSES = frozenset(
    {
        FaultClass.NCCL_TIMEOUT,
        FaultClass.NCCL_NETWORK_ERROR,
        FaultClass.NCCL_CUDA_ERROR,
        FaultClass.NCCL_INTERNAL_OR_USAGE,
        FaultClass.IB_LINK_DOWN,
    }
)
_SEVERITY_RANK = {Severity.FATAL: 0, Severity.DEGRADED: 1, Severity.APP: 2, Severity.INFO: 3}
CONDITION_TYPES = (CONDITION_GPU_HEALTHY, CONDITION_NCCL_HEALTHY)


def condition_of(cls: FaultClass) -> str:
    """Which NodeCondition a class of finding speaks to."""
    return CONDITION_NCCL_HEALTHY if cls in _NCCL_CLASSES else CONDITION_GPU_HEALTHY


@dataclass(frozen=True, slots=True)
class AgentState:
    """The agent's published memory: folded bursts (oldest first) and stack versions."""

    findings: tuple[Finding, ...] = ()
    versions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Publication:
    findings: str  # annotation value
    stack: str | None  # annotation value; None when no version is known
    conditions: tuple[NodeCondition, ...]
    events: tuple[Event, ...]


def merge(state: AgentState, new: Iterable[Finding], silence: timedelta) -> tuple[AgentState, list[Finding]]:
    """Fold `new` into the state's bursts; returns the new state and the bursts `new` opened.

    A finding folds into the latest burst with its fold key when it starts within `silence`
    of that burst's last sighting; otherwise it opens a burst. Every finding needs a time
    (the shell stamps untimed lines with the time it read them).
    """
    findings = list(state.findings)
    latest: dict[tuple[object, ...], int] = {}
    for i, f in enumerate(findings):
        latest[f.fold_key] = i
    opened: list[Finding] = []
    for f in new:
        at = latest.get(f.fold_key)
        if at is not None:
            current = findings[at]
            last = current.last_seen or current.first_seen
            start = f.first_seen or f.last_seen
            if last is not None and start is not None and start - last <= silence:
                findings[at] = current.folded(f)
                continue
        findings.append(f)
        latest[f.fold_key] = len(findings) - 1
        opened.append(f)
    return replace(state, findings=tuple(_trim(findings))), opened


def _trim(findings: Sequence[Finding]) -> list[Finding]:
    ordered = sorted(findings, key=lambda f: (_seen(f), f.source, f.line))
    return ordered[-MAX_FINDINGS:]


def _seen(f: Finding) -> str:
    stamp = f.last_seen or f.first_seen or f.time
    return stamp.isoformat() if stamp else ""


def conditions(
    findings: Sequence[Finding],
    policy: FaultsPolicy,
    now: datetime,
    *,
    healthy_probe_at: datetime | None = None,
) -> tuple[NodeCondition, ...]:
    """GPUHealthy and NCCLHealthy from the node-fault findings still inside the quiet period."""
    out = []
    for ctype in CONDITION_TYPES:
        active = [
            f
            for f in findings
            if f.node_fault
            and condition_of(f.class_) == ctype
            and (last := f.last_seen or f.first_seen) is not None
            and now - last < policy.recovery_quiet_period
            and not (
                ctype == CONDITION_GPU_HEALTHY and healthy_probe_at is not None and last < healthy_probe_at
            )
        ]
        if not active:
            quiet = _duration(policy.recovery_quiet_period)
            out.append(NodeCondition(ctype, "True", HEALTHY_REASON, f"no node fault in the last {quiet}"))
            continue
        newest_first = sorted(active, key=_seen, reverse=True)
        worst = min(newest_first, key=lambda f: _SEVERITY_RANK[f.severity])  # min is stable: newest wins ties
        first_line = worst.text.split("\n", 1)[0]
        more = f" (+{len(active) - 1} more)" if len(active) > 1 else ""
        message = f"{worst.rule}: {first_line}"[: MAX_CONDITION_MESSAGE - len(more)] + more
        out.append(NodeCondition(ctype, "False", worst.class_.camel, message))
    return tuple(out)


def _duration(d: timedelta) -> str:
    s = int(d.total_seconds())
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (sec, "s")) if v) or "0s"


def findings_annotation(findings: Sequence[Finding]) -> str:
    """The latest findings as a JSON list of §1.3 objects: at most 50 and 32 KiB (oldest dropped)."""
    items = [f.to_json() for f in _trim(findings)]
    while True:
        body = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
        if len(body.encode()) <= MAX_ANNOTATION_BYTES or not items:
            return body
        items = items[1:]


def parse_findings_annotation(raw: str | None) -> tuple[Finding, ...]:
    """Inverse of findings_annotation; entries that do not parse are skipped (never raises)."""
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            out.append(Finding.from_json(item))
        except (KeyError, ValueError, TypeError):
            continue
    return tuple(out)


def stack_annotation(versions: Mapping[str, str]) -> str | None:
    """`{"driver": …, "cuda": …, "nccl": …}` with the versions known so far (read by `fleet versions`)."""
    known = {k: versions[k] for k in ("driver", "cuda", "nccl") if versions.get(k)}
    return json.dumps(known, sort_keys=True, separators=(",", ":")) if known else None


def publication(
    node: str,
    state: AgentState,
    new: Sequence[Finding],
    versions: Mapping[str, str],
    policy: FaultsPolicy,
    now: datetime,
    *,
    previous: Sequence[NodeCondition] = (),
    healthy_probe_at: datetime | None = None,
) -> tuple[AgentState, Publication]:
    """One agent step: fold `new` in, and say what the node should show now.

    `previous` are the node's current conditions, so a recovery (False → True) gets an Event.
    """
    merged, opened = merge(state, new, policy.burst_silence)
    merged = replace(merged, versions=MappingProxyType({**merged.versions, **versions}))
    conds = conditions(merged.findings, policy, now, healthy_probe_at=healthy_probe_at)
    events = [_event(node, f) for f in opened]
    before = {c.type: c for c in previous}
    for c in conds:
        old = before.get(c.type)
        if old is not None and old.status == "False" and c.status == "True":
            events.append(
                Event(
                    kind="Node",
                    name=node,
                    reason=Reason.NODE_RECOVERED.value,
                    message=f"{c.type} is True again: {c.message} (was {old.reason})",
                    type="Normal",
                    at=now,
                )
            )
    return merged, Publication(
        findings=findings_annotation(merged.findings),
        stack=stack_annotation(merged.versions),
        conditions=conds,
        events=tuple(events),
    )


def _event(node: str, f: Finding) -> Event:
    first_line = f.text.split("\n", 1)[0]
    verdict = "node fault" if f.node_fault else "not a node fault"
    return Event(
        kind="Node",
        name=node,
        reason=f.class_.value,
        message=f"{f.rule}: {first_line} [{verdict}, action {f.action.value}] (runbook: runbooks/{f.class_.value}.md)",
        type="Normal" if f.severity is Severity.INFO else "Warning",
        at=f.first_seen or f.time,
    )
