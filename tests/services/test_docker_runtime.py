"""The `docker` runtime against a real engine (skipped, saying why, when none is reachable).

.ci/run starts a private engine with ../shared/tools/docker-engine.sh, which builds
a local `redis:7` image; there is no registry, so pulls of anything else fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from redtest.errors import ServiceError
from redtest.services import resolve_runtime, start_redis, stop_all_reusable
from redtest.services.docker import DockerRedis, remove_reusable_containers
from tests.services.conftest import redis_service


def _containers(client, suite_id: str) -> list:  # type: ignore[no-untyped-def]
    return client.containers.list(all=True, filters={"label": f"redtest.suite={suite_id}"})


# --- no engine needed -------------------------------------------------------------


def test_engine_not_reachable_dead_socket(dead_docker: str, suite_id: str) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        start_redis(redis_service(), "docker", suite_id=suite_id)
    assert time.monotonic() - started < 10
    msg = str(err.value)
    assert "no Docker engine answers" in msg and dead_docker in msg
    assert "--runtime local" in msg and err.value.exit_code == 3


def test_engine_not_reachable_missing_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_id: str
) -> None:
    host = f"unix://{tmp_path}/no-such.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(ServiceError, match="no Docker engine answers at " + host):
        start_redis(redis_service(runtime="docker"), None, suite_id=suite_id)


def test_engine_not_reachable_tcp(monkeypatch: pytest.MonkeyPatch, suite_id: str) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    with pytest.raises(ServiceError, match=f"tcp://127.0.0.1:{port}"):
        start_redis(redis_service(), "docker", suite_id=suite_id)


# --- with an engine ---------------------------------------------------------------


def test_start_publish_ping_labels_and_teardown(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    running = start_redis(redis_service(runtime="docker"), None, suite_id=suite_id)
    assert isinstance(running, DockerRedis) and running.runtime == "docker"
    try:
        ep = running.endpoints["main"]
        assert ep.host == "127.0.0.1"
        assert redis.Redis(ep.host, ep.port).ping()
        container = docker_client.containers.get(running.container_id)
        assert container.labels["redtest"] == "1"
        assert container.labels["redtest.suite"] == suite_id
        assert container.labels["redtest.service"] == "cache"
        bindings = container.attrs["NetworkSettings"]["Ports"]["6379/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(ep.port)}]
        assert running.detail == f"container {container.short_id}"
        assert "Ready to accept connections" in running.logs()
    finally:
        running.stop()
    assert _containers(docker_client, suite_id) == []
    running.stop()  # idempotent, even though the container is gone


def test_reuse_across_two_starts_keeps_the_container(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    svc = redis_service(runtime="docker", reuse=True)
    first = start_redis(svc, None, suite_id=suite_id)
    assert isinstance(first, DockerRedis) and not first.reused
    ep = first.endpoints["main"]
    redis.Redis(ep.host, ep.port).set("kept", "1")
    first.client.close()  # the runner never stops a reuse service; a later run picks it up
    second = start_redis(svc, None, suite_id=suite_id)
    assert isinstance(second, DockerRedis)
    assert second.reused and second.container_id == first.container_id
    assert second.endpoints == first.endpoints
    assert redis.Redis(ep.host, ep.port).get("kept") == b"1"
    assert len(_containers(docker_client, suite_id)) == 1
    assert remove_reusable_containers(suite_id) == 1
    assert _containers(docker_client, suite_id) == []


def test_reuse_replaces_a_stopped_container(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    svc = redis_service(runtime="docker", reuse=True)
    first = start_redis(svc, None, suite_id=suite_id)
    assert isinstance(first, DockerRedis)
    docker_client.containers.get(first.container_id).stop(timeout=1)
    second = start_redis(svc, None, suite_id=suite_id)
    assert isinstance(second, DockerRedis)
    assert not second.reused and second.container_id != first.container_id
    assert [c.id for c in _containers(docker_client, suite_id)] == [second.container_id]
    assert stop_all_reusable(suite_id) == 1


def test_reuse_across_two_processes(docker_engine: str, docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    code = (
        "from redtest.services import start_redis\n"
        "from tests.services.conftest import redis_service\n"
        f"s = start_redis(redis_service(runtime='docker', reuse=True), None, suite_id={suite_id!r})\n"
        "print(s.container_id, s.reused)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    ids = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert ids[0][0] == ids[1][0] and ids[0][1] == "False" and ids[1][1] == "True"
    assert [c.id for c in _containers(docker_client, suite_id)] == [ids[0][0]]


def test_reuse_started_by_runs_at_the_same_moment(docker_engine: str, docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    # Runs racing for one kept container must all end up using it: none may find another's
    # container before it runs and remove it as broken (that run then failed to start).
    code = (
        "import sys, time\n"
        "from redtest.services import start_redis\n"
        "from tests.services.conftest import redis_service\n"
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
        f"s = start_redis(redis_service(runtime='docker', reuse=True), None, suite_id={suite_id!r})\n"
        "print(s.container_id)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for _ in range(5):
        at = str(time.time() + 1.5)  # after every child has imported its modules
        children = [
            subprocess.Popen([sys.executable, "-c", code, at], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(5)
        ]  # fmt: skip
        results = [(c.communicate(timeout=60), c.returncode) for c in children]
        assert [rc for _, rc in results] == [0] * 5, [err[-300:] for (_, err), _ in results]
        ids = {out.strip() for (out, _), _ in results}
        assert len(ids) == 1
        assert [c.id for c in _containers(docker_client, suite_id)] == list(ids)
        assert stop_all_reusable(suite_id) == 1


def test_reuse_replaces_the_container_kept_for_another_image(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    # The image (or port) changed since the last run: the old container can never be picked
    # up again, so it must not keep running until someone thinks of `redtest clean`.
    alt = f"redtest-alt-{uuid.uuid4().hex[:6]}:7"
    docker_client.images.get("redis:7").tag(alt)
    try:
        first = start_redis(redis_service(runtime="docker", reuse=True), None, suite_id=suite_id)
        assert isinstance(first, DockerRedis)
        changed = redis_service(runtime="docker", reuse=True, image=alt)
        second = start_redis(changed, None, suite_id=suite_id)
        assert isinstance(second, DockerRedis) and not second.reused
        assert [c.id for c in _containers(docker_client, suite_id)] == [second.container_id]
        # another service of the same suite keeps its own container
        other = start_redis(redis_service("other", runtime="docker", reuse=True), None, suite_id=suite_id)
        assert len(_containers(docker_client, suite_id)) == 2
        assert isinstance(other, DockerRedis)
        assert stop_all_reusable(suite_id) == 2
    finally:
        docker_client.images.remove(alt)


def test_missing_image_that_cannot_be_pulled(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    image = f"redtest-no-such-image-{uuid.uuid4().hex[:6]}:1"
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        start_redis(redis_service(runtime="docker", image=image), None, suite_id=suite_id)
    assert time.monotonic() - started < 60  # no registry here: the pull fails fast
    msg = str(err.value)
    assert f"image '{image}'" in msg and "pulling it failed" in msg and "'cache'" in msg
    assert err.value.exit_code == 3
    assert _containers(docker_client, suite_id) == []


def test_present_image_is_never_pulled(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    # a tag that exists only in this engine: a pull attempt would fail (no registry)
    local_only = f"redtest-local-only-{uuid.uuid4().hex[:6]}:7"
    docker_client.images.get("redis:7").tag(local_only)
    try:
        svc = redis_service(runtime="docker", image=local_only)
        with start_redis(svc, None, suite_id=suite_id) as running:
            ep = running.endpoints["main"]
            assert redis.Redis(ep.host, ep.port).ping()
    finally:
        docker_client.images.remove(local_only)


def test_non_default_interface_port(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    with start_redis(
        redis_service(runtime="docker", port=6390), None, suite_id=suite_id
    ) as running:
        ep = running.endpoints["main"]
        client = redis.Redis(ep.host, ep.port, decode_responses=True)
        assert client.info("server")["tcp_port"] == 6390


def test_auto_picks_docker_when_an_engine_answers(docker_engine: str, suite_id: str) -> None:
    assert resolve_runtime(redis_service(), None) == "docker"
    with start_redis(redis_service(), None, suite_id=suite_id) as running:
        assert running.runtime == "docker"


def test_orphans_of_a_killed_run_are_removed(docker_client, suite_id: str) -> None:  # type: ignore[no-untyped-def]
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now belongs to no process
    orphan = docker_client.containers.run(
        "redis:7", detach=True,
        labels={"redtest": "1", "redtest.reuse": "0", "redtest.suite": suite_id,
                "redtest.owner": f"{socket.gethostname()}:{dead.pid}"},
    )  # fmt: skip
    with start_redis(redis_service(runtime="docker"), None, suite_id=suite_id) as running:
        ids = [c.id for c in _containers(docker_client, suite_id)]
        assert orphan.id not in ids and ids == [running.container_id]  # type: ignore[attr-defined]


def test_pull_progress_shows_each_layer() -> None:
    # Pulls cannot really happen here (no registry), so the renderer is fed the
    # engine's event shapes directly.
    import io

    from rich.console import Console
    from rich.progress import Progress

    from redtest.services.docker import _show_layer

    out = io.StringIO()
    with Progress(console=Console(file=out, width=100, force_terminal=False)) as progress:
        layers: dict[str, object] = {}
        _show_layer(progress, layers, {"status": "Pulling from library/redis", "id": "7"})
        _show_layer(
            progress,
            layers,
            {
                "status": "Downloading",
                "id": "a1b2",
                "progressDetail": {"current": 50, "total": 100},
            },
        )
        _show_layer(
            progress,
            layers,
            {
                "status": "Downloading",
                "id": "a1b2",
                "progressDetail": {"current": 100, "total": 100},
            },
        )
        assert list(layers) == ["a1b2"]  # events without byte counts add no bar
        task = progress.tasks[0]
        assert (
            task.completed == 100 and task.total == 100 and task.description == "a1b2 Downloading"
        )
