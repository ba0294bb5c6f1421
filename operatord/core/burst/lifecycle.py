"""Pure. The burst instance lifecycle: states, the only allowed edges, and a deadline per transient state.

One record per EC2 instance (and, before any instance exists, per intent) moves along

    planned → requested → running → registered → gpu_ready → serving → draining → terminating → terminated

with the failure states launch_failed (nothing was launched; terminal) and terminate_failed
(TerminateInstances did not take; retried). Every edge carries a comment naming the observable
trigger (Ray v2's instance manager is the model); anything not in `TRANSITIONS` is a bug and is
rejected. Every transient state has a deadline (`deadline`), so nothing waits forever
(ray-project/ray #27521: instances stuck in "launching" with no retry).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from operatord.policies.model import BurstPolicy


class BurstState(StrEnum):
    PLANNED = "planned"
    REQUESTED = "requested"
    RUNNING = "running"
    REGISTERED = "registered"
    GPU_READY = "gpu_ready"
    SERVING = "serving"
    DRAINING = "draining"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    LAUNCH_FAILED = "launch_failed"
    TERMINATE_FAILED = "terminate_failed"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def live(self) -> bool:
        """Costs money or may soon (an instance may exist or be about to)."""
        return not self.terminal

    @property
    def booting(self) -> bool:
        """Capacity that is coming but does not serve yet."""
        return self in _BOOTING


_TERMINAL = frozenset({BurstState.TERMINATED, BurstState.LAUNCH_FAILED})
_BOOTING = frozenset(
    {
        BurstState.PLANNED,
        BurstState.REQUESTED,
        BurstState.RUNNING,
        BurstState.REGISTERED,
        BurstState.GPU_READY,
    }
)
_S = BurstState

TRANSITIONS: dict[BurstState, frozenset[BurstState]] = {
    _S.PLANNED: frozenset(
        {
            _S.REQUESTED,  # an attempt (type, subnet, ClientToken) was persisted, RunInstances is next
            _S.LAUNCH_FAILED,  # no offering is left under the caps, or the planned deadline passed unrequested
        }
    ),
    _S.REQUESTED: frozenset(
        {
            _S.REQUESTED,  # capacity error: the next (type, AZ) offering is attempted with a new token
            _S.RUNNING,  # RunInstances returned ids, or a tag lookup found the attempt's instances
            _S.LAUNCH_FAILED,  # quota or configuration error, offerings exhausted, or launch deadline with nothing found
        }
    ),
    _S.RUNNING: frozenset(
        {
            _S.REGISTERED,  # a Node labelled operatord.io/instance-id=<id> exists
            _S.TERMINATING,  # register deadline passed, lifetime expired, partial group rolled back, or released
            _S.TERMINATED,  # EC2 reports the instance gone (stopped by AWS or a human)
        }
    ),
    _S.REGISTERED: frozenset(
        {
            _S.GPU_READY,  # the Node advertises nvidia.com/gpu allocatable > 0
            _S.TERMINATING,  # serving deadline passed, lifetime expired, or released before serving
            _S.TERMINATED,  # EC2 reports the instance gone
        }
    ),
    _S.GPU_READY: frozenset(
        {
            _S.SERVING,  # a Ready serving pod runs on the Node
            _S.TERMINATING,  # serving deadline passed, lifetime expired, or released before serving
            _S.TERMINATED,  # EC2 reports the instance gone
        }
    ),
    _S.SERVING: frozenset(
        {
            _S.DRAINING,  # scale-in chose it, its lifetime expired, the spend cap was reached, or its Node was deleted
            _S.TERMINATING,  # EC2 reports it stopped (by a person or AWS): nothing serves there to drain
            _S.TERMINATED,  # EC2 reports the instance gone (the replicas on it were lost)
        }
    ),
    _S.DRAINING: frozenset(
        {
            _S.TERMINATING,  # no serving pod left on the Node, or the drain deadline passed
            _S.TERMINATED,  # EC2 reports the instance gone
        }
    ),
    _S.TERMINATING: frozenset(
        {
            _S.TERMINATED,  # EC2 reports shutting-down/terminated, or does not know the id any more
            _S.TERMINATE_FAILED,  # the terminate deadline passed and EC2 still reports it running
        }
    ),
    _S.TERMINATE_FAILED: frozenset(
        {
            _S.TERMINATING,  # TerminateInstances is issued again (it is idempotent)
            _S.TERMINATED,  # EC2 reports the instance gone
        }
    ),
    _S.TERMINATED: frozenset(),  # terminal
    _S.LAUNCH_FAILED: frozenset(),  # terminal: nothing was launched (or it was all rolled back)
}

# The forward path a healthy instance takes while booting; observation may skip ahead several steps
# in one tick (e.g. registered and GPU-ready seen together), and each step is still recorded.
BOOT_PATH: tuple[BurstState, ...] = (_S.RUNNING, _S.REGISTERED, _S.GPU_READY, _S.SERVING)


class IllegalTransition(ValueError):
    """An edge not in TRANSITIONS was requested: a bug in the caller, never a runtime condition."""

    def __init__(self, source: BurstState, target: BurstState) -> None:
        super().__init__(f"burst lifecycle: {source.value} → {target.value} is not an allowed transition")
        self.source = source
        self.target = target


def check_transition(source: BurstState, target: BurstState) -> None:
    if target not in TRANSITIONS[source]:
        raise IllegalTransition(source, target)


def deadline(
    state: BurstState, *, requested_at: datetime | None, state_since: datetime, policy: BurstPolicy
) -> datetime | None:
    """When a record in `state` has waited too long, or None for states that may last.

    Boot deadlines count from the first launch request (the clock the user cares about: how long
    since operatord asked for capacity); drain and terminate deadlines count from entering the state.
    """
    t = policy.timeouts
    start = requested_at or state_since
    boot: dict[BurstState, timedelta] = {
        _S.PLANNED: t.launch,
        _S.REQUESTED: t.launch,
        _S.RUNNING: t.register_,
        _S.REGISTERED: t.serving,
        _S.GPU_READY: t.serving,
    }
    if state in boot:
        return start + boot[state]
    if state is _S.DRAINING:
        return state_since + t.drain
    if state is _S.TERMINATING:
        return state_since + t.terminate
    return None
