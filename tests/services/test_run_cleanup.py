"""`redtest run` as a subprocess leaves no server or container behind, however it ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SUITE = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis, port: 6379}
    seed: base
seeds:
  base:
    - cache.main.command: {cmd: FLUSHALL}
    - cache.main.set: {key: k, value: "1"}
scenarios:
  quick:
    steps:
      - cache.main.ping: {}
  failing:
    steps:
      - cache.main.ping: {}
    expect:
      - assert_eq(1, 2)
  slow:
    steps:
      - sleep: 60s
"""


def _live_processes(match: Callable[[Path], bool]) -> list[int]:
    """Live (not zombie) processes for which `match(/proc/PID)` holds."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if match(entry) and _running(int(entry.name)):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _servers_under(root: Path) -> list[int]:
    """Processes whose working directory lies under `root` (our servers' temp dirs)."""
    return _live_processes(lambda entry: os.readlink(entry / "cwd").startswith(str(root)))


def _our_processes(marker: str) -> list[int]:
    """Processes whose command line holds `marker` (unique to one test)."""
    return _live_processes(lambda entry: marker.encode() in (entry / "cmdline").read_bytes())


@contextlib.contextmanager
def _redtest_run(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`redtest run ARGS` in a subprocess, killed if the test leaves it running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "redtest", "run", *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _containers(suite: Path) -> list[str]:
    import docker

    client = docker.from_env()
    try:
        flt = {"label": f"redtest.suite={suite.resolve()}"}
        return [c.id for c in client.containers.list(all=True, filters=flt)]
    finally:
        client.close()


@pytest.fixture(params=["embedded", "local", "docker"])
def runtime(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
    return request.param


@pytest.fixture
def workspace(tmp_path: Path, runtime: str) -> tuple[Path, dict[str, str]]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1")  # our temp dirs land under tmp/
    return suite, env


def _leftovers(suite: Path, runtime: str, tmp: Path) -> list[object]:
    return list(_containers(suite)) if runtime == "docker" else list(_servers_under(tmp))


def _started(suite: Path, runtime: str, tmp: Path, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if _leftovers(suite, runtime, tmp):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("which", ["quick", "failing"])
def test_finished_run_leaves_nothing(runtime: str, workspace, which: str) -> None:  # type: ignore[no-untyped-def]
    suite, env = workspace
    result = subprocess.run(
        [sys.executable, "-m", "redtest", "run", str(suite), "-k", which, "--runtime", runtime, "-q"],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stdout.decode() + result.stderr.decode()
    if which == "failing":
        assert result.returncode == 1
    assert _leftovers(suite, runtime, Path(env["TMPDIR"])) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_nothing(runtime: str, workspace, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    suite, env = workspace
    tmp = Path(env["TMPDIR"])
    with _redtest_run([str(suite), "-k", "slow", "--runtime", runtime], env) as proc:
        assert _started(suite, runtime, tmp, proc), "the server never came up"
        time.sleep(1.0)  # into the 60 s sleep step
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0, out.decode()
    deadline = time.monotonic() + 10
    while _leftovers(suite, runtime, tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(suite, runtime, tmp) == [], out.decode()


REUSE_SUITE = """\
version: 1
services:
  cache:
    reuse: true
    interfaces:
      main: {protocol: redis, port: 6379}
    seed: base
seeds:
  base:
    - cache.main.command: {cmd: FLUSHALL}
    - cache.main.set: {key: k, value: "1"}
scenarios:
  check:
    steps:
      - sleep: 1ms
    expect:
      - assert_eq(cache.main.get(key="k").data["value"], "1")
      - assert_eq(cache.main.get(key="stale").data["value"], None)
"""


def test_reuse_across_two_runs_and_the_seed_resets(runtime: str, tmp_path: Path) -> None:
    import json

    import redis

    from redtest.services import stop_all_reusable

    suite = tmp_path / "reuse.yaml"
    suite.write_text(REUSE_SUITE)
    report = tmp_path / "report.json"

    def run() -> dict[str, str]:
        result = subprocess.run(
            [sys.executable, "-m", "redtest", "run", str(suite), "--runtime", runtime, "-q",
             "--json", str(report)],
            capture_output=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        (service,) = json.loads(report.read_text())["services"]
        return service

    try:
        first = run()
        host, port = first["endpoints"]["main"].split(":")
        redis.Redis(host, int(port)).set("stale", "left by someone")  # the server outlived run 1
        second = run()  # passes only if the seed flushed "stale"
        assert second["detail"] == first["detail"]  # same pid / container id
        assert second["endpoints"] == first["endpoints"] and second["runtime"] == runtime
    finally:
        assert stop_all_reusable(str(suite.resolve())) == 1
    if runtime == "docker":
        assert _containers(suite) == []
    else:
        pid = int(first["detail"].split()[1])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.05)
        assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_while_the_server_starts_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    # A "redis-server" that starts a helper and never answers: the signal comes while
    # redtest still waits for its PING, before the server is registered anywhere else.
    marker = f"redtest-never-ready-{tmp_path.name}"
    fake = tmp_path / "redis-server"
    fake.write_text(f'#!/bin/sh\nsh -c "sleep 300; : {marker}" &\nexec sh -c "sleep 301; : {marker}"\n')
    fake.chmod(0o755)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.replace("port: 6379}", "port: 6379}\n    healthcheck: {tcp: 'localhost:6379', timeout: 60s}"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1", REDTEST_REDIS_SERVER=str(fake))
    with _redtest_run([str(suite), "-k", "quick", "--runtime", "local"], env) as proc:
        assert _wait_for(lambda: len(_our_processes(marker)) >= 2), "the fake server never started"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), out.decode()
    assert _wait_for(lambda: not _our_processes(marker), 10), _our_processes(marker)
    assert list(tmp.iterdir()) == [], out.decode()


STUBBORN_SUITE = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis}
  app:
    command: [python3, -c, "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); open('ready', 'w').close(); time.sleep(600)", "MARKER"]
    workdir: WORKDIR
    depends_on: [cache]
scenarios:
  slow:
    steps:
      - sleep: 60s
"""


def test_second_ctrl_c_hurries_the_cleanup_and_leaves_nothing(tmp_path: Path) -> None:
    # The app ignores SIGTERM, so stopping it waits out the grace period (5 s); a second
    # Ctrl-C in that wait must stop it at once, not abandon it (nor the server's temp dir).
    marker = f"redtest-stubborn-{tmp_path.name}"
    suite = tmp_path / "suite.yaml"
    suite.write_text(STUBBORN_SUITE.replace("MARKER", marker).replace("WORKDIR", str(tmp_path)))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1")
    with _redtest_run([str(suite), "--runtime", "local"], env) as proc:
        assert _wait_for(lambda: (tmp_path / "ready").exists() and bool(_servers_under(tmp)))
        time.sleep(1.0)  # into the sleep step
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)  # cleanup is waiting for the stubborn app
        assert proc.poll() is None and _our_processes(marker), "the app should still be stopping"
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        hurried = time.monotonic() - began
    assert proc.returncode == 130, out.decode()
    assert b"Traceback" not in out
    assert hurried < 3.0, f"the second Ctrl-C did not hurry the cleanup ({hurried:.1f} s)"
    assert _our_processes(marker) == []
    assert _servers_under(tmp) == []
    assert list(tmp.iterdir()) == [], out.decode()
