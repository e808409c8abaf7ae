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
