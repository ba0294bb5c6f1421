"""Pure. The per-node health state machine of remediation, as a transition table.

A node's state is persisted as the `state` of the last entry of its `operatord.io/history`
annotation (design §1.5), so it survives restarts and is the same for the daemon, `operatord
plan` and `explain`. The planner never jumps states: every state change it proposes is an edge
below, checked by `transition()`, and the shell records it when the action succeeds.

    healthy → suspect → cordoned → draining → drained → awaiting_repair → recovering → healthy
"""

from __future__ import annotations

from enum import StrEnum


class HealthState(StrEnum):
    HEALTHY = "healthy"
    SUSPECT = "suspect"  # a non-fatal node fault, inside its toleration window
    CORDONED = "cordoned"  # quarantined: unschedulable, pods still running
    DRAINING = "draining"  # evictions started (a crash here resumes the drain)
    DRAINED = "drained"  # no evictable pods left
    AWAITING_REPAIR = "awaiting_repair"  # handed to a human: reset, reboot or RMA (design §1.8)
    RECOVERING = "recovering"  # the fault cleared; waiting to be uncordoned


class NodeEvent(StrEnum):
    FAULT_SEEN = "fault_seen"
    FAULT_CONFIRMED = "fault_confirmed"
    FAULT_CLEARED = "fault_cleared"
    DRAIN_STARTED = "drain_started"
    DRAIN_COMPLETED = "drain_completed"
    DRAIN_FAILED = "drain_failed"
    HANDED_OFF = "handed_off"
    UNCORDONED = "uncordoned"
    HUMAN_UNCORDONED = "human_uncordoned"
    HUMAN_DRAIN = "human_drain"


S, E = HealthState, NodeEvent

TRANSITIONS: dict[tuple[HealthState, NodeEvent], HealthState] = {
    # A non-fatal node fault appeared; watch it for the class's toleration before acting.
    (S.HEALTHY, E.FAULT_SEEN): S.SUSPECT,
    # A fatal node fault (or one with no toleration): cordon at once.
    (S.HEALTHY, E.FAULT_CONFIRMED): S.CORDONED,
    # The toleration elapsed with the fault still active (or it turned fatal): cordon.
    (S.SUSPECT, E.FAULT_CONFIRMED): S.CORDONED,
    # The fault went quiet inside the toleration window: nothing was done, nothing to undo.
    (S.SUSPECT, E.FAULT_CLEARED): S.HEALTHY,
    # Guards allowed a drain of the cordoned node: evictions begin.
    (S.CORDONED, E.DRAIN_STARTED): S.DRAINING,
    # The fault cleared before any drain (cordon-only faults, or held drains): uncordon.
    (S.CORDONED, E.UNCORDONED): S.HEALTHY,
    # A drain interrupted by a restart is resumed, not restarted from cordoned.
    (S.DRAINING, E.DRAIN_STARTED): S.DRAINING,
    # Every evictable pod is gone.
    (S.DRAINING, E.DRAIN_COMPLETED): S.DRAINED,
    # The drain timed out or a PDB was misconfigured (500): back to cordoned, retried under guards.
    (S.DRAINING, E.DRAIN_FAILED): S.CORDONED,
    # The drained node is handed to a human with a condition, an Event and the runbook.
    (S.DRAINED, E.HANDED_OFF): S.AWAITING_REPAIR,
    # The repair worked: no active node fault for the quiet period (or a healthy probe).
    (S.AWAITING_REPAIR, E.FAULT_CLEARED): S.RECOVERING,
    # The fault came back before the node was returned: it waits for repair again.
    (S.RECOVERING, E.FAULT_SEEN): S.AWAITING_REPAIR,
    # The fault is back while recovering and needs confirming again by the same rules.
    (S.RECOVERING, E.FAULT_CONFIRMED): S.AWAITING_REPAIR,
    # operatord uncordons the node it cordoned once it has recovered.
    (S.RECOVERING, E.UNCORDONED): S.HEALTHY,
}

# A human's uncordon wins from any state: the break-fix is cancelled (NVSentinel's rule).
for _state in HealthState:
    TRANSITIONS[(_state, E.HUMAN_UNCORDONED)] = S.HEALTHY
# A human's `operatord drain` may start from any state that still has pods to drain.
for _state in (S.HEALTHY, S.SUSPECT, S.CORDONED, S.DRAINING, S.RECOVERING):
    TRANSITIONS[(_state, E.HUMAN_DRAIN)] = S.DRAINING
# A drain a human started finishes or fails like an automatic one.


class InvalidTransition(ValueError):
    """The planner proposed an edge that is not in TRANSITIONS: a bug, never a user error."""


def transition(state: HealthState, event: NodeEvent) -> HealthState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"no transition from {state.value} on {event.value}") from None
