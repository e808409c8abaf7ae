"""RESP3 (un)subscribe confirmations are pushes, which the reply FIFO does not count: an
answer the proxy injects after such a command must still reach the client after them."""

from __future__ import annotations

import random

import hiredis
import pytest
import redis

from redtest.proxy.server import FaultProxy
from redtest.spec.model import DropEffect, ErrorEffect, ResponseEffect

from .conftest import Dribbler, RawClient, exchange, rule


def resp3(proxy: FaultProxy) -> RawClient:
    raw = RawClient(proxy.address)
    raw.send(b"HELLO 3\r\n")
    assert isinstance(raw.read()[0], dict)
    return raw


def pings(direct: redis.Redis) -> int:
    return int(direct.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))


@pytest.mark.parametrize(
    ("command", "confirmations"),
    [
        (b"SUBSCRIBE a b", [[b"subscribe", b"a", 1], [b"subscribe", b"b", 2]]),
        (b"PSUBSCRIBE p*", [[b"psubscribe", b"p*", 1]]),
        (b"SSUBSCRIBE s", [[b"ssubscribe", b"s", 1]]),
        (b"UNSUBSCRIBE", [[b"unsubscribe", None, 0]]),  # nothing to leave: one, with null
        (b"SUBSCRIBE a\r\nUNSUBSCRIBE", [[b"subscribe", b"a", 1], [b"unsubscribe", b"a", 0]]),
    ],
)
def test_injected_answer_comes_after_the_confirmations(
    proxy: FaultProxy, direct: redis.Redis, command: bytes, confirmations: list[object]
) -> None:
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    raw = resp3(proxy)
    raw.send(command + b"\r\nGET k\r\nECHO after\r\n")
    assert raw.read(len(confirmations) + 2) == [*confirmations, b"fake", b"after"]
    raw.close()


def test_drop_close_delivers_the_confirmations_first(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(DropEffect("close"), command="GET")])
    raw = resp3(proxy)
    raw.send(b"SUBSCRIBE a\r\nGET k\r\n")
    assert raw.read(1) == [[b"subscribe", b"a", 1]]
    assert raw.closed()


@pytest.mark.parametrize("mode", [b"OFF", b"SKIP"])
def test_drop_close_under_client_reply_off_delivers_the_confirmations_first(
    proxy: FaultProxy, mode: bytes
) -> None:
    """The server answers no PING while replies are off (or skipped); the connection is
    closing, so the proxy turns them back on for its barrier (it used to wait forever)."""
    proxy.set_rules([rule(DropEffect("close"), command="GET")])
    raw = resp3(proxy)
    raw.send(b"SUBSCRIBE a\r\nCLIENT REPLY " + mode + b"\r\nGET k\r\n")
    assert raw.read(1) == [[b"subscribe", b"a", 1]]
    assert raw.closed()


def test_a_refused_subscribe_keeps_its_error_and_its_place(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    direct.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "resetchannels", "+@all")
    try:
        proxy.set_rules([rule(ErrorEffect("ERR injected"), command="GET")])
        raw = resp3(proxy)
        raw.send(b"AUTH reader pw\r\nSUBSCRIBE a\r\nGET k\r\nPING\r\n")
        out = raw.read(4)
        assert out[0] == b"OK"
        assert isinstance(out[1], hiredis.ReplyError) and "NOPERM" in str(out[1]), out
        assert str(out[2]) == "ERR injected" and out[3] == b"PONG", out  # no stray PONG
        raw.close()
    finally:
        direct.execute_command("ACL", "DELUSER", "reader")


def test_the_proxy_pings_only_when_a_fault_fires_after_a_subscribe(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    proxy.set_rules([rule(ErrorEffect(), command="GET", key="hit")])
    raw = resp3(proxy)
    before = pings(direct)
    raw.send(b"SUBSCRIBE a\r\nGET miss\r\n")
    assert raw.read(2) == [[b"subscribe", b"a", 1], None]
    assert pings(direct) == before  # no fault fired: the server sees only the client
    raw.send(b"GET hit\r\nGET hit\r\n")
    assert [str(e) for e in raw.read(2)] == ["ERR injected fault"] * 2
    assert pings(direct) == before + 1  # one PING orders both, its PONG swallowed
    direct.publish("a", "m")
    assert raw.read(1) == [[b"message", b"a", b"m"]]
    raw.close()


@pytest.mark.parametrize("refused", [False, True])
def test_the_pong_and_a_refusal_split_across_reads(
    dribbled: Dribbler, direct: redis.Redis, refused: bool
) -> None:
    direct.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "resetchannels", "+@all")
    try:
        with FaultProxy(*dribbled.address, name="dribbled") as proxy:
            proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
            raw = resp3(proxy)
            if refused:
                raw.send(b"AUTH reader pw\r\n")
                assert raw.read(1) == [b"OK"]
            dribbled.dribble.set()
            raw.send(b"SUBSCRIBE a\r\nGET k\r\nPING\r\n")
            first, fake, pong = raw.read(3)
            if refused:
                assert isinstance(first, hiredis.ReplyError) and "NOPERM" in str(first)
            else:
                assert first == [b"subscribe", b"a", 1]
            assert (fake, pong) == (b"fake", b"PONG")
            raw.close()
    finally:
        direct.execute_command("ACL", "DELUSER", "reader")


def _session(rng: random.Random) -> list[bytes]:
    """A RESP3 session of (un)subscribes, self-publishes and GETs (which the proxy answers)."""
    commands = [b"HELLO 3"]
    for _ in range(rng.randint(10, 40)):
        ch = b"ch%d" % rng.randint(0, 2)
        commands.append(
            rng.choice(
                [
                    b"SUBSCRIBE " + ch,
                    b"SUBSCRIBE ch0 ch1 ch2",
                    b"UNSUBSCRIBE " + ch,
                    b"UNSUBSCRIBE",
                    b"PSUBSCRIBE ch*",
                    b"PUNSUBSCRIBE",
                    b"PUBLISH " + ch + b" hello",
                    b"GET k",
                    b"GET k",
                    b"ECHO x",
                    b"PING",
                    b"CLIENT REPLY OFF",
                    b"CLIENT REPLY ON",
                    b"CLIENT REPLY SKIP",
                ]
            )
        )
    return [*commands, b"CLIENT REPLY ON"]


@pytest.mark.parametrize("seed", range(12))
def test_random_sessions_read_as_if_the_server_had_echoed_the_injected_answer(
    proxy: FaultProxy, redis_server: tuple[str, int], seed: int
) -> None:
    """Through the proxy, with GET answered "fake", a session reads byte for byte like the
    same session sent straight to the server with every GET replaced by ECHO fake."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    commands = _session(random.Random(seed))
    echoed = [b"ECHO fake" if c == b"GET k" else c for c in commands]
    want = exchange(redis_server, echoed, random.Random(seed))
    got = exchange(proxy.address, commands, random.Random(seed))
    assert got == want, commands


@pytest.mark.parametrize("seed", range(3))
def test_random_sessions_with_replies_split_every_3_bytes(
    dribbled: Dribbler, redis_server: tuple[str, int], seed: int
) -> None:
    commands = _session(random.Random(seed))
    echoed = [b"ECHO fake" if c == b"GET k" else c for c in commands]
    want = exchange(redis_server, echoed, random.Random(seed))
    with FaultProxy(*dribbled.address, name="dribbled") as proxy:
        proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
        dribbled.dribble.set()
        got = exchange(proxy.address, commands, random.Random(seed))
    assert got == want, commands
