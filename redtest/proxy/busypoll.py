"""Busy polling: after client traffic, the proxy's loop keeps its CPU awake for a while.

Each proxied request wakes the proxy twice (the command, then the reply). On a virtual
machine an idle CPU halts, and waking it goes through the hypervisor; that wake-up,
not the copying, is most of what a proxy hop costs there (docs/proxy.md, "Busy
polling"). So, like haproxy's `busy-polling`, once a client chunk arrives the loop
thread polls its own epoll descriptor in C, without the GIL, until events are ready or
REDTEST_PROXY_BUSY_POLL_US microseconds (default 200) pass without any; then it sleeps
in the poller as usual. Idle proxies cost nothing; 0 turns busy polling off.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from redtest.errors import UsageError

ENV = "REDTEST_PROXY_BUSY_POLL_US"
DEFAULT_WINDOW_US = 200  # as the Linux guest halt-polling default (200 µs)

_spin: Callable[[int, int], bool] | None
try:
    from redtest.proxy._spin import spin as _spin
except ImportError:  # pragma: no cover - installed without a C compiler
    _spin = None


def window_us() -> int:
    """The busy-poll window from the environment; UsageError when it is not a number ≥ 0."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_WINDOW_US
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(
            f"{ENV}={raw!r}: expected a whole number of microseconds (0 turns busy polling off)"
        )
    return value


def poller_fd(loop: asyncio.AbstractEventLoop) -> int | None:
    """The loop's epoll descriptor: uvloop's libuv backend, or asyncio's selector."""
    backend = getattr(loop, "_get_backend_id", None)
    if backend is not None:
        return int(backend())
    selector = getattr(loop, "_selector", None)
    fileno = getattr(selector, "fileno", None)
    return int(fileno()) if fileno is not None else None


class BusyPoll:
    """Spins the loop thread between events while traffic flows (loop thread only)."""

    __slots__ = ("armed", "_loop", "_fd", "_window")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, window: int) -> None:
        self.armed = False
        self._loop = loop
        self._fd = fd
        self._window = window

    def arm(self) -> None:
        """Traffic arrived: spin after this loop round (callers check `armed` first)."""
        self.armed = True
        self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        assert _spin is not None
        try:
            ready = _spin(self._fd, self._window)
        except OSError:  # the loop is closing
            ready = False
        if ready:  # let the loop take the events, then spin again
            self._loop.call_soon(self._tick)
        else:
            self.armed = False


def for_loop(loop: asyncio.AbstractEventLoop) -> BusyPoll | None:
    """A BusyPoll for this loop, or None when it is off, not built, or the loop has no fd."""
    window = window_us()
    if window == 0 or _spin is None:
        return None
    fd = poller_fd(loop)
    return None if fd is None else BusyPoll(loop, fd, window)
