"""`local` runtime: a redis-server binary from PATH or REDTEST_REDIS_SERVER, on a free loopback port.

The process machinery here is shared with the `embedded` runtime, which differs only
in where the binary comes from.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from redtest.errors import Location, ServiceError
from redtest.services import reuse_state
from redtest.services.groups import stop_group
from redtest.services.health import wait_redis_ping
from redtest.services.runtime import (
    Endpoint,
    RunningService,
    free_port,
    health_timeout,
    pid_alive,
    redis_interfaces,
    signals_deferred,
    signals_hurry,
    track,
)
from redtest.spec.model import Service

ENV_BINARY = "REDTEST_REDIS_SERVER"
HOST = "127.0.0.1"
_LOG_TAIL = 2000  # characters of server output quoted in errors
_PORT_ATTEMPTS = 3  # free_port() can race with another process taking the port
_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a server is stopped
SOCKET_NAME = "redis.sock"
# sun_path holds 108 bytes on Linux (104 on macOS); longer paths cannot be bound.
_MAX_SOCKET_PATH = 100


def find_binary(*, strict: bool = True, location: Location | None = None) -> str | None:
    """REDTEST_REDIS_SERVER if set (it must be executable), else `redis-server` on PATH.

    With strict=False a missing PATH binary returns None (for `auto`); a bad
    REDTEST_REDIS_SERVER always raises, since the user asked for it explicitly.
    """
    env = os.environ.get(ENV_BINARY)
    if env:
        # Absolute: the server runs in its temp dir, where `./redis-server` names nothing.
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return os.path.abspath(env)
        found = shutil.which(env)  # a bare name is looked up on PATH
        if found:
            return os.path.abspath(found)
        raise ServiceError(
            f"{ENV_BINARY}={env} is not an executable file (it names the redis-server "
            "that local Redis services run)",
            location,
        )
    found = shutil.which("redis-server")
    if found is not None:
        return os.path.abspath(found)  # a relative PATH entry (`.`) names the cwd, not the temp dir
    if strict:
        raise ServiceError(
            "runtime local needs a redis-server binary, but none is on PATH and "
            f"{ENV_BINARY} is not set; install Redis (e.g. apt-get install redis-server), "
            f"set {ENV_BINARY}=/path/to/redis-server, or use --runtime embedded",
            location,
        )
    return None


def start_local_redis(service: Service, *, suite_id: str, keep: bool = False) -> RunningService:
    """Start redis-server from PATH / REDTEST_REDIS_SERVER for `service`."""
    binary = find_binary(strict=True, location=service.loc)
    assert binary is not None
    return start_binary_redis(service, binary, runtime="local", suite_id=suite_id, keep=keep)


class ProcessRedis(RunningService):
    """A redis-server process in its own session, with its own temp dir and log file."""

    def __init__(
        self,
        service: Service,
        runtime: str,
        port: int,
        pid: int,
        workdir: Path,
        proc: subprocess.Popen[bytes] | None,
        *,
        unix: str | None = None,
        reused: bool = False,
        state_key: str | None = None,
    ) -> None:
        endpoint = Endpoint(HOST, port, unix)
        endpoints = {i.name: endpoint for i in redis_interfaces(service)}
        super().__init__(service.name, runtime, endpoints, f"pid {pid}", reused=reused)
        self.pid = pid
        self.port = port
        self.workdir = workdir
        self.proc = proc  # None when picked up from an earlier run (not our child)
        self.unix = unix
        self.state_key = state_key

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def exit_reason(self) -> str | None:
        """Why the process is gone (for health waits and the runner's checks), or None while it runs."""
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return None
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        elif pid_alive(self.pid):
            return None
        else:  # kept by an earlier run: not our child, so no exit status to read
            how = f"(pid {self.pid}) is gone"
        tail = self.logs()[-_LOG_TAIL:].strip() or "(no output)"
        return f"the process {how}; output:\n{tail}"

    def _stop(self) -> None:
        stop_group(self.pid, self.proc, _STOP_GRACE)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.state_key is not None:
            reuse_state.remove(self.state_key, pid=self.pid)


def start_binary_redis(
    service: Service, binary: str, *, runtime: str, suite_id: str, keep: bool = False
) -> RunningService:
    """Start `binary` as a Redis server for `service` (or reuse the one an earlier run kept)."""
    if not service.reuse:
        return _start_new(service, binary, runtime, keep=keep)
    key = reuse_state.key(runtime, suite_id, service.name)
    with reuse_state.locked(key):
        found = _pick_up(service, binary, runtime, key)
        if found is not None:
            return found

        def record(started: ProcessRedis) -> None:
            # Inside _start_new's guard: a server kept but not recorded would be unreachable.
            reuse_state.write(
                key,
                {
                    "pid": started.pid,
                    "port": started.port,
                    "unix": started.unix,
                    "binary": binary,
                    "workdir": str(started.workdir),
                    "runtime": runtime,
                    "suite": suite_id,
                    "service": service.name,
                    "started": time.time(),
                },
            )

        return _start_new(service, binary, runtime, keep=True, state_key=key, on_ready=record)


def _pick_up(service: Service, binary: str, runtime: str, key: str) -> ProcessRedis | None:
    """The server an earlier run kept, if it is alive, ours, and answers; else clean up and None."""
    state = reuse_state.read(key)
    if state is None:
        return None
    pid, port = int(state["pid"]), int(state["port"])
    workdir = Path(state["workdir"])
    unix = state.get("unix")
    if not (isinstance(unix, str) and os.path.exists(unix)):
        unix = None  # kept by an older redtest, or the socket is gone: TCP only
    # A server whose temp dir was deleted (a temp-dir cleaner) lost its log: replace it.
    if state.get("binary") == binary and workdir.is_dir() and reuse_state.is_our_server(state):
        try:
            wait_redis_ping(
                HOST, port, 2.0, service=service.name, runtime=runtime, location=service.loc
            )
            return ProcessRedis(
                service, runtime, port, pid, workdir, None, unix=unix, reused=True, state_key=key
            )
        except ServiceError:
            pass
        stop_group(pid, None, _STOP_GRACE)
    elif reuse_state.is_our_server(state):
        stop_group(pid, None, _STOP_GRACE)  # another binary was asked for, or its dir is gone
    shutil.rmtree(workdir, ignore_errors=True)
    reuse_state.remove(key)
    return None


def _start_new(
    service: Service,
    binary: str,
    runtime: str,
    *,
    keep: bool,
    state_key: str | None = None,
    on_ready: Callable[[ProcessRedis], None] | None = None,
) -> ProcessRedis:
    """Start a server; `on_ready` runs once it answers, before anyone else can lose it."""
    last_error: ServiceError | None = None
    for _ in range(_PORT_ATTEMPTS):
        workdir: Path | None = None
        running: ProcessRedis | None = None
        try:
            # Spawn and hand-over in one piece: a Ctrl-C in between (inside Popen after
            # the fork, or before `running` exists) would leak the server and its temp dir.
            with signals_deferred():
                workdir = Path(tempfile.mkdtemp(prefix=f"redtest-{service.name}-"))
                port = free_port(HOST)
                args = [
                    binary, "--port", str(port), "--bind", HOST,
                    # persistence off: a test server must not write dump.rdb / AOF files
                    "--save", "", "--appendonly", "no",
                    "--dir", str(workdir), "--daemonize", "no",
                ]  # fmt: skip
                # The proxy reaches the server through a Unix socket besides the TCP port: it
                # costs the proxy and the server markedly less CPU than a second TCP hop.
                unix: str | None = str(workdir / SOCKET_NAME)
                if len(os.fsencode(unix)) <= _MAX_SOCKET_PATH:
                    args += ["--unixsocket", unix, "--unixsocketperm", "700"]
                else:
                    unix = None
                proc = _launch(args, workdir, die_with_parent=not keep, service=service, runtime=runtime)
                running = ProcessRedis(
                    service, runtime, port, proc.pid, workdir, proc, unix=unix, state_key=state_key
                )
                if not keep:
                    track(running)  # stopped by the runner even if its registration is cut short
            wait_redis_ping(
                HOST, port, health_timeout(service),
                service=service.name, runtime=runtime, location=service.loc,
                alive=running.exit_reason,
            )  # fmt: skip
            if on_ready is not None:
                on_ready(running)
            return running
        except ServiceError as exc:
            if running is None:  # it never ran (_launch removed the temp dir)
                raise
            output = running.logs()
            with signals_hurry(deliver=True):
                running.stop()
            if "Address already in use" in output:
                last_error = exc
                continue  # someone took the port between free_port() and bind: try another
            if output.strip() and "output:" not in exc.message:
                raise ServiceError(
                    f"{exc.message}; server output:\n{output[-_LOG_TAIL:].strip()}", exc.location
                ) from None
            raise
        except BaseException:  # Ctrl-C or SIGTERM while waiting: no one else knows this server yet
            with signals_hurry():
                if running is not None:
                    running.stop()
                elif workdir is not None:
                    shutil.rmtree(workdir, ignore_errors=True)
            raise
    assert last_error is not None
    raise last_error


def _launch(
    args: list[str], workdir: Path, *, die_with_parent: bool, service: Service, runtime: str
) -> subprocess.Popen[bytes]:
    """Start the server in its own session (Ctrl-C reaches redtest, which stops it)."""
    log = open(
        workdir / "redis.log", "wb"
    )  # a file, not a pipe: a full pipe would block the server
    try:
        # die with redtest if it is killed hard (SIGKILL); only from the main thread,
        # since PDEATHSIG fires when the forking *thread* exits
        preexec = (
            _die_with_parent_preexec()
            if die_with_parent and threading.current_thread() is threading.main_thread()
            else None
        )
        try:
            return subprocess.Popen(
                args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=preexec, close_fds=True,
            )  # fmt: skip
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ServiceError(
                f"service '{service.name}' (runtime {runtime}): cannot run {args[0]}: {exc.strerror or exc}",
                service.loc,
            ) from None
    finally:
        log.close()


def _die_with_parent_preexec():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: no dlopen in the child
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def stop_reusable_processes(suite_id: str | None = None) -> int:
    """Stop every local/embedded server kept by `reuse: true` (or only one suite's)."""
    return len(stop_kept_processes(lambda sid: suite_id is None or sid == suite_id))


def stop_kept_processes(select: Callable[[str], bool]) -> list[str]:
    """Stop the kept servers whose suite id `select` accepts; one line per server stopped.

    Also removes lock files no run uses any more (see reuse_state.prune_locks).
    """
    stopped = []
    for key, state in reuse_state.all_states():
        suite = str(state.get("suite", ""))
        if not select(suite):
            continue
        with reuse_state.locked(key, discard=True):
            current = reuse_state.read(key)
            if current is None or current.get("pid") != state.get("pid"):
                continue  # another run replaced or removed it meanwhile
            if reuse_state.is_our_server(state):
                stop_group(int(state["pid"]), None, _STOP_GRACE)
                stopped.append(
                    f"{state.get('service', '?')} ({state.get('runtime', '?')}, pid {state['pid']}, "
                    f"port {state['port']}) of {suite}"
                )
            if state.get("workdir"):
                shutil.rmtree(state["workdir"], ignore_errors=True)
            reuse_state.remove(key)
    reuse_state.prune_locks()
    return stopped
