"""The SQLite interface (SPEC §8): check an application's database from assertions.

- A new connection per call: the application writes the same file concurrently,
  and a long-lived connection would pin an old read snapshot or hold a lock.
  The busy timeout lets a call wait out the app's short write transactions.
- `query` opens the file read-only, so asking about a database that does not
  exist (yet) is an error, not a new empty file; `exec` may create it (seeds).
- `exec` without params may hold several statements (`DELETE FROM a; DELETE FROM b`);
  `.data` is `{"rowcount": n}` (rows changed in all of them).
- Errors (SQL, locking, missing file) are `ok=False` responses, never exceptions.
- Blob columns read as text (UTF-8, undecodable bytes escaped), so reports stay JSON.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from redtest.clients.response import Response
from redtest.spec.methods import check_arguments

DEFAULT_TIMEOUT = 5.0


class SqliteInterface:
    """A sqlite interface (`db.main`): `call("query"|"exec", args)` plus `query`/`exec` methods."""

    protocol = "sqlite"

    def __init__(self, path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SqliteInterface({self.path})"

    def call(
        self, method: str, args: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Response:
        """Run `query` (→ list of row dicts) or `exec` (→ {"rowcount": n})."""
        started = time.perf_counter()
        args = dict(args or {})
        try:
            check_arguments("sqlite", method, args)
        except ValueError as exc:
            return _fail(str(exc), started)
        sql = args.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            return _fail(f"{method}: sql must be a non-empty string", started)
        params = args.get("params")
        if params is None:
            params = ()
        elif isinstance(params, Mapping):
            params = dict(params)
        elif isinstance(params, (list, tuple)):
            params = tuple(params)
        else:
            return _fail(f"{method}: params must be a list or a mapping", started)
        wait = self.timeout if timeout is None else timeout
        try:
            if method == "query":
                data: Any = self._query(sql, params, wait)
            else:
                data = {"rowcount": self._exec(sql, params, wait)}
        except sqlite3.Error as exc:
            return _fail(f"sqlite: {exc}{self._which_file(exc)}", started)
        except (OverflowError, ValueError, TypeError) as exc:  # e.g. an integer beyond 64 bits
            return _fail(f"sqlite: {exc}", started)
        return Response(data=data, ok=True, error=None, duration_ms=_elapsed_ms(started))

    def close(self) -> None:
        """Nothing to close: every call opens and closes its own connection."""

    def __enter__(self) -> SqliteInterface:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Python methods, for expressions: db.main.query(sql="SELECT ...") --------------------

    def query(self, sql: str, params: Any = None) -> Response:
        return self.call("query", {"sql": sql, "params": params})

    def exec(self, sql: str, params: Any = None) -> Response:
        return self.call("exec", {"sql": sql, "params": params})

    # -- internals ---------------------------------------------------------------------------

    def _which_file(self, exc: sqlite3.Error) -> str:
        """SQLite's "unable to open database file" names no file: say which, and why."""
        if "unable to open database file" not in str(exc):
            return ""
        path = self.path.resolve()
        if not path.parent.is_dir():
            return f" {path} (its folder does not exist)"
        return f" {path}" + ("" if path.exists() else " (it does not exist)")

    def _connect(self, wait: float, *, read_only: bool) -> sqlite3.Connection:
        if read_only:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=wait, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, timeout=wait, isolation_level=None)
        conn.text_factory = lambda b: b.decode("utf-8", errors="backslashreplace")
        return conn

    def _query(self, sql: str, params: Any, wait: float) -> list[dict[str, Any]]:
        conn = self._connect(wait, read_only=True)
        try:
            cur = conn.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            return [{n: _value(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]
        finally:
            conn.close()

    def _exec(self, sql: str, params: Any, wait: float) -> int:
        conn = self._connect(wait, read_only=False)
        try:
            if not params and not _single_statement(sql):
                before = conn.total_changes
                conn.executescript(sql)  # several statements, each committed (autocommit)
                return conn.total_changes - before
            cur = conn.execute(sql, params)
            return max(cur.rowcount, 0)  # -1 for statements that change no rows (DDL)
        finally:
            conn.close()


def _single_statement(sql: str) -> bool:
    """Whether `sql` is at most one statement (a trailing `;` allowed)."""
    text = sql.strip().rstrip(";").strip()
    # complete_statement() is True once the text holds a full statement; if cutting
    # at any `;` already gives one, there is more than one.
    for i, ch in enumerate(text):
        if ch == ";" and sqlite3.complete_statement(text[: i + 1]) and text[i + 1 :].strip():
            return False
    return True


def _value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return value


def _fail(message: str, started: float) -> Response:
    return Response(data=None, ok=False, error=message, duration_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
