"""Transparency: what passes the proxy behaves exactly as against the server itself."""

from __future__ import annotations

import resource
import threading
import time

import hiredis
import pytest
import redis

from redtest.proxy.resp import encode_command
from redtest.proxy.server import FaultProxy
from redtest.spec.model import DelayEffect, Effect, ErrorEffect, ResponseEffect

from .conftest import RawClient, client, rule


def test_mixed_pipeline_of_10000_commands(proxy: FaultProxy) -> None:
    proxy.set_rules(
        [
            rule(ResponseEffect("injected"), command="GET", key="hit:*"),
            rule(ErrorEffect("ERR refused"), command="INCR*", key="hit:*"),
            rule(DelayEffect(0.05), command="GET", key="hit:5000"),
        ]
    )
    r = client(proxy)
    pipe = r.pipeline(transaction=False)
    expected: list[object] = []
    for i in range(10_000):
        kind = i % 4
        if kind == 0:
            pipe.set(f"k:{i}", f"v{i}")
            expected.append(True)
        elif kind == 1:
            pipe.get(f"k:{i - 1}")
            expected.append(f"v{i - 1}".encode())
        elif kind == 2:
            pipe.get(f"hit:{i}")
            expected.append(b"injected")
        else:
            pipe.incr(f"hit:{i}")
            expected.append("error")
    got = pipe.execute(raise_on_error=False)
    got = ["error" if isinstance(g, redis.ResponseError) else g for g in got]
    assert got == expected
    assert proxy.hit_counts() == [2500, 2500, 0]


def test_pipeline_split_byte_by_byte(proxy: FaultProxy, raw: RawClient) -> None:
    proxy.set_rules([rule(ErrorEffect("ERR no"), command="GET", key="b")])
    stream = (
        encode_command("SET", "a", "1")
        + b"GET a\r\n"
        + encode_command("GET", "b")
        + encode_command("ECHO", "x" * 300)
    )
    for i in range(len(stream)):
        raw.send(stream[i : i + 1])
    assert raw.read(4)[:2] == [b"OK", b"1"]


def test_inline_commands(proxy: FaultProxy, raw: RawClient) -> None:
    raw.send(b'SET greeting "hello world"\r\nGET greeting\r\n\r\nPING\r\n')
    assert raw.read(3) == [b"OK", b"hello world", b"PONG"]
    proxy.set_rules([rule(ErrorEffect("ERR inline"), command="get")])
    raw.send(b"GET greeting\r\n" + encode_command("PING"))
    out = raw.read(2)
    assert str(out[0]) == "ERR inline" and out[1] == b"PONG"


def test_rules_arriving_mid_command(proxy: FaultProxy, raw: RawClient, direct: redis.Redis) -> None:
    cmd = encode_command("SET", "k", "v" * 100_000)
    raw.send(cmd[:5000])  # no rules: streamed on, committed to "forward"
    time.sleep(0.1)
    proxy.set_rules([rule(ErrorEffect(), command="SET")])
    raw.send(cmd[5000:] + encode_command("SET", "k2", "x"))
    out = raw.read(2)
    assert out[0] == b"OK" and isinstance(out[1], Exception)
    assert direct.strlen("k") == 100_000 and direct.get("k2") is None


def test_multi_exec_transparent(proxy: FaultProxy) -> None:
    r = client(proxy)
    pipe = r.pipeline(transaction=True)
    pipe.set("a", "1").incr("a").get("a")
    assert pipe.execute() == [True, 2, b"2"]


def test_multi_exec_with_injected_error_aborts(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient
) -> None:
    proxy.set_rules([rule(ErrorEffect("READONLY no writes"), command="INCR*")])
    raw.send(b"MULTI\r\nSET a 1\r\nINCR a\r\nSET b 2\r\nEXEC\r\nPING\r\n")
    out = raw.read(6)
    assert out[:2] == [b"OK", b"QUEUED"]
    assert str(out[2]) == "READONLY no writes"
    assert out[3] == b"QUEUED"
    assert str(out[4]).startswith("EXECABORT")
    assert out[5] == b"PONG"
    assert direct.get("a") is None and direct.get("b") is None  # discarded upstream
    r = client(proxy)
    with pytest.raises(redis.ResponseError):
        r.pipeline(transaction=True).set("c", "1").incr("c").execute()
    assert direct.get("c") is None


def test_multi_exec_with_injected_response(proxy: FaultProxy, direct: redis.Redis) -> None:
    proxy.set_rules(
        [rule(ResponseEffect(None), command="GET"), rule(ResponseEffect(7), command="INCRBY")]
    )
    direct.set("a", "real")
    r = client(proxy)
    assert r.pipeline(transaction=True).get("a").incr("n").set("b", "1").execute() == [
        None,
        7,
        True,
    ]
    assert direct.get("n") is None and direct.get("b") == b"1"


def test_pubsub_flows_while_other_connections_are_faulted(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    proxy.set_rules([rule(ErrorEffect(), command="GET"), rule(DelayEffect(0.05), command="SET")])
    sub = client(proxy).pubsub()
    sub.subscribe("news")
    sub.psubscribe("ch:*")
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    assert sub.get_message(timeout=2)["type"] == "psubscribe"
    other = client(proxy)
    for i in range(5):
        with pytest.raises(redis.ResponseError):
            other.get("k")
        direct.publish("news", f"m{i}")
        direct.publish("ch:1", f"p{i}")
    got = []
    deadline = time.monotonic() + 3
    while len(got) < 10 and time.monotonic() < deadline:
        m = sub.get_message(timeout=0.5)
        if m:
            got.append(m["data"])
    assert sorted(got) == sorted(
        [f"m{i}".encode() for i in range(5)] + [f"p{i}".encode() for i in range(5)]
    )
    sub.ping()
    sub.close()


def test_sharded_pubsub(proxy: FaultProxy, direct: redis.Redis) -> None:
    raw = RawClient(proxy.address)
    raw.send(b"SSUBSCRIBE s1\r\n")
    assert raw.read()[0] == [b"ssubscribe", b"s1", 1]
    direct.spublish("s1", "hi")
    assert raw.read()[0] == [b"smessage", b"s1", b"hi"]
    raw.close()


def test_monitor(proxy: FaultProxy, direct: redis.Redis, raw: RawClient) -> None:
    raw.send(b"MONITOR\r\n")
    assert raw.read()[0] == b"OK"
    direct.set("watched", "1")
    assert b"watched" in raw.read()[0]


def test_blpop_blocks_then_answers(proxy: FaultProxy, direct: redis.Redis) -> None:
    r = client(proxy)
    assert r.blpop(["q"], timeout=0.2) is None
    threading.Timer(0.2, lambda: direct.rpush("q", "job")).start()
    t0 = time.monotonic()
    assert r.blpop(["q"], timeout=3) == (b"q", b"job")
    assert time.monotonic() - t0 >= 0.15
    assert r.ping()


def test_resp3_tracking_invalidation_push(proxy: FaultProxy, direct: redis.Redis) -> None:
    raw = RawClient(proxy.address)
    raw.send(b"HELLO 3\r\n")
    assert isinstance(raw.read()[0], dict)
    raw.send(b"CLIENT TRACKING on\r\nGET tracked\r\n")
    assert raw.read(2) == [b"OK", None]
    direct.set("tracked", "new")
    assert raw.read()[0] == [b"invalidate", [b"tracked"]]
    # a push between replies does not disturb the reply order of injected answers
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="other")])
    raw.send(b"GET tracked\r\n")  # tracks the key again
    assert raw.read() == [b"new"]
    # The push arrives while BLPOP blocks, i.e. while an injected answer waits behind it
    # (sending SET right after a pipelined GET raced the GET through the proxy).
    raw.send(b"BLPOP nothing 0.5\r\nGET other\r\nPING\r\n")
    time.sleep(0.1)
    direct.set("tracked", "newer")
    out = raw.read(4)
    assert out == [[b"invalidate", [b"tracked"]], None, b"fake", b"PONG"]
    raw.close()


def test_resp3_subscribe_and_injected_reply(proxy: FaultProxy, direct: redis.Redis) -> None:
    proxy.set_rules([rule(ErrorEffect("ERR nope"), command="PING")])
    raw = RawClient(proxy.address)
    raw.send(b"HELLO 3\r\nSUBSCRIBE a\r\nPING\r\n")
    out = raw.read(3)
    # the confirmation is a push the server sends before it reads PING: it comes first,
    # as without the proxy (test_pubsub_resp3.py has the other cases)
    assert out[1] == [b"subscribe", b"a", 1]
    assert str(out[2]) == "ERR nope"
    direct.publish("a", "x")
    assert raw.read()[0] == [b"message", b"a", b"x"]
    raw.close()


def test_50mb_value_round_trip(proxy: FaultProxy) -> None:
    r = client(proxy, socket_timeout=30)
    value = b"\x00\xff" * (25 * 1024 * 1024)
    assert r.set("big", value)
    assert r.get("big") == value
    proxy.set_rules([rule(ErrorEffect(), command="GET", key="nomatch")])
    assert r.get("big") == value
    assert r.set("big2", value)
    assert r.strlen("big2") == len(value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


def test_half_close_delivers_all_replies(proxy: FaultProxy, raw: RawClient) -> None:
    import socket

    proxy.set_rules([rule(DelayEffect(0.1), command="PING")])
    raw.send(b"PING\r\nECHO a\r\nECHO b\r\n")
    raw.sock.shutdown(socket.SHUT_WR)
    assert raw.read(3) == [b"PONG", b"a", b"b"]
    assert raw.closed()


def test_client_reply_skip_keeps_order(proxy: FaultProxy, raw: RawClient) -> None:
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    raw.send(
        b"CLIENT REPLY SKIP\r\nSET a 1\r\nGET a\r\nCLIENT REPLY OFF\r\nSET b 1\r\nCLIENT REPLY ON\r\nPING\r\n"
    )
    assert raw.read(3) == [b"fake", b"OK", b"PONG"]


@pytest.mark.parametrize(
    "effect", [ResponseEffect(None), ErrorEffect("ERR exec refused")], ids=["nil", "error"]
)
@pytest.mark.parametrize("ender", [b"EXEC", b"DISCARD"])
def test_answering_exec_ends_the_transaction_upstream(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient, effect: Effect, ender: bytes
) -> None:
    # `response: null` on EXEC is how a WATCH abort is faked: nothing of the transaction
    # runs, and the connection is out of MULTI afterwards, as with Redis.
    proxy.set_rules([rule(effect, command=ender.decode())])
    direct.set("x", "0")
    raw.send(b"MULTI\r\nINCR x\r\n" + ender + b"\r\nINCR x\r\nGET x\r\n")
    out = raw.read(5)
    assert out[:2] == [b"OK", b"QUEUED"]
    assert out[2] is None if isinstance(effect, ResponseEffect) else str(out[2]) == "ERR exec refused"
    assert out[3:] == [1, b"1"]  # executed at once: no longer queued
    assert direct.get("x") == b"1"
    c = client(proxy)  # and redis-py's pooled connection stays usable
    if ender == b"EXEC":
        with pytest.raises((redis.WatchError, redis.ResponseError)):
            c.pipeline(transaction=True).incr("x").execute()
        assert c.incr("x") == 2


@pytest.mark.parametrize(
    "effect", [ErrorEffect("READONLY no"), ResponseEffect(None)], ids=["error", "nil"]
)
def test_injected_reply_obeys_client_reply(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient, effect: Effect
) -> None:
    proxy.set_rules([rule(effect, command="SET")])
    # SKIP: the skipped command gets no reply, injected or not, and the next one gets its own
    raw.send(b"CLIENT REPLY SKIP\r\nSET k v\r\nPING\r\nECHO after-skip\r\n")
    assert raw.read(2) == [b"PONG", b"after-skip"]
    # OFF: nothing at all until ON
    raw.send(b"CLIENT REPLY OFF\r\nSET k v\r\nCLIENT REPLY ON\r\nPING\r\n")
    assert raw.read(2) == [b"OK", b"PONG"]
    assert direct.get("k") is None  # never forwarded


def test_answered_exec_under_client_reply_off(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient
) -> None:
    proxy.set_rules([rule(ErrorEffect(), command="EXEC"), rule(ErrorEffect(), command="SET")])
    raw.send(
        b"CLIENT REPLY OFF\r\nMULTI\r\nINCR x\r\nEXEC\r\n"  # the answered EXEC ends it
        b"MULTI\r\nSET y 1\r\nEXEC\r\n"  # refused at queue time: EXECABORT, unseen
        b"CLIENT REPLY ON\r\nINCR x\r\n"
    )
    assert raw.read(2) == [b"OK", 1]
    assert direct.get("x") == b"1" and direct.get("y") is None


def _stream(address: tuple[str, int], data: bytes, until: bytes) -> bytes:
    import socket

    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        got = b""
        while not got.endswith(until):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_client_reply_inside_multi_then_hello(
    proxy: FaultProxy, redis_server: tuple[str, int]
) -> None:
    # Redis cuts EXEC's reply short here (an array header it never fills); the proxy must
    # relay what follows as the server sends it, not wait for a HELLO reply that never comes.
    data = (
        b"MULTI\r\nCLIENT REPLY OFF\r\nEXEC\r\nHELLO 3\r\nDISCARD\r\n"
        b"CLIENT REPLY ON\r\nECHO zz-end\r\n"
    )
    direct = _stream(redis_server, data, b"zz-end\r\n")
    assert direct.endswith(b"zz-end\r\n")
    assert _stream(proxy.address, data, b"zz-end\r\n") == direct


def test_commands_after_a_naming_command_wait_at_most_a_moment(
    proxy: FaultProxy, raw: RawClient
) -> None:
    # The SETNAME reply waits behind a blocking command: what follows is judged anyway
    # after a moment (under the old name) instead of stalling until the BLPOP ends.
    proxy.set_rules([rule(ErrorEffect("ERR worker"), command="ECHO", client="worker-*")])
    raw.send(b"BLPOP never-filled 3\r\nCLIENT SETNAME worker-1\r\nECHO x\r\n")
    assert raw.read(3) == [None, b"OK", b"x"]  # waiting for the name, ECHO x would get the error
    raw.send(b"ECHO y\r\n")  # settled by now: the new name counts
    assert str(raw.read(1)[0]) == "ERR worker"


def test_upstream_goes_over_the_unix_socket_when_given(proxy: FaultProxy) -> None:
    """The server sees the proxy's connection on the socket it was given (or on TCP)."""
    c = client(proxy)
    info = c.client_info()
    if proxy.upstream_unix:
        assert info["addr"].startswith(proxy.upstream_unix)
    else:
        assert info["addr"].startswith("127.0.0.1:")
    c.close()


@pytest.mark.parametrize(
    ("before", "replies"),
    [
        (b"MULTI\r\n", [b"OK", b"RESET"]),  # RESET runs at once inside MULTI, and ends it
        (b"CLIENT REPLY SKIP\r\n", []),  # a pending SKIP takes RESET's reply
        (b"CLIENT REPLY OFF\r\n", [b"RESET"]),  # RESET turns replies on, then answers
        (b"MULTI\r\nCLIENT REPLY SKIP\r\n", [b"OK", b"QUEUED", b"RESET"]),  # SKIP only queued
    ],
)
def test_reset_is_counted_as_the_server_answers_it(
    proxy: FaultProxy, raw: RawClient, before: bytes, replies: list[bytes]
) -> None:
    # an injected error: inside a transaction the proxy would poison it, not just answer
    proxy.set_rules([rule(ErrorEffect("ERR injected"), command="GET")])
    raw.send(before + b"RESET\r\nGET k\r\nCLIENT REPLY OFF\r\nGET k\r\nECHO x\r\n")
    raw.send(b"CLIENT REPLY ON\r\nECHO y\r\n")
    got = [str(r) if isinstance(r, Exception) else r for r in raw.read(len(replies) + 3)]
    assert got == [*replies, "ERR injected", b"OK", b"y"]


def test_a_large_command_begun_while_suspended_keeps_its_framing(
    proxy: FaultProxy, raw: RawClient
) -> None:
    """CLIENT SETNAME holds what follows until it is answered; the start of a large SET
    waits in the buffer meanwhile. Its rest, read later, must still be known as the rest
    of that SET, or the connection loses its framing and no rule applies to it again."""
    value = b"v" * 600_000
    naming = encode_command(b"CLIENT", b"SETNAME", b"a")
    raw.send(naming + encode_command(b"SET", b"big", value)[:70_000])
    time.sleep(0.2)  # the name is settled; the SET's start is buffered
    raw.send(encode_command(b"SET", b"big", value)[70_000:])
    assert raw.read(2) == [b"OK", b"OK"]
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    raw.send(b"GET big\r\nSTRLEN big\r\n")
    assert raw.read(2) == [b"fake", len(value)]


def test_inline_command_between_held_chunks_keeps_the_framing(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient
) -> None:
    """Chunks held while CLIENT SETNAME waits for its answer are read afterwards: one holds
    an injected GET, an inline command and the start of a RESP command, the next one that
    command's end and the start of another. Found by test_differential.py: the connection
    went raw there, and its later faults were written ahead of earlier replies."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    first, second = encode_command(b"ECHO", b"resp1"), encode_command(b"ECHO", b"resp2")
    direct.execute_command("CLIENT", "PAUSE", "400", "ALL")  # holds the SETNAME's answer
    raw.send(encode_command(b"CLIENT", b"SETNAME", b"a"))
    time.sleep(0.1)
    get = encode_command(b"GET", b"k")
    raw.send(get + encode_command(b"PING") + b"ECHO inline\r\n" + first[:9])
    time.sleep(0.1)
    raw.send(first[9:] + second[:9])
    time.sleep(0.5)  # the pause ends: the held chunks are read
    raw.send(second[9:] + get)
    assert raw.read(7) == [b"OK", b"fake", b"PONG", b"inline", b"resp1", b"resp2", b"fake"]


@pytest.mark.parametrize("line", [b'GET "k"x\r\n', b'GET "k\r\n', b"GET 'k\r\n"])
def test_an_inline_command_with_unbalanced_quotes_is_refused_by_the_server(
    proxy: FaultProxy, raw: RawClient, line: bytes
) -> None:
    """The proxy read `GET "k"x` as `GET k x`, and a rule on GET answered it; Redis refuses
    unbalanced quotes and closes the connection, and through the proxy it does the same."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    raw.send(line)
    [reply] = raw.read()
    assert isinstance(reply, hiredis.ReplyError) and "unbalanced" in str(reply)
    assert raw.closed()
