"""One proxied client connection: command framing, rule decisions, and the reply FIFO.

Client -> server: bytes are fed to hiredis; when every command of a chunk is simply
forwarded and the chunk ends on a command boundary, the chunk itself is forwarded (no
re-encoding). Otherwise exact boundaries are computed and each command is handled alone.

Server -> client: bytes are forwarded as they arrive. The FIFO holds, in command order,
counts of replies still owed by the server and whatever the proxy must do after them
(write an injected reply, swallow a reply, close). A ReplyScanner tells where replies end.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import hiredis

from redtest.proxy.resp import (
    ReplyScanner,
    RespError,
    command_length,
    count_commands,
    encode_command,
    encode_error,
    encode_value,
    parse_one,
)
from redtest.proxy.rules import CompiledRule
from redtest.spec.model import DelayEffect, DropEffect, ErrorEffect, ResponseEffect

if TYPE_CHECKING:
    from redtest.proxy.fastlane import Handover
    from redtest.proxy.server import FaultProxy

__all__ = ["ClientConnection"]

_HIGH_WATER = 4 * 1024 * 1024  # bytes held while suspended before the client is paused
# How long commands after CLIENT SETNAME / HELLO wait for its reply before they are judged
# anyway (under the old name): a reply that never comes must not stall the connection.
_NAME_WAIT = 1.0


class _Marker:
    """A FIFO entry that is not a reply count nor injected bytes."""

    __slots__ = ("kind", "data", "head", "settles")

    def __init__(self, kind: str, data: bytes = b"") -> None:
        self.kind = kind
        self.data = data
        self.head = b""  # _NAME: the first bytes of the reply it waits for; _PONG: all of it
        # _NAME: the (name, resp3) that hold once the reply is no error
        self.settles: tuple[bytes | None, bool | None] = (None, None)


_CLOSE = "close"  # close the connection once earlier replies are out
_LOSE = "lose"  # swallow the next reply, then close (drop mode lose_reply)
_REPLACE = "replace"  # swallow the next reply, write `data` instead (EXEC -> EXECABORT)
_OPAQUE = "opaque"  # from here on replies cannot be counted (RESP2 pub/sub, MONITOR)
_NAME = "name"  # forward the next reply; if it is not an error nor null, `settles` holds
_PONG = "pong"  # swallow the +PONG of the proxy's own PING; forward replies before it

_DISCARD = encode_command(b"DISCARD")
_PING = encode_command(b"PING")
_REPLY_ON = encode_command(b"CLIENT", b"REPLY", b"ON")
_EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"

# Decisions other than "forward with N replies" (an int).
_FWD_OPAQUE = ("opaque",)
_EXEC_ABORT = ("discard", _EXECABORT)  # DISCARD upstream, its reply replaced by this one
_SILENT_DISCARD = ("discard", None)  # DISCARD upstream; the client expects no reply
_NOTHING = ("nothing",)  # neither forwarded nor answered (replies are off)
_SKIP = ("skip",)  # not forwarded nor answered, but the server's pending SKIP must be used

_SPECIAL = {
    name: name
    for name in (
        b"MULTI",
        b"EXEC",
        b"DISCARD",
        b"HELLO",
        b"CLIENT",
        b"SUBSCRIBE",
        b"PSUBSCRIBE",
        b"SSUBSCRIBE",
        b"UNSUBSCRIBE",
        b"PUNSUBSCRIBE",
        b"SUNSUBSCRIBE",
        b"MONITOR",
        b"RESET",
    )
}
_SPECIAL_LENS = frozenset(len(n) for n in _SPECIAL)
# Commands that change how later commands or replies are read: the fast lane hands a
# connection over before relaying any of them.
STATEFUL_COMMANDS = tuple(_SPECIAL)

_first = itemgetter(0)
_UNKNOWN = object()  # no plan computed yet for a command name


def _refuses_ping(reply: bytes) -> bool:
    """The server's ACL refusal of the proxy's own PING (`-NOPERM ... 'ping' command`)."""
    return reply.startswith(b"-NOPERM") and b"'ping'" in reply


def _hello_name(argv: list[bytes]) -> bytes | None:
    """The name a HELLO sets (`HELLO 3 SETNAME x`), or None."""
    name = None
    for i in range(2, len(argv) - 1):
        if argv[i].upper() == b"SETNAME":
            name = argv[i + 1]
    return name


def _valid_name(name: bytes) -> bool:
    """Redis' rule for client names: no spaces, newlines or other special characters."""
    return all(0x21 <= c <= 0x7E for c in name)


def _substitute(value: str | int | None) -> bytes:
    """A harmless command whose reply is `value`: inside MULTI it queues like the original."""
    if value is None:
        return encode_command(b"EVAL", b"return nil", b"0")
    if isinstance(value, int):
        return encode_command(b"EVAL", b"return tonumber(ARGV[1])", b"0", str(int(value)))
    return encode_command(b"ECHO", str(value))


class _Upstream(asyncio.Protocol):
    """The server side of one proxied connection; hands everything to its ClientConnection."""

    __slots__ = ("conn", "data_received")

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.data_received = conn.server_data  # type: ignore[method-assign]  # one call less per chunk

    def eof_received(self) -> bool:
        self.conn.server_closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.server_closed()

    def pause_writing(self) -> None:
        self.conn.pause_client(1)

    def resume_writing(self) -> None:
        self.conn.resume_client(1)


class ClientConnection(asyncio.Protocol):
    """The client side of one proxied connection (see the module docstring)."""

    def __init__(self, proxy: FaultProxy, handover: Handover | None = None) -> None:
        self.proxy = proxy
        self.handover = handover  # taken over from the fast lane (until connection_made)
        self.busy = proxy.busy  # busy polling after client traffic (busypoll.py)
        self.transport: asyncio.Transport | None = None
        self.up: asyncio.Transport | None = None
        self.up_pending: list[bytes] = []  # bytes for the server before it is connected
        self.closed = False
        # client -> server framing
        self.reader = hiredis.Reader()
        self.buf = bytearray()  # received, not yet forwarded; starts at a command boundary
        self.streamed = (
            0  # bytes of the incomplete command already forwarded (committed to forward)
        )
        self.py_mode = False  # inline commands: parse exactly with resp.parse_one
        self.raw_mode = False  # unframeable input: relay bytes untouched
        self.queue: deque[tuple[list[bytes], bytes]] = (
            deque()
        )  # parsed, undecided (while suspended)
        self.inbox: list[bytes] = []  # raw chunks received while suspended
        self.inbox_size = 0
        self.suspended = False  # a delay or a GETKEYS lookup is pending
        self.timer: asyncio.TimerHandle | None = None
        self.dead = False  # after drop/blackhole/lose_reply: client input is ignored
        self.eof_pending = False
        self.paused = 0  # reasons the client's reading is paused (bit mask)
        self.uout: list[bytes] = []  # pieces for the server, written at the end of a callback
        # connection state, as Redis sees it
        self.name = b""
        self.resp3 = False
        self.in_multi = False
        self.poisoned = False  # an error was injected inside MULTI: EXEC must abort
        self.multi_name: bytes | None = None  # CLIENT SETNAME queued in MULTI
        self.multi_reply: bytes | None = None  # CLIENT REPLY mode queued in MULTI
        self.multi_proto: bytes | None = None  # HELLO 2|3 queued in MULTI
        self.awaiting_name: _Marker | None = None  # suspended until this marker settles
        # RESP3 (un)subscribe confirmations are pushes the FIFO does not count: an answer
        # injected after such a command must wait for them (_after_confirmations)
        self.confirmations_unseen = False
        self.resp3_subscribed = False  # a RESP3 SUBSCRIBE was sent (and not RESET since)
        self.tracking = False  # CLIENT TRACKING ON was sent (RESP3: invalidation pushes)
        self.name_timer: asyncio.TimerHandle | None = None  # ends that wait, at the latest
        self.reply_off = False  # CLIENT REPLY OFF
        self.skip_next = 0  # CLIENT REPLY SKIP: replies still to skip
        # server -> client
        self.scanner = ReplyScanner()
        self.fifo: deque[Any] = deque()  # int (replies owed) | bytes (inject) | _Marker
        self.opaque = False
        self.cout: list[bytes] = []  # pieces for the client, written at the end of a callback
        # Per command name, under the current rule set and client name (see _plan):
        # True = forward, one reply; (slice, key regex match) = the same unless a key
        # matches; None = full decision. `fast` holds the True names, for a set test.
        self.plans: dict[bytes, Any] = {}
        self.fast: set[bytes] = set()
        self.plans_rules: Any = None

    # -- connection lifecycle ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        h, self.handover = self.handover, None
        rules = self.proxy.rules
        # Refused: `down` or the proxy's stop reached it while it was handed over, or it
        # is new and `down` is on (a connection from the lane was judged by _apply).
        if self.closed or (
            (h is None or h.fresh) and rules.down_rules and rules.connection_refused() is not None
        ):
            self.closed = self.dead = True
            transport.abort()  # reset at once
            if h is not None:
                h.upstream.close()
            return
        self.proxy.conns.add(self)
        loop = asyncio.get_running_loop()
        if h is None:
            loop.create_task(self._connect_upstream())
            return
        # From the fast lane: what it had counted and written goes first, in order.
        if h.to_client:
            transport.write(h.to_client)  # type: ignore[attr-defined]
        self.resp3 = h.resp3
        owed = h.owed
        if h.hello:  # the first reply owed answers HELLO: as _apply does for "name"
            marker = _Marker(_NAME)
            marker.settles = (None, h.hello == 3)
            self.fifo.append(marker)
            owed -= 1
            self._await_name(marker)
        if owed:
            self.fifo.append(owed)
        if h.to_server:
            self.up_pending.append(h.to_server)
        loop.create_task(self._connect_upstream(h.upstream))
        if h.from_server:
            self.server_data(h.from_server)
        if h.from_client:
            self.data_received(h.from_client)

    async def _connect_upstream(self, sock: socket.socket | None = None) -> None:
        try:
            up, _ = await self.proxy.open_upstream(lambda: _Upstream(self), sock)
        except OSError as e:
            if sock is not None:
                sock.close()
            self.close()
            self.proxy.upstream_failed(e)
            return
        if self.closed:  # closed meanwhile: what it had decided to send still goes
            if self.up_pending:
                up.write(b"".join(self.up_pending))
            up.close()
            return
        self.up = up  # type: ignore[assignment]
        if self.up_pending:
            up.write(b"".join(self.up_pending))
            self.up_pending = []
        if self.eof_pending and not self.suspended and up.can_write_eof():
            up.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.dead = True
        self.proxy.conns.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        self._stop_awaiting_name()
        if self.up is not None:
            self.up.close()  # the client left: so does the server connection

    def eof_received(self) -> bool:
        if self.suspended or self.queue:
            self.eof_pending = True
        else:
            self._send_eof()
        return True  # half-close: replies still flow to the client

    def _send_eof(self) -> None:
        self.eof_pending = True
        if self.buf and not self.dead:  # an incomplete command: pass it on, Redis decides
            self._up(bytes(self.buf))
            self.buf.clear()
        self._flush_up()
        if self.up is not None and not self.up.is_closing() and self.up.can_write_eof():
            self.up.write_eof()

    def server_closed(self) -> None:
        """The server closed or sent EOF: deliver what we have, then close the client."""
        self._flush_client()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True

    def close(self) -> None:
        """Close both sides after writing what is already queued."""
        self.dead = True
        self._flush_up()  # commands decided before the close still reach the server
        self._flush_client()
        if self.transport is not None:
            self.transport.close()
        if self.up is not None:
            self.up.close()
        self.closed = True

    def abort(self) -> None:
        """Close both sides now (down, proxy stop)."""
        self.dead = self.closed = True
        self.up_pending = []  # nor is anything sent once the server is connected
        if self.transport is not None:
            self.transport.abort()
        if self.up is not None:
            self.up.abort()

    # -- flow control --------------------------------------------------------------

    def pause_client(self, reason: int) -> None:
        if not self.paused and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self.paused |= reason

    def resume_client(self, reason: int) -> None:
        self.paused &= ~reason
        if not self.paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def pause_writing(self) -> None:  # the client reads replies slower than the server sends
        if self.up is not None:
            self.up.pause_reading()

    def resume_writing(self) -> None:
        if self.up is not None:
            self.up.resume_reading()

    # -- output helpers ------------------------------------------------------------

    def _up(self, data: bytes) -> None:
        self.uout.append(data)

    def _flush_up(self) -> None:
        if not self.uout:
            return
        data = b"".join(self.uout) if len(self.uout) > 1 else self.uout[0]
        self.uout = []
        if self.up is not None:
            self.up.write(data)
        else:
            self.up_pending.append(data)

    def _flush_client(self) -> None:
        if self.cout:
            data = b"".join(self.cout)
            self.cout = []
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)

    def _expect(self, n: int, ordering: bool = True) -> None:
        """`n` more replies are owed by the server for forwarded commands (`ordering`:
        commands sent after any RESP3 (un)subscribe still unconfirmed)."""
        if n <= 0 or self.opaque:
            return
        # The server writes these replies after the (un)subscribe's confirmations: an
        # answer injected behind them needs no PING barrier (which inside MULTI would
        # only be queued, and after HELLO 2 answered as a push).
        if ordering:
            self.confirmations_unseen = False
        fifo = self.fifo
        if fifo and type(fifo[-1]) is int:
            fifo[-1] += n
        else:
            fifo.append(n)

    def _push(self, entry: bytes | _Marker) -> None:
        """Queue an action behind the replies owed so far; act at once when nothing is owed."""
        self.fifo.append(entry)
        if len(self.fifo) == 1:
            self._run_heads()

    def _run_heads(self) -> None:
        """Do the actions at the head of the FIFO until a reply is awaited."""
        fifo = self.fifo
        while fifo:
            head = fifo[0]
            if type(head) is int:
                if not self.opaque:
                    return
                fifo.popleft()
            elif type(head) is bytes:
                fifo.popleft()
                self.cout.append(head)
            else:
                kind = head.kind
                if kind == _OPAQUE:
                    fifo.popleft()
                    self.opaque = True
                elif kind == _CLOSE or (self.opaque and kind == _LOSE):
                    fifo.clear()
                    self.close()
                    return
                elif self.opaque and kind == _PONG:  # the PONG goes to the client, as is
                    fifo.popleft()
                    self.cout.append(head.head)
                elif self.opaque and kind == _NAME:  # replies cannot be told apart any more
                    fifo.popleft()
                    self._name_settled(head, head.settles)
                elif self.opaque:  # _REPLACE: nothing can be swallowed any more
                    fifo.popleft()
                    self.cout.append(head.data)
                else:
                    return  # _LOSE / _REPLACE / _NAME wait for their reply

    # -- server -> client ----------------------------------------------------------

    def server_data(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        if self.opaque:
            transport.write(data)
            return
        fifo = self.fifo
        if not fifo or (len(fifo) == 1 and type(fifo[0]) is int):
            # Nothing waits behind these replies: forward untouched, only count them.
            scanner = self.scanner
            n = scanner.count_complete(data)
            if n is None:
                try:
                    n = len(scanner.scan(data)) - scanner.pushes
                except RespError:  # not RESP we understand: stop counting, relay as is
                    self._go_opaque(data)
                    return
            transport.write(data)
            if n and fifo:
                left = fifo[0] - n
                if left > 0:
                    fifo[0] = left
                else:
                    fifo.popleft()
            return
        try:
            ends = self.scanner.scan(data)
        except RespError:
            self._go_opaque(data)
            return
        self._server_data_slow(data, ends)

    def _name_settled(
        self, marker: _Marker | None, settles: tuple[bytes | None, bool | None] | None
    ) -> None:
        """The server answered CLIENT SETNAME, HELLO or an EXEC that held a SETNAME: what it
        took (None: nothing) now holds, and the commands after it are judged under it."""
        name, resp3 = settles or (None, None)
        if resp3 is not None:
            self.resp3 = resp3
        if name is not None:
            self._set_name(name)
        if marker is not None and self.awaiting_name is marker:
            self._stop_awaiting_name()
            asyncio.get_running_loop().call_soon(self._resume_after_name)

    def _await_name(self, marker: _Marker) -> None:
        """Hold what follows until the server answers `marker`'s command, or _NAME_WAIT."""
        self.awaiting_name = marker
        self._suspend()
        loop = asyncio.get_running_loop()
        self.name_timer = loop.call_later(_NAME_WAIT, self._name_overdue, marker)

    def _stop_awaiting_name(self) -> None:
        self.awaiting_name = None
        if self.name_timer is not None:
            self.name_timer.cancel()
            self.name_timer = None

    def _name_overdue(self, marker: _Marker) -> None:
        if self.awaiting_name is marker:  # judge what follows now; the name settles later
            self._stop_awaiting_name()
            self._resume_after_name()

    def _resume_after_name(self) -> None:
        if self.dead or not self.suspended:
            return
        self.suspended = False
        self._drain()
        self._flush_up()
        self._flush_client()

    def _go_opaque(self, data: bytes) -> None:
        self.opaque = True
        self._run_heads()
        self._flush_client()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _server_data_slow(self, data: bytes, ends: list[int]) -> None:
        fifo, cout = self.fifo, self.cout
        prev = 0
        for end in ends:
            if end < 0:  # a push frame: forwarded where it is
                cout.append(data[prev:-end])
                prev = -end
                continue
            head = fifo[0] if fifo else None
            if head is None or self.opaque:
                cout.append(data[prev:end])
            elif type(head) is int:
                cout.append(data[prev:end])
                if head > 1:
                    fifo[0] = head - 1
                else:
                    fifo.popleft()
                    self._run_heads()
            elif head.kind == _PONG:
                reply = head.head + data[prev:end]  # it may have begun in a chunk before
                head.head = b""
                if reply == b"+PONG\r\n" or _refuses_ping(reply):
                    # (refused by an ACL that does not allow PING: the answer is as late)
                    fifo.popleft()
                    self._run_heads()
                else:  # an (un)subscribe refused: its error, in its place
                    cout.append(reply)
            elif head.kind == _NAME:  # forwarded; the name counts if the server took it
                cout.append(data[prev:end])
                fifo.popleft()
                reply = head.head or data[prev : prev + 4]  # it began here or in a chunk before
                took = reply[:1] not in (b"-", b"!") and reply[:3] != b"*-1" and reply[:1] != b"_"
                self._name_settled(head, head.settles if took else None)
                self._run_heads()
            else:  # _LOSE or _REPLACE: this reply is swallowed
                fifo.popleft()
                if head.kind == _LOSE:
                    fifo.clear()
                    self.close()
                    return
                cout.append(head.data)
                self._run_heads()
            prev = end
            if self.closed:
                return
        if prev < len(data):
            head = fifo[0] if fifo else None
            in_push = self.scanner.in_push
            if type(head) is _Marker and head.kind == _NAME:
                if not head.head and not in_push:  # its reply starts here, ends in a later chunk
                    head.head = data[prev : prev + 4]
                swallowing = False
            elif type(head) is _Marker and head.kind == _PONG and not in_push and not self.opaque:
                head.head += data[prev:]  # short: +PONG or an error; judged when complete
                swallowing = True
            else:
                swallowing = isinstance(head, _Marker) and not in_push
            if not swallowing or self.opaque:
                cout.append(data[prev:])
        self._flush_client()

    # -- client -> server ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        busy = self.busy
        if busy is not None and not busy.armed:
            busy.arm()
        if self.dead:
            return
        if self.suspended or self.queue:
            self.inbox.append(data)
            self.inbox_size += len(data)
            if self.inbox_size > _HIGH_WATER:
                self.pause_client(2)
            return
        up = self.up
        if (
            count_commands is not None
            and up is not None
            and not self.buf
            and not self.streamed
            and not self.py_mode
            and not self.raw_mode
            and not self.reply_off
            and not self.skip_next
            and not self.uout
            and not self.cout
            and self.plans_rules is self.proxy.rules
        ):
            # The usual chunk: whole commands that need no decision (by name, or by
            # their keys under a key-only plan). C counts them without building an
            # object per argument; hiredis stays untouched (it is between commands, as
            # is this chunk). _expect, inlined.
            n = count_commands(data, self.plans)
            if n > 0:
                if not self.opaque:
                    self.confirmations_unseen = False  # (see _expect)
                    fifo = self.fifo
                    if fifo and type(fifo[-1]) is int:
                        fifo[-1] += n
                    else:
                        fifo.append(n)
                up.write(data)
                return
        self._handle(data)
        if self.uout:
            self._flush_up()
        if self.cout:
            self._flush_client()

    def _handle(self, data: bytes) -> None:
        if self.raw_mode:
            self._up(data)
            return
        if self.py_mode or (not self.buf and not self.streamed and data[0] != 0x2A):
            self.buf += data
            self._handle_py()
            return
        reader = self.reader
        reader.feed(data)
        if self.buf:
            self.buf += data
            pending: bytes | bytearray = self.buf
        else:
            pending = data
        cmds: list[Any] = []
        bad = False
        try:
            while True:
                c = reader.gets()
                if c is False:
                    break
                if type(c) is not list or not c:
                    bad = True
                    break
                cmds.append(c)
        except hiredis.ProtocolError:
            bad = True
        rules = self.proxy.rules
        n = len(cmds)
        if bad or pending[-1] != 10 or reader.has_data():
            partial = True
        elif self.streamed:
            # hiredis' has_data() misses a half-read array, so compare lengths instead.
            try:
                partial = sum(map(command_length, cmds)) != len(pending) + self.streamed
            except TypeError:  # array elements that are not bulk strings: not a command
                self._go_raw(pending)
                return
        else:
            # Cheaper than summing command lengths: each complete command holds exactly
            # 1 + 2*argc LFs (one per CRLF) plus any inside payloads; a half-read array
            # (which has_data() misses) adds at least its header's. Equal counts: a
            # boundary. (A one-byte count runs on memchr, twice as fast as b"\r\n".)
            partial = pending.count(b"\n") != n + 2 * sum(map(len, cmds))

        # Fast path: decide each command; stop at the first that is not "forward as is".
        owed = 0
        forced = self.streamed != 0
        stop = n
        decision: Any = None
        if rules is not self.plans_rules:
            self._reset_plans()
        all_fast = not forced and not self.reply_off and not self.skip_next
        if all_fast:
            try:
                all_fast = self.fast.issuperset(map(_first, cmds))
            except TypeError:  # an unhashable "name" (nested array): the loop goes raw
                all_fast = False
        if all_fast:
            owed = n  # every name is known to need no decision: one reply each
        else:
            try:
                for i, argv in enumerate(cmds):
                    if not forced:
                        p = self.plans.get(argv[0], _UNKNOWN)
                        if p is _UNKNOWN:
                            p = self._plan(argv[0])
                        if p is True and not self.reply_off and not self.skip_next:
                            owed += 1
                            continue
                        if type(p) is tuple and not self.reply_off and not self.skip_next:
                            # Only key rules could match: one union regex over the keys.
                            sl, key_match = p
                            for k in argv[sl]:
                                if key_match(k):
                                    break
                            else:
                                owed += 1
                                continue
                    d = self._decide(argv, forced)
                    forced = False
                    if type(d) is int:
                        if d == 0 and owed and self.confirmations_unseen:
                            # a RESP3 (un)subscribe: the replies owed for the commands
                            # before it come before its pushes, so they order nothing
                            self._expect(owed, ordering=False)
                            owed = 0
                        owed += d
                    elif d is _FWD_OPAQUE:
                        self._expect(owed)
                        owed = 0
                        self._push(_Marker(_OPAQUE))
                    else:
                        stop, decision = i, d
                        break
            except TypeError:  # a non-bulk array element (Redis will refuse it): relay raw
                self._expect(owed)
                self._go_raw(pending)
                return
        self._expect(owed)
        if stop == n and not partial:
            if pending is self.buf:
                self._up(bytes(pending))
                self.buf.clear()
            elif self.uout or self.up is None:
                self._up(pending)
            else:
                self.up.write(pending)  # the usual case: the chunk as received, at once
            self.streamed = 0
            return
        if stop == n and not bad and not rules and not self.poisoned:
            # No rules: the incomplete command is committed to "forward"; stream it on.
            try:
                pos = sum(map(command_length, cmds)) - self.streamed
            except TypeError:  # non-bulk array elements: Redis will reject them; relay raw
                self._go_raw(pending)
                return
            self._up(bytes(pending) if pending is self.buf else pending)
            self.streamed = len(pending) - pos  # before the clear: pending may be buf
            self.buf.clear()
            return
        # Slow path: exact boundaries. The first command's first `streamed` bytes are gone.
        try:
            lengths = [command_length(c) for c in cmds]
        except TypeError:  # non-bulk array elements: Redis will reject it; relay raw from here
            self._go_raw(pending)
            return
        if lengths:
            lengths[0] -= self.streamed
        pos = 0
        for i in range(stop):
            pos += lengths[i]
        if pos > 0:
            self._up(bytes(pending[:pos]))
        if stop < len(cmds):
            self.streamed = 0
            raw = bytes(pending[pos : pos + lengths[stop]])
            pos += lengths[stop]
            items = []
            for i in range(stop + 1, len(cmds)):
                items.append((cmds[i], bytes(pending[pos : pos + lengths[i]])))
                pos += lengths[i]
            rest = bytes(pending[pos:])
            self.buf = bytearray(rest)
            self.queue.extend(items)
            if bad:  # hiredis stopped where `rest` starts: read it exactly, after this
                self._enter_py(parse_now=False)  # (not after _drain: that moves the buffer on)
            if self._apply(cmds[stop], raw, decision):
                self._drain()
            return
        rest = bytes(pending[pos:])
        if cmds:
            self.streamed = 0
        self.buf = bytearray(rest)
        if bad:
            self._enter_py()
        elif rest:  # read the headers of the command that waits (they are few)
            try:
                parse_one(rest, 0)
            except RespError:  # an argument longer than Redis takes: it will refuse it
                self._go_raw(self.buf)

    def _go_raw(self, pending: bytes | bytearray) -> None:
        self.raw_mode = True
        self._up(bytes(pending))
        self.buf.clear()
        # The replies owed for the commands framed so far still order what waits behind
        # them (an injected answer): counting stops only after them.
        self._push(_Marker(_OPAQUE))

    def _enter_py(self, parse_now: bool = True) -> None:
        """hiredis met a non-array command at a boundary: parse exactly from here on (at
        once, or when _drain gets to it, after the commands before it)."""
        self.reader = hiredis.Reader()
        if parse_now and self.buf and self.buf[0] == 0x2A:
            self._go_raw(self.buf)  # hiredis choked inside an array: not RESP we know
            return
        self.py_mode = True  # (deferred, a bad array goes raw when parse_one refuses it)
        if parse_now and not self.suspended and not self.queue:
            self._handle_py()

    def _handle_py(self) -> None:
        """Exact parsing (inline commands); back to hiredis once the buffer is empty."""
        self.py_mode = True
        buf = self.buf
        pos = 0
        try:
            while not self.dead and not self.suspended and not self.queue:
                parsed = parse_one(buf, pos)
                if parsed is None:
                    break
                argv, end = parsed
                raw = bytes(buf[pos:end])
                pos = end
                if not self._apply(argv, raw, self._decide(argv, False) if argv else 0):
                    break
        except RespError:
            del buf[:pos]
            self._go_raw(buf)
            return
        del buf[:pos]
        if not buf:
            self.py_mode = False

    def _drain(self) -> None:
        """Handle parked commands, then chunks that arrived while suspended."""
        while not self.suspended and not self.dead:
            if self.queue:
                argv, raw = self.queue.popleft()
                if not self._apply(argv, raw, self._decide(argv, False)):
                    break
                continue
            if self.py_mode:
                if self.inbox:
                    self.buf += b"".join(self.inbox)
                    self.inbox.clear()
                    self.inbox_size = 0
                self._handle_py()
                if self.py_mode:
                    break  # incomplete, suspended or closing
                continue
            if not self.inbox:
                break
            data = self.inbox.pop(0)
            self.inbox_size -= len(data)
            self._handle(data)
        if not self.inbox and self.paused & 2:
            self.resume_client(2)
        if self.eof_pending and not self.suspended and not self.queue and not self.dead:
            self._send_eof()

    # -- decisions -----------------------------------------------------------------

    def _decide(
        self, argv: list[bytes], forced: bool, start: int = 0, keys: Any = None, rules: Any = None
    ) -> Any:
        """What to do with one command: an int (forward, N replies owed) or an action tuple."""
        if rules is None:
            rules = self.proxy.rules
        if rules and not forced:
            hit = rules.match(argv, self.name, self.proxy.keys_of, start, keys)
            if hit is not None:
                if type(hit) is tuple:
                    return ("getkeys", hit[1])
                return self._effect(argv, hit)
        name = argv[0]
        if len(name) in _SPECIAL_LENS:
            special = _SPECIAL.get(name.upper())
            if special is not None:
                return self._special(special, argv)
        if self.reply_off or self.skip_next:
            return self._muted(1)
        return 1

    def _reset_plans(self) -> None:
        self.plans = {}
        self.fast = set()
        self.plans_rules = self.proxy.rules

    def _plan(self, name: bytes) -> Any:
        """How much deciding a command called `name` needs (see `plans`)."""
        plan = None
        if len(name) not in _SPECIAL_LENS or name.upper() not in _SPECIAL:
            plan = self.proxy.rules.plan(name, self.name, self.proxy.key_table)
        if len(self.plans) < 4096:  # bound the cache against random names
            self.plans[name] = plan
            if plan is True:
                self.fast.add(name)
        return plan

    def _set_name(self, name: bytes) -> None:
        self.name = name
        self._reset_plans()  # `client` globs may now (not) match

    def _muted(self, n: int) -> int:
        if self.reply_off:
            return 0
        if self.skip_next:
            self.skip_next -= 1
            return 0
        return n

    def _effect(self, argv: list[bytes], rule: CompiledRule) -> Any:
        eff = rule.effect
        if type(eff) is DelayEffect:
            return ("delay", eff.seconds, rule.index)
        if type(eff) is ErrorEffect or type(eff) is ResponseEffect:
            return self._answer(argv, eff)
        if type(eff) is DropEffect:
            if eff.mode == "blackhole":
                return ("blackhole",)
            if eff.mode == "lose_reply":
                # Muted, no reply will come to be lost; a special command's own count
                # (a RESP3 SUBSCRIBE's pushes, CLIENT REPLY OFF) is not worth working out:
                # either way a barrier tells when the server has run it.
                muted = self._muted(1) == 0
                return ("lose", muted or argv[0].upper() in _SPECIAL)
        return ("close",)  # drop close, down

    def _answer(self, argv: list[bytes], eff: ErrorEffect | ResponseEffect) -> Any:
        """The proxy answers in the server's place, as the server would have (CLIENT REPLY)."""
        skipping = self.skip_next > 0 and not self.reply_off
        muted = self._muted(1) == 0
        if type(eff) is ErrorEffect:
            reply = encode_error(eff.message)
        else:
            reply = encode_value(eff.value, self.resp3)
        name = argv[0].upper()
        if self.in_multi and (name == b"EXEC" or name == b"DISCARD"):
            # Answered here, yet it ends the transaction: end it upstream too, or every
            # later command of this client would only be queued there.
            self.in_multi = self.poisoned = False
            return _SILENT_DISCARD if muted else ("discard", reply)
        if self.in_multi and name != b"MULTI":
            if type(eff) is ErrorEffect:
                self.poisoned = True  # as Redis does for a command refused at queue time
            else:  # a command that queues like the original and answers `value` at EXEC
                return ("subst", _substitute(eff.value), 0 if muted else 1)
        if muted:
            return _SKIP if skipping else _NOTHING
        return ("inject", reply)

    def _special(self, name: bytes, argv: list[bytes]) -> Any:
        n = len(argv)
        if name == b"RESET":  # runs at once, inside MULTI too, and ends it
            # it turns replies back on before answering, but a pending SKIP still holds
            n = 0 if self.skip_next and not self.reply_off else 1
            self.resp3 = self.reply_off = self.in_multi = self.poisoned = False
            self.resp3_subscribed = self.tracking = False
            self._forget_queued()
            self.skip_next = 0
            self._set_name(b"")
            return n
        if name == b"EXEC":
            multi_name, multi_reply, multi_proto = self.multi_name, self.multi_reply, self.multi_proto
            self._forget_queued()
            resp3 = None if multi_proto is None else multi_proto == b"3"
            if self.poisoned:
                self.in_multi = self.poisoned = False
                return _SILENT_DISCARD if self._muted(1) == 0 else _EXEC_ABORT
            self.in_multi = False
            if multi_reply == b"ON" and not self.reply_off and not self.skip_next:
                multi_reply = None  # replies were on: nothing changes
            if multi_reply is not None:
                # CLIENT REPLY run inside EXEC cuts EXEC's own reply short (Redis sends an
                # array header it never fills): replies cannot be counted from here on.
                if multi_name is not None:
                    self._set_name(multi_name)
                if resp3 is not None:
                    self.resp3 = resp3
                self._reply_mode(multi_reply)
                return self._going_opaque()
            if resp3 is False and self.resp3_subscribed:
                return self._going_opaque()  # as for HELLO 2 outside MULTI (below)
            return self._naming(multi_name, resp3)
        if name == b"DISCARD":
            self.in_multi = self.poisoned = False
            self._forget_queued()
            return self._muted(1)
        if name == b"MULTI":
            if not self.in_multi:
                self.in_multi = True
                self.poisoned = False
                self._forget_queued()
            return self._muted(1)
        if self.in_multi:
            if name == b"CLIENT" and n == 3:  # queued: they take effect with EXEC
                sub = argv[1].upper()
                if sub == b"SETNAME" and _valid_name(argv[2]):
                    self.multi_name = argv[2]
                elif sub == b"REPLY" and argv[2].upper() in (b"ON", b"OFF", b"SKIP"):
                    self.multi_reply = argv[2].upper()
            if name == b"CLIENT" and n > 2 and argv[1].upper() == b"TRACKING":
                # takes effect with EXEC, if at all: a barrier too many is only a PONG
                self.tracking = self.tracking or argv[2].upper() == b"ON"
            if name == b"HELLO" and n > 1 and argv[1] in (b"2", b"3"):
                new_name = _hello_name(argv)
                if new_name is None or _valid_name(new_name):  # else EXEC holds its error
                    self.multi_proto = argv[1]
                    if new_name is not None:
                        self.multi_name = new_name
            return self._muted(1)  # queued: +QUEUED; effects happen at EXEC
        if name == b"HELLO":
            new_name = _hello_name(argv)
            if n > 1 and argv[1] == b"2" and self.resp3_subscribed:
                # Back to RESP2 while (maybe) subscribed: messages are plain arrays now,
                # which cannot be told from replies, as after a RESP2 SUBSCRIBE.
                return self._going_opaque()
            if n > 1 and argv[1] in (b"2", b"3"):
                return self._naming(new_name, argv[1] == b"3")
            return self._naming(None)  # other versions are refused (NOPROTO)
        if name == b"CLIENT":
            sub = argv[1].upper() if n > 1 else b""
            if sub == b"SETNAME" and n == 3:
                return self._naming(argv[2])
            if sub == b"TRACKING" and n > 2:
                self.tracking = argv[2].upper() == b"ON"
            elif sub == b"REPLY" and n == 3:
                mode = argv[2].upper()
                if mode == b"ON" or mode == b"OFF":
                    self._reply_mode(mode)
                    return 0 if self.reply_off else 1  # ON is answered, OFF is not
                if mode == b"SKIP":
                    if self.reply_off:
                        return 0
                    self.skip_next = 2  # this command and the next
                    return self._muted(1)
            return self._muted(1)
        if name == b"MONITOR":
            return self._going_opaque()
        if name in (b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE"):
            if n < 2:
                return self._muted(1)  # an arity error
            if not self.resp3:
                return self._going_opaque()
            self.resp3_subscribed = True
        elif not self.resp3:  # UNSUBSCRIBE family outside subscribed mode: arrays
            return self._muted(max(1, n - 1))
        # RESP3: the confirmations are pushes, which a pending SKIP does not hold back
        # but uses up
        self.confirmations_unseen = True
        return self._muted(0)

    def _forget_queued(self) -> None:
        """MULTI, EXEC, DISCARD, RESET: what the transaction queued is done with."""
        self.multi_name = self.multi_reply = self.multi_proto = None

    def _going_opaque(self) -> Any:
        """Replies cannot be counted from this command on: injected answers go at once,
        with no barrier to wait for."""
        self.confirmations_unseen = False
        return _FWD_OPAQUE

    def _naming(self, new_name: bytes | None, resp3: bool | None = None) -> Any:
        """Forward a command that may name the connection or switch its protocol; that
        counts once the server has taken it (its reply is no error), and later commands
        wait for that reply."""
        n = self._muted(1)
        if new_name is None and resp3 is None:
            return n
        if n == 0:  # no reply to tell: trust the server's own rules
            valid = new_name if new_name is not None and _valid_name(new_name) else None
            self._name_settled(None, (valid, resp3))
            return 0
        return ("name", new_name, resp3)

    def _reply_mode(self, mode: bytes) -> None:
        """CLIENT REPLY ON|OFF, or SKIP run inside a transaction (outside one, _special
        counts it: this command and the next go unanswered)."""
        if mode == b"ON":
            self.reply_off = False
            self.skip_next = 0
        elif mode == b"OFF":
            self.reply_off = True
        # SKIP inside EXEC: which reply goes missing is not worth guessing; counting
        # stops with the _OPAQUE marker EXEC pushes, once the replies before it are out

    def _apply(self, argv: list[bytes], raw: bytes, d: Any) -> bool:
        """Carry out a decision; False when processing must stop (suspended or closing)."""
        if type(d) is int:
            self._up(raw)
            self._expect(d)
            return True
        kind = d[0]
        if kind == "inject":
            self._after_confirmations()
            self._push(d[1])
        elif kind == "subst":
            self._up(d[1])
            self._expect(d[2])
        elif kind == "opaque":
            self._up(raw)
            self._push(_Marker(_OPAQUE))
        elif kind == "discard":
            self._up(_DISCARD)  # the server drops the queued transaction
            if d[1] is not None:  # its +OK is swallowed, the client gets d[1] instead
                self._push(_Marker(_REPLACE, d[1]))
        elif kind == "skip":
            self._up(_PING)  # the server skips this reply, not the next command's
        elif kind == "name":
            self._up(raw)
            marker = _Marker(_NAME)
            marker.settles = (d[1], d[2])
            self._push(marker)
            if self.fifo and self.fifo[-1] is marker:  # still waiting for its reply
                # what follows is judged under the name the server settles on
                self._await_name(marker)
                return False
        elif kind == "nothing":
            pass
        elif kind == "lose":
            self._up(raw)  # executed by the server; the reply never reaches the client
            if d[1]:  # no reply will come (replies off, or this one skipped)
                self._close_once_server_answers()
            else:
                self._push(_Marker(_LOSE))  # the reply is swallowed, then close
            self._die()
            return False
        elif kind == "close":
            if not self.opaque and (self.reply_off or self.skip_next):
                self._close_once_server_answers()
            else:
                self._after_confirmations()
                self._push(_Marker(_CLOSE))
            self._die()
            return False
        elif kind == "blackhole":
            self._die()
            return False
        elif kind == "delay":
            self._suspend()
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(
                d[1], self._resume, argv, raw, d[2] + 1, None, self.proxy.rules
            )
            return False
        elif kind == "getkeys":
            self._suspend()
            asyncio.get_running_loop().create_task(
                self._lookup_keys(argv, raw, d[1], self.proxy.rules)
            )
            return False
        return True

    def _after_confirmations(self) -> None:
        """Before an injected answer (or close) that no server reply orders: when RESP3
        pub/sub confirmations may still be on their way, PING the server and swallow its
        PONG, which comes after them, so that the client sees them first, as it would
        without the proxy. Costs one PING per (un)subscribe, and only if a fault fires.
        The same with RESP3 client-side caching on (CLIENT TRACKING ON): the server pushes
        the invalidation a write causes right after the write's reply, so every injected
        answer outside MULTI (where nothing runs before EXEC) waits for a PONG.
        A refused (un)subscribe answers with an error instead: forwarded, not swallowed.
        With replies off or one to skip the server would not answer the PING: then there
        is no barrier (a closing connection has _close_once_server_answers instead)."""
        tracking = self.tracking and self.resp3 and not self.in_multi
        if not (self.confirmations_unseen or tracking):
            return
        if self.opaque or self.reply_off or self.skip_next:
            return
        self.confirmations_unseen = False
        self._up(_PING)
        self._push(_Marker(_PONG))

    def _close_once_server_answers(self) -> None:
        """Close when no reply is known to order the close (replies off, the next one
        skipped, or a command whose own answer is not counted): have the server answer
        again (CLIENT REPLY ON; in a transaction, DISCARD first, as the close would), send
        a PING, and close on the first answer after what was sent before, which the
        server writes once all of it has run (and after any RESP3 confirmation pushes).
        Closing at once would lose commands the server has not run yet: those queued
        behind a BLPOP are dropped when the connection ends."""
        if self.in_multi:
            self._up(_DISCARD)
        self._up(_REPLY_ON)  # answered +OK, unless a pending SKIP takes its reply
        self._up(_PING)
        self._push(_Marker(_LOSE))  # the first answer is swallowed, then close

    def _die(self) -> None:
        """No more client input is read or forwarded on this connection."""
        self.dead = True
        self.queue.clear()
        self.inbox.clear()
        self.buf.clear()

    def _suspend(self) -> None:
        self.suspended = True
        self._flush_up()

    async def _lookup_keys(self, argv: list[bytes], raw: bytes, start: int, rules: Any) -> None:
        keys = await self.proxy.getkeys(argv)
        self._resume(argv, raw, start, keys, rules)

    def _resume(self, argv: list[bytes], raw: bytes, start: int, keys: Any, rules: Any) -> None:
        """After a delay (matching goes on after the delay rule) or a key lookup."""
        self.timer = None
        if self.dead:
            return
        self.suspended = False
        # Matching goes on in the set that began it, even if another is on by now: a
        # command is judged by one set (its rule positions mean nothing in another).
        d = self._decide(argv, False, start, keys, rules)
        if self._apply(argv, raw, d):
            self._drain()
        self._flush_up()
        self._flush_client()
