"""Branches of the assertion language no other test reached (round 6, coverage-guided):
`is` with values whose identity is CPython's business, and the evaluator's rarer paths —
each checked for its exact outcome."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from redtest.clients.response import Response
from redtest.errors import Location, SpecError
from redtest.expr import Scope, ServiceFacade, compile_expression, evaluate

LOC = Location("suite.yaml", 12, 9)
SCOPE = Scope(services={"cache": {"main": "redis"}}, names=frozenset({"r", "steps", "x"}))


def refused(source: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        compile_expression(source, LOC, SCOPE)
    return info.value


def run(source: str, **names: Any) -> Any:
    namespace: dict[str, Any] = {"r": Response(data={"value": "1"}), "steps": [], "x": 3}
    namespace.update(names)
    return evaluate(compile_expression(source, LOC, SCOPE), namespace)


# -- `is` compares identity: only with None, True and False -------------------------------


@pytest.mark.parametrize(
    ("source", "column", "word", "instead"),
    [
        ('r.data["value"] is "1"', 28, "is", "=="),
        ('r.data["value"] is not "OK"', 32, "is not", "!="),
        ("x is 3", 14, "is", "=="),
        ("r.data is steps", 19, "is", "=="),
        ("x == 3 is 4", 19, "is", "=="),  # each link of a chain
    ],
)
def test_is_with_anything_but_none_true_false_is_refused(
    source: str, column: int, word: str, instead: str
) -> None:
    e = refused(source)
    assert str(e) == (
        f"suite.yaml:12:{column}: '{word}' compares identity, not value: use {instead} "
        f"('{word}' only compares with None, True or False)"
    )


@pytest.mark.parametrize(
    ("source", "passed"),
    [
        ('r.data.get("zz") is None', True),
        ("None is not r.data", True),
        ("r.ok is True", True),
        ("r.ok is not False", True),
        ("assert_true(r.ok is False)", False),
    ],
)
def test_is_with_none_true_or_false_still_works(source: str, passed: bool) -> None:
    assert run(source).passed is passed


SUITE = """\
version: 1
services:
  cache:
    runtime: local
    interfaces: {main: {protocol: redis}}
scenarios:
  s:
    steps:
      - cache.main.set: {key: a, value: "1"}
      - cache.main.get: {key: a}
    expect:
%s
"""


def test_is_with_a_string_fails_validate_instead_of_passing_by_chance(cli, tmp_path: Path) -> None:
    """`"1" is "1"` passed (CPython caches one-character strings) and `"OK" is "OK"` failed."""
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE % textwrap.indent('- r.data["value"] is "1"\n- steps[0].data["value"] is "OK"', "      "))
    proc = cli(["run", path.name], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: suite.yaml:12:28: 'is' compares identity, not value: use == ('is' only compares "
        "with None, True or False)\n\n"
        "suite.yaml:13:35: 'is' compares identity, not value: use == ('is' only compares with "
        "None, True or False)"
    )
    path.write_text(SUITE % textwrap.indent('- r.data["value"] == "1"\n- steps[0].data["value"] == "OK"', "      "))
    assert cli(["run", path.name], cwd=tmp_path).returncode == 0


# -- evaluation paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "passed"),
    [
        ("assert_eq(1 < x < 2, False)", True),  # a chain inside a call: eval, not decide
        ("assert_eq(1 < x < 5, True)", True),
        ("assert_eq(not r.ok, False)", True),
        ('assert_eq(f"{r.data!s}", "{\'value\': \'1\'}")', True),
        ('assert_eq(f"{\'é\'!a}", "\'\\\\xe9\'")', True),
        ('assert_eq(f"{x!r:>3}", "  3")', True),
        ("assert_eq(-x, -3)", True),
        ("assert_eq(+x, 3)", True),
    ],
)
def test_evaluation_paths(source: str, passed: bool) -> None:
    result = run(source)
    assert (result.passed, result.error) == (passed, None)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('-r.data["value"] == 1', '-r.data["value"]: bad operand "1" for unary minus/plus'),
        ('f"{r.data:>5}" == ""', """f"{r.data:>5}": cannot format {"value": "1"} with '>5'"""),
        ("assert_match(1, \"a\")", "assert_match: the pattern must be a string, got 1"),
        ('assert_match("(", "a")', 'assert_match: invalid regular expression "(": missing ), unterminated subpattern at position 0'),
        ("assert_in(1, 2)", "assert_in: argument of type 'int' is not iterable"),
    ],
)
def test_evaluation_errors_are_readable(source: str, error: str) -> None:
    result = run(source)
    assert result.passed is False
    assert result.error == error


def test_str_of_a_deep_value_is_refused_not_a_recursion() -> None:
    deep: Any = "x"
    for _ in range(150):
        deep = [deep]
    result = run("str(x) == 1", x=deep)
    assert result.error == "str(x): value is too large to convert to text"


def test_str_of_a_set_and_a_mapping_walks_their_items() -> None:
    result = run("str(x) == 1", x={"k": {1, 2}})
    assert (result.passed, result.error) == (False, None)


@pytest.mark.parametrize(
    ("namespace", "error"),
    [
        ({}, "service cache is not available here"),
        ({"cache": 42}, "service cache is not available here"),
        ({"cache": {}}, "interface cache.main is not available here"),
        ({"cache": ServiceFacade("cache", {})}, "service cache has no interface 'main' here"),
    ],
)
def test_an_interface_call_without_its_service_is_an_error_not_a_crash(
    namespace: dict[str, Any], error: str
) -> None:
    compiled = compile_expression('cache.main.get(key="a").ok', LOC, SCOPE)
    result = evaluate(compiled, {"r": Response(), "steps": [], "x": 1, **namespace})
    assert (result.passed, result.error) == (False, error)


def test_a_min_with_no_argument_is_refused_at_load_time() -> None:
    assert str(refused("min() == 1")) == "suite.yaml:12:9: min() needs at least one argument"


def test_a_method_keyword_that_does_not_exist_is_refused_where_written() -> None:
    assert str(refused('r.data.get("a", default=1)')) == (
        "suite.yaml:12:33: .get() has no keyword argument default"
    )
