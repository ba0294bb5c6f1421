"""Shell. Executor for fleet-skew actions: the GPUStackConsistent condition and its Event.

Imported for its side effect (registering the executor), like operatord.shell.burst_apply.
"""

from __future__ import annotations

from operatord.core.fleet import CONSISTENT_REASON, SKEW_REASON, SetStackCondition
from operatord.core.model import NodeCondition, ObjectRef
from operatord.shell.apply import ApplyContext, Outcome, emit_event, executor
from operatord.vocab import CONDITION_STACK_CONSISTENT


@executor(SetStackCondition)
def _set_stack_condition(action: SetStackCondition, ctx: ApplyContext) -> Outcome:
    assert action.node is not None
    condition = NodeCondition(
        type=CONDITION_STACK_CONSISTENT,
        status="True" if action.consistent else "False",
        reason=CONSISTENT_REASON if action.consistent else SKEW_REASON,
        message=action.message[:1024],
        last_transition_time=ctx.clock(),
    )
    ctx.cluster.set_node_condition(action.node, condition)
    text = (
        f"GPU stack consistent with its pool again: {action.message}"
        if action.consistent
        else f"GPU stack differs from its pool: {action.message}"
    )
    emit_event(
        ctx,
        ObjectRef.node(action.node),
        action.reason,
        text,
        warning=not action.consistent,
        action="StackCheck",
    )
    return Outcome(
        action.key, action.kind, action.node, "applied", action.reason, {"consistent": action.consistent}
    )
