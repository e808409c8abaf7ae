"""A synthetic run with every kind of outcome, to preview the reports without services.

    python -m redtest.report.demo [OUTDIR]

prints the terminal report and writes OUTDIR/report.xml, report.json and report.html
(OUTDIR defaults to redtest-demo-report). The report tests use the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from redtest.clients.response import Response
from redtest.errors import Location
from redtest.results import (
    AssertionResult,
    FaultActivation,
    PlannedTest,
    RuleHits,
    RunResult,
    ServiceInfo,
    StepResult,
    TestResult,
)

BASIC = "scenarios/basic.yaml"
APP = "scenarios/app.yaml"


def _planned(file: str, name: str, kind: str = "scenario", scenario: str | None = None,
             faults: tuple[str, ...] = (), line: int = 10, **kw: object) -> PlannedTest:
    return PlannedTest(id=f"{file}::{name}", name=name, file=file, kind=kind,  # type: ignore[arg-type]
                       scenario=scenario or name, faults=faults, loc=Location(file, line, 3), **kw)  # type: ignore[arg-type]


def _step(file: str, index: int, label: str, args: dict[str, Any], response: Response, line: int,
          as_name: str | None = None, assertions: list[AssertionResult] | None = None) -> StepResult:
    return StepResult(index=index, label=label, args=args, response=response,
                      loc=Location(file, line, 9), as_name=as_name, assertions=assertions or [])


def sample_run() -> RunResult:
    """passed, failed (fault scenario, slow step), error (with app output), skipped, matrix cells."""
    counter_steps = [
        _step(BASIC, 0, "cache.main.set", {"key": "counter", "value": "0"}, Response({"value": "OK"}, duration_ms=1), 12),
        _step(BASIC, 1, "cache.main.incr", {"key": "counter"}, Response({"value": 1}, duration_ms=1), 13),
        _step(BASIC, 2, "cache.main.get", {"key": "counter"}, Response({"value": "1"}, duration_ms=2), 14, as_name="r"),
    ]
    passed = TestResult(
        test=_planned(BASIC, "counter_increments", description='INCR turns "0" into "1"', tags=("smoke",)),
        status="passed", duration_s=0.021, steps=counter_steps,
        assertions=[AssertionResult('assert_eq(r.data["value"], "1")', Location(BASIC, 17, 9), True)],
    )
    failed_steps = [
        _step(BASIC, 0, "cache.main.set", {"key": "counter", "value": "0"},
              Response(None, ok=False, error="READONLY You can't write against a read only replica.", duration_ms=3), 12),
        _step(BASIC, 1, "cache.main.incr", {"key": "counter"}, Response({"value": 1}, duration_ms=2), 13),
        _step(BASIC, 2, "cache.main.get", {"key": "counter"}, Response({"value": "1"}, duration_ms=512), 14, as_name="r"),
    ]
    failed = TestResult(
        test=_planned(BASIC, "incr_when_writes_fail", kind="fault_scenario", scenario="counter_increments",
                      faults=("set_fails", "slow_reads"), line=22),
        status="failed", duration_s=0.534, steps=failed_steps,
        assertions=[
            AssertionResult("assert_false(steps[0].ok)", Location(BASIC, 26, 9), True),
            AssertionResult('assert_eq(cache.main.get(key="counter").data["value"], None, "<no> counter & stale")',
                            Location(BASIC, 27, 9), False, detail="expected None, got '1'",
                            message="<no> counter & stale"),
        ],
        faults=[
            FaultActivation("set_fails", "cache.main", [RuleHits("error(command=SET, message=READONLY)", 1)]),
            FaultActivation("slow_reads", "cache.main", [RuleHits("delay(command=GET, delay=500ms)", 2)]),
        ],
        error="1 of 2 expectations failed",
    )
    errored = TestResult(
        test=_planned(APP, "no_stale_cache", kind="fault_scenario", scenario="create_order",
                      faults=("redis_down",), line=40),
        status="error", duration_s=1.5,
        error="service app exited with status 1 before the test ended",
        output="Traceback (most recent call last):\n  File \"app.py\", line 3\nConnectionError: \x1b[31mredis down\x1b[0m\x00",
        faults=[FaultActivation("redis_down", "cache.main", [RuleHits("down()", 0)])],
    )
    skipped = TestResult(test=_planned(APP, "create_order", line=30), status="skipped", duration_s=0.0,
                         skip_reason="deselected by --tag smoke")
    cells = [
        TestResult(test=_planned(BASIC, "counter_increments[set_fails]", kind="matrix", scenario="counter_increments",
                                 faults=("set_fails",)), status="failed", duration_s=0.01,
                   assertions=[AssertionResult('assert_eq(r.data["value"], "1")', Location(BASIC, 17, 9), False,
                                               detail="expected '1', got None")],
                   faults=[FaultActivation("set_fails", "cache.main", [RuleHits("error(command=SET, message=READONLY)", 1)])]),
        TestResult(test=_planned(BASIC, "counter_increments[slow_reads]", kind="matrix", scenario="counter_increments",
                                 faults=("slow_reads",)), status="passed", duration_s=0.52,
                   faults=[FaultActivation("slow_reads", "cache.main", [RuleHits("delay(command=GET, delay=500ms)", 1)])]),
    ]
    services = [
        ServiceInfo("cache", "redis", "docker", {"main": "127.0.0.1:32768"}, {"main": "127.0.0.1:40001"}, "c0ffee",
                    file=BASIC),
        ServiceInfo("app", "process", "process", {"api": "127.0.0.1:8081"}, detail="pid 4242"),
    ]
    return RunResult(version="0.1.0", started_at="2026-11-26T14:05:15.123456+00:00", duration_s=2.75,
                     random_seed=1234, services=services,
                     tests=[passed, failed, errored, skipped, *cells], matrix=True)


def main(argv: list[str] | None = None) -> int:
    """Print the terminal report of the sample run and write the three report files."""
    from redtest.report import ConsoleReporter, make_console, write_html, write_json, write_junit

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "redtest-demo-report")
    run = sample_run()
    rep = ConsoleReporter(make_console(no_color=False), matrix=True)
    rep.run_started([t.test for t in run.tests], run.random_seed)
    rep.services_ready(run.services)
    for t in run.tests:
        rep.test_started(t.test)
        rep.test_finished(t)
    rep.run_finished(run)
    write_junit(run, out / "report.xml")
    write_json(run, out / "report.json")
    write_html(run, out / "report.html")
    print(f"wrote {out / 'report.xml'}, {out / 'report.json'}, {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
