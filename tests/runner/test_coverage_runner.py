"""Runner branches no other test reached, driven through the real CLI.

- --keep-services and an application that could not even be spawned: its (empty) log
  folder is named by no message, so it must not be left behind.
- A Ctrl-C while the services of a finished suite stop: the stop is hurried (SIGKILL
  at once, not after the grace period), the run ends with 130 and the next suite is
  never started.
- A local Redis server that dies during the run: the test during which it died and
  every later one that needs it error, naming the service and its exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from process_support import processes_under

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "service",
    [
        "    command: [python3, -c, 'pass']\n    workdir: no-such-folder\n",
        "    command: [no-such-program-for-redtest]\n",
    ],
    ids=["missing-workdir", "missing-program"],
)
def test_keep_services_leaves_no_log_folder_of_an_app_that_never_ran(cli, tmp_path: Path, service: str) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        f"version: 1\nservices:\n  app:\n{service}"
        "scenarios:\n  t1:\n    steps:\n      - sleep: 1ms\n"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = cli(["run", str(suite), "--keep-services"], env={"TMPDIR": str(tmp)})
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"{suite}:3:3: service 'app': " in result.stdout
    assert "log:" not in result.stdout  # no log is named: there was none
    assert list(tmp.iterdir()) == []


def test_ctrl_c_while_a_finished_suite_stops_hurries_and_ends_the_run(tmp_path: Path) -> None:
    # a.yaml runs first; its app ignores SIGTERM, so a normal stop waits out the grace period
    (tmp_path / "a.yaml").write_text(
        "version: 1\nservices:\n  app:\n    command: [python3, -c, "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']\n"
        "scenarios:\n  t1:\n    steps:\n      - sleep: 1ms\n"
    )
    (tmp_path / "b.yaml").write_text(
        "version: 1\nservices:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"
        "scenarios:\n  t2:\n    steps:\n      - cache.main.ping: {}\n"
    )
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "redtest", "run", ".", "--runtime", "local"], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "PASS  a.yaml::t1" in line, line
        time.sleep(0.5)  # the suite's cleanup is now waiting for the app to exit
        assert processes_under(tmp_path), "the app is still being stopped"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert took < 3, f"the stop was not hurried: {took:.1f}s (grace period 5 s)"
    assert err.strip() == "interrupted: everything redtest started has been stopped", err
    assert "b.yaml" not in out  # the next suite never started
    assert processes_under(tmp_path) == []
    assert not list(tmp_path.glob("redtest-*")), list(tmp_path.iterdir())


def test_a_local_redis_server_that_dies_during_the_run_errors_its_tests(cli, tmp_path: Path) -> None:
    suite = tmp_path / "dies.yaml"
    suite.write_text(
        "version: 1\nservices:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"
        "scenarios:\n"
        "  t1:\n    steps:\n      - cache.main.command: {cmd: SHUTDOWN, args: [NOSAVE]}\n"
        "  t2:\n    steps:\n      - cache.main.ping: {}\n"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    result = cli(
        ["run", str(suite), "--runtime", "local", "--junit-xml", str(junit), "--json", str(report)],
        env={"TMPDIR": str(tmp)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    tests = json.loads(report.read_text())["tests"]
    assert [t["status"] for t in tests] == ["error", "error"]
    for test in tests:
        assert test["error"].startswith(
            f"{suite}:3:3: service 'cache' (runtime local) stopped during the run: "
            "the process exited with status 0; output:\n"
        ), test["error"]
        assert "User requested shutdown" in test["error"]
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert [c.find("error") is not None for c in cases] == [True, True]
    assert list(tmp.iterdir()) == []  # the dead server's folder is removed all the same
