"""`redtest proxy` in front of a real redis-server: faults from a file, a line per
hit, clean exit on Ctrl-C; usage errors are one paragraph with exit status 2."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]

FAULTS = """\
version: 1
services:
  cache:
    interfaces: {main: {protocol: redis}}
faults:
  set_fails:
    target: cache.main
    rules:
      - error: {command: SET, message: READONLY}
  slow:
    target: cache.main
    rules:
      - delay: {command: GET, delay: 10ms}
"""


@pytest.fixture
def server(redis_server) -> int:  # type: ignore[no-untyped-def]
    redis_server.client().flushall()
    return redis_server.port


def _start(server: int, tmp_path: Path) -> subprocess.Popen[str]:
    """`redtest proxy` with the set_fails fault, output piped."""
    faults = tmp_path / "faults.yaml"
    faults.write_text(FAULTS)
    return subprocess.Popen(
        [sys.executable, "-m", "redtest", "proxy", "--upstream", f"127.0.0.1:{server}",
         "--faults", str(faults), "--fault", "set_fails"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_proxy_applies_faults_from_a_file(server, tmp_path) -> None:
    proc = _start(server, tmp_path)
    try:
        first = proc.stdout.readline()
        assert "listening on" in first, first + proc.stderr.read()
        # read here: communicate() below reads the pipe itself, past this file's buffer
        assert proc.stdout.readline() == "  rule 1 (set_fails): error(command=SET, message=READONLY)\n"
        address = first.split("listening on ")[1].split(" ->")[0]
        host, port = address.rsplit(":", 1)
        client = redis.Redis(host=host, port=int(port), decode_responses=True)
        with pytest.raises(redis.ReadOnlyError):
            client.set("k", "v")
        assert client.get("k") is None
        assert redis.Redis(port=server).get("k") is None  # nothing reached the server
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "hit rule 1: error(command=SET, message=READONLY)" in out
    assert "Traceback" not in err


def test_unknown_fault_is_a_usage_error(server, tmp_path, cli) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(FAULTS)
    result = cli(["proxy", "--upstream", f"127.0.0.1:{server}", "--faults", str(faults), "--fault", "sloow"])
    assert result.returncode == 2
    assert "no fault 'sloow'" in result.stderr and "did you mean 'slow'" in result.stderr
    assert "its faults: set_fails, slow" in result.stderr


def test_bad_address_is_a_usage_error(cli) -> None:
    result = cli(["proxy", "--upstream", "localhost"])
    assert result.returncode == 2
    assert "--upstream takes HOST:PORT" in result.stderr


def test_faults_go_on_when_the_output_is_gone(server, tmp_path) -> None:
    """`redtest proxy ... | head -3`: once head exits, printing a hit failed on the loop
    thread and the client lost its connection instead of getting its fault."""
    proc = _start(server, tmp_path)
    try:
        first = proc.stdout.readline()
        address = first.split("listening on ")[1].split(" ->")[0]
        host, port = address.rsplit(":", 1)
        proc.stdout.close()  # the reader is gone (as after `| head -1`): writes fail, EPIPE
        client = redis.Redis(host=host, port=int(port))
        for _ in range(3):
            with pytest.raises(redis.ReadOnlyError):
                client.set("k", "v")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        proc.stderr.close()


def test_an_unread_output_does_not_stall_the_proxy(server, tmp_path) -> None:
    """Started with its output piped and only the first line read (a harness that wants
    the address): once the pipe was full, printing a hit blocked the proxy's loop thread,
    every client timed out and SIGTERM could not end it. Hits now print from their own
    thread and the ones that do not fit are counted."""
    proc = _start(server, tmp_path)
    try:
        first = proc.stdout.readline()
        address = first.split("listening on ")[1].split(" ->")[0]
        host, port = address.rsplit(":", 1)
        client = redis.Redis(host=host, port=int(port), socket_timeout=5)
        for _ in range(3000):  # ~130 KB of hit lines: twice a pipe's buffer
            with pytest.raises(redis.ReadOnlyError):
                client.set("k", "v")
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    hits = sum(line.startswith("hit rule 1:") for line in out.splitlines())
    assert 0 < hits <= 3000
    if hits < 3000:
        assert f"({3000 - hits} hit line(s) not printed: the output was not read)" in out


def test_an_ipv6_address_without_port_is_a_usage_error(cli) -> None:
    """`--upstream ::1` was split into host `:` and port 1 and accepted: every client's
    connection then failed, with nothing said."""
    result = cli(["proxy", "--upstream", "::1"])
    assert result.returncode == 2
    assert "an IPv6 address in brackets: [::1]:6379" in result.stderr and "'::1'" in result.stderr


def test_an_unreachable_upstream_is_reported(tmp_path) -> None:
    """A wrong --upstream port: clients' connections closed at once and the proxy said
    nothing; now it prints why (at most a line per 5 s)."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "redtest", "proxy", "--upstream", f"127.0.0.1:{dead}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        first = proc.stdout.readline()
        port = int(first.split("listening on ")[1].split(" ->")[0].rsplit(":", 1)[1])
        for _ in range(3):
            with pytest.raises(redis.ConnectionError):
                redis.Redis(port=port, retry=None).ping()
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else "(nothing printed)"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert line.strip() == (
        f"cannot reach upstream 127.0.0.1:{dead} (Connection refused): closed the client's connection"
    )
    assert "cannot reach" not in out  # the other two failures fell in the same 5 s
