"""Which arguments of a command are keys, from the server's own `COMMAND` metadata.

Redis 7 describes keys with key-specs (begin_search + find_keys), which cover the
movable-key commands (EVAL, ZUNIONSTORE, XREAD ...) without a round trip. Where the
metadata cannot say (Redis 6 movable keys, specs flagged `incomplete`, unknown search
types) the caller asks the server with `COMMAND GETKEYS`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import hiredis

from redtest.errors import ProxyError
from redtest.proxy.resp import encode_command

__all__ = ["KeyTable", "CommandKeys", "fetch_key_table", "NEED_GETKEYS"]


class _NeedGetkeys:
    def __repr__(self) -> str:
        return "NEED_GETKEYS"


NEED_GETKEYS: Any = _NeedGetkeys()  # sentinel: ask the server


def _pairs(flat: Any) -> dict[bytes, Any]:
    """RESP2 returns maps as flat lists; RESP3 as dicts. Normalise to a dict with lower-case keys."""
    if isinstance(flat, dict):
        return {bytes(k).lower(): v for k, v in flat.items()}
    it = iter(flat or [])
    return {bytes(k).lower(): v for k, v in zip(it, it, strict=False)}


@dataclass(frozen=True)
class _Spec:
    bs_index: int | None  # begin_search by index
    bs_keyword: bytes | None  # begin_search by keyword (upper case)
    bs_startfrom: int
    fk_range: tuple[int, int, int] | None  # lastkey, keystep, limit
    fk_keynum: tuple[int, int, int] | None  # keynumidx, firstkey, keystep


@dataclass(frozen=True)
class CommandKeys:
    """Key positions of one command (or subcommand)."""

    first: int
    last: int
    step: int
    movable: bool
    specs: tuple[_Spec, ...] | None  # None: no usable key-specs (Redis 6 or unknown types)
    subcommands: dict[bytes, CommandKeys] = field(default_factory=dict)


_NOT_KEY: Any = object()  # a key-spec flagged not_key (SPUBLISH's shard channel)


def _parse_spec(raw: Any) -> _Spec | None:
    spec = _pairs(raw)
    flags = {bytes(f).lower() for f in spec.get(b"flags") or []}
    if b"not_key" in flags:
        return _NOT_KEY  # found by the spec, yet no key: COMMAND GETKEYS leaves it out too
    if b"incomplete" in flags:
        return None
    bs = _pairs(spec.get(b"begin_search"))
    fk = _pairs(spec.get(b"find_keys"))
    bs_type, fk_type = bs.get(b"type"), fk.get(b"type")
    bs_spec, fk_spec = _pairs(bs.get(b"spec")), _pairs(fk.get(b"spec"))
    index = keyword = None
    startfrom = 0
    if bs_type == b"index":
        index = int(bs_spec[b"index"])
    elif bs_type == b"keyword":
        keyword = bytes(bs_spec[b"keyword"]).upper()
        startfrom = int(bs_spec[b"startfrom"])
    else:
        return None
    rng = keynum = None
    if fk_type == b"range":
        rng = (int(fk_spec[b"lastkey"]), int(fk_spec[b"keystep"]), int(fk_spec[b"limit"]))
    elif fk_type == b"keynum":
        keynum = (int(fk_spec[b"keynumidx"]), int(fk_spec[b"firstkey"]), int(fk_spec[b"keystep"]))
    else:
        return None
    return _Spec(index, keyword, startfrom, rng, keynum)


def _parse_entry(entry: list[Any]) -> tuple[bytes, CommandKeys]:
    name = bytes(entry[0]).lower()
    flags = {bytes(f).lower() for f in entry[2] or []}
    first, last, step = int(entry[3]), int(entry[4]), int(entry[5])
    specs: tuple[_Spec, ...] | None = None
    subs: dict[bytes, CommandKeys] = {}
    if len(entry) > 8:  # Redis 7: [.., acl categories, tips, key specs, subcommands]
        parsed = [_parse_spec(s) for s in entry[8] or []]
        if all(p is not None for p in parsed):
            specs = tuple(p for p in parsed if p is not _NOT_KEY)
        for sub in (entry[9] if len(entry) > 9 else None) or []:
            sub_name, sub_keys = _parse_entry(sub)
            subs[sub_name.split(b"|", 1)[-1]] = sub_keys
    return name, CommandKeys(first, last, step, b"movablekeys" in flags, specs, subs)


def _range(argv: list[bytes], first: int, last: int, step: int, out: list[bytes]) -> None:
    argc = len(argv)
    if first <= 0 or first >= argc or step <= 0:
        return
    last = min(last, argc - 1)
    out.extend(argv[first : last + 1 : step])


def _keys_from_specs(argv: list[bytes], specs: tuple[_Spec, ...]) -> list[bytes]:
    argc = len(argv)
    keys: list[bytes] = []
    for sp in specs:
        if sp.bs_index is not None:
            first = sp.bs_index
        else:
            first = -1
            if sp.bs_startfrom >= 0:
                candidates = range(sp.bs_startfrom, argc)
            else:
                candidates = range(argc + sp.bs_startfrom, 0, -1)
            for i in candidates:
                if 0 < i < argc and argv[i].upper() == sp.bs_keyword:
                    first = i + 1
                    break
            if first < 0:
                continue
        if first >= argc:
            continue
        if sp.fk_range is not None:
            lastkey, keystep, limit = sp.fk_range
            if lastkey >= 0:
                last = first + lastkey
            elif limit <= 1:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
            _range(argv, first, last, keystep, keys)
        elif sp.fk_keynum is not None:
            keynumidx, firstkey, keystep = sp.fk_keynum
            idx = first + keynumidx
            if idx >= argc:
                continue
            try:
                numkeys = int(argv[idx])
            except ValueError:
                continue
            if numkeys <= 0:
                continue
            start = first + firstkey
            _range(argv, start, start + (numkeys - 1) * keystep, keystep, keys)
    return keys


class KeyTable:
    """Key extraction for every command the server knows."""

    def __init__(self, commands: dict[bytes, CommandKeys]) -> None:
        self._commands = commands
        # Per spelling of a command name: a slice for fixed key positions, or None.
        self._slices: dict[bytes, slice | None] = {}

    def _slice_for(self, name: bytes) -> slice | None:
        """Keys at fixed positions (GET, SET, MSET, DEL ...) are one slice of argv."""
        info = self._commands.get(name.lower())
        if info is None or info.subcommands or info.specs is None or len(info.specs) != 1:
            return None
        sp = info.specs[0]
        if sp.bs_index is None or sp.fk_range is None or sp.bs_index <= 0:
            return None
        lastkey, keystep, limit = sp.fk_range
        if keystep <= 0 or (lastkey < 0 and limit > 1):
            return None
        first = sp.bs_index
        if lastkey >= 0:
            return slice(first, first + lastkey + 1, keystep)
        return slice(first, lastkey + 1 if lastkey < -1 else None, keystep)

    @classmethod
    def from_command_reply(cls, reply: list[Any]) -> KeyTable:
        """Build from the reply to `COMMAND` (RESP2 or RESP3 shape)."""
        return cls(dict(_parse_entry(e) for e in reply if e))

    def __len__(self) -> int:
        return len(self._commands)

    def fixed_slice(self, name: bytes) -> slice | None:
        """The slice of argv holding the keys of `name`, when they sit at fixed positions."""
        try:
            return self._slices[name]
        except KeyError:
            sl = self._slice_for(name)
            if len(self._slices) < 4096:
                self._slices[name] = sl
            return sl

    def keys(self, argv: list[bytes]) -> list[bytes] | Any:
        """The key arguments of `argv`, or NEED_GETKEYS when only the server can tell."""
        name = argv[0]
        try:
            sl = self._slices[name]
        except KeyError:
            sl = self._slice_for(name)
            if len(self._slices) < 4096:
                self._slices[name] = sl
        if sl is not None:
            return argv[sl]
        info = self._commands.get(argv[0].lower())
        if info is None:
            return []  # unknown command: the server will reject it; no keys
        if info.subcommands and len(argv) > 1:
            sub = info.subcommands.get(argv[1].lower())
            if sub is not None:
                info = sub
        if info.specs is not None:
            return _keys_from_specs(argv, info.specs)
        if info.movable:
            return NEED_GETKEYS
        keys: list[bytes] = []
        last = info.last if info.last >= 0 else len(argv) + info.last
        _range(argv, info.first, last, info.step, keys)
        return keys


def fetch_key_table(host: str, port: int, timeout: float = 5.0, *, unix: str | None = None) -> KeyTable:
    """Read `COMMAND` from the server (a plain blocking socket: it runs once, before rules switch on).

    `unix`: the server's Unix socket, used instead of host:port when given.
    """
    where = unix or f"{host}:{port}"
    reader = hiredis.Reader()
    try:
        with _connect(host, port, unix, timeout) as sock:
            sock.sendall(encode_command("COMMAND"))
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise ProxyError(
                        f"upstream {where} closed the connection while reading COMMAND"
                    )
                reader.feed(chunk)
                reply = reader.gets()
                if reply is not False:
                    break
    except OSError as e:
        raise ProxyError(f"cannot read command metadata from upstream {where}: {e}") from e
    if isinstance(reply, Exception):
        raise ProxyError(f"upstream {where} refused COMMAND: {reply}")
    return KeyTable.from_command_reply(reply)


def _connect(host: str, port: int, unix: str | None, timeout: float) -> socket.socket:
    if unix is None:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(unix)
    except OSError:
        sock.close()
        raise
    return sock
