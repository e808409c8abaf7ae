"""Framing units: command lengths, inline parsing, reply boundaries across chunk splits."""

from __future__ import annotations

import pytest

from redtest.proxy import resp
from redtest.proxy.resp import (
    ReplyScanner,
    RespError,
    command_length,
    encode_command,
    encode_error,
    encode_value,
    parse_one,
)


def test_command_length_matches_encoding() -> None:
    for argv in ([b"PING"], [b"SET", b"k", b"v" * 1000], [b"MSET"] + [b"x"] * 12, [b""]):
        assert command_length(argv) == len(encode_command(*argv))


def test_parse_one_array_and_inline() -> None:
    data = encode_command("SET", "a", "1") + b"PING\r\nSET \"a b\" 'c'\n\r\n"
    argv, pos = parse_one(data, 0)
    assert argv == [b"SET", b"a", b"1"]
    argv, pos = parse_one(data, pos)
    assert argv == [b"PING"]
    argv, pos = parse_one(data, pos)
    assert argv == [b"SET", b"a b", b"c"]
    argv, pos = parse_one(data, pos)
    assert argv == [] and pos == len(data)
    assert parse_one(data[:-3], 0)[1] < len(data)
    assert parse_one(encode_command("GET", "k")[:-1], 0) is None


def test_inline_escapes_as_redis_reads_them(redis_server: tuple[str, int]) -> None:
    # What the server stores for each inline argument is what the proxy must match on.
    import socket

    import redis

    lines = [
        rb'"ord\x65r:1"', rb'"tab\there"', rb'"\xZZ"', rb"'it\'s'", rb'"q\"uote"', rb'"\x4a\x4B"',
    ]
    direct = redis.Redis(*redis_server)
    with socket.create_connection(redis_server) as sock:
        for i, arg in enumerate(lines):
            sock.sendall(b"RPUSH inline:%d " % i + arg + b"\r\n")
            assert sock.recv(64).startswith(b":")
    for i, arg in enumerate(lines):
        stored = direct.lrange(f"inline:{i}", 0, -1)
        assert parse_one(b"RPUSH k " + arg + b"\r\n", 0)[0][2:] == stored, arg
    direct.close()


def test_parse_one_rejects_garbage() -> None:
    with pytest.raises(RespError):
        parse_one(b"*2\r\n:1\r\n", 0)


def test_encoders() -> None:
    assert encode_error("READONLY x") == b"-READONLY x\r\n"
    assert encode_value(None, False) == b"$-1\r\n"
    assert encode_value(None, True) == b"_\r\n"
    assert encode_value(7, False) == b":7\r\n"
    assert encode_value("hé", False) == b"$3\r\nh\xc3\xa9\r\n"


REPLIES = [
    b"+OK\r\n",
    b"-ERR x\r\n",
    b":12\r\n",
    b"$3\r\nabc\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
    b"%1\r\n+k\r\n~2\r\n:1\r\n,1.5\r\n",
    b"|1\r\n+ttl\r\n:3\r\n$2\r\nhi\r\n",  # an attribute belongs to the reply after it
    b"_\r\n",
    b"#t\r\n",
    b"=7\r\ntxt:abc\r\n",
    b"!3\r\nERR\r\n",
    b"(123\r\n",
]
PUSH = b">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n$0\r\n\r\n"


def _ends(stream: bytes) -> list[int]:
    ends = []
    acc = 0
    for r in REPLIES:
        acc += len(r)
        ends.append(acc)
    return ends


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_scanner_finds_every_reply_end_in_any_split(chunk: int) -> None:
    stream = b"".join(REPLIES)
    scanner = ReplyScanner()
    found: list[int] = []
    for off in range(0, len(stream), chunk):
        found += [off + e for e in scanner.scan(stream[off : off + chunk])]
    assert found == _ends(stream)


def test_scanner_marks_push_frames() -> None:
    scanner = ReplyScanner()
    ends = scanner.scan(b"+OK\r\n" + PUSH + b":1\r\n")
    assert ends == [5, -(5 + len(PUSH)), 5 + len(PUSH) + 4]
    assert scanner.pushes == 1


def test_scanner_knows_an_unfinished_push_from_its_first_byte() -> None:
    """in_push holds from the push's first byte on, not only once its header line ends."""
    frames = [b"+OK\r\n", PUSH, b"-ERR x\r\n", PUSH, b"*1\r\n$1\r\n>\r\n"]
    stream = b"".join(frames)
    starts = [sum(map(len, frames[:k])) for k in range(len(frames))]
    for cut in range(1, len(stream)):
        scanner = ReplyScanner()
        scanner.scan(stream[:cut])
        k = max(i for i, start in enumerate(starts) if start < cut)  # the frame cut through
        unfinished = cut < starts[k] + len(frames[k])
        assert scanner.in_push is (unfinished and frames[k] is PUSH), cut


def test_scanner_skips_large_payload_without_buffering() -> None:
    scanner = ReplyScanner()
    size = 10_000_000
    assert scanner.scan(b"$%d\r\n" % size + b"x" * 100) == []
    assert scanner.scan(b"x" * (size - 100)) == []
    assert scanner.scan(b"\r\n+OK\r\n") == [2, 7]


FLAT = [
    b"+OK\r\n",
    b"-ERR no\r\n",
    b":42\r\n",
    b"$-1\r\n",
    b"$0\r\n\r\n",
    b"$3\r\nxxx\r\n",
    b"$4\r\n\r\n\r\n\r\n",  # a payload made of CRLFs is counted, not read
    b"$5\r\n$1\r\na\r\n",  # a payload that looks like a reply
    b"$999\r\n" + b"y" * 999 + b"\r\n",
    b"_\r\n",
    b",1.5\r\n",
    b"#t\r\n",
    b"(12\r\n",
]


@pytest.fixture(params=["c", "python"])
def counter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """count_complete with the C counter of _scan.c, and with the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(resp, "count_replies", None)
    elif resp.count_replies is None:
        pytest.fail("the C extension redtest.proxy._scan is not built (see test_scan.py)")
    return str(request.param)


def test_count_complete_agrees_with_scan(counter: str) -> None:
    import random

    rng = random.Random(7)
    for _ in range(300):
        chunk = b"".join(rng.choice(FLAT) for _ in range(rng.randint(1, 20)))
        assert ReplyScanner().count_complete(chunk) == len(ReplyScanner().scan(chunk))


@pytest.mark.parametrize(
    "chunk",
    [
        b"+OK\r\n+O",  # an incomplete reply at the end
        b"$3\r\nxx",
        b"$3\r\nxxxx\r\n",  # payload longer than announced
        b"*2\r\n$1\r\na\r\n",  # an aggregate still owed an element
        PUSH,  # answers no command: the scanner's job
        b"+OK\r\n" + PUSH,
        b"|1\r\n+ttl\r\n:3\r\n+OK\r\n",  # attributes too
        b"$x\r\nab\r\n",  # not a length
    ],
)
def test_count_complete_declines_what_it_cannot_count(counter: str, chunk: bytes) -> None:
    assert ReplyScanner().count_complete(chunk) is None


@pytest.mark.parametrize(
    "chunk",
    [
        b"$1000\r\n" + b"z" * 1000 + b"\r\n",  # beyond the regex's lengths
        b"*1\r\n$1\r\na\r\n",  # aggregates
        b"=7\r\ntxt:abc\r\n",  # verbatim strings
    ],
)
def test_only_the_c_counter_takes_aggregates_and_long_values(counter: str, chunk: bytes) -> None:
    expected = 1 if counter == "c" else None
    assert ReplyScanner().count_complete(chunk) == expected


def test_count_complete_only_between_replies() -> None:
    scanner = ReplyScanner()
    assert scanner.scan(b"$6\r\nabc") == []  # inside a bulk: a flat-looking chunk is payload
    assert scanner.count_complete(b"+OK\r\n") is None
    assert scanner.scan(b"def\r\n+OK\r\n") == [5, 10]
    assert scanner.count_complete(b"+OK\r\n+OK\r\n") == 2
