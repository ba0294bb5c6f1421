"""Pure. The Snapshot: what one tick observed, as plain values (design §3.1).

The shell builds it (operatord.shell.observe); the decision functions read it; the simulator
builds it from its in-memory world. Later capabilities add fields with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from operatord.core.model import Node
from operatord.core.state import OperatordState


@dataclass(frozen=True, slots=True)
class Snapshot:
    observed_at: datetime
    nodes: tuple[Node, ...] = ()
    state: OperatordState = field(default_factory=OperatordState)
    # GPUs the current serving demand needs (from the scaling side); None when unknown, in
    # which case remediation's capacity check is skipped and only the guards protect capacity.
    demand_gpus: float | None = None
