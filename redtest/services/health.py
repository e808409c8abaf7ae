"""Readiness waits: tcp connect, Redis PING → PONG, HTTP GET; each with a deadline."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from redtest.errors import Location, ServiceError

# Returns a reason when the thing being waited for can never become ready (its
# process exited, its container stopped), so a wait fails at once instead of at
# the deadline. None means "still worth waiting".
AliveCheck = Callable[[], "str | None"]

_PING = b"*1\r\n$4\r\nPING\r\n"


class _Waiter:
    """Retry loop with a deadline, a short backoff and the last thing seen."""

    def __init__(self, timeout: float, alive: AliveCheck | None) -> None:
        self.deadline = time.monotonic() + timeout
        self.alive = alive
        self.last = "nothing yet"
        self._delay = 0.02

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def pause(self) -> bool:
        """Sleep before the next attempt; False once the deadline has passed."""
        left = self.remaining()
        if left <= 0:
            return False
        time.sleep(min(self._delay, left))
        self._delay = min(self._delay * 2, 0.25)
        return True

    def dead_reason(self) -> str | None:
        return self.alive() if self.alive is not None else None


def _fail(
    service: str,
    runtime: str,
    what: str,
    timeout: float,
    last: str,
    location: Location | None,
    dead: str | None = None,
) -> ServiceError:
    if dead is not None:
        return ServiceError(
            f"service '{service}' (runtime {runtime}) stopped before it was ready ({what}): "
            f"{dead}",
            location,
        )
    return ServiceError(
        f"service '{service}' (runtime {runtime}) did not become ready: {what} "
        f"within {timeout:g}s; last seen: {last}",
        location,
    )


def _describe(exc: OSError) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


def _wait(
    probe: Callable[[float], str | None],
    what: str,
    timeout: float,
    *,
    service: str,
    runtime: str,
    location: Location | None,
    alive: AliveCheck | None,
    attempt_cap: float = 1.0,
) -> None:
    """Call `probe(attempt_timeout)` until it returns None (ready); it returns or raises
    (OSError) what it saw otherwise. ServiceError at the deadline or when `alive` says dead."""
    waiter = _Waiter(timeout, alive)
    while True:
        try:
            seen = probe(max(0.05, min(attempt_cap, waiter.remaining())))
            if seen is None:
                return
            waiter.last = seen
        except OSError as exc:
            waiter.last = _describe(exc)
        dead = waiter.dead_reason()
        if dead is not None or not waiter.pause():
            raise _fail(service, runtime, what, timeout, waiter.last, location, dead)


def wait_tcp(
    host: str,
    port: int,
    timeout: float,
    *,
    service: str,
    runtime: str,
    location: Location | None = None,
    alive: AliveCheck | None = None,
) -> None:
    """Return once a TCP connection to host:port succeeds; ServiceError at the deadline."""

    def probe(attempt: float) -> None:
        socket.create_connection((host, port), timeout=attempt).close()

    _wait(probe, f"no TCP connection to {host}:{port}", timeout,
          service=service, runtime=runtime, location=location, alive=alive)


def ping_once(host: str, port: int, timeout: float) -> str:
    """Send one PING and return the first reply line ("+PONG", "-LOADING ..."); OSError on failure."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_PING)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(512)
            if not chunk:
                # docker-proxy accepts, then closes when nothing listens inside yet
                raise ConnectionError(
                    "connection closed without a reply"
                    if not data
                    else f"connection closed after {data!r}"
                )
            data += chunk
            if len(data) > 4096:
                break
        return data.split(b"\r\n", 1)[0].decode("utf-8", "replace")


def wait_redis_ping(
    host: str,
    port: int,
    timeout: float,
    *,
    service: str,
    runtime: str,
    location: Location | None = None,
    alive: AliveCheck | None = None,
) -> None:
    """Return once PING at host:port answers PONG; ServiceError naming the last reply or error."""

    def probe(attempt: float) -> str | None:
        reply = ping_once(host, port, attempt)
        return None if reply == "+PONG" else f"reply {reply!r}"  # e.g. -LOADING while loading

    _wait(probe, f"PING at {host}:{port} was not answered with PONG", timeout,
          service=service, runtime=runtime, location=location, alive=alive)


# Readiness is always a local address: never send it through HTTP_PROXY.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_http(
    url: str,
    timeout: float,
    *,
    service: str,
    runtime: str = "process",
    location: Location | None = None,
    alive: AliveCheck | None = None,
) -> None:
    """Return once GET url answers with a status below 400; ServiceError at the deadline."""
    # Encoded as the http steps' requests encodes it (a space or a non-ASCII letter in the
    # path is percent-encoded); urllib would refuse such a URL with an exception instead.
    from requests.utils import requote_uri

    url = requote_uri(url)

    def probe(attempt: float) -> str | None:
        try:
            with _HTTP.open(url, timeout=attempt) as resp:
                return None if resp.status < 400 else f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            reason = exc.reason
            return _describe(reason) if isinstance(reason, OSError) else str(reason)
        except http.client.HTTPException as exc:
            # Something listens but does not speak HTTP (yet): keep waiting, and say so.
            text = str(exc).strip()[:100]
            return f"an answer that is not HTTP ({type(exc).__name__}: {text!r})"

    _wait(probe, f"GET {url} did not answer with a 2xx/3xx status", timeout,
          service=service, runtime=runtime, location=location, alive=alive, attempt_cap=2.0)
