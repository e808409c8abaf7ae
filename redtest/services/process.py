"""The application under test as a local process (SPEC §8).

`start_process` runs an already-expanded argument list (no shell) in its own
session, so stopping it reaches every process it spawned; stdout and stderr go
to one log file whose tail is shown when the app fails to start or a test fails.
It returns only once the service's healthcheck passes.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from redtest.errors import Location, ServiceError
from redtest.services.groups import stop_group
from redtest.services.health import wait_http, wait_tcp
from redtest.services.runtime import (  # noqa: F401  (free_port re-exported for the runner)
    Endpoint,
    RunningService,
    free_port,
    signals_deferred,
    signals_hurry,
    track,
)
from redtest.spec.model import DEFAULT_HEALTH_TIMEOUT, Service

DEFAULT_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_BYTES = 64 * 1024  # logs() never returns more than this
ERROR_TAIL_LINES = 30  # lines of output quoted in a start-up error
OUTPUT_CHARS = 4000  # output a report keeps per service, as for failed tests
NO_HEALTHCHECK_SETTLE = (
    0.3  # with nothing to probe, an app that survives this long counts as started
)


class ProcessStartError(ServiceError):
    """A process service that could not start; carries its output for the test reports."""

    def __init__(self, message: str, location: Location | None, *, output: str | None, log_path: Path) -> None:
        super().__init__(message, location)
        self.output = output  # "--- NAME ---\n<tail of the log>", or None when it printed nothing
        self.log_path = log_path


class RunningProcess(RunningService):
    """A started application process: its endpoints, its output, and how to stop it."""

    def __init__(
        self,
        name: str,
        popen: subprocess.Popen[bytes],
        command: list[str],
        log_path: Path,
        endpoints: dict[str, Endpoint],
        *,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        super().__init__(name, "process", endpoints, f"pid {popen.pid}: {shlex.join(command)}")
        self.command = command
        self.log_path = log_path
        self.grace = grace
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal)."""
        return self._popen.poll()

    def alive(self) -> bool:
        return self._popen.poll() is None

    def exit_reason(self) -> str | None:
        """`exited with code 7` / `was killed by signal 9` once the process has ended, else None."""
        code = self.returncode
        if code is None:
            return None
        return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"

    def log_size(self) -> int:
        """Bytes of output so far: an offset for `logs(since=...)`."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def logs(self, max_bytes: int = LOG_TAIL_BYTES, *, since: int = 0) -> str:
        """The captured stdout+stderr written after byte `since`, at most its last `max_bytes` bytes."""
        try:
            with open(self.log_path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                start = max(since, size - max_bytes, 0)
                fh.seek(start)
                data = fh.read()
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace")
        if start > since:
            text = text.split("\n", 1)[-1]  # drop the partial first line
        return text

    def tail(self, lines: int = ERROR_TAIL_LINES) -> str:
        """The last `lines` lines of output, for error messages."""
        return "\n".join(self.logs().rstrip("\n").splitlines()[-lines:])

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after `grace` seconds. Idempotent."""
        if grace is not None:
            self.grace = grace
        super().stop()

    def _stop(self) -> None:
        stop_group(self.pid, self._popen, self.grace)  # start_new_session: the child leads its group


def _default_endpoints(service: Service) -> dict[str, Endpoint]:
    return {
        name: Endpoint("127.0.0.1", iface.port)
        for name, iface in service.interfaces.items()
        if iface.protocol == "http" and iface.port is not None
    }


def start_process(
    service: Service,
    command: list[str],
    env: Mapping[str, str],
    workdir: Path,
    *,
    log_path: Path,
    endpoints: Mapping[str, Endpoint] | None = None,
    grace: float = DEFAULT_GRACE,
    keep: bool = False,
) -> RunningProcess:
    """Start `command` for `service` and wait until its healthcheck passes.

    `command`, `env` and `workdir` are already expanded; `env` is merged over
    os.environ. `endpoints` maps each interface to where the app listens (the
    free ports handed out for `${self.INTERFACE.port}`); by default each http
    interface's declared port on 127.0.0.1. `keep` (--keep-services): the process is
    not tracked for the runner's last-resort cleanup. Raises ServiceError (naming the
    service; a ProcessStartError with the tail of its output and the log's path) when
    it cannot start, exits during start-up, or never becomes healthy.
    """
    if not command:
        raise ServiceError(f"service {service.name!r}: empty command", service.loc)
    if not workdir.is_dir():
        raise ServiceError(
            f"service {service.name!r}: workdir {str(workdir)!r} is not a directory", service.loc
        )
    ends = dict(endpoints) if endpoints is not None else _default_endpoints(service)
    full_env = dict(os.environ)
    # Python apps block-buffer a redirected stdout: without this, the log a failing
    # test shows would miss the app's last lines. The suite's env can still override it.
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    full_env.update(env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    running: RunningProcess | None = None
    try:
        # Spawn and hand-over in one piece: a Ctrl-C inside Popen (after the fork) or
        # before `running` exists would leave the app running with nobody to stop it.
        with signals_deferred():
            with open(log_path, "ab") as log:
                try:
                    popen = subprocess.Popen(
                        command,
                        cwd=workdir,
                        env=full_env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # own process group: stop() reaches its children
                        close_fds=True,
                    )
                except OSError as exc:
                    raise ServiceError(
                        f"service {service.name!r}: cannot run {shlex.join(command)} in {workdir}: "
                        f"{_why_not_run(exc, command[0], workdir, full_env)}",
                        service.loc,
                    ) from exc
            running = RunningProcess(service.name, popen, list(command), log_path, ends, grace=grace)
            if not keep:
                track(running)  # stopped by the runner even if its registration is cut short
        _wait_ready(service, running)
    except BaseException:
        if running is not None:
            with signals_hurry():  # a second Ctrl-C must not leave it half-stopped
                running.stop()
        raise
    return running


def _why_not_run(exc: OSError, program: str, workdir: Path, env: Mapping[str, str]) -> str:
    """Why exec failed, in the user's terms. The OS says "No such file or directory" both for
    a program that is not there and for a script whose `#!` interpreter is not there."""
    if exc.errno != errno.ENOENT:
        return exc.strerror or str(exc)
    if "/" in program:
        path: str | None = str(workdir / program)  # absolute stays absolute
        if not os.path.exists(path):
            return f"no such file {path}"
    else:
        path = shutil.which(program, path=env.get("PATH", os.defpath))
        if path is None:
            return f"{program!r} was not found on PATH"
    try:
        with open(path, "rb") as fh:
            # only "\n" stripped: a Windows "\r" left at the end is the usual culprit
            first = fh.readline(200).rstrip(b"\n").decode("utf-8", errors="replace")
    except OSError:
        first = ""
    if first.startswith("#!"):
        return f"the interpreter of {path} was not found (its first line is {first!r})"
    return exc.strerror or str(exc)


def _wait_ready(service: Service, running: RunningProcess) -> None:
    """Wait for the healthcheck, failing fast (with the output) if the process exits first."""
    hc = service.healthcheck
    timeout = hc.timeout if hc is not None else DEFAULT_HEALTH_TIMEOUT

    def dead() -> str | None:
        return None if running.returncode is None else "the process exited"

    common = {"service": service.name, "runtime": "process", "location": service.loc, "alive": dead}
    try:
        if hc is not None and hc.kind == "http":
            wait_http(_health_url(service, running, hc.target), timeout, **common)
        elif hc is not None and hc.kind == "tcp":
            host, port = _tcp_target(service, running, hc.target)
            wait_tcp(host, port, timeout, **common)
        elif running.endpoints:
            # No healthcheck: at least wait until every interface accepts connections.
            for ep in running.endpoints.values():
                wait_tcp(ep.host, ep.port, timeout, **common)
        else:
            time.sleep(NO_HEALTHCHECK_SETTLE)
    except ServiceError as exc:
        if running.returncode is not None:
            raise _start_error(_exit_message(service, running), service, running) from None
        raise _start_error(exc.message + _port_hint(exc.message, running) + output_block(running),
                           service, running) from None
    if running.returncode is not None:
        raise _start_error(_exit_message(service, running), service, running)


def _port_hint(message: str, running: RunningProcess) -> str:
    """Nothing listens where the app was told to: most often it keeps its own port."""
    if "refused" not in message.lower() or not running.endpoints:
        return ""
    names = ", ".join(f"${{self.{name}.port}}" for name in running.endpoints)
    return (f"\n(the application must listen on the port redtest gives it, {names}: the port "
            "written under interfaces is replaced by a free one each run)")


def _start_error(message: str, service: Service, running: RunningProcess) -> ProcessStartError:
    text = running.logs()[-OUTPUT_CHARS:]
    output = f"--- {service.name} ---\n{text}" if text.strip() else None
    return ProcessStartError(message, service.loc, output=output, log_path=running.log_path)


def _exit_message(service: Service, running: RunningProcess) -> str:
    return f"service {service.name!r} {running.exit_reason()} during start-up ({running.detail})" + (
        output_block(running)
    )


def output_block(running: RunningProcess) -> str:
    """The end of an error message: the last lines of output and where the whole log is.

    The runner keeps the log of an app that failed to start or died (it removes the
    others with the suite), so the path still leads somewhere after redtest exits.
    """
    tail = running.tail()
    shown = "\n(the process printed nothing)" if not tail.strip() else f"\nlast output:\n{tail}"
    return f"{shown}\nlog: {running.log_path}"


def _health_url(service: Service, running: RunningProcess, target: str) -> str:
    if target.startswith(("http://", "https://")):
        return target
    http_ifaces = [
        n for n, i in service.interfaces.items() if i.protocol == "http" and n in running.endpoints
    ]
    names = http_ifaces or list(running.endpoints)
    if not names:
        raise ServiceError(
            f"service {service.name!r}: an http healthcheck needs an http interface", service.loc
        )
    ep = running.endpoints[names[0]]
    return f"http://{ep.host}:{ep.port}/{target.lstrip('/')}"


def _tcp_target(service: Service, running: RunningProcess, target: str) -> tuple[str, int]:
    host, _, port_text = target.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise ServiceError(
            f"service {service.name!r}: bad tcp healthcheck {target!r}", service.loc
        ) from None
    # The port written in the file is the declared one; a process listens on the free port it was given.
    for name, iface in service.interfaces.items():
        if iface.port == port and name in running.endpoints:
            ep = running.endpoints[name]
            return ep.host, ep.port
    return host or "127.0.0.1", port
