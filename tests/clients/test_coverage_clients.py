"""Client branches no other test reached (round 6, coverage-guided), against real servers:
a real redis-server, a real SQLite file, a real HTTP server on a socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from redtest.clients.http import HttpInterface
from redtest.clients.redis import RedisInterface
from redtest.clients.sqlite import SqliteInterface

# -- redis: reply shapes -------------------------------------------------------------------


def test_an_error_inside_exec_is_a_mapping_with_its_text(client: RedisInterface) -> None:
    assert client.call("set", {"key": "a", "value": "x"}).ok
    assert client.call("command", {"cmd": "MULTI"}).data == "OK"
    assert client.changed_connection is True  # MULTI leaves state on the connection
    assert client.call("incr", {"key": "a"}).data == {"value": "QUEUED"}
    assert client.call("set", {"key": "b", "value": "1"}).data == {"value": "QUEUED"}
    response = client.call("command", {"cmd": "EXEC"})
    assert response.ok
    assert response.data == [{"error": "ERR value is not an integer or out of range"}, "OK"]
    client.close()
    assert client.changed_connection is False


def test_xinfo_groups_is_a_list_of_mappings(client: RedisInterface) -> None:
    assert client.call("command", {"cmd": "XADD", "args": ["st", "1-1", "f", "v"]}).data == "1-1"
    assert client.call("command", {"cmd": "XGROUP", "args": ["CREATE", "st", "g", "0"]}).ok
    groups = client.call("command", {"cmd": "XINFO", "args": ["GROUPS", "st"]}).data
    assert isinstance(groups, list) and len(groups) == 1
    assert groups[0]["name"] == "g" and groups[0]["consumers"] == 0 and groups[0]["pending"] == 0


def test_config_get_written_as_one_cmd_is_a_mapping(client: RedisInterface) -> None:
    assert client.call("command", {"cmd": "CONFIG GET", "args": "maxmemory-policy"}).data == {
        "maxmemory-policy": "noeviction"
    }


def test_command_args_null_sends_no_arguments(client: RedisInterface) -> None:
    assert client.call("command", {"cmd": "PING", "args": None}).data == "PONG"
    assert client.command("PING").data == "PONG"


def test_resp3_maps_after_hello_3_are_mappings(client: RedisInterface) -> None:
    hello = client.call("command", {"cmd": "HELLO", "args": [3]})
    assert hello.ok and hello.data["proto"] == 3
    assert client.call("command", {"cmd": "HSET", "args": ["h", "f", "v"]}).data == 1
    assert client.call("command", {"cmd": "HGETALL", "args": ["h"]}).data == {"f": "v"}
    assert client.call("get", {"key": "nope"}).data == {"value": None}


def test_a_float_argument_is_sent_as_its_shortest_text(client: RedisInterface) -> None:
    assert client.call("set", {"key": "f", "value": 0.1}).ok
    assert client.call("get", {"key": "f"}).data == {"value": "0.1"}


def test_a_non_scalar_argument_is_a_failed_response(client: RedisInterface) -> None:
    response = client.call("set", {"key": "k", "value": {"a": 1}})
    assert (response.ok, response.error) == (False, "argument 'value' must be a string or a number, not a mapping")
    assert repr(client) == f"RedisInterface({client.host}:{client.port})"


# -- sqlite ---------------------------------------------------------------------------------


def test_sqlite_refuses_bad_params_and_huge_integers(tmp_path: Path) -> None:
    with SqliteInterface(tmp_path / "app.db") as db:
        assert db.exec("CREATE TABLE t (n INTEGER)").ok
        bad = db.call("exec", {"sql": "INSERT INTO t VALUES (?)", "params": "1"})
        assert (bad.ok, bad.error) == (False, "exec: params must be a list or a mapping")
        huge = db.exec("INSERT INTO t VALUES (?)", [2**70])
        assert huge.ok is False and huge.error.startswith("sqlite: Python int too large")
        assert db.query("SELECT count(*) AS n FROM t").data == [{"n": 0}]
        assert repr(db) == f"SqliteInterface({tmp_path / 'app.db'})"


# -- http -----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = "café".encode("latin-1") if self.path == "/latin" else "héllo".encode()
        self.send_response(500 if self.path == "/fail" else 200)
        ctype = {
            "/latin": "text/plain; charset=latin-1",
            "/bogus": "text/plain; charset=no-such-charset",
        }.get(self.path, "text/plain")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(0 if self.path == "/fail" else len(body)))
        self.end_headers()
        if self.path != "/fail":
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_charsets_empty_paths_and_empty_error_bodies(http_base: str) -> None:
    with HttpInterface(http_base, timeout=5.0) as api:
        assert api.get("/latin").data == "café"
        assert api.get("/bogus").data == "héllo"  # an unknown charset reads as UTF-8
        assert api.get("").data == "héllo"  # the base URL itself
        failed = api.get("/fail")
        assert (failed.ok, failed.status, failed.error) == (False, 500, "HTTP 500: (empty body)")
        bad = api.call("get", {"path": "/", "params": ["a"]})
        assert (bad.ok, bad.error) == (False, "get: params must be a mapping")
        both = api.call("post", {"path": "/", "json": {"a": 1}, "body": "x"})
        assert (both.ok, both.error) == (False, "post: give either json or body, not both")
        assert repr(api) == f"HttpInterface({http_base})"
