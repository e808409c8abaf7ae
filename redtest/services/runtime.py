"""The runtime contract (Endpoint, RunningService), `auto` choice and start_redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
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
        self._track_seq: int | None = None  # see track()

    def stop(self) -> None:
        """Stop what this service started; safe to call twice and from several threads."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop()
        untrack(self)

    def exit_reason(self) -> str | None:
        """Why the service can no longer answer (its process exited...), or None while it runs."""
        return None

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


# Services started in this process that redtest must stop, until they are stopped. A
# runner registers stop() of each service on its ExitStack once the start call returns;
# a Ctrl-C that lands between the spawn and that registration would otherwise leave the
# service running, so the runner also stops whatever is still tracked (stop_tracked).
_TRACKED: dict[int, RunningService] = {}  # sequence number -> service
_TRACKED_LOCK = threading.Lock()
_NEXT_SEQ = [0]
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def track(service: RunningService) -> None:
    """Record a service this process must stop (call it inside `signals_deferred`)."""
    with _TRACKED_LOCK:
        _NEXT_SEQ[0] += 1
        service._track_seq = _NEXT_SEQ[0]
        _TRACKED[_NEXT_SEQ[0]] = service


def untrack(service: RunningService) -> None:
    with _TRACKED_LOCK:
        if service._track_seq is not None:
            _TRACKED.pop(service._track_seq, None)


def tracking_mark() -> int:
    """A mark for `stop_tracked`: services tracked after it are newer."""
    with _TRACKED_LOCK:
        return _NEXT_SEQ[0]


def stop_tracked(since: int = 0) -> None:
    """Stop every service tracked after `since` and not stopped yet (a runner's last cleanup)."""
    with _TRACKED_LOCK:
        left = [svc for seq, svc in sorted(_TRACKED.items()) if seq > since]
    for service in reversed(left):  # the last started first, as an ExitStack would
        service.stop()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while a process is spawned and handed to its owner.

    A KeyboardInterrupt raised inside subprocess.Popen (after the fork) or between the
    spawn and the object that stops it loses the child. Inside this block the signals
    are only recorded; the first one is delivered again when the block ends, so the
    caller's cleanup already knows the child. No-op off the main thread (signals are
    only handled there).
    """
    with _intercept(lambda signum: None) as received:
        yield
    if received:
        signal.raise_signal(received[0])


@contextlib.contextmanager
def signals_hurry(*, deliver: bool = False) -> Iterator[None]:
    """While stopping something: a Ctrl-C or SIGTERM hurries the stop (HURRY) instead of
    cutting it short and leaving a process behind. `deliver`: raise the first signal
    again afterwards (when no exception is already on its way)."""
    hurried = HURRY.is_set()
    with _intercept(lambda signum: HURRY.set()) as received:
        try:
            yield
        finally:
            if not hurried:
                HURRY.clear()  # it hurried this stop; the caller's own cleanup decides anew
    if received and deliver:
        signal.raise_signal(received[0])


@contextlib.contextmanager
def _intercept(on_signal: object) -> Iterator[list[int]]:
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        on_signal(signum)  # type: ignore[operator]

    previous: dict[int, object] = {}
    try:
        for sig in _SIGNALS:
            previous[sig] = signal.signal(sig, handler)
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


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
    return len(stop_kept(lambda sid: suite_id is None or sid == suite_id))


def stop_kept(select: Callable[[str], bool]) -> list[str]:
    """Stop the servers and containers `reuse: true` kept whose suite id (the suite file's
    absolute path) `select` accepts; one line per thing stopped."""
    from redtest.services import docker, local

    stopped = local.stop_kept_processes(select)
    if docker.engine_available():
        stopped += docker.remove_kept_containers(select)
    return stopped


def suites_under(paths: Iterable[str | os.PathLike[str]]) -> Callable[[str], bool]:
    """A `stop_kept` selector: suite ids that are files at or under one of `paths`."""
    roots = [os.path.realpath(p) for p in paths]

    def select(suite_id: str) -> bool:
        if not os.path.isabs(suite_id):
            return False  # not a suite file (a test's own id)
        real = os.path.realpath(suite_id)
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)

    return select


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
