"""Pure. The fault rules compiled once for classification, plus the stack-version extractors.

Every rule keeps its catalog index; the fast prefilter engine reports candidate lines as sets
of these indexes ("hints"), and the classifier only confirms the hinted rules. Stack
extractors (driver, CUDA and NCCL versions) share the index space after the rules, so one
multi-pattern scan finds both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from operatord.policies.faultrules import FaultRule

_POSIX_CLASSES = {
    "[:space:]": r"\s",
    "[:digit:]": r"\d",
    "[:alpha:]": "A-Za-z",
    "[:alnum:]": "A-Za-z0-9",
    "[:upper:]": "A-Z",
    "[:lower:]": "a-z",
    "[:xdigit:]": "0-9A-Fa-f",
    "[:punct:]": r"!-/:-@\[-`{-~",
}


def ere_to_python(ere: str) -> str:
    """A POSIX ERE prefilter as a Python regex (only bracket classes differ for our subset)."""
    for posix, py in _POSIX_CLASSES.items():
        ere = ere.replace(posix, py)
    return ere


@dataclass(frozen=True, slots=True)
class StackExtractor:
    """Finds a component version in a log line (NVRM banner, nvidia-smi header, NCCL banner)."""

    name: str
    prefilter: str  # POSIX ERE, for the fast engine and grep
    pattern: re.Pattern[str]  # named groups are the versions it yields: driver, cuda, nccl


STACK_EXTRACTORS: tuple[StackExtractor, ...] = (
    StackExtractor(
        "nvrm-banner",
        "NVRM: loading NVIDIA UNIX",
        re.compile(
            r"NVRM: loading NVIDIA UNIX .*?Kernel Module.*?\s(?P<driver>\d{3}\.\d+(?:\.\d+)?)(?:\s|$)"
        ),
    ),
    StackExtractor(
        "nvidia-smi-header",
        "Driver Version: [0-9]",
        re.compile(r"Driver Version: (?P<driver>\d+\.\d+(?:\.\d+)?)(?:\s+CUDA Version: (?P<cuda>\d+\.\d+))?"),
    ),
    StackExtractor(
        "nccl-banner",
        r"NCCL version [0-9]+\.[0-9]+\.[0-9]+\+cuda",
        re.compile(r"NCCL version (?P<nccl>\d+\.\d+\.\d+)\+cuda(?P<cuda>\d+\.\d+)"),
    ),
)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    rule: FaultRule
    prefilter: re.Pattern[str]

    @property
    def sort_key(self) -> tuple[int, int]:
        return (-self.rule.priority, self.index)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Rules in catalog order; `ranked` is the order in which candidates are tried."""

    rules: tuple[CompiledRule, ...]
    stack: tuple[StackExtractor, ...] = STACK_EXTRACTORS

    @classmethod
    def of(cls, rules: Sequence[FaultRule]) -> Catalog:
        return cls(
            tuple(CompiledRule(i, r, re.compile(ere_to_python(r.prefilter))) for i, r in enumerate(rules))
        )

    @property
    def prefilters(self) -> tuple[str, ...]:
        """Every prefilter, indexed like the hints: rules first, then stack extractors."""
        return tuple(r.rule.prefilter for r in self.rules) + tuple(s.prefilter for s in self.stack)

    @property
    def stack_offset(self) -> int:
        return len(self.rules)

    @property
    def max_continuation(self) -> int:
        """The most lines any multi-line rule may take after its first line."""
        return max((r.rule.multiline.max_lines for r in self.rules if r.rule.multiline), default=0)

    @property
    def multiline_ids(self) -> frozenset[int]:
        return frozenset(r.index for r in self.rules if r.rule.multiline is not None)
