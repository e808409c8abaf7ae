"""`redtest run` end to end: real CLI subprocess, real redis-server, real proxy.

Each suite file runs once per module (module fixtures) and the tests read the
JSON report and the terminal text, so one run checks many behaviours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
SUITES = HERE / "suites"
ROOT = HERE.parents[1]


def _run(cli, tmp: Path, *args: str) -> tuple[Any, dict[str, Any] | None]:
    report = tmp / "report.json"
    result = cli(["run", *args, "--runtime", "embedded", "--json", str(report)])
    data = json.loads(report.read_text()) if report.exists() else None
    return result, data


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in report["tests"]}


@pytest.fixture(scope="module")
def rules_run(tmp_path_factory, cli):
    tmp = tmp_path_factory.mktemp("rules")
    return _run(cli, tmp, str(SUITES / "rules.yaml"), "--random-seed", "7")


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory, cli):
    tmp = tmp_path_factory.mktemp("failing")
    # relative to the checkout (the CLI runs there): the terminal text this module reads
    # must not wrap differently with the length of the checkout's path
    return _run(cli, tmp, str((SUITES / "failing.yaml").relative_to(ROOT)))


RULE_TESTS = [
    "error_on_set", "response_nil", "response_integer", "delay_get", "delay_then_error",
    "drop_close", "drop_lose_reply", "drop_blackhole", "redis_down", "times_once",
]


@pytest.mark.parametrize("name", RULE_TESTS)
def test_each_rule_kind_behaves_as_specified(rules_run, name: str) -> None:
    result, report = rules_run
    assert report is not None, result.stderr
    test = _by_name(report)[name]
    failed = [a for a in test["assertions"] if not a["passed"]]
    assert test["status"] == "passed", (test["error"], failed, test["steps"])


def test_rules_suite_passes_and_reports_hits(rules_run) -> None:
    result, report = rules_run
    assert result.returncode == 0, result.stdout + result.stderr
    tests = _by_name(report)
    assert report["random_seed"] == 7
    assert "7" in result.stdout  # the seed is printed so a run can be repeated
    once = tests["times_once"]["faults"][0]
    assert once["name"] == "once" and once["rules"][0]["hits"] == 1
    slow = tests["delay_get"]["faults"][0]
    assert slow["rules"][0]["hits"] == 2  # two GETs went through the delay
    assert tests["write_read"]["faults"] == []  # plain scenarios run without faults


def test_plain_scenarios_run_without_faults(rules_run) -> None:
    _, report = rules_run
    tests = _by_name(report)
    for name in ("write_read", "counter", "read_twice"):
        assert tests[name]["status"] == "passed", tests[name]


def test_failures_fail_the_run_with_detail(failing_run) -> None:
    result, report = failing_run
    assert result.returncode == 1
    tests = _by_name(report)
    status = {name: t["status"] for name, t in tests.items()}
    assert status == {
        "a_passes": "passed",
        "b_seed_was_reset": "passed",
        "c_wrong_value": "failed",
        "d_step_fails": "failed",
        "e_step_error_allowed": "passed",
        "f_step_expect_fails": "failed",
        "g_bare_expression": "passed",
        "h_fault_passes": "passed",
    }
    wrong = tests["c_wrong_value"]["assertions"][0]
    assert wrong["passed"] is False
    assert "expected 0, got 3" in wrong["detail"]
    assert wrong["message"] == "counter starts at zero"
    assert wrong["source"] == 'assert_eq(int(r.data["value"]), 0, "counter starts at zero")'
    # the terminal shows the expression, both values, the message and file:line
    out = result.stdout
    assert 'assert_eq(int(r.data["value"]), 0, "counter starts at zero")' in out
    assert "expected 0, got 3" in out
    assert "failing.yaml:35" in out
    # a failed step stops the scenario: the second step never ran
    assert len(tests["d_step_fails"]["steps"]) == 1
    assert "unknown command" in tests["d_step_fails"]["error"].lower()


def test_keyword_selection(cli, tmp_path) -> None:
    result, report = _run(cli, tmp_path, str(SUITES / "failing.yaml"), "-k", "seed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [t["name"] for t in report["tests"]] == ["b_seed_was_reset"]


def test_keyword_glob_selection(cli, tmp_path) -> None:
    result, report = _run(cli, tmp_path, str(SUITES / "failing.yaml"), "-k", "[ab]_*")
    assert result.returncode == 0
    assert [t["name"] for t in report["tests"]] == ["a_passes", "b_seed_was_reset"]


def test_tag_selection(cli, tmp_path) -> None:
    result, report = _run(cli, tmp_path, str(SUITES / "failing.yaml"), "--tag", "bad")
    assert result.returncode == 1
    assert sorted(t["name"] for t in report["tests"]) == ["c_wrong_value", "d_step_fails", "f_step_expect_fails"]


def test_fail_fast_stops_after_first_failure(cli, tmp_path) -> None:
    result, report = _run(cli, tmp_path, str(SUITES / "failing.yaml"), "-x")
    assert result.returncode == 1
    status = [(t["name"], t["status"]) for t in report["tests"]]
    assert status[:3] == [("a_passes", "passed"), ("b_seed_was_reset", "passed"), ("c_wrong_value", "failed")]
    assert all(s == "skipped" for _, s in status[3:]) and len(status) == 8


def test_no_test_selected_is_a_usage_error(cli, tmp_path) -> None:
    result, _ = _run(cli, tmp_path, str(SUITES / "failing.yaml"), "-k", "no-such-test")
    assert result.returncode == 2
    assert "no tests selected" in result.stderr


def test_matrix_runs_every_scenario_under_every_fault(cli, tmp_path) -> None:
    result, report = _run(cli, tmp_path, str(SUITES / "failing.yaml"), "--matrix", "-k", "a_passes*")
    names = sorted(t["name"] for t in report["tests"])
    assert names == ["a_passes", "a_passes[readonly]"]
    cell = _by_name(report)["a_passes[readonly]"]
    assert cell["kind"] == "matrix" and cell["status"] == "failed"  # the SET step fails under READONLY
    table = result.stdout.split("matrix: scenario × fault", 1)[1]
    header = next(line for line in table.splitlines() if "no fault" in line)
    assert "readonly" in header
    row = next(line for line in table.splitlines() if "a_passes" in line)
    assert row.index("PASS") < row.index("FAIL")  # passes without the fault, fails with it
    assert report["matrix"] is True


def test_invalid_file_exit_2_before_starting_anything(cli, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nscenarios:\n  s:\n    steps:\n      - cache.main.get: {key: a}\n")
    result = cli(["run", str(bad)])
    assert result.returncode == 2
    assert f"{bad}:5:9" in result.stderr and "unknown service 'cache'" in result.stderr
    assert "Traceback" not in result.stderr


def test_report_path_under_a_file_is_a_usage_error_before_running(cli, tmp_path) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "report.json"
    result = cli(["run", str(SUITES / "failing.yaml"), "-k", "a_passes", "--json", str(target)])
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot write the JSON report to {target}" in result.stderr
    assert "is a file, not a folder" in result.stderr
    assert "passed" not in result.stdout  # refused before anything ran
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_report_that_fails_to_write_is_reported_and_others_are_written(cli, tmp_path) -> None:
    junit = tmp_path / "junit.xml"
    result = cli(
        ["run", str(SUITES / "failing.yaml"), "-k", "a_passes", "--runtime", "embedded",
         "--json", "/dev/full", "--junit-xml", str(junit)]
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot write the JSON report to /dev/full: No space left on device." in result.stderr
    assert "internal error" not in result.stderr
    assert "<testsuites" in junit.read_text()


def test_down_takes_the_rule_modifiers(cli, tmp_path) -> None:
    suite = tmp_path / "down.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n  cache: {interfaces: {main: {protocol: redis}}}\n"
        "faults:\n  blip:\n    target: cache.main\n    rules:\n"
        "      - down: {times: 1, after: 0, probability: 1, client: '*', for: 5s}\n"
        "scenarios:\n  s:\n    steps:\n      - cache.main.ping: {}\n"
        "fault_scenarios:\n  one_blip:\n    scenario: s\n    faults: blip\n"
        "    expect:\n      - assert_false(steps[0].ok)\n"
        "      - assert_eq(cache.main.ping().data['value'], 'PONG')\n"
    )
    result, report = _run(cli, tmp_path, str(suite))
    assert result.returncode == 0, result.stdout + result.stderr
    hits = _by_name(report)["one_blip"]["faults"][0]["rules"][0]["hits"]
    assert hits == 1


def test_a_template_orders_services_like_depends_on(cli, tmp_path) -> None:
    # front is declared first and has no depends_on, but its env names back's address
    suite = tmp_path / "order.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n"
        "  front:\n"
        "    command: [python3, -c, 'import time; time.sleep(60)']\n"
        "    env: {BACK_URL: '${back.api.url}'}\n"
        "  back:\n"
        "    command: [python3, -m, http.server, '${self.api.port}', --bind, 127.0.0.1]\n"
        "    interfaces: {api: {protocol: http, port: 8080}}\n"
        "    healthcheck: {http: /, timeout: 20s}\n"
        "scenarios:\n  s:\n    steps:\n      - back.api.get: {path: /}\n"
        "    expect:\n      - assert_eq(r.status, 200)\n"
    )
    assert cli(["validate", str(suite)]).returncode == 0
    result, report = _run(cli, tmp_path, str(suite))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [s["name"] for s in report["services"]] == ["back", "front"]


def test_a_fault_scenario_is_judged_by_its_own_expect_only(cli, tmp_path) -> None:
    suite = tmp_path / "stepexpect.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n  cache: {interfaces: {main: {protocol: redis}}}\n"
        "faults:\n  set_fails:\n    target: cache.main\n    rules:\n"
        "      - error: {command: SET, message: READONLY}\n"
        "scenarios:\n  sc:\n    steps:\n"
        "      - cache.main.set: {key: k, value: v}\n"
        "        expect: ['assert_eq(r.data, {\"value\": \"OK\"})']\n"
        "      - cache.main.get: {key: k}\n"
        "fault_scenarios:\n  fs:\n    scenario: sc\n    faults: set_fails\n"
        "    expect:\n      - assert_false(steps[0].ok)\n      - assert_eq(len(steps), 2)\n"
    )
    result, report = _run(cli, tmp_path, str(suite))
    assert result.returncode == 0, result.stdout + result.stderr
    fs = _by_name(report)["fs"]
    assert fs["status"] == "passed"
    assert [a["passed"] for a in fs["assertions"]] == [True, True]
    assert _by_name(report)["sc"]["status"] == "passed"  # without the fault the step expect holds


def test_a_failed_step_is_named_as_in_expressions(cli, tmp_path) -> None:
    suite = tmp_path / "stepfail.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n  cache: {interfaces: {main: {protocol: redis}}}\n"
        "scenarios:\n  sc:\n    steps:\n"
        "      - cache.main.ping: {}\n"
        "      - cache.main.command: {cmd: NOSUCHCOMMAND}\n"
    )
    result, report = _run(cli, tmp_path, str(suite))
    assert result.returncode == 1
    assert "steps[1] (cache.main.command) failed" in _by_name(report)["sc"]["error"]


def test_matrix_reaches_a_scenario_through_its_application(cli, tmp_path) -> None:
    # The scenario only calls the app; the app reaches Redis through the proxy.
    suite = tmp_path / "through_app.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n"
        "  cache: {interfaces: {main: {protocol: redis}}}\n"
        "  other: {interfaces: {main: {protocol: redis}}}\n"
        "  app:\n"
        "    command: [python3, -m, http.server, '${self.api.port}']\n"
        "    env: {REDIS_URL: '${cache.main.url}'}\n"
        "    interfaces: {api: {protocol: http, port: 8080}}\n"
        "faults:\n"
        "  cache_down: {target: cache.main, rules: [{down: {}}]}\n"
        "  other_down: {target: other.main, rules: [{down: {}}]}\n"
        "scenarios:\n  browse:\n    steps:\n      - app.api.get: {path: /}\n"
    )
    result = cli(["list", "--matrix", str(suite)])
    assert result.returncode == 0, result.stderr
    assert "::browse[cache_down]" in result.stdout
    assert "other_down" not in result.stdout  # the app does not use it


def test_service_start_failure_is_exit_3(cli, tmp_path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'no redis here' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = cli(
        ["run", str(SUITES / "failing.yaml"), "--runtime", "local", "-k", "a_passes"],
        env={"REDTEST_REDIS_SERVER": str(fake)},
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cache" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def _stale_reports(tmp_path: Path) -> dict[str, Path]:
    reports = {"--json": tmp_path / "r.json", "--junit-xml": tmp_path / "r.xml", "--html": tmp_path / "r.html"}
    reports["--json"].write_text('{"earlier": "run"}')
    reports["--junit-xml"].write_text('<?xml version="1.0"?><testsuites/>')
    reports["--html"].write_text("<!DOCTYPE html><html></html>")
    return reports


def test_a_report_option_never_replaces_a_suite(cli, tmp_path) -> None:
    """`--json a.yaml b.yaml`: the report's own name forgotten, the option takes a suite;
    it must not be deleted (nor overwritten), and nothing runs."""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for suite in (a, b):
        suite.write_text("version: 1\nscenarios: {s: {steps: [{sleep: 1ms}]}}\n")
    result = cli(["run", "--json", str(a), str(b)])
    assert result.returncode == 2 and "is not a JSON report" in result.stderr, result.stderr
    result = cli(["run", str(b), "--junit-xml", str(b)])
    assert result.returncode == 2 and "is a suite file of this run" in result.stderr, result.stderr
    assert a.read_text().startswith("version: 1") and b.read_text().startswith("version: 1")


def test_a_run_that_writes_no_report_leaves_no_earlier_one(cli, tmp_path) -> None:
    # Decision (docs/reports.md): report paths are emptied when a run starts, so a report
    # on disk is always this run's, or none when it ended early.
    reports = _stale_reports(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nscenarios: {s: {steps: [{nope.main.get: {key: a}}]}}\n")
    args = [x for flag, path in reports.items() for x in (flag, str(path))]
    result = cli(["run", str(bad), *args])
    assert result.returncode == 2
    assert [p for p in reports.values() if p.exists()] == []


def test_ctrl_c_leaves_no_earlier_report(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    reports = _stale_reports(tmp_path)
    suite = tmp_path / "slow.yaml"
    started = tmp_path / "started"
    suite.write_text(
        "version: 1\nservices:\n  app:\n"
        f"    command: [python3, -c, \"open('{started}', 'w').close(); import time; time.sleep(60)\"]\n"
        "scenarios:\n  slow:\n    steps:\n      - sleep: 60s\n"
    )
    args = [x for flag, path in reports.items() for x in (flag, str(path))]
    proc = subprocess.Popen([sys.executable, "-m", "redtest", "run", str(suite), *args],
                            env=dict(os.environ, NO_COLOR="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # into the sleep step
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert [p for p in reports.values() if p.exists()] == []
