"""Fixtures for the application-under-test tests: a real redis-server and the example app."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# The tests folders are not packages; make the shared helpers importable as `app_support`.
sys.path.insert(0, str(Path(__file__).parent))

from app_support import OrdersApp, RedisServer, start_orders_app, start_redis_server  # noqa: E402


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def readonly_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A replica of a master that does not exist: reads work, every write gets READONLY."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    server = start_redis_server(tmp_path, "--replicaof", "127.0.0.1", str(dead_port))
    yield server
    server.proc.terminate()
    server.proc.wait(10)


@pytest.fixture
def orders_app_factory(tmp_path: Path) -> Iterator:
    started: list[OrdersApp] = []

    def factory(redis_url: str, *, bug: str = "", redis_timeout: str = "2") -> OrdersApp:
        app = start_orders_app(tmp_path, redis_url, bug=bug, redis_timeout=redis_timeout)
        started.append(app)
        return app

    yield factory
    for app in started:
        app.proc.stop()

