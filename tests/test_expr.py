"""The assertion language: what compiles, what is refused, what evaluation reports."""

from __future__ import annotations

from typing import Any

import pytest

from redtest.clients.response import Response
from redtest.errors import Location, SpecError
from redtest.expr import (
    CompiledExpression,
    Scope,
    ServiceFacade,
    compile_expression,
    evaluate,
    show,
)

LOC = Location("suite.yaml", 12, 9)
SCOPE = Scope(
    services={
        "cache": {"main": "redis", "replica": "redis"},
        "app": {"api": "http"},
        "db": {"main": "sqlite"},
    },
    names=frozenset({"r", "steps", "resp", "x"}),
)


class FakeInterface:
    """Records calls; answers like a Redis/HTTP/SQLite interface would."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers = answers or {}

    def call(self, method: str, args: dict[str, Any]) -> Response:
        self.calls.append((method, args))
        return self.answers.get(method, Response(data={"value": None}))


def compile_(source: str, scope: Scope = SCOPE) -> CompiledExpression:
    return compile_expression(source, LOC, scope)


def run(source: str, **names: Any) -> Any:
    namespace: dict[str, Any] = {
        "r": Response(data={"value": "1"}, duration_ms=3),
        "steps": [Response(data={"value": "OK"}), Response(ok=False, error="READONLY no")],
        "x": 3,
        "cache": {"main": FakeInterface(), "replica": FakeInterface()},
    }
    namespace.update(names)
    return evaluate(compile_(source), namespace)


def refused(source: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        compile_(source)
    return info.value


# -- assert_* functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        'assert_eq(r.data["value"], "1")',
        'assert_eq(r.data, {"value": "1"})',
        "assert_ne(x, 4)",
        "assert_true(x == 3)",
        "assert_true(r.ok)",
        "assert_false(steps[1].ok)",
        'assert_in("1", [r.data["value"], "2"])',
        'assert_in("READONLY", steps[1].error)',
        "assert_lt(x, 4)",
        "assert_le(x, 3)",
        "assert_gt(x, 2)",
        "assert_ge(x, 3)",
        'assert_match("^READ", steps[1].error)',
        'assert_match("ONLY", steps[1].error)',  # search, not match-at-start
        'assert_eq(x, 3, "with a message")',
        'assert_eq(x, 3, msg="with a keyword message")',
    ],
)
def test_assertions_that_pass(source: str) -> None:
    result = run(source)
    assert result.passed, result
    assert result.detail is None and result.error is None


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("assert_eq(x, 0)", "expected 0, got 3"),
        ('assert_eq(r.data["value"], 1)', 'expected 1, got "1"'),
        ('assert_eq(r.data, {"value": "2"})', 'expected {"value": "2"}, got {"value": "1"}'),
        ("assert_ne(x, 3)", "expected anything but 3, got 3"),
        ("assert_true(x > 5)", "3 > 5 is false (x = 3)"),
        ("assert_true(steps[1].ok)", "steps[1].ok is False"),
        ("assert_false(x == 3)", "3 == 3 is true (x = 3)"),
        ("assert_false(r.data)", 'r.data is {"value": "1"}, which is true'),
        # a literal's value is its source: say only how it counts
        ("assert_true([])", "[] is false"),
        ("assert_true('')", "'' is false"),
        ("assert_true(None)", "None is false"),
        ("assert_false(-1)", "-1 is true"),
        # a computed value that is false without being False or None says so
        ("assert_true(x - 3)", "x - 3 is 0, which is false"),
        ('assert_true(r.data["value"][1:])', 'r.data["value"][1:] is "", which is false'),
        ("assert_true(r.data.get('missing'))", "r.data.get('missing') is None"),
        ('assert_in("z", ["a", "b"])', 'expected "z" in ["a", "b"]'),
        ("assert_lt(x, 3)", "expected a value < 3, got 3"),
        ("assert_le(x, 2)", "expected a value <= 2, got 3"),
        ("assert_gt(x, 3)", "expected a value > 3, got 3"),
        ("assert_ge(x, 4)", "expected a value >= 4, got 3"),
        (
            'assert_match("^OK", steps[1].error)',
            'expected a string matching "^OK", got "READONLY no"',
        ),
        ('assert_match("a", x)', 'expected a string matching "a", got 3 (not a string)'),
        ("assert_eq(None, False)", "expected False, got None"),
        ("assert_eq([1, (2,)], 0)", "expected 0, got [1, (2,)]"),
    ],
)
def test_assertions_that_fail_say_why(source: str, detail: str) -> None:
    result = run(source)
    assert not result.passed
    assert result.error is None
    assert result.detail == detail
    assert result.source == source and result.loc == LOC


def test_message_is_reported_positionally_and_by_keyword() -> None:
    assert run('assert_eq(x, 0, "counter reset")').message == "counter reset"
    assert run('assert_true(False, msg="nope")').message == "nope"
    assert run("assert_eq(x, 0, x)").message == "3"  # non-strings are shown
    assert run('assert_eq(x, 3, "fine")').message == "fine"  # kept for reports when passing too


def test_the_seed_examples() -> None:
    app = Response(status=503, data={"error": "redis down"})
    cache = FakeInterface({"keys": Response(data=["order:1"])})
    result = run(
        'assert_eq(len(cache.main.keys(pattern="order:*").data), 0, '
        '"no cached order data after Redis failure")',
        cache={"main": cache},
    )
    assert not result.passed
    assert result.detail == "expected 0, got 1"
    assert result.message == "no cached order data after Redis failure"
    assert cache.calls == [("keys", {"pattern": "order:*"})]

    assert run("assert_true(r.status >= 500)", r=app).passed
    got = run("assert_true(r.status >= 500)", r=Response(status=404))
    assert got.detail == "404 >= 500 is false (r.status = 404)"

    cache = FakeInterface({"get": Response(data={"value": "stale"})})
    result = run(
        'assert_true(cache.main.get(key="user:1").data.get("value") in [None, "updated"], '
        '"cache must be consistent or empty")',
        cache={"main": cache},
    )
    assert not result.passed
    assert result.message == "cache must be consistent or empty"
    assert '"stale" in [None, "updated"] is false' in result.detail

    db = FakeInterface({"query": Response(data=[{"name": "updated"}])})
    src = 'assert_eq(db.main.query(sql="SELECT name FROM users WHERE id=1").data[0]["name"], "updated")'
    assert run(src, db={"main": db}).passed
    assert db.calls == [("query", {"sql": "SELECT name FROM users WHERE id=1"})]


# -- bare expressions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "passed", "detail"),
    [
        ("x == 3", True, None),
        ("x >= 5", False, "3 >= 5 is false (x = 3)"),
        ("0 < x < 2", False, "3 < 2 is false (x = 3)"),
        ("1 < x < 5", True, None),
        ("r.ok and x > 10", False, "3 > 10 is false (x = 3)"),
        ("x > 10 or x < 0", False, "3 > 10 is false (x = 3); 3 < 0 is false (x = 3)"),
        ("not r.ok", False, "r.ok is True"),
        ("not steps[1].ok", True, None),
        ("steps[1].ok", False, "steps[1].ok is False"),
        ('r.data["value"]', True, None),
        ("r.data.get('missing')", False, "r.data.get('missing') is None"),
        ("len(steps) == 3", False, "2 == 3 is false (len(steps) = 2)"),
        ('"READ" in steps[1].error', True, None),
        ('"x" not in steps[1].error', True, None),
        ("r.error is None", True, None),
        ("x if r.ok else 0", True, None),
        ("[]", False, "[] is false"),
        ("{}", False, "{} is false"),
        ("x - 3", False, "x - 3 is 0, which is false"),
        ("steps[0].data['value'] and r.data['value'][5:]", False,
         "r.data['value'][5:] is \"\", which is false"),
        ("not r.data", False, 'r.data is {"value": "1"}, which is true'),
    ],
)
def test_bare_expressions(source: str, passed: bool, detail: str | None) -> None:
    result = run(source)
    assert result.error is None, result.error
    assert result.passed is passed
    assert result.detail == detail


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1 + 2 * 3 - 4", 3),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("-x", -3),
        ("+x", 3),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ('"ab" + "cd"', "abcd"),
        ('"ab" * 2', "abab"),
        ("[1] * 3", [1, 1, 1]),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("(1, 2)[1]", 2),
        ('"hello"[1:3]', "el"),
        ('"hello"[::-1]', "olleh"),
        ("[1, 2, 3][-1]", 3),
        ('{"a": 1}["a"]', 1),
        ("{1, 2} == {2, 1}", True),
        ("len({1, 2, 2})", 2),
        ("x if x > 2 else -1", 3),
        ("None or 5", 5),
        ("0 and 5", 0),
        ("len('abc')", 3),
        ("int('42')", 42),
        ("int('ff', 16)", 255),
        ("int('ff', base=16)", 255),
        ("float('1.5')", 1.5),
        ("str(12)", "12"),
        ("bool('')", False),
        ("min(3, 1, 2)", 1),
        ("max([3, 1, 2])", 3),
        ("min([], default=0)", 0),
        ("sum([1, 2, 3])", 6),
        ("sum([1, 2], 10)", 13),
        ("sorted([3, 1, 2])", [1, 2, 3]),
        ("sorted([3, 1, 2], reverse=True)", [3, 2, 1]),
        ("any([0, 1])", True),
        ("all([1, 0])", False),
        ("abs(-2)", 2),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ('"a,b".split(",")', ["a", "b"]),
        ('"a b c".split(maxsplit=1)', ["a", "b c"]),
        ('" x ".strip()', "x"),
        ('"xAx".strip("x")', "A"),
        ('"Ab".lower() + "Ab".upper()', "abAB"),
        ('"abc".startswith("ab") and "abc".endswith("bc")', True),
        ('"banana".count("a")', 3),
        ('"banana".index("n")', 2),
        ("[1, 2, 1].count(1)", 2),
        ("(1, 2).index(2)", 1),
        ('{"a": 1}.get("a")', 1),
        ('{"a": 1}.get("b", 7)', 7),
        ('{"a": 1, "b": 2}.keys()', ["a", "b"]),
        ('{"a": 1}.values()', [1]),
        ('{"a": 1}.items()', [("a", 1)]),
        ('f"n={x}!"', "n=3!"),
        ('f"{x:>4}"', "   3"),
        ("f\"{'s'!r}\"", "'s'"),
        ("r.duration_ms", 3),
        ("r.headers", {}),
        ("r.status", None),
    ],
)
def test_values(source: str, value: Any) -> None:
    result = run(f"assert_eq({source}, resp)", resp=value)
    assert result.passed, (source, result)


def test_interface_calls_positional_keyword_and_delete() -> None:
    main = FakeInterface({"command": Response(data={"name": "alice"})})
    ns = {"cache": {"main": main}}
    assert run('cache.main.get("k").ok', **ns).passed
    assert run('cache.main.set("k", 1).ok', **ns).passed
    assert run('cache.main.delete(key="k").ok', **ns).passed
    assert run('cache.main.lrange("l", 0, stop=-1).ok', **ns).passed
    assert run(
        'cache.main.command(cmd="HGETALL", args=["user:1"]).data["name"] == "alice"', **ns
    ).passed
    assert run("cache.main.ping().ok", **ns).passed
    assert main.calls == [
        ("get", {"key": "k"}),
        ("set", {"key": "k", "value": 1}),
        ("del", {"key": "k"}),
        ("lrange", {"key": "l", "start": 0, "stop": -1}),
        ("command", {"cmd": "HGETALL", "args": ["user:1"]}),
        ("ping", {}),
    ]


def test_interface_calls_happen_once_even_when_explaining_a_failure() -> None:
    main = FakeInterface({"keys": Response(data=["a", "b"])})
    result = run("len(cache.main.keys().data) == 0", cache={"main": main})
    assert result.detail == "2 == 0 is false (len(cache.main.keys().data) = 2)"
    assert len(main.calls) == 1


def test_service_facade_and_plain_mappings_both_work() -> None:
    main = FakeInterface()
    assert run("cache.main.ping().ok", cache=ServiceFacade("cache", {"main": main})).passed
    result = run("cache.replica.ping().ok", cache=ServiceFacade("cache", {"main": main}))
    assert result.error == "service cache has no interface 'replica' here"


class NamedMethods:
    """An interface client without `call`: the expression's method name is used."""

    def delete(self, key: str) -> Response:
        return Response(data={"value": key})


def test_clients_without_call_get_the_python_method() -> None:
    assert run('cache.main.delete("k").data["value"] == "k"', cache={"main": NamedMethods()}).passed


def test_compiled_expressions_survive_copy_and_pickle() -> None:
    import copy
    import pickle

    compiled = compile_('cache.main.get("k").data["value"] == None')
    main = FakeInterface()
    for clone in (copy.deepcopy(compiled), pickle.loads(pickle.dumps(compiled))):
        assert evaluate(clone, {"cache": {"main": main}}).passed
    assert main.calls == [("get", {"key": "k"})] * 2


def test_names_used_are_recorded() -> None:
    assert compile_('cache.main.get("k").ok and r.ok').names == {"cache", "r"}


# -- runtime errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('r.data["nope"]', 'r.data["nope"]: key "nope" not found in {"value": "1"}'),
        ("steps[5].ok", "steps[5]: index 5 out of range (list of length 2)"),
        (
            "steps[0].data['value'] + 1",
            "steps[0].data['value'] + 1: cannot evaluate \"OK\" + 1 (str and int)",
        ),
        ("x < 'a'", "x < 'a': cannot evaluate 3 < \"a\" (int and str)"),
        ("1 / 0", "1 / 0: ZeroDivisionError: division by zero"),
        ("int('abc')", "int('abc'): ValueError: invalid literal for int() with base 10: 'abc'"),
        (
            "r.data['value'][0]['k']",
            "r.data['value'][0]['k']: string indices must be integers, not 'str'",
        ),
        ("x[0]", "x[0]: cannot index 3 (int)"),
        ("x.lower()", "x.lower(): int 3 has no method .lower()"),
        (
            "r.data.ok",
            'r.data.ok: r.data is {"value": "1"}, which has no attribute ok (only responses have .ok)',
        ),
        (
            "steps[0].data['value'].index('z')",
            "steps[0].data['value'].index('z'): ValueError: substring not found",
        ),
        (
            'assert_match("(", "x")',
            'assert_match: invalid regular expression "(": missing ), unterminated subpattern at position 0',
        ),
        ("assert_lt(x, 'a')", 'assert_lt: cannot compare 3 < "a" (int and str)'),
        ("resp.ok", "resp is not available here"),
        ("len(x)", "len(x): TypeError: len() of int 3"),
    ],
)
def test_errors_during_evaluation_are_reported_not_raised(source: str, error: str) -> None:
    result = run(source)
    assert not result.passed
    assert result.error == error
    assert result.detail is None


@pytest.mark.parametrize(
    ("source", "error"),
    [
        # None names its own type: never `None None` or `None (None)`
        (
            'r.data["value"].startswith("x")',
            'r.data["value"].startswith("x"): None has no method .startswith()',
        ),
        ('len(r.data["value"])', 'len(r.data["value"]): TypeError: len() of None'),
        ('r.data["value"][0]', 'r.data["value"][0]: cannot index None'),
        # other values keep their type, also when empty
        ("[].lower()", "[].lower(): list [] has no method .lower()"),
        ('"".get("a")', '"".get("a"): str "" has no method .get()'),
        ("True[0]", "True[0]: cannot index True (bool)"),
        ("len(0)", "len(0): TypeError: len() of int 0"),
    ],
)
def test_errors_about_none_and_empty_values(source: str, error: str) -> None:
    result = run(source, r=Response(data={"value": None}))
    assert not result.passed and result.detail is None
    assert result.error == error


def test_no_steps_means_r_is_none() -> None:
    result = run("r.ok", r=None)
    assert result.error == "r.ok: r is None, which has no attribute ok (only responses have .ok)"


def test_a_failing_client_is_an_error_result() -> None:
    class Broken:
        def call(self, method: str, args: dict[str, Any]) -> Response:
            raise ConnectionError("refused")

    result = run("cache.main.ping().ok", cache={"main": Broken()})
    assert result.error == "cache.main.ping(): ConnectionError: refused"


# -- compile-time checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("rr.ok", "unknown name 'rr' (did you mean 'r'?)"),
        ("stpes[0]", "unknown name 'stpes' (did you mean 'steps'?)"),
        ("nothing_like_it", "unknown name 'nothing_like_it'"),
        ("asert_eq(x, 1)", "unknown function asert_eq (did you mean assert_eq?)"),
        ("lenn(x)", "unknown function lenn (did you mean len?)"),
        ("r.dat", "unknown attribute .dat (did you mean data?)"),
        (
            "r.data.value",
            'unknown attribute .value (a mapping\'s values are read with [...]: r.data["value"])',
        ),
        ("cache.mian.get('k')", "service cache has no interface mian (did you mean main?)"),
        (
            "cache.main.gett('k')",
            "redis interface cache.main has no method gett (did you mean get?)",
        ),
        (
            "cache.main.hgetall('k')",
            'redis interface cache.main has no method hgetall (other commands go through command: cache.main.command(cmd="HGETALL", args=[...]))',
        ),
        (
            "cache.main.get(kee='k')",
            "cache.main.get() has no argument kee (did you mean key?) (arguments: key)",
        ),
        ("cache.main.get()", "cache.main.get() is missing argument(s): key"),
        ("cache.main.get('a', 'b')", "cache.main.get() takes at most 1 argument(s), got 2"),
        ("cache.main.get('a', key='b')", "cache.main.get() got argument key twice"),
        ("app.api.get(path='/')", None),
        ("app.api.patch(path='/')", "http interface app.api has no method patch"),
        ("db.main.exec(sql='x')", None),
        ("cache.main.get", "method cache.main.get must be called: cache.main.get(...)"),
        ("cache.main", "cache.main must be followed by a method call: cache.main.METHOD(...)"),
        ("cache", "service cache can only be used to call a method: cache.INTERFACE.METHOD(...)"),
        ("cache.main.ping", "method cache.main.ping must be called: cache.main.ping(...)"),
        ("cache.main(1)", "cache.main is an interface, not a method: cache.main.METHOD(...)"),
        ("cache(1)", "cache is a service: call its methods, cache.INTERFACE.METHOD(...)"),
        ("r()", "r is a value, not a function"),
        ("len", "function len must be called: len(...)"),
        ("len(x, x)", "len() takes at most 1 argument(s), got 2"),
        ("assert_eq(x)", "assert_eq() needs at least 2 argument(s), got 1"),
        ("assert_eq(x, 1, 'm', 'n')", "assert_eq() takes at most 3 argument(s), got 4"),
        ("assert_eq(x, 1, 'm', msg='n')", "assert_eq() got msg twice"),
        ("assert_eq(x, 1, note='n')", "assert_eq() has no keyword argument note (allowed: msg)"),
        ("sorted(x, key=len)", "sorted() has no keyword argument key (allowed: reverse)"),
        (
            "assert_true(x) and r.ok",
            "assert_true(...) must be the whole assertion, not part of an expression",
        ),
        (
            "not assert_true(x)",
            "assert_true(...) must be the whole assertion, not part of an expression",
        ),
        ("r.data.get()", ".get() takes 1–2 argument(s), got 0"),
        ("r.data.keys(1)", ".keys() takes 0 argument(s), got 1"),
        ("r.data.keys", "method .keys must be called: .keys(...)"),
        ("r.data.pop('value')", "method .pop() is not allowed in assertions"),
        ("r.data.update(a=1)", "method .update() is not allowed in assertions"),
        ("x.replace('a', 'b')", "method .replace() is not allowed in assertions"),
        ("''.join(['a'])", "method .join() is not allowed in assertions"),
        ("x | 1", "the operator | is not allowed in assertions"),
        ("x << 1", "the operator << is not allowed in assertions"),
        ("~x", "the operator ~ is not allowed in assertions"),
        ("b'x'", "bytes literals are not allowed"),
        ("1j", "complex literals are not allowed"),
        ("...", "ellipsis literals are not allowed"),
        ("{**r.data}", "dict unpacking (**x) is not allowed in assertions"),
        ("max(*steps)", "starred arguments (*x) are not allowed in assertions"),
        ("[*steps]", "starred arguments (*x) are not allowed in assertions"),
        ("max(**r.data)", "keyword unpacking (**x) is not allowed in assertions"),
        ("[s for s in steps]", "comprehensions are not allowed in assertions"),
        ("{s: 1 for s in steps}", "comprehensions are not allowed in assertions"),
        ("{s for s in steps}", "comprehensions are not allowed in assertions"),
        ("any(s.ok for s in steps)", "generator expressions are not allowed in assertions"),
        ("(lambda: 1)()", "lambda functions are not allowed in assertions"),
        ("r.data['f']()", "only named functions and methods can be called"),
        ("lambda: 1", "lambda functions are not allowed in assertions"),
        ("(y := 1)", "assignments (:=) are not allowed in assertions"),
        ("x = 1", "assignments are not allowed: an assertion is one expression"),
        ("x += 1", "assignments are not allowed: an assertion is one expression"),
        ("import os", "imports are not allowed: an assertion is one expression"),
        ("from os import path", "imports are not allowed: an assertion is one expression"),
        (
            "del x",
            "`del` statements are not allowed (the redis method is spelled `delete`): an assertion is one expression",
        ),
        ("x; r", "an assertion is one expression, not several statements"),
        ("if x: pass", "statements are not allowed: an assertion is one expression"),
        ("(yield x)", "yield is not allowed in assertions"),
        ("await x", "await is not allowed in assertions"),
        ("x ==", "invalid expression: invalid syntax"),
        ("", "empty assertion"),
        ("   ", "empty assertion"),
        ('f"{x:{x}}"', "f-string format specs must be written out, not computed"),
        ('f"{x:>100000}"', "f-string widths above 1000 are not allowed"),
    ],
)
def test_compile_time_refusals(source: str, message: str | None) -> None:
    if message is None:
        compile_(source)
        return
    error = refused(source)
    assert error.message == message


def test_await_and_unbalanced_text_are_syntax_errors() -> None:
    assert refused("(x) or (r").message.startswith("invalid expression")
    assert refused("x) or (r").message.startswith("invalid expression")


def test_non_string_assertion_is_refused() -> None:
    with pytest.raises(SpecError, match="must be a string"):
        compile_expression({'assert_eq(r.data, {"value"': '"PONG"})'}, LOC, SCOPE)  # type: ignore[arg-type]


def test_overlong_and_deeply_nested_expressions_are_refused() -> None:
    assert "longer than" in refused("x + " * 5000 + "x").message
    assert "nested too deeply" in refused("-" * 200 + "x").message
    # the parser's own limit ("too many nested parentheses") is a SpecError too
    assert refused("(" * 300 + "x" + ")" * 300).message.startswith("invalid expression")
    assert "nested too deeply" in refused("[" * 70 + "]" * 70).message


# -- error positions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "col"),
    [
        ("rr.ok", 9),
        ("r.ok and zz", 9),  # unknown names: at the assertion
        ("r.ok and r.dta", 9 + 11),
        ("r.dat", 9 + 2),  # at the attribute name
        ("assert_eq(r.data.valu, 1)", 9 + 17),
        ("cache.main.gett('k')", 9 + 11),
        ("x ==", 9 + 4),  # unexpected end of text
        ("x == == 2", 9 + 5),
        ("'é' + r.dat", 9 + 8),  # characters, not UTF-8 bytes
    ],
)
def test_errors_point_at_the_construct(source: str, col: int) -> None:
    error = refused(source)
    assert error.location == Location("suite.yaml", 12, col)


def test_forbidden_before_inner_before_unknown() -> None:
    error = refused('__import__("os").system("true")')
    assert error.message == "names that begin with '_' are not allowed: __import__"
    assert error.location == LOC
    error = refused("r.__class__.__bases__")
    assert error.message == "attributes that begin with '_' are not allowed: .__bases__"
    assert error.location == Location("suite.yaml", 12, 9 + 12)
    assert refused("().__class__.__bases__[0].__subclasses__()").message.endswith(".__subclasses__")
    assert refused("r.dta.lower()").message.startswith("unknown attribute .dta")
    assert refused("cache.main._conn").message.endswith(": ._conn")
    assert refused("cache._x").message.endswith(": ._x")
    assert refused("cache.main._call()").message.endswith(": ._call")


def test_multi_line_sources_map_to_later_lines() -> None:
    error = refused("r.ok and\n  r.dta")
    assert error.location == Location("suite.yaml", 13, 5)
    # newlines inside a YAML block scalar are fine otherwise
    assert run("r.ok and\n  x == 3").passed
    assert run("  x == 3").passed  # leading spaces too


# -- sandbox escapes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "().__class__.__bases__[0].__subclasses__()",
        "().__class__",
        "__import__('os')",
        "__import__('os').system('true')",
        "__builtins__",
        "getattr(r, 'data')",
        "setattr(r, 'ok', True)",
        "open('/etc/passwd')",
        "eval('1')",
        "exec('1')",
        "compile('1', 'f', 'eval')",
        "globals()",
        "locals()",
        "vars(r)",
        "dir(r)",
        "type(x)",
        "type(x).__subclasses__(x)",
        "isinstance(x, int)",
        "print(x)",
        "input()",
        "breakpoint()",
        "help()",
        "r.data.__class__",
        "r.__dict__",
        "r._private",
        "r.to_dict()",
        "r.__init__",
        "steps.__len__()",
        "x.__class__.__mro__",
        '"{0.__class__}".format(x)',
        '"{0.__class__.__init__.__globals__}".format(r)',
        '"{}".format_map(r.data)',
        '"%s" % x' + ".__class__",
        "[].append(1)",
        "steps.pop()",
        "r.data.clear()",
        "r.data.setdefault('a', 1)",
        "cache.main.__class__",
        "cache.main._conn",
        "cache.main.call('get', {'key': 'x'})",
        "cache.main.close()",
        "lambda: __import__('os')",
        "[c for c in ().__class__.__bases__]",
        "f'{r.__class__}'",
        "f'{r!r:{x}}'",
        "x.__format__('')",
        "(s := steps)",
        "_",
        "__name__",
    ],
)
def test_known_escapes_are_refused_at_load_time(source: str) -> None:
    refused(source)


class Spy:
    """Something with dangerous-looking attributes that must stay out of reach."""

    secret = "leaked"

    def __getattr__(self, name: str) -> str:
        return "leaked"

    def __getitem__(self, key: object) -> str:
        return "leaked"

    def lower(self) -> str:
        return "leaked"


@pytest.mark.parametrize(
    "source",
    [
        "x.data",  # only Response has Response attributes
        "x.ok",
        "x.lower()",  # methods come from str/list/dict, never from the object
        "x['a']",  # subscripts only on str/list/tuple/mappings
        "x.get('a')",
        "x.keys()",
        "x.startswith('l')",
        "str(x) == 'secret'",  # str() of an unknown object is harmless, not its attributes
    ],
)
def test_runtime_refuses_other_objects(source: str) -> None:
    result = run(source, x=Spy())
    assert "leaked" not in (result.error or "") + (result.detail or "")
    if source.startswith("str("):
        assert not result.passed
    else:
        assert result.error is not None


def test_string_subclasses_do_not_get_their_overrides_called() -> None:
    class Sneaky(str):
        def lower(self) -> str:  # pragma: no cover - must not run
            raise AssertionError("override called")

    assert run("x.lower() == 'ab'", x=Sneaky("AB")).passed


def test_format_string_attribute_tricks_cannot_run_even_when_data_holds_them() -> None:
    # a value from Redis can hold a format string; no formatting method is reachable
    assert "format" in refused("r.data['value'].format(r)").message
    result = run(
        "f\"{r.data['value']}\" == '{0.__class__}'", r=Response(data={"value": "{0.__class__}"})
    )
    assert result.passed  # f-strings format values, they never interpret them


# -- denial of service ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('"a" * 10**10', "result would have 10000000000 elements"),
        ("[0] * 10**9", "result would have 1000000000 elements"),
        ("10**9 * 'ab'", "result would have 2000000000 elements"),
        ("2 ** 10**10", "result would be too large"),
        ("10 ** 100000", "result would be too large"),
        ("(2 ** 60000) * (2 ** 60000)", "integer result is too large"),
        # the limit is checked on the result when `**` itself is just under it
        ("2 ** 65536", "2 ** 65536: integer result is too large (over 65536 bits)"),
        ("sum([2 ** 65535, 2 ** 65535])", "sum([2 ** 65535, 2 ** 65535]): integer result"),
        ("1.5 ** 10**8", "exponent is too large"),
        ("'%999999999d' % 1", "string formatting with % is not supported"),
        ("'%s' % x", "string formatting with % is not supported"),
        ("round(5, -10**8)", "ndigits must be an integer between -400 and 400"),
        ("[[0] * 10**6] * 10**6", "repeating a list of containers is not supported"),
        (
            "len(['a' * 10**6, 'b' * 10**6, 'c' * 10**6, 'd' * 10**6, 'e' * 10**6])",
            "builds too much data",
        ),
        ("sum([[1]], [])", "start value must be a number"),
        ("sum([[1], [2]])", "sum() adds numbers"),
        ("str(['a' * 999999, 'b' * 999999])", "too large to convert to text"),
    ],
)
def test_resource_limits(source: str, error: str) -> None:
    result = run(source)
    assert not result.passed
    assert result.error is not None and error in result.error, result.error


def test_sizes_under_the_limits_work() -> None:
    assert run("len('a' * 1000000) == 1000000").passed
    assert run("2 ** 1000 > 0").passed
    assert run("round(1234, -2) == 1200").passed


# -- showing values -------------------------------------------------------------------------


def test_show_formats_values_like_the_expression_language() -> None:
    assert show(None) == "None"
    assert show(True) == "True"
    assert show('a"b') == '"a\\"b"'
    assert show("é") == '"é"'
    assert show([1, "a", None]) == '[1, "a", None]'
    assert show((1,)) == "(1,)"
    assert show({"k": [1]}) == '{"k": [1]}'
    assert show(set()) == "set()"
    assert (
        show(Response(data={"value": "PONG"}))
        == 'Response(ok=True, data={"value": "PONG"}, error=None)'
    )
    assert show(Response(status=500, data="x")).startswith("Response(status=500, ok=True")
    assert show(object()) == "<object>"


def test_show_truncates_huge_values_cheaply() -> None:
    text = show("x" * 10**6)
    assert len(text) == 200 and text.endswith("…")
    text = show(list(range(10**6)))
    assert len(text) <= 200 and text.endswith("…")
    deep: Any = []
    for _ in range(50):
        deep = [deep]
    assert "…" in show(deep)


def test_int_of_a_long_binary_string_keeps_the_integer_limit() -> None:
    result = run('int("1" * 100000, 2) > 0')
    assert not result.passed
    assert result.error is not None and "integer result is too large" in result.error
