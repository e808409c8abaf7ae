"""Ctrl-C at the worst moments of a start-up leaves nothing behind (SPEC §2).

The gaps: inside subprocess.Popen after the fork, between the spawn and the object
that can stop the child, and between a start call returning and the runner
registering its stop. The unit tests put a real SIGINT exactly there; the last test
interrupts the real CLI at random moments of its start-up, many times.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redtest.runner.cleanup import CleanupStack
from redtest.runner.environment import provision
from redtest.spec.build import load_suites


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_running(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Temp dirs of services land here, so leftovers are easy to see."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield tmp


def _popen_then_sigint(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make module.subprocess.Popen start the child, then take a real SIGINT."""
    real = subprocess.Popen
    started: list[int] = []

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real(*args, **kwargs)
        started.append(proc.pid)
        signal.raise_signal(signal.SIGINT)  # as if Ctrl-C came while Popen returned
        return proc

    monkeypatch.setattr(module.subprocess, "Popen", popen)
    return started


@pytest.fixture
def default_sigint() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _suite(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    (suite,) = load_suites([path])
    return suite


REDIS_SUITE = (
    "version: 1\nservices:\n  cache:\n    runtime: embedded\n    interfaces: {main: {protocol: redis}}\n"
    "scenarios:\n  s:\n    steps:\n      - cache.main.ping: {}\n"
)
APP_SUITE = (
    "version: 1\nservices:\n  app:\n    command: [python3, -c, 'import time; time.sleep(300)']\n"
    "scenarios:\n  s:\n    steps:\n      - sleep: 1ms\n"
)


@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize(("module", "text"), [("local", REDIS_SUITE), ("process", APP_SUITE)])
def test_sigint_right_after_spawning(tmp_path, private_tmp, monkeypatch, module, text) -> None:
    """A redis-server (local) or an application (process) spawned, then Ctrl-C at once."""
    import importlib

    started = _popen_then_sigint(importlib.import_module(f"redtest.services.{module}"), monkeypatch)
    suite = _suite(tmp_path, text)
    with pytest.raises(KeyboardInterrupt), CleanupStack() as stack:
        provision(suite, stack, runtime=None, keep=False)
    assert len(started) == 1
    assert _gone(started), "the child outlived the interrupt"
    assert list(private_tmp.iterdir()) == []


def _returns_then_sigint(module: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """module.NAME does its work, then a SIGINT lands before the caller registers the result."""
    real: Callable[..., Any] = getattr(module, name)
    returned: list[Any] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        returned.append(result)
        signal.raise_signal(signal.SIGINT)
        return result

    monkeypatch.setattr(module, name, wrapper)
    return returned


@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize("kind", ["redis", "process"])
def test_sigint_between_a_start_and_its_registration(tmp_path, private_tmp, monkeypatch, kind) -> None:
    from redtest.services import process, runtime

    if kind == "redis":
        returned = _returns_then_sigint(runtime, "start_redis", monkeypatch)
        suite = _suite(tmp_path, REDIS_SUITE)
    else:
        returned = _returns_then_sigint(process, "start_process", monkeypatch)
        suite = _suite(tmp_path, APP_SUITE)
    with pytest.raises(KeyboardInterrupt), CleanupStack() as stack:
        provision(suite, stack, runtime=None, keep=False)
    (service,) = returned
    assert _gone([service.pid]), f"{kind} was never stopped"
    assert list(private_tmp.iterdir()) == []


SLOW_SUITE = """\
version: 1
services:
  a:
    interfaces: {main: {protocol: redis}}
  b:
    runtime: embedded
    interfaces: {main: {protocol: redis}}
  app:
    command: [python3, -c, "import time; time.sleep(300)", MARKER]
    depends_on: [a, b]
scenarios:
  slow:
    steps:
      - sleep: 60s
"""


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _under(root: Path) -> list[int]:
    """Live processes whose working directory lies under `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd").startswith(str(root)) and _running(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _with_marker(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes() and _running(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
                    reason="needs /proc/PID/task/TID/children (Linux)")
def test_random_interrupts_during_start_up_leave_nothing(tmp_path: Path) -> None:
    """Interrupt `redtest run` just after its 1st/2nd/3rd child appears (0-3 ms later), or
    at a random moment of its first second, until the time budget is spent."""
    marker = f"redtest-interrupt-{tmp_path.name}"
    suite = tmp_path / "slow.yaml"
    suite.write_text(SLOW_SUITE.replace("MARKER", marker))
    rng = random.Random()
    budget = time.monotonic() + 20
    runs = 0
    problems = []
    while time.monotonic() < budget or runs < 4:
        tmp = tmp_path / f"tmp{runs}"
        tmp.mkdir()
        workdir = tmp_path / f"cwd{runs}"
        workdir.mkdir()
        env = dict(os.environ, TMPDIR=str(tmp), NO_COLOR="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "redtest", "run", str(suite), "-q"], env=env, cwd=workdir,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            if rng.random() < 0.75:
                wanted = rng.choice([1, 2, 3])
                deadline = time.monotonic() + 20
                while proc.poll() is None and time.monotonic() < deadline:
                    if len(_children(proc.pid)) >= wanted:
                        break
                    time.sleep(0.001)
                time.sleep(rng.uniform(0, 0.003))
                moment = f"{wanted} children + a few ms"
            else:
                delay = rng.uniform(0.2, 1.2)
                time.sleep(delay)
                moment = f"{delay:.3f} s"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        leftovers: list[Any] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # our temp dirs (redis-b-*, redtest-app-*) and anything running in them
            leftovers = list(tmp.iterdir()) + _under(tmp) + _with_marker(marker)
            if not leftovers:
                break
            time.sleep(0.05)
        if leftovers or b"Traceback" in err:
            problems.append((moment, proc.returncode, leftovers, err.decode()[-500:]))
        runs += 1
    print(f"{runs} interrupted runs")
    assert problems == [], f"{len(problems)} of {runs} interrupted runs left something: {problems}"
