"""Runtime choice (`auto`, overrides), the RunningService contract and stop_all_reusable."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from redtest.errors import ServiceError
from redtest.services import Endpoint, RunningService, resolve_runtime, start_redis
from redtest.spec.model import Interface, Service
from tests.services.conftest import LOC, redis_service


def test_override_wins_over_the_service_runtime() -> None:
    svc = redis_service(runtime="docker")
    assert resolve_runtime(svc, "embedded") == "embedded"
    assert resolve_runtime(svc, None) == "docker"


def test_unknown_runtime() -> None:
    with pytest.raises(ServiceError) as err:
        resolve_runtime(redis_service(), "podman")
    assert "podman" in str(err.value) and "embedded" in str(err.value)


def test_auto_picks_local_without_an_engine(
    dead_docker: str, system_redis: str, monkeypatch: pytest.MonkeyPatch, suite_id: str
) -> None:
    monkeypatch.setenv("REDTEST_REDIS_SERVER", system_redis)
    assert resolve_runtime(redis_service(), None) == "local"
    with start_redis(redis_service(), None, suite_id=suite_id) as running:
        assert running.runtime == "local"


def test_auto_with_a_bad_env_binary_says_so(
    dead_docker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an explicit REDTEST_REDIS_SERVER that is wrong must not silently fall back to embedded
    monkeypatch.setenv("REDTEST_REDIS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(ServiceError, match="REDTEST_REDIS_SERVER"):
        resolve_runtime(redis_service(), None)


def test_start_redis_refuses_other_kinds() -> None:
    app = Service(
        name="app",
        kind="process",
        interfaces={},
        loc=LOC,
        base_dir=Path("."),
        command=("python", "app.py"),
    )
    with pytest.raises(ValueError):
        start_redis(app, "local", suite_id="x")


def test_a_redis_service_needs_a_redis_interface(suite_id: str) -> None:
    svc = Service(
        name="cache",
        kind="redis",
        loc=LOC,
        base_dir=Path("."),
        interfaces={"api": Interface("api", "http", 80, None, LOC)},
    )
    with pytest.raises(ServiceError, match="no redis interface"):
        start_redis(svc, "embedded", suite_id=suite_id)


def test_stop_runs_once_even_from_many_threads() -> None:
    calls = []

    class Counting(RunningService):
        def _stop(self) -> None:
            calls.append(1)

    svc = Counting("cache", "local", {"main": Endpoint("127.0.0.1", 1)}, "pid 1")
    threads = [threading.Thread(target=svc.stop) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    svc.stop()
    assert calls == [1] and svc.stopped
    assert svc.endpoints["main"].addr == "127.0.0.1:1"
    assert svc.logs() == ""


def test_auto_asks_a_hanging_engine_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An engine that accepts but never answers (a hung Docker Desktop VM) costs the probe's
    # timeout (3 s); `auto` must not pay it again for every Redis service of the suite.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{listener.getsockname()[1]}")
    suite = tmp_path / "three.yaml"
    services = "".join(
        f"  {n}: {{interfaces: {{main: {{protocol: redis, port: 6379}}}}}}\n" for n in "abc"
    )
    steps = "".join(f"      - {n}.main.set: {{key: k, value: v}}\n" for n in "abc")
    suite.write_text(f"version: 1\nservices:\n{services}scenarios:\n  s:\n    steps:\n{steps}")
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "redtest", "run", str(suite), "--json", str(tmp_path / "r.json")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        listener.close()
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"runtime": "docker"' not in (tmp_path / "r.json").read_text()
    assert elapsed < 7.0, f"{elapsed:.1f}s: the hanging engine was probed for each service"
