"""Finding the processes a test left behind, through /proc (tests that check cleanup)."""

from __future__ import annotations

import os
from pathlib import Path


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (dead, but not yet reaped by its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def processes_under(folder: Path, *, exact: bool = False) -> list[int]:
    """Live processes, other than this one, whose working directory is `folder` or (unless
    `exact`) lies below it: an app runs in its suite's folder, a local Redis server in its
    temp dir under $TMPDIR."""
    root = str(folder)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        inside = cwd == root or (not exact and cwd.startswith(root.rstrip("/") + "/"))
        if inside and running(int(entry.name)):
            found.append(int(entry.name))
    return found
