"""Nothing of one test reaches Redis after the next test's reset (real CLI, real proxy)."""

from __future__ import annotations

import json
from pathlib import Path

SUITE = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis}
    seed:
      - cache.main.command: {cmd: FLUSHALL}
faults:
  slow_set: {target: cache.main, rules: [{delay: {command: SET, delay: 600ms}}]}
  unused: {target: cache.main, rules: [{error: {command: NOSUCHTHING}}]}
scenarios:
  write:
    steps:
      - cache.main.set: {key: leaked, value: "1"}
        timeout: 100ms
  look:
    steps:
      - sleep: 900ms
fault_scenarios:
  a_slow_write: {scenario: write, faults: slow_set, expect: ["not r.ok"]}
  b_later:
    scenario: look
    faults: unused
    expect:
      - assert_eq(cache.main.keys().data, [])
"""


def test_a_command_a_delay_still_holds_when_its_test_ends_is_dropped(cli, tmp_path: Path) -> None:
    """The step gives up after 100 ms; the delay would forward its SET 500 ms later, in
    the middle of the next test, after that test's reset."""
    suite = tmp_path / "leak.yaml"
    suite.write_text(SUITE)
    report = tmp_path / "report.json"
    result = cli(["run", str(suite), "--runtime", "embedded", "--json", str(report)])
    tests = {t["name"]: t for t in json.loads(report.read_text())["tests"]}
    assert tests["a_slow_write"]["status"] == "passed", tests["a_slow_write"]
    assert tests["b_later"]["status"] == "passed", tests["b_later"]["error"]
    assert result.returncode == 0, result.stdout + result.stderr


STATEFUL_ASSERTIONS = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis}
    seed:
      - cache.main.command: {cmd: FLUSHALL}
      - cache.main.set: {key: a, value: "1"}
scenarios:
  s1_select:
    steps: [{cache.main.ping: {}}]
    expect: ['cache.main.command(cmd="SELECT", args=["1"]).ok']
  s2_reads_db0:
    steps: [{cache.main.get: {key: a}}]
    expect: ['assert_eq(cache.main.get(key="a").data["value"], "1")']
  s3_subscribe:
    steps: [{cache.main.ping: {}}]
    expect: ['cache.main.command(cmd="SUBSCRIBE", args=["x"]).ok']
  s4_seeds_again:
    steps: [{cache.main.get: {key: a}}]
    expect: ['assert_eq(r.data["value"], "1")']
"""


def test_connection_state_set_by_an_assertion_does_not_reach_the_next_test(cli, tmp_path: Path) -> None:
    """Seeds and assertions share one direct connection per interface: SELECT 1 in one
    test's expect must not send the next seed to database 1, nor SUBSCRIBE refuse it."""
    suite = tmp_path / "stateful.yaml"
    suite.write_text(STATEFUL_ASSERTIONS)
    report = tmp_path / "report.json"
    result = cli(["run", str(suite), "--runtime", "embedded", "--json", str(report)])
    status = {t["name"]: (t["status"], t.get("error")) for t in json.loads(report.read_text())["tests"]}
    assert result.returncode == 0, (status, result.stdout)
    assert all(s == "passed" for s, _ in status.values()), status
