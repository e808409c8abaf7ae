"""The C counters of redtest/proxy/_scan.c against the Python framing they stand in for.

Random commands and replies (values full of RESP syntax), cut at random places and
mutated byte by byte: the C answer must be -1 or exactly what hiredis / ReplyScanner
make of the same bytes.
"""

from __future__ import annotations

import os
import random
import re

import hiredis
import pytest

from redtest.proxy import resp
from redtest.proxy.resp import ReplyScanner, encode_command

PURE = bool(os.environ.get("REDTEST_PROXY_PURE_PYTHON"))
pytestmark = pytest.mark.skipif(PURE, reason="REDTEST_PROXY_PURE_PYTHON turns the C counters off")

NASTY = [b"", b"x", b"\r\n", b"*1\r\n$4\r\nPING\r\n", b"$3\r\n", b"+OK\r\n", b"\n", b"\r", b"*", b"$"]


def _value(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return rng.choice(NASTY) * rng.randint(1, 3)
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))


def _commands(rng: random.Random, names: list[bytes]) -> list[list[bytes]]:
    return [
        [rng.choice(names)] + [_value(rng) for _ in range(rng.randint(0, 4))]
        for _ in range(rng.randint(1, 12))
    ]


def _parse_commands(data: bytes) -> list[object] | None:
    """hiredis' reading of `data` when it holds only complete frames, else None."""
    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    try:
        while (c := reader.gets()) is not False:
            out.append(c)
    except hiredis.ProtocolError:
        return None
    return out


def test_extension_is_built() -> None:
    assert resp.count_commands is not None and resp.count_replies is not None, (
        "redtest.proxy._scan did not build: `pip install -e .` needs a C compiler and the "
        "Python headers; the proxy still works, on its slower pure-Python paths"
    )


def test_count_commands_on_whole_chunks() -> None:
    assert resp.count_commands is not None
    rng = random.Random(1)
    names = [b"GET", b"SET", b"get", b"MSET", b"DEL", b"EVAL", b"X\r\n"]
    for _ in range(500):
        cmds = _commands(rng, names)
        chunk = b"".join(encode_command(*c) for c in cmds)
        known = set(rng.sample(names, rng.randint(1, len(names))))
        expected = len(cmds) if all(c[0] in known for c in cmds) else -1
        assert resp.count_commands(chunk, known) == expected


def _plan_says_forward(plan: object, argv: list[bytes]) -> bool:
    """conn.ClientConnection's reading of a decision plan (its _handle loop)."""
    if plan is True:
        return True
    if type(plan) is tuple:
        sl, key_match = plan
        return not any(key_match(k) for k in argv[sl])
    return False


def test_count_commands_with_plans_agrees_with_the_python_decisions() -> None:
    """With a connection's plans (True, or a key slice and the union regex of the key
    rules' globs), C counts a chunk only when Python would forward every command of it."""
    assert resp.count_commands is not None
    rng = random.Random(5)
    names = [b"GET", b"SET", b"MSET", b"DEL", b"PING"]
    globs = [re.compile(rb"(?:user:.*)", re.S).match, re.compile(rb"(?:\r\n|x)\Z", re.S).match]
    counted = refused = 0
    for _ in range(2000):
        cmds = _commands(rng, names)
        for c in cmds:  # keys that the globs sometimes match
            for i in range(1, len(c)):
                if rng.random() < 0.1:
                    c[i] = rng.choice([b"user:1", b"x", b"\r\n", b"userx"])
        chunk = b"".join(encode_command(*c) for c in cmds)
        plans: dict[bytes, object] = {}
        for name in rng.sample(names, rng.randint(1, len(names))):
            plans[name] = rng.choice(
                [
                    True,
                    None,
                    (slice(1, 2), rng.choice(globs)),
                    (slice(1, None, 2), rng.choice(globs)),
                    (slice(1, None), rng.choice(globs)),
                    (slice(2, -1), rng.choice(globs)),
                ]
            )
        forward = all(c[0] in plans and _plan_says_forward(plans[c[0]], c) for c in cmds)
        got = resp.count_commands(chunk, plans)
        assert got == (len(cmds) if forward else -1), (cmds, plans)
        counted += forward
        refused += not forward
    assert counted > 200 and refused > 200  # both outcomes were exercised


def test_count_commands_on_cut_chunks() -> None:
    assert resp.count_commands is not None
    rng = random.Random(2)
    names = [b"GET", b"SET", b"PING"]
    for _ in range(300):
        cmds = _commands(rng, names)
        encoded = [encode_command(*c) for c in cmds]
        chunk = b"".join(encoded)
        ends = {sum(map(len, encoded[: i + 1])): i + 1 for i in range(len(encoded))}
        for cut in rng.sample(range(1, len(chunk) + 1), min(20, len(chunk))):
            got = resp.count_commands(chunk[:cut], set(names))
            assert got == ends.get(cut, -1), (chunk[:cut], got)


def test_count_commands_accepts_only_canonical_known_commands() -> None:
    """Whatever mutated bytes it accepts are the exact encoding of that many known commands."""
    assert resp.count_commands is not None
    rng = random.Random(3)
    names = {b"GET", b"SET"}
    accepted = 0
    for _ in range(3000):
        chunk = bytearray(b"".join(encode_command(*c) for c in _commands(rng, sorted(names))))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(chunk))
            chunk[pos] = rng.choice(b"*$\r\n0123456789-xS")
        got = resp.count_commands(bytes(chunk), names)
        if got < 0:
            continue
        accepted += 1
        parsed = _parse_commands(bytes(chunk))
        assert parsed is not None and len(parsed) == got
        assert b"".join(encode_command(*c) for c in parsed) == chunk  # type: ignore[misc]
        assert all(c[0] in names for c in parsed)  # type: ignore[index]
    assert accepted > 100  # the mutations left many chunks valid: the check above ran


def test_count_commands_refuses_what_needs_the_general_path() -> None:
    assert resp.count_commands is not None
    names = {b"PING", b"GET"}
    for chunk in (
        b"",
        b"PING\r\n",  # inline
        b"*0\r\n",  # an empty array is no command
        b"*-1\r\n",
        b"*1\r\n+PING\r\n",  # a non-bulk element
        b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nECHO\r\n",  # a name that needs a decision
        b"*1\r\n$04\r\nPING\r\n",  # a length with a leading zero (Redis refuses it)
        b"*01\r\n$4\r\nPING\r\n",
        b"*2\r\n$3\r\nGET\r\n$9999999999999\r\n",
    ):
        assert resp.count_commands(chunk, names) == -1, chunk
    # Only bytes take the C path; other bytes-like data goes the general way.
    assert resp.count_commands(bytearray(b"*1\r\n$4\r\nPING\r\n"), names) == -1  # type: ignore[arg-type]
    assert resp.count_replies(memoryview(b"+OK\r\n")) == -1  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        resp.count_commands(b"*1\r\n$4\r\nPING\r\n", [b"PING"])  # type: ignore[arg-type]


def _reply(rng: random.Random, depth: int = 0) -> bytes:
    kind = rng.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return b"+" + rng.choice([b"OK", b"QUEUED", b"a b"]) + b"\r\n"
    if kind == 1:
        return b"-ERR " + rng.choice([b"x", b"y z"]) + b"\r\n"
    if kind == 2:
        return b":%d\r\n" % rng.randint(-5, 10**12)
    if kind in (3, 4):
        v = _value(rng)
        return b"%s%d\r\n%s\r\n" % (rng.choice([b"$", b"=", b"!"]), len(v), v)
    if kind == 5:
        return rng.choice([b"$-1\r\n", b"*-1\r\n", b"_\r\n", b"%-1\r\n"])
    if kind == 6:
        return rng.choice([b",1.5\r\n", b"#t\r\n", b"(123456789012345678901\r\n", b",inf\r\n"])
    if kind == 7:
        return b"*0\r\n"
    n = rng.randint(1, 4)
    t = rng.choice([b"*", b"~", b"%"])
    count = 2 * n if t == b"%" else n
    return b"%s%d\r\n" % (t, n) + b"".join(_reply(rng, depth + 1) for _ in range(count))


def test_count_replies_agrees_with_the_scanner() -> None:
    assert resp.count_replies is not None
    rng = random.Random(4)
    for _ in range(500):
        replies = [_reply(rng) for _ in range(rng.randint(1, 10))]
        chunk = b"".join(replies)
        assert resp.count_replies(chunk) == len(replies) == len(ReplyScanner().scan(chunk))
        ends = {sum(map(len, replies[: i + 1])): i + 1 for i in range(len(replies))}
        for cut in rng.sample(range(1, len(chunk) + 1), min(20, len(chunk))):
            assert resp.count_replies(chunk[:cut]) == ends.get(cut, -1)


def test_count_replies_accepts_only_what_the_scanner_ends_exactly() -> None:
    assert resp.count_replies is not None
    rng = random.Random(5)
    accepted = 0
    for _ in range(3000):
        chunk = bytearray(b"".join(_reply(rng) for _ in range(rng.randint(1, 6))))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(chunk))
            chunk[pos] = rng.choice(b"*$%~>|+:-\r\n0123456789")
        got = resp.count_replies(bytes(chunk))
        if got < 0:
            continue
        accepted += 1
        try:
            ends = ReplyScanner().scan(bytes(chunk))
        except resp.RespError:
            pytest.fail(f"C counted {got} replies in bytes the scanner refuses: {bytes(chunk)!r}")
        assert len(ends) == got and all(e > 0 for e in ends) and ends[-1] == len(chunk)
    assert accepted > 100


def test_count_replies_leaves_pushes_and_attributes_to_the_scanner() -> None:
    assert resp.count_replies is not None
    push = b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n"
    for chunk in (push, b"+OK\r\n" + push, b"$01\r\na\r\n", b"|1\r\n+a\r\n:1\r\n+OK\r\n", b"*1\r\n" + push, b"", b"?x\r\n"):
        assert resp.count_replies(chunk) == -1, chunk
    deep = b"*1\r\n" * 100 + b"+x\r\n"  # nesting beyond what C tracks
    assert resp.count_replies(deep) == -1
    assert len(ReplyScanner().scan(deep)) == 1


def test_the_environment_variable_turns_the_counters_off() -> None:
    import subprocess
    import sys

    code = "from redtest.proxy import conn, resp; print(resp.count_replies, conn.count_commands)"
    env = dict(os.environ, REDTEST_PROXY_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["None", "None"], out.stderr
