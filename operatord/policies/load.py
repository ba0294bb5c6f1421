"""YAML → Policy / FaultRules with every problem located as FILE:LINE:COL: field.path: message.

Two kinds of failure, kept apart because the CLI gives them different exit codes:
`PolicyUnreadable` (cannot read or parse the file at all: exit 2) and `PolicyInvalid` (parsed,
but the content breaks the model: exit 1). Both carry located `Problem`s, never a traceback.
"""

from __future__ import annotations

import glob
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from operatord.policies.base import CrossFieldError
from operatord.policies.faultrules import FaultRule, FaultRules
from operatord.policies.model import Policy

KINDS: dict[str, type[BaseModel]] = {"Policy": Policy, "FaultRules": FaultRules}
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_POLICY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PolicyError(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


class PolicyUnreadable(PolicyError):
    """The file cannot be read or is not YAML."""


class PolicyInvalid(PolicyError):
    """The YAML is fine; its content is not a valid policy."""


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A policy with the fault rules its globs name, and a revision hash for logs and outputs."""

    policy: Policy
    rules: tuple[FaultRule, ...]
    source: str
    rule_files: tuple[str, ...] = field(default=())
    revision: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: the daemon logs it every tick, and hashing the dumped policy is not free.
        body = {
            "policy": self.policy.model_dump(mode="json", by_alias=True),
            "rules": [r.model_dump(mode="json", by_alias=True) for r in self.rules],
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        object.__setattr__(self, "revision", digest[:12])


# ---------------------------------------------------------------- YAML with positions


@dataclass(slots=True)
class _Document:
    data: Any
    marks: dict[tuple[str | int, ...], tuple[int, int]]
    problems: list[Problem]


def _parse(text: str, name: str) -> _Document:
    """Parse one YAML document, recording the (line, column) of every key and item.

    One pass: the composed node tree gives both the positions and (constructed) the data, with
    libyaml's parser when PyYAML has it (policy loading is on every CLI command's path).
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = " ".join(str(x) for x in (err.context, err.problem) if x)
        raise PolicyUnreadable([Problem(name, line, col, "", f"YAML syntax error: {detail}")]) from None
    except yaml.YAMLError as err:
        raise PolicyUnreadable([Problem(name, 1, 1, "", f"YAML error: {err}")]) from None
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return _Document(None, {(): (1, 1)}, [])
    if len(nodes) != 1:
        raise PolicyUnreadable([Problem(name, 1, 1, "", f"expected one YAML document, found {len(nodes)}")])
    root = nodes[0]
    marks: dict[tuple[str | int, ...], tuple[int, int]] = {
        (): (root.start_mark.line + 1, root.start_mark.column + 1)
    }
    problems: list[Problem] = []
    _walk(root, (), marks, problems, name)
    try:
        data = _Loader("").construct_document(root)
    except yaml.YAMLError as err:  # e.g. a tag the safe loader refuses
        raise PolicyUnreadable([Problem(name, 1, 1, "", f"YAML error: {err}")]) from None
    return _Document(data, marks, problems)


def _walk(
    node: yaml.Node,
    path: tuple[str | int, ...],
    marks: dict[tuple[str | int, ...], tuple[int, int]],
    problems: list[Problem],
    name: str,
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in seen:
                problems.append(
                    Problem(name, *at, _dotted((*path, key)), "duplicate key (the later one would win)")
                )
            seen.add(key)
            marks[(*path, key)] = at
            _walk(value_node, (*path, key), marks, problems, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[(*path, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, (*path, i), marks, problems, name)


def _dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path)


def _locate(
    marks: dict[tuple[str | int, ...], tuple[int, int]], loc: tuple[str | int, ...]
) -> tuple[int, int]:
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return (1, 1)


# ---------------------------------------------------------------- validation errors → problems


def _problems(err: ValidationError, doc: _Document, name: str, model: type[BaseModel]) -> list[Problem]:
    out: list[Problem] = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and _is_union_tag(p)))
        ctx = e.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, CrossFieldError):
            loc = loc + tuple(int(p) if p.isdigit() else p for p in cause.field.split("."))
            message = str(cause)
        else:
            message = _message(e, model, loc)
        out.append(Problem(name, *_locate(doc.marks, loc), _dotted(loc), message))
    return out


def _is_union_tag(part: str) -> bool:
    # pydantic adds the member type name (e.g. "BurstPolicy", "function-after[...]") to unions' locs
    return part[:1].isupper() or "[" in part


def _message(e: Any, model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    kind = e["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"unknown field{hint}"
    if kind == "missing":
        return "required field is missing"
    msg = str(e["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if (
        kind not in {"value_error", "assertion_error"}
        and "input" in e
        and not isinstance(e["input"], dict | list)
    ):
        msg = f"{msg} (got {e['input']!r})"
    return msg


def _allowed_fields(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names (as written in YAML) of the model at `loc`, best effort."""
    current: Any = model
    for part in loc:
        current = _inner_model(current, part)
        if current is None:
            return []
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _inner_model(current: Any, part: str | int) -> Any:
    def unwrap(tp: Any) -> Any:
        while True:
            origin = typing.get_origin(tp)
            if origin is typing.Annotated:
                tp = typing.get_args(tp)[0]
            elif origin in (typing.Union, types.UnionType):
                members = [a for a in typing.get_args(tp) if a is not type(None)]
                tp = members[0] if len(members) == 1 else None
            else:
                return tp

    current = unwrap(current)
    if isinstance(part, int):
        if typing.get_origin(current) is list:
            return unwrap(typing.get_args(current)[0])
        return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        for n, f in current.model_fields.items():
            if part in (n, f.alias):
                return unwrap(f.annotation)
        return None
    if typing.get_origin(current) is dict:
        return unwrap(typing.get_args(current)[1])
    return None


# ---------------------------------------------------------------- public API


def read_text(path: Path) -> str:
    """Read a policy file as UTF-8, or raise PolicyUnreadable saying why."""
    name = str(path)
    try:
        if path.is_dir():
            raise PolicyUnreadable([Problem(name, 1, 1, "", "is a directory, not a policy file")])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyUnreadable([Problem(name, 1, 1, "", "no such file")]) from None
    except OSError as err:
        raise PolicyUnreadable([Problem(name, 1, 1, "", f"cannot read: {err.strerror or err}")]) from None
    return decode(raw, name)


def decode(raw: bytes, name: str) -> str:
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyUnreadable(
            [Problem(name, 1, 1, "", f"file is {len(raw)} bytes; the limit is {MAX_POLICY_BYTES}")]
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise PolicyUnreadable([Problem(name, line, col, "", "not valid UTF-8")]) from None


def parse_document(text: str, name: str) -> tuple[str, BaseModel]:
    """Validate one document of either kind; returns (kind, model) or raises a PolicyError."""
    doc = _parse(text, name)
    if not isinstance(doc.data, dict):
        got = type(doc.data).__name__ if doc.data is not None else "an empty document"
        raise PolicyInvalid(
            [
                Problem(
                    name, 1, 1, "", f"expected a mapping with `kind: Policy` or `kind: FaultRules`, got {got}"
                )
            ]
        )
    kind = doc.data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        line, col = doc.marks.get(("kind",), (1, 1))
        what = "is missing" if kind is None else f"is {kind!r}"
        raise PolicyInvalid([Problem(name, line, col, "kind", f"{what}; expected Policy or FaultRules")])
    model = KINDS[kind]
    try:
        value = model.model_validate(doc.data)
    except ValidationError as err:
        raise PolicyInvalid(doc.problems + _problems(err, doc, name, model)) from None
    if doc.problems:
        raise PolicyInvalid(doc.problems)
    return kind, value


def load_rules(paths: Sequence[Path]) -> tuple[FaultRule, ...]:
    """Load FaultRules files; rule ids must be unique across all of them."""
    rules: list[FaultRule] = []
    problems: list[Problem] = []
    unreadable = False
    where: dict[str, str] = {}
    for path in paths:
        try:
            kind, value = parse_document(read_text(path), str(path))
        except PolicyUnreadable as err:
            problems.extend(err.problems)
            unreadable = True
            continue
        except PolicyInvalid as err:
            problems.extend(err.problems)
            continue
        if not isinstance(value, FaultRules):
            problems.append(
                Problem(str(path), 1, 1, "kind", f"is {kind}; a rules glob must match FaultRules files")
            )
            continue
        for i, rule in enumerate(value.rules):
            if rule.id in where:
                problems.append(
                    Problem(
                        str(path),
                        1,
                        1,
                        f"rules.{i}.id",
                        f"rule id {rule.id!r} also defined in {where[rule.id]}",
                    )
                )
            where[rule.id] = str(path)
            rules.append(rule)
    if problems:
        raise (PolicyUnreadable if unreadable else PolicyInvalid)(problems)
    return tuple(rules)


def rule_files(policy: Policy, base: Path) -> tuple[Path, ...]:
    """The FaultRules files a policy's globs name, relative to the policy's folder, sorted."""
    found: set[Path] = set()
    for pattern in policy.faults.rules:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        found.update(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
    return tuple(sorted(found))


def load_policy(path: Path) -> LoadedPolicy:
    """Load a Policy file and the FaultRules files it names. Raises a PolicyError on any problem."""
    kind, value = parse_document(read_text(path), str(path))
    if not isinstance(value, Policy):
        raise PolicyInvalid([Problem(str(path), 1, 1, "kind", f"is {kind}; expected a Policy")])
    files = rule_files(value, path.parent)
    if not files:
        raise PolicyInvalid(
            [Problem(str(path), 1, 1, "faults.rules", f"no FaultRules file matches {value.faults.rules}")]
        )
    return LoadedPolicy(value, load_rules(files), str(path), tuple(str(f) for f in files))


def load_policy_text(text: str, name: str, base: Path) -> LoadedPolicy:
    """Like load_policy, for a policy held in memory (the operatord-policy ConfigMap)."""
    kind, value = parse_document(text, name)
    if not isinstance(value, Policy):
        raise PolicyInvalid([Problem(name, 1, 1, "kind", f"is {kind}; expected a Policy")])
    files = rule_files(value, base)
    return LoadedPolicy(value, load_rules(files), name, tuple(str(f) for f in files))
