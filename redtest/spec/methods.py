"""The methods each interface protocol offers, with their arguments (SPEC §5, §8).

One table read by the schema tests, the reference checks, the expression compiler
and the clients, so a method exists everywhere or nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redtest.durations import parse_duration


@dataclass(frozen=True)
class Method:
    """A method's argument names: required ones, then optional ones with their defaults."""

    required: tuple[str, ...] = ()
    optional: tuple[tuple[str, object], ...] = ()

    @property
    def arguments(self) -> tuple[str, ...]:
        return self.required + tuple(name for name, _ in self.optional)


REDIS_METHODS: dict[str, Method] = {
    "get": Method(("key",)),
    "set": Method(("key", "value")),
    "del": Method(("key",)),
    "keys": Method((), (("pattern", "*"),)),
    "ping": Method(),
    "incr": Method(("key",)),
    "lpush": Method(("key", "value")),
    "rpush": Method(("key", "value")),
    "lrange": Method(("key",), (("start", 0), ("stop", -1))),
    "command": Method(("cmd",), (("args", []),)),
}

_HTTP_OPTIONAL: tuple[tuple[str, object], ...] = (
    ("json", None),
    ("body", None),
    ("headers", {}),
    ("params", {}),
    ("timeout", None),
)

HTTP_METHODS: dict[str, Method] = {
    "get": Method(("path",), _HTTP_OPTIONAL),
    "post": Method(("path",), _HTTP_OPTIONAL),
    "put": Method(("path",), _HTTP_OPTIONAL),
    "delete": Method(("path",), _HTTP_OPTIONAL),
    "request": Method(("method", "path"), _HTTP_OPTIONAL),
}

SQLITE_METHODS: dict[str, Method] = {
    "query": Method(("sql",), (("params", []),)),
    "exec": Method(("sql",), (("params", []),)),
}

METHODS: dict[str, dict[str, Method]] = {
    "redis": REDIS_METHODS,
    "http": HTTP_METHODS,
    "sqlite": SQLITE_METHODS,
}

# `del` is a Python keyword, so expressions spell it `delete` (SPEC §5); for HTTP
# interfaces `delete` is the DELETE request itself.
EXPRESSION_ALIASES: dict[str, dict[str, str]] = {"redis": {"delete": "del"}, "http": {}, "sqlite": {}}


def resolve_method(protocol: str, name: str, *, in_expression: bool = False) -> str | None:
    """The canonical method name for `name` on `protocol`, or None when there is none."""
    if in_expression:
        name = EXPRESSION_ALIASES.get(protocol, {}).get(name, name)
    return name if name in METHODS.get(protocol, {}) else None


def check_arguments(protocol: str, method: str, args: dict[str, object]) -> Method:
    """The method's spec once `args` name no unknown and omit no required argument.

    Raises ValueError with a one-line reason; clients turn it into a failed Response.
    """
    table = METHODS[protocol]
    spec = table.get(method)
    if spec is None:
        raise ValueError(f"{protocol} interfaces have no method {method!r} (one of {', '.join(table)})")
    unknown = sorted(set(args) - set(spec.arguments))
    if unknown:
        raise ValueError(f"{method}: unknown argument(s) {', '.join(unknown)}")
    missing = [name for name in spec.required if name not in args]
    if missing:
        raise ValueError(f"{method}: missing argument(s) {', '.join(missing)}")
    return spec


# ----------------------------------------------------------------- argument values
#
# `check_arguments` checks names; `argument_problems` checks values, so that what a
# client would refuse at run time (or send mangled) is a validation error instead.

ArgPath = tuple[str | int, ...]  # relative to the arguments mapping: ("params", "z")

# RFC 9110 token characters: what an HTTP method name and a header name may hold.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def kind_of(value: object) -> str:
    """A value's kind as a YAML user names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


def _is_scalar(value: object) -> bool:
    """A string or a number — not a boolean (which is an int to Python), not null."""
    return isinstance(value, str) or (
        isinstance(value, (int, float)) and not isinstance(value, bool)
    )


def _where(path: ArgPath) -> str:
    text = str(path[0])
    for part in path[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return f"argument {text!r}" if len(path) == 1 else text


def argument_problems(
    protocol: str, method: str, args: Mapping[str, Any], label: str
) -> list[tuple[ArgPath, str]]:
    """Every argument value a client would refuse or mangle, as (path, message).

    `label` names the call in messages (`cache.main.set`). Unknown and missing
    argument names are `check_arguments`' business and are skipped here.
    """
    problems: list[tuple[ArgPath, str]] = []

    def bad(path: ArgPath, want: str, value: object) -> None:
        problems.append((path, f"{_where(path)} of {label} must be {want}, not {kind_of(value)}"))

    checker = {"redis": _redis_values, "http": _http_values, "sqlite": _sqlite_values}[protocol]
    checker(method, args, label, bad, problems)
    return problems


_Bad = Callable[[ArgPath, str, object], None]  # records "PATH of LABEL must be WANT, not KIND"


def _redis_values(
    method: str, args: Mapping[str, Any], label: str, bad: _Bad, problems: list[tuple[ArgPath, str]]
) -> None:
    # Redis arguments are strings or numbers (SPEC §5): true/false or null would each
    # be a guess at what to send, so the client refuses them; so do we, earlier.
    scalar = "a string or a number"
    for name, value in args.items():
        if method == "del" and name == "key" and isinstance(value, list):
            # docs/expressions.md: `del` also accepts a list of keys (one DEL).
            if not value:
                problems.append(((name,), f"{label} needs at least one key; the list is empty"))
            for i, item in enumerate(value):
                if not _is_scalar(item):
                    bad((name, i), scalar, item)
        elif method == "command" and name == "args":
            # A list, or one scalar sent as a single argument (`args: "user:1"`).
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if not _is_scalar(item):
                        bad((name, i), scalar, item)
            elif not _is_scalar(value):
                bad((name,), "a list or one string or number", value)
        elif method == "command" and name == "cmd":
            if not isinstance(value, str) or not value.split():
                bad((name,), "a command name such as HGETALL", value)
        elif not _is_scalar(value):
            bad((name,), scalar, value)


def _http_values(
    method: str, args: Mapping[str, Any], label: str, bad: _Bad, problems: list[tuple[ArgPath, str]]
) -> None:
    if "path" in args and not isinstance(args["path"], str):
        bad(("path",), "a string such as /orders/1", args["path"])
    if "method" in args:
        verb = args["method"]
        if not isinstance(verb, str):
            bad(("method",), "an HTTP method name such as PATCH", verb)
        elif not _TOKEN.match(verb):
            problems.append((("method",), (
                f"argument 'method' of {label}: {verb!r} is not an HTTP method name "
                "(letters, digits and !#$%&'*+-.^_`|~, e.g. PATCH)"
            )))
    # `json` is any YAML value, null included (it is sent as JSON `null`).
    if "body" in args:
        body = args["body"]
        if not _is_scalar(body):
            want = "text (use json: for structured data)" if isinstance(body, (list, Mapping)) else "text"
            bad(("body",), want, body)
        elif "json" in args:
            problems.append((("body",), f"{label}: give either json or body, not both"))
    if "headers" in args:
        headers = args["headers"]
        if not isinstance(headers, Mapping):
            bad(("headers",), "a mapping of header names to values", headers)
        else:
            for name, value in headers.items():
                if not _TOKEN.match(str(name)):
                    problems.append((("headers", name), (
                        f"header name {name!r} of {label} is not valid "
                        "(letters, digits and !#$%&'*+-.^_`|~)"
                    )))
                elif not _is_scalar(value):
                    # Values are sent as text: write the text you mean ("true", "1,2").
                    bad(("headers", name), "a string or a number", value)
                elif isinstance(value, str) and (value[:1].isspace() or "\r" in value or "\n" in value):
                    problems.append((("headers", name), (
                        f"headers.{name} of {label} cannot start with a space or hold a line break"
                    )))
    if "params" in args:
        params = args["params"]
        want = "a string, a number, true/false or a list of them"
        if not isinstance(params, Mapping):
            bad(("params",), "a mapping of query parameters", params)
        else:
            for name, value in params.items():
                if isinstance(value, list):
                    # A list repeats the key (`?l=1&l=2`); its items are single values.
                    for i, item in enumerate(value):
                        if not (_is_scalar(item) or isinstance(item, bool)):
                            bad(("params", name, i), "a string, a number or true/false", item)
                elif not (_is_scalar(value) or isinstance(value, bool)):
                    bad(("params", name), want, value)
    if "timeout" in args:
        problem = timeout_problem(args["timeout"])
        if problem:
            problems.append((("timeout",), f"argument 'timeout' of {label}: {problem}"))


def _sqlite_values(
    method: str, args: Mapping[str, Any], label: str, bad: _Bad, problems: list[tuple[ArgPath, str]]
) -> None:
    if "sql" in args and not (isinstance(args["sql"], str) and args["sql"].strip()):
        bad(("sql",), "a non-empty SQL string", args["sql"])
    params = args.get("params")
    if params is None:
        return
    if isinstance(params, Mapping):
        items: list[tuple[ArgPath, Any]] = [(("params", k), v) for k, v in params.items()]
    elif isinstance(params, list):
        items = [(("params", i), v) for i, v in enumerate(params)]
    else:
        bad(("params",), "a list (for ? placeholders) or a mapping (for :name)", params)
        return
    for path, value in items:
        # SQLite binds text, numbers and NULL (true/false become 1/0), not containers.
        if isinstance(value, (list, Mapping)):
            bad(path, "a string, a number, true/false or null", value)


def timeout_problem(value: object) -> str | None:
    """Why `value` is not a usable timeout, or None: a duration of more than zero
    (a zero timeout makes every connect fail at once, in odd ways)."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        return str(exc)
    if not seconds > 0:
        return f"a timeout must be more than 0, not {value!r}"
    return None
