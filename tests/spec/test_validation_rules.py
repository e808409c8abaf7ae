"""What `validate` checks beyond the schema (SPEC §12): argument shapes, seed-step
options, healthchecks against interfaces, timeouts, HTTP arguments, `as:` names,
and how schema errors are worded and placed. Each case is a small file loaded with
`load_suite`; the CLI is exercised by the corpus in tests/spec/invalid/."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from redtest.durations import parse_duration
from redtest.errors import SpecError, SpecErrors
from redtest.spec import model
from redtest.spec.build import load_suite

REDIS = """\
version: 1
services:
  cache:
    interfaces: {main: {protocol: redis}}
"""

APP = """\
version: 1
services:
  app:
    command: [python, app.py]
    interfaces: {api: {protocol: http, port: 8080}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _errors(tmp_path: Path, text: str) -> list[str]:
    """Every error of the file as `line:col: message` (file name dropped)."""
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_suite(path)
    exc = info.value
    found = exc.errors if isinstance(exc, SpecErrors) else [exc]
    return [str(e).removeprefix(f"{path}:") for e in found]


def _one_error(tmp_path: Path, text: str) -> str:
    (error,) = _errors(tmp_path, text)
    return error


def _scenario(steps: str, head: str = REDIS) -> str:
    return head + "scenarios:\n  s:\n    steps:\n" + textwrap.indent(textwrap.dedent(steps), "      ")


# ------------------------------------------------------------ redis arguments


def test_boolean_step_argument_is_refused(tmp_path) -> None:
    error = _one_error(tmp_path, _scenario("- cache.main.set: {key: true, value: 1.0}\n"))
    assert error.startswith("8:31: ")
    assert "argument 'key' of cache.main.set must be a string or a number, not a boolean" in error


def test_boolean_seed_argument_is_refused(tmp_path) -> None:
    text = REDIS + "seeds:\n  sd:\n    - cache.main.set: {key: k, value: false}\n"
    error = _one_error(tmp_path, text)
    assert error.startswith("7:39: ")
    assert "argument 'value' of cache.main.set must be a string or a number, not a boolean" in error


def test_boolean_inline_seed_argument_is_refused(tmp_path) -> None:
    text = REDIS + "    seed:\n      - cache.main.lpush: {key: true, value: x}\n"
    assert "'key' of cache.main.lpush must be a string or a number, not a boolean" in _one_error(
        tmp_path, text
    )


@pytest.mark.parametrize(
    ("value", "kind"), [("null", "null"), ("[a]", "a list"), ("{a: 1}", "a mapping")]
)
def test_non_scalar_step_argument_is_refused(tmp_path, value: str, kind: str) -> None:
    error = _one_error(tmp_path, _scenario(f"- cache.main.get: {{key: {value}}}\n"))
    assert f"must be a string or a number, not {kind}" in error


def test_del_accepts_a_list_of_keys(tmp_path) -> None:
    suite = load_suite(_write(tmp_path, _scenario("- cache.main.del: {key: [a, b, 3]}\n")))
    step = suite.scenarios["s"].steps[0]
    assert isinstance(step, model.Call) and step.args == {"key": ["a", "b", 3]}


def test_del_list_items_must_be_scalars(tmp_path) -> None:
    error = _one_error(tmp_path, _scenario("- cache.main.del: {key: [a, true, c]}\n"))
    assert error.startswith("8:35: ")
    assert "key[1] of cache.main.del must be a string or a number, not a boolean" in error


def test_del_needs_at_least_one_key(tmp_path) -> None:
    error = _one_error(tmp_path, _scenario("- cache.main.del: {key: []}\n"))
    assert "cache.main.del needs at least one key" in error


def test_command_takes_one_scalar_as_args(tmp_path) -> None:
    suite = load_suite(_write(tmp_path, _scenario('- cache.main.command: {cmd: TTL, args: "user:1"}\n')))
    step = suite.scenarios["s"].steps[0]
    assert isinstance(step, model.Call) and step.args["args"] == "user:1"


@pytest.mark.parametrize(("args", "col"), [("[a, true]", 50), ("[a, null]", 50), ("[[a]]", 47)])
def test_command_args_items_must_be_scalars(tmp_path, args: str, col: int) -> None:
    error = _one_error(tmp_path, _scenario(f"- cache.main.command: {{cmd: GET, args: {args}}}\n"))
    assert error.startswith(f"8:{col}: ")
    assert "of cache.main.command must be a string or a number" in error


@pytest.mark.parametrize("args", ["{a: 1}", "true", "null"])
def test_command_args_must_be_a_list_or_one_scalar(tmp_path, args: str) -> None:
    error = _one_error(tmp_path, _scenario(f"- cache.main.command: {{cmd: GET, args: {args}}}\n"))
    assert "argument 'args' of cache.main.command must be a list or one string or number" in error


# ------------------------------------------------------------ seed steps


def test_seed_step_cannot_allow_errors(tmp_path) -> None:
    text = REDIS + "seeds:\n  sd:\n    - cache.main.ping: {}\n      allow_error: true\n"
    error = _one_error(tmp_path, text)
    assert error.startswith("8:7: ")
    assert "seed steps cannot have 'allow_error'" in error


def test_inline_seed_step_cannot_allow_errors(tmp_path) -> None:
    text = REDIS + "    seed:\n      - cache.main.ping: {}\n        allow_error: true\n"
    assert "seed steps cannot have 'allow_error'" in _one_error(tmp_path, text)


def test_scenario_step_may_allow_errors(tmp_path) -> None:
    suite = load_suite(_write(tmp_path, _scenario("- cache.main.ping: {}\n  allow_error: true\n")))
    assert suite.scenarios["s"].steps[0].allow_error


# ------------------------------------------------------------ names


def test_bad_service_name_is_reported_at_its_key(tmp_path) -> None:
    text = """\
    version: 1
    services:
      good:
        interfaces: {main: {protocol: redis}}
      bad-one:
        interfaces: {main: {protocol: redis}}
      also bad:
        interfaces: {main: {protocol: redis}}
    """
    errors = _errors(tmp_path, text)
    assert [e.split(": ")[0] for e in errors] == ["5:3", "7:3"]
    assert "'bad-one'" in errors[0] and "'also bad'" in errors[1]


def test_bad_seed_and_scenario_names_are_reported_at_their_keys(tmp_path) -> None:
    text = REDIS + textwrap.dedent("""\
    seeds:
      ok: [{cache.main.ping: {}}]
      9bad: [{cache.main.ping: {}}]
    scenarios:
      fine:
        steps: [{sleep: 1}]
      "bad name!":
        steps: [{sleep: 1}]
    """)
    errors = _errors(tmp_path, text)
    assert errors[0].startswith("7:3: ") and "'9bad'" in errors[0]
    assert errors[1].startswith("11:3: ") and "'bad name!'" in errors[1]
    assert len(errors) == 2


# ------------------------------------------------------------ healthchecks


@pytest.mark.parametrize(
    ("healthcheck", "found"),
    [
        ('{tcp: "localhost:6379", redis: ping}', "found 'tcp', 'redis'"),
        ("{}", "found none"),
        ("{timeout: 2s}", "found 'timeout'"),
    ],
)
def test_healthcheck_with_not_one_kind_says_so(tmp_path, healthcheck: str, found: str) -> None:
    error = _one_error(tmp_path, REDIS + f"    healthcheck: {healthcheck}\n")
    assert error.startswith("5:18: ")
    assert "a healthcheck holds exactly one of tcp, redis or http" in error
    assert found in error
    assert "step" not in error


def test_http_healthcheck_needs_an_http_interface(tmp_path) -> None:
    error = _one_error(tmp_path, REDIS + "    healthcheck: {http: /health}\n")
    assert error.startswith("5:5: ")
    assert "service 'cache' has an http healthcheck but no http interface" in error


def test_http_healthcheck_on_a_process_without_http_interface(tmp_path) -> None:
    text = """\
    version: 1
    services:
      app:
        command: [python, app.py]
        healthcheck: {http: /health}
    """
    assert "has an http healthcheck but no http interface" in _one_error(tmp_path, text)


def test_a_command_and_an_image_together_are_refused(tmp_path) -> None:
    """A compose user expects the command to run inside the image; redtest would run it
    on this machine and ignore the image, so the pair is refused at the image."""
    error = _one_error(tmp_path, APP + "    image: python:3.12\n")
    assert error.startswith("6:12: ")  # the image's value
    assert "service 'app' has both a command and an image" in error


def test_own_sqlite_interface_has_no_port_template(tmp_path) -> None:
    text = APP.replace("[python, app.py]", '[python, app.py, "${self.db.port}"]').replace(
        "interfaces: {api: {protocol: http, port: 8080}}",
        "interfaces: {api: {protocol: http, port: 8080}, db: {protocol: sqlite, path: x.db}}",
    )
    error = _one_error(tmp_path, text)
    assert error.startswith("4:31: "), error  # the command item holding it
    assert "${self.db.port}: 'db' is a sqlite interface" in error


def test_redis_healthcheck_needs_a_redis_interface(tmp_path) -> None:
    error = _one_error(tmp_path, APP + "    healthcheck: {redis: ping}\n")
    assert error.startswith("6:5: ")
    assert "service 'app' has a redis healthcheck but no redis interface" in error


def test_matching_healthchecks_pass(tmp_path) -> None:
    text = REDIS + "    healthcheck: {redis: ping}\n" + APP.split("services:\n")[1] + (
        "    healthcheck: {http: /health, timeout: 2s}\n"
    )
    suite = load_suite(_write(tmp_path, text))
    assert suite.services["app"].healthcheck is not None


# ------------------------------------------------------------ timeouts


@pytest.mark.parametrize("value", ["0", "0ms", "0s", "0.0s"])
def test_zero_step_timeout_is_refused(tmp_path, value: str) -> None:
    error = _one_error(tmp_path, _scenario(f"- cache.main.ping: {{}}\n  timeout: {value}\n"))
    assert error.startswith("9:18: ")
    assert "timeout must be more than 0" in error


def test_zero_service_timeout_is_refused(tmp_path) -> None:
    error = _one_error(tmp_path, REDIS + "    timeout: 0\n")
    assert error.startswith("5:14: ") and "timeout must be more than 0" in error


def test_zero_healthcheck_timeout_is_refused(tmp_path) -> None:
    error = _one_error(tmp_path, REDIS + "    healthcheck: {redis: ping, timeout: 0ms}\n")
    assert "timeout must be more than 0" in error


def test_zero_or_bad_http_timeout_argument_is_refused(tmp_path) -> None:
    errors = _errors(tmp_path, _scenario(
        "- app.api.get: {path: /x, timeout: 0}\n- app.api.get: {path: /x, timeout: soon}\n", APP
    ))
    assert errors[0].startswith("9:42: ") and "timeout must be more than 0" in errors[0]
    assert errors[1].startswith("10:42: ") and "not a duration: 'soon'" in errors[1]


def test_small_positive_timeouts_pass(tmp_path) -> None:
    suite = load_suite(_write(tmp_path, _scenario("- cache.main.ping: {}\n  timeout: 1ms\n")))
    step = suite.scenarios["s"].steps[0]
    assert isinstance(step, model.Call) and step.timeout == 0.001


# ------------------------------------------------------------ HTTP arguments


@pytest.mark.parametrize("method", ['"BAD METHOD"', '"GET\\r\\n"', '""', "[GET]", "null", "1.5"])
def test_bad_http_method_is_refused(tmp_path, method: str) -> None:
    error = _one_error(tmp_path, _scenario(f"- app.api.request: {{method: {method}, path: /x}}\n", APP))
    assert error.startswith("9:35: ")
    assert "argument 'method' of app.api.request" in error


@pytest.mark.parametrize("method", ["PATCH", "patch", "M-SEARCH", "X_CUSTOM!"])
def test_http_token_methods_pass(tmp_path, method: str) -> None:
    load_suite(_write(tmp_path, _scenario(f"- app.api.request: {{method: {method}, path: /x}}\n", APP)))


def test_json_null_is_a_value(tmp_path) -> None:
    suite = load_suite(_write(tmp_path, _scenario("- app.api.post: {path: /x, json: null}\n", APP)))
    step = suite.scenarios["s"].steps[0]
    assert isinstance(step, model.Call) and "json" in step.args and step.args["json"] is None


def test_json_and_body_together_are_refused(tmp_path) -> None:
    error = _one_error(tmp_path, _scenario("- app.api.post: {path: /x, json: {a: 1}, body: x}\n", APP))
    assert "give either json or body, not both" in error


@pytest.mark.parametrize(
    ("params", "col", "what"),
    [
        ("{z: null}", 45, "params.z"),
        ("{a: 1, d: {b: 1}}", 51, "params.d"),
        ("{l: [1, null]}", 49, "params.l[1]"),
        ("{l: [[1]]}", 46, "params.l[0]"),
    ],
)
def test_bad_query_parameter_values_are_refused(tmp_path, params: str, col: int, what: str) -> None:
    error = _one_error(tmp_path, _scenario(f"- app.api.get: {{path: /x, params: {params}}}\n", APP))
    assert error.startswith(f"9:{col}: ")
    assert f"{what} of app.api.get must be" in error


def test_good_query_parameters_pass(tmp_path) -> None:
    load_suite(_write(tmp_path, _scenario(
        "- app.api.get: {path: /x, params: {a: 1, b: x, c: true, d: [1, two, false], e: []}}\n", APP
    )))


@pytest.mark.parametrize(
    ("headers", "what"),
    [
        ("{X-L: [1, 2]}", "headers.X-L"),
        ("{X-L: {a: 1}}", "headers.X-L"),
        ("{X-L: null}", "headers.X-L"),
        ("{X-L: true}", "headers.X-L"),
        ('{X-L: "a\\nb"}', "headers.X-L"),
        ('{"Bad Name": x}', "header name 'Bad Name'"),
    ],
)
def test_bad_headers_are_refused(tmp_path, headers: str, what: str) -> None:
    error = _one_error(tmp_path, _scenario(f"- app.api.get: {{path: /x, headers: {headers}}}\n", APP))
    assert what in error


def test_good_headers_pass(tmp_path) -> None:
    load_suite(_write(tmp_path, _scenario(
        "- app.api.get: {path: /x, headers: {X-A: yes, X-B: 2, Content-Type: text/plain}}\n", APP
    )))


@pytest.mark.parametrize(("arg", "value"), [("headers", "[a]"), ("params", "x"), ("body", "{a: 1}"),
                                            ("body", "[a]"), ("path", "null"), ("path", "[a]")])
def test_http_argument_types(tmp_path, arg: str, value: str) -> None:
    extra = "" if arg == "path" else "path: /x, "
    error = _one_error(tmp_path, _scenario(f"- app.api.post: {{{extra}{arg}: {value}}}\n", APP))
    assert f"argument {arg!r} of app.api.post must be" in error


# ------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("700ms", 0.7), ("100ms", 0.1), ("1.1s", 1.1), ("0.3s", 0.3), (700, 0.7), ("700", 0.7),
     ("1m", 60.0), ("1.5m", 90.0), ("2h", 7200.0), (0.5, 0.0005), ("0.1ms", 0.0001)],
)
def test_durations_are_exact_decimals(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, "-1s", True, None, "1e3ms"])
def test_not_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_sleep_700ms_is_point_seven(tmp_path) -> None:
    suite = load_suite(_write(tmp_path, _scenario("- sleep: 700ms\n")))
    step = suite.scenarios["s"].steps[0]
    assert isinstance(step, model.Sleep) and step.seconds == 0.7 and repr(step.seconds) == "0.7"


# ------------------------------------------------------------ wording


def test_null_section_names_null_once(tmp_path) -> None:
    error = _one_error(tmp_path, "version: 1\nseeds: null\n")
    assert error.startswith("2:8: ")
    assert "seeds must be a mapping, not null" in error
    assert "null None" not in error


def test_null_step_names_null_once(tmp_path) -> None:
    error = _one_error(tmp_path, "version: 1\nscenarios:\n  s:\n    steps:\n      - null\n")
    assert "steps[0] must be a mapping, not null" in error
    assert "None" not in error


def test_boolean_in_schema_error_is_written_as_yaml(tmp_path) -> None:
    error = _one_error(tmp_path, "version: 1\nseeds: true\n")
    assert "not a boolean true" in error


# ------------------------------------------------------------ as: names


def test_duplicate_as_names_are_refused_with_both_places(tmp_path) -> None:
    text = _scenario("- cache.main.ping: {}\n  as: x\n- cache.main.ping: {}\n  as: x\n")
    error = _one_error(tmp_path, text)
    assert error.startswith("11:13: ")
    assert "'as: x' is already the name of steps[0]" in error
    assert "suite.yaml:9:13)" in error


def test_same_as_name_in_two_scenarios_is_fine(tmp_path) -> None:
    text = REDIS + textwrap.dedent("""\
    scenarios:
      a:
        steps: [{cache.main.ping: {}, as: x}]
      b:
        steps: [{cache.main.ping: {}, as: x}]
    """)
    load_suite(_write(tmp_path, text))


# ------------------------------------------------------------ other argument shapes

DB = """\
version: 1
services:
  db:
    interfaces: {main: {protocol: sqlite, path: app.db}}
"""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ('{sql: ""}', "argument 'sql' of db.main.exec must be a non-empty SQL string, not a string"),
        ("{sql: [a]}", "argument 'sql' of db.main.exec must be a non-empty SQL string, not a list"),
        ("{sql: x, params: 3}", "argument 'params' of db.main.exec must be a list"),
        ("{sql: x, params: [[1]]}", "params[0] of db.main.exec must be a string, a number, true/false or null"),
        ("{sql: x, params: {a: {b: 1}}}", "params.a of db.main.exec must be"),
    ],
)
def test_sqlite_argument_shapes(tmp_path, args: str, message: str) -> None:
    assert message in _one_error(tmp_path, _scenario(f"- db.main.exec: {args}\n", DB))


def test_sqlite_plain_params_pass(tmp_path) -> None:
    load_suite(_write(tmp_path, _scenario(
        "- db.main.exec: {sql: 'INSERT INTO t VALUES (?, ?, ?)', params: [1, x, null]}\n"
        "- db.main.query: {sql: 'SELECT :a', params: {a: true}}\n", DB
    )))


@pytest.mark.parametrize("cmd", ["1", '""', "[GET]", "null"])
def test_command_needs_a_command_name(tmp_path, cmd: str) -> None:
    error = _one_error(tmp_path, _scenario(f"- cache.main.command: {{cmd: {cmd}}}\n"))
    assert "argument 'cmd' of cache.main.command must be a command name such as HGETALL" in error


def test_a_rule_in_shorthand_is_shown_its_working_form(tmp_path) -> None:
    """`- delay: 500ms` reads naturally but is refused: the error shows the form that works."""
    text = REDIS + (
        "faults:\n  f:\n    target: cache.main\n    rules:\n"
        "      - delay: 500ms\n      - error: READONLY\n      - response: 1\n"
    )
    errors = _errors(tmp_path, text)
    assert len(errors) == 3, errors
    assert errors[0].startswith("9:16: ") and errors[0].endswith("; write delay: {delay: 500ms}")
    assert errors[1].endswith("; write error: {message: READONLY}")
    assert errors[2].endswith("; write response: {value: 1}")
