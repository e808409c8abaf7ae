"""REDTEST_REDIS_SERVER as a user writes it: relative paths, and binaries that cannot run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis}
scenarios:
  quick:
    steps:
      - cache.main.ping: {}
"""


def _run(cwd: Path, binary: str) -> subprocess.CompletedProcess[str]:
    (cwd / "suite.yaml").write_text(SUITE)
    return subprocess.run(
        [sys.executable, "-m", "redtest", "run", "suite.yaml", "--runtime", "local"],
        cwd=cwd, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "500", "REDTEST_REDIS_SERVER": binary},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_relative_binary_path_is_relative_to_where_redtest_runs(tmp_path: Path) -> None:
    real = shutil.which("redis-server", path="/usr/bin") or shutil.which("redis-server")
    if real is None:
        pytest.skip("no redis-server binary")
    wrapper = tmp_path / "my-redis"
    wrapper.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    result = _run(tmp_path, "./my-redis")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_binary_that_cannot_be_executed_names_the_service_and_file(tmp_path: Path) -> None:
    junk = tmp_path / "not-a-program"
    junk.write_bytes(b"\x00\x01\x02 no shebang, no ELF header\n")
    junk.chmod(0o755)
    result = _run(tmp_path, str(junk))
    out = result.stdout + result.stderr
    assert result.returncode == 3, out
    assert f"suite.yaml:3:3: service 'cache' (runtime local): cannot run {junk}" in out, out
    assert "Traceback" not in out
