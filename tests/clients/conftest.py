"""Fixtures for client tests: the session redis-server flushed, and bare socket servers that misbehave."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import hiredis
import pytest

from redtest.clients.redis import RedisInterface


@pytest.fixture
def flushed(redis_server):  # type: ignore[no-untyped-def]
    """The session server, emptied before the test."""
    with socket.create_connection((redis_server.host, redis_server.port), timeout=2) as s:
        s.sendall(b"FLUSHALL\r\n")
        assert s.recv(16).startswith(b"+OK")
    return redis_server


@dataclass
class FakeServer:
    """A bare TCP server: counts connections, records commands, answers via `reply`."""

    reply: Callable[[list[bytes]], bytes | None]  # None: say nothing; b"": close
    close_on_accept: bool = False
    connections: int = 0
    commands: list[list[bytes]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by close()
                return
            self.connections += 1
            if self.close_on_accept:
                conn.close()
                continue
            self._open.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        reader = hiredis.Reader()
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            reader.feed(chunk)
            while (command := reader.gets()) is not False:
                self.commands.append(command)
                answer = self.reply(command)
                if answer == b"":
                    conn.close()
                    return
                if answer is not None:
                    conn.sendall(answer)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._open:
            try:
                conn.close()
            except OSError:
                pass
        self._thread.join(2)


@pytest.fixture
def client(flushed):  # type: ignore[no-untyped-def]
    """A RedisInterface (the steps' client) on the flushed session server."""
    iface = RedisInterface(flushed.host, flushed.port, timeout=2.0)
    yield iface
    iface.close()


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    """Factory: fake_server(reply=..., close_on_accept=...) → a running FakeServer."""
    servers: list[FakeServer] = []

    def make(
        reply: Callable[[list[bytes]], bytes | None] = lambda c: None, **kw: object
    ) -> FakeServer:
        server = FakeServer(reply, **kw)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
