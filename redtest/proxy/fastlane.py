"""The fast lane: while no rule is active, new connections are relayed in C (_relay.c).

A proxy with no rule only forwards bytes and counts replies. Its relay thread does
that without the event loop or the interpreter; a connection leaves it for good (is
"handed over" to a ClientConnection) as soon as it needs more: a command that changes
connection state the lane does not track (MULTI, SUBSCRIBE, CLIENT SETNAME, HELLO with
SETNAME...), a partial or pushed frame,
back-pressure, an end of stream with replies owed, or a rule set switching on
(docs/proxy.md, "Fast lane"). REDTEST_PROXY_FAST_LANE=0 keeps every connection on the
asyncio path.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redtest.errors import UsageError

ENV = "REDTEST_PROXY_FAST_LANE"

Relay: Any
try:
    from redtest.proxy._relay import Relay
except ImportError:  # pragma: no cover - installed without a C compiler
    Relay = None


@dataclass
class Handover:
    """A connection pair leaving the fast lane, with what the relay held for it.

    The new owner writes `to_client` and `to_server` first (already counted), then
    handles `from_server` and `from_client` (not judged yet). `resp3`: the server took a
    HELLO 3. `hello` (2 or 3): the first of the `owed` replies answers a HELLO asking for
    that protocol. `fresh`: it never ran in the lane (the rules switched on while its
    upstream connected), so it is judged as a new connection.
    """

    client: socket.socket
    upstream: socket.socket
    owed: int = 0
    from_client: bytes = b""
    from_server: bytes = b""
    to_client: bytes = b""
    to_server: bytes = b""
    resp3: bool = False
    hello: int = 0
    fresh: bool = False


def enabled() -> bool:
    """Whether the fast lane is on (the default); UsageError for a value other than 0/1."""
    raw = os.environ.get(ENV, "").strip()
    if raw not in ("", "0", "1"):
        raise UsageError(f"{ENV}={raw!r}: expected 1 (on, the default) or 0 (off)")
    # REDTEST_PROXY_PURE_PYTHON (resp.py) measures the proxy without its C paths.
    return raw != "0" and Relay is not None and not os.environ.get("REDTEST_PROXY_PURE_PYTHON")


def _handover(state: tuple[Any, ...]) -> Handover:
    client_fd, upstream_fd, owed, from_client, from_server, to_client, to_server, resp3, hello = (
        state
    )
    return Handover(
        socket.socket(fileno=client_fd),
        socket.socket(fileno=upstream_fd),
        owed,
        from_client,
        from_server,
        to_client,
        to_server,
        resp3=bool(resp3),
        hello=hello,
    )


class FastLane:
    """One proxy's relay thread (created and used on the proxy's loop thread)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        specials: tuple[bytes, ...],
        window_us: int,
        on_handover: Callable[[Handover], None],
    ) -> None:
        self._relay = Relay(specials, window_us)
        self._loop = loop
        self._on_handover = on_handover
        loop.add_reader(self._relay.fileno(), self._take_escaped)

    def add(self, client: socket.socket, upstream: socket.socket) -> None:
        """Relay this pair from now on; raises OSError (sockets untouched) when it cannot."""
        self._relay.add(client.fileno(), upstream.fileno())
        client.detach()  # the relay owns the descriptors now
        upstream.detach()

    def release_all(self) -> list[Handover]:
        """Every pair the lane holds, for the asyncio path (a rule set switches on)."""
        return [_handover(s) for s in self._relay.release_all()]

    def stats(self) -> tuple[int, int, int]:
        """(pairs relayed now, commands relayed so far, pairs handed over on their own)"""
        return self._relay.stats()  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the relay thread and close the connections it still holds."""
        self._loop.remove_reader(self._relay.fileno())
        self._relay.close()

    def _take_escaped(self) -> None:
        for state in self._relay.take_escaped():
            self._on_handover(_handover(state))
