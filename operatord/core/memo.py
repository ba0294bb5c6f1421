"""Pure. Reuse of a pure function's last result while its inputs are the very same objects.

decide() is a pure function of its snapshot; parts of it depend on the nodes and the policy
alone (the fleet's stack check, the pooled node views, local capacity). On most ticks no node
changed, and a caller that hands decide() the same node tuple again (the simulator's in-memory
cluster does; an informer cache would) need not judge the same fleet again. The daemon and the
simulator each keep one Memo per loop; `operatord plan` passes none.

A result is reused only when every input `is` the one it was computed from: inputs are held, so
an id is never recycled while the memo remembers it, and a caller that builds fresh objects each
tick simply never hits. Inputs and values must be immutable (the snapshot's tuples, frozen
records, the frozen policy): identity stands for equality only then. One entry per name: the memo
stays as small as one tick's results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

T = TypeVar("T")

__all__ = ["Memo"]


class Memo:
    """The last result of each named computation, with the inputs it came from."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[tuple[object, ...], object]] = {}

    def reuse(self, name: str, inputs: tuple[object, ...], compute: Callable[[], T]) -> T:
        """compute()'s result, or the one kept for `name` when it came from these very inputs."""
        last = self._last.get(name)
        if last is not None and _same(last[0], inputs):
            return cast(T, last[1])
        value = compute()
        self._last[name] = (inputs, value)
        return value


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
