"""Helpers shared by the tests of the application under test (imported by conftest and tests)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from redis_support import RedisServer, redis_binary, start_redis_server  # noqa: F401 (re-exported)

from redtest.errors import Location
from redtest.services.process import RunningProcess, start_process
from redtest.services.runtime import Endpoint, free_port
from redtest.spec.model import Healthcheck, Interface, Service

EXAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "orders_app"
LOC = Location("test.yaml", 1, 1)


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
