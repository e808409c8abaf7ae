"""Reference checks of spec/build.py no other test reached (round 6, coverage-guided),
through `redtest validate` in a subprocess: every problem of one file, in file order, each
with its exact message and file:line:column."""

from __future__ import annotations

from pathlib import Path

SUITE = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis}
  db:
    interfaces:
      main: {protocol: sqlite, path: x.db}
  app:
    command: [python, app.py, "${cache.nope.url}", "${env.REDTEST_COVERAGE_UNSET}", "${bad"]
    env:
      FLAG: true
    interfaces:
      main: {protocol: redis}
  box:
    image: nginx
  empty:
    interfaces: {}
faults:
  f1:
    target: cache.other
    rules:
      - error: {}
  f2:
    target: cache.main
    rules:
      - response: {value: null, command: "  "}
      - delay: {delay: 10ms, for: 25h}
seeds:
  s1:
    - cache.main.set: {key: a, value: b}
      expect: [r.ok]
scenarios:
  t:
    steps:
      - cache.main.get: {key: a}
        as: cache
      - cache.main.ping:
fault_scenarios:
  t:
    scenario: t
    faults: f2
    expect: [r.ok]
"""


def test_every_reference_problem_of_a_file_is_reported_where_written(cli, tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    proc = cli(["validate", "suite.yaml"], cwd=tmp_path, env={"REDTEST_COVERAGE_UNSET": ""})
    # an empty variable is set: only the unset one is an error
    assert proc.returncode == 2
    assert "REDTEST_COVERAGE_UNSET" not in proc.stderr
    proc = cli(["validate", "suite.yaml"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().split("\n\n") == [
        "error: suite.yaml:9:3: service 'app' has a command and a redis interface: declare the "
        "Redis server as its own service and point the application at it with ${...url}",
        "suite.yaml:10:31: ${cache.nope.url}: service 'cache' has no interface 'nope'",
        "suite.yaml:10:52: ${env.REDTEST_COVERAGE_UNSET}: environment variable "
        "REDTEST_COVERAGE_UNSET is not set",
        "suite.yaml:10:85: unterminated template in '${bad' (a '${' without its '}')",
        "suite.yaml:17:3: service 'empty' declares nothing to start: give it a redis interface, "
        "a command, an image, or sqlite interfaces",
        "suite.yaml:21:13: fault 'f1' targets cache.other, but 'cache' has no interface 'other'",
        "suite.yaml:27:42: command pattern is empty",
        "suite.yaml:28:35: duration '25h' is too long: at most 24h",
        "suite.yaml:32:7: seed steps cannot have 'expect'",
        "suite.yaml:37:13: 'as: cache' would hide the service 'cache'",
        "suite.yaml:40:3: 't' names both a scenario and a fault scenario; test names must be unique",
    ]


def test_a_container_service_and_a_response_rule_build(cli, tmp_path: Path) -> None:
    """The branches above that are not errors: an image with no command is a container,
    a `response` rule and a rule's `for` are taken, env booleans become true/false."""
    (tmp_path / "suite.yaml").write_text(
        "version: 1\n"
        "services:\n"
        "  cache: {interfaces: {main: {protocol: redis}}}\n"
        "  box: {image: nginx, env: {ON: true, OFF: false}}\n"
        "faults:\n"
        "  lost:\n"
        "    target: cache.main\n"
        "    rules:\n"
        "      - response: {value: null, command: GET, for: 2s}\n"
        "scenarios:\n"
        "  t:\n"
        "    steps:\n"
        "      - cache.main.get: {key: a}\n"
    )
    from redtest.spec.build import load_suite

    suite = load_suite(tmp_path / "suite.yaml")
    assert suite.services["box"].kind == "container"
    assert suite.services["box"].env == {"ON": "true", "OFF": "false"}
    rule = suite.faults["lost"].rules[0]
    assert (rule.command, rule.for_seconds, rule.effect.value) == ("GET", 2.0, None)  # type: ignore[union-attr]
    assert rule.describe() == "response(command=GET, value=None, for=2s)"
