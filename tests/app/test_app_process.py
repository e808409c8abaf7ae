"""The process service: start, env, workdir, output capture, start-up failures, teardown."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from app_support import LOC, http_health, make_service

from redtest.errors import ServiceError
from redtest.services.process import RunningProcess, start_process
from redtest.services.runtime import Endpoint, RunningService, free_port
from redtest.spec.model import Healthcheck

PY = sys.executable

# A tiny HTTP app: answers /health, echoes its env and cwd on /info, logs each request.
HTTP_APP = textwrap.dedent(
    """
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"greeting": os.environ.get("GREETING"), "cwd": os.getcwd()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            print("request:", self.path)

    print("starting on", os.environ["PORT"])
    print("to stderr", file=sys.stderr)
    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """
)


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except FileNotFoundError:
        return False


def _wait_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


@pytest.fixture
def http_app(tmp_path: Path) -> Path:
    script = tmp_path / "app.py"
    script.write_text(HTTP_APP)
    return script


def _start_http_app(tmp_path: Path, script: Path, *, env: dict[str, str] | None = None, workdir: Path | None = None) -> RunningProcess:
    port = free_port()
    service = make_service(tmp_path, healthcheck=http_health("/health", 10))
    return start_process(
        service,
        [PY, str(script)],
        {"PORT": str(port), **(env or {})},
        workdir or tmp_path,
        log_path=tmp_path / "logs" / "app.log",
        endpoints={"api": Endpoint("127.0.0.1", port)},
    )


def test_start_waits_for_health_and_exposes_the_running_service(tmp_path: Path, http_app: Path) -> None:
    proc = _start_http_app(tmp_path, http_app)
    try:
        assert isinstance(proc, RunningService)
        assert proc.runtime == "process"
        assert proc.name == "app"
        assert proc.alive() and _pid_alive(proc.pid)
        assert str(proc.pid) in proc.detail
        ep = proc.endpoints["api"]
        # healthy means already answering: no retry needed here
        import urllib.request

        with urllib.request.urlopen(f"http://{ep.host}:{ep.port}/info", timeout=5) as resp:
            assert resp.status == 200
    finally:
        proc.stop()
    assert not _pid_alive(proc.pid)


def test_env_is_merged_over_os_environ_and_workdir_is_the_cwd(tmp_path: Path, http_app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import urllib.request

    monkeypatch.setenv("REDTEST_INHERITED", "yes")
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os, json\n"
        "print(json.dumps({k: os.environ.get(k) for k in ('GREETING', 'REDTEST_INHERITED', 'PYTHONUNBUFFERED')}))\n"
        "print('cwd=' + os.getcwd())\n"
        "import time; time.sleep(60)\n"
    )
    service = make_service(tmp_path, http_port=None)
    proc = start_process(service, [PY, str(probe)], {"GREETING": "hello world"}, workdir, log_path=tmp_path / "p.log")
    try:
        deadline = time.monotonic() + 5
        while "cwd=" not in proc.logs() and time.monotonic() < deadline:
            time.sleep(0.02)
        first, second = proc.logs().splitlines()[:2]
        assert json.loads(first) == {"GREETING": "hello world", "REDTEST_INHERITED": "yes", "PYTHONUNBUFFERED": "1"}
        assert second == f"cwd={workdir}"
    finally:
        proc.stop()

    # and over HTTP, with the health wait in between
    app = _start_http_app(tmp_path, http_app, env={"GREETING": "hi"}, workdir=workdir)
    try:
        ep = app.endpoints["api"]
        with urllib.request.urlopen(f"http://{ep.host}:{ep.port}/info", timeout=5) as resp:
            assert json.loads(resp.read()) == {"greeting": "hi", "cwd": str(workdir)}
    finally:
        app.stop()


def test_stdout_and_stderr_are_captured_to_the_log(tmp_path: Path, http_app: Path) -> None:
    proc = _start_http_app(tmp_path, http_app)
    try:
        logs = proc.logs()
        assert "starting on" in logs
        assert "to stderr" in logs
        assert "request: /health" in logs
        assert proc.log_path == tmp_path / "logs" / "app.log"
        assert proc.log_path.read_text() == logs
    finally:
        proc.stop()
    assert "starting on" in proc.logs()  # still readable after stop


def test_logs_are_a_bounded_tail(tmp_path: Path) -> None:
    service = make_service(tmp_path, http_port=None)
    script = "for i in range(20000): print(f'line {i:05d} ' + 'x' * 20)\nimport time; time.sleep(60)\n"
    proc = start_process(service, [PY, "-c", script], {}, tmp_path, log_path=tmp_path / "big.log")
    try:
        deadline = time.monotonic() + 5
        while "line 19999" not in proc.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        logs = proc.logs()
        assert len(logs.encode()) <= 64 * 1024
        assert logs.startswith("line ")  # the cut line is dropped, the tail starts clean
        assert logs.rstrip().endswith("line 19999 " + "x" * 20)
        assert proc.tail(2).splitlines() == ["line 19998 " + "x" * 20, "line 19999 " + "x" * 20]
    finally:
        proc.stop()


def test_exit_during_startup_names_service_code_and_output(tmp_path: Path) -> None:
    service = make_service(tmp_path, healthcheck=http_health("/health", 30))
    script = "import sys; print('loading config'); print('KeyError: DB_PATH', file=sys.stderr); sys.exit(3)"
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        start_process(service, [PY, "-c", script], {}, tmp_path, log_path=tmp_path / "a.log",
                      endpoints={"api": Endpoint("127.0.0.1", free_port())})
    assert time.monotonic() - started < 10  # fails fast, not at the 30 s health timeout
    message = str(info.value)
    assert "'app'" in message
    assert "exited with code 3" in message
    assert "loading config" in message and "KeyError: DB_PATH" in message
    assert info.value.location == LOC
    assert info.value.exit_code == 3


def test_start_up_errors_end_with_the_log_path_and_carry_the_output(tmp_path: Path) -> None:
    from redtest.services.process import ProcessStartError

    service = make_service(tmp_path, http_port=None)
    log = tmp_path / "logs" / "app.log"
    with pytest.raises(ProcessStartError) as info:
        start_process(service, [PY, "-c", "print('bad config'); raise SystemExit(4)"], {}, tmp_path, log_path=log)
    message = str(info.value)
    assert message.endswith(f"last output:\nbad config\nlog: {log}")
    assert info.value.output == "--- app ---\nbad config\n"
    assert info.value.log_path == log and log.read_text() == "bad config\n"


def test_exit_during_startup_without_healthcheck(tmp_path: Path) -> None:
    service = make_service(tmp_path, http_port=None)
    with pytest.raises(ServiceError, match="exited with code 0"):
        start_process(service, [PY, "-c", "print('done already')"], {}, tmp_path, log_path=tmp_path / "a.log")


def test_health_timeout_shows_the_app_output_and_stops_it(tmp_path: Path) -> None:
    service = make_service(tmp_path, healthcheck=http_health("/health", 1.0))
    script = "import time; print('warming up the flux capacitor', flush=True); time.sleep(60)"
    marker = tmp_path / "pid"
    script = f"import os; open({str(marker)!r}, 'w').write(str(os.getpid()))\n" + script.replace("; ", "\n")
    with pytest.raises(ServiceError) as info:
        start_process(service, [PY, "-c", script], {}, tmp_path, log_path=tmp_path / "a.log",
                      endpoints={"api": Endpoint("127.0.0.1", free_port())})
    message = str(info.value)
    assert "'app'" in message
    assert "did not become ready" in message and "1s" in message
    assert "warming up the flux capacitor" in message
    pid = int(marker.read_text())
    assert not _pid_alive(pid)  # a service that never became healthy is not left behind


def test_tcp_healthcheck_maps_the_declared_port_to_the_free_one(tmp_path: Path, http_app: Path) -> None:
    port = free_port()
    hc = Healthcheck("tcp", "localhost:8080", 10.0, LOC)  # 8080 is the declared interface port
    service = make_service(tmp_path, http_port=8080, healthcheck=hc)
    proc = start_process(service, [PY, str(http_app)], {"PORT": str(port)}, tmp_path,
                         log_path=tmp_path / "a.log", endpoints={"api": Endpoint("127.0.0.1", port)})
    try:
        assert proc.alive()
        assert "starting on" in proc.logs()
    finally:
        proc.stop()


def test_without_healthcheck_waits_for_the_interface_port(tmp_path: Path) -> None:
    port = free_port()
    service = make_service(tmp_path, http_port=8080)
    script = (
        "import socket, time\ntime.sleep(0.5)\n"
        f"s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', {port})); s.listen()\n"
        "print('listening', flush=True)\ntime.sleep(60)\n"
    )
    proc = start_process(service, [PY, "-c", script], {}, tmp_path, log_path=tmp_path / "a.log",
                         endpoints={"api": Endpoint("127.0.0.1", port)})
    try:
        assert "listening" in proc.logs()
    finally:
        proc.stop()


def test_command_not_found_and_bad_workdir(tmp_path: Path) -> None:
    service = make_service(tmp_path, http_port=None)
    with pytest.raises(ServiceError, match=r"'app'.*cannot run no-such-binary-xyz"):
        start_process(service, ["no-such-binary-xyz", "--flag"], {}, tmp_path, log_path=tmp_path / "a.log")
    with pytest.raises(ServiceError, match="workdir .* is not a directory"):
        start_process(service, [PY, "-V"], {}, tmp_path / "missing", log_path=tmp_path / "a.log")
    with pytest.raises(ServiceError, match="empty command"):
        start_process(service, [], {}, tmp_path, log_path=tmp_path / "a.log")


def test_why_a_command_cannot_run_is_said_plainly(tmp_path: Path) -> None:
    """The OS says "No such file or directory" for a missing program and for a script whose
    #! interpreter is missing (or ends in a Windows "\\r"): the error tells them apart."""
    service = make_service(tmp_path, http_port=None)

    def error(command: list[str], env: dict[str, str] | None = None) -> str:
        with pytest.raises(ServiceError) as info:
            start_process(service, command, env or {}, tmp_path, log_path=tmp_path / "a.log")
        return info.value.message

    assert error(["no-such-binary-xyz"]).endswith("'no-such-binary-xyz' was not found on PATH")
    assert error(["./missing.sh"]).endswith(f"no such file {tmp_path}/missing.sh")
    for name, shebang in (("py9.sh", "#!/usr/bin/python9-xyz"), ("crlf.sh", "#!/bin/sh\r")):
        script = tmp_path / name
        script.write_text(f"{shebang}\necho hi\n")
        script.chmod(0o755)
        assert error([f"./{name}"]).endswith(
            f"the interpreter of {script} was not found (its first line is {shebang!r})"
        )
    # found on the PATH the service's env gives, then its interpreter is missing
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "mytool"
    tool.write_text("#!/nonexistent/sh\n")
    tool.chmod(0o755)
    assert "the interpreter of " + str(tool) in error(["mytool"], {"PATH": str(tmp_path / "bin")})


def test_arguments_are_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    service = make_service(tmp_path, http_port=None)
    out = tmp_path / "args.txt"
    script = f"import sys, time; open({str(out)!r}, 'w').write(repr(sys.argv[1:])); time.sleep(60)"
    proc = start_process(service, [PY, "-c", script, "$HOME", "a b", "; rm -rf /", "*"], {}, tmp_path,
                         log_path=tmp_path / "a.log")
    try:
        assert _wait_file(out) == repr(["$HOME", "a b", "; rm -rf /", "*"])
    finally:
        proc.stop()


def _spawn_family(tmp_path: Path, *, parent_ignores_term: bool = False, child_ignores_term: bool = False,
                  grace: float = 5.0) -> tuple[RunningProcess, int]:
    """A parent that starts a child (same process group) and then waits; returns (proc, child pid)."""
    child_pid_file = tmp_path / "child.pid"
    child_code = "import signal, time\n"
    if child_ignores_term:
        child_code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    child_code += "time.sleep(600)\n"
    parent = "import signal, subprocess, sys, time\n"
    if parent_ignores_term:
        parent += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    parent += (
        f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}])\n"
        f"open({str(child_pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('family started', flush=True)\n"
        "time.sleep(600)\n"
    )
    service = make_service(tmp_path, http_port=None)
    proc = start_process(service, [PY, "-c", parent], {}, tmp_path, log_path=tmp_path / "fam.log", grace=grace)
    child_pid = int(_wait_file(child_pid_file))
    assert _pid_alive(child_pid)
    return proc, child_pid


def test_stop_terminates_the_whole_process_group(tmp_path: Path) -> None:
    proc, child = _spawn_family(tmp_path)
    started = time.monotonic()
    proc.stop()
    assert time.monotonic() - started < 3  # SIGTERM was enough, no grace wait
    assert not _pid_alive(proc.pid)
    assert not _pid_alive(child)
    assert proc.returncode == -signal.SIGTERM


def test_stop_sends_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    proc, child = _spawn_family(tmp_path, parent_ignores_term=True, child_ignores_term=True, grace=0.5)
    started = time.monotonic()
    proc.stop()
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 4
    assert proc.returncode == -signal.SIGKILL
    assert not _pid_alive(proc.pid)
    assert not _pid_alive(child)


def test_stop_kills_a_child_that_ignores_sigterm_after_the_parent_exits(tmp_path: Path) -> None:
    proc, child = _spawn_family(tmp_path, child_ignores_term=True, grace=0.5)
    proc.stop()
    assert proc.returncode == -signal.SIGTERM
    assert not _pid_alive(child)


def test_stop_is_idempotent_and_works_after_the_process_exited(tmp_path: Path) -> None:
    proc, child = _spawn_family(tmp_path)
    proc.stop()
    proc.stop()
    assert proc.stopped
    # a process that exited by itself, leaving a child behind: stop() still cleans the group
    service = make_service(tmp_path, http_port=None)
    pid_file = tmp_path / "orphan.pid"
    script = (
        "import subprocess, sys, time\n"
        f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(c.pid))\n"
        "time.sleep(1.0)\n"
    )
    proc2 = start_process(service, [PY, "-c", script], {}, tmp_path, log_path=tmp_path / "o.log")
    orphan = int(_wait_file(pid_file))
    deadline = time.monotonic() + 10
    while proc2.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc2.returncode == 0 and _pid_alive(orphan)
    proc2.stop()
    assert not _pid_alive(orphan)


def test_context_manager_stops(tmp_path: Path) -> None:
    service = make_service(tmp_path, http_port=None)
    with start_process(service, [PY, "-c", "import time; time.sleep(60)"], {}, tmp_path,
                       log_path=tmp_path / "a.log") as proc:
        pid = proc.pid
        assert _pid_alive(pid)
    assert not _pid_alive(pid)


def test_the_app_runs_in_its_own_session(tmp_path: Path) -> None:
    service = make_service(tmp_path, http_port=None)
    proc = start_process(service, [PY, "-c", "import time; time.sleep(60)"], {}, tmp_path, log_path=tmp_path / "a.log")
    try:
        # Ctrl-C in the terminal reaches redtest, which stops the app in order.
        assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
        assert os.getsid(proc.pid) == proc.pid
    finally:
        proc.stop()


def test_an_app_on_its_own_port_is_told_to_listen_on_the_one_it_is_given(cli, tmp_path) -> None:
    """The app keeps the port written under interfaces; redtest gave it another one, so the
    healthcheck meets `Connection refused` and the error says what to change."""
    (tmp_path / "app.py").write_text(
        "import http.server, socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "http.server.HTTPServer(('127.0.0.1', port), http.server.BaseHTTPRequestHandler).serve_forever()\n"
    )
    (tmp_path / "s.yaml").write_text(
        "version: 1\nservices:\n  app:\n    command: [python3, app.py]\n"
        "    interfaces: {api: {protocol: http, port: 8765}}\n"
        "    healthcheck: {http: /, timeout: 1s}\n"
        "scenarios:\n  t:\n    steps: [{app.api.get: {path: /}}]\n"
    )
    result = cli(["run", "s.yaml", "--json", "r.json"], cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    error = json.loads((tmp_path / "r.json").read_text())["tests"][0]["error"]
    assert "Connection refused" in error
    assert "the application must listen on the port redtest gives it, ${self.api.port}" in error
