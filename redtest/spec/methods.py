"""The methods each interface protocol offers, with their arguments (SPEC §5, §8).

One table read by the schema tests, the reference checks, the expression compiler
and the clients, so a method exists everywhere or nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass


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
