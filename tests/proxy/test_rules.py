"""Every rule kind and modifier, through the real proxy to a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time

import hiredis
import pytest
import redis

from redtest.proxy.server import FaultProxy
from redtest.spec.model import DelayEffect, DownEffect, DropEffect, ErrorEffect, ResponseEffect

from .conftest import RawClient, client, rule


def test_error_message_exactly_as_written(proxy: FaultProxy, direct: redis.Redis) -> None:
    proxy.set_rules(
        [rule(ErrorEffect("READONLY You can't write against a read only replica."), command="SET")]
    )
    r = client(proxy)
    with pytest.raises(redis.ReadOnlyError, match="You can't write"):
        r.set("k", "v")
    assert direct.get("k") is None  # not forwarded
    assert r.get("k") is None  # GET is not matched
    assert proxy.hit_counts() == [1]


def test_error_default_message_and_raw_bytes(proxy: FaultProxy, raw: RawClient) -> None:
    proxy.set_rules([rule(ErrorEffect(), command="get")])
    raw.send(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
    assert raw.read_raw(len(b"-ERR injected fault\r\n")) == b"-ERR injected fault\r\n"


def test_response_values(proxy: FaultProxy, direct: redis.Redis) -> None:
    direct.set("k", "real")
    r = client(proxy)
    proxy.set_rules([rule(ResponseEffect(None), command="GET")])
    assert r.get("k") is None
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET")])
    assert r.get("k") == b"fake"
    proxy.set_rules([rule(ResponseEffect(42), command="INCR*")])  # redis-py sends INCRBY
    assert r.incr("n") == 42
    assert direct.get("n") is None


def test_response_null_in_resp3(proxy: FaultProxy, raw: RawClient) -> None:
    raw.send(b"HELLO 3\r\n")
    raw.read()
    proxy.set_rules([rule(ResponseEffect(None), command="GET")])
    raw.send(b"GET k\r\n")
    assert raw.read_raw(3) == b"_\r\n"


def test_delay_keeps_pipeline_order(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(DelayEffect(0.3), command="GET", key="slow")])
    r = client(proxy)
    pipe = r.pipeline(transaction=False)
    pipe.set("slow", "1").get("slow").set("fast", "2").get("fast")
    t0 = time.monotonic()
    assert pipe.execute() == [True, b"1", True, b"2"]
    assert time.monotonic() - t0 >= 0.3
    t0 = time.monotonic()
    assert r.get("fast") == b"2"
    assert time.monotonic() - t0 < 0.25


def test_delay_then_later_rule_applies(proxy: FaultProxy, direct: redis.Redis) -> None:
    proxy.set_rules(
        [rule(DelayEffect(0.2), command="SET"), rule(ErrorEffect("OOM no memory"), command="SET")]
    )
    r = client(proxy)
    t0 = time.monotonic()
    with pytest.raises(redis.ResponseError, match="no memory"):
        r.set("k", "v")
    assert time.monotonic() - t0 >= 0.2
    assert direct.get("k") is None
    assert proxy.hit_counts() == [1, 1]


def test_drop_close(proxy: FaultProxy, direct: redis.Redis) -> None:
    proxy.set_rules([rule(DropEffect(), command="SET")])
    r = client(proxy)
    with pytest.raises(redis.ConnectionError):
        r.set("k", "v")
    assert direct.get("k") is None


def test_drop_close_delivers_earlier_replies_first(proxy: FaultProxy, raw: RawClient) -> None:
    proxy.set_rules([rule(DropEffect(), command="SET")])
    raw.send(b"PING\r\nPING\r\nSET k v\r\nPING\r\n")
    assert raw.read(2) == [b"PONG", b"PONG"]
    assert raw.closed()


def test_drop_blackhole(proxy: FaultProxy, direct: redis.Redis) -> None:
    proxy.set_rules([rule(DropEffect("blackhole"), command="SET")])
    r = client(proxy, socket_timeout=0.5)
    with pytest.raises(redis.TimeoutError):
        r.set("k", "v")
    assert direct.get("k") is None


def test_drop_lose_reply_executes_the_write(proxy: FaultProxy, direct: redis.Redis) -> None:
    proxy.set_rules([rule(DropEffect("lose_reply"), command="INCR*")])
    r = client(proxy)
    with pytest.raises(redis.ConnectionError):
        r.incr("n")
    deadline = time.monotonic() + 2
    while direct.get("n") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert direct.get("n") == b"1"


@pytest.mark.parametrize(
    ("before", "written"),
    [
        (b"CLIENT REPLY OFF\r\n", True),
        (b"CLIENT REPLY SKIP\r\n", True),
        (b"CLIENT REPLY OFF\r\nMULTI\r\n", False),  # the close discards the transaction
    ],
)
def test_drop_lose_reply_closes_also_when_no_reply_was_coming(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient, before: bytes, written: bool
) -> None:
    """lose_reply closes after the server's reply; with replies off (or skipped) there is
    none, and the connection used to stay open. It closes once the write is done."""
    proxy.set_rules([rule(DropEffect("lose_reply"), command="SET")])
    raw.send(before + b"SET k v\r\n")
    assert raw.closed()
    assert (direct.get("k") == b"v") is written


def test_drop_close_with_replies_off_keeps_the_writes_behind_a_blocked_command(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient
) -> None:
    """With no reply owed the close used to come at once, and the server, still blocked in
    BLPOP, dropped the SET queued behind it when the connection ended. The close now
    waits for a PING's answer: every command before the dropped one has run."""
    proxy.set_rules([rule(DropEffect(), command="INCR")])
    raw.send(b"CLIENT REPLY OFF\r\nBLPOP l 0.05\r\nSET a 1\r\nINCR n\r\nSET b 1\r\n")
    assert raw.closed()
    assert direct.mget("a", "n", "b") == [b"1", None, None]


def test_commands_read_before_the_server_is_connected_run_when_the_client_resets(
    proxy: FaultProxy, direct: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that writes, then resets the connection before the proxy's upstream
    connection is made (made slow here, as to a distant server): the server still gets
    what the proxy had read, as a server reads what reached it before a reset. It used
    to be dropped with the connection."""
    proxy.set_rules([rule(ErrorEffect("ERR x"), command="NOPE")])  # the asyncio path
    connect = proxy.open_upstream

    async def slowly(*args: object) -> object:
        await asyncio.sleep(0.2)
        return await connect(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(proxy, "open_upstream", slowly)
    with socket.create_connection(proxy.address) as sock:
        sock.sendall(b"SET k v\r\n")
        time.sleep(0.05)  # read by the proxy
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + 2
    while direct.get("k") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert direct.get("k") == b"v"


def test_drop_lose_reply_after_counting_stopped_still_sends_the_write(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient
) -> None:
    """CLIENT REPLY SKIP run by EXEC stops reply counting; lose_reply then closes at once,
    and the close still writes the command first."""
    raw.send(b"MULTI\r\nCLIENT REPLY SKIP\r\nEXEC\r\n")  # EXEC's reply is cut short
    assert raw.read_raw(len(b"+OK\r\n+QUEUED\r\n*1\r\n")) == b"+OK\r\n+QUEUED\r\n*1\r\n"
    proxy.set_rules([rule(DropEffect("lose_reply"), command="SET")])
    raw.send(b"SET k v\r\n")
    assert raw.closed()
    deadline = time.monotonic() + 2
    while direct.get("k") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert direct.get("k") == b"v"


@pytest.mark.parametrize("drop_held", [False, True])
def test_switching_rules_off_with_drop_held_drops_a_delayed_command(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient, drop_held: bool
) -> None:
    """Between tests the runner switches faults off with drop_held: a command still held by
    a delay is dropped and its connection closed, so it cannot land after the next
    test's reset. A plain switch leaves it to run after its delay."""
    proxy.set_rules([rule(DelayEffect(0.3), command="SET")])
    raw.send(b"SET k v\r\n")
    time.sleep(0.05)  # held by the delay now
    proxy.set_rules([], drop_held=drop_held)
    if drop_held:
        assert raw.closed()
    else:
        assert raw.read() == [b"OK"]
    time.sleep(0.4)
    assert (direct.get("k") is None) is drop_held


def test_down_then_recovery(proxy: FaultProxy) -> None:
    r = client(proxy)
    assert r.ping()
    proxy.set_rules([rule(DownEffect())])
    with pytest.raises(redis.ConnectionError):
        r.ping()  # the open connection was closed
    with pytest.raises(redis.ConnectionError):
        client(proxy).ping()  # new ones are refused
    proxy.set_rules([])
    assert client(proxy).ping()
    assert r.ping()  # redis-py reconnects on the next command


def test_down_does_not_count_connections_their_clients_just_closed(proxy: FaultProxy) -> None:
    """A client that closed its connection a moment before `down` switched on, before the
    proxy read the end of stream, was counted as a hit: reports then said `down` cut a
    connection nobody used. Each round closes one and switches `down` on at once."""
    for _ in range(20):
        proxy.set_rules([])
        with socket.create_connection(proxy.address) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(16) == b"+PONG\r\n"
        proxy.set_rules([rule(DownEffect())])
        assert proxy.hit_counts() == [0]
    proxy.set_rules([])


def test_down_for_a_while(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(DownEffect(), for_seconds=0.3)])
    with pytest.raises(redis.ConnectionError):
        client(proxy).ping()
    time.sleep(0.35)
    assert client(proxy).ping()


def test_down_with_times_counts_attempts_not_idle_connections(proxy: FaultProxy) -> None:
    idle = client(proxy)
    assert idle.ping()
    proxy.set_rules([rule(DownEffect(), times=2)])  # idle is not closed: no attempt yet
    with pytest.raises(redis.ConnectionError):
        idle.ping()  # its next command: count 1
    with pytest.raises(redis.ConnectionError):
        client(proxy).ping()  # a new connection: count 2
    assert client(proxy).ping()  # `times: 2` is used up
    assert idle.ping()  # redis-py reconnects
    assert proxy.hit_counts() == [2]


def test_down_for_named_clients_only(proxy: FaultProxy) -> None:
    other = client(proxy)
    worker = client(proxy, client_name="worker-1")
    assert other.ping() and worker.ping()
    proxy.set_rules([rule(DownEffect(), client="worker-*")])
    with pytest.raises(redis.ConnectionError):
        worker.ping()
    assert other.ping()
    late = client(proxy)
    late.client_setname("worker-2")  # named after connecting: its next command is refused
    with pytest.raises(redis.ConnectionError):
        late.ping()


def test_after_and_times(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(ErrorEffect("ERR x"), command="PING", after=2, times=2)])
    r = client(proxy)
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(r.ping())
        except redis.ResponseError:
            outcomes.append("err")
    assert outcomes == [True, True, "err", "err", True, True]
    assert proxy.hit_counts() == [2]


def test_probability_is_repeatable_with_a_seed(proxy: FaultProxy) -> None:
    def run() -> list[bool]:
        proxy.set_rules([rule(ErrorEffect(), command="PING", probability=0.5)], rng_seed=7)
        r = client(proxy)
        out = []
        for _ in range(40):
            try:
                out.append(r.ping())
            except redis.ResponseError:
                out.append(False)
        return out

    first = run()
    assert 5 < first.count(False) < 35
    assert run() == first
    assert proxy.hit_counts() == [first.count(False)]


def test_for_window(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(ErrorEffect(), command="PING", for_seconds=0.2)])
    r = client(proxy)
    with pytest.raises(redis.ResponseError):
        r.ping()
    time.sleep(0.25)
    assert r.ping()


def test_client_name_glob(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(ErrorEffect(), command="GET", client="worker-*")])
    worker = client(proxy, client_name="worker-1")
    web = client(proxy, client_name="web")
    anon = client(proxy)
    with pytest.raises(redis.ResponseError):
        worker.get("k")
    assert web.get("k") is None and anon.get("k") is None
    hello = client(proxy, protocol=3)
    hello.execute_command("HELLO", "3", "SETNAME", "worker-9")
    with pytest.raises(redis.ResponseError):
        hello.get("k")


@pytest.mark.parametrize(
    ("naming", "named"),
    [
        (b"CLIENT SETNAME worker-1\r\n", True),
        (b'CLIENT SETNAME "worker 1"\r\n', False),  # Redis refuses spaces in names
        (b"HELLO 4 SETNAME worker-2\r\n", False),  # NOPROTO: nothing changes
        (b"HELLO 3 AUTH alice wrong SETNAME worker-3\r\n", False),  # WRONGPASS
        (b"HELLO 3 AUTH alice pw SETNAME worker-4\r\n", True),
        (b"CLIENT SETNAME worker-5\r\nCLIENT SETNAME bad\x01name\r\n", True),  # keeps worker-5
        (b"MULTI\r\nCLIENT SETNAME worker-6\r\nEXEC\r\n", True),
        (b"MULTI\r\nCLIENT SETNAME worker-7\r\nDISCARD\r\n", False),
    ],
)
def test_client_glob_follows_the_name_the_server_took(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient, naming: bytes, named: bool
) -> None:
    direct.execute_command("ACL", "SETUSER", "alice", "on", ">pw", "~*", "&*", "+@all")
    try:
        proxy.set_rules([rule(ErrorEffect("ERR worker"), command="GET", client="worker-*")])
        # The GET is in the same write: it must wait for the naming command's reply.
        raw.send(naming + b"GET a\r\nCLIENT GETNAME\r\n")
        replies = raw.read(naming.count(b"\r\n") + 2)
        got, name = replies[-2], replies[-1]
        assert (name or b"").startswith(b"worker-") is named, replies
        if named:
            assert isinstance(got, hiredis.ReplyError) and str(got) == "ERR worker"
        else:
            assert got is None, replies
    finally:
        direct.execute_command("ACL", "DELUSER", "alice")


def test_a_name_the_server_is_slow_to_take_holds_what_follows_one_second_at_most(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient
) -> None:
    """The GET after CLIENT SETNAME waits for its reply to be judged under the new name,
    but a paused server must not hold the pipeline: after 1 s it goes on under the old."""
    proxy.set_rules([rule(ErrorEffect("ERR worker"), command="GET", client="worker-*")])
    direct.execute_command("CLIENT", "PAUSE", "1800", "ALL")  # ends by itself
    raw.send(b"CLIENT SETNAME worker-1\r\nGET a\r\n")
    assert raw.read(2) == [b"OK", None]  # judged unnamed; waiting 1.8 s would give the error
    raw.send(b"GET a\r\n")
    assert isinstance(raw.read(1)[0], hiredis.ReplyError)  # the name holds from now on
    # a name the server takes at once ends the wait then, timer and all
    raw.send(b"CLIENT SETNAME worker-2\r\nGET a\r\n")
    assert raw.read(1) == [b"OK"] and isinstance(raw.read(1)[0], hiredis.ReplyError)
    assert [c.name_timer for c in proxy.conns] == [None]


@pytest.mark.parametrize(("password", "nil"), [(b"wrong", b"$-1\r\n"), (b"pw", b"_\r\n")])
def test_injected_nil_follows_the_protocol_the_server_took(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient, password: bytes, nil: bytes
) -> None:
    direct.execute_command("ACL", "SETUSER", "alice", "on", ">pw", "~*", "&*", "+@all")
    try:
        proxy.set_rules([rule(ResponseEffect(None), command="GET")])
        raw.send(b"HELLO 3 AUTH alice " + password + b"\r\n")
        raw.read(1)  # a RESP3 map, or WRONGPASS (and the connection stays RESP2)
        raw.send(b"GET a\r\n")
        assert raw.read_raw(len(nil)) == nil
    finally:
        direct.execute_command("ACL", "DELUSER", "alice")


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["MSET", "a", "1", "order:1", "2"], "order:*"),
        (["DEL", "x", "order:2"], "order:*"),
        (["ZUNIONSTORE", "dest", "2", "z1", "order:z"], "order:*"),
        (["EVAL", "return 1", "2", "x", "order:e"], "order:*"),
        (["XREAD", "STREAMS", "s1", "order:s", "0", "0"], "order:*"),
        (["SORT", "src", "STORE", "order:dst"], "order:*"),  # incomplete key-specs: COMMAND GETKEYS
    ],
)
def test_key_glob_over_all_keys(proxy: FaultProxy, args: list[str], key: str) -> None:
    proxy.set_rules([rule(ErrorEffect("WRONGTYPE injected"), key=key)])
    r = client(proxy)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.execute_command(*args)
    # the same command with no matching key goes through
    r.execute_command(*[a.replace("order:", "other:") for a in args])
    assert proxy.hit_counts() == [1]


def test_key_rule_never_matches_keyless_commands(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(ErrorEffect(), key="*")])
    r = client(proxy)
    assert r.ping()
    assert r.echo("x") == b"x"
    with pytest.raises(redis.ResponseError):
        r.get("anything")


def test_first_matching_rule_decides(proxy: FaultProxy) -> None:
    proxy.set_rules(
        [rule(ResponseEffect("first"), command="GET"), rule(ErrorEffect(), command="P*")]
    )
    r = client(proxy)
    assert r.get("k") == b"first"
    with pytest.raises(redis.ResponseError):
        r.ping()
    assert proxy.hit_counts() == [1, 1]


def test_set_rules_is_atomic_and_resets_counters(proxy: FaultProxy) -> None:
    proxy.set_rules([rule(ErrorEffect(), command="PING", times=1)])
    r = client(proxy)
    with pytest.raises(redis.ResponseError):
        r.ping()
    assert proxy.hit_counts() == [1]
    proxy.set_rules([rule(ErrorEffect(), command="PING", times=1)])
    assert proxy.hit_counts() == [0]
    with pytest.raises(redis.ResponseError):
        r.ping()  # fresh `times` count
    # While a pipeline runs in another thread, swaps never mix two sets for one command:
    # every reply is either from the server or from one of the two rule sets.
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            proxy.set_rules([rule(ResponseEffect("A"), command="GET")])
            proxy.set_rules([rule(ResponseEffect("B"), command="GET")])

    # A GET rule is in place before the pipeline starts (else the first GETs could reach
    # the server, under the PING-only set above, before the thread's first swap).
    proxy.set_rules([rule(ResponseEffect("A"), command="GET")])
    t = threading.Thread(target=flip)
    t.start()
    try:
        pipe = r.pipeline(transaction=False)
        for _ in range(2000):
            pipe.get("k")
        assert set(pipe.execute()) <= {b"A", b"B"}
    finally:
        stop.set()
        t.join()
    proxy.set_rules([])
    assert proxy.hit_counts() == []
    assert r.get("k") is None


def test_on_hit_callback(redis_server: tuple[str, int], direct: redis.Redis) -> None:
    seen = []
    with FaultProxy(*redis_server, on_hit=lambda i, r: seen.append((i, r.kind))) as p:
        p.set_rules([rule(DelayEffect(0.01), command="GET"), rule(ErrorEffect(), command="GET")])
        with pytest.raises(redis.ResponseError):
            client(p).get("k")
    assert seen == [(0, "delay"), (1, "error")]


def test_standalone_serve_prints_address_and_hits(redis_server: tuple[str, int]) -> None:
    import socket as _socket

    from redtest.proxy.standalone import serve

    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines: list[str] = []
    rules = [rule(ErrorEffect("READONLY"), command="SET")]
    t = threading.Thread(
        target=serve,
        args=(redis_server, ("127.0.0.1", port), rules),
        kwargs={"quiet": False, "echo": lines.append},
    )
    t.daemon = True
    t.start()
    deadline = time.monotonic() + 5
    while not any("listening" in x for x in lines) and time.monotonic() < deadline:
        time.sleep(0.02)
    r = redis.Redis("127.0.0.1", port, retry=None)
    with pytest.raises(redis.ReadOnlyError):
        r.set("k", "v")
    assert any(f"127.0.0.1:{port}" in x for x in lines)
    deadline = time.monotonic() + 5  # hit lines are printed by a thread of their own
    while not any(x.startswith("hit rule 1:") for x in lines) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(x.startswith("hit rule 1: error(command=SET") for x in lines)


def test_a_key_rule_leaves_shard_channels_alone(proxy: FaultProxy, raw: RawClient) -> None:
    """SPUBLISH's channel is found by a key-spec flagged not_key: not a key (COMMAND
    GETKEYS says the command has none), so `key: order:*` does not match it."""
    proxy.set_rules([rule(ErrorEffect("WRONGTYPE"), key="order:*")])
    raw.send(b"SPUBLISH order:1 m\r\nPUBLISH order:1 m\r\nGET order:1\r\n")
    first, second, third = raw.read(3)
    assert (first, second) == (0, 0)
    assert str(third) == "WRONGTYPE"


def test_an_argument_longer_than_redis_takes_is_left_to_the_server(
    proxy: FaultProxy, raw: RawClient
) -> None:
    """With rules on, the proxy waited for all 10^12 bytes of the announced argument;
    now the server sees the header and refuses it, as it would without the proxy."""
    proxy.set_rules([rule(ErrorEffect("ERR x"), command="NOPE")])
    raw.send(b"*2\r\n$3\r\nGET\r\n$999999999999\r\n")
    [reply] = raw.read()
    assert isinstance(reply, hiredis.ReplyError) and "invalid bulk length" in str(reply)
    assert raw.closed()


def test_hello_queued_in_multi_takes_effect_with_exec(proxy: FaultProxy, raw: RawClient) -> None:
    """HELLO inside MULTI switches the protocol, and names the connection, when EXEC runs
    it: an injected nil is then RESP3's `_`, and a `client` rule sees the name."""
    proxy.set_rules(
        [
            rule(ErrorEffect("ERR named"), command="GET", client="job*"),
            rule(ResponseEffect(None), command="GET"),
        ]
    )
    raw.send(b"GET x\r\nMULTI\r\nHELLO 3\r\nEXEC\r\nGET x\r\nECHO end\r\n")
    got = b""
    while not got.endswith(b"$3\r\nend\r\n"):
        got += raw.sock.recv(65536)
    assert got.startswith(b"$-1\r\n+OK\r\n+QUEUED\r\n*1\r\n%")  # EXEC holds HELLO's map
    assert got.endswith(b"\r\n_\r\n$3\r\nend\r\n")
    raw.send(b"MULTI\r\nHELLO 2 SETNAME job1\r\nEXEC\r\nGET x\r\n")
    replies = raw.read(4)
    assert str(replies[-1]) == "ERR named"


@pytest.mark.parametrize(
    "session",
    [
        b"CLIENT REPLY OFF\r\n",  # the dropped command itself turns replies off
        b"HELLO 3\r\nSUBSCRIBE ch\r\n",  # answered by pushes only
        b"MULTI\r\n",
    ],
)
def test_drop_lose_reply_closes_after_a_command_with_no_counted_reply(
    proxy: FaultProxy, direct: redis.Redis, raw: RawClient, session: bytes
) -> None:
    """lose_reply on CLIENT REPLY OFF or a RESP3 SUBSCRIBE waited for a reply that never
    came: the connection stayed open. A barrier now marks when the server has run it."""
    name = session.split(b"\r\n")[-2].split()[0].decode()
    proxy.set_rules([rule(DropEffect("lose_reply"), command=name)])
    raw.send(session)
    raw.sock.settimeout(2)
    with contextlib.suppress(ConnectionResetError):  # what came before (HELLO's map), then the end
        while raw.sock.recv(65536):
            pass
    assert proxy.hit_counts() == [1]


def test_a_delayed_command_is_judged_to_the_end_by_the_set_that_delayed_it(
    proxy: FaultProxy, raw: RawClient
) -> None:
    """The set switched during the delay: matching went on in the new set from the old
    set's rule position (here: skipping new rule 0, crediting new rule 1)."""
    proxy.set_rules([rule(DelayEffect(0.3), command="GET"), rule(ErrorEffect("ERR old1"), command="GET")])
    raw.send(b"GET k\r\n")
    time.sleep(0.1)
    proxy.set_rules([rule(ErrorEffect("ERR new0"), command="GET"), rule(ErrorEffect("ERR new1"), command="GET")])
    assert [str(e) for e in raw.read()] == ["ERR old1"]
    assert proxy.hit_counts() == [0, 0]


def test_client_reply_on_queued_in_multi_keeps_replies_counted(
    proxy: FaultProxy, raw: RawClient
) -> None:
    """With replies on, CLIENT REPLY ON inside MULTI changes nothing; the connection used to
    stop counting, and an injected answer could overtake earlier replies."""
    proxy.set_rules([rule(ResponseEffect("fake"), command="GET", key="k")])
    raw.send(b"MULTI\r\nCLIENT REPLY ON\r\nEXEC\r\nGET k\r\nPING\r\n")
    assert raw.read(5) == [b"OK", b"QUEUED", [b"OK"], b"fake", b"PONG"]
