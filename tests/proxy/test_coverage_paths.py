"""Paths of the proxy no other test reached (found with coverage), each checked against
what the client sees straight from the server: the same bytes, in the same order."""

from __future__ import annotations

import re
import socket
import threading
import time

import hiredis
import pytest
import redis

from redtest.proxy.resp import encode_command
from redtest.proxy.server import FaultProxy
from redtest.spec.model import DelayEffect, ResponseEffect

from .conftest import rule

GET_K = encode_command(b"GET", b"k")
ECHO_FAKE = encode_command(b"ECHO", b"fake")


def _session(
    address: tuple[str, int], pieces: list[bytes], end: bytes, timeout: float = 5
) -> bytes:
    """Send `pieces` one write each (a short pause between); what comes back until it
    ends with `end` (or the connection closes)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.05)
        got = b""
        while not got.endswith(end):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got


@pytest.mark.parametrize(
    "tail",
    [
        b"*0\r\n" + encode_command(b"PING"),  # ignored by Redis
        b"*2\r\n$3\r\nGET\r\n:1\r\n",  # refused: protocol error, then closed
        b"*2\r\n$3\r\nSET\r\n$600000000\r\n",  # longer than proto-max-bulk-len
        b"*1\r\n$4\r\nPING\r\n*1\r\nxx\r\n",  # hiredis chokes inside an array
    ],
    ids=["empty-array", "non-bulk-element", "huge-bulk", "bad-array"],
)
def test_going_raw_keeps_the_replies_owed_before_an_injected_answer(
    proxy: FaultProxy, direct: redis.Redis, redis_server: tuple[str, int], tail: bytes
) -> None:
    """Input the proxy cannot frame switches the connection to raw relaying: an answer
    injected before it still comes after the replies owed ahead of it, as the server's
    own answer would."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="k")])
    # the BLPOP keeps the server's replies back until the tail has reached the proxy
    head = encode_command(b"BLPOP", b"l", b"0.3") + encode_command(b"INCR", b"n")
    want = _session(redis_server, [head + ECHO_FAKE, tail], b"+PONG\r\n")
    direct.flushall()
    got = _session(proxy.address, [head + GET_K, tail], b"+PONG\r\n")
    assert got == want
    assert got.startswith(b"*-1\r\n:1\r\n$4\r\nfake\r\n")


def _until_closed(address: tuple[str, int], data: bytes, *, half_close: bool) -> bytes:
    """Send `data`, half-close when asked, and read until the connection ends."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
        return got


@pytest.mark.parametrize(
    "partial",
    [encode_command(b"SET", b"b", b"2")[:-3], b"SET b 2"],
    ids=["array", "inline"],
)
def test_a_half_close_after_a_partial_command_passes_it_on_as_is(
    proxy: FaultProxy, direct: redis.Redis, redis_server: tuple[str, int], partial: bytes
) -> None:
    """While rules are active an incomplete command is held; the client's half-close
    hands it to the server, which drops it, then closes: as straight to the server."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="k")])
    data = encode_command(b"SET", b"a", b"1") + GET_K + partial
    want = _until_closed(redis_server, encode_command(b"SET", b"a", b"1") + ECHO_FAKE + partial,
                         half_close=True)
    assert direct.mget("a", "b") == [b"1", None]
    direct.flushall()
    got = _until_closed(proxy.address, data, half_close=True)
    assert got == want == b"+OK\r\n$4\r\nfake\r\n"
    assert direct.mget("a", "b") == [b"1", None]


@pytest.mark.parametrize(
    "command",
    [b"UNSUBSCRIBE a b c", b"PUNSUBSCRIBE", b"SUNSUBSCRIBE x", b"SUBSCRIBE"],
)
def test_resp2_unsubscribe_outside_subscribed_mode_owes_one_reply_per_channel(
    proxy: FaultProxy, direct: redis.Redis, redis_server: tuple[str, int], command: bytes
) -> None:
    """A RESP2 UNSUBSCRIBE while not subscribed answers with an array per channel (one
    with none named), and a SUBSCRIBE without channels with an arity error: an answer
    injected after them comes after all of those."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="k")])
    head = encode_command(b"BLPOP", b"l", b"0.2") + encode_command(*command.split())
    ping = encode_command(b"PING")
    want = _session(redis_server, [head + ECHO_FAKE + ping], b"+PONG\r\n")
    got = _session(proxy.address, [head + GET_K + ping], b"+PONG\r\n")
    assert got == want
    assert got.endswith(b"$4\r\nfake\r\n+PONG\r\n")


def test_tracking_switched_on_inside_multi_orders_an_injected_answer_after_invalidations(
    proxy: FaultProxy, direct: redis.Redis, redis_server: tuple[str, int]
) -> None:
    """RESP3 CLIENT TRACKING ON queued in MULTI holds from EXEC on: the invalidation a
    write causes is pushed right after the write's reply, so an answer injected after
    the write must wait for it (a barrier PING), as the server's own answer would."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="k")])

    def session(get: bytes) -> list[bytes]:
        return [
            encode_command(b"HELLO", b"3")
            + encode_command(b"MULTI")
            + encode_command(b"CLIENT", b"TRACKING", b"ON")
            + encode_command(b"EXEC")
            + encode_command(b"GET", b"t")
            + encode_command(b"SET", b"t", b"1")
            + get
            + encode_command(b"PING")
        ]

    def normal(replies: bytes) -> bytes:  # the connection id in HELLO's reply differs
        return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"", replies)

    want = _session(redis_server, session(ECHO_FAKE), b"+PONG\r\n")
    direct.flushall()
    got = _session(proxy.address, session(GET_K), b"+PONG\r\n")
    assert normal(got) == normal(want)
    assert got.endswith(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nt\r\n$4\r\nfake\r\n+PONG\r\n")


def test_a_delayed_command_holding_megabytes_behind_it_pauses_and_resumes_the_client(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    """Behind a delay the proxy holds what the client sends; past 4 MB it stops reading
    the client, and reads on once the delay is over: every command arrives, in order."""
    proxy.set_rules([rule(DelayEffect(0.3), command="GET", key="k")])
    n = 6000
    value = b"v" * 1000
    data = GET_K + b"".join(encode_command(b"RPUSH", b"l", value) for _ in range(n))
    data += encode_command(b"LLEN", b"l")
    with socket.create_connection(proxy.address, timeout=10) as sock:
        threading.Thread(target=sock.sendall, args=(data,), daemon=True).start()
        reader = hiredis.Reader()
        out: list[object] = []
        while len(out) < n + 2:
            reply = reader.gets()
            if reply is not False:
                out.append(reply)
                continue
            chunk = sock.recv(1 << 16)
            assert chunk, "closed"
            reader.feed(chunk)
    assert out == [None, *range(1, n + 1), n]
    assert direct.llen("l") == n


def test_a_connection_that_cannot_reach_the_server_is_closed(
    redis_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With rules on (no fast lane) a client whose server connection fails is closed
    at once, and the proxy is told why."""
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]  # nothing listens there
    errors: list[OSError] = []
    with FaultProxy("127.0.0.1", port, on_upstream_error=errors.append) as proxy:
        proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
        with socket.create_connection(proxy.address, timeout=5) as sock:
            sock.sendall(encode_command(b"PING"))
            try:
                assert sock.recv(1) == b""
            except ConnectionResetError:
                pass
    assert errors and isinstance(errors[0], ConnectionRefusedError)


@pytest.mark.parametrize("proxy", ["unix", "tcp"], indirect=True)
def test_a_client_that_does_not_read_takes_its_connection_out_of_the_lane_intact(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    """In the fast lane, replies a slow client's full socket does not take are handed
    over with the connection and written first: nothing lost, repeated or reordered."""
    direct.set("k", "v" * 7)
    n = 600_000
    with socket.create_connection(proxy.address, timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def send() -> None:  # whole commands per write: the lane takes each chunk
            for _ in range(n // 1000):
                sock.sendall(GET_K * 1000)
                time.sleep(0.0005)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + 5
        stats = proxy.fast_lane_stats()
        while stats is not None and stats[2] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # not reading: the lane's writes to this client stall
            stats = proxy.fast_lane_stats()
        assert stats is not None and stats[2] == 1  # handed over
        got = bytearray()
        want = b"$7\r\nvvvvvvv\r\n" * n
        while len(got) < len(want):
            chunk = sock.recv(1 << 20)
            assert chunk, "closed"
            got += chunk
        sender.join()
    assert got == want
