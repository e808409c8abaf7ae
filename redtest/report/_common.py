"""Helpers every reporter shares: counts, grouping, fault and step summaries, the matrix grid."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from redtest.results import AssertionResult, FaultActivation, RunResult, StepResult, TestResult

# A step at least this slow is marked in every report. Redis calls on loopback take
# about a millisecond, so 250 ms means something (a delay fault, a stalled app) held it up.
SLOW_STEP_MS = 250

# ANSI sequences (CSI and OSC) that applications print; they would recolour our output
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# control characters (not tab/newline), DEL, C1 and lone surrogates: invalid in XML, invisible
# in a terminal; and the bidi embeddings, overrides and isolates (U+202A-E, U+2066-9): a value
# holding one would show the rest of its line reversed ("Trojan Source"). RTL text itself stays.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")

STATUS_WORD = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}


@dataclass
class Counts:
    """How many tests ended in each status."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0
    duration_s: float = 0.0

    def add(self, result: TestResult) -> None:
        self.total += 1
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.duration_s += result.duration_s

    def phrase(self) -> str:
        """'3 passed, 1 failed, 1 error' — zero counts are left out, like pytest does."""
        parts = [f"{self.passed} passed"] if self.passed or not self.total else []
        for word, n in (("failed", self.failed), ("error", self.error), ("skipped", self.skipped)):
            if n:
                parts.append(f"{n} {'errors' if word == 'error' and n > 1 else word}")
        return ", ".join(parts) if self.total else "no tests ran"


def count(tests: list[TestResult]) -> Counts:
    out = Counts()
    for t in tests:
        out.add(t)
    return out


def by_file(tests: list[TestResult]) -> dict[str, list[TestResult]]:
    """Tests grouped by their file, files and tests in run order."""
    groups: dict[str, list[TestResult]] = {}
    for t in tests:
        groups.setdefault(t.test.file, []).append(t)
    return groups


def clean(text: str) -> str:
    """Drop ANSI colour codes and make other control characters visible as \\xNN escapes."""
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def fmt_duration(seconds: float) -> str:
    """12 ms below a second, 1.23 s above."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def is_slow(step: StepResult) -> bool:
    # a sleep step is slow on purpose; marking it would hide the steps that matter
    return step.label != "sleep" and step.response.duration_ms >= SLOW_STEP_MS


def hits_phrase(n: int) -> str:
    return f"{n} hit" if n == 1 else f"{n} hits"


def fault_summary(fault: FaultActivation) -> str:
    """'set_fails@cache.main (error(command=SET, message=READONLY): 2 hits)'."""
    rules = "; ".join(f"{r.rule}: {hits_phrase(r.hits)}" for r in fault.rules)
    return f"{fault.name}@{fault.target} ({rules})" if rules else f"{fault.name}@{fault.target}"


def faults_line(result: TestResult) -> str:
    """Active faults with hit counts, or the planned fault names when none was activated."""
    if result.faults:
        return clean(", ".join(fault_summary(f) for f in result.faults))
    return clean(", ".join(result.test.faults))


def failed_assertions(result: TestResult) -> list[AssertionResult]:
    """Failed step-level expectations (in step order), then failed test-level ones."""
    out = [a for s in result.steps for a in s.assertions if not a.passed]
    out.extend(a for a in result.assertions if not a.passed)
    return out


def assertion_lines(a: AssertionResult) -> list[str]:
    """The parts of a failed assertion worth showing, each on its own line."""
    lines = [f"{a.loc.file}:{a.loc.line}: {a.source}"]
    if a.detail:
        lines.append(a.detail)
    if a.message:
        lines.append(f"message: {a.message}")
    if a.error:
        lines.append(f"raised: {a.error}")
    return [clean(line) for line in lines]


def short(value: Any, limit: int = 120) -> str:
    """A compact one-line JSON-ish rendering, cut at `limit` characters."""
    try:
        text = json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def response_text(step: StepResult, limit: int = 120) -> str:
    """'error: READONLY ...' for failed steps, else the data (plus the HTTP status)."""
    r = step.response
    if not r.ok:
        return clean(f"error: {r.error or 'failed'}")
    prefix = f"{r.status} " if r.status is not None else ""
    return prefix + short(r.data, limit)


def args_text(step: StepResult, limit: int = 80) -> str:
    if not step.args:
        return ""
    return short(step.args, limit)


def step_log(result: TestResult) -> str:
    """A plain-text log of every step: index, call, args, response, duration."""
    lines = []
    for s in result.steps:
        slow = "  [SLOW]" if is_slow(s) else ""
        name = f" as {s.as_name}" if s.as_name else ""
        lines.append(
            f"[{s.index}] {s.label} {args_text(s, 200)}{name} -> {response_text(s, 200)}"
            f" ({s.response.duration_ms} ms){slow}"
        )
        lines.extend(f"    expect failed: {a.source} ({a.detail or a.error or ''})" for a in s.assertions if not a.passed)
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """Turn what clients return (bytes, tuples, sets, odd keys, NaN) into plain JSON values."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=repr)
    return repr(value)


@dataclass
class Matrix:
    """The scenario × fault grid of a --matrix run; a cell is the status of one test."""

    rows: list[tuple[str, str]] = field(default_factory=list)  # (file, scenario)
    columns: list[str] = field(default_factory=list)  # fault names, in first-seen order
    cells: dict[tuple[tuple[str, str], str], TestResult] = field(default_factory=dict)
    baseline: dict[tuple[str, str], TestResult] = field(default_factory=dict)  # no fault

    def row_label(self, row: tuple[str, str]) -> str:
        # the bare scenario name is enough unless two files share it
        same = [r for r in self.rows if r[1] == row[1]]
        return row[1] if len(same) == 1 else f"{row[0]}::{row[1]}"


def matrix_grid(result: RunResult) -> Matrix | None:
    """Build the grid from matrix cells (kind "matrix"); None when the run has none."""
    grid = Matrix()
    for t in result.tests:
        if t.test.kind != "matrix":
            continue
        row = (t.test.file, t.test.scenario)
        if row not in grid.rows:
            grid.rows.append(row)
        fault = "+".join(t.test.faults) or "(none)"
        if fault not in grid.columns:
            grid.columns.append(fault)
        grid.cells[(row, fault)] = t
    if not grid.rows:
        return None
    for t in result.tests:
        key = (t.test.file, t.test.name)
        if t.test.kind == "scenario" and key in grid.rows:
            grid.baseline[key] = t
    return grid
