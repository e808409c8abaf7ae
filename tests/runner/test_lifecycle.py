"""Whatever `redtest run` starts, it stops: after a passing run, a failing run,
and when interrupted by SIGINT or SIGTERM in the middle of a scenario.

A wrapper around the real redis-server records the pid of every server the run
starts; the application service records its own. After the run, none may live.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_support import processes_under

SUITE = Path(__file__).parent / "suites" / "lifecycle.yaml"
ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes (its parent has not reaped it yet)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def recorded(tmp_path):
    """Env for a run whose redis-server and app pids are written to files."""
    real = shutil.which("redis-server", path="/usr/bin") or shutil.which("redis-server")
    if real is None:
        from redtest.services.embedded import embedded_binary

        real = embedded_binary()
    pids = tmp_path / "redis.pids"
    wrapper = tmp_path / "redis-server"
    wrapper.write_text(f'#!/bin/sh\necho $$ >> "{pids}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "REDTEST_REDIS_SERVER": str(wrapper),
        "LIFECYCLE_APP_PIDFILE": str(tmp_path / "app.pid"),
    }

    def started() -> list[int]:
        found = [int(x) for x in pids.read_text().split()] if pids.exists() else []
        app = tmp_path / "app.pid"
        if app.exists() and app.read_text().strip():
            found.append(int(app.read_text()))
        return found

    return env, started


def _redtest(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "redtest", "run", str(SUITE), "--runtime", "local", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )


def _assert_all_stopped(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert [p for p in pids if _alive(p)] == []


@pytest.mark.parametrize(("keyword", "code"), [("a_passes", 0), ("b_fails", 1)])
def test_nothing_left_after_a_run(recorded, keyword: str, code: int) -> None:
    env, started = recorded
    proc = _redtest(env, "-k", keyword)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, out + err
    pids = started()
    assert len(pids) == 2, "a redis-server and the app were started"
    _assert_all_stopped(pids)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_nothing_left_after_an_interrupt(recorded, sig: signal.Signals, code: int) -> None:
    env, started = recorded
    proc = _redtest(env, "-k", "c_slow")
    deadline = time.monotonic() + 30
    # wait until the scenario is in its 60 s sleep: both services up and the key written
    while time.monotonic() < deadline and len(started()) < 2:
        time.sleep(0.05)
    assert len(started()) == 2, "services did not start"
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, out + err
    assert "Traceback" not in err
    _assert_all_stopped(started())


@pytest.mark.parametrize("runtime", ["local", "embedded"])
def test_keep_services_leaves_the_server_running(runtime: str, cli) -> None:
    import re

    import redis

    result = cli(["run", str(SUITE.parent / "failing.yaml"), "-k", "a_passes", "--runtime", runtime,
                  "--keep-services"])
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"kept cache \((\w+)\): main 127\.0\.0\.1:(\d+)", result.stderr)
    assert match, result.stderr
    assert match.group(1) == runtime
    client = redis.Redis(port=int(match.group(2)))
    try:
        assert client.ping() is True  # still there after redtest exited
        assert client.get("seeded") == b"yes"
    finally:
        client.shutdown(nosave=True)


def test_clean_stops_what_reuse_kept(cli, tmp_path) -> None:
    import json
    import re

    suite = tmp_path / "kept.yaml"
    suite.write_text(
        "version: 1\nservices:\n  cache:\n    runtime: embedded\n    reuse: true\n"
        "    interfaces: {main: {protocol: redis}}\n"
        "scenarios:\n  s:\n    steps:\n      - cache.main.ping: {}\n"
    )
    report = tmp_path / "report.json"
    first = cli(["run", str(suite), "--json", str(report)])
    assert first.returncode == 0, first.stdout + first.stderr
    detail = json.loads(report.read_text())["services"][0]["detail"]
    pid = int(re.fullmatch(r"pid (\d+)", detail).group(1))
    assert _alive(pid), "reuse: true keeps the server after the run"
    result = cli(["clean", str(tmp_path)])  # this project's only: not everyone's kept servers
    assert result.returncode == 0 and re.search(r"stopped 1 kept server", result.stdout), result.stdout
    _assert_all_stopped([pid])


def test_keep_services_says_how_to_stop_and_what_no_longer_answers(cli, tmp_path) -> None:
    import re

    suite = tmp_path / "keep.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n"
        "  cache:\n    interfaces: {main: {protocol: redis}}\n"
        "  app:\n"
        "    command: [python3, -c, 'import time; time.sleep(600)', '${cache.main.url}']\n"
        "scenarios:\n  s:\n    steps:\n      - cache.main.ping: {}\n"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = cli(["run", str(suite), "--runtime", "local", "-q", "--keep-services"], env={"TMPDIR": str(tmp)})
    hints = re.findall(
        r"kept (\w+) \(\w+\): .*; pid (\d+); stop it with: kill -TERM -- -(\d+)(?: && rm -rf (\S+))?\n",
        result.stderr,
    )
    pids = [int(h[1]) for h in hints]
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert [h[0] for h in hints] == ["cache", "app"], result.stderr
        assert all(_alive(p) for p in pids)
        assert "note: app was given a proxy's address for Redis" in result.stderr
        assert all(pid == group for _, pid, group, _ in hints)  # the hint stops that pid's group
        folders = [Path(folder) for *_, folder in hints if folder]
        assert len(folders) == 1 and folders[0].is_dir()  # the Redis server's; the app has none
    finally:
        for _, _, group, folder in hints:  # what the printed command does (each is its own session)
            assert int(group) > 1  # never signal group 0 or 1 (ourselves, everything)
            os.killpg(int(group), signal.SIGTERM)
            if folder:
                shutil.rmtree(folder)
        # kept and not (or wrongly) announced: stop it too, so a failure here leaks nothing
        for pid in processes_under(tmp_path):
            if pid not in pids:
                os.kill(pid, signal.SIGKILL)
    _assert_all_stopped(pids)
