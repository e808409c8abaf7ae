"""The HTTP interface against a real HTTP server (http.server in a thread)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from redtest.clients.http import HttpInterface
from redtest.clients.response import Response
from redtest.services.runtime import free_port


class Handler(BaseHTTPRequestHandler):
    """Echoes requests as JSON under /echo; a few fixed behaviours elsewhere."""

    protocol_version = "HTTP/1.1"

    def _reply(self, status: int, body: bytes, content_type: str | None, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = url.path
        if path.startswith("/api/echo") or path.startswith("/echo"):
            body = {
                "method": self.command,
                "path": path,
                "query": parse_qs(url.query),
                "body": raw.decode(),
                "content_type": self.headers.get("Content-Type"),
                "x_token": self.headers.get("X-Token"),
            }
            self._reply(200, json.dumps(body).encode(), "application/json", {"X-Served-By": "echo"})
        elif path == "/text":
            self._reply(200, "plain text – ünïcode".encode(), "text/plain")  # no charset: UTF-8 assumed
        elif path == "/latin1":
            self._reply(200, "café".encode("latin-1"), "text/plain; charset=iso-8859-1")
        elif path == "/problem":
            self._reply(200, b'{"title": "x"}', "application/problem+json")
        elif path == "/untyped-json":
            self._reply(200, b"[1, 2, 3]", None)
        elif path == "/bad-json":
            self._reply(200, b"{not json", "application/json")
        elif path == "/empty":
            self._reply(204, b"", None)
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._reply(code, f"status {code}\nsecond line".encode(), "text/plain")
        elif path == "/json-error":
            self._reply(503, json.dumps({"error": "cache unavailable"}).encode(), "application/json")
        elif path == "/long-error":
            self._reply(500, b"E" * 1000, "text/plain")
        elif path == "/slow":
            time.sleep(1.0)
            self._reply(200, b"late", "text/plain")
        elif path in ("/trickle", "/trickle-until-close"):
            # a body that never ends, one byte every 100 ms: chunked, or (HTTP/1.0 style)
            # without a length, where the end of the body is the end of the connection
            chunked = path == "/trickle"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding" if chunked else "Connection", "chunked" if chunked else "close")
            self.end_headers()
            try:
                for _ in range(600):
                    self.wfile.write(b"1\r\nx\r\n" if chunked else b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the client gave up
            self.close_connection = True
        elif path == "/cut-short":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            self.close_connection = True
        elif path == "/redirect":
            self._reply(302, b"", None, {"Location": "/text"})
        else:
            self._reply(404, b"not found", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def api(server: str) -> Iterator[HttpInterface]:
    with HttpInterface(server, timeout=5.0) as iface:
        yield iface


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_each_method_with_a_json_body(api: HttpInterface, method: str) -> None:
    r = api.call(method, {"path": "/echo/x", "json": {"item": "book", "qty": 2}})
    assert isinstance(r, Response)
    assert r.ok and r.error is None and r.status == 200
    assert r.data["method"] == method.upper()
    assert r.data["path"] == "/echo/x"
    assert json.loads(r.data["body"]) == {"item": "book", "qty": 2}
    assert r.data["content_type"] == "application/json"
    assert r.headers["x-served-by"] == "echo"  # names lower-cased
    assert r.headers["content-type"] == "application/json"
    assert isinstance(r.duration_ms, int) and r.duration_ms >= 0


def test_json_null_is_sent_as_json_null(api: HttpInterface) -> None:
    """`json: null` is a YAML value like any other: the body is `null`, typed JSON
    (requests reads json=None as "no body")."""
    r = api.call("post", {"path": "/echo", "json": None})
    assert r.ok, r.error
    assert (r.data["body"], r.data["content_type"]) == ("null", "application/json")


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_each_method_with_a_text_body(api: HttpInterface, method: str) -> None:
    r = api.call(method, {"path": "echo", "body": "hello ✓"})
    assert r.ok
    assert r.data["method"] == method.upper()
    assert r.data["body"] == "hello ✓"
    assert r.data["content_type"] == "text/plain; charset=utf-8"


def test_request_with_any_method_headers_and_params(api: HttpInterface) -> None:
    r = api.call(
        "request",
        {
            "method": "patch",
            "path": "/echo",
            "body": "<x/>",
            "headers": {"Content-Type": "application/xml", "X-Token": 42},
            "params": {"q": "a b", "n": 3, "flag": True, "tag": ["x", "y"]},
        },
    )
    assert r.ok
    assert r.data["method"] == "PATCH"
    assert r.data["content_type"] == "application/xml"  # an explicit content type wins
    assert r.data["x_token"] == "42"
    assert r.data["query"] == {"q": ["a b"], "n": ["3"], "flag": ["true"], "tag": ["x", "y"]}


def test_python_methods_for_expressions(api: HttpInterface) -> None:
    assert api.get("/echo").data["method"] == "GET"
    assert api.post("/echo", json={"a": 1}).data["body"] == '{"a": 1}'
    assert api.put("/echo", body="b").data["body"] == "b"
    assert api.delete("/echo").data["method"] == "DELETE"
    assert api.request("PATCH", "/echo").data["method"] == "PATCH"


def test_response_data_parsing(api: HttpInterface) -> None:
    assert api.get("/text").data == "plain text – ünïcode"
    assert api.get("/latin1").data == "café"
    assert api.get("/problem").data == {"title": "x"}  # +json is JSON
    assert api.get("/untyped-json").data == [1, 2, 3]  # no content type: JSON if it parses
    bad = api.get("/bad-json")
    assert bad.ok and bad.data == "{not json"  # declared JSON that does not parse: the text
    empty = api.get("/empty")
    assert empty.ok and empty.status == 204 and empty.data is None


def test_ok_is_status_below_400_and_error_quotes_the_body(api: HttpInterface) -> None:
    for code in (200, 201, 302, 399):
        r = api.get(f"/status/{code}")
        assert r.ok and r.error is None and r.status == code
    r = api.get("/status/500")
    assert not r.ok and r.status == 500
    assert r.error == "HTTP 500: status 500 second line"
    assert r.data == "status 500\nsecond line"  # the body is still there for assertions
    r = api.get("/status/404")
    assert not r.ok and r.error.startswith("HTTP 404")
    r = api.get("/json-error")
    assert r.status == 503 and r.data == {"error": "cache unavailable"}
    assert r.error == 'HTTP 503: {"error": "cache unavailable"}'
    long = api.get("/long-error")
    assert len(long.error) < 250 and long.error.endswith("…")


def test_redirects_are_not_followed(api: HttpInterface) -> None:
    r = api.get("/redirect")
    assert r.status == 302 and r.ok
    assert r.headers["location"] == "/text"


def test_base_path_and_absolute_urls(server: str) -> None:
    with HttpInterface(server + "/api/", timeout=5) as api:
        assert api.get("/echo").data["path"] == "/api/echo"
        assert api.get("echo/1").data["path"] == "/api/echo/1"
        assert api.get(server + "/text").data.startswith("plain text")


def test_timeouts(api: HttpInterface) -> None:
    r = api.call("get", {"path": "/slow", "timeout": "200ms"})
    assert not r.ok and r.status is None and r.data is None
    assert r.error.startswith("timed out after 0.2s: GET ")
    assert 150 <= r.duration_ms < 900
    r = api.call("get", {"path": "/slow"}, timeout=0.2)  # the step's timeout
    assert not r.ok and "timed out after 0.2s" in r.error
    with HttpInterface(api.base_url, timeout=0.2) as short:  # the interface default
        assert "timed out" in short.get("/slow").error
    assert api.call("get", {"path": "/slow", "timeout": "3s"}).data == "late"


@pytest.mark.parametrize("path", ["/trickle", "/trickle-until-close"])
def test_a_body_that_trickles_in_ends_at_the_timeout(api: HttpInterface, path: str) -> None:
    """The timeout bounds the whole call, not each read: a stream that sends a byte every
    100 ms used to keep a step waiting forever."""
    started = time.perf_counter()
    r = api.call("get", {"path": path, "timeout": "500ms"})
    elapsed = time.perf_counter() - started
    assert not r.ok and r.status is None and r.data is None
    assert r.error.startswith("timed out after 0.5s: GET ")
    assert 0.4 <= elapsed < 2.0 and 400 <= r.duration_ms < 2000
    assert api.get("/echo").ok  # the interface still works afterwards


def test_a_body_cut_short_says_so(api: HttpInterface) -> None:
    r = api.get("/cut-short")
    assert not r.ok and r.status is None
    assert r.error.startswith(
        "connection closed before the whole body arrived (5 bytes read, 95 more expected): GET "
    )


def test_connection_refused_is_a_failed_response() -> None:
    with HttpInterface(f"http://127.0.0.1:{free_port()}", timeout=2) as api:
        r = api.get("/health")
    assert not r.ok and r.status is None and r.headers == {}
    assert r.error.startswith("connection refused: GET http://127.0.0.1:")


def test_bad_arguments_are_failed_responses(api: HttpInterface) -> None:
    assert "http interfaces have no method 'patch'" in api.call("patch", {"path": "/"}).error
    assert "unknown argument(s) bogus" in api.call("get", {"path": "/", "bogus": 1}).error
    assert "missing argument(s) path" in api.call("get", {}).error
    assert "missing argument(s) method" in api.call("request", {"path": "/"}).error
    assert "either json or body" in api.call("post", {"path": "/", "json": {}, "body": "x"}).error
    assert "use json:" in api.call("post", {"path": "/", "body": {"a": 1}}).error
    r = api.call("get", {"path": "/", "headers": ["x"]})
    assert not r.ok and "headers must be a mapping" in r.error


def test_arguments_the_http_library_rejects_are_failed_responses(api: HttpInterface) -> None:
    # requests / http.client / urllib3 raise plain ValueErrors for these; a step must fail,
    # not crash the run (defence in depth behind validation at load time).
    bad_method = api.call("request", {"method": "GE T", "path": "/echo"})
    assert not bad_method.ok and bad_method.status is None
    assert bad_method.error.startswith("invalid request: ") and "GE T" in bad_method.error
    zero = api.call("get", {"path": "/echo"}, timeout=0)
    assert not zero.ok and "invalid request" in zero.error and "timeout" in zero.error
    with HttpInterface(api.base_url, timeout=0) as no_time:
        assert not no_time.get("/echo").ok
    header = api.call("get", {"path": "/echo", "headers": {"X-Token": "a\nb"}})
    assert not header.ok and header.error.startswith("InvalidHeader: ")  # says what was wrong
    assert api.get("/echo").ok  # the interface still works afterwards


def test_to_dict_carries_status_and_headers(api: HttpInterface) -> None:
    d = api.get("/echo").to_dict()
    assert d["status"] == 200 and d["headers"]["x-served-by"] == "echo"
    json.dumps(d)


def test_ignores_proxy_environment(api: HttpInterface, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    with HttpInterface(api.base_url, timeout=5) as fresh:
        assert fresh.get("/echo").ok
