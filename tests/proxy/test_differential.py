"""An answer the proxy injects must read exactly like the server's own answer would.

With the rule "GET answers fake", a session through the proxy must read byte for byte
like the same session sent straight to the server with every `GET k` replaced by
`ECHO fake`: in pipelines, transactions (where the answer is queued, then given by
EXEC), under CLIENT REPLY OFF/SKIP/ON, next to blocking commands, in RESP2 and RESP3,
with the client's bytes cut anywhere. (RESP3 pub/sub: test_pubsub_resp3.py.)
"""

from __future__ import annotations

import random

import pytest
import redis

from redtest.proxy.server import FaultProxy
from redtest.spec.model import ResponseEffect

from .conftest import exchange, rule

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
            commands.append(rng.choice(PLAIN))
    if in_multi:
        commands.append(b"EXEC")
    return [*commands, b"CLIENT REPLY ON"]


@pytest.mark.parametrize("seed", range(12))
def test_sessions_read_as_if_the_server_had_echoed_the_injected_answer(
    proxy: FaultProxy, redis_server: tuple[str, int], direct: redis.Redis, seed: int
) -> None:
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    commands = session(random.Random(seed))
    echoed = [b"ECHO fake" if c == b"GET k" else c for c in commands]
    want = exchange(redis_server, echoed, random.Random(seed))
    direct.flushall()
    got = exchange(proxy.address, commands, random.Random(seed))
    assert got == want, commands
