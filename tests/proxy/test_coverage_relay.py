"""The fast lane's C relay (_relay.c) on paths no other test reached."""

from __future__ import annotations

import socket

import pytest
from redtest.proxy._relay import Relay  # built by `pip install -e .` (setup.py)

from redtest.proxy.conn import STATEFUL_COMMANDS
from redtest.proxy.resp import encode_command


def test_a_pair_the_relay_cannot_watch_leaves_no_trace() -> None:
    """add() fails when the second socket cannot be watched: the first one, already
    readable, may have been reported to the relay thread by then. The thread must not
    handle the pair add() gave up on (it used to be freed at once, and the thread then
    handled freed memory, or the next pair allocated in its place: counted commands,
    escapes and a negative number of pairs from nowhere)."""
    relay = Relay(STATEFUL_COMMANDS, 0)
    try:
        for _ in range(3000):
            app, mine = socket.socketpair()
            with app, mine:
                app.sendall(encode_command(b"PING"))  # readable at once: the thread wakes
                mine.setblocking(False)
                with pytest.raises(OSError):
                    relay.add(mine.fileno(), -1)
                # the caller keeps its socket, untouched
                assert mine.recv(64) == encode_command(b"PING")
        assert relay.stats() == (0, 0, 0)
    finally:
        relay.close()
