"""RedisInterface against a real redis-server, and against servers that misbehave."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from redtest.clients.redis import RedisInterface

# fixtures come from tests/clients/conftest.py; their types are named loosely here so this
# module doesn't import conftest (which would clash with other conftest modules)
RedisServer = Any


@pytest.fixture
def raw(flushed: RedisServer) -> Iterator[redis.Redis]:
    """A plain redis-py client for arranging data the interface can't write (binary)."""
    r = redis.Redis(flushed.host, flushed.port)
    yield r
    r.close()


# -- the table of SPEC §5 ----------------------------------------------------------------


def test_get_set(client: RedisInterface) -> None:
    assert client.call("get", {"key": "user:1"}).data == {"value": None}
    response = client.call("set", {"key": "user:1", "value": "alice"})
    assert (response.ok, response.error, response.data) == (True, None, {"value": "OK"})
    assert client.call("get", {"key": "user:1"}).data == {"value": "alice"}


def test_numbers_are_sent_as_text(client: RedisInterface) -> None:
    client.call("set", {"key": 7, "value": 3})
    assert client.call("get", {"key": "7"}).data == {"value": "3"}
    client.call("set", {"key": "f", "value": 1.5})
    assert client.call("get", {"key": "f"}).data == {"value": "1.5"}


def test_del_counts_removed_keys(client: RedisInterface) -> None:
    client.call("set", {"key": "a", "value": "1"})
    assert client.call("del", {"key": "a"}).data == {"value": 1}
    assert client.call("del", {"key": "a"}).data == {"value": 0}
    client.call("set", {"key": "a", "value": "1"})
    client.call("set", {"key": "b", "value": "1"})
    assert client.call("del", {"key": ["a", "b", "c"]}).data == {"value": 2}


def test_keys_are_sorted_and_default_to_all(client: RedisInterface) -> None:
    for key in ("order:3", "order:1", "user:1", "order:2"):
        client.call("set", {"key": key, "value": "x"})
    assert client.call("keys", {"pattern": "order:*"}).data == ["order:1", "order:2", "order:3"]
    assert client.call("keys", {}).data == ["order:1", "order:2", "order:3", "user:1"]
    assert client.call("keys", {"pattern": "none:*"}).data == []


def test_ping(client: RedisInterface) -> None:
    assert client.call("ping", {}).data == {"value": "PONG"}


def test_incr(client: RedisInterface) -> None:
    client.call("set", {"key": "counter", "value": "0"})
    assert client.call("incr", {"key": "counter"}).data == {"value": 1}
    assert client.call("get", {"key": "counter"}).data == {"value": "1"}
    failed = client.call("incr", {"key": "user"})
    assert failed.data == {"value": 1}


def test_lists(client: RedisInterface) -> None:
    assert client.call("rpush", {"key": "l", "value": "b"}).data == {"value": 1}
    assert client.call("rpush", {"key": "l", "value": "c"}).data == {"value": 2}
    assert client.call("lpush", {"key": "l", "value": "a"}).data == {"value": 3}
    assert client.call("lrange", {"key": "l"}).data == ["a", "b", "c"]
    assert client.call("lrange", {"key": "l", "start": 1}).data == ["b", "c"]
    assert client.call("lrange", {"key": "l", "start": 0, "stop": 0}).data == ["a"]
    assert client.call("lrange", {"key": "l", "start": "-2", "stop": -1}).data == ["b", "c"]
    assert client.call("lrange", {"key": "missing"}).data == []


def test_command_hash_replies_are_mappings(client: RedisInterface) -> None:
    hset = client.call(
        "command",
        {"cmd": "HSET", "args": ["user:1", "name", "alice", "email", "alice@example.com"]},
    )
    assert hset.data == 2
    hgetall = client.call("command", {"cmd": "HGETALL", "args": ["user:1"]})
    assert hgetall.data == {"name": "alice", "email": "alice@example.com"}
    assert client.call("command", {"cmd": "hgetall", "args": ["nope"]}).data == {}


def test_command_keeps_raw_resp_values(client: RedisInterface) -> None:
    client.call("set", {"key": "user:1", "value": "x"})
    # redis-py's callbacks would say True; the reply is the integer 1
    expire = client.call("command", {"cmd": "EXPIRE", "args": ["user:1", "3600"]})
    assert expire.data == 1 and type(expire.data) is int
    assert client.call("command", {"cmd": "TTL", "args": ["user:1"]}).data == 3600
    assert client.call("command", {"cmd": "EXISTS", "args": ["user:1"]}).data == 1
    assert client.call("command", {"cmd": "SET", "args": ["k", "v"]}).data == "OK"
    assert client.call("command", {"cmd": "GET", "args": ["nope"]}).data is None
    assert client.call("command", {"cmd": "PING"}).data == "PONG"
    assert client.call("command", {"cmd": "INCRBYFLOAT", "args": ["f", 1.5]}).data == "1.5"
    assert client.call("command", {"cmd": "TYPE", "args": ["k"]}).data == "string"
    client.call("command", {"cmd": "SADD", "args": ["s", "b", "a"]})
    assert sorted(client.call("command", {"cmd": "SMEMBERS", "args": ["s"]}).data) == ["a", "b"]
    mget = client.call("command", {"cmd": "MGET", "args": ["k", "nope"]})
    assert mget.data == ["v", None]


def test_command_arguments(client: RedisInterface) -> None:
    # a scalar `args` is one argument; `cmd` may carry the subcommand
    client.call("set", {"key": "one", "value": "1"})
    assert client.call("command", {"cmd": "GET", "args": "one"}).data == "1"
    config = client.call("command", {"cmd": "CONFIG GET", "args": ["maxmemory"]})
    assert config.data == {"maxmemory": "0"}
    config = client.call("command", {"cmd": "CONFIG", "args": ["GET", "maxmemory"]})
    assert config.data == {"maxmemory": "0"}


def test_command_transactions(client: RedisInterface) -> None:
    assert client.call("command", {"cmd": "MULTI"}).data == "OK"
    assert client.call("command", {"cmd": "SET", "args": ["t", "1"]}).data == "QUEUED"
    assert client.call("command", {"cmd": "INCR", "args": ["t"]}).data == "QUEUED"
    assert client.call("command", {"cmd": "EXEC"}).data == ["OK", 2]


def test_resp3_maps_after_hello_3(flushed: RedisServer) -> None:
    with RedisInterface(flushed.host, flushed.port, timeout=2) as iface:
        hello = iface.call("command", {"cmd": "HELLO", "args": [3]})
        assert hello.data["proto"] == 3 and hello.data["server"] == "redis"
        iface.call("command", {"cmd": "HSET", "args": ["h", "f", "v"]})
        assert iface.call("command", {"cmd": "HGETALL", "args": ["h"]}).data == {"f": "v"}
        assert iface.call("get", {"key": "nope"}).data == {"value": None}


def test_binary_values_are_shown_with_escapes(client: RedisInterface, raw: redis.Redis) -> None:
    raw.set("bin", b"ok\xff\x00")
    assert client.call("get", {"key": "bin"}).data == {"value": "ok\\xff\x00"}
    raw.set("text", "caf\u00e9".encode())
    assert client.call("get", {"key": "text"}).data == {"value": "caf\u00e9"}


def test_python_methods_for_expressions(client: RedisInterface) -> None:
    assert client.set(key="k", value="v").data == {"value": "OK"}
    assert client.get(key="k").data == {"value": "v"}
    assert client.get("k").data == {"value": "v"}
    assert client.keys(pattern="*").data == ["k"]
    assert client.keys().data == ["k"]
    assert client.delete(key="k").data == {"value": 1}
    assert client.ping().data == {"value": "PONG"}
    assert client.incr("n").data == {"value": 1}
    assert client.rpush("l", "a").data == {"value": 1}
    assert client.lpush(key="l", value="b").data == {"value": 2}
    assert client.lrange("l").data == ["b", "a"]
    assert client.lrange("l", 1, 1).data == ["a"]
    assert client.command(cmd="HSET", args=["h", "a", "1"]).data == 1
    assert client.command("HGETALL", ["h"]).data == {"a": "1"}
    assert client.command("DBSIZE").data == 3  # n, l, h


# -- errors ---------------------------------------------------------------------------------


def test_error_replies(client: RedisInterface) -> None:
    client.call("command", {"cmd": "HSET", "args": ["h", "a", "1"]})
    wrong = client.call("get", {"key": "h"})
    assert not wrong.ok and wrong.data is None
    assert wrong.error == "WRONGTYPE Operation against a key holding the wrong kind of value"
    unknown = client.call("command", {"cmd": "NOSUCH"})
    assert not unknown.ok and unknown.error.startswith("ERR unknown command")
    # the connection is still usable after an error reply
    assert client.call("ping", {}).ok


def test_error_prefixes_are_kept(fake_server) -> None:  # type: ignore[no-untyped-def]
    # redis-py strips prefixes it knows (READONLY, OOM, ...); the fault's text is kept whole
    replies = {
        b"SET": b"-READONLY You can't write against a read only replica.\r\n",
        b"GET": b"-OOM command not allowed\r\n",
        b"DEL": b"-ERR injected fault\r\n",
        b"INCR": b"-MOVED 3999 127.0.0.1:6381\r\n",
    }
    server = fake_server(reply=lambda cmd: replies[cmd[0]])
    with RedisInterface("127.0.0.1", server.port, timeout=2) as iface:
        assert iface.set("k", "v").error == "READONLY You can't write against a read only replica."
        assert iface.get("k").error == "OOM command not allowed"
        assert iface.delete("k").error == "ERR injected fault"
        assert iface.incr("k").error == "MOVED 3999 127.0.0.1:6381"


def test_injected_values(fake_server) -> None:  # type: ignore[no-untyped-def]
    # what a fault's `response` rule sends, whatever the command
    replies = {
        b"GET": b"$-1\r\n",
        b"SET": b"+OK\r\n",
        b"INCR": b":41\r\n",
        b"KEYS": b"$-1\r\n",
        b"LRANGE": b":7\r\n",
        b"HGETALL": b"$5\r\nhello\r\n",
    }
    server = fake_server(reply=lambda cmd: replies[cmd[0]])
    with RedisInterface("127.0.0.1", server.port, timeout=2) as iface:
        assert iface.get("k").data == {"value": None}
        assert iface.incr("k").data == {"value": 41}
        assert iface.keys().data is None
        assert iface.lrange("l").data == 7
        assert iface.command("HGETALL", ["h"]).data == "hello"


@pytest.mark.parametrize(
    ("method", "args", "error"),
    [
        ("get", {}, "get: missing argument(s) key"),
        ("get", {"key": "k", "extra": 1}, "get: unknown argument(s) extra"),
        (
            "set",
            {"key": "k", "value": True},
            "argument 'value' must be a string or a number, not a boolean",
        ),
        (
            "set",
            {"key": "k", "value": None},
            "argument 'value' must be a string or a number, not null",
        ),
        (
            "set",
            {"key": "k", "value": {"a": 1}},
            "argument 'value' must be a string or a number, not a mapping",
        ),
        ("command", {"cmd": ""}, "command: 'cmd' must be a command name such as HGETALL"),
        ("flushall", {}, "redis interfaces have no method 'flushall' (one of get, set, del, keys, ping, incr, lpush, rpush, lrange, command)"),
    ],
)
def test_bad_arguments_never_reach_the_server(
    fake_server,
    method: str,
    args: dict,
    error: str,  # type: ignore[no-untyped-def]
) -> None:
    server = fake_server(reply=lambda cmd: b"+OK\r\n")
    with RedisInterface("127.0.0.1", server.port, timeout=2) as iface:
        response = iface.call(method, args)
    assert (response.ok, response.error, response.data) == (False, error, None)
    assert server.commands == []


def test_connection_refused(flushed: RedisServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with RedisInterface("127.0.0.1", port, timeout=2) as iface:
            response = iface.ping()
    assert not response.ok and response.data is None
    assert "Connection refused" in response.error
    assert response.duration_ms < 1000


def test_timeout_on_a_server_that_never_answers(fake_server) -> None:  # type: ignore[no-untyped-def]
    server = fake_server(reply=lambda cmd: None)
    with RedisInterface("127.0.0.1", server.port, timeout=0.3) as iface:
        started = time.monotonic()
        response = iface.get("k")
        elapsed = time.monotonic() - started
    assert not response.ok
    assert (
        response.error == f"Timeout waiting for a reply from 127.0.0.1:{server.port} (after 0.3 s)"
    )
    assert 0.3 <= elapsed < 1.5
    assert response.duration_ms >= 300
    assert server.commands == [[b"GET", b"k"]]  # sent once, never again


def test_per_call_timeout(fake_server) -> None:  # type: ignore[no-untyped-def]
    server = fake_server(reply=lambda cmd: None if cmd[0] == b"GET" else b"+PONG\r\n")
    with RedisInterface("127.0.0.1", server.port, timeout=5) as iface:
        started = time.monotonic()
        response = iface.call("get", {"key": "k"}, timeout=0.2)
        assert time.monotonic() - started < 2
        assert "Timeout" in response.error
        # the interface's own timeout is back for the next call
        assert iface.ping().data == {"value": "PONG"}
        assert iface._conn.socket_timeout == 5


def test_duration_covers_a_slow_reply(fake_server) -> None:  # type: ignore[no-untyped-def]
    def slow(cmd: list[bytes]) -> bytes:
        time.sleep(0.25)
        return b"+PONG\r\n"

    server = fake_server(reply=slow)
    with RedisInterface("127.0.0.1", server.port, timeout=2) as iface:
        response = iface.ping()
    assert response.ok and response.duration_ms >= 250


def test_no_retries_when_the_server_closes(fake_server) -> None:  # type: ignore[no-untyped-def]
    server = fake_server(close_on_accept=True)
    with RedisInterface("127.0.0.1", server.port, timeout=2) as iface:
        first = iface.set("k", "v")
        assert not first.ok
        # closed before or after the command arrived: either way a connection error
        assert first.error in (
            "Connection closed by server.",
            f"Error while reading from 127.0.0.1:{server.port} : Connection reset by peer",
            "Error 32 while writing to socket. Broken pipe.",
        ), first.error
        time.sleep(0.2)
        assert server.connections == 1  # one attempt, no retry
        second = iface.get("k")  # the next call reconnects, once
        assert not second.ok
        time.sleep(0.2)
        assert server.connections == 2


def test_no_retries_when_a_reply_is_dropped(fake_server) -> None:  # type: ignore[no-untyped-def]
    # like `drop: {}`: the command arrives, the connection is closed instead of a reply
    server = fake_server(reply=lambda cmd: b"" if cmd[0] == b"SET" else b"+PONG\r\n")
    with RedisInterface("127.0.0.1", server.port, timeout=2) as iface:
        dropped = iface.set("k", "v")
        assert dropped.error == "Connection closed by server."
        assert server.commands == [[b"SET", b"k", b"v"]]
        assert iface.ping().data == {"value": "PONG"}
    assert server.connections == 2
    assert server.commands == [[b"SET", b"k", b"v"], [b"PING"]]


def test_no_handshake_commands(fake_server) -> None:  # type: ignore[no-untyped-def]
    # fault rules and their `times` counters must only see the step's own commands
    server = fake_server(reply=lambda cmd: b"+OK\r\n")
    with RedisInterface("127.0.0.1", server.port, timeout=2) as iface:
        iface.ping()
    assert server.commands == [[b"PING"]]


def test_client_name_is_set_on_connect(redis_server: RedisServer) -> None:
    with RedisInterface(
        redis_server.host, redis_server.port, timeout=2, client_name="steps"
    ) as iface:
        assert iface.call("command", {"cmd": "CLIENT", "args": ["GETNAME"]}).data == "steps"


def test_one_connection_reused(redis_server: RedisServer) -> None:
    with RedisInterface(redis_server.host, redis_server.port, timeout=2) as iface:
        first = iface.call("command", {"cmd": "CLIENT", "args": ["ID"]}).data
        for _ in range(5):
            iface.ping()
        assert iface.call("command", {"cmd": "CLIENT", "args": ["ID"]}).data == first


def test_reconnects_after_the_server_killed_an_idle_connection(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    with RedisInterface(redis_server.host, redis_server.port, timeout=2) as iface:
        client_id = iface.call("command", {"cmd": "CLIENT", "args": ["ID"]}).data
        raw.execute_command("CLIENT", "KILL", "ID", client_id)
        time.sleep(0.05)
        # the stale socket is noticed before sending: nothing was lost, so no error
        after = iface.call("command", {"cmd": "CLIENT", "args": ["ID"]})
        assert after.ok and after.data != client_id


def test_close_is_idempotent(client: RedisInterface) -> None:
    client.ping()
    client.close()
    client.close()
    assert client.ping().ok  # and a closed interface reconnects when used again
