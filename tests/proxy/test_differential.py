"""An answer the proxy injects must read exactly like the server's own answer would.

With the rule "GET answers fake", a session through the proxy must read byte for byte
like the same session sent straight to the server with every `GET k` replaced by
`ECHO fake` (and likewise for an injected error, a delay and a key rule; VARIANTS): in pipelines, transactions (where the answer is queued, then given by
EXEC), under CLIENT REPLY OFF/SKIP/ON, next to blocking commands, in RESP2 and RESP3,
with the client's bytes cut anywhere. (RESP3 pub/sub: test_pubsub_resp3.py.)
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
import redis

from redtest.proxy.server import FaultProxy
from redtest.spec.model import DelayEffect, DropEffect, ErrorEffect, ResponseEffect

from .conftest import END_REPLY, Dribbler, exchange, exchange_until_dropped, rule

EVAL = b"EVAL return(redis.call('GET',KEYS[1])) 1 k"
PLAIN = [
    b"GET k",
    b"GET k",
    b"SET k v",
    b"ECHO x",
    b"PING",
    b"INCR n",
    b"LPUSH l a",
    b"RPOP l",
    b"BLPOP l 0.01",
    b"DEL k n",
    b"MGET k n",
    b"CLIENT SETNAME worker-1",
    b"CLIENT SETNAME web",
    b"CLIENT GETNAME",
    b"SELECT 1",
    b"SELECT 0",
    b"WATCH k",
    b"UNWATCH",
    EVAL,
    b"RESET",
    b"HELLO 2",
    b"HELLO 3",
    b"HELLO 3 SETNAME worker-3",
    b"FOO",  # unknown: refused at queue time in MULTI (EXECABORT)
    b"SET big " + b"x" * 300_000,
    b"GETRANGE big 0 5",
]


def session(rng: random.Random) -> list[bytes]:
    commands = [rng.choice([b"HELLO 2", b"HELLO 3"])]
    in_multi = False
    for _ in range(rng.randint(10, 50)):
        roll = rng.random()
        if roll < 0.12:
            commands.append(b"EXEC" if in_multi else b"MULTI")
            in_multi = not in_multi
        elif roll < 0.16 and in_multi:
            commands.append(b"DISCARD")
            in_multi = False
        elif roll < 0.24 and not in_multi:  # inside MULTI the proxy stops counting
            commands.append(b"CLIENT REPLY " + rng.choice([b"OFF", b"ON", b"SKIP"]))
        else:
            command = rng.choice(PLAIN)
            commands.append(command)
            in_multi = in_multi and command != b"RESET"
    if in_multi:
        commands.append(b"EXEC")
    return [*commands, b"CLIENT REPLY ON"]


ARITY = "ERR wrong number of arguments for 'get' command"
KEYED = (b"GET k", b"SET k v", b"DEL k n", b"MGET k n", b"WATCH k", EVAL)



def replacing(instead: dict[bytes, bytes], first: int = 0, count: int | None = None) -> Any:
    """The session as sent straight to the server: matching commands from the
    `first`-th on (0-based), `count` of them, replaced as in `instead`."""

    def transform(commands: list[bytes]) -> list[bytes]:
        out, seen = [], 0
        for c in commands:
            if c in instead:
                if seen >= first and (count is None or seen < first + count):
                    c = instead[c]
                seen += 1
            out.append(c)
        return out

    return transform


def replacing_when_named_worker(commands: list[bytes]) -> list[bytes]:
    """GET k answered while the connection's name is worker-*: a name set inside MULTI
    (CLIENT SETNAME or HELLO SETNAME) holds from EXEC on (DISCARD, or EXECABORT after
    FOO, drops it)."""
    out, name, queued, in_multi, aborted = [], b"", None, False, False
    for c in commands:
        if c == b"RESET":
            name, queued, in_multi = b"", None, False
        elif c == b"MULTI":
            in_multi, queued, aborted = True, None, False
        elif c == b"FOO" and in_multi:
            aborted = True
        elif c in (b"EXEC", b"DISCARD") and in_multi:
            in_multi = False
            if c == b"EXEC" and queued is not None and not aborted:
                name = queued
        elif c.startswith(b"CLIENT SETNAME "):
            if in_multi:
                queued = c.split()[2]
            else:
                name = c.split()[2]
        elif c.startswith(b"HELLO 3 SETNAME "):
            if in_multi:
                queued = c.split()[3]
            else:
                name = c.split()[3]
        elif c == b"GET k" and name.startswith(b"worker-"):
            c = b"ECHO fake"
        out.append(c)
    return out


# a rule, and how the session sent straight to the server reads the same
VARIANTS = {
    "response": (
        rule(ResponseEffect("fake"), command="GET"),
        replacing({b"GET k": b"ECHO fake"}),
    ),
    # the server's own refusal, at queue time in MULTI too (EXECABORT)
    "error": (rule(ErrorEffect(ARITY), command="GET"), replacing({b"GET k": b"GET"})),
    # nil is `$-1` or `_` as the protocol is (HELLO, also queued in MULTI; RESET)
    "nil": (rule(ResponseEffect(None), command="GET"), replacing({b"GET k": b"GET nokey"})),
    "delay": (rule(DelayEffect(0.003), command="GET"), replacing({})),
    "key": (rule(ResponseEffect("fake"), key="k"), replacing(dict.fromkeys(KEYED, b"ECHO fake"))),
    "client": (
        rule(ResponseEffect("fake"), command="GET", client="worker-*"),
        replacing_when_named_worker,
    ),
    "after 2, 3 times": (
        rule(ResponseEffect("fake"), command="GET", after=2, times=3),
        replacing({b"GET k": b"ECHO fake"}, first=2, count=3),
    ),
}


def assert_reads_as_direct(
    proxy: FaultProxy, redis_server: tuple[str, int], direct: redis.Redis, seed: int, variant: str
) -> None:
    the_rule, transform = VARIANTS[variant]
    proxy.set_rules([the_rule])
    commands = session(random.Random(seed))
    want = exchange(redis_server, transform(commands), random.Random(seed))
    direct.flushall()
    got = exchange(proxy.address, commands, random.Random(seed))
    assert got == want, commands


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("seed", range(10))
def test_sessions_read_as_if_the_server_had_answered(
    proxy: FaultProxy, redis_server: tuple[str, int], direct: redis.Redis, seed: int, variant: str
) -> None:
    assert_reads_as_direct(proxy, redis_server, direct, seed, variant)


@pytest.mark.parametrize("variant", ["response", "error", "key", "client"])
@pytest.mark.parametrize("seed", range(2))
def test_sessions_with_replies_split_every_3_bytes(
    dribbled: Dribbler, redis_server: tuple[str, int], direct: redis.Redis, seed: int, variant: str
) -> None:
    with FaultProxy(*dribbled.address, name="dribbled") as proxy:
        dribbled.dribble.set()
        assert_reads_as_direct(proxy, redis_server, direct, seed, variant)


@pytest.mark.parametrize("variant", ["response", "error", "key", "client"])
@pytest.mark.parametrize("seed", range(6))
def test_rules_switching_on_mid_session(
    proxy: FaultProxy, redis_server: tuple[str, int], direct: redis.Redis, seed: int, variant: str
) -> None:
    """The first half runs with no rule (in the fast lane while it can), the second half
    under the rule: the connection's state (protocol, name, replies owed) carries over."""
    the_rule, transform = VARIANTS[variant]
    rng = random.Random(seed)
    first, second = session(rng), session(rng)[1:]  # one HELLO, at the start
    as_sent = transform(first + second)[len(first) :]  # the name from the first half holds
    want = exchange(redis_server, first, random.Random(seed), (lambda: None, as_sent))
    direct.flushall()
    switch = (lambda: proxy.set_rules([the_rule]), second)
    got = exchange(proxy.address, first, random.Random(seed), switch)
    assert got == want, (first, second)


def data(address: tuple[str, int]) -> dict[int, dict[bytes, bytes]]:
    """Every key of databases 0 and 1 with its DUMP."""
    out = {}
    for db in (0, 1):
        with redis.Redis(*address, db=db) as r:
            out[db] = {k: r.dump(k) for k in sorted(r.keys())}
    return out


def wait_for_clients(direct: redis.Redis, ids: set[int]) -> None:
    """Until the server has let go of every client not in `ids`: it has then read all
    they sent (a closed connection's commands are executed before its end is seen)."""
    deadline = time.monotonic() + 5
    while {c["id"] for c in direct.client_list()} - ids:
        assert time.monotonic() < deadline, direct.client_list()
        time.sleep(0.01)


@pytest.mark.parametrize("mode", ["close", "lose_reply", "blackhole"])
@pytest.mark.parametrize("seed", range(8))
def test_a_dropped_command_ends_the_session_as_if_cut_there(
    proxy: FaultProxy, redis_server: tuple[str, int], direct: redis.Redis, seed: int, mode: str
) -> None:
    """Dropping the first `INCR n`: the replies before it, exactly, then the close (or,
    for blackhole, silence); the data as if the session had ended before the INCR (after
    it, for lose_reply: executed, though never answered) — in MULTI (which the end
    discards), under CLIENT REPLY OFF/SKIP (no reply to wait for), next to BLPOP."""
    rng = random.Random(seed)
    commands = session(rng)
    if b"INCR n" not in commands:
        commands.insert(rng.randrange(1, len(commands)), b"INCR n")
    prefix = commands[: commands.index(b"INCR n")]
    executed = prefix + [b"INCR n"] if mode == "lose_reply" else prefix
    # straight to the server: the prefix, then RESET (which ends a MULTI, as the close
    # does) and END; the replies of the two taken off
    want = exchange(redis_server, [*prefix, b"RESET"], random.Random(seed))
    want = want.removesuffix(END_REPLY)
    if prefix[-1] != b"CLIENT REPLY SKIP":  # a pending skip takes RESET's reply
        assert want.endswith(b"+RESET\r\n")
        want = want.removesuffix(b"+RESET\r\n")
    if executed != prefix:
        direct.flushall()
        exchange(redis_server, [*executed, b"RESET"], random.Random(seed))
    want_data = data(redis_server)

    direct.flushall()
    clients = {c["id"] for c in direct.client_list()}
    proxy.set_rules([rule(DropEffect(mode), command="INCR")])
    got, closed = exchange_until_dropped(proxy.address, commands, random.Random(seed))
    assert got == want, commands
    assert closed == (mode != "blackhole")
    wait_for_clients(direct, clients)
    assert data(redis_server) == want_data, commands
