"""FaultProxy: a RESP-aware TCP proxy on its own event loop thread (see docs/proxy.md).

Per client connection there is one upstream connection. Client bytes are framed into
commands (hiredis, plus resp.parse_one for inline commands); each command is checked
against the current RuleSet and then forwarded, answered by the proxy, delayed or
dropped. Server bytes are forwarded untouched; a ReplyScanner finds reply boundaries so
that injected replies take their place in a per-connection FIFO, in command order.
While the rule set is empty, new connections are relayed by a C thread instead (the
fast lane, fastlane.py) until they need the above.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import hiredis

from redtest.errors import ProxyError, UsageError
from redtest.proxy import busypoll, fastlane
from redtest.proxy.conn import STATEFUL_COMMANDS, ClientConnection
from redtest.proxy.fastlane import FastLane, Handover
from redtest.proxy.keys import NEED_GETKEYS, KeyTable, fetch_key_table
from redtest.proxy.resp import encode_command
from redtest.proxy.rules import RuleSet
from redtest.spec.model import Rule

try:  # uvloop is markedly faster for many small packets; asyncio is the fallback
    import uvloop

    _new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - platform without uvloop
    _new_loop = asyncio.new_event_loop

__all__ = ["FaultProxy"]


def _client_left(conn: ClientConnection) -> bool:
    """Whether the client already closed its end (end of stream waiting to be read).

    Called when `down` switches on: a connection whose client left a moment ago, before
    the loop processed its end, is not one that `down` cut, and must not count as a hit.
    """
    transport = conn.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        # a duplicate of the descriptor: peeking must not disturb the transport's socket
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
            return dup.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, nothing to read
    except OSError:
        return True  # reset by the client


class FaultProxy:
    """A fault-injecting proxy in front of one Redis interface."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        *,
        name: str = "",
        on_hit: Callable[[int, Rule], None] | None = None,
        upstream_unix: str | None = None,
        on_upstream_error: Callable[[OSError], None] | None = None,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        # A Unix socket to the same server, when redtest started it: cheaper than TCP loopback.
        self.upstream_unix = upstream_unix
        self.listen = (listen_host, listen_port)
        self.name = name or f"{upstream_host}:{upstream_port}"
        self.on_hit = on_hit
        # Called on the loop thread when a client's server connection cannot be opened
        # (the client's connection is then closed): `redtest proxy` says why.
        self.on_upstream_error = on_upstream_error
        self.address: tuple[str, int] = ("", 0)
        self.rules = RuleSet([])  # read by connections on the loop thread
        self.conns: set[ClientConnection] = set()
        self.key_table: KeyTable | None = None  # fetched on the first key rule
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listeners: list[socket.socket] = []
        self._side: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._side_lock: asyncio.Lock | None = None
        self.busy: busypoll.BusyPoll | None = None  # set by start(); read by connections
        self.fast: FastLane | None = None  # relays new connections while no rule is active

    # -- lifecycle (runner thread) -------------------------------------------------

    def start(self) -> None:
        """Start the event loop thread and listen; raises ProxyError when the port cannot be bound."""
        if self._thread is not None:
            return
        loop = _new_loop()
        try:
            self.busy = busypoll.for_loop(loop)
            lane = fastlane.enabled()
        except UsageError:
            loop.close()
            raise
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"redtest-proxy {self.name}", daemon=True
        )
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(lane), loop)
        try:
            fut.result(timeout=10)
        except Exception as e:
            self.stop()
            raise ProxyError(
                f"proxy for {self.name} cannot listen on {self.listen[0]}:{self.listen[1]}: {e}"
            ) from e

    async def _listen(self, lane: bool) -> None:
        loop = asyncio.get_running_loop()
        self._side_lock = asyncio.Lock()
        self._listeners = _bind(*self.listen)
        for sock in self._listeners:
            loop.add_reader(sock.fileno(), self._accept, sock)
        self.address = self._listeners[0].getsockname()[:2]
        if lane:  # the relay thread busy-polls after traffic as the loop does
            self.fast = FastLane(loop, STATEFUL_COMMANDS, busypoll.window_us(), self._take_over)

    def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(64):  # then let other events in
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors, say: listen again in a moment
                loop.remove_reader(listener.fileno())
                loop.call_later(1.0, self._relisten, listener)
                return
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.fast is not None and not self.rules:
                loop.create_task(self._start_in_lane(sock))
            else:
                loop.create_task(self._wrap(ClientConnection(self), sock))

    def _relisten(self, listener: socket.socket) -> None:
        if listener in self._listeners:
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)

    async def _start_in_lane(self, sock: socket.socket) -> None:
        """Connect the upstream side, then relay the pair in C, unless rules came on meanwhile."""
        try:
            upstream = await self._upstream_socket()
        except OSError as e:
            sock.close()  # as a proxied connection whose server cannot be reached
            self.upstream_failed(e)
            return
        if not self._listeners:  # the proxy stopped meanwhile
            sock.close()
            upstream.close()
            return
        if self.fast is not None and not self.rules:
            try:
                self.fast.add(sock, upstream)
                return
            except OSError:
                pass
        self._take_over(Handover(sock, upstream, fresh=True))

    def _take_over(self, handover: Handover) -> None:
        """A connection leaves the fast lane: a ClientConnection carries on with it."""
        conn = ClientConnection(self, handover)
        if not handover.fresh:
            self.conns.add(conn)  # `down` and stop reach it before its transport exists
        asyncio.get_running_loop().create_task(self._wrap(conn, handover.client))

    async def _wrap(self, conn: ClientConnection, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: conn, sock)
        except OSError:
            sock.close()
            conn.abort()
            self.conns.discard(conn)
            if conn.handover is not None:
                conn.handover.upstream.close()

    async def _upstream_socket(self) -> socket.socket:
        """A connected, non-blocking socket to the server: the Unix socket when given, else
        the first address of the upstream host that accepts."""
        loop = asyncio.get_running_loop()
        if self.upstream_unix:
            targets: list[tuple[Any, ...]] = [
                (socket.AF_UNIX, socket.SOCK_STREAM, 0, "", self.upstream_unix)
            ]
        else:
            targets = list(await loop.getaddrinfo(*self.upstream, type=socket.SOCK_STREAM))
        error: OSError = OSError(f"cannot resolve {self.upstream[0]}")
        for family, kind, proto, _, address in targets:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
            except OSError as e:
                sock.close()
                error = e
                continue
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise error

    def upstream_failed(self, error: OSError) -> None:
        """A client connection was closed because the server could not be reached."""
        if self.on_upstream_error is not None:
            self.on_upstream_error(error)

    def fast_lane_stats(self) -> tuple[int, int, int] | None:
        """(pairs relayed in C now, commands relayed so far, hand-overs) or None when off."""
        return self.fast.stats() if self.fast is not None else None

    def stop(self) -> None:
        """Close the listener and every connection, then stop and join the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not loop.is_running():
            loop.close()
        self._loop = None
        self._thread = None

    async def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners = []
        if self.fast is not None:
            self.fast.close()
            self.fast = None
        for conn in list(self.conns):
            conn.abort()
        if self._side is not None:
            self._side[1].close()
            self._side = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def open_upstream(
        self, factory: Callable[[], asyncio.Protocol], sock: socket.socket | None = None
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        """A transport on `sock`, already connected, or on a new upstream connection
        (loop thread)."""
        loop = asyncio.get_running_loop()
        own = sock is None
        if sock is None:
            sock = await self._upstream_socket()
        try:
            if sock.family == socket.AF_UNIX:
                return await loop.create_unix_connection(factory, sock=sock)
            return await loop.create_connection(factory, sock=sock)
        except OSError:
            if own:
                sock.close()
            raise

    # -- rules ---------------------------------------------------------------------

    def set_rules(
        self, rules: Sequence[Rule], *, rng_seed: int | None = None, drop_held: bool = False
    ) -> None:
        """Swap the rule set atomically; returns once the loop has applied it. `[]` switches
        faults off. With `drop_held` (the runner, between tests), connections with commands
        the proxy still holds (behind a delay, a key lookup or a name's answer) are closed
        and those commands dropped: none of them may reach the server after the next test's
        reset."""
        ruleset = RuleSet(rules, rng_seed=rng_seed, on_hit=self.on_hit)
        if ruleset.needs_keys and self.key_table is None:
            self.key_table = fetch_key_table(
                *self.upstream, unix=self.upstream_unix
            )  # once per proxy
        loop = self._loop
        if loop is None:
            raise ProxyError(f"proxy for {self.name} is not running")
        if threading.current_thread() is self._thread:
            self._apply(ruleset, drop_held)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def apply() -> None:
            try:
                self._apply(ruleset, drop_held)
                done.set_result(None)
            except BaseException as e:  # handed to the caller's thread
                done.set_exception(e)

        loop.call_soon_threadsafe(apply)
        done.result(timeout=10)

    def _apply(self, ruleset: RuleSet, drop_held: bool = False) -> None:
        if drop_held:
            for conn in list(self.conns):
                if conn.suspended:
                    conn.abort()
        ruleset.restart_clock()
        if ruleset and self.fast is not None:  # rules need every command judged
            for handover in self.fast.release_all():
                self._take_over(handover)
        self.rules = ruleset
        if ruleset.down_rules:  # `down`: open connections go at once
            for conn in list(self.conns):
                if _client_left(conn):  # closed by its client, not yet seen: not a hit
                    conn.abort()
                elif ruleset.connection_refused(conn.name, switching_on=True) is not None:
                    conn.abort()

    def hit_counts(self) -> list[int]:
        """How often each rule of the current set fired, in order."""
        return self.rules.hit_counts()

    # -- key lookup (loop thread) --------------------------------------------------

    def keys_of(self, argv: list[bytes]) -> Any:
        """Key arguments of a command, or NEED_GETKEYS when the server must be asked."""
        table = self.key_table
        if table is None:
            return NEED_GETKEYS
        return table.keys(argv)

    async def getkeys(self, argv: list[bytes]) -> list[bytes]:
        """`COMMAND GETKEYS` on a side connection shared by the proxy; [] when the server says none."""
        assert self._side_lock is not None
        async with self._side_lock:
            try:
                if self._side is None:
                    self._side = await (
                        asyncio.open_unix_connection(self.upstream_unix)
                        if self.upstream_unix
                        else asyncio.open_connection(*self.upstream)
                    )
                reader, writer = self._side
                writer.write(encode_command(b"COMMAND", b"GETKEYS", *argv))
                parser = hiredis.Reader()
                while True:
                    reply = parser.gets()
                    if reply is not False:
                        break
                    chunk = await reader.read(1 << 16)
                    if not chunk:
                        raise ConnectionError("side connection closed")
                    parser.feed(chunk)
            except (OSError, ConnectionError):
                if self._side is not None:
                    self._side[1].close()
                self._side = None
                return []
        if isinstance(reply, list):
            return [k for k in reply if isinstance(k, bytes)]
        return []


def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address of `host` (as loop.create_server), one port."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:  # the same port on every address
                address = (address[0], socks[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(511)
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks
