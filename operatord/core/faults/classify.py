"""Pure. Log lines → fault findings: prefix-tolerant, multi-line aware, deterministic.

`Classifier` is a small state machine fed lines in input order (possibly sparse: the fast
engine hands over only candidate lines and the lines after a multi-line start). For each
message it tries the candidate rules in rank order (priority, then catalog order); the first
whose `pattern` confirms wins and its overrides adjust the verdict. A multi-line rule first
gathers its continuation lines (research §3.1 fallen-off-the-bus block, PyTorch `Last error:`
tracebacks) and is confirmed on the joined block; if it fails, every gathered line is
classified on its own, so nothing is lost. Benign lines produce nothing.

The classifier never reads files or clocks; time comes from the line itself.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from operatord.core.faults.catalog import Catalog, CompiledRule
from operatord.core.faults.prefix import Record, normalize
from operatord.core.findings import Finding
from operatord.vocab import FaultAction, FaultClass, Severity

MAX_MESSAGE_CHARS = 64 * 1024  # longer lines are cut before regexes see them (10 MB lines exist)
MAX_TEXT_CHARS = 4 * 1024  # kept per finding; the JSON form cuts again to 1 KiB

_PCI = re.compile(r"^(?:PCI:)?([0-9a-fA-F]{4,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})(?:\.([0-7]))?$")
_GROUP_ALIASES = {"gpu": ("gpu", "gpu2", "gpu3"), "peer": ("peer", "peer2", "peer3")}


@dataclass(frozen=True, slots=True)
class Line:
    """One raw input line. `hints`: rule/extractor ids the prefilter found on it; None = try all."""

    number: int
    text: str
    hints: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    class_: FaultClass
    node_fault: bool
    severity: Severity
    action: FaultAction


def normalize_gpu(value: str | None) -> str | None:
    """`0000:91:00`, `00000000:91:00.0`, `PCI:0000:91:00` → `0000:91:00.0`; indexes stay as they are."""
    if value is None or value == "":
        return None
    m = _PCI.match(value.strip())
    if m is None:
        return value.strip()
    domain, bus, dev, fn = m.groups()
    return f"{domain[-4:].lower()}:{bus.lower()}:{dev.lower()}.{fn or '0'}"


def verdict_of(rule: CompiledRule, groups: Mapping[str, str | None]) -> Verdict:
    """The rule's verdict with every override whose `when` holds applied, in order (later wins)."""
    r = rule.rule
    v = Verdict(r.class_, r.node_fault, r.severity, r.action)
    for override in r.overrides:
        if all(
            groups.get(name) is not None and pat.search(groups[name] or "")
            for name, pat in override.when.items()
        ):
            t = override.then
            v = Verdict(
                t.class_ if t.class_ is not None else v.class_,
                t.node_fault if t.node_fault is not None else v.node_fault,
                t.severity if t.severity is not None else v.severity,
                t.action if t.action is not None else v.action,
            )
    return v


class Classifier:
    """Feed lines in order with `feed`, then `flush` once at the end of the input."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        source: str,
        node: str | None = None,
        node_from_host: bool = False,
        year: int | None = None,
    ) -> None:
        self._catalog = catalog
        self._source = source
        self._node = node
        self._node_from_host = node_from_host
        self._year = year
        self._ranked = sorted(catalog.rules, key=lambda r: r.sort_key)
        self._stack_offset = catalog.stack_offset
        self._pending: list[tuple[Record, frozenset[int] | None]] = []
        self._pending_rules: list[CompiledRule] = []
        self.versions: dict[str, str] = {}

    # ------------------------------------------------------------------ public

    def feed(self, line: Line) -> list[Finding]:
        text = line.text if len(line.text) <= MAX_MESSAGE_CHARS else line.text[:MAX_MESSAGE_CHARS]
        return self._drain(deque((rec, line.hints) for rec in normalize(text, line.number, year=self._year)))

    def feed_all(self, lines: Iterable[Line]) -> list[Finding]:
        out: list[Finding] = []
        for line in lines:
            out.extend(self.feed(line))
        out.extend(self.flush())
        return out

    def flush(self) -> list[Finding]:
        """End of input: decide any open multi-line block."""
        out: list[Finding] = []
        while self._pending:
            found, leftover = self._finish()
            out.extend(found)
            out.extend(self._drain(deque(leftover)))
        return out

    def _drain(self, queue: deque[tuple[Record, frozenset[int] | None]]) -> list[Finding]:
        out: list[Finding] = []
        while queue:
            rec, hints = queue.popleft()
            if self._pending:
                if self._continues(rec):
                    self._pending.append((rec, hints))
                    continue
                found, leftover = self._finish()  # always consumes at least the block's first record
                out.extend(found)
                queue.extendleft(reversed([*leftover, (rec, hints)]))
                continue
            out.extend(self._start(rec, hints))
        return out

    # ------------------------------------------------------------------ steps

    def _candidates(self, rec: Record, hints: frozenset[int] | None) -> list[CompiledRule]:
        if hints is None:
            return [r for r in self._ranked if r.prefilter.search(rec.message)]
        n = len(self._catalog.rules)
        return sorted((self._catalog.rules[i] for i in hints if i < n), key=_rank)

    def _start(self, rec: Record, hints: frozenset[int] | None) -> list[Finding]:
        self._versions(rec, hints)
        cands = self._candidates(rec, hints)
        if not cands:
            return []
        multi = [r for r in cands if r.rule.multiline is not None and r.prefilter.search(rec.message)]
        if multi:
            self._pending = [(rec, hints)]
            self._pending_rules = cands
            return []
        found = self._decide([rec], cands)
        return [found[0]] if found else []

    def _continues(self, rec: Record) -> bool:
        last = self._pending[-1][0]
        adjacent = (rec.line == last.line and rec.sub == last.sub + 1) or (
            rec.line == last.line + 1 and rec.sub == 0
        )
        if not adjacent:
            return False
        taken = len(self._pending) - 1
        for r in self._pending_rules:
            ml = r.rule.multiline
            if ml is not None and taken < ml.max_lines and ml.continuation.search(rec.message):
                return True
        return False

    def _finish(self) -> tuple[list[Finding], list[tuple[Record, frozenset[int] | None]]]:
        block = [rec for rec, _ in self._pending]
        gathered = self._pending
        rules = self._pending_rules
        self._pending, self._pending_rules = [], []
        found = self._decide(block, rules)
        if found is None:
            return [], gathered[1:]
        finding, used = found
        return [finding], gathered[used:]

    def _decide(self, block: list[Record], rules: list[CompiledRule]) -> tuple[Finding, int] | None:
        """The first rule (in rank order) confirming on its part of `block`, and how many records it used."""
        for r in rules:
            ml = r.rule.multiline
            used = 1
            if ml is not None:
                while (
                    used < len(block)
                    and used - 1 < ml.max_lines
                    and ml.continuation.search(block[used].message)
                ):
                    used += 1
            text = "\n".join(rec.message for rec in block[:used])
            m = r.rule.pattern.search(text)
            if m is None:
                continue
            return self._finding(r, m, block[:used]), used
        return None

    def _finding(self, r: CompiledRule, m: re.Match[str], block: list[Record]) -> Finding:
        groups = m.groupdict()
        v = verdict_of(r, groups)
        first = block[0]
        xid = groups.get("xid")
        node = self._node if self._node is not None or not self._node_from_host else first.host
        when: datetime | None = first.time
        return Finding(
            node=node,
            source=self._source,
            line=first.line,
            time=when,
            class_=v.class_,
            node_fault=v.node_fault,
            severity=v.severity,
            action=v.action,
            rule=r.rule.id,
            text="\n".join(rec.message for rec in block)[:MAX_TEXT_CHARS],
            xid=int(xid) if xid is not None and xid.isdigit() else None,
            gpu=normalize_gpu(_first(groups, "gpu")),
            peer=_first(groups, "peer"),
            first_seen=when,
            last_seen=when,
        )

    def _versions(self, rec: Record, hints: frozenset[int] | None) -> None:
        for i, extractor in enumerate(self._catalog.stack):
            if hints is not None and self._stack_offset + i not in hints:
                continue
            m = extractor.pattern.search(rec.message)
            if m is not None:
                for name, value in m.groupdict().items():
                    if value:
                        self.versions[name] = value


def _rank(rule: CompiledRule) -> tuple[int, int]:
    return rule.sort_key


def _first(groups: Mapping[str, str | None], name: str) -> str | None:
    for alias in _GROUP_ALIASES[name]:
        value = groups.get(alias)
        if value:
            return value
    return None


def classify_text(
    catalog: Catalog, text: str, *, source: str = "-", node: str | None = None
) -> list[Finding]:
    """Classify a whole text (tests, small inputs); the fast path for big inputs is the scanner."""
    clf = Classifier(catalog, source=source, node=node)
    return clf.feed_all(Line(i, t) for i, t in enumerate(text.split("\n"), start=1))
