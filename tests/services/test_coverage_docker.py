"""A Redis container that exits at once, through the real CLI and a real engine.

Such a container publishes no port, so the start used to end with "container X has
no published port for 6379/tcp (status exited)": true, but not why. Whether the engine
has published the port before the container exits is a race; either way the error
must say that the container exited, with its status and its logs, as it does when it
exits while redtest waits for PONG.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest

DOCKERFILE = 'FROM redis:7\nCMD ["sh", "-c", "echo config broken on purpose >&2; exit 7"]\n'


@pytest.fixture
def exiting_image(docker_client) -> str:  # type: ignore[no-untyped-def]
    """A local image (built from the engine's redis:7, no registry needed) that exits with 7."""
    import docker

    try:
        docker_client.images.get("redis:7")
    except docker.errors.ImageNotFound:
        pytest.skip("the engine has no redis:7 image to build from")
    tag = f"redtest-cov-exit-{uuid.uuid4().hex[:8]}:1"
    docker_client.images.build(fileobj=io.BytesIO(DOCKERFILE.encode()), tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_a_redis_container_that_exits_at_once_says_why(cli, tmp_path: Path, docker_engine: str,
                                                       docker_client, exiting_image: str) -> None:  # type: ignore[no-untyped-def]
    suite = tmp_path / "exits.yaml"
    suite.write_text(
        f"version: 1\nservices:\n  cache:\n    image: {exiting_image}\n"
        "    interfaces: {main: {protocol: redis}}\n"
        "scenarios:\n  t1:\n    steps:\n      - cache.main.ping: {}\n"
    )
    env = {"DOCKER_HOST": docker_engine} if docker_engine else {}
    for attempt in range(3):  # the race between publishing the port and the exit
        report = tmp_path / f"r{attempt}.json"
        result = cli(["run", str(suite), "--runtime", "docker", "--json", str(report)], env=env)
        assert result.returncode == 3, result.stdout + result.stderr
        error = json.loads(report.read_text())["tests"][0]["error"]
        assert error.startswith(f"{suite}:3:3: service 'cache' (runtime docker) stopped before it was ready"), error
        assert "the container exited with status 7; logs:\nconfig broken on purpose" in error, error
        assert "published port" not in error
        left = docker_client.containers.list(all=True, filters={"label": f"redtest.suite={suite}"})
        assert left == [], left


def test_an_app_container_with_a_bad_tcp_healthcheck_port_is_a_clear_error(
    cli, tmp_path: Path, docker_engine: str, docker_client, exiting_image: str  # type: ignore[no-untyped-def]
) -> None:
    """`tcp: "localhost:${env.NAME}"` passes validation whatever NAME holds; a value that
    is no port used to end the run as an internal error (ValueError)."""
    suite = tmp_path / "app.yaml"
    suite.write_text(
        f"version: 1\nservices:\n  app:\n    image: {exiting_image}\n"
        "    interfaces: {api: {protocol: http, port: 8080}}\n"
        '    healthcheck: {tcp: "localhost:${env.REDTEST_COV_PORT}"}\n'
        "scenarios:\n  t1:\n    steps:\n      - sleep: 1ms\n"
    )
    env = {"REDTEST_COV_PORT": "http", **({"DOCKER_HOST": docker_engine} if docker_engine else {})}
    report = tmp_path / "r.json"
    result = cli(["run", str(suite), "--json", str(report)], env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    error = json.loads(report.read_text())["tests"][0]["error"]
    assert error == f"{suite}:3:3: service 'app': bad tcp healthcheck 'localhost:http'"
    left = docker_client.containers.list(all=True, filters={"label": f"redtest.suite={suite}"})
    assert left == [], left
