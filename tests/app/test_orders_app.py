"""The example application against a real redis-server: correct behaviour and each deliberate bug.

The faults here are made without redtest's proxy (a closed port, a read-only replica,
CLIENT PAUSE WRITE, a tiny reply-losing relay) so the app's own logic is checked on
its own; the suite in scenarios/ checks the same through the proxy.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from app_support import EXAMPLE_APP, OrdersApp, RedisServer, make_service

from redtest.clients.http import HttpInterface
from redtest.clients.sqlite import SqliteInterface
from redtest.errors import ServiceError
from redtest.services.process import start_process
from redtest.services.runtime import free_port

AppFactory = Callable[..., OrdersApp]


def api(app: OrdersApp) -> HttpInterface:
    return HttpInterface(app.base_url, timeout=10)


def db(app: OrdersApp) -> SqliteInterface:
    return SqliteInterface(app.db_path)


def order_count(app: OrdersApp) -> int:
    return db(app).query("SELECT count(*) AS n FROM orders").data[0]["n"]


def user_name(app: OrdersApp) -> str:
    return db(app).query("SELECT name FROM users WHERE id = 1").data[0]["name"]


def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


NEW_ORDER = {"user_id": 1, "item": "book", "qty": 2}


# -- correct behaviour with a healthy Redis --------------------------------------------------


def test_create_and_read_an_order(orders_app_factory: AppFactory, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    app = orders_app_factory(redis_server.url)
    http = api(app)
    assert http.get("/health").data == {"status": "ok"}
    r = http.post("/orders", json=NEW_ORDER)
    assert r.status == 201, r.error
    assert r.data["id"] == 1 and r.data["item"] == "book" and r.data["qty"] == 2 and r.data["user_id"] == 1
    assert db(app).query("SELECT id, user_id, item, qty FROM orders").data == [{"id": 1, "user_id": 1, "item": "book", "qty": 2}]
    assert json.loads(redis_client.get("order:1")) == r.data
    assert 0 < redis_client.ttl("order:1") <= 300
    got = http.get("/orders/1")
    assert got.status == 200 and got.data == r.data and got.headers["x-cache"] == "hit"
    # a cache miss reads the database and repopulates
    redis_client.delete("order:1")
    got = http.get("/orders/1")
    assert got.data == r.data and got.headers["x-cache"] == "miss"
    assert json.loads(redis_client.get("order:1")) == r.data
    assert http.get("/orders/99").status == 404


def test_order_ids_restart_after_the_seed_empties_the_table(orders_app_factory: AppFactory, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    app = orders_app_factory(redis_server.url)
    http = api(app)
    assert http.post("/orders", json=NEW_ORDER).data["id"] == 1
    assert http.post("/orders", json=NEW_ORDER).data["id"] == 2
    db(app).exec("DELETE FROM orders")
    redis_client.flushall()
    assert http.post("/orders", json=NEW_ORDER).data["id"] == 1  # so scenarios can GET /orders/1


def test_input_validation(orders_app_factory: AppFactory, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    http = api(orders_app_factory(redis_server.url))
    assert http.post("/orders", body="nope").status == 400
    assert http.post("/orders", json={"user_id": 1}).status == 400
    assert http.post("/orders", json={**NEW_ORDER, "qty": 0}).status == 400
    assert http.post("/orders", json={**NEW_ORDER, "user_id": 42}).status == 404
    assert http.put("/users/1", json={"name": ""}).status == 400
    assert http.put("/users/42", json={"name": "x"}).status == 404
    assert http.get("/users/42").status == 404
    assert redis_client.keys("order:*") == []


def test_user_read_through_and_invalidation(orders_app_factory: AppFactory, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    app = orders_app_factory(redis_server.url)
    http = api(app)
    first = http.get("/users/1")
    assert first.data == {"id": 1, "name": "alice", "email": "alice@example.com"}
    assert first.headers["x-cache"] == "miss"
    # cached as a hash with a TTL, like the seed's HSET user:1 ...
    assert redis_client.hgetall("user:1") == {"name": "alice", "email": "alice@example.com"}
    assert 0 < redis_client.ttl("user:1") <= 60
    assert http.get("/users/1").headers["x-cache"] == "hit"
    put = http.put("/users/1", json={"name": "bob"})
    assert put.status == 200 and put.data["name"] == "bob"
    assert user_name(app) == "bob"
    assert redis_client.exists("user:1") == 0  # invalidated
    again = http.get("/users/1")
    assert again.data["name"] == "bob" and again.headers["x-cache"] == "miss"
    assert redis_client.hget("user:1", "name") == "bob"


# -- Redis down --------------------------------------------------------------------------------


def test_redis_down_create_fails_with_503_and_writes_nothing(orders_app_factory: AppFactory) -> None:
    app = orders_app_factory(closed_port_url())
    http = api(app)
    r = http.post("/orders", json=NEW_ORDER)
    assert r.status == 503 and not r.ok
    assert r.data["error"] == "service unavailable"
    assert order_count(app) == 0
    assert "order not created" in app.proc.logs()


def test_redis_down_reads_fall_back_and_updates_still_commit(orders_app_factory: AppFactory) -> None:
    app = orders_app_factory(closed_port_url())
    http = api(app)
    got = http.get("/users/1")
    assert got.status == 200 and got.data["name"] == "alice" and got.headers["x-cache"] == "bypass"
    put = http.put("/users/1", json={"name": "bob"})
    assert put.status == 200
    assert user_name(app) == "bob"
    assert http.get("/users/1").data["name"] == "bob"
    db(app).exec("INSERT INTO orders (id, user_id, item, qty, created_at) VALUES (5, 1, 'pen', 1, 'now')")
    assert http.get("/orders/5").data["item"] == "pen"


def test_bug_no_read_fallback_fails_reads_when_redis_is_down(orders_app_factory: AppFactory) -> None:
    app = orders_app_factory(closed_port_url(), bug="no_read_fallback")
    http = api(app)
    assert http.get("/users/1").status == 500
    db(app).exec("INSERT INTO orders (id, user_id, item, qty, created_at) VALUES (5, 1, 'pen', 1, 'now')")
    assert http.get("/orders/5").status == 500


def test_bug_commit_before_cache_leaves_an_order_when_redis_is_down(orders_app_factory: AppFactory) -> None:
    app = orders_app_factory(closed_port_url(), bug="commit_before_cache")
    r = api(app).post("/orders", json=NEW_ORDER)
    assert r.status == 503
    assert order_count(app) == 1  # the half-done write no_stale_cache looks for


# -- READONLY on writes (a replica) ------------------------------------------------------------


def test_readonly_create_rolls_back(orders_app_factory: AppFactory, readonly_redis: RedisServer) -> None:
    app = orders_app_factory(readonly_redis.url)
    r = api(app).post("/orders", json=NEW_ORDER)
    assert r.status == 503 and "ReadOnlyError" in r.data["detail"]
    assert order_count(app) == 0
    assert readonly_redis.client().keys("order:*") == []


def test_bug_commit_before_cache_under_readonly(orders_app_factory: AppFactory, readonly_redis: RedisServer) -> None:
    app = orders_app_factory(readonly_redis.url, bug="commit_before_cache")
    assert api(app).post("/orders", json=NEW_ORDER).status == 503
    assert order_count(app) == 1


# -- a SET that is applied but whose reply is lost -----------------------------------------------


class LoseReplyRelay:
    """TCP relay to Redis that forwards a SET, then closes the client before the reply arrives."""

    SET = re.compile(rb"^\*\d+\r\n\$3\r\nSET\r\n", re.IGNORECASE)

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.fired = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            lose = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, lose), daemon=True).start()
            threading.Thread(target=self._down, args=(client, upstream, lose), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, lose: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if self.SET.match(data):
                    lose.set()
                upstream.sendall(data)
        except OSError:
            pass
        upstream.close()

    def _down(self, client: socket.socket, upstream: socket.socket, lose: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if lose.is_set():  # the SET ran; its reply never reaches the app
                    self.fired += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        client.close()
        upstream.close()

    def close(self) -> None:
        self._stop = True
        self.listener.close()


@pytest.fixture
def lose_reply(redis_server: RedisServer) -> Iterator[LoseReplyRelay]:
    relay = LoseReplyRelay(redis_server.port)
    yield relay
    relay.close()


def test_lost_set_reply_rolls_back_and_cleans_the_key(orders_app_factory: AppFactory, redis_client: redis.Redis, lose_reply: LoseReplyRelay) -> None:
    app = orders_app_factory(lose_reply.url)
    r = api(app).post("/orders", json=NEW_ORDER)
    assert lose_reply.fired == 1
    assert r.status == 503
    assert order_count(app) == 0
    assert redis_client.keys("order:*") == []  # the SET ran, and the app deleted it again


def test_bug_cache_before_commit_leaves_a_stale_key(orders_app_factory: AppFactory, redis_client: redis.Redis, lose_reply: LoseReplyRelay) -> None:
    app = orders_app_factory(lose_reply.url, bug="cache_before_commit")
    r = api(app).post("/orders", json=NEW_ORDER)
    assert r.status == 503
    assert order_count(app) == 0
    assert redis_client.keys("order:*") == ["order:1"]  # a cached order the DB never got


# -- a cache too slow to answer in time (writes paused past the app's timeout) ---------------------


def _pause_writes(client: redis.Redis, ms: int) -> None:
    client.execute_command("CLIENT", "PAUSE", str(ms), "WRITE")


def test_slow_cache_during_update_keeps_cache_and_db_consistent(orders_app_factory: AppFactory, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    app = orders_app_factory(redis_server.url, redis_timeout="0.5")
    http = api(app)
    assert http.get("/users/1").data["name"] == "alice"
    assert redis_client.hget("user:1", "name") == "alice"  # cached
    _pause_writes(redis_client, 1500)
    put = http.put("/users/1", json={"name": "bob"})
    assert put.status == 200  # the database is the source of truth; the DEL timed out
    assert user_name(app) == "bob"
    # The cache still holds "alice" (the paused DEL was dropped with its connection),
    # so the app reads around it until its background DEL gets through.
    read = http.get("/users/1")
    assert read.data["name"] == "bob" and read.headers["x-cache"] == "bypass"
    deadline = time.monotonic() + 10
    while redis_client.hget("user:1", "name") == "alice" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert redis_client.hget("user:1", "name") in (None, "bob")
    assert "late invalidation of user:1 succeeded" in app.proc.logs()
    assert http.get("/users/1").data["name"] == "bob"
    assert redis_client.hget("user:1", "name") == "bob"


def test_bug_stale_user_fails_the_update_under_a_slow_cache(orders_app_factory: AppFactory, redis_server: RedisServer, redis_client: redis.Redis) -> None:
    app = orders_app_factory(redis_server.url, bug="stale_user", redis_timeout="0.5")
    http = api(app)
    assert http.put("/users/1", json={"name": "bob"}).status == 200  # fine while Redis is healthy
    assert user_name(app) == "bob"
    _pause_writes(redis_client, 1500)
    put = http.put("/users/1", json={"name": "carol"})
    assert put.status == 503
    assert user_name(app) == "bob"  # the update was lost


# -- start-up ------------------------------------------------------------------------------------


def test_unknown_bug_name_stops_the_app_at_start(tmp_path: Path, redis_server: RedisServer) -> None:
    port = free_port()
    service = make_service(tmp_path)
    with pytest.raises(ServiceError) as info:
        start_process(
            service,
            [sys.executable, "app.py"],
            {"PORT": str(port), "DB_PATH": str(tmp_path / "x.db"), "REDIS_URL": redis_server.url, "ORDERS_APP_BUG": "typo"},
            EXAMPLE_APP,
            log_path=tmp_path / "x.log",
        )
    assert "exited with code 1" in str(info.value)
    assert "unknown bug(s) typo" in str(info.value)


def test_all_bugs_at_once(orders_app_factory: AppFactory) -> None:
    app = orders_app_factory(closed_port_url(), bug="all")
    assert "bugs: cache_before_commit, commit_before_cache, no_read_fallback, stale_user" in app.proc.logs()
