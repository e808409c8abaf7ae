"""An application that dies or never starts: the tests say so, with its exit status,
output and log, in every report (real CLI, real processes).

Decision (docs/services.md, "A service that dies during the run"): the test during
which a service died and every later test that needs it end as `error`, with the
service, its exit status, its last output and the log's path; tests that do not
need it still run.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

# Answers /health and /ok; /die ends the process with status 7 mid-request.
APP = """\
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/die":
            print("dying now", flush=True)
            os._exit(7)
        if self.path == "/noisy":
            for _ in range(3000):   # another test's megabytes must not drown ours
                print("N" * 60)
            sys.stdout.flush()
        print("served", self.path, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

print("app started", flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

SUITE = """\
version: 1
services:
  cache:
    interfaces: {main: {protocol: redis}}
  app:
    command: [python3, app.py]
    env: {PORT: "${self.api.port}"}
    interfaces: {api: {protocol: http, port: 8080}}
    healthcheck: {http: /health, timeout: 10s}
scenarios:
  a_noisy:
    steps:
      - app.api.get: {path: /noisy}
  b_own_output:
    steps:
      - app.api.get: {path: /ok}
    expect:
      - assert_true(False, "fails on purpose, to show its output")
  c_dies:
    steps:
      - app.api.get: {path: /die}
        allow_error: true
  d_needs_app:
    steps:
      - app.api.get: {path: /ok}
  e_cache_only:
    steps:
      - cache.main.ping: {}
  f_asks_app_in_expect:
    steps:
      - cache.main.ping: {}
    expect:
      - assert_eq(app.api.get(path="/ok").status, 200)
"""


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in report["tests"]}


def _log_paths(text: str) -> list[Path]:
    return [Path(line[len("log: "):]) for line in text.splitlines() if line.startswith("log: ")]


@pytest.fixture(scope="module")
def death_run(tmp_path_factory, cli):
    tmp = tmp_path_factory.mktemp("death")
    (tmp / "app.py").write_text(APP)
    (tmp / "suite.yaml").write_text(SUITE)
    result = cli(["run", str(tmp / "suite.yaml"), "--runtime", "embedded", "--json", str(tmp / "r.json"),
                  "--junit-xml", str(tmp / "r.xml")])
    report = json.loads((tmp / "r.json").read_text())
    yield result, report, ET.parse(tmp / "r.xml").getroot()
    for test in report["tests"]:  # the logs kept for the dead app
        for path in _log_paths(test["error"] or ""):
            shutil.rmtree(path.parent, ignore_errors=True)


def test_the_test_during_which_the_app_died_is_an_error_naming_it(death_run) -> None:
    result, report, _ = death_run
    died = _by_name(report)["c_dies"]
    assert died["status"] == "error", died
    assert "service 'app' exited with code 7 during the run" in died["error"]
    assert "dying now" in died["error"]  # the last lines of its output
    assert "dying now" in died["output"]
    assert result.returncode == 1
    assert "ERROR" in result.stdout and "exited with code 7" in result.stdout


def test_later_tests_that_need_the_app_error_with_the_same_message(death_run) -> None:
    _, report, _ = death_run
    tests = _by_name(report)
    for name in ("d_needs_app", "f_asks_app_in_expect"):
        assert tests[name]["status"] == "error", tests[name]
        assert tests[name]["error"] == tests["c_dies"]["error"]
        assert "dying now" in tests[name]["output"]
        assert tests[name]["steps"] == []  # not run against a dead app
    assert tests["e_cache_only"]["status"] == "passed"  # it does not need the app


def test_the_error_names_the_log_and_the_log_is_kept(death_run) -> None:
    _, report, _ = death_run
    (path,) = _log_paths(_by_name(report)["c_dies"]["error"])
    assert path.is_file(), "the log an error points at must still exist"
    assert "dying now" in path.read_text()


def test_output_is_what_the_test_added(death_run) -> None:
    _, report, _ = death_run
    own = _by_name(report)["b_own_output"]
    assert own["status"] == "failed"
    assert "served /ok" in own["output"]
    assert "N" * 60 not in own["output"]  # the previous test's output is not repeated


def test_junit_carries_the_error_and_the_output(death_run) -> None:
    _, _, root = death_run
    case = next(c for c in root.iter("testcase") if c.get("name") == "c_dies")
    error = case.find("error")
    assert error is not None and "exited with code 7" in error.get("message", "")
    assert "dying now" in case.findtext("system-err", "")


STARTUP_FAILURES = {
    "exits": ("[python3, -c, \"print('boom output'); raise SystemExit(3)\"]", "exited with code 3 during start-up"),
    "never_healthy": ("[python3, -c, \"print('boom output', flush=True); import time; time.sleep(60)\"]",
                      "did not become ready"),
}


@pytest.mark.parametrize("case", sorted(STARTUP_FAILURES))
def test_a_start_up_failure_reports_the_output_and_the_log(cli, tmp_path: Path, case: str) -> None:
    command, phrase = STARTUP_FAILURES[case]
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "version: 1\nservices:\n  app:\n"
        f"    command: {command}\n"
        "    interfaces: {api: {protocol: http, port: 8080}}\n"
        "    healthcheck: {http: /health, timeout: 1s}\n"
        "scenarios:\n  s:\n    steps:\n      - app.api.get: {path: /}\n"
    )
    report = tmp_path / "r.json"
    junit = tmp_path / "r.xml"
    result = cli(["run", str(suite), "--json", str(report), "--junit-xml", str(junit)])
    assert result.returncode == 3, result.stdout + result.stderr
    (test,) = json.loads(report.read_text())["tests"]
    assert test["status"] == "error" and phrase in test["error"]
    assert test["output"] is not None and "boom output" in test["output"]
    case_el = next(ET.parse(junit).getroot().iter("testcase"))
    assert "boom output" in case_el.findtext("system-err", "")
    (log,) = _log_paths(test["error"])
    try:
        assert log.is_file() and "boom output" in log.read_text()
    finally:
        shutil.rmtree(log.parent, ignore_errors=True)
