"""The HTTP interface (SPEC §8): `get`/`post`/`put`/`delete`/`request` → Response.

Decisions (user-facing side in docs/application.md):

- `ok` is True when a response arrived with a status below 400. A plain scenario
  whose app answers 500 therefore fails; fault scenarios record failed steps and
  let their `expect` judge (`r.status >= 500` works whatever `ok` says).
  `error` is `HTTP 500: <first line of the body>`, or the transport failure
  (`connection refused`, `timed out after 5s`) with `status` None.
- `data` is the parsed JSON when the response says it is JSON (or says nothing
  and parses as JSON), else the text; an empty body is None.
- Header names are lower-cased, so `r.headers["content-type"]` works whatever
  the server wrote (expressions see a plain dict, not a case-insensitive one).
- Redirects are not followed: `r.status == 302` and `r.headers["location"]` are
  assertable. No retries; proxy settings from the environment are ignored (the
  app under test is local, a corporate proxy must not stand in between).
- A `timeout` argument is a duration (`2s`, `500ms`, a bare number = milliseconds);
  without one the interface's step timeout applies. It bounds the whole call, body
  included (requests' own timeout bounds each read, which a trickling body never hits).
"""

from __future__ import annotations

import contextlib
import heapq
import json as jsonlib
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from redtest.clients.response import Response
from redtest.durations import parse_duration
from redtest.spec.methods import check_arguments

ERROR_BODY_CHARS = 200  # how much of an error response's body goes into `.error`
_INCOMPLETE = re.compile(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)")


class HttpInterface:
    """An HTTP interface (`app.api`): `call(method, args)` and one Python method per HTTP method."""

    protocol = "http"

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # no HTTP(S)_PROXY / .netrc for a local app
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpInterface({self.base_url})"

    def call(
        self, method: str, args: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> Response:
        """Run one SPEC §8 method (`get`, `post`, `put`, `delete`, `request`) and describe the outcome."""
        try:
            verb, url, kwargs = self._prepare(method, dict(args or {}), timeout)
        except (ValueError, TypeError) as exc:
            return Response(data=None, ok=False, error=str(exc), duration_ms=0)
        started = time.perf_counter()
        try:
            with self._lock:
                resp = self._session.request(verb, url, allow_redirects=False, stream=True, **kwargs)
                # the whole body inside the timing, and inside the step's timeout
                content = _read_body(resp, kwargs["timeout"] - (time.perf_counter() - started))
        except requests.RequestException as exc:
            return Response(
                None, False, f"{_describe(exc, kwargs['timeout'])}: {verb} {url}", _elapsed_ms(started)
            )
        except Exception as exc:  # noqa: BLE001
            # requests, urllib3 and http.client reject some arguments with plain ValueErrors
            # (a method with a space, a zero timeout...): a failed step, never a crashed run.
            return Response(
                None, False, f"invalid request: {_first_line(exc)}: {verb} {url}", _elapsed_ms(started)
            )
        duration = _elapsed_ms(started)
        headers = {k.lower(): v for k, v in resp.headers.items()}
        data = _body(content, headers.get("content-type"))
        ok = resp.status_code < 400
        error = None if ok else f"HTTP {resp.status_code}: {_short(content, headers)}"
        return Response(data, ok, error, duration, status=resp.status_code, headers=headers)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> HttpInterface:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Python methods, for expressions: app.api.get(path="/orders/1") ---------------------

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.call("get", {"path": path, **kwargs})

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.call("post", {"path": path, **kwargs})

    def put(self, path: str, **kwargs: Any) -> Response:
        return self.call("put", {"path": path, **kwargs})

    def delete(self, path: str, **kwargs: Any) -> Response:
        return self.call("delete", {"path": path, **kwargs})

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        return self.call("request", {"method": method, "path": path, **kwargs})

    # -- internals ---------------------------------------------------------------------------

    def _prepare(
        self, method: str, args: dict[str, Any], timeout: float | None
    ) -> tuple[str, str, dict[str, Any]]:
        check_arguments("http", method, args)
        verb = str(args["method"]).upper() if method == "request" else method.upper()
        kwargs: dict[str, Any] = {}
        if "json" in args and args.get("body") is not None:
            raise ValueError(f"{method}: give either json or body, not both")
        if "json" in args:
            # `json: null` sends JSON null (requests would read json=None as "no body")
            kwargs["data"] = jsonlib.dumps(args["json"]).encode()
        body = args.get("body")
        if body is not None:
            if isinstance(body, (dict, list)):
                raise ValueError(f"{method}: body must be text; use json: for structured data")
            kwargs["data"] = body if isinstance(body, bytes) else str(body).encode()
        headers = args.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise ValueError(f"{method}: headers must be a mapping")
        kwargs["headers"] = {str(k): str(v) for k, v in headers.items()}
        if "json" in args and not any(k.lower() == "content-type" for k in kwargs["headers"]):
            kwargs["headers"]["Content-Type"] = "application/json"
        if body is not None and not any(k.lower() == "content-type" for k in kwargs["headers"]):
            kwargs["headers"]["Content-Type"] = "text/plain; charset=utf-8"
        params = args.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError(f"{method}: params must be a mapping")
        kwargs["params"] = {str(k): _param(v) for k, v in params.items()}
        if args.get("timeout") is not None:
            kwargs["timeout"] = parse_duration(args["timeout"])
        else:
            kwargs["timeout"] = timeout if timeout is not None else self.timeout
        return verb, self._url(str(args["path"])), kwargs

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if not path:
            return self.base_url
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def _read_body(resp: requests.Response, remaining: float) -> bytes:
    """The whole body, arriving within `remaining` seconds, else requests.Timeout.

    requests' timeout bounds each read, not the total: a body that trickles in (an
    event stream, an app writing a line a second) would keep a step waiting forever.
    At the deadline the watchdog shuts the socket down, which ends the blocked read.
    """
    sock = _socket_of(resp)
    watch = _WATCHDOG.watch(sock, time.monotonic() + max(remaining, 0.0)) if sock is not None else None
    try:
        content = resp.content
    except requests.RequestException:
        if watch is not None and _WATCHDOG.unwatch(watch):
            raise requests.Timeout() from None
        raise
    if watch is not None and _WATCHDOG.unwatch(watch):
        resp.close()  # a body without a length ends at EOF: cut short, not complete
        raise requests.Timeout()
    return content


@dataclass(order=True)
class _Watch:
    deadline: float
    sock: socket.socket = field(compare=False)
    expired: bool = field(default=False, compare=False)
    done: bool = field(default=False, compare=False)


class _Watchdog:
    """One thread for every HTTP step's deadline: a thread per call (threading.Timer)
    made each step about 150 µs slower. Finished watches stay in the heap until their
    deadline passes (removing them would cost more than skipping them then)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Watch] = []
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> _Watch:
        entry = _Watch(deadline, sock)
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="redtest-http-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()  # earlier than what the thread waits for
        return entry

    def unwatch(self, entry: _Watch) -> bool:
        """Stop watching; whether the deadline had passed (the socket was shut down)."""
        with self._cond:
            entry.done = True
            return entry.expired

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                first = self._heap[0]
                left = first.deadline - time.monotonic()
                if not first.done and left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                if not first.done:
                    first.expired = True
                    with contextlib.suppress(OSError):
                        first.sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket the body is read from: http.client's file over it, else urllib3's connection
    (the file is the one that stays when the response closes its connection at the end)."""
    fp = getattr(getattr(resp.raw, "_fp", None), "fp", None)
    for sock in (
        getattr(getattr(fp, "raw", None), "_sock", None),
        getattr(getattr(resp.raw, "_connection", None), "sock", None),
    ):
        if isinstance(sock, socket.socket):
            return sock
    return None


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return [_param(v) for v in value]
    return str(value)


def _charset(content_type: str | None) -> str:
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"  # not requests' ISO-8859-1 default for text/*: apps write UTF-8


def _is_json(content_type: str | None) -> bool:
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def _text(content: bytes, content_type: str | None) -> str:
    try:
        return content.decode(_charset(content_type), errors="replace")
    except LookupError:  # an unknown charset name
        return content.decode("utf-8", errors="replace")


def _body(content: bytes, content_type: str | None) -> Any:
    if not content:
        return None
    text = _text(content, content_type)
    if _is_json(content_type) or content_type is None:
        try:
            return jsonlib.loads(text)
        except ValueError:
            pass
    return text


def _short(content: bytes, headers: dict[str, str]) -> str:
    text = " ".join(_text(content, headers.get("content-type")).split())
    if not text:
        return "(empty body)"
    return text if len(text) <= ERROR_BODY_CHARS else text[: ERROR_BODY_CHARS - 1] + "…"


def _describe(exc: requests.RequestException, timeout: float) -> str:
    """A transport failure as a short phrase (requests' own messages run to several lines)."""
    if isinstance(exc, (requests.Timeout, socket.timeout)):
        return f"timed out after {timeout:g}s"
    cause: BaseException | None = exc
    seen = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        inner = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = inner or cause.__cause__ or cause.__context__ or getattr(cause, "reason", None)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        # the app closed the connection (or broke the chunking) in the middle of the body
        counts = _INCOMPLETE.search(str(exc))
        return "connection closed before the whole body arrived" + (
            f" ({counts.group(1)} bytes read, {counts.group(2)} more expected)" if counts else ""
        )
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "RemoteDisconnected" in text or "Connection aborted" in text:
            return "connection closed without a response"
        return "connection failed"
    detail = _first_line(exc)  # InvalidURL, InvalidHeader...: say what was wrong
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
