"""A second Ctrl-C while a half-started container is removed must not leave it running.

The first SIGINT (or an error) interrupts a Docker start; its cleanup removes the
container. A second, real SIGINT lands inside that cleanup. Needs an engine (skips
without one, like the other Docker tests).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from redtest.services import docker as docker_runtime


@pytest.fixture
def default_sigint() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _left(docker_client: Any, suite_id: str) -> list[Any]:
    return docker_client.containers.list(all=True, filters={"label": f"redtest.suite={suite_id}"})


def _sigint_then(real: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)  # the second Ctrl-C, as the removal begins
        return real(*args, **kwargs)

    return wrapper


@pytest.mark.usefixtures("default_sigint")
def test_second_sigint_while_removing_a_container_whose_start_was_interrupted(
    docker_client: Any, suite_id: str, monkeypatch: pytest.MonkeyPatch, make_service: Any
) -> None:
    def host_port(*args: Any) -> int:
        signal.raise_signal(signal.SIGINT)  # the first Ctrl-C: the container exists, no object yet
        raise AssertionError("not reached")

    monkeypatch.setattr(docker_runtime, "_host_port", host_port)
    monkeypatch.setattr(docker_runtime, "remove_started", _sigint_then(docker_runtime.remove_started))
    with pytest.raises(KeyboardInterrupt):
        docker_runtime.start_docker_redis(make_service(runtime="docker"), suite_id=suite_id)
    assert _left(docker_client, suite_id) == []


@pytest.mark.usefixtures("default_sigint")
def test_second_sigint_while_stopping_a_container_that_never_became_ready(
    docker_client: Any, suite_id: str, monkeypatch: pytest.MonkeyPatch, make_service: Any
) -> None:
    def wait_ready(*args: Any, **kwargs: Any) -> None:
        signal.raise_signal(signal.SIGINT)  # the first Ctrl-C, while waiting for PONG

    monkeypatch.setattr(docker_runtime, "_wait_ready", wait_ready)
    monkeypatch.setattr(
        docker_runtime.ContainerService, "_stop", _sigint_then(docker_runtime.ContainerService._stop)
    )
    with pytest.raises(KeyboardInterrupt):
        docker_runtime.start_docker_redis(make_service(runtime="docker"), suite_id=suite_id)
    assert _left(docker_client, suite_id) == []


@pytest.mark.usefixtures("default_sigint")
def test_sigint_while_removing_after_an_error_still_ends_the_run(
    docker_client: Any, suite_id: str, monkeypatch: pytest.MonkeyPatch, make_service: Any
) -> None:
    from redtest.errors import ServiceError

    def wait_ready(*args: Any, **kwargs: Any) -> None:
        raise ServiceError("never ready")

    monkeypatch.setattr(docker_runtime, "_wait_ready", wait_ready)
    monkeypatch.setattr(
        docker_runtime.ContainerService, "_stop", _sigint_then(docker_runtime.ContainerService._stop)
    )
    # the removal completes, then the Ctrl-C that came during it is delivered
    with pytest.raises(KeyboardInterrupt):
        docker_runtime.start_docker_redis(make_service(runtime="docker"), suite_id=suite_id)
    assert _left(docker_client, suite_id) == []
