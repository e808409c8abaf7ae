"""State files for `reuse: true` local/embedded servers, under a per-user temp dir.

One JSON file per (runtime, suite, service) records the pid, port and temp dir of
the server an earlier run left running; a lock file next to it keeps two runs
from starting two servers for the same key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def state_dir() -> Path:
    """`$TMPDIR/redtest-<uid>/reuse`, created private to the user."""
    base = Path(tempfile.gettempdir()) / f"redtest-{os.getuid()}" / "reuse"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base


def key(runtime: str, suite_id: str, service: str) -> str:
    digest = hashlib.sha256(f"{runtime}\0{suite_id}\0{service}".encode()).hexdigest()[:16]
    return f"{runtime}-{digest}"


@contextlib.contextmanager
def locked(state_key: str, *, discard: bool = False) -> Iterator[None]:
    """Hold an exclusive lock for one key (blocks while another run starts the same server).

    `discard`: delete the lock file before releasing it, when no state file remains.
    Lock files may be deleted (by `redtest clean`), so after locking we check that the
    file we hold is still the one at the path; otherwise two runs could each hold a
    lock on a different file for the same key.
    """
    path = state_dir() / f"{state_key}.lock"
    while True:
        lock = open(path, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _same_file(lock, path):
                break
        except BaseException:
            lock.close()
            raise
        lock.close()  # deleted (or replaced) while we waited: lock the new one
    try:
        yield
    finally:
        try:
            if discard and not (state_dir() / f"{state_key}.json").exists():
                with contextlib.suppress(OSError):
                    path.unlink()  # still locked: whoever opens the path next gets a new file
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()


def _same_file(handle: Any, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except OSError:
        return False


def prune_locks() -> list[str]:
    """Delete lock files that no state file needs and no run holds; returns their keys.

    A lock is provably unused when it can be taken without waiting; it is deleted while
    held, and `locked` notices a deleted file, so no run is ever left with a stale lock.
    """
    removed = []
    folder = state_dir()
    for path in sorted(folder.glob("*.lock")):
        state_key = path.name[: -len(".lock")]
        if (folder / f"{state_key}.json").exists():
            continue
        try:
            lock = open(path, "a")
        except OSError:
            continue
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a run holds it right now
            try:
                if _same_file(lock, path) and not (folder / f"{state_key}.json").exists():
                    path.unlink()
                    removed.append(state_key)
            except OSError:
                pass
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return removed


def read(state_key: str) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir() / f"{state_key}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "pid" in data and "port" in data else None


def write(state_key: str, state: dict[str, Any]) -> None:
    path = state_dir() / f"{state_key}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)  # atomic: a reader never sees half a file


def remove(state_key: str, *, pid: int | None = None) -> None:
    """Delete the state file (only if it still records `pid`, when given)."""
    if pid is not None:
        state = read(state_key)
        if state is None or int(state["pid"]) != pid:
            return
    with contextlib.suppress(OSError):
        (state_dir() / f"{state_key}.json").unlink()


def all_states() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(state_dir().glob("*.json")):
        state = read(path.stem)
        if state is not None:
            out.append((path.stem, state))
    return out


_DELETED = " (deleted)"


def is_our_server(state: dict[str, Any]) -> bool:
    """True when the recorded pid is still the server we started (pids get recycled)."""
    pid, port = int(state["pid"]), int(state["port"])
    workdir = os.path.realpath(str(state.get("workdir")))
    if os.path.isdir("/proc"):
        # redis rewrites its argv (proc title), but its cwd stays the temp dir we made for it
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return False
        # A temp-dir cleaner (or a user's rm -rf) may have deleted the dir under the running
        # server: Linux then shows "<path> (deleted)". Still ours, and still to be stopped.
        cwd = cwd.removesuffix(_DELETED)
        return os.path.realpath(cwd) == workdir
    return _info_pid(port) == pid  # no /proc (macOS): ask the server who it is


def _info_pid(port: int) -> int | None:
    import redis

    try:
        client = redis.Redis("127.0.0.1", port, socket_timeout=1, socket_connect_timeout=1)
        with client:
            return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
