"""Fixtures: one real redis-server per test module, a fresh FaultProxy per test."""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hiredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_support import start_redis_server

from redtest.errors import Location
from redtest.proxy import busypoll, conn, fastlane, resp
from redtest.proxy.resp import encode_command
from redtest.proxy.server import FaultProxy
from redtest.spec.model import Effect, Rule

LOC = Location("test.yaml", 1, 1)


@pytest.fixture(scope="module")
def redis_socket_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redis")


@pytest.fixture(scope="module")
def redis_server(redis_socket_dir: Path) -> Iterator[tuple[str, int]]:
    """A real redis-server of this module's own (tests here pause, monitor and kill clients).

    It also listens on a Unix socket, which the proxy uses when redtest started the server.
    """
    server = start_redis_server(
        redis_socket_dir, "--unixsocket", str(redis_socket_dir / "redis.sock")
    )
    yield (server.host, server.port)
    server.stop()


@pytest.fixture
def direct(redis_server: tuple[str, int]) -> Iterator[redis.Redis]:
    """A client straight to the server (not through faults); the database is flushed first."""
    client = redis.Redis(*redis_server)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(params=["tcp", "unix", "python"])
def proxy(
    request: pytest.FixtureRequest,
    redis_server: tuple[str, int],
    redis_socket_dir: Path,
    direct: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FaultProxy]:
    """A proxy upstream over TCP (docker, external servers) or the Unix socket (local,
    embedded), with busy polling and the fast lane as by default; `python`: the Unix
    socket with none of the C counters, busy polling or the fast lane (the paths of an
    install without a C compiler)."""
    unix = str(redis_socket_dir / "redis.sock") if request.param != "tcp" else None
    monkeypatch.delenv(fastlane.ENV, raising=False)  # the default, whatever the shell says
    if request.param == "python":
        monkeypatch.setattr(resp, "count_replies", None)
        monkeypatch.setattr(conn, "count_commands", None)
        monkeypatch.setattr(busypoll, "_spin", None)
        monkeypatch.setattr(fastlane, "Relay", None)
    with FaultProxy(*redis_server, name="test", upstream_unix=unix) as p:
        yield p


def client(proxy: FaultProxy, **kw: object) -> redis.Redis:
    """redis-py through the proxy, never retrying (a fault must show as what it is)."""
    kw.setdefault("socket_timeout", 5)
    return redis.Redis(*proxy.address, retry=Retry(NoBackoff(), 0), **kw)  # type: ignore[arg-type]


def rule(effect: Effect, **kw: object) -> Rule:
    return Rule(effect=effect, loc=LOC, **kw)  # type: ignore[arg-type]


class RawClient:
    """A plain socket speaking RESP, for byte-exact checks."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.reader = hiredis.Reader()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, n: int = 1) -> list[object]:
        out: list[object] = []
        while len(out) < n:
            reply = self.reader.gets()
            if reply is not False:
                out.append(reply)
                continue
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.reader.feed(chunk)
        return out

    def read_raw(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def closed(self, timeout: float = 2.0) -> bool:
        """True when the proxy closed (or reset) the connection."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(proxy: FaultProxy) -> Iterator[RawClient]:
    c = RawClient(proxy.address)
    yield c
    c.close()


END = b"ECHO end-of-session"
END_REPLY = b"$14\r\nend-of-session\r\n"


def exchange(
    address: tuple[str, int],
    commands: list[bytes],
    rng: random.Random,
    then: tuple[Callable[[], object], list[bytes]] | None = None,
) -> bytes:
    """Send the commands and END in random pieces; what comes back, up to END's reply,
    with the connection id in HELLO's replies (which differs) set to 0. With `then`
    (action, more commands): once END is answered, run the action (switch rules) and
    send the other commands the same way, on the same connection."""
    with socket.create_connection(address, timeout=5) as sock:
        got = _send_and_read(sock, commands, rng)
        if then is not None:
            then[0]()
            got += _send_and_read(sock, then[1], rng)
    return normalized(got)


def _pieces(commands: list[bytes], rng: random.Random) -> Iterator[bytes]:
    """The commands and END as one stream, cut in random pieces."""
    # a fifth of the short ones inline, as telnet users send them (quotes would be parsed)
    stream = b"".join(
        c + b"\r\n"
        if len(c) < 200 and b"'" not in c and rng.random() < 0.2
        else encode_command(*c.split())
        for c in [*commands, END]
    )
    cuts = sorted(rng.sample(range(1, len(stream)), min(8, len(stream) - 1)))
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        yield stream[a:b]


def _send_and_read(sock: socket.socket, commands: list[bytes], rng: random.Random) -> bytes:
    for piece in _pieces(commands, rng):
        sock.sendall(piece)
        time.sleep(rng.choice([0, 0, 0.002]))
    got = b""
    while not got.endswith(END_REPLY):  # nothing comes after it: pushes follow commands
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return got


def exchange_until_dropped(
    address: tuple[str, int], commands: list[bytes], rng: random.Random, quiet: float = 0.3
) -> tuple[bytes, bool]:
    """Like exchange(), for a session a drop rule cuts short: what comes back until the
    proxy closes the connection (True) or stays silent for `quiet` seconds (False)."""
    got = b""
    with socket.create_connection(address, timeout=5) as sock:
        try:
            for piece in _pieces(commands, rng):
                sock.sendall(piece)
                time.sleep(rng.choice([0, 0, 0.002]))
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: read what came before
        sock.settimeout(quiet)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return normalized(got), True
            except TimeoutError:
                return normalized(got), False
            if not chunk:
                return normalized(got), True
            got += chunk


def normalized(replies: bytes) -> bytes:
    """The connection id in HELLO's replies (which differs) set to 0."""
    return re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:0\r\n", replies)


class Dribbler:
    """A TCP relay between the proxy and the real server that, once `dribble` is set,
    passes the server's bytes on 3 at a time with pauses, so that replies reach the
    proxy split at every offset. The proxy's own setup goes through at full speed."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.dribble = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.server)
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets += [down, up]
            threading.Thread(target=self._pipe, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, down, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if not (from_server and self.dribble.is_set()):
                    dst.sendall(data)
                    continue
                for i in range(0, len(data), 3):
                    dst.sendall(data[i : i + 3])
                    time.sleep(0.002)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for s in self.sockets:
            s.close()


@pytest.fixture
def dribbled(redis_server: tuple[str, int], direct: redis.Redis) -> Iterator[Dribbler]:
    d = Dribbler(redis_server)
    yield d
    d.close()
