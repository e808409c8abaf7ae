"""Round-3 regressions for the file format and the expression language, through the real
CLI (`redtest validate` / `redtest run` in a subprocess) and a real local redis-server."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from redtest.durations import parse_duration

SUITE = """\
version: 1
services:
  cache:
    runtime: local
    interfaces: {main: {protocol: redis}}
scenarios:
  s:
    steps:
%s
    expect:
%s
"""


def _suite(tmp_path: Path, steps: str, expect: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SUITE % (textwrap.indent(steps, "      "), textwrap.indent(expect, "      ")))
    return path


# ------------------------------------------------------------ durations


@pytest.mark.parametrize("value", ["25h", "99999999999999999999h", 86_400_001, 1e30, "9999999999999s"])
def test_durations_longer_than_a_day_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(value)


def test_a_day_is_still_a_duration() -> None:
    assert parse_duration("24h") == 86_400.0
    assert parse_duration(86_400_000) == 86_400.0


def test_huge_step_timeout_is_a_validation_error_not_an_internal_error(cli, tmp_path) -> None:
    # It used to pass `validate` and crash `run` with exit 4 (OverflowError in settimeout).
    path = _suite(tmp_path, "- cache.main.ping:\n  timeout: 99999999999999999999h\n", "- r.ok\n")
    for command in ("validate", "run"):
        proc = cli([command, str(path)])
        assert proc.returncode == 2, proc.stderr
        assert f"{path}:10:18: duration '99999999999999999999h' is too long" in proc.stderr
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_huge_sleep_is_a_validation_error(cli, tmp_path) -> None:
    path = _suite(tmp_path, "- sleep: 1000000h\n", "- 'True'\n")
    proc = cli(["validate", str(path)])
    assert proc.returncode == 2
    assert f"{path}:9:16: duration '1000000h' is too long: at most 24h" in proc.stderr


# ------------------------------------------------------------ expressions


def test_a_failed_interface_call_says_why_in_the_failure(cli, tmp_path) -> None:
    # `expected 1, got None` alone hid the server's error (unknown command, WRONGTYPE...).
    expect = (
        "- assert_eq(cache.main.command(cmd=\"NOSUCHCMD\").data, 1)\n"
        "- 'cache.main.get(key=\"h\").data[\"value\"] == \"x\"'\n"
    )
    path = _suite(tmp_path, "- cache.main.command: {cmd: HSET, args: [h, f, v]}\n", expect)
    report = tmp_path / "report.json"
    proc = cli(["run", str(path), "--json", str(report)])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (test,) = json.loads(report.read_text())["tests"]
    first, second = test["assertions"]
    assert first["detail"].startswith("expected 1, got None (")
    assert 'cache.main.command(cmd="NOSUCHCMD") failed: ERR unknown command' in first["detail"]
    assert 'cache.main.get(key="h") failed: WRONGTYPE' in second["error"]
    assert "WRONGTYPE" in proc.stdout


def test_passing_assertions_with_failed_calls_stay_quiet(cli, tmp_path) -> None:
    path = _suite(tmp_path, "- cache.main.ping:\n", '- assert_false(cache.main.command(cmd="NOSUCHCMD").ok)\n')
    proc = cli(["run", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("call", "col", "message"),
    [
        ("cache.main.get(key=None)", 29, "argument 'key' of cache.main.get() must be a string or a number, not null"),
        ("cache.main.get(True)", 25, "argument 'key' of cache.main.get() must be a string or a number, not a boolean"),
        ('cache.main.command(cmd="GET", args=[["a"]])', 45,
         "args[0] of cache.main.command() must be a string or a number, not a list"),
        ("cache.main.delete(key=[])", 32, "cache.main.delete() needs at least one key; the list is empty"),
        ('cache.main.keys(pattern={"a": 1})', 34, "argument 'pattern' of cache.main.keys() must be"),
    ],
)
def test_refused_literal_arguments_in_expressions_fail_validate(
    cli, tmp_path, call: str, col: int, message: str
) -> None:
    # They used to pass `validate` and fail at run time as `... is False` / `got None`.
    path = _suite(tmp_path, "- cache.main.ping:\n", f"- '{call}.ok'\n")
    proc = cli(["validate", str(path)])
    assert proc.returncode == 2, proc.stdout
    assert f"{path}:12:{col}: {message}" in proc.stderr


@pytest.mark.parametrize(
    "call",
    ['cache.main.get(key=-1)', 'cache.main.command("GET", ("a",))', 'cache.main.delete(["a", 2])',
     'cache.main.lrange("l", 0, -1)', 'cache.main.get(key=r.data["value"])'],
)
def test_acceptable_arguments_still_pass_validate(cli, tmp_path, call: str) -> None:
    path = _suite(tmp_path, "- cache.main.ping:\n", f"- '{call}.ok'\n")
    proc = cli(["validate", str(path)])
    assert proc.returncode == 0, proc.stderr


def test_regex_escapes_print_no_python_warning(cli, tmp_path) -> None:
    # `"\d"` is an invalid escape to Python: a stray SyntaxWarning (3.12+) or, under
    # warnings-as-errors, a refused file.
    path = _suite(tmp_path, "- cache.main.ping:\n", '- \'assert_match("^\\d+$", "12")\'\n')
    for warnings in ("default", "error"):
        proc = cli(["validate", str(path)], env={"PYTHONWARNINGS": warnings})
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr and "escape" not in proc.stderr


def test_escaped_quotes_do_not_shift_the_column(cli, tmp_path) -> None:
    expect = '- "r.data[\\"value\\"] == \\"PONG\\" and r.nope"\n'
    path = _suite(tmp_path, "- cache.main.ping:\n", expect)
    proc = cli(["validate", str(path)])
    assert proc.returncode == 2
    # `nope` is at column 46 of the line, after the four escaping backslashes
    line = path.read_text().splitlines()[11]
    assert line.index("nope") + 1 == 46
    assert f"{path}:12:46: unknown attribute .nope" in proc.stderr


def test_single_quoted_doubled_quote_does_not_shift_the_column(cli, tmp_path) -> None:
    path = _suite(tmp_path, "- cache.main.ping:\n", "- 'r.data[\"it''s\"] and r.nope'\n")
    proc = cli(["validate", str(path)])
    line = path.read_text().splitlines()[11]
    assert f"{path}:12:{line.index('nope') + 1}: unknown attribute .nope" in proc.stderr


def test_a_later_steps_name_in_a_step_expect_says_so(cli, tmp_path) -> None:
    steps = "- cache.main.ping:\n  expect: [later.ok]\n- cache.main.ping:\n  as: later\n"
    path = _suite(tmp_path, steps, "- later.ok\n")
    proc = cli(["validate", str(path)])
    assert proc.returncode == 2
    assert (
        f"{path}:10:18: 'later' is the name of a later step (steps[1]): a step's expect sees "
        "its own response (r) and the steps before it"
    ) in proc.stderr
    assert "did you mean" not in proc.stderr


# ------------------------------------------------------------ names and includes


@pytest.mark.parametrize("name", ["_tmp", "None", "if", "and"])
def test_as_names_expressions_cannot_use_are_refused(cli, tmp_path, name: str) -> None:
    path = _suite(tmp_path, f"- cache.main.ping:\n  as: {name}\n", "- r.ok\n")
    proc = cli(["validate", str(path)])
    assert proc.returncode == 2, proc.stdout
    assert f"{path}:10:13: scenarios.s.steps[0].as: '{name}' is not valid" in proc.stderr


def test_keyword_service_and_interface_names_are_refused(cli, tmp_path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("version: 1\nservices:\n  class:\n    interfaces: {if: {protocol: redis}}\n")
    proc = cli(["validate", str(path)])
    assert proc.returncode == 2
    assert f"{path}:3:3: services: 'class' is not a valid name" in proc.stderr
    assert "not a Python keyword" in proc.stderr


def test_an_empty_include_path_is_a_schema_error_with_the_others(cli, tmp_path) -> None:
    # "" used to be read as the folder ("included file . is a folder") and hid the rest.
    path = tmp_path / "suite.yaml"
    path.write_text('version: 1\ninclude: [null, 3, ""]\n')
    proc = cli(["validate", str(path)])
    assert proc.returncode == 2
    assert f"{path}:2:11: include[0] must be a string, not null" in proc.stderr
    assert f"{path}:2:17: include[1] must be a string" in proc.stderr
    assert f"{path}:2:20: include[2]: '' should be non-empty" in proc.stderr
    assert "folder" not in proc.stderr
