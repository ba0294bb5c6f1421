"""Reading runbooks: sections, the scenario they run against, and their console blocks.

A console block is a fenced ```console block. In it, a line starting `$ operatord ` is a command
(a trailing `# exit N` comment states its exit code, default 0) and the lines after it, up to the
next `$ ` line or the end of the block, are its documented output: stdout, then the
`operatord: ...` lines it writes to stderr (JSON log lines are left out). Other `$ ` lines
(kubectl, nvidia-smi), and `$ operatord` lines that need a real shell (a pipe, process
substitution, redirection), are for the reader and are not run. Placeholders stand for what differs
per run; a line `...` stands for any number of lines.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

SECTIONS = (
    "What fired",
    "What operatord did (and in which mode)",
    "Impact",
    "Verify",
    "Manual steps",
    "Undo",
    "Escalate",
)
PLACEHOLDERS = {
    "<time>": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:\+00:00|Z)?",
    "<rev>": r"[0-9a-f]{12}",
    "<user>": r"[A-Za-z0-9_.-]+",
    "<instance-id>": r"i-[0-9a-f]{8,17}",
    "<intent>": r"[0-9a-f]{12}",
    "<usd>": r"\d+\.\d\d",
    "<age>": r"\d+[smhd]",
    "<seconds>": r"\d+(?:\.\d+)?",
    "<key>": r"[a-z_]+-[0-9a-f]{12}",
}
_SCENARIO = re.compile(r"<!--\s*scenario:\s*([a-z0-9-]+)\b[^>]*-->")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_SHELL_ONLY = ("|", "<(", "$(", " > ", "&&")


@dataclass
class Command:
    args: list[str]
    exit_code: int
    expected: list[str]
    line: int  # 1-based line of the `$ operatord` in the runbook

    @property
    def text(self) -> str:
        return "operatord " + " ".join(self.args)


@dataclass
class Runbook:
    path: Path
    text: str
    scenario: str
    commands: list[Command] = field(default_factory=list)
    loose_commands: list[tuple[int, str]] = field(
        default_factory=list
    )  # `$ operatord` outside console blocks

    @property
    def name(self) -> str:
        return self.path.stem

    def headings(self) -> list[str]:
        return [m.group(1).strip() for m in re.finditer(r"^## (.+)$", self.text, flags=re.M)]


def parse(path: Path) -> Runbook:
    text = path.read_text()
    m = _SCENARIO.search(text)
    book = Runbook(path, text, m.group(1) if m else "healthy")
    for fence in _FENCE.finditer(text):
        lang, body = fence.group(1), fence.group(2)
        first_line = text.count("\n", 0, fence.start(2)) + 1
        lines = body.splitlines()
        if lang == "text":
            continue  # illustrative: a state the harness does not reproduce (runbooks/README.md)
        if lang != "console":
            for i, line in enumerate(lines):
                if line.startswith("$ operatord "):
                    book.loose_commands.append((first_line + i, line))
            continue
        current: Command | None = None
        for i, line in enumerate(lines):
            if line.startswith("$ "):
                current = None
                if line.startswith("$ operatord ") and not runnable_elsewhere(line):
                    m_exit = re.search(r"#\s*exit\s+(\d+)\s*$", line)
                    args = shlex.split(line[len("$ operatord ") :], comments=True)
                    current = Command(args, int(m_exit.group(1)) if m_exit else 0, [], first_line + i)
                    book.commands.append(current)
            elif current is not None:
                current.expected.append(line)
    return book


def runnable_elsewhere(line: str) -> bool:
    """A `$ operatord` line outside a console block is allowed only when it needs a real shell
    (pipes, process substitution, redirection) and so cannot run in the harness as written."""
    return any(token in line for token in _SHELL_ONLY)


def _norm(line: str) -> str:
    return " ".join(line.split())


def _pattern(expected: str) -> re.Pattern[str]:
    out, pos = [], 0
    text = _norm(expected)
    for m in re.finditer("|".join(re.escape(p) for p in PLACEHOLDERS), text):
        out.append(re.escape(text[pos : m.start()]))
        out.append(PLACEHOLDERS[m.group(0)])
        pos = m.end()
    out.append(re.escape(text[pos:]))
    return re.compile("".join(out))


def mismatch(expected: list[str], actual: list[str]) -> str | None:
    """None when `actual` matches `expected` line by line (placeholders, `...`, spacing
    collapsed, trailing blank lines ignored); else a readable difference."""

    def trim(lines: list[str]) -> list[str]:
        lines = list(lines)
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    exp, act = trim(expected), trim(actual)

    def match(i: int, j: int) -> bool:
        if i == len(exp):
            return j == len(act)
        if exp[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(act) + 1))
        return j < len(act) and bool(_pattern(exp[i]).fullmatch(_norm(act[j]))) and match(i + 1, j + 1)

    if match(0, 0):
        return None
    return "documented:\n  " + "\n  ".join(exp) + "\nactual:\n  " + "\n  ".join(act)
