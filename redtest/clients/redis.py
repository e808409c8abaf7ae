"""The Redis interface: SPEC §5's methods over one redis-py connection, each call → Response.

Decisions (see docs/expressions.md for the user-facing side):

- One `redis.Connection` per interface, no pool: steps are sequential, and a single
  connection is what a fault proxy counts. After a connection error or a timeout the
  connection is dropped and the next call reconnects.
- No retries anywhere: `Retry(NoBackoff(), 0)` and no `retry_on_error`, so a fault that
  fires once is seen once (recent redis-py retries connection errors by default).
- No handshake traffic beyond `CLIENT SETNAME` when a client name is given: RESP2 (no
  `HELLO`) and `driver_info=None` (no `CLIENT SETINFO`), so fault rules and their
  `times`/`after` counters only ever see the commands a step sends.
- Raw replies: commands go through `send_command`/`read_response`, not through
  redis-py's response callbacks (which turn `EXPIRE`'s 1 into True, etc.). Map-shaped
  replies (HGETALL, CONFIG GET, ... in RESP2; any map in RESP3) become dicts.
- Error replies keep their full text (`READONLY You can't write...`): redis-py's parser
  strips known prefixes, so the parser here maps every error reply to a plain ResponseError.
- Replies are decoded as UTF-8 with `backslashreplace`: text reads as text, and binary
  bytes stay visible and JSON/terminal-safe (b"\\xff" reads as the 4 characters `\\xff`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from redis.backoff import NoBackoff
from redis.connection import Connection, DefaultParser
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from redtest.clients.response import Response
from redtest.spec.methods import check_arguments

_ENCODING_ERRORS = "backslashreplace"


class _RawErrorParser(DefaultParser):  # type: ignore[misc, valid-type]
    """The default (hiredis) parser, but error replies keep their prefix: `-READONLY x` → "READONLY x"."""

    EXCEPTION_CLASSES: dict[str, Any] = {}

    @classmethod
    def parse_error(cls, response: Any) -> ResponseError:
        return ResponseError(response)


# Commands whose RESP2 reply is a flat [k1, v1, k2, v2, ...] list that RESP3 sends as a map.
_MAP_REPLIES: frozenset[str] = frozenset(
    {
        "HGETALL",
        "CONFIG GET",
        "HELLO",
        "ACL GETUSER",
        "XINFO STREAM",
        "MEMORY STATS",
        "CLIENT TRACKINGINFO",
        "FUNCTION STATS",
        "COMMAND DOCS",
    }
)
# Commands whose RESP2 reply is a list of such flat lists.
_MAP_LIST_REPLIES: frozenset[str] = frozenset({"XINFO GROUPS", "XINFO CONSUMERS"})
_WITH_SUBCOMMAND: frozenset[str] = frozenset(
    {"CONFIG", "ACL", "XINFO", "MEMORY", "CLIENT", "FUNCTION", "COMMAND"}
)


class ArgumentError(ValueError):
    """A step's arguments cannot be sent (missing, unknown, or of an unsupported type)."""


# Commands that leave state on a connection (a database, a subscription, a transaction,
# a protocol, a name) which whoever uses the connection next would inherit.
CONNECTION_STATE_COMMANDS = frozenset({
    "AUTH", "CLIENT", "HELLO", "MONITOR", "MULTI", "PSUBSCRIBE", "QUIT", "READONLY",
    "READWRITE", "RESET", "SELECT", "SSUBSCRIBE", "SUBSCRIBE", "WATCH",
})


class RedisInterface:
    """A Redis interface (`cache.main`): `call(method, args)` and one Python method per redis method."""

    protocol = "redis"

    def __init__(
        self, host: str, port: int, *, timeout: float, client_name: str | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.client_name = client_name
        self._lock = threading.Lock()  # one connection: one call at a time
        # set by a `command` that may have changed the connection's state (SELECT 1, ...)
        self.changed_connection = False
        self._conn = Connection(
            host=host,
            port=port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            client_name=client_name,
            driver_info=None,
            protocol=2,
            decode_responses=False,  # decoded here, leniently (see module docstring)
            parser_class=_RawErrorParser,
            health_check_interval=0,
        )

    def __repr__(self) -> str:
        return f"RedisInterface({self.host}:{self.port})"

    # -- the generic entry point used by steps and seeds ----------------------------------

    def call(
        self, method: str, args: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Response:
        """Run one SPEC §5 method (`get`, `set`, `del`, ..., `command`) and describe the outcome."""
        started = time.perf_counter()
        try:
            argv = self._argv(method, dict(args or {}))
        except ArgumentError as exc:
            return Response(data=None, ok=False, error=str(exc), duration_ms=0)
        if method == "command" and argv[0].upper() in CONNECTION_STATE_COMMANDS:
            self.changed_connection = True
        try:
            with self._lock:
                raw = self._execute(argv, timeout)
            data = self._shape(method, argv, raw)
        except ResponseError as exc:
            return Response(None, False, _text(str(exc)), _elapsed_ms(started))
        except (TimeoutError, RedisTimeoutError) as exc:
            limit = self.timeout if timeout is None else timeout
            doing = "connecting to" if "connect" in str(exc) else "waiting for a reply from"
            text = f"Timeout {doing} {self.host}:{self.port} (after {limit:g} s)"
            return Response(None, False, text, _elapsed_ms(started))
        except (RedisError, OSError) as exc:
            return Response(None, False, _describe(exc), _elapsed_ms(started))
        return Response(data=data, ok=True, error=None, duration_ms=_elapsed_ms(started))

    def close(self) -> None:
        """Close the connection (the next call would reconnect)."""
        with self._lock:
            self._conn.disconnect()
            self.changed_connection = False

    def __enter__(self) -> RedisInterface:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one Python method per redis method, for assertion expressions ---------------------

    def get(self, key: Any) -> Response:
        return self.call("get", {"key": key})

    def set(self, key: Any, value: Any) -> Response:
        return self.call("set", {"key": key, "value": value})

    def delete(self, key: Any) -> Response:
        """`del` (a Python keyword)."""
        return self.call("del", {"key": key})

    def keys(self, pattern: Any = "*") -> Response:
        return self.call("keys", {"pattern": pattern})

    def ping(self) -> Response:
        return self.call("ping", {})

    def incr(self, key: Any) -> Response:
        return self.call("incr", {"key": key})

    def lpush(self, key: Any, value: Any) -> Response:
        return self.call("lpush", {"key": key, "value": value})

    def rpush(self, key: Any, value: Any) -> Response:
        return self.call("rpush", {"key": key, "value": value})

    def lrange(self, key: Any, start: Any = 0, stop: Any = -1) -> Response:
        return self.call("lrange", {"key": key, "start": start, "stop": stop})

    def command(self, cmd: Any, args: Any = None) -> Response:
        return self.call("command", {"cmd": cmd, "args": [] if args is None else args})

    # -- internals -------------------------------------------------------------------------

    def _argv(self, method: str, args: dict[str, Any]) -> list[str]:
        """The command line for a method call, checked against the method table."""
        try:
            spec = check_arguments("redis", method, args)
        except ValueError as exc:
            raise ArgumentError(str(exc)) from None
        values = {**dict(spec.optional), **args}

        if method == "command":
            cmd = values["cmd"]
            if not isinstance(cmd, str) or not cmd.split():
                raise ArgumentError("command: 'cmd' must be a command name such as HGETALL")
            extra = values["args"]
            if extra is None:
                extra = []
            elif not isinstance(extra, (list, tuple)):
                extra = [extra]  # `args: user:1` is one argument
            # `cmd: "CONFIG GET"` is allowed: the words are the command and its subcommand.
            return cmd.split() + [_arg(a, "args") for a in extra]
        if method == "del" and isinstance(values["key"], (list, tuple)):
            return ["DEL"] + [_arg(k, "key") for k in values["key"]]
        order = {"lrange": ("key", "start", "stop")}.get(method, spec.arguments)
        return [method.upper()] + [_arg(values[name], name) for name in order]

    def _execute(self, argv: list[str], timeout: float | None) -> Any:
        conn = self._conn
        if timeout is not None and timeout != self.timeout:
            # The per-call timeout applies to connecting, writing and reading alike.
            conn.socket_timeout = timeout
            conn.socket_connect_timeout = timeout
            try:
                if conn._sock is not None:
                    conn._sock.settimeout(timeout)
                return self._roundtrip(conn, argv, timeout)
            finally:
                conn.socket_timeout = self.timeout
                conn.socket_connect_timeout = self.timeout
                if conn._sock is not None:
                    conn._sock.settimeout(self.timeout)
        return self._roundtrip(conn, argv, None)

    @staticmethod
    def _roundtrip(conn: Connection, argv: list[str], timeout: float | None) -> Any:
        if conn._sock is not None:
            # A connection the server (or a `down` fault) closed while we were idle, or one
            # holding unread bytes, is replaced before sending: nothing was sent on it, so
            # this is not a retry, and a step never fails because of a previous one.
            try:
                stale = conn.can_read(timeout=0)
            except (RedisError, OSError):
                stale = True
            if stale:
                conn.disconnect()
        conn.send_command(*argv)
        if timeout is None:
            return conn.read_response()
        return conn.read_response(timeout=timeout)

    def _shape(self, method: str, argv: list[str], raw: Any) -> Any:
        """Turn a raw reply into SPEC §5's `.data`."""
        value = _decode(raw)
        if method == "keys":
            # Server order is hash-table order, which changes between runs: sort for stable tests.
            # (A fault's `response` rule may answer with anything: shape only a list of keys.)
            if isinstance(value, list) and all(isinstance(k, str) for k in value):
                return sorted(value)
            return value
        if method == "lrange":
            return value
        if method == "command":
            return _as_mapping(_command_name(argv), value)
        return {"value": value}


def _arg(value: Any, name: str) -> str:
    """Strings pass through; numbers become their decimal text; anything else is refused."""
    if isinstance(value, bool) or value is None:
        # redis-py refuses these too: "true"/"1"/"True" would each be a guess.
        raise ArgumentError(
            f"argument {name!r} must be a string or a number, not {_type_name(value)}"
        )
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", _ENCODING_ERRORS)
    raise ArgumentError(f"argument {name!r} must be a string or a number, not {_type_name(value)}")


def _type_name(value: Any) -> str:
    return {bool: "a boolean", type(None): "null", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _decode(value: Any) -> Any:
    """bytes → str all the way down (RESP3 maps and sets included)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", _ENCODING_ERRORS)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {_hashable(_decode(k)): _decode(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_decode(v) for v in value), key=repr)
    if isinstance(value, ResponseError):  # an error nested in an EXEC reply
        return {"error": _text(str(value))}
    return value


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _command_name(argv: list[str]) -> str:
    name = argv[0].upper()
    if name in _WITH_SUBCOMMAND and len(argv) > 1:
        return f"{name} {argv[1].upper()}"
    return name


def _pairs(value: Any) -> Any:
    if isinstance(value, list) and len(value) % 2 == 0:
        return {_hashable(value[i]): value[i + 1] for i in range(0, len(value), 2)}
    return value


def _as_mapping(command: str, value: Any) -> Any:
    """RESP2 flat pair lists of map-shaped commands → dict (RESP3 maps already are)."""
    if command in _MAP_REPLIES:
        return _pairs(value)
    if command in _MAP_LIST_REPLIES and isinstance(value, list):
        return [_pairs(v) for v in value]
    return value


def _text(message: str) -> str:
    return message.strip() or "error reply with no message"


def _describe(exc: BaseException) -> str:
    """A connection-level failure as one readable line."""
    # redis-py shows OS errors as tuples: "... : (104, 'Connection reset by peer')"
    text = re.sub(r"\((\d+), '([^']*)'\)", r"\2", str(exc)).strip()
    return text or type(exc).__name__


def _elapsed_ms(started: float) -> int:
    # Floor, so a 500 ms delay never shows as 499 because of rounding up elsewhere.
    return int((time.perf_counter() - started) * 1000)
