"""Stopping a process group: SIGTERM, a grace period, SIGKILL, and wait until it is gone.

Local Redis servers and application processes are started in sessions of their own,
so their process group holds whatever they spawned. Both are stopped the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from redtest.services.runtime import HURRY

KILL_WAIT = 2.0  # seconds to wait for SIGKILLed processes to vanish


def stop_group(pgid: int, leader: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM the group `pgid`, SIGKILL what is left after `grace` seconds, reap `leader`.

    `leader` is the group's first process when this process started it (None for a
    server kept by an earlier run). After a second Ctrl-C (HURRY) SIGKILL comes at once.
    Returns once no process of the group is left, so its ports and files are free.
    """
    deadline = time.monotonic() + grace
    if not HURRY.is_set():
        _signal(pgid, signal.SIGTERM)
    # The leader may be gone while a child it spawned ignores SIGTERM: wait for the group.
    while group_alive(pgid) and time.monotonic() < deadline and not HURRY.is_set():
        time.sleep(0.02)
    if group_alive(pgid):
        _signal(pgid, signal.SIGKILL)
    if leader is not None:
        try:
            leader.wait(timeout=KILL_WAIT)
        except subprocess.TimeoutExpired:
            pass
    # SIGKILL is delivered asynchronously.
    deadline = time.monotonic() + KILL_WAIT
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _signal(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is still in the group."""
    proc = Path("/proc")
    if proc.is_dir():
        # Zombies answer killpg(0) until reaped, and orphans in a container may never be.
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid pgrp ..." — comm may hold spaces and parentheses.
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
