"""RESP3 (un)subscribe confirmations are pushes, which the reply FIFO does not count: an
answer the proxy injects after such a command must still reach the client after them."""

from __future__ import annotations

import random
import socket

import hiredis
import pytest
import redis

from redtest.proxy.server import FaultProxy
from redtest.spec.model import DropEffect, ErrorEffect, ResponseEffect

from .conftest import Dribbler, RawClient, exchange, normalized, rule


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
    raw.send(b"GET hit\r\n")  # GET miss's reply came after the confirmation: no barrier
    assert [str(e) for e in raw.read(1)] == ["ERR injected fault"]
    assert pings(direct) == before
    raw.send(b"SUBSCRIBE b\r\nGET hit\r\nGET hit\r\n")
    assert raw.read(1) == [[b"subscribe", b"b", 2]]
    assert [str(e) for e in raw.read(2)] == ["ERR injected fault"] * 2
    assert pings(direct) == before + 1  # one PING orders both, its PONG swallowed
    direct.publish("a", "m")
    assert raw.read(1) == [[b"message", b"a", b"m"]]
    raw.close()


@pytest.mark.parametrize(
    ("effect", "inside", "want"),
    [
        (ErrorEffect("ERR no"), b"GET k", [b"OK", b"QUEUED", "ERR no", "EXECABORT", b"PONG"]),
        (DropEffect(), b"GET k", [b"OK", b"QUEUED"]),
    ],
)
def test_a_fault_inside_multi_after_an_unsubscribe_keeps_every_reply_in_place(
    proxy: FaultProxy, effect: object, inside: bytes, want: list[object]
) -> None:
    """A later reply (MULTI's) orders the confirmations already: no PING barrier, which
    inside MULTI was queued and answered +QUEUED, shifting every reply after it."""
    proxy.set_rules([rule(effect, command="GET")])  # type: ignore[arg-type]
    raw = resp3(proxy)
    raw.send(b"SUBSCRIBE a\r\nUNSUBSCRIBE a\r\nMULTI\r\nSET x 1\r\n" + inside + b"\r\nEXEC\r\nPING\r\n")
    assert raw.read(2) == [[b"subscribe", b"a", 1], [b"unsubscribe", b"a", 0]]
    got = raw.read(len(want)) if isinstance(effect, ErrorEffect) else raw.read(2)
    assert [str(g).split()[0] if isinstance(g, hiredis.ReplyError) else g for g in got] == [
        w.split()[0] if isinstance(w, str) else w for w in want
    ]
    if isinstance(effect, DropEffect):
        assert raw.closed()
    raw.close()


def test_hello_2_while_subscribed_stops_counting_instead_of_waiting_for_a_pong(
    proxy: FaultProxy,
) -> None:
    """Back in RESP2 while subscribed, a PING is answered with a push-like array: the proxy
    used to send its barrier PING and wait for +PONG; the injected answer never came."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="ECHO")])
    raw = resp3(proxy)
    raw.send(b"SUBSCRIBE a\r\nHELLO 2\r\nECHO x\r\nPING\r\n")
    got = raw.read(4)
    assert b"fake" in got and [b"pong", b""] in got and [b"subscribe", b"a", 1] in got
    raw.close()


def test_an_injected_answer_comes_after_a_tracking_invalidation_of_an_earlier_write(
    proxy: FaultProxy, redis_server: tuple[str, int], direct: redis.Redis
) -> None:
    """With client-side caching (RESP3), the server pushes the invalidation of k right
    after SET k's +OK; an answer injected for the next command must not overtake it."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="inj")])
    session = b"HELLO 3\r\nCLIENT TRACKING ON\r\nMGET t\r\nSET t 1\r\n"

    def one_write(address: tuple[str, int], last: bytes) -> bytes:
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(session + last + b"\r\nECHO end\r\n")  # all in one chunk
            got = b""
            while not got.endswith(b"$3\r\nend\r\n"):
                got += sock.recv(65536)
        return normalized(got)

    want = one_write(redis_server, b"ECHO fake")
    direct.flushall()
    got = one_write(proxy.address, b"GET inj")
    assert got == want
    assert got.index(b"invalidate") < got.index(b"fake")


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


_OUTSIDE = [
    b"SUBSCRIBE ch%d",
    b"SUBSCRIBE ch0 ch1 ch2",
    b"UNSUBSCRIBE ch%d",
    b"UNSUBSCRIBE",
    b"PSUBSCRIBE ch*",
    b"PUNSUBSCRIBE",
    b"PUBLISH ch%d hello",
    b"CLIENT REPLY OFF",
    b"CLIENT REPLY ON",
    b"CLIENT REPLY SKIP",
    b"CLIENT TRACKING ON",
    b"CLIENT TRACKING OFF",
]
# also inside MULTI; MGET reads k for real (tracked), SET k then invalidates it
_ANYWHERE = [b"GET k", b"GET k", b"ECHO x", b"PING", b"MGET k", b"SET k v"]


def _session(rng: random.Random) -> list[bytes]:
    """A RESP3 session of (un)subscribes, self-publishes, client-side caching (whose
    invalidation of k follows SET k's reply) and GETs (which the proxy answers), some
    in MULTI."""
    commands = [b"HELLO 3", b"CLIENT TRACKING ON", b"MGET k"][: rng.choice([1, 3])]
    in_multi = False
    for _ in range(rng.randint(10, 40)):
        if rng.random() < 0.1:
            commands.append(b"EXEC" if in_multi else b"MULTI")
            in_multi = not in_multi
            continue
        choices = _ANYWHERE if in_multi else _OUTSIDE + _ANYWHERE
        command = rng.choice(choices)
        commands.append(command.replace(b"%d", b"%d" % rng.randint(0, 2)))
    if in_multi:
        commands.append(b"EXEC")
    return [*commands, b"CLIENT REPLY ON"]


ARITY = "ERR wrong number of arguments for 'get' command"
ANSWERS = {  # the rule on GET, and what the server answers the same way
    "response": (ResponseEffect("fake"), b"ECHO fake"),
    "error": (ErrorEffect(ARITY), b"GET"),  # refused at queue time in MULTI too
}


@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("seed", range(12))
def test_random_sessions_read_as_if_the_server_had_answered(
    proxy: FaultProxy, redis_server: tuple[str, int], direct: redis.Redis, seed: int, answer: str
) -> None:
    """Through the proxy, with GET answered "fake" (or refused), a session reads byte for
    byte like the same session sent straight to the server with every GET replaced by
    ECHO fake (or a bare GET)."""
    effect, instead = ANSWERS[answer]
    proxy.set_rules([rule(effect, command="GET")])
    commands = _session(random.Random(seed))
    echoed = [instead if c == b"GET k" else c for c in commands]
    want = exchange(redis_server, echoed, random.Random(seed))
    direct.flushall()
    got = exchange(proxy.address, commands, random.Random(seed))
    assert got == want, commands


@pytest.mark.parametrize("seed", range(3))
def test_random_sessions_with_replies_split_every_3_bytes(
    dribbled: Dribbler, redis_server: tuple[str, int], direct: redis.Redis, seed: int
) -> None:
    commands = _session(random.Random(seed))
    echoed = [b"ECHO fake" if c == b"GET k" else c for c in commands]
    want = exchange(redis_server, echoed, random.Random(seed))
    direct.flushall()
    with FaultProxy(*dribbled.address, name="dribbled") as proxy:
        proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
        dribbled.dribble.set()
        got = exchange(proxy.address, commands, random.Random(seed))
    assert got == want, commands


def test_a_barrier_ping_refused_by_an_acl_still_lets_the_answer_through(
    proxy: FaultProxy, direct: redis.Redis
) -> None:
    """An application user not allowed PING: the barrier's -NOPERM took the place of the
    injected answer, and everything queued behind it waited forever."""
    direct.execute_command(
        "ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@read", "+@write", "+@pubsub",
        "+hello", "+auth",
    )
    try:
        proxy.set_rules([rule(ErrorEffect("ERR injected"), command="GET", key="k")])
        raw = RawClient(proxy.address)
        raw.send(b"HELLO 3 AUTH app pw\r\nSUBSCRIBE ch\r\nGET k\r\nSET a 1\r\n")
        hello, confirmation, injected, ok = raw.read(4)
        assert confirmation == [b"subscribe", b"ch", 1]
        assert str(injected) == "ERR injected" and ok == b"OK"
        raw.close()
    finally:
        direct.execute_command("ACL", "DELUSER", "app")
