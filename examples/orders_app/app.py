"""orders_app: a small shop backend that keeps users and orders in SQLite and caches reads in Redis.

It is the application under test of redtest's data-integrity suite. Configuration
comes from the environment:

  PORT            port to listen on (127.0.0.1)             default 8080
  DB_PATH         SQLite file; schema created on start       default orders.db
  REDIS_URL       the cache (redtest points it at its proxy) default redis://127.0.0.1:6379/0
  REDIS_TIMEOUT   socket timeout for cache calls, seconds    default 2
  ORDERS_APP_BUG  comma-separated deliberate bugs (see README), or "all"

The rules it keeps (what the fault scenarios check):

- Creating an order is all or nothing: the row is inserted in an open transaction,
  the order is cached, then the transaction commits. If Redis fails anywhere on that
  path the insert is rolled back, the `order:<id>` key is deleted (a SET whose reply
  was lost may have been applied) and the client gets 503 — no order row, no key.
- Updating a user commits the database first (the source of truth), then deletes
  `user:<id>` from the cache; when Redis fails the update still answers 200, reads of
  that user bypass the cache while a background DEL retries, and the cache ends up
  holding the new value or nothing. Reads repopulate the cache only after a clean
  miss, never right after a cache error, so a late write cannot put an old value back.
- Reads survive a broken cache: a Redis error on the read path falls back to SQLite.

Redis is used with short socket timeouts and no retries, so faults show as they are.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

import redis
from flask import Flask, g, jsonify, request
from redis.backoff import NoBackoff
from redis.retry import Retry

ORDER_TTL = 300  # seconds a cached order lives
USER_TTL = 60  # seconds a cached user lives: bounds staleness if an invalidation is lost
INVALIDATION_RETRIES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between background DEL attempts

KNOWN_BUGS = {"commit_before_cache", "cache_before_commit", "stale_user", "no_read_fallback"}

log = logging.getLogger("orders_app")


def _bugs(spec: str) -> set[str]:
    names = {b.strip() for b in spec.split(",") if b.strip()}
    if "all" in names:
        return set(KNOWN_BUGS)
    unknown = names - KNOWN_BUGS
    if unknown:
        raise SystemExit(f"ORDERS_APP_BUG: unknown bug(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN_BUGS))}")
    return names


class ServiceUnavailable(Exception):
    """The cache failed on a write path; the request is answered with 503."""


def create_app(db_path: str, redis_url: str, *, bugs: set[str] | None = None, redis_timeout: float = 2.0) -> Flask:
    app = Flask("orders_app")
    bugs = bugs or set()
    cache = redis.Redis.from_url(
        redis_url,
        socket_timeout=redis_timeout,
        socket_connect_timeout=redis_timeout,
        retry=Retry(NoBackoff(), 0),  # recent redis-py retries by default; faults must show
        retry_on_timeout=False,
        decode_responses=True,
        client_name="orders-app",  # lets fault rules target this app with `client:`
    )

    def db() -> sqlite3.Connection:
        if "db" not in g:
            conn = sqlite3.connect(db_path, timeout=5, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            g.db = conn
        return g.db

    @app.teardown_appcontext
    def _close_db(_exc: BaseException | None) -> None:
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    @app.errorhandler(ServiceUnavailable)
    def _unavailable(exc: ServiceUnavailable) -> Any:
        return jsonify(error="service unavailable", detail=str(exc)), 503

    def forget(key: str) -> bool:
        """Best-effort DEL: the key may hold something the DB does not (any more)."""
        try:
            cache.delete(key)
            return True
        except redis.RedisError as exc:
            log.warning("could not delete %s from the cache: %s", key, exc)
            return False

    # Keys whose invalidation failed: the cache may still hold an old value, so reads
    # skip the cache for them until a background DEL gets through.
    dirty: set[str] = set()
    dirty_lock = threading.Lock()

    def invalidate(key: str) -> None:
        if forget(key):
            return
        with dirty_lock:
            if key in dirty:
                return  # a retry loop is already running for it
            dirty.add(key)

        def retry() -> None:
            for pause in INVALIDATION_RETRIES:
                time.sleep(pause)
                if forget(key):
                    log.info("late invalidation of %s succeeded", key)
                    break
            else:
                log.error("gave up invalidating %s; it expires within %ss", key, USER_TTL)
            with dirty_lock:
                dirty.discard(key)

        threading.Thread(target=retry, name=f"invalidate {key}", daemon=True).start()

    # -- health -------------------------------------------------------------------------

    @app.get("/health")
    def health() -> Any:
        db().execute("SELECT 1").fetchone()
        return jsonify(status="ok")

    # -- orders ---------------------------------------------------------------------------

    @app.post("/orders")
    def create_order() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="expected a JSON object"), 400
        user_id, item, qty = body.get("user_id"), body.get("item"), body.get("qty", 1)
        if not isinstance(user_id, int) or not isinstance(item, str) or not item:
            return jsonify(error="user_id (integer) and item (string) are required"), 400
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            return jsonify(error="qty must be a positive integer"), 400
        conn = db()
        if conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
            return jsonify(error=f"no user {user_id}"), 404
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")

        if "commit_before_cache" in bugs:
            # BUG: the row is committed before the cache is written; a Redis failure
            # then answers 5xx for an order that exists (the client retries: duplicate).
            cur = conn.execute(
                "INSERT INTO orders (user_id, item, qty, created_at) VALUES (?, ?, ?, ?)",
                (user_id, item, qty, created),
            )
            order = _order(cur.lastrowid, user_id, item, qty, created)
            try:
                cache.set(f"order:{order['id']}", json.dumps(order), ex=ORDER_TTL)
            except redis.RedisError as exc:
                raise ServiceUnavailable(f"cache write failed: {_why(exc)}") from exc
            return jsonify(order), 201

        conn.execute("BEGIN IMMEDIATE")
        key = None
        try:
            cur = conn.execute(
                "INSERT INTO orders (user_id, item, qty, created_at) VALUES (?, ?, ?, ?)",
                (user_id, item, qty, created),
            )
            order = _order(cur.lastrowid, user_id, item, qty, created)
            key = f"order:{order['id']}"
            cache.set(key, json.dumps(order), ex=ORDER_TTL)
            conn.execute("COMMIT")
        except redis.RedisError as exc:
            conn.execute("ROLLBACK")
            if "cache_before_commit" not in bugs:
                # A SET whose reply was lost may still have been applied.
                forget(key)
            # (BUG cache_before_commit: no cleanup — a cached order the DB never got.)
            log.warning("order not created, cache write failed: %s", exc)
            raise ServiceUnavailable(f"cache write failed: {_why(exc)}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if key is not None and "cache_before_commit" not in bugs:
                forget(key)
            raise
        log.info("order %s created for user %s", order["id"], user_id)
        return jsonify(order), 201

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int) -> Any:
        key = f"order:{order_id}"
        cache_ok = True
        try:
            cached = cache.get(key)
        except redis.RedisError as exc:
            if "no_read_fallback" in bugs:
                # BUG: a cache error fails the read although the DB has the answer.
                return jsonify(error=f"cache error: {exc}"), 500
            log.warning("cache read of %s failed, reading the database: %s", key, exc)
            cached, cache_ok = None, False
        if cached is not None:
            return jsonify(json.loads(cached)), 200, {"X-Cache": "hit"}
        row = db().execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            return jsonify(error=f"no order {order_id}"), 404
        order = _order(row["id"], row["user_id"], row["item"], row["qty"], row["created_at"])
        if cache_ok:
            try:
                cache.set(key, json.dumps(order), ex=ORDER_TTL)
            except redis.RedisError as exc:
                log.warning("could not cache %s: %s", key, exc)
        return jsonify(order), 200, {"X-Cache": "miss" if cache_ok else "bypass"}

    # -- users ----------------------------------------------------------------------------

    @app.get("/users/<int:user_id>")
    def get_user(user_id: int) -> Any:
        key = f"user:{user_id}"
        with dirty_lock:
            cache_ok = key not in dirty
        if not cache_ok and forget(key):
            # The pending invalidation got through now: the cache is usable again.
            with dirty_lock:
                dirty.discard(key)
            cache_ok = True
        try:
            # A hash, as in the seed: HSET user:1 name alice ...; skipped while the key is dirty.
            cached = cache.hgetall(key) if cache_ok else {}
        except redis.RedisError as exc:
            if "no_read_fallback" in bugs:
                return jsonify(error=f"cache error: {exc}"), 500
            log.warning("cache read of %s failed, reading the database: %s", key, exc)
            cached, cache_ok = {}, False
        if cached:
            return jsonify(_user(user_id, cached["name"], cached.get("email", ""))), 200, {"X-Cache": "hit"}
        row = db().execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            return jsonify(error=f"no user {user_id}"), 404
        user = _user(row["id"], row["name"], row["email"])
        # Repopulate only after a clean miss: right after an error (say a timeout) the
        # SET could land late, after a concurrent update's DEL, and resurrect old data.
        if cache_ok:
            try:
                _cache_user(cache, user)
            except redis.RedisError as exc:
                log.warning("could not cache %s: %s", key, exc)
        return jsonify(user), 200, {"X-Cache": "miss" if cache_ok else "bypass"}

    @app.put("/users/<int:user_id>")
    def update_user(user_id: int) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="expected a JSON object"), 400
        conn = db()
        row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            return jsonify(error=f"no user {user_id}"), 404
        name = body.get("name", row["name"])
        email = body.get("email", row["email"])
        if not isinstance(name, str) or not name or not isinstance(email, str):
            return jsonify(error="name must be a non-empty string, email a string"), 400
        user = _user(user_id, name, email)
        key = f"user:{user_id}"

        if "stale_user" in bugs:
            # BUG: the cache is written before the database, and a cache failure aborts
            # the update: a timed-out SET still lands later, so the cache says "bob"
            # while the database says "alice".
            try:
                _cache_user(cache, user)
            except redis.RedisError as exc:
                raise ServiceUnavailable(f"cache write failed: {_why(exc)}") from exc
            conn.execute("UPDATE users SET name = ?, email = ? WHERE id = ?", (name, email, user_id))
            return jsonify(user), 200

        # The database is the source of truth: commit first (autocommit statement)...
        conn.execute("UPDATE users SET name = ?, email = ? WHERE id = ?", (name, email, user_id))
        # ...then invalidate. If the DEL fails the update stands (200): reads bypass the
        # cache for this key while a background DEL retries, and reads never repopulate
        # right after a cache error, so the cache ends up fresh or empty. (If Redis stays
        # unwritable past the retries, the old hash lives at most USER_TTL.)
        invalidate(key)
        log.info("user %s updated", user_id)
        return jsonify(user), 200

    return app


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"  # redis-py strips the prefix (READONLY) from the text


def _order(order_id: Any, user_id: int, item: str, qty: int, created: str) -> dict[str, Any]:
    return {"id": order_id, "user_id": user_id, "item": item, "qty": qty, "created_at": created}


def _user(user_id: int, name: str, email: str | None) -> dict[str, Any]:
    return {"id": int(user_id), "name": name, "email": email or ""}


def _cache_user(cache: redis.Redis, user: dict[str, Any]) -> None:
    """Replace `user:<id>` atomically (MULTI/EXEC): no half-written hash, always a TTL."""
    key = f"user:{user['id']}"
    pipe = cache.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping={"name": user["name"], "email": user["email"]})
    pipe.expire(key, USER_TTL)
    pipe.execute()


SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT ''
);
-- No AUTOINCREMENT: after `DELETE FROM orders` (a suite's seed) ids start at 1 again,
-- so scenarios can address the order they create as /orders/1.
CREATE TABLE IF NOT EXISTS orders (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    item       TEXT NOT NULL,
    qty        INTEGER NOT NULL CHECK (qty > 0),
    created_at TEXT NOT NULL
);
INSERT OR IGNORE INTO users (id, name, email) VALUES (1, 'alice', 'alice@example.com');
"""


def init_db(db_path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(db_path)), exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=5)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # readers (redtest's checks) never block the app
        conn.executescript(SCHEMA)
        conn.commit()
    finally:
        conn.close()


class _PlainText(logging.Filter):
    """Werkzeug colours its request log even into a file; redtest shows this log in reports."""

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._ANSI.sub("", record.getMessage()), None
        return True


def main() -> None:
    logging.getLogger("werkzeug").addFilter(_PlainText())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    port = int(os.environ.get("PORT", "8080"))
    db_path = os.environ.get("DB_PATH", "orders.db")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    bugs = _bugs(os.environ.get("ORDERS_APP_BUG", ""))
    init_db(db_path)
    app = create_app(db_path, redis_url, bugs=bugs, redis_timeout=float(os.environ.get("REDIS_TIMEOUT", "2")))
    log.info("orders_app on 127.0.0.1:%d, db %s, cache %s, bugs: %s", port, db_path, redis_url, ", ".join(sorted(bugs)) or "none")
    app.run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":
    main()
