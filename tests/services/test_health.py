"""Readiness waits against real sockets: listeners, refusers, fake servers that lie."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from redtest.errors import ServiceError
from redtest.services.health import ping_once, wait_http, wait_redis_ping, wait_tcp
from redtest.services.runtime import free_port


def _serve(handler: Callable[[socket.socket, int], None]) -> Iterator[int]:
    """A real TCP server on loopback; handler(conn, n) runs per connection (n counts from 0)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def loop() -> None:
        n = 0
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                handler(conn, n)
            n += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def _replies(*lines: bytes) -> Callable[[socket.socket, int], None]:
    """Answer connection n with lines[n] (the last one forever); b"" closes without a reply."""

    def handle(conn: socket.socket, n: int) -> None:
        reply = lines[min(n, len(lines) - 1)]
        if reply:
            conn.recv(64)
            conn.sendall(reply)

    return handle


@pytest.fixture
def fake_redis(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from _serve(_replies(*request.param))


def test_wait_tcp_returns_once_something_listens() -> None:
    for port in _serve(lambda conn, n: None):
        started = time.monotonic()
        wait_tcp("127.0.0.1", port, 2, service="app", runtime="process")
        assert time.monotonic() - started < 1


def test_wait_tcp_times_out_naming_service_runtime_and_last_error() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        wait_tcp("127.0.0.1", port, 0.5, service="app", runtime="process")
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2
    msg = str(err.value)
    assert "'app'" in msg and "runtime process" in msg and f"127.0.0.1:{port}" in msg
    assert "Connection refused" in msg
    assert err.value.exit_code == 3


@pytest.mark.parametrize("fake_redis", [[b"+PONG\r\n"]], indirect=True)
def test_ping_once_reads_the_reply(fake_redis: int) -> None:
    assert ping_once("127.0.0.1", fake_redis, 1) == "+PONG"


@pytest.mark.parametrize("fake_redis", [[b""]], indirect=True)
def test_accepting_then_closing_is_not_ready(fake_redis: int) -> None:
    # what docker-proxy does before Redis inside the container listens
    with pytest.raises(ServiceError) as err:
        wait_redis_ping("127.0.0.1", fake_redis, 0.6, service="cache", runtime="docker")
    # the close races the PING: the client sees either an orderly close or a reset
    message = str(err.value)
    assert "connection closed without a reply" in message or "reset by peer" in message
    assert "'cache'" in message and "runtime docker" in message


@pytest.mark.parametrize(
    "fake_redis", [[b"", b"-LOADING Redis is loading\r\n", b"+PONG\r\n"]], indirect=True
)
def test_waits_through_close_and_loading_until_pong(fake_redis: int) -> None:
    wait_redis_ping("127.0.0.1", fake_redis, 5, service="cache", runtime="local")


@pytest.mark.parametrize("fake_redis", [[b"-LOADING Redis is loading\r\n"]], indirect=True)
def test_an_answer_other_than_pong_is_reported(fake_redis: int) -> None:
    with pytest.raises(ServiceError) as err:
        wait_redis_ping("127.0.0.1", fake_redis, 0.5, service="cache", runtime="local")
    assert "LOADING" in str(err.value)


def test_a_dead_process_fails_the_wait_at_once() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        wait_redis_ping(
            "127.0.0.1", port, 30, service="cache", runtime="local",
            alive=lambda: "the process exited with status 1",
        )  # fmt: skip
    assert time.monotonic() - started < 2
    assert "stopped before it was ready (PING at 127.0.0.1:" in str(err.value)
    assert str(err.value).endswith("): the process exited with status 1")


class _Health(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _http_server(statuses: list[int]) -> Iterator[str]:
    handler = type("H", (_Health,), {"statuses": list(statuses)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def test_wait_http_retries_until_a_good_status() -> None:
    for url in _http_server([503, 503, 200]):
        wait_http(url, 5, service="app")


def test_wait_http_reports_the_last_status() -> None:
    for url in _http_server([500]):
        with pytest.raises(ServiceError) as err:
            wait_http(url, 0.5, service="app")
        assert "HTTP 500" in str(err.value) and "'app'" in str(err.value)


def test_wait_http_connection_refused() -> None:
    with pytest.raises(ServiceError) as err:
        wait_http(f"http://127.0.0.1:{free_port()}/health", 0.4, service="app")
    assert "refused" in str(err.value).lower()
