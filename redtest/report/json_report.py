"""The JSON report: a stable shape, documented in docs/json-report.md and
redtest/schemas/report.schema.json. Add fields freely; never rename or remove one
without bumping FORMAT_VERSION."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from redtest.errors import Location
from redtest.report._common import count, is_slow, jsonable
from redtest.results import (
    AssertionResult,
    FaultActivation,
    RunResult,
    ServiceInfo,
    StepResult,
    TestResult,
)

FORMAT_VERSION = 1


def write_json(result: RunResult, path: str | os.PathLike[str]) -> None:
    """Write the run as JSON (UTF-8, indented) to `path` (parent folders are created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_json_dict(result), indent=2, ensure_ascii=False, allow_nan=False)
    # lone surrogates (undecodable bytes) cannot be written as UTF-8; escape them instead
    target.write_text(text + "\n", encoding="utf-8", errors="backslashreplace")


def to_json_dict(result: RunResult) -> dict[str, Any]:
    """The report as plain JSON values."""
    c = count(result.tests)
    return {
        "format": "redtest-report",
        "format_version": FORMAT_VERSION,
        "redtest_version": result.version,
        "started_at": result.started_at,
        "duration_s": round(result.duration_s, 6),
        "random_seed": result.random_seed,
        "matrix": result.matrix,
        "passed": result.passed,
        "counts": {"total": c.total, "passed": c.passed, "failed": c.failed,
                   "error": c.error, "skipped": c.skipped},
        "services": [_service(s) for s in result.services],
        "tests": [_test(t) for t in result.tests],
    }


def _loc(loc: Location) -> dict[str, Any]:
    return {"file": loc.file, "line": loc.line, "col": loc.col}


def _service(s: ServiceInfo) -> dict[str, Any]:
    return {"name": s.name, "kind": s.kind, "runtime": s.runtime, "endpoints": dict(s.endpoints),
            "proxies": dict(s.proxies), "detail": s.detail, "file": s.file}


def _fault(f: FaultActivation) -> dict[str, Any]:
    return {"name": f.name, "target": f.target,
            "rules": [{"rule": r.rule, "hits": r.hits} for r in f.rules],
            "hits": sum(r.hits for r in f.rules)}


def _assertion(a: AssertionResult) -> dict[str, Any]:
    return {"source": a.source, "location": _loc(a.loc), "passed": a.passed, "detail": a.detail,
            "message": a.message, "error": a.error}


def _step(s: StepResult) -> dict[str, Any]:
    return {"index": s.index, "label": s.label, "args": jsonable(s.args), "as": s.as_name,
            "location": _loc(s.loc), "response": jsonable(s.response.to_dict()),
            "slow": is_slow(s), "assertions": [_assertion(a) for a in s.assertions]}


def _test(t: TestResult) -> dict[str, Any]:
    p = t.test
    return {
        "id": p.id, "name": p.name, "file": p.file, "kind": p.kind, "scenario": p.scenario,
        "location": _loc(p.loc), "description": p.description, "tags": list(p.tags),
        "status": t.status, "duration_s": round(t.duration_s, 6),
        "fault_names": list(p.faults),
        "faults": [_fault(f) for f in t.faults],
        "steps": [_step(s) for s in t.steps],
        "assertions": [_assertion(a) for a in t.assertions],
        "error": t.error, "skip_reason": t.skip_reason, "output": t.output,
    }
