"""Busy polling (busypoll.py, _spin.c): the proxy spins only while traffic flows, without
the GIL, and sleeps again once traffic stops."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from redtest.proxy._spin import spin  # built by `pip install -e .` (setup.py)

from redtest.errors import UsageError
from redtest.proxy import busypoll, fastlane
from redtest.proxy.server import FaultProxy


@pytest.fixture
def poller() -> tuple[select.epoll, socket.socket, socket.socket]:
    ep = select.epoll()
    a, b = socket.socketpair()
    ep.register(a.fileno(), select.EPOLLIN)
    yield ep, a, b
    ep.close()
    a.close()
    b.close()


def test_spin_returns_true_as_soon_as_the_poller_has_events(poller) -> None:
    ep, _a, b = poller
    threading.Timer(0.05, b.send, (b"x",)).start()
    started = time.monotonic()
    assert spin(ep.fileno(), 5_000_000) is True  # a 5 s window, ended by the event
    assert time.monotonic() - started < 4


def test_spin_gives_up_after_its_window(poller) -> None:
    ep, _a, _b = poller
    started = time.monotonic()
    assert spin(ep.fileno(), 20_000) is False
    assert time.monotonic() - started >= 0.02


def test_spin_leaves_the_events_to_the_loop(poller) -> None:
    ep, a, b = poller
    b.send(b"x")
    assert spin(ep.fileno(), 1000) is True
    assert ep.poll(0) == [(a.fileno(), select.EPOLLIN)]  # still there for the event loop


def test_spin_on_a_closed_poller_raises() -> None:
    ep = select.epoll()
    fd = ep.fileno()
    ep.close()
    with pytest.raises(OSError):
        spin(fd, 1000)


def test_spin_releases_the_gil(poller) -> None:
    ep, _a, _b = poller
    counted = 0
    done = threading.Event()

    def count() -> None:
        nonlocal counted
        while not done.is_set():
            counted += 1

    worker = threading.Thread(target=count)
    worker.start()
    try:
        before = counted
        spin(ep.fileno(), 300_000)  # 0.3 s with nothing ready
        during = counted - before
    finally:
        done.set()
        worker.join()
    assert during > 1000  # the other thread ran Python code all along


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5"])
def test_a_bad_window_is_a_usage_error(monkeypatch, raw) -> None:
    monkeypatch.setenv(busypoll.ENV, raw)
    with pytest.raises(UsageError, match=f"{busypoll.ENV}={raw!r}: expected a whole number"):
        busypoll.window_us()


def test_window_defaults_and_zero_turns_it_off(monkeypatch) -> None:
    monkeypatch.delenv(busypoll.ENV, raising=False)
    assert busypoll.window_us() == busypoll.DEFAULT_WINDOW_US
    monkeypatch.setenv(busypoll.ENV, "0")
    loop = asyncio.new_event_loop()
    try:
        assert busypoll.for_loop(loop) is None
    finally:
        loop.close()


def _cpu_of_thread(native_id: int) -> float:
    """CPU seconds (user + system) of one thread of this process, from /proc."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_proxy_spins_after_traffic_then_sleeps(redis_server, monkeypatch) -> None:
    monkeypatch.setenv(busypoll.ENV, "1000000")  # 1 s: still spinning when ping returns, on a busy CI machine too
    monkeypatch.setenv(fastlane.ENV, "0")  # the event loop's spin (the lane's: test_fastlane.py)
    with FaultProxy(*redis_server, name="test") as proxy:
        assert proxy.busy is not None and proxy._thread is not None
        tid = proxy._thread.native_id
        assert tid is not None
        client = redis.Redis(*proxy.address)
        client.ping()
        assert proxy.busy.armed  # spinning after the command
        deadline = time.monotonic() + 5
        while proxy.busy.armed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not proxy.busy.armed  # the window passed without traffic: asleep again
        idle_from = _cpu_of_thread(tid)
        time.sleep(0.5)
        assert _cpu_of_thread(tid) - idle_from < 0.1  # sleeping in the poller, not spinning
        assert client.ping() is True  # and traffic wakes it as before
        client.close()


def test_steps_in_the_proxys_process_are_not_held_up(redis_server, monkeypatch) -> None:
    """The runner's steps run in the proxy's process: a spinning proxy must not hold the GIL."""
    monkeypatch.setenv(busypoll.ENV, "1000000")  # every command starts a 1 s spin
    monkeypatch.setenv(fastlane.ENV, "0")  # on the event loop, which shares the GIL
    with FaultProxy(*redis_server, name="test") as proxy:
        client = redis.Redis(*proxy.address)
        started = time.monotonic()
        for i in range(200):
            client.set(f"busy:{i}", i)
            assert client.get(f"busy:{i}") == str(i).encode()
        elapsed = time.monotonic() - started
        client.close()
    # Spinning with the GIL held would stall each round trip for up to the whole window.
    assert elapsed < 20


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("REDTEST_PROXY_BUSY_POLL_US=soon", "REDTEST_PROXY_BUSY_POLL_US='soon': expected a whole number"),
        ("REDTEST_PROXY_FAST_LANE=fast", "REDTEST_PROXY_FAST_LANE='fast': expected 1"),
    ],
)
def test_a_bad_proxy_setting_stops_redtest_proxy_with_one_line(
    redis_server, setting, message
) -> None:
    name, value = setting.split("=")
    result = subprocess.run(
        [sys.executable, "-m", "redtest", "proxy", "--upstream", f"{redis_server[0]}:{redis_server[1]}"],
        capture_output=True,
        text=True,
        env=dict(os.environ, **{name: value}),
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_plain_asyncio_loops_busy_poll_on_their_selector(monkeypatch) -> None:
    """Without uvloop the proxy runs on asyncio's loop: its epoll selector is polled."""
    monkeypatch.delenv(busypoll.ENV, raising=False)
    loop = asyncio.new_event_loop()
    try:
        busy = busypoll.for_loop(loop)
        assert busy is not None
        ready = loop.run_until_complete(_spin_while_a_callback_is_due(loop))
        assert ready is True  # woken by call_soon_threadsafe's self-pipe, not the window
    finally:
        loop.close()


async def _spin_while_a_callback_is_due(loop: asyncio.AbstractEventLoop) -> bool:
    threading.Timer(0.05, loop.call_soon_threadsafe, (lambda: None,)).start()
    return spin(busypoll.poller_fd(loop), 5_000_000)  # type: ignore[arg-type]
