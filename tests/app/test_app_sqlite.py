"""The sqlite interface: query/exec, params, errors, and a concurrent writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from redtest.clients.sqlite import SqliteInterface


@pytest.fixture
def db(tmp_path: Path) -> SqliteInterface:
    iface = SqliteInterface(tmp_path / "app.db", timeout=2.0)
    r = iface.exec(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, avatar BLOB);"
        "INSERT INTO users (id, name) VALUES (1, 'alice'), (2, 'bob');"
    )
    assert r.ok, r.error
    return iface


def test_query_returns_row_mappings(db: SqliteInterface) -> None:
    r = db.call("query", {"sql": "SELECT id, name FROM users ORDER BY id"})
    assert r.ok and r.error is None and r.status is None
    assert r.data == [{"id": 1, "name": "alice"}, {"id": 2, "name": "bob"}]
    assert isinstance(r.duration_ms, int)
    # the seed's own example
    assert db.query(sql="SELECT name FROM users WHERE id=1").data[0]["name"] == "alice"
    assert db.query("SELECT * FROM users WHERE id = 99").data == []


def test_params_as_list_or_mapping(db: SqliteInterface) -> None:
    assert db.query("SELECT name FROM users WHERE id = ?", [2]).data == [{"name": "bob"}]
    assert db.query("SELECT name FROM users WHERE id = :id", {"id": 1}).data == [{"name": "alice"}]
    assert db.call("query", {"sql": "SELECT count(*) AS n FROM users", "params": []}).data == [{"n": 2}]
    bad = db.call("query", {"sql": "SELECT 1", "params": "x"})
    assert not bad.ok and "params must be a list or a mapping" in bad.error


def test_exec_reports_rowcount_and_commits(db: SqliteInterface, tmp_path: Path) -> None:
    r = db.call("exec", {"sql": "UPDATE users SET name = ? WHERE id > ?", "params": ["x", 0]})
    assert r.ok and r.data == {"rowcount": 2}
    assert db.exec("DELETE FROM users WHERE id = :id", {"id": 2}).data == {"rowcount": 1}
    assert db.exec("CREATE TABLE t (x)").data == {"rowcount": 0}
    # visible to another connection: committed
    conn = sqlite3.connect(tmp_path / "app.db")
    assert conn.execute("SELECT id, name FROM users").fetchall() == [(1, "x")]
    conn.close()


def test_exec_runs_several_statements(db: SqliteInterface) -> None:
    r = db.exec("DELETE FROM users; INSERT INTO users (id, name) VALUES (7, 'carol'); ")
    assert r.ok and r.data == {"rowcount": 3}
    assert db.query("SELECT id, name FROM users").data == [{"id": 7, "name": "carol"}]
    # a ';' inside a string literal is not a statement boundary
    assert db.exec("UPDATE users SET name = 'a;b' WHERE id = 7").data == {"rowcount": 1}
    assert db.query("SELECT name FROM users").data == [{"name": "a;b"}]


def test_errors_are_failed_responses(db: SqliteInterface, tmp_path: Path) -> None:
    r = db.query("SELECT * FROM nope")
    assert not r.ok and r.data is None and r.error == "sqlite: no such table: nope"
    assert "syntax error" in db.exec("UPDAT users").error
    assert "NOT NULL constraint failed" in db.exec("INSERT INTO users (id) VALUES (3)").error
    assert "sqlite interfaces have no method 'select'" in db.call("select", {"sql": "SELECT 1"}).error
    assert "unknown argument(s) args" in db.call("query", {"sql": "SELECT 1", "args": []}).error
    assert "missing argument(s) sql" in db.call("query", {}).error
    assert "sql must be a non-empty string" in db.call("query", {"sql": "  "}).error


def test_query_does_not_create_a_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet.db"
    r = SqliteInterface(missing).query("SELECT 1")
    assert not r.ok and "unable to open database file" in r.error
    assert not missing.exists()


def test_a_file_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    """SQLite's own message names no file; a relative `path` resolved somewhere unexpected
    must be findable from the error."""
    r = SqliteInterface(tmp_path / "not-yet.db").query("SELECT 1")
    assert r.error == f"sqlite: unable to open database file {tmp_path}/not-yet.db (it does not exist)"
    r = SqliteInterface(tmp_path / "no-dir" / "app.db").exec("CREATE TABLE t (a)")
    assert r.error == f"sqlite: unable to open database file {tmp_path}/no-dir/app.db (its folder does not exist)"


def test_blobs_and_odd_text_stay_json_safe(db: SqliteInterface) -> None:
    db.exec("UPDATE users SET avatar = ? WHERE id = 1", [b"\x89PNG\xff"])
    row = db.query("SELECT avatar FROM users WHERE id = 1").data[0]
    assert row == {"avatar": "\\x89PNG\\xff"}


def test_new_connection_per_call_sees_other_writers_and_waits_for_locks(db: SqliteInterface, tmp_path: Path) -> None:
    writer = sqlite3.connect(tmp_path / "app.db", isolation_level=None, check_same_thread=False)
    writer.execute("INSERT INTO users (id, name) VALUES (3, 'dave')")
    assert db.query("SELECT name FROM users WHERE id = 3").data == [{"name": "dave"}]

    # The app holds a write lock briefly; exec waits (busy timeout) instead of failing.
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE users SET name = 'eve' WHERE id = 3")
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    r = db.exec("UPDATE users SET name = 'frank' WHERE id = 3")
    release.join()
    assert r.ok, r.error
    assert time.monotonic() - started >= 0.25
    assert db.query("SELECT name FROM users WHERE id = 3").data == [{"name": "frank"}]

    # A lock held past the timeout is an error, not a hang.
    writer.execute("BEGIN IMMEDIATE")
    try:
        r = db.call("exec", {"sql": "DELETE FROM users"}, timeout=0.2)
        assert not r.ok and "database is locked" in r.error
    finally:
        writer.execute("ROLLBACK")
        writer.close()
