"""The local runtime's retry when its free port is taken before redis-server binds it.

free_port() can hand out a port that another process takes before the server binds it.
The wrapper below makes that race happen for real: for its first FAILS starts it binds
the port itself and then execs the real redis-server, which fails with "Address already
in use". redtest tries another port (3 attempts in all), through the real CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

WRAPPER = """#!/bin/sh
n=$(cat "$COUNTER" 2>/dev/null || echo 0)
echo $((n + 1)) > "$COUNTER"
if [ "$n" -lt "$FAILS" ]; then
  # $2 is the port (redtest runs: redis-server --port PORT ...)
  exec python3 -c '
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
s.set_inheritable(True)
os.execv(sys.argv[2], sys.argv[2:])
' "$2" "$REAL" "$@"
fi
exec "$REAL" "$@"
"""

SUITE = (
    "version: 1\nservices:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"
    "scenarios:\n  t1:\n    steps:\n      - cache.main.ping: {}\n"
)


@pytest.fixture
def wrapper(tmp_path: Path) -> Path:
    real = shutil.which("redis-server")
    if real is None:
        pytest.skip("no redis-server on PATH")
    path = tmp_path / "redis-server-wrapper"
    path.write_text(WRAPPER)
    path.chmod(0o755)
    return path


def _run(cli, tmp_path: Path, wrapper: Path, fails: int):  # type: ignore[no-untyped-def]
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE)
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    counter = tmp_path / "count"
    env = {
        "REDTEST_REDIS_SERVER": str(wrapper), "REAL": shutil.which("redis-server") or "",
        "COUNTER": str(counter), "FAILS": str(fails), "TMPDIR": str(tmp),
    }
    report = tmp_path / "r.json"
    result = cli(["run", str(suite), "--runtime", "local", "--json", str(report)], env=env)
    return result, json.loads(report.read_text()), int(counter.read_text()), tmp


def test_a_port_taken_before_the_server_binds_it_is_retried(cli, tmp_path: Path, wrapper: Path) -> None:
    result, report, starts, tmp = _run(cli, tmp_path, wrapper, fails=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert starts == 3
    assert report["tests"][0]["status"] == "passed"
    assert list(tmp.iterdir()) == []  # the failed attempts' folders are gone too


def test_three_taken_ports_end_with_the_servers_own_words(cli, tmp_path: Path, wrapper: Path) -> None:
    result, report, starts, tmp = _run(cli, tmp_path, wrapper, fails=5)
    assert result.returncode == 3, result.stdout + result.stderr
    assert starts == 3  # no more attempts than that
    error = report["tests"][0]["error"]
    assert error.startswith(f"{tmp_path / 's.yaml'}:3:3: service 'cache' (runtime local) stopped before it was ready"), error
    assert "the process exited with status 1" in error and "Address already in use" in error, error
    assert list(tmp.iterdir()) == []
