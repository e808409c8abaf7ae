"""The runtime contract (Endpoint, RunningService), `auto` choice and start_redis."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

from redtest.errors import ServiceError
from redtest.spec.model import DEFAULT_HEALTH_TIMEOUT, Interface, Service

RUNTIMES = ("auto", "docker", "local", "embedded")

# Set by a second Ctrl-C or SIGTERM while services stop (see runner.cleanup): stop what is
# left at once with SIGKILL instead of waiting out the grace period, as docker compose does.
HURRY = threading.Event()


@dataclass(frozen=True)
class Endpoint:
    """Where a real server listens; `unix` is a Unix socket of the same server, when it has one."""

    host: str
    port: int
    unix: str | None = None

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"


class RunningService:
    """A started service; every runtime returns one. `stop()` is idempotent."""

    def __init__(
        self,
        name: str,
        runtime: str,
        endpoints: dict[str, Endpoint],
        detail: str,
        *,
        reused: bool = False,
    ) -> None:
        self.name = name
        self.runtime = runtime
        self.endpoints = endpoints
        self.detail = detail  # container id / pid / binary, for reports
        self.reused = reused  # True when an earlier run's server was picked up (reuse: true)
        self._stopped = False
        self._stop_lock = threading.Lock()

    def stop(self) -> None:
        """Stop what this service started; safe to call twice and from several threads."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _stop(self) -> None:  # overridden by runtimes
        pass

    def logs(self) -> str:
        """Captured output of the server ("" when none)."""
        return ""

    def __enter__(self) -> RunningService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        eps = ", ".join(f"{k}={v.addr}" for k, v in self.endpoints.items())
        return f"<{type(self).__name__} {self.name} runtime={self.runtime} {eps} {self.detail}>"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (callers retry if someone takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_interfaces(service: Service) -> list[Interface]:
    """The service's redis interfaces; one server serves them all (they are aliases)."""
    ifaces = [i for i in service.interfaces.values() if i.protocol == "redis"]
    if not ifaces:
        raise ServiceError(f"service '{service.name}' has no redis interface to serve", service.loc)
    return ifaces


def health_timeout(service: Service) -> float:
    return service.healthcheck.timeout if service.healthcheck else DEFAULT_HEALTH_TIMEOUT


def resolve_runtime(service: Service, runtime: str | None) -> str:
    """The concrete runtime for a Redis service: the override, else the service's own, `auto` resolved."""
    wanted = runtime or service.runtime
    if wanted not in RUNTIMES:
        raise ServiceError(
            f"unknown runtime '{wanted}' for service '{service.name}' "
            f"(choose one of {', '.join(RUNTIMES)})",
            service.loc,
        )
    if wanted != "auto":
        return wanted
    from redtest.services import docker, local

    if docker.engine_available():
        return "docker"
    if local.find_binary(strict=False, location=service.loc) is not None:
        return "local"
    return "embedded"


def start_redis(
    service: Service, runtime: str | None, *, suite_id: str, keep: bool = False
) -> RunningService:
    """Start (or, with reuse, pick up) a Redis server; returns once PING answers PONG.

    `keep` (--keep-services): the server must outlive redtest, so it is not tied to our life.
    """
    if service.kind != "redis":
        raise ValueError(f"start_redis called for a {service.kind} service ({service.name})")
    chosen = resolve_runtime(service, runtime)
    if chosen == "docker":
        from redtest.services.docker import start_docker_redis

        return start_docker_redis(service, suite_id=suite_id, keep=keep)
    if chosen == "local":
        from redtest.services.local import start_local_redis

        return start_local_redis(service, suite_id=suite_id, keep=keep)
    from redtest.services.embedded import start_embedded_redis

    return start_embedded_redis(service, suite_id=suite_id, keep=keep)


def stop_all_reusable(suite_id: str | None = None) -> int:
    """Stop servers and containers kept by `reuse: true` (all, or one suite's); returns how many."""
    from redtest.services import docker, local

    count = local.stop_reusable_processes(suite_id)
    if docker.engine_available():
        count += docker.remove_reusable_containers(suite_id)
    return count


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still "exists"; treat it as gone
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
