"""Application containers (SPEC §8) on a real engine: host networking, env, healthcheck, teardown."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from redtest.errors import ServiceError
from redtest.services.docker import start_container
from redtest.services.runtime import free_port
from redtest.spec.model import Healthcheck, Interface, Service
from tests.services.conftest import LOC


@pytest.fixture
def app_image(docker_client) -> Iterator[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """An "application" image made from the local redis:7 (no registry here), on a free port."""
    port = free_port()
    base = docker_client.containers.create("redis:7")
    tag = f"redtest-app-{uuid.uuid4().hex[:6]}"
    base.commit(repository=tag, tag="1", changes=[f'CMD ["redis-server", "--port", "{port}"]'])
    base.remove()
    yield f"{tag}:1", port
    docker_client.images.remove(f"{tag}:1", force=True)


def _app(image: str, port: int, healthcheck: Healthcheck | None) -> Service:
    return Service(
        name="app", kind="container", loc=LOC, base_dir=Path("."), image=image,
        interfaces={"api": Interface("api", "http", port, None, LOC)}, healthcheck=healthcheck,
    )  # fmt: skip


def test_container_runs_with_env_and_is_removed(app_image, docker_client, suite_id) -> None:  # type: ignore[no-untyped-def]
    image, port = app_image
    svc = _app(image, port, Healthcheck("tcp", f"localhost:{port}", 10, LOC))
    running = start_container(svc, {"REDIS_URL": "redis://127.0.0.1:1"}, suite_id=suite_id)
    try:
        assert running.runtime == "container"
        assert running.endpoints["api"].addr == f"127.0.0.1:{port}"
        assert redis.Redis("127.0.0.1", port).ping()  # host networking: the port is on loopback
        attrs = docker_client.containers.get(running.container_id).attrs  # type: ignore[attr-defined]
        assert "REDIS_URL=redis://127.0.0.1:1" in attrs["Config"]["Env"]
        assert attrs["Config"]["Labels"]["redtest.suite"] == suite_id
    finally:
        running.stop()
    assert (
        docker_client.containers.list(all=True, filters={"label": f"redtest.suite={suite_id}"})
        == []
    )


def test_http_healthcheck_that_never_answers(app_image, docker_client, suite_id) -> None:  # type: ignore[no-untyped-def]
    image, port = app_image  # redis is not an HTTP server: the GET never succeeds
    svc = _app(image, port, Healthcheck("http", "/health", 1.0, LOC))
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        start_container(svc, {}, suite_id=suite_id)
    assert time.monotonic() - started < 10
    assert "'app'" in str(err.value) and "runtime container" in str(err.value)
    assert (
        docker_client.containers.list(all=True, filters={"label": f"redtest.suite={suite_id}"})
        == []
    )


def test_container_that_exits_fails_fast_with_its_logs(docker_client, suite_id) -> None:  # type: ignore[no-untyped-def]
    base = docker_client.containers.create("redis:7")
    tag = f"redtest-bad-{uuid.uuid4().hex[:6]}"
    base.commit(repository=tag, tag="1", changes=['CMD ["redis-server", "--no-such-option"]'])
    base.remove()
    try:
        svc = _app(f"{tag}:1", free_port(), Healthcheck("tcp", f"localhost:{free_port()}", 30, LOC))
        started = time.monotonic()
        with pytest.raises(ServiceError) as err:
            start_container(svc, {}, suite_id=suite_id)
        assert time.monotonic() - started < 15
        assert "exited with status 1" in str(err.value) and "no-such-option" in str(err.value)
    finally:
        docker_client.images.remove(f"{tag}:1", force=True)


@pytest.fixture
def port_from_env_image(docker_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An "application" that listens on $PORT, as the SPEC §8 example does."""
    base = docker_client.containers.create("redis:7")
    tag = f"redtest-portapp-{uuid.uuid4().hex[:6]}"
    base.commit(repository=tag, tag="1", changes=['CMD ["sh", "-c", "exec redis-server --port $PORT"]'])
    base.remove()
    yield f"{tag}:1"
    docker_client.images.remove(f"{tag}:1", force=True)


def test_self_port_template_in_a_container(port_from_env_image, docker_engine, tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    suite = tmp_path / "container_self.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n"
        "  app:\n"
        f"    image: {port_from_env_image}\n"
        "    env: {PORT: '${self.api.port}'}\n"
        f"    interfaces: {{api: {{protocol: http, port: {port}}}}}\n"
        "    healthcheck: {tcp: 'localhost:${self.api.port}', timeout: 20s}\n"
        "scenarios:\n  s:\n    steps:\n      - sleep: 1ms\n"
    )
    result = cli(["run", str(suite), "-q"], env={"DOCKER_HOST": docker_engine} if docker_engine else None)
    assert result.returncode == 0, result.stdout + result.stderr  # it listened where declared


def test_interrupt_while_the_container_starts_leaves_nothing(docker_client, docker_engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys

    suite = tmp_path / "starting.yaml"
    suite.write_text(
        "version: 1\nservices:\n  cache: {runtime: docker, interfaces: {main: {protocol: redis}}}\n"
        "scenarios:\n  s:\n    steps:\n      - sleep: 30s\n"
    )
    flt = {"label": f"redtest.suite={suite.resolve()}"}
    env = dict(os.environ, NO_COLOR="1", **({"DOCKER_HOST": docker_engine} if docker_engine else {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "redtest", "run", str(suite)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not docker_client.containers.list(all=True, filters=flt, sparse=True) and time.monotonic() < deadline:
            time.sleep(0.005)  # as soon as the engine has it, maybe before run() returned
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out.decode()
    assert docker_client.containers.list(all=True, filters=flt, sparse=True) == []
