"""Key positions from the server's COMMAND metadata (Redis 7 key-specs, GETKEYS fallback)."""

from __future__ import annotations

import pytest

from redtest.proxy.keys import NEED_GETKEYS, fetch_key_table


@pytest.fixture(scope="module")
def table(redis_server: tuple[str, int]):  # type: ignore[no-untyped-def]
    return fetch_key_table(*redis_server)


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        ("GET a", ["a"]),
        ("MSET a 1 b 2", ["a", "b"]),
        ("DEL a b c", ["a", "b", "c"]),
        ("ZUNIONSTORE d 2 a b WEIGHTS 1 2", ["d", "a", "b"]),
        ("EVAL s 2 k1 k2 argv", ["k1", "k2"]),
        ("XREAD COUNT 1 STREAMS s1 s2 0 0", ["s1", "s2"]),
        ("OBJECT ENCODING k", ["k"]),
        ("PING", []),
        ("NOSUCHCOMMAND x", []),
    ],
)
def test_keys(table, command: str, keys: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert table.keys([a.encode() for a in command.split()]) == [k.encode() for k in keys]


def test_incomplete_specs_ask_the_server(table) -> None:  # type: ignore[no-untyped-def]
    assert table.keys([b"SORT", b"src", b"STORE", b"dst"]) is NEED_GETKEYS
