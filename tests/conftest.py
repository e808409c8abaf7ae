"""Shared fixtures: the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The test folders are not packages: make tests/redis_support.py importable everywhere.
sys.path.insert(0, str(Path(__file__).parent))

from redis_support import RedisServer, start_redis_server  # noqa: E402


def run_cli(
    args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `redtest ARGS` as a user would, in a subprocess, with plain output."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "redtest", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def cli():
    return run_cli



@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """One real redis-server for the whole session; tests that need it empty flush it."""
    server: RedisServer = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
