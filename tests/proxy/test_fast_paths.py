"""The proxy's shortcuts: whole chunks forwarded as received, per-name decision plans,
key checks by one union regex, replies counted without the scanner. Each must give the
same answers, in the same order, as deciding every command in full."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from redtest.proxy.resp import encode_command
from redtest.proxy.server import FaultProxy
from redtest.spec.model import ErrorEffect, ResponseEffect

from .conftest import RawClient, client, rule


def _pipeline(n: int) -> tuple[bytes, list[object]]:
    """n SET/GET pairs on keys k0..k(n-1) and the replies Redis gives."""
    data = b"".join(
        encode_command(b"SET", b"k%d" % i, b"v%d" % i) + encode_command(b"GET", b"k%d" % i)
        for i in range(n)
    )
    return data, [x for i in range(n) for x in (b"OK", b"v%d" % i)]


def test_rules_switched_on_while_a_fast_pipeline_is_in_flight(proxy: FaultProxy) -> None:
    """Commands judged before the switch pass, every command after it is answered by the
    rule, and every reply stays in command order."""
    n = 20_000
    data, expected = _pipeline(n)
    raw = RawClient(proxy.address)
    raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send() -> None:
        for off in range(0, len(data), 4096):
            raw.send(data[off : off + 4096])
            time.sleep(0.0001)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.02)
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    sender.join()
    out = raw.read(2 * n)
    switched = None
    for i in range(n):
        assert out[2 * i] == b"OK"
        got = out[2 * i + 1]
        if got == b"fake":
            switched = i if switched is None else switched
        else:
            assert got == expected[2 * i + 1]
            assert switched is None, f"GET k{i} passed after GET k{switched} was answered"
    assert switched is not None and 0 < switched < n  # the switch did land mid-stream
    raw.close()


def test_client_name_change_inside_a_chunk_applies_to_the_next_command(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    direct.set("a", "1")
    proxy.set_rules([rule(ErrorEffect("ERR worker"), command="GET", client="worker-*")])
    raw = RawClient(proxy.address)
    raw.send(encode_command(b"GET", b"a"))  # GET is now a "no rule can match" name
    assert raw.read() == [b"1"]
    raw.send(
        encode_command(b"GET", b"a")
        + encode_command(b"CLIENT", b"SETNAME", b"worker-1")
        + encode_command(b"GET", b"a")
        + encode_command(b"CLIENT", b"SETNAME", b"other")
        + encode_command(b"GET", b"a")
    )
    out = raw.read(5)
    assert [str(o) for o in out] == ["b'1'", "b'OK'", "ERR worker", "b'OK'", "b'1'"]
    raw.close()


def test_key_rule_fires_inside_a_batch_of_non_matching_keys(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    proxy.set_rules(
        [
            rule(ErrorEffect("ERR order"), key="order:*"),
            rule(ResponseEffect(7), command="GET", key="n:?"),
            rule(ErrorEffect("ERR worker"), command="SET", client="worker-*"),
        ]
    )
    direct.mset({f"x:{i}": str(i) for i in range(50)})
    keys = [f"x:{i}" for i in range(50)]
    keys[10] = "order:1"
    keys[20] = "n:1"
    keys[30] = "n:12"  # one character too many for `n:?`
    c = client(proxy)
    p = c.pipeline(transaction=False)
    for k in keys:
        p.get(k)
    p.mget("x:1", "order:2")  # a key rule checks every key
    p.set("y", "1")  # the client rule cannot match an unnamed client
    out = p.execute(raise_on_error=False)
    assert isinstance(out[10], redis.ResponseError) and str(out[10]) == "order"
    assert out[20] == 7
    assert out[30] is None
    assert [o for i, o in enumerate(out[:50]) if i not in (10, 20, 30)] == [
        str(i).encode() for i in range(50) if i not in (10, 20, 30)
    ]
    assert isinstance(out[50], redis.ResponseError) and str(out[50]) == "order"
    assert out[51] is True
    c.close()


@pytest.mark.parametrize("rules_on", [False, True])
def test_every_split_of_a_pipeline(proxy: FaultProxy, rules_on: bool) -> None:
    """A chunk may end anywhere: inside a header, a payload, or between an array's
    elements (which hiredis' has_data() cannot see); payloads may hold CRLFs."""
    if rules_on:
        proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="other")])
    data = (
        encode_command(b"SET", b"a", b"x\r\ny\r\n")
        + encode_command(b"GET", b"a")
        + encode_command(b"GET", b"other")
        + encode_command(b"PING")
    )
    fake = b"fake" if rules_on else None
    for cut in range(1, len(data)):
        raw = RawClient(proxy.address)
        raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.send(data[:cut])
        time.sleep(0.002)
        raw.send(data[cut:])
        assert raw.read(4) == [b"OK", b"x\r\ny\r\n", fake, b"PONG"], cut
        raw.close()


def test_client_reply_off_inside_a_fast_chunk(proxy: FaultProxy, direct: redis.Redis) -> None:
    raw = RawClient(proxy.address)
    raw.send(encode_command(b"SET", b"a", b"1") + encode_command(b"GET", b"a"))
    assert raw.read(2) == [b"OK", b"1"]  # SET and GET are now fast names
    proxy.set_rules([rule(ResponseEffect("fake"), command="PING")])
    raw.send(
        encode_command(b"CLIENT", b"REPLY", b"OFF")
        + encode_command(b"SET", b"a", b"2")
        + encode_command(b"GET", b"a")
        + encode_command(b"CLIENT", b"REPLY", b"ON")
        + encode_command(b"GET", b"a")
        + encode_command(b"PING")
    )
    assert raw.read(3) == [b"OK", b"2", b"fake"]
    raw.close()


@pytest.mark.parametrize("rules_on", [False, True])
@pytest.mark.parametrize(
    "bad", [b"*1\r\n*1\r\n$4\r\nPING\r\n", b"*2\r\n$4\r\nECHO\r\n:1\r\n", b"*1\r\n:1\r\n"]
)
def test_non_bulk_array_elements_get_what_redis_says(
    proxy: FaultProxy, redis_server: tuple[str, int], rules_on: bool, bad: bytes
) -> None:
    if rules_on:
        proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="other")])
    answers = []
    for address in (redis_server, proxy.address):
        raw = RawClient(address)
        raw.send(encode_command(b"PING") + bad)
        answers.append([str(x) for x in raw.read(2)])
        assert raw.closed()
        raw.close()
    assert answers[0] == answers[1]
