"""`docker` runtime: a Redis image run through the Docker SDK, published on a loopback port.

The `docker` package is imported inside functions: importing it costs a noticeable
fraction of a second, and most runs never need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redtest.errors import Location, ServiceError
from redtest.services import reuse_state
from redtest.services.health import wait_redis_ping
from redtest.services.runtime import (
    Endpoint,
    RunningService,
    health_timeout,
    pid_alive,
    redis_interfaces,
    signals_hurry,
    track,
)
from redtest.spec.model import DEFAULT_REDIS_IMAGE, Service

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

HOST = "127.0.0.1"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
REDIS_PORT = 6379  # what redis images listen on unless told otherwise
_LOG_TAIL = 2000


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def connect(timeout: float = 60.0, location: Location | None = None) -> DockerClient:
    """A client for the engine at DOCKER_HOST (docker.from_env); ServiceError when none answers."""
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ServiceError(
            f"runtime docker: no Docker engine answers at {docker_host()} ({_why_unreachable(exc)}); "
            "start Docker or point DOCKER_HOST at a running engine, or use --runtime local or "
            "--runtime embedded",
            location,
        ) from None
    return client


def _why_unreachable(exc: BaseException) -> str:
    """The SDK nests the socket error in its message; name the common causes plainly."""
    text = short_error(exc)
    if "FileNotFoundError" in text or "No such file" in text:
        return "the socket does not exist"
    if "ConnectionRefused" in text or "Connection refused" in text:
        return "connection refused"
    return text


# DOCKER_HOST -> when no engine answered there. `auto` asks once per service (and `clean`
# once more): an engine that hangs instead of refusing must not cost the timeout each time.
_NO_ENGINE: dict[str, float] = {}
_NO_ENGINE_TTL = 30.0


def engine_available(timeout: float = 3.0) -> bool:
    """True when a Docker engine answers a ping (used by `auto`)."""
    host = docker_host()
    # a missing unix socket is the common case: answer without importing docker
    if host.startswith("unix://") and not os.path.exists(host[len("unix://") :]):
        return False
    failed_at = _NO_ENGINE.get(host)
    if failed_at is not None and time.monotonic() - failed_at < _NO_ENGINE_TTL:
        return False
    try:
        connect(timeout).close()
    except ServiceError:
        _NO_ENGINE[host] = time.monotonic()
        return False
    _NO_ENGINE.pop(host, None)
    return True


class ContainerService(RunningService):
    """A container this runtime started; stop() removes it (with its anonymous volumes)."""

    def __init__(
        self,
        name: str,
        runtime: str,
        endpoints: dict[str, Endpoint],
        client: DockerClient,
        container: Container,
        *,
        reused: bool = False,
    ) -> None:
        detail = f"container {container.short_id}"
        super().__init__(name, runtime, endpoints, detail, reused=reused)
        self.client = client
        self.container = container
        self.container_id: str = container.id or ""

    def logs(self) -> str:
        import docker

        try:
            return self.container.logs().decode("utf-8", "replace")
        except docker.errors.DockerException:
            return ""

    def exit_reason(self) -> str | None:
        """Why the container can never answer (for health waits), or None while it runs."""
        import docker

        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "the container was removed"
        except docker.errors.DockerException:
            return None
        if self.container.status in ("exited", "dead"):
            return _exited(self.container)
        return None

    def _stop(self) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self.container.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            self.client.close()


class DockerRedis(ContainerService):
    """A Redis server container; every redis interface maps to its published port."""

    def __init__(
        self,
        service: Service,
        client: DockerClient,
        container: Container,
        port: int,
        *,
        reused: bool,
    ) -> None:
        endpoint = Endpoint(HOST, port)
        endpoints = {i.name: endpoint for i in redis_interfaces(service)}
        super().__init__(service.name, "docker", endpoints, client, container, reused=reused)


def start_docker_redis(service: Service, *, suite_id: str, keep: bool = False) -> RunningService:
    """Run the service's image (pulling it only when missing), publish its port, wait for PONG."""
    image = service.image or DEFAULT_REDIS_IMAGE
    port = redis_interfaces(service)[0].port or REDIS_PORT
    key = _reuse_key(suite_id, service.name, image, port)
    if not service.reuse:
        return _start(service, suite_id, image, port, key, keep=keep)
    # Two runs of one suite on this host: without the lock, one could find the other's
    # container still being created (not running yet) and remove it as broken.
    with reuse_state.locked(f"docker-{key}"):
        return _start(service, suite_id, image, port, key, keep=keep)


def _start(
    service: Service, suite_id: str, image: str, port: int, key: str, *, keep: bool
) -> RunningService:
    client = connect(location=service.loc)
    token = uuid.uuid4().hex
    try:
        remove_orphans(client)
        if service.reuse:
            _remove_replaced(client, suite_id, service.name, key)
            found = _pick_up(client, service, key)
            if found is not None:
                return found
        ensure_image(client, image, service)
        started = _run(client, service, image, port, suite_id, key, keep=keep, token=token)
        if isinstance(started, DockerRedis):
            return started  # lost a creation race to another run: theirs is ready
        running = DockerRedis(
            service, client, started, _host_port(started, port, service), reused=False
        )
        if not (keep or service.reuse):
            track(running)  # from here the runner's last cleanup removes it, whatever happens
    except BaseException as exc:
        with cleaning_up(exc):
            remove_started(client, token)
            client.close()
        raise
    try:
        _wait_ready(running, service)
    except BaseException as exc:
        with cleaning_up(exc):
            running.stop()
        raise
    return running


def cleaning_up(exc: BaseException) -> contextlib.AbstractContextManager[None]:
    """Around the removal of a half-started container: a second Ctrl-C or SIGTERM must not
    cut it short (the container would be left running). A signal that arrives meanwhile is
    delivered afterwards, unless `exc` is already an interrupt on its way out."""
    return signals_hurry(deliver=isinstance(exc, Exception))


def _wait_ready(running: DockerRedis, service: Service, timeout: float | None = None) -> None:
    ep = next(iter(running.endpoints.values()))
    wait_redis_ping(
        ep.host, ep.port, health_timeout(service) if timeout is None else timeout,
        service=service.name, runtime="docker", location=service.loc, alive=running.exit_reason,
    )  # fmt: skip


def _reuse_key(suite_id: str, service: str, image: str, port: int) -> str:
    return hashlib.sha256(f"{suite_id}\0{service}\0{image}\0{port}".encode()).hexdigest()[:16]


def labels_for(
    service: Service, suite_id: str, key: str, image: str, *, keep: bool = False, token: str = ""
) -> dict[str, str]:
    return {
        # one start attempt: what a Ctrl-C in the middle of containers.run() leaves is
        # found by it, though the call never returned the container
        "redtest.start": token,
        "redtest": "1",
        "redtest.suite": suite_id,
        "redtest.service": service.name,
        "redtest.image": image,
        "redtest.reuse": "1" if service.reuse else "0",
        "redtest.key": key,
        # lets a later run remove containers of a run that was killed hard
        # (a container kept with --keep-services has no owner: it is meant to outlive us)
        "redtest.owner": "" if keep else f"{socket.gethostname()}:{os.getpid()}",
    }


def remove_started(client: DockerClient, token: str) -> None:
    """Remove the containers of one start attempt (Ctrl-C or an error in the middle of it)."""
    with contextlib.suppress(Exception):
        flt = {"label": f"redtest.start={token}"}
        for container in client.containers.list(all=True, filters=flt):
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)


def _run(
    client: DockerClient, service: Service, image: str, port: int, suite_id: str, key: str,
    *, keep: bool = False, token: str = "",
) -> Container | DockerRedis:
    import docker

    # the image's own command unless the interface asks for a port other than 6379
    command = None if port == REDIS_PORT else ["redis-server", "--port", str(port)]
    # reusable containers get a fixed name so two runs racing to create one end with one
    name = f"redtest-{key}" if service.reuse else None
    try:
        return client.containers.run(
            image, command=command, name=name, detach=True,
            labels=labels_for(service, suite_id, key, image, keep=keep, token=token),
            ports={f"{port}/tcp": (HOST, None)},  # None: the engine picks a free host port
        )  # fmt: skip
    except docker.errors.APIError as exc:
        if service.reuse and exc.status_code == 409:  # another run just created it
            found = _pick_up(client, service, key)
            if found is not None:
                return found
        raise ServiceError(
            f"service '{service.name}' (runtime docker): cannot start a container from image "
            f"'{image}': {short_error(exc)}",
            service.loc,
        ) from None


def _exited(container: Container) -> str:
    """Why a stopped container can never answer: its exit status and the end of its logs."""
    import docker

    code = container.attrs.get("State", {}).get("ExitCode")
    try:
        text = container.logs().decode("utf-8", "replace")
    except docker.errors.DockerException:
        text = ""
    tail = text[-_LOG_TAIL:].strip() or "(no output)"
    return f"the container exited with status {code}; logs:\n{tail}"


def _host_port(container: Container, port: int, service: Service) -> int:
    """The loopback port the engine published for `port`; ServiceError if none appears."""
    deadline = time.monotonic() + 5
    while True:
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
            f"{port}/tcp"
        )
        if bindings:
            return int(bindings[0]["HostPort"])
        if container.status in ("exited", "dead"):
            # An exited container publishes no port: what it printed is the reason.
            reason = _exited(container)
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
            raise ServiceError(
                f"service '{service.name}' (runtime docker) stopped before it was ready: {reason}",
                service.loc,
            )
        if time.monotonic() > deadline:
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
            raise ServiceError(
                f"service '{service.name}' (runtime docker): container {container.short_id} has no "
                f"published port for {port}/tcp (status {container.status})",
                service.loc,
            )
        time.sleep(0.05)


def _pick_up(client: DockerClient, service: Service, key: str) -> DockerRedis | None:
    """The running, answering container an earlier run kept for this key; others are removed."""
    import docker

    found = client.containers.list(all=True, filters={"label": ["redtest=1", f"redtest.key={key}"]})
    port = redis_interfaces(service)[0].port or REDIS_PORT
    for container in found:
        if container.status == "running":
            try:
                running = DockerRedis(
                    service, client, container, _host_port(container, port, service), reused=True
                )
                _wait_ready(running, service, timeout=min(5.0, health_timeout(service)))
                return running
            except ServiceError:
                pass
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)  # stopped or broken: start afresh
    return None


def _remove_replaced(client: DockerClient, suite_id: str, service: str, key: str) -> None:
    """Remove what this service kept under another key (its image or port changed since):
    nothing would ever pick it up again, and it would run until `redtest clean`."""
    import docker

    flt = {"label": ["redtest=1", "redtest.reuse=1", f"redtest.suite={suite_id}",
                     f"redtest.service={service}"]}  # fmt: skip
    for container in client.containers.list(all=True, filters=flt):
        if (container.labels or {}).get("redtest.key") != key:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)


def ensure_image(client: DockerClient, image: str, service: Service) -> None:
    """Pull `image` only when the engine does not have it."""
    import docker

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise ServiceError(
            f"cannot inspect image '{image}': {short_error(exc)}", service.loc
        ) from None
    _pull(client, image, service)


def _pull(client: DockerClient, image: str, service: Service) -> None:
    """Pull with a rich progress display on stderr; ServiceError naming the image on failure."""
    import docker
    from docker.utils import parse_repository_tag
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    repo, tag = parse_repository_tag(image)
    console = Console(stderr=True)
    failure: str | None = None
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=console,
        transient=True,
    ) as progress:
        progress.add_task(f"pulling {image} for service '{service.name}'", total=None)
        layers: dict[str, Any] = {}
        try:
            for event in client.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                if "error" in event:
                    failure = str(event["error"])
                    break
                _show_layer(progress, layers, event)
        except docker.errors.DockerException as exc:
            failure = short_error(exc)
    if failure is None:
        try:
            client.images.get(image)
            console.print(f"pulled {image}")
            return
        except docker.errors.ImageNotFound:
            failure = "the engine reported success but does not have the image"
    raise ServiceError(
        f"service '{service.name}' (runtime docker): image '{image}' is not present and pulling it "
        f"failed: {failure}. Check the image name, or build or pull it yourself (docker pull {image})",
        service.loc,
    )


def _show_layer(progress: Any, layers: dict[str, Any], event: dict[str, Any]) -> None:
    layer, detail = event.get("id"), event.get("progressDetail") or {}
    if not layer or not detail.get("total"):
        return
    if layer not in layers:
        layers[layer] = progress.add_task(layer, total=detail["total"])
    progress.update(
        layers[layer], completed=detail.get("current", 0), total=detail["total"],
        description=f"{layer} {event.get('status', '')}".strip(),
    )  # fmt: skip


def remove_orphans(client: DockerClient) -> None:
    """Remove non-reusable containers whose redtest run (on this host) died without cleaning up."""
    import docker

    host = socket.gethostname()
    try:
        found = client.containers.list(
            all=True, filters={"label": ["redtest=1", "redtest.reuse=0"]}
        )
    except docker.errors.DockerException:
        return
    for container in found:
        owner = (container.labels or {}).get("redtest.owner", "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host == host and pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True, v=True)


def remove_reusable_containers(suite_id: str | None = None) -> int:
    """Remove containers kept by `reuse: true` (all, or one suite's); returns how many."""
    return len(remove_kept_containers(lambda sid: suite_id is None or sid == suite_id))


def remove_kept_containers(select: Callable[[str], bool]) -> list[str]:
    """Remove the kept containers whose `redtest.suite` label `select` accepts; one line each."""
    import docker

    client = connect()
    try:
        removed = []
        flt = {"label": ["redtest=1", "redtest.reuse=1"]}
        for container in client.containers.list(all=True, filters=flt):
            labels = container.labels or {}
            suite = labels.get("redtest.suite", "")
            if not select(suite):
                continue
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
                removed.append(
                    f"{labels.get('redtest.service', '?')} (docker, container {container.short_id}) of {suite}"
                )
        return removed
    finally:
        client.close()


def short_error(exc: BaseException) -> str:
    """One line of an SDK error (they can embed whole HTTP responses)."""
    text = getattr(exc, "explanation", None) or str(exc)
    text = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return text[:400]


def start_container(
    service: Service, env: dict[str, str], *, suite_id: str, keep: bool = False
) -> RunningService:
    """An application container (SPEC §8); see redtest.services.container."""
    from redtest.services.container import start_app_container

    return start_app_container(service, env, suite_id=suite_id, keep=keep)
