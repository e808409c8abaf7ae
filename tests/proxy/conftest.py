"""Fixtures: one real redis-server per test module, a fresh FaultProxy per test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redtest.errors import Location
from redtest.proxy.server import FaultProxy
from redtest.spec.model import Effect, Rule

LOC = Location("test.yaml", 1, 1)


def _redis_binary() -> str:
    for candidate in (os.environ.get("REDTEST_REDIS_SERVER"), "/usr/bin/redis-server"):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("redis-server")
    if not found:
        pytest.skip("redis-server not installed")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real redis-server on a free port, persistence off, stopped at teardown."""
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            _redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis("127.0.0.1", port).ping():
                break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.05)
    yield ("127.0.0.1", port)
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def direct(redis_server: tuple[str, int]) -> Iterator[redis.Redis]:
    """A client straight to the server (not through faults); the database is flushed first."""
    client = redis.Redis(*redis_server)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def proxy(redis_server: tuple[str, int], direct: redis.Redis) -> Iterator[FaultProxy]:
    with FaultProxy(*redis_server, name="test") as p:
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
