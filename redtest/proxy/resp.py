"""RESP framing: command lengths and inline commands (client side), reply boundaries (server side).

Client commands are decoded by hiredis; hiredis reports no byte offsets and does not
read inline commands, so this module supplies both. Server replies are only *scanned*:
the proxy forwards them as raw bytes and needs to know where each top-level reply
ends, and whether it is a RESP3 push (which answers no command).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "ReplyScanner",
    "command_length",
    "count_commands",
    "count_replies",
    "encode_command",
    "encode_error",
    "encode_value",
    "parse_one",
    "RespError",
]

_CRLF = b"\r\n"


class RespError(Exception):
    """The byte stream is not RESP we can frame; the connection falls back to raw relaying."""


def command_length(argv: list[bytes]) -> int:
    """Byte length of `argv` as a RESP array of bulk strings, in the canonical encoding clients use."""
    n = len(argv)
    total = 4 if n < 10 else 3 + len(str(n))
    for a in argv:
        la = len(a)
        total += la + (6 if la < 10 else 7 if la < 100 else 5 + len(str(la)))
    return total


def encode_command(*args: bytes | str | int) -> bytes:
    """Encode one command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def encode_error(message: str) -> bytes:
    """`-MESSAGE\\r\\n`, the message kept as written (line breaks would end the frame, so they become spaces)."""
    text = message.replace("\r", " ").replace("\n", " ")
    return b"-" + text.encode() + _CRLF


def encode_value(value: str | int | None, resp3: bool) -> bytes:
    """A reply holding `value`: nil, a bulk string or an integer."""
    if value is None:
        return b"_\r\n" if resp3 else b"$-1\r\n"
    if isinstance(value, bool):  # YAML true/false: an integer reply like Redis' own booleans
        value = int(value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    data = str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _split_inline(line: bytes) -> list[bytes]:
    """Split an inline command like Redis' sdssplitargs: whitespace, "double" and 'single' quotes."""
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\r\n":
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        quote = 0
        while i < n:
            c = line[i]
            if quote:
                if c == 0x5C and quote == 0x22 and i + 1 < n:  # backslash escape in "..."
                    nxt = line[i + 1]
                    hex_digits = line[i + 2 : i + 4]
                    if nxt == 0x78 and len(hex_digits) == 2 and all(h in _HEX for h in hex_digits):
                        cur.append(int(hex_digits, 16))  # \xHH
                        i += 4
                        continue
                    cur.append({0x6E: 10, 0x72: 13, 0x74: 9, 0x62: 8, 0x61: 7}.get(nxt, nxt))
                    i += 2
                    continue
                if c == 0x5C and quote == 0x27 and line[i + 1 : i + 2] == b"'":  # \' in '...'
                    cur.append(0x27)
                    i += 2
                    continue
                if c == quote:
                    # Redis refuses `"k"x` (unbalanced quotes) and closes: so it must see it
                    if i + 1 < n and line[i + 1] not in b" \t\r\n":
                        raise RespError("unbalanced quotes in an inline command")
                    quote = 0
                    i += 1
                    break
                cur.append(c)
            elif c in b" \t\r\n":
                break
            elif c in b"\"'":
                quote = c
            else:
                cur.append(c)
            i += 1
        if quote:
            raise RespError("unbalanced quotes in an inline command")
        args.append(bytes(cur))


# Redis' default proto-max-bulk-len (512 MB): a longer argument is refused with a
# protocol error. Waiting for one would hold the connection forever; it is relayed raw
# instead, and the server answers.
MAX_BULK = 512 * 1024 * 1024


def parse_one(buf: bytes | bytearray, pos: int) -> tuple[list[bytes], int] | None:
    """Parse the command starting at `pos` exactly (arrays or inline); None when incomplete.

    Returns (argv, end). An empty inline line gives an empty argv (Redis ignores it).
    Raises RespError on malformed input.
    """
    n = len(buf)
    if pos >= n:
        return None
    if buf[pos] != 0x2A:  # inline command: one line
        j = buf.find(b"\n", pos)
        if j < 0:
            if n - pos > 64 * 1024:
                raise RespError("inline command too long")
            return None
        return _split_inline(bytes(buf[pos:j])), j + 1
    j = buf.find(_CRLF, pos)
    if j < 0:
        return None
    try:
        count = int(buf[pos + 1 : j])
    except ValueError:
        raise RespError("bad multibulk length") from None
    i = j + 2
    argv: list[bytes] = []
    for _ in range(max(count, 0)):
        if i >= n:
            return None
        if buf[i] != 0x24:
            raise RespError("expected '$'")
        j = buf.find(_CRLF, i)
        if j < 0:
            return None
        try:
            ln = int(buf[i + 1 : j])
        except ValueError:
            raise RespError("bad bulk length") from None
        if not 0 <= ln <= MAX_BULK:  # Redis refuses it and closes: so must we wait no more
            raise RespError("bulk length out of range")
        start = j + 2
        end = start + ln
        if end + 2 > n:
            return None
        argv.append(bytes(buf[start:end]))
        i = end + 2
    return argv, i


# The C counters of _scan.c (built by setup.py where a compiler is found); the
# pure-Python paths below do the same work, more slowly. REDTEST_PROXY_PURE_PYTHON=1
# turns the C counters off, to compare the two.
count_commands: Callable[[bytes, set[bytes] | dict[bytes, Any]], int] | None = None
count_replies: Callable[[bytes], int] | None = None
if not os.environ.get("REDTEST_PROXY_PURE_PYTHON"):
    try:
        from redtest.proxy._scan import count_commands, count_replies
    except ImportError:  # pragma: no cover - installed without a C compiler
        pass

# Reply type bytes.
_BULK = frozenset(b"$=!")  # length-prefixed payloads: bulk, verbatim, blob error
_AGG = frozenset(b"*~>%|")  # aggregates: array, set, push, map, attribute
_PUSH = 0x3E  # '>'
_MAP = 0x25  # '%'
_ATTR = 0x7C  # '|'


def _bulk_lengths(prefix: str = "", depth: int = 0) -> bytes:
    """Regex alternatives for `<len>\\r\\n<payload>` with len < 1000, as a trie on the digits.

    A trie keeps the regex engine from trying hundreds of branches per reply.
    """
    alts = []
    if prefix:
        n = int(prefix)
        alts.append(b"\r\n" + (b"[\\s\\S]{%d}" % n if n else b""))
    if depth < 3 and prefix != "0":
        for d in "0123456789" if prefix else "123456789":
            alts.append(d.encode() + b"(?:" + _bulk_lengths(prefix + d, depth + 1) + b")")
        if not prefix:
            alts.append(b"0\r\n")
    return b"|".join(alts)


# One complete flat reply: a simple line (+ - : , # ( _) or a null or short bulk string.
# Payload bytes are never read, only counted, so a payload cannot fake a boundary.
_FLAT_REPLY = re.compile(rb"\$(?:" + _bulk_lengths() + rb"|-1)\r\n|[+\-:,#(_][^\r\n]*\r\n")
_FLAT_SUB = _FLAT_REPLY.subn
_FLAT_FIRST = frozenset(b"$+-:,#(_")
_QUICK_MAX = 8 * 1024  # larger chunks (big values) go to the scanner: no regex search over MBs
_OK = b"+OK\r\n"


class ReplyScanner:
    """Finds where top-level replies end in a server byte stream, chunk by chunk, without copying payloads.

    `scan(chunk)` returns the end offsets (within the chunk) of the top-level frames
    completed in it; a RESP3 push frame's end is given negated (`-end`) because it answers
    no command. Attributes (`|`) belong to the reply that follows them.
    """

    __slots__ = ("_carry", "_skip", "_stack", "_top_push", "pushes")

    def __init__(self) -> None:
        self._carry = b""  # an incomplete header line from the previous chunk
        self._skip = 0  # payload bytes (incl. CRLF) of a bulk still to come
        self._stack: list[list[int]] = []  # open aggregates: [remaining elements, is_attribute]
        self._top_push = False  # the top-level frame being read is a push
        self.pushes = 0  # push frames completed in the last scan

    def count_complete(self, data: bytes) -> int | None:
        """The number of replies in `data` when it is a run of complete replies, else None.

        Only valid between replies (no state carried from earlier chunks); the state is
        unchanged either way, so on None the caller scans the chunk. Much cheaper than
        `scan`. With the C counter any complete replies without push or attribute
        frames are counted; the Python fallback takes only flat ones (the usual
        pipelined `+OK` / short bulk / integer replies).
        """
        if self._carry or self._skip or self._stack:
            return None
        if count_replies is not None:  # any complete replies, nested ones too
            n = count_replies(data)
            return None if n < 0 else n
        if len(data) > _QUICK_MAX or data[0] not in _FLAT_FIRST:
            return None
        n = data.count(_OK)
        if n * 5 == len(data):
            return n
        rest, n = _FLAT_SUB(b"", data)
        # No leftover byte: the matches tile the chunk from its start, exactly as a parser
        # reading reply after reply would split it (each reply's extent follows from its
        # first bytes).
        return None if rest else n

    @property
    def in_push(self) -> bool:
        """True while the unfinished top-level frame is a push (its header line too)."""
        return self._top_push or (not self._stack and self._carry[:1] == b">")

    def scan(self, data: bytes) -> list[int]:
        ends: list[int] = []
        self.pushes = 0
        if self._carry:
            buf = self._carry + data
            base = len(self._carry)
            self._carry = b""
        else:
            buf = data
            base = 0
        n = len(buf)
        i = 0
        stack = self._stack
        if self._skip:
            if self._skip > n:
                self._skip -= n
                return ends
            i = self._skip
            self._skip = 0
            self._element_done(i - base, ends)
        find = buf.find
        while i < n:
            t = buf[i]
            j = find(_CRLF, i)
            if j < 0:
                self._carry = bytes(buf[i:])
                break
            if t in _BULK:
                try:
                    ln = int(buf[i + 1 : j])
                except ValueError:
                    raise RespError("bad bulk length in reply") from None
                if ln < 0:
                    i = j + 2
                else:
                    end = j + 4 + ln
                    if end > n:
                        self._skip = end - n
                        break
                    i = end
            elif t in _AGG:
                try:
                    cnt = int(buf[i + 1 : j])
                except ValueError:  # streamed aggregates (`*?`) are not used by Redis
                    raise RespError("unsupported aggregate in reply") from None
                i = j + 2
                if t == _MAP or t == _ATTR:
                    cnt *= 2
                if not stack:
                    self._top_push = t == _PUSH
                if cnt > 0:
                    stack.append([cnt, t == _ATTR])
                    continue
                if t == _ATTR:
                    continue  # an empty attribute: the reply still follows
            else:  # simple line types: + - : , # ( _
                i = j + 2
            if stack:
                self._element_done(i - base, ends)
            elif self._top_push:
                self._top_done(i - base, ends)
            else:
                ends.append(i - base)
        return ends

    def _top_done(self, end: int, ends: list[int]) -> None:
        if self._top_push:
            ends.append(-end)
            self.pushes += 1
            self._top_push = False
        else:
            ends.append(end)

    def _element_done(self, end: int, ends: list[int]) -> None:
        stack = self._stack
        while stack:
            top = stack[-1]
            top[0] -= 1
            if top[0] > 0:
                return
            stack.pop()
            if top[1]:  # an attribute ended: the element it describes is still to come
                return
        self._top_done(end, ends)
