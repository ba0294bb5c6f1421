"""Fault rules as data (design §1.10): `kind: FaultRules` files under policies/faults/.

A rule is found fast by its `prefilter` (accepted by both hyperscan and `grep -E`), confirmed
by `pattern` (Python `re`, named groups xid/gpu/peer and any group an override reads), and
may swallow continuation lines (`multiline`). Overrides change the verdict from a captured
field, e.g. Xid 94 with `RST: Yes` still needs a GPU reset. When several rules confirm one line the
highest `priority` wins. Semantics and the reasons for them: docs/fault-detection.md.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema, field_validator, model_validator

from operatord.policies.base import CrossFieldError, Strict
from operatord.vocab import FaultAction, FaultClass, LogSourceKind, Severity

RESERVED_GROUPS = frozenset({"xid", "gpu", "peer"})
_RULE_ID = r"^[a-z0-9][a-z0-9_.-]{1,62}$"
# Constructs grep -E (POSIX ERE) does not understand, so a prefilter using them would make the
# grep baseline and the fast engine disagree.
_NOT_ERE = (
    (re.compile(r"\(\?"), "'(?' groups/flags"),
    (re.compile(r"(?<!\\)\\[dDsSwW]"), r"class escapes like \d \s \w (use [0-9], [[:space:]], [A-Za-z0-9_])"),
    (re.compile(r"[*+?}]\?"), "lazy quantifiers"),
    (re.compile(r"(?<!\\)\\[AZzb]"), r"anchors like \A \Z \b"),
)


def compile_pattern(value: Any) -> re.Pattern[str]:
    if isinstance(value, re.Pattern):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty regular expression string")
    try:
        return re.compile(value)
    except re.error as err:
        raise ValueError(f"invalid regular expression: {err}") from None


Pattern = Annotated[
    re.Pattern[str],
    BeforeValidator(compile_pattern),
    PlainSerializer(lambda p: p.pattern, return_type=str),
    WithJsonSchema({"type": "string", "format": "regex", "minLength": 1}),
]


class Multiline(Strict):
    """Lines after the first that belong to the same report (e.g. a fallen-off-the-bus block).

    Semantics: the block is the line the prefilter found plus the immediately following lines
    (prefixes stripped) that match `continuation`, at most `max_lines` of them. `pattern` is then
    searched in the block joined with newlines; on success the finding covers (and consumes) the
    whole block, on failure the rule does not fire and every line is classified on its own.
    """

    continuation: Pattern = Field(description="A following line matching this belongs to the finding.")
    max_lines: int = Field(8, ge=1, le=50, description="At most this many continuation lines are taken.")


class Verdict(Strict):
    """The fields an override may change."""

    class_: FaultClass | None = Field(None, alias="class")
    node_fault: bool | None = None
    severity: Severity | None = None
    action: FaultAction | None = None


class Override(Strict):
    """When every named group captured text matching its regex (re.search), apply `then`.

    A group that did not take part in the match never satisfies `when`. Every override that holds
    applies, in order, so a later one wins a field both set.
    """

    when: dict[str, Pattern] = Field(min_length=1, description="Named group → regex over its captured text.")
    then: Verdict


class FaultRule(Strict):
    """One log form and what it means (research/faults.md §2–4)."""

    id: str = Field(pattern=_RULE_ID, description="Stable rule id, e.g. xid-79.")
    class_: FaultClass = Field(alias="class", description="Fault class (research/faults.md §4).")
    node_fault: bool = Field(description="True when the node is at fault (drain it), false for app faults.")
    severity: Severity
    action: FaultAction
    sources: list[LogSourceKind] = Field(min_length=1, description="Log sources this form appears in.")
    prefilter: str = Field(min_length=2, description="POSIX ERE accepted by grep -E and hyperscan.")
    pattern: Pattern = Field(description="Python regex confirming the match; named groups xid, gpu, peer.")
    multiline: Multiline | None = None
    overrides: list[Override] = Field(default_factory=list)
    runbook: str = Field(pattern=r"^[a-z0-9_./-]+\.md$", description="Runbook file under runbooks/.")
    priority: int = Field(
        0,
        ge=-100,
        le=100,
        description="When several rules confirm one line, the highest priority wins (ties: catalog order). "
        "Catch-alls use a negative priority.",
    )
    description: str = ""

    @field_validator("prefilter")
    @classmethod
    def _prefilter_is_ere(cls, value: str) -> str:
        for construct, what in _NOT_ERE:
            if construct.search(value):
                raise ValueError(f"prefilter must be POSIX ERE (grep -E); it uses {what}")
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"invalid regular expression: {err}") from None
        return value

    @model_validator(mode="after")
    def _override_groups_exist(self) -> Self:
        groups = set(self.pattern.groupindex)
        for i, override in enumerate(self.overrides):
            missing = sorted(set(override.when) - groups)
            if missing:
                raise CrossFieldError(
                    f"overrides.{i}.when",
                    f"names group(s) {', '.join(missing)} that pattern does not capture "
                    f"(pattern has: {', '.join(sorted(groups)) or 'no named groups'})",
                )
        return self


class FaultRules(Strict):
    """A file of fault rules."""

    api_version: Literal["operatord.io/v1"] = Field("operatord.io/v1", alias="apiVersion")
    kind: Literal["FaultRules"]
    rules: list[FaultRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise CrossFieldError(f"rules.{i}.id", f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self
