"""The fast lane (fastlane.py, _relay.c): with no rule active, new connections are relayed
in C; anything it does not handle, and any rule switching on, hands the connection to
the asyncio path without losing, reordering or repeating a byte."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest
import redis
from redtest.proxy._relay import Relay  # built by `pip install -e .` (setup.py)

from redtest.errors import UsageError
from redtest.proxy import fastlane
from redtest.proxy.conn import STATEFUL_COMMANDS
from redtest.proxy.resp import encode_command
from redtest.proxy.server import FaultProxy
from redtest.spec.model import DownEffect, ErrorEffect, ResponseEffect

from .conftest import RawClient, rule

# conftest's proxy, with the fast lane on: its tcp and unix variants.
lane_variants = pytest.mark.parametrize("proxy", ["unix", "tcp"], indirect=True)


@pytest.fixture
def lane(proxy: FaultProxy) -> FaultProxy:
    assert proxy.fast_lane_stats() is not None
    return proxy


def cmds(*commands: tuple[object, ...]) -> bytes:
    return b"".join(encode_command(*c) for c in commands)  # type: ignore[arg-type]


def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@lane_variants
def test_plain_pipelines_are_relayed_in_c_in_order(lane: FaultProxy) -> None:
    raw = RawClient(lane.address)
    for batch in range(40):  # a few KB each: one read apiece, so none is split
        commands = []
        for i in range(batch * 50, batch * 50 + 50):
            commands += [(b"SET", f"lane:{i}", str(i)), (b"GET", f"lane:{i}")]
        raw.send(cmds(*commands))
        replies = raw.read(len(commands))
        assert replies == [
            x for i in range(batch * 50, batch * 50 + 50) for x in (b"OK", str(i).encode())
        ]
    assert lane.fast_lane_stats() == (1, 4000, 0)  # (pairs in C, commands relayed, hand-overs)
    raw.close()
    wait_for(lambda: lane.fast_lane_stats()[0] == 0)  # type: ignore[index]


@lane_variants
def test_a_stateful_command_hands_the_connection_over(lane: FaultProxy) -> None:
    raw = RawClient(lane.address)
    raw.send(cmds((b"SET", b"t", b"1")))
    assert raw.read(1) == [b"OK"]
    raw.send(cmds((b"MULTI",), (b"INCR", b"t"), (b"EXEC",), (b"GET", b"t")))
    assert raw.read(4) == [b"OK", b"QUEUED", [2], b"2"]
    assert lane.fast_lane_stats() == (0, 1, 1)
    # Now on the asyncio path: a rule applies to it at once.
    lane.set_rules([rule(ErrorEffect(message="ERR injected"), command="GET")])
    raw.send(cmds((b"GET", b"t")))
    (reply,) = raw.read(1)
    assert isinstance(reply, hiredis.ReplyError) and str(reply) == "ERR injected"
    raw.close()


@lane_variants
def test_rules_switching_on_take_every_connection_out_of_the_lane(lane: FaultProxy) -> None:
    clients = [RawClient(lane.address) for _ in range(5)]
    for i, c in enumerate(clients):
        c.send(cmds((b"SET", f"sw:{i}", b"v")))
        assert c.read(1) == [b"OK"]
    assert lane.fast_lane_stats()[0] == 5  # type: ignore[index]
    lane.set_rules([rule(ErrorEffect(message="ERR no"), command="GET")])
    assert lane.fast_lane_stats()[0] == 0  # type: ignore[index]
    for i, c in enumerate(clients):
        c.send(cmds((b"GET", f"sw:{i}"), (b"STRLEN", f"sw:{i}")))
        err, length = c.read(2)
        assert str(err) == "ERR no" and length == 1
        c.close()


@lane_variants
def test_replies_owed_in_the_lane_come_before_an_injected_one(
    lane: FaultProxy, direct: redis.Redis
) -> None:
    raw = RawClient(lane.address)
    raw.send(cmds((b"BLPOP", b"owed:list", b"10")))  # relayed in C; its reply is owed
    wait_for(lambda: direct.info("clients")["blocked_clients"] == 1)
    lane.set_rules([rule(ErrorEffect(message="ERR after"), command="GET")])
    raw.send(cmds((b"GET", b"owed:x")))  # answered by the proxy, but only after BLPOP's reply
    time.sleep(0.1)
    direct.rpush("owed:list", "item")
    popped, injected = raw.read(2)
    assert popped == [b"owed:list", b"item"]
    assert isinstance(injected, hiredis.ReplyError) and str(injected) == "ERR after"
    raw.close()


@lane_variants
def test_down_closes_connections_in_the_lane_and_they_return_after(lane: FaultProxy) -> None:
    raw = RawClient(lane.address)
    raw.send(cmds((b"PING",)))
    assert raw.read(1) == [b"PONG"]
    lane.set_rules([rule(DownEffect())])
    assert raw.closed()
    refused = RawClient(lane.address)  # `down` refuses new connections too
    assert refused.closed()
    refused.close()
    lane.set_rules([])
    again = RawClient(lane.address)
    again.send(cmds((b"PING",)))
    assert again.read(1) == [b"PONG"]
    assert lane.fast_lane_stats()[0] == 1  # type: ignore[index]
    again.close()


@lane_variants
def test_a_command_split_across_packets_is_handed_over_whole(lane: FaultProxy) -> None:
    raw = RawClient(lane.address)
    data = encode_command(b"SET", b"split", b"x" * 1000) + encode_command(b"GET", b"split")
    raw.sock.sendall(data[:500])
    time.sleep(0.1)  # the relay reads the first half alone
    raw.sock.sendall(data[500:])
    assert raw.read(2) == [b"OK", b"x" * 1000]
    assert lane.fast_lane_stats()[2] == 1  # type: ignore[index]
    raw.close()


@lane_variants
def test_large_values_pass_through_the_hand_over(lane: FaultProxy, direct: redis.Redis) -> None:
    value = os.urandom(5 * 1024 * 1024)
    direct.set("big", value)
    raw = RawClient(lane.address)
    raw.send(cmds((b"GET", b"big"), (b"STRLEN", b"big"), (b"GET", b"big")))
    assert raw.read(3) == [value, len(value), value]
    assert lane.fast_lane_stats()[2] == 1  # type: ignore[index]  # a reply longer than a read
    raw.close()


@lane_variants
def test_half_close_with_replies_owed_still_delivers_them(lane: FaultProxy) -> None:
    raw = RawClient(lane.address)
    raw.send(cmds((b"SET", b"half", b"1"), (b"INCR", b"half")))
    raw.sock.shutdown(socket.SHUT_WR)
    assert raw.read(2) == [b"OK", 2]
    assert raw.closed()
    raw.close()


@lane_variants
def test_a_client_leaving_closes_its_server_connection(
    lane: FaultProxy, direct: redis.Redis
) -> None:
    before = len(direct.client_list())
    raw = RawClient(lane.address)
    raw.send(cmds((b"PING",)))
    assert raw.read(1) == [b"PONG"]
    assert len(direct.client_list()) == before + 1
    raw.close()
    wait_for(lambda: len(direct.client_list()) == before)
    assert lane.fast_lane_stats()[:2] == (0, 1)  # type: ignore[index]


@lane_variants
def test_redis_py_connections_stay_in_the_lane_until_named(lane: FaultProxy) -> None:
    r = redis.Redis(*lane.address)  # opens with HELLO 3 and CLIENT SETINFO
    assert r.set("py", "1") is True
    assert r.get("py") == b"1"
    live, relayed, escapes = lane.fast_lane_stats()  # type: ignore[misc]
    assert (live, escapes) == (1, 0) and relayed >= 3
    assert r.client_setname("named") is True  # the proxy must learn the name: handed over
    assert r.client_getname() == "named"
    assert lane.fast_lane_stats()[::2] == (0, 1)  # type: ignore[index]
    r.close()


@lane_variants
def test_the_protocol_a_hello_set_in_the_lane_holds_after_the_hand_over(
    lane: FaultProxy,
) -> None:
    raw = RawClient(lane.address)
    raw.send(cmds((b"HELLO", b"3")))
    (hello,) = raw.read(1)
    assert hello[b"proto"] == 3  # type: ignore[index]
    assert lane.fast_lane_stats()[::2] == (1, 0)  # type: ignore[index]
    lane.set_rules([rule(ResponseEffect(value=None), command="GET")])
    raw.send(cmds((b"GET", b"k")))
    assert raw.read_raw(3) == b"_\r\n"  # RESP3's null, as the server would answer now
    raw.close()


@lane_variants
def test_a_hello_still_unanswered_at_the_hand_over_settles_later(
    lane: FaultProxy, direct: redis.Redis
) -> None:
    raw = RawClient(lane.address)
    direct.client_pause(400, all=True)  # holds HELLO's reply back
    raw.send(cmds((b"HELLO", b"3")))
    time.sleep(0.1)  # relayed by the lane, unanswered
    lane.set_rules([rule(ResponseEffect(value=None), command="GET")])
    raw.send(cmds((b"GET", b"k")))  # judged once HELLO's reply says which protocol holds
    data = read_replies_raw(raw, 2)
    hello, injected = hiredis_all(data)
    assert hello[b"proto"] == 3  # type: ignore[index]
    assert injected is None and data.endswith(b"\r\n_\r\n")  # RESP3's null
    raw.close()


def hiredis_all(data: bytes) -> list[object]:
    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    while (reply := reader.gets()) is not False:
        out.append(reply)
    return out


def read_replies_raw(raw: RawClient, n: int) -> bytes:
    """The bytes of the next `n` replies, exactly (read before any RawClient.read)."""
    data = b""
    while len(hiredis_all(data)) < n:
        chunk = raw.sock.recv(1 << 16)
        assert chunk, "closed early"
        data += chunk
    return data


@lane_variants
def test_the_server_closing_closes_the_client(lane: FaultProxy, direct: redis.Redis) -> None:
    raw = RawClient(lane.address)
    raw.send(cmds((b"CLIENT", b"SETNAME", b"x")))  # hands it over
    raw.read(1)
    other = RawClient(lane.address)
    other.send(cmds((b"PING",)))
    assert other.read(1) == [b"PONG"]
    assert lane.fast_lane_stats()[0] == 1  # type: ignore[index]
    killed = direct.client_kill_filter(skipme=True, _type="normal")
    assert killed >= 2
    assert other.closed() and raw.closed()
    wait_for(lambda: lane.fast_lane_stats()[0] == 0)  # type: ignore[index]


def test_stopping_the_proxy_closes_what_the_lane_holds(
    redis_server: tuple[str, int], direct: redis.Redis
) -> None:
    fds_before = len(os.listdir("/proc/self/fd"))
    proxy = FaultProxy(*redis_server, name="stop")
    proxy.start()
    clients = [RawClient(proxy.address) for _ in range(3)]
    for c in clients:
        c.send(cmds((b"PING",)))
        assert c.read(1) == [b"PONG"]
    proxy.stop()
    for c in clients:
        assert c.closed()
        c.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before  # sockets, epoll, eventfds


@lane_variants
def test_rules_toggling_under_load_lose_no_reply(lane: FaultProxy) -> None:
    """Connections move out of the lane while their pipelines are in flight."""
    failures: list[str] = []

    def work(n: int) -> None:
        raw = RawClient(lane.address)
        try:
            for rnd in range(40):
                if rnd % 5 == 4:  # a new connection starts in the lane when no rule is on
                    raw.close()
                    raw = RawClient(lane.address)
                batch = []
                for i in range(50):
                    batch += [(b"SET", f"tg:{n}:{i}", f"{rnd}.{i}"), (b"GET", f"tg:{n}:{i}")]
                raw.send(cmds(*batch))
                got = raw.read(len(batch))
                want: list[object] = []
                for i in range(50):
                    want += [b"OK", f"{rnd}.{i}".encode()]
                if got != want:
                    failures.append(f"client {n} round {rnd}")
                    return
        except Exception as e:  # reported below, with the thread it came from
            failures.append(f"client {n}: {e!r}")
        finally:
            raw.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    toggles = 0
    while any(t.is_alive() for t in threads):
        lane.set_rules([rule(ErrorEffect(message="ERR never"), command="NOSUCHCOMMAND")])
        lane.set_rules([])
        toggles += 1
    for t in threads:
        t.join()
    assert failures == []
    assert toggles > 5


def _thread_states(tid: int, seconds: float) -> set[str]:
    """The scheduler states (R running/runnable, S sleeping...) one thread of this process
    shows when sampled over `seconds`."""
    states = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        states.add(stat.rsplit(")", 1)[1].split()[0])
        time.sleep(0.002)
    return states


def test_the_lane_spins_after_traffic_then_sleeps(
    redis_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDTEST_PROXY_BUSY_POLL_US", "1000000")  # 1 s, for a busy machine
    before = set(os.listdir("/proc/self/task"))
    with FaultProxy(*redis_server, name="spin") as proxy:
        assert proxy._thread is not None
        new = set(os.listdir("/proc/self/task")) - before - {str(proxy._thread.native_id)}
        (relay_tid,) = (int(t) for t in new)  # the relay's own thread
        wait_for(lambda: _thread_states(relay_tid, 0.05) == {"S"})  # started, then asleep
        raw = RawClient(proxy.address)
        raw.send(cmds((b"PING",)))
        assert raw.read(1) == [b"PONG"]
        # Polling: runnable, not asleep in epoll_wait (it yields, so it may be waiting
        # for a CPU on a loaded machine, which still shows as R).
        assert "R" in _thread_states(relay_tid, 0.3)
        time.sleep(1.0)  # the window passes
        assert _thread_states(relay_tid, 0.3) == {"S"}
        assert proxy.fast_lane_stats() == (1, 1, 0)  # the relay thread did the work
        raw.close()


def test_off_by_environment_and_a_bad_value_is_a_usage_error(
    redis_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fastlane.ENV, "0")
    with FaultProxy(*redis_server, name="off") as proxy:
        assert proxy.fast_lane_stats() is None
        r = redis.Redis(*proxy.address)
        assert r.ping() is True
        r.close()
    monkeypatch.setenv(fastlane.ENV, "maybe")
    with pytest.raises(UsageError, match=f"{fastlane.ENV}='maybe': expected 1"):
        FaultProxy(*redis_server, name="bad").start()


# -- the C relay alone, between socket pairs --------------------------------------------


@pytest.fixture
def relay() -> Iterator[tuple[Relay, socket.socket, socket.socket]]:
    """A Relay holding one pair: returns it with the application's and the server's ends."""
    app, client_side = socket.socketpair()
    upstream_side, server = socket.socketpair()
    r = Relay(STATEFUL_COMMANDS, 0)
    client_side.setblocking(False)
    upstream_side.setblocking(False)
    r.add(client_side.detach(), upstream_side.detach())
    app.settimeout(5)
    server.settimeout(5)
    yield r, app, server
    r.close()
    app.close()
    server.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "closed early"
        data += chunk
    return data


def test_relay_forwards_and_counts_replies_owed(relay) -> None:
    r, app, server = relay
    pings = encode_command(b"PING") * 3
    app.sendall(pings)
    assert recv_exactly(server, len(pings)) == pings
    server.sendall(b"+PONG\r\n")
    assert recv_exactly(app, 7) == b"+PONG\r\n"
    assert r.stats() == (1, 3, 0)
    (state,) = r.release_all()
    client_fd, upstream_fd, owed, *held = state
    assert owed == 2 and held == [b"", b"", b"", b"", 0, 0]  # bytes held, resp3, hello
    assert r.stats()[0] == 0
    os.close(client_fd)
    os.close(upstream_fd)


@pytest.mark.parametrize(
    "command",
    [
        (b"MULTI",),
        (b"multi",),
        (b"Client", b"setname", b"x"),
        (b"CLIENT", b"REPLY", b"OFF"),
        (b"HELLO", b"3", b"SETNAME", b"x"),
        (b"HELLO", b"3"),  # not alone in its chunk: which reply is its own is not known
        (b"SUBSCRIBE", b"x"),
        (b"CLIENT",),  # an arity error, judged by the asyncio path as any CLIENT
    ],
)
def test_relay_hands_over_a_stateful_command_untouched(relay, command) -> None:
    r, app, _server = relay
    chunk = encode_command(b"SET", b"a", b"1") + encode_command(*command)
    app.sendall(chunk)
    wait_for(lambda: r.stats()[2] == 1)
    (state,) = r.take_escaped()
    client_fd, upstream_fd, owed, from_client, from_server, to_client, to_server = state[:7]
    # The whole chunk is handed over unforwarded: nothing of it was counted.
    assert (owed, from_client, from_server, to_client, to_server) == (0, chunk, b"", b"", b"")
    os.close(client_fd)
    os.close(upstream_fd)


def test_relay_keeps_other_client_subcommands(relay) -> None:
    """redis-py sends CLIENT SETINFO on every new connection: that stays in the lane, and
    a later CLIENT SETNAME in the same chunk is still seen."""
    r, app, server = relay
    chunk = cmds((b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py"), (b"client", b"id"))
    app.sendall(chunk)
    assert recv_exactly(server, len(chunk)) == chunk
    assert r.stats() == (1, 2, 0)
    named = cmds((b"CLIENT", b"SETINFO", b"LIB-VER", b"1"), (b"CLIENT", b"SETNAME", b"n"))
    app.sendall(named)
    wait_for(lambda: r.stats()[2] == 1)
    (state,) = r.take_escaped()
    assert state[2:4] == (2, named)
    os.close(state[0])
    os.close(state[1])


def test_relay_hands_over_a_reply_nobody_asked_for(relay) -> None:
    r, _app, server = relay
    server.sendall(b"-ERR max number of clients reached\r\n")
    wait_for(lambda: r.stats()[2] == 1)
    (state,) = r.take_escaped()
    assert state[2:7] == (0, b"", b"-ERR max number of clients reached\r\n", b"", b"")
    os.close(state[0])
    os.close(state[1])


def test_relay_hands_over_what_a_full_socket_did_not_take(relay) -> None:
    r, app, server = relay
    n = 2000
    commands = encode_command(b"GET", b"k") * n
    app.sendall(commands)
    assert recv_exactly(server, len(commands)) == commands
    reply = b"$1000\r\n" + b"v" * 1000 + b"\r\n"
    # The application reads nothing: its socket fills up and the relay must let go.
    sent = 0
    while sent < n and r.stats()[2] == 0:
        server.sendall(reply * 10)
        sent += 10
        time.sleep(0.001)
    wait_for(lambda: r.stats()[2] == 1)
    (state,) = r.take_escaped()
    client_fd, upstream_fd, owed, from_client, from_server, to_client, to_server = state[:7]
    assert to_client and not (from_server or from_client or to_server)
    app.setblocking(False)
    delivered = b""
    while True:
        try:
            chunk = app.recv(1 << 20)
        except BlockingIOError:
            break
        delivered += chunk
    # What reached the application, then what is handed over, is what the server sent
    # first; the replies counted as owed are those the relay has not read.
    assert (delivered + to_client) == reply * ((len(delivered) + len(to_client)) // len(reply))
    assert owed == n - (len(delivered) + len(to_client)) // len(reply)
    os.close(client_fd)
    os.close(upstream_fd)


def test_relay_close_is_idempotent_and_add_after_close_fails() -> None:
    r = Relay(STATEFUL_COMMANDS, 0)
    r.close()
    r.close()
    a, b = socket.socketpair()
    with pytest.raises(RuntimeError):
        r.add(a.fileno(), b.fileno())
    a.close()
    b.close()


# -- the lane against the server itself, on random traffic -------------------------------


def _random_session(rng: random.Random, prefix: str) -> list[list[tuple[object, ...]]]:
    """Batches of commands (what one connection pipelines at a time) on `prefix` keys:
    plain commands mostly, now and then one that the lane hands over."""
    session: list[list[tuple[object, ...]]] = [[(b"HELLO", rng.choice([b"2", b"3"]))]]
    for _ in range(rng.randint(5, 30)):
        batch: list[tuple[object, ...]] = []
        for _ in range(rng.randint(1, 40)):
            key = f"{prefix}:{rng.randint(0, 5)}"
            batch.append(
                rng.choice(
                    [
                        (b"SET", key, os.urandom(rng.choice([1, 10, 3000])).hex()),
                        (b"GET", key),
                        (b"INCR", f"{key}:n"),
                        (b"RPUSH", f"{key}:l", b"a", b"b"),
                        (b"LRANGE", f"{key}:l", 0, 3),
                        (b"HSET", f"{key}:h", b"f", b"v", b"g", b"w"),
                        (b"HGETALL", f"{key}:h"),
                        (b"EXISTS", key, f"{key}:n"),
                        (b"CLIENT", b"SETINFO", b"LIB-NAME", b"rt"),
                        (b"PING",),
                        (b"GET", b"shared:big"),  # a reply longer than one read
                    ]
                )
            )
        if rng.random() < 0.05:  # leaves the lane
            batch += [(b"MULTI",), (b"INCR", f"{prefix}:m"), (b"EXEC",)]
        session.append(batch)
    return session


def _play(
    address: tuple[str, int], session: list[list[tuple[object, ...]]], rng: random.Random
) -> list[object]:
    conn = RawClient(address)
    replies: list[object] = []
    try:
        for batch in session:
            data = cmds(*batch)
            if rng.random() < 0.2:  # split somewhere: the lane must hand it over whole
                cut = rng.randint(1, len(data) - 1)
                conn.send(data[:cut])
                time.sleep(0.002)
                conn.send(data[cut:])
            else:
                conn.send(data)
            replies += conn.read(len(batch))
    finally:
        conn.close()
    return replies


def _normal(reply: object, prefix: str) -> object:
    """A reply with what differs between two connections (ids, key prefixes) taken out."""
    if isinstance(reply, dict):
        return {k: v for k, v in reply.items() if k != b"id"}
    if isinstance(reply, list) and reply[:1] == [b"server"]:  # HELLO 2: a flat map
        return _normal(dict(zip(reply[::2], reply[1::2], strict=True)), prefix)
    if isinstance(reply, list):
        return [_normal(r, prefix) for r in reply]
    if isinstance(reply, hiredis.ReplyError):
        return ("error", str(reply).replace(prefix, "P"))
    return reply.replace(prefix.encode(), b"P") if isinstance(reply, bytes) else reply


@lane_variants
@pytest.mark.parametrize("seed", range(6))
def test_random_traffic_through_the_lane_matches_the_server(
    lane: FaultProxy, redis_server: tuple[str, int], seed: int
) -> None:
    """Each connection plays a random session through the proxy and the same session,
    on other keys, straight to the server: the replies must be the same, in order."""
    failures: list[str] = []
    direct = redis.Redis(*redis_server)
    direct.set("shared:big", os.urandom(300_000))
    direct.close()

    def compare(n: int) -> None:
        session_rng = random.Random(seed * 100 + n)
        via, straight = f"v{seed}:{n}", f"s{seed}:{n}"
        session = _random_session(session_rng, "K")

        def subst(prefix: str) -> list[list[tuple[object, ...]]]:
            return [
                [tuple(a.replace("K", prefix) if isinstance(a, str) else a for a in c) for c in b]
                for b in session
            ]

        try:
            got = _play(lane.address, subst(via), random.Random(seed + n))
            want = _play(redis_server, subst(straight), random.Random(seed + n))
            got_n, want_n = [_normal(r, via) for r in got], [_normal(r, straight) for r in want]
            if got_n != want_n:
                i = next(i for i, (a, b) in enumerate(zip(got_n, want_n, strict=True)) if a != b)
                failures.append(f"connection {n}: reply {i}: {got_n[i]!r} != {want_n[i]!r}")
        except Exception as e:  # reported below, with the connection it came from
            failures.append(f"connection {n}: {e!r}")

    threads = [threading.Thread(target=compare, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    _live, relayed, escapes = lane.fast_lane_stats()  # type: ignore[misc]
    assert relayed > 0 and escapes > 0  # the lane carried part of it, then handed over


def test_running_out_of_descriptors_leaves_waiting_clients_served_later(
    redis_server: tuple[str, int],
) -> None:
    """The proxy accepts on its own sockets (for the lane): when accept or the upstream
    connection fails for want of descriptors, it must keep listening and catch up."""
    proc = subprocess.Popen(
        [
            "prlimit",
            "--nofile=48",
            sys.executable,
            "-m",
            "redtest",
            "proxy",
            "-q",
            "--upstream",
            f"{redis_server[0]}:{redis_server[1]}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        host, port = line.split("listening on ")[1].split(" ")[0].rsplit(":", 1)
        clients: list[socket.socket] = []
        waiting = None
        for _ in range(60):
            c = socket.create_connection((host, int(port)), timeout=1)
            clients.append(c)
            c.sendall(encode_command(b"PING"))
            try:
                reply = c.recv(100)
            except TimeoutError:
                waiting = c  # the descriptors ran out: this one is not served yet
                break
            assert reply == b"+PONG\r\n"
        assert waiting is not None, "the descriptor limit was never reached"
        for c in clients[:10]:
            c.close()
        waiting.settimeout(5)
        try:
            assert waiting.recv(100) == b"+PONG\r\n"  # served once descriptors are free
        except ConnectionResetError:
            pass  # or refused outright, as when the server cannot be reached
        fresh = redis.Redis(host, int(port), socket_timeout=5)
        assert fresh.ping() is True
        fresh.close()
        for c in clients[10:]:
            c.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err
