"""Helpers shared by the tests of the application under test (imported by conftest and tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from redtest.errors import Location
from redtest.services.process import RunningProcess, start_process
from redtest.services.runtime import Endpoint, free_port
from redtest.spec.model import Healthcheck, Interface, Service

EXAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "orders_app"
LOC = Location("test.yaml", 1, 1)


def redis_binary() -> str | None:
    """Debian's redis-server first (a real server), then REDTEST_REDIS_SERVER, then PATH."""
    for candidate in ("/usr/bin/redis-server", os.environ.get("REDTEST_REDIS_SERVER"), shutil.which("redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class RedisServer:
    host: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, decode_responses=True)


def start_redis_server(tmp: Path, *extra: str) -> RedisServer:
    binary = redis_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=0.5).ping():
                return RedisServer("127.0.0.1", port, proc)
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def make_service(
    tmp_path: Path,
    *,
    name: str = "app",
    http_port: int | None = 8080,
    healthcheck: Healthcheck | None = None,
) -> Service:
    interfaces = {}
    if http_port is not None:
        interfaces["api"] = Interface("api", "http", http_port, None, LOC)
    return Service(
        name=name,
        kind="process",
        interfaces=interfaces,
        loc=LOC,
        base_dir=tmp_path,
        command=("python",),
        healthcheck=healthcheck,
    )


def http_health(path: str = "/health", timeout: float = 10.0) -> Healthcheck:
    return Healthcheck("http", path, timeout, LOC)


@dataclass
class OrdersApp:
    proc: RunningProcess
    db_path: Path
    base_url: str


def start_orders_app(tmp_path: Path, redis_url: str, *, bug: str = "", redis_timeout: str = "2") -> OrdersApp:
    """The example app as redtest starts it: a process service on a free port, health /health."""
    port = free_port()
    db_path = tmp_path / "orders.db"
    env = {
        "PORT": str(port),
        "DB_PATH": str(db_path),
        "REDIS_URL": redis_url,
        "ORDERS_APP_BUG": bug,
        "REDIS_TIMEOUT": redis_timeout,
    }
    service = make_service(tmp_path, healthcheck=http_health())
    proc = start_process(
        service,
        [sys.executable, "app.py"],
        env,
        EXAMPLE_APP,
        log_path=tmp_path / "app.log",
        endpoints={"api": Endpoint("127.0.0.1", port)},
        grace=2.0,
    )
    return OrdersApp(proc, db_path, f"http://127.0.0.1:{port}")
