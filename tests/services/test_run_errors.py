"""Service failures through `redtest run`: one clear paragraph, exit status 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = """\
version: 1
services:
  cache:
    image: {image}
    interfaces:
      main: {{protocol: redis, port: 6379}}
    healthcheck: {{redis: ping, timeout: 1s}}
scenarios:
  quick:
    steps:
      - cache.main.ping: {{}}
"""


def _run(
    tmp_path: Path, runtime: str, env: dict[str, str], image: str = "redis:7"
) -> tuple[int, str]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(image=image))
    result = subprocess.run(
        [sys.executable, "-m", "redtest", "run", str(suite), "--runtime", runtime],
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "500", **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_engine_unreachable(tmp_path: Path, dead_docker: str) -> None:
    code, out = _run(tmp_path, "docker", {})
    assert code == 3, out
    assert "no Docker engine answers at " + dead_docker in out and "Traceback" not in out


def test_image_missing_and_not_pullable(tmp_path: Path, docker_engine: str) -> None:
    code, out = _run(tmp_path, "docker", {}, image="redtest-not-an-image:0")
    assert code == 3, out
    assert "image 'redtest-not-an-image:0'" in out and "Traceback" not in out


def test_port_never_ready(tmp_path: Path) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    code, out = _run(tmp_path, "local", {"REDTEST_REDIS_SERVER": str(fake)})
    assert code == 3, out
    assert "'cache'" in out and "runtime local" in out and "within 1s" in out


def test_binary_missing(tmp_path: Path, empty_path: Path) -> None:
    # empty_path set PATH in this process; the child needs its own interpreter path
    code, out = _run(tmp_path, "local", {"PATH": str(empty_path)})
    assert code == 3, out
    assert "none is on PATH" in out and "--runtime embedded" in out


@pytest.mark.parametrize("runtime", ["embedded"])
def test_embedded_without_any_redis_on_path(tmp_path: Path, empty_path: Path, runtime: str) -> None:
    code, out = _run(tmp_path, runtime, {"PATH": str(empty_path)})
    assert code in (0, 1), out  # services came up; the outcome of the ping is the proxy's business
    assert "ServiceError" not in out and "Traceback" not in out
