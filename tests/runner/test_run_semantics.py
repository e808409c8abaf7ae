"""What a run means (SPEC §3–§6): real CLI subprocess, embedded redis-server, real proxy."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

COIN_SUITE = """\
version: 1
services:
  cache: {interfaces: {main: {protocol: redis}}}
faults:
  coin:
    target: cache.main
    rules:
      - error: {command: PING, probability: 0.5}
scenarios:
  pings:
    steps:
""" + "      - cache.main.ping: {}\n" * 24 + """\
    expect: ['True']
fault_scenarios:
  flaky:
    scenario: pings
    faults: coin
    expect: ['True']
"""


def _report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _pattern(report: dict[str, Any], name: str) -> list[bool]:
    test = next(t for t in report["tests"] if t["name"] == name)
    return [s["response"]["ok"] for s in test["steps"]]


def test_random_seed_repeats_a_run_however_the_path_is_written(cli, tmp_path) -> None:
    """`rerun with --random-seed N` must give the same faults from another folder or with
    an absolute path: the per-test seed may not depend on how the file was named."""
    folder = tmp_path / "suites"
    folder.mkdir()
    (folder / "coin.yaml").write_text(COIN_SUITE)
    patterns = []
    for cwd, path in ((folder, "coin.yaml"), (tmp_path, "suites/coin.yaml"), (tmp_path, str(folder / "coin.yaml"))):
        report = tmp_path / f"report{len(patterns)}.json"
        result = cli(
            ["run", path, "--runtime", "embedded", "--random-seed", "11", "--json", str(report)], cwd=cwd
        )
        assert result.returncode == 0, result.stdout + result.stderr
        patterns.append(_pattern(_report(report), "flaky"))
    assert False in patterns[0] and True in patterns[0]  # the rule is really random
    assert patterns[1] == patterns[0]
    assert patterns[2] == patterns[0]


STEP_EXPECT_SUITE = """\
version: 1
services:
  cache: {interfaces: {main: {protocol: redis}}}
faults:
  down:
    target: cache.main
    rules:
      - down: {}
scenarios:
  counts:
    steps:
      - cache.main.incr: {key: n}
        expect:
          - assert_eq(r.data["value"], 1)
    expect: [r.ok]
"""


def test_a_failed_step_is_the_reason_not_its_expect(cli, tmp_path) -> None:
    """A step that fails (no allow_error) fails the test; its own `expect` would only judge
    a response that never came, and its failure hid the step's error in every report."""
    suite = tmp_path / "stepexp.yaml"
    suite.write_text(STEP_EXPECT_SUITE)
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    result = cli(
        ["run", str(suite), "--runtime", "embedded", "--matrix", "--json", str(report), "--junit-xml", str(junit)]
    )
    assert result.returncode == 1, result.stdout + result.stderr
    cell = next(t for t in _report(report)["tests"] if t["name"] == "counts[down]")
    assert cell["status"] == "failed"
    assert "steps[0] (cache.main.incr) failed:" in cell["error"]
    assert cell["steps"][0]["assertions"] == []
    failure = next(
        case.find("failure") for case in ET.parse(junit).iter("testcase") if case.get("name") == "counts[down]"
    )
    assert failure is not None and "steps[0] (cache.main.incr) failed:" in failure.get("message", "")
    assert "steps[0] (cache.main.incr) failed:" in result.stdout
    assert "cannot index None" not in result.stdout
    plain = next(t for t in _report(report)["tests"] if t["name"] == "counts")
    assert plain["status"] == "passed" and plain["steps"][0]["assertions"][0]["passed"]


WINDOW_SUITE = """\
version: 1
services:
  cache:
    interfaces: {main: {protocol: redis}}
    # the proxy sees a closed connection go a moment later: the seed leaves it that moment
    seed: [{sleep: 100ms}]
faults:
  blip:
    target: cache.main
    rules:
      - down: {for: 50ms}
scenarios:
  late_ping:
    steps:
      - sleep: 300ms
      - cache.main.ping: {}
    expect: [r.ok]
fault_scenarios:
  after_the_blip:
    scenario: late_ping
    faults: blip
    expect:
      - assert_true(steps[1].ok, "the interface is back once the window is over")
"""


def test_a_fault_test_does_not_inherit_the_connections_of_the_test_before(cli, tmp_path) -> None:
    """The plain scenario runs first and leaves its proxy connection open; the fault test
    must start from fresh ones, or `down` kills that one and its steps fail after the
    `for` window is over. Alone and after others the result is the same."""
    suite = tmp_path / "blip.yaml"
    suite.write_text(WINDOW_SUITE)
    for selection in ([], ["-k", "after_the_blip"]):
        report = tmp_path / "r.json"
        result = cli(["run", str(suite), "--runtime", "embedded", "--json", str(report), *selection])
        assert result.returncode == 0, result.stdout + result.stderr
        test = next(t for t in _report(report)["tests"] if t["name"] == "after_the_blip")
        assert test["status"] == "passed", (selection, test["error"], test["steps"])
        assert test["faults"][0]["rules"][0]["hits"] == 0  # nothing tried while it was down
