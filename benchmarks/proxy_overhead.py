"""Proxy overhead: redis-benchmark and redis-py round trips, direct vs through FaultProxy.

Starts a redis-server and two proxies (each in its own process, as in real use): one
with no rules, one with 10 rules that never match SET/GET. Direct and proxied runs
alternate, round by round, and every throughput is printed as a ratio to the direct
run of the same round (median over rounds). Then a 50 MB value passes the no-rule
proxy while its resident memory is sampled.

    python benchmarks/proxy_overhead.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Measure the redtest of this tree, whatever an installed copy points to.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ten_rules() -> list:  # type: ignore[type-arg]
    """Ten rules that never fire for redis-benchmark's SET/GET (key rules still inspect keys)."""
    from redtest.errors import Location
    from redtest.spec.model import DelayEffect, DropEffect, ErrorEffect, ResponseEffect, Rule

    loc = Location("benchmark", 1, 1)
    return [
        Rule(ErrorEffect("READONLY"), loc, command="HSET"),
        Rule(ErrorEffect(), loc, command="LPUSH"),
        Rule(DelayEffect(0.5), loc, command="Z*"),
        Rule(DropEffect(), loc, command="FLUSH*"),
        Rule(ResponseEffect(None), loc, command="HGET*"),
        Rule(ErrorEffect("WRONGTYPE"), loc, key="order:*"),
        Rule(ResponseEffect(None), loc, key="session:*"),
        Rule(DelayEffect(0.1), loc, command="GET", key="slow:*"),
        Rule(ErrorEffect(), loc, command="SET", client="worker-*"),
        Rule(DropEffect("lose_reply"), loc, command="INCR", key="counter:*"),
    ]


def serve_relay(upstream_port: int) -> None:
    """Child process: a bare uvloop byte relay (no framing, no rules) and print its port.

    Not part of redtest: the ceiling any asyncio-Protocol proxy can reach on this machine,
    to tell the proxy's own cost from the cost of a second hop through the kernel.
    """
    import asyncio

    import uvloop

    class Up(asyncio.Protocol):
        def __init__(self, down: asyncio.Transport) -> None:
            self.down = down

        def data_received(self, data: bytes) -> None:
            self.down.write(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self.down.close()

    class Down(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.up: asyncio.Transport | None = None
            self.pending: list[bytes] = []
            asyncio.get_running_loop().create_task(self.connect())

        async def connect(self) -> None:
            loop = asyncio.get_running_loop()
            up, _ = await loop.create_connection(
                lambda: Up(self.transport), "127.0.0.1", upstream_port
            )
            self.up = up  # type: ignore[assignment]
            up.write(b"".join(self.pending))

        def data_received(self, data: bytes) -> None:
            if self.up is None:
                self.pending.append(data)
            else:
                self.up.write(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if self.up is not None:
                self.up.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Down, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)

    uvloop.run(main())


def serve_proxy(upstream_port: int, mode: str) -> None:
    """Child process: run a proxy and print its port."""
    if mode == "relay":
        serve_relay(upstream_port)
        return
    from redtest.proxy.server import FaultProxy

    proxy = FaultProxy("127.0.0.1", upstream_port)
    proxy.start()
    proxy.set_rules(ten_rules() if mode == "ten" else [])
    print(proxy.address[1], flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        proxy.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = os.environ.get("REDTEST_REDIS_SERVER") or (
        "/usr/bin/redis-server"
        if Path("/usr/bin/redis-server").exists()
        else shutil.which("redis-server")
    )
    if not binary:
        sys.exit("redis-server not found")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    for _ in range(200):
        try:
            redis.Redis("127.0.0.1", port).ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    sys.exit("redis-server did not start")


def start_proxy(upstream: int, mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(upstream), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def redis_benchmark(port: int, pipeline: int, requests: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            "set,get",
            "-n",
            str(requests),
            "-c",
            "50",
            "-P",
            str(pipeline),
            "--csv",
            "-r",
            "100000",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0] in ("SET", "GET")]
    return {r[0]: float(r[1]) for r in rows}


def round_trips(port: int, n: int) -> list[float]:
    import redis

    r = redis.Redis("127.0.0.1", port)
    r.set("rt", "x" * 32)
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        if i % 2:
            r.get("rt")
        else:
            r.set("rt", "x" * 32)
        lat.append(time.perf_counter() - t0)
    r.close()
    return lat


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def memory_check(port: int, pid: int, size: int) -> tuple[float, float, float]:
    """RSS (MB) of the proxy process: before, peak during SET+GET of `size` bytes, 2 s after."""
    import psutil
    import redis

    proc = psutil.Process(pid)
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    r = redis.Redis("127.0.0.1", port, socket_timeout=60)
    value = os.urandom(1024) * (size // 1024)
    r.set("big", value)
    assert r.get("big") == value
    del value
    r.delete("big")
    r.close()
    time.sleep(2)
    done.set()
    t.join()
    after = proc.memory_info().rss
    mb = 1024 * 1024
    return base / mb, peak / mb, after / mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer requests")
    ap.add_argument(
        "--relay",
        action="store_true",
        help="also measure a bare uvloop byte relay (the ceiling for an asyncio proxy)",
    )
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_proxy(int(args.serve[0]), args.serve[1])
        return
    scale = 4 if args.quick else 1
    with tempfile.TemporaryDirectory() as tmp:
        server, port = start_redis(tmp)
        proxies = [start_proxy(port, "none"), start_proxy(port, "ten")]
        ports = {"direct": port, "no rules": proxies[0][1], "10 rules": proxies[1][1]}
        if args.relay:
            proxies.append(start_proxy(port, "relay"))
            ports["relay"] = proxies[2][1]
        try:
            run(args.rounds, scale, ports, proxies[0][0].pid)
        finally:
            for p, _ in proxies:
                assert p.stdin is not None
                p.stdin.close()
                p.wait(10)
            server.terminate()
            server.wait(10)


def run(rounds: int, scale: int, ports: dict[str, int], none_pid: int) -> None:
    targets = tuple(ports)
    print(
        f"proxy overhead: redis-benchmark -c 50 (SET, GET), {rounds} rounds, ratios to direct (median)"
    )
    for pipeline, requests in ((1, 100_000 // scale), (16, 400_000 // scale)):
        ratios: dict[tuple[str, str], list[float]] = {}
        rps: dict[tuple[str, str], list[float]] = {}
        for rnd in range(rounds):
            order = list(targets) if rnd % 2 == 0 else list(reversed(targets))
            got = {t: redis_benchmark(ports[t], pipeline, requests) for t in order}
            for t in targets:
                for test in ("SET", "GET"):
                    rps.setdefault((t, test), []).append(got[t][test])
                    ratios.setdefault((t, test), []).append(got[t][test] / got["direct"][test])
        for test in ("SET", "GET"):
            cells = []
            for t in targets:
                med = statistics.median(rps[(t, test)])
                r = statistics.median(ratios[(t, test)])
                cells.append(f"{t} {med:>9,.0f}/s" + ("" if t == "direct" else f" ({r:.2f}x)"))
            print(f"  pipeline {pipeline:>2} {test}: " + " | ".join(cells))
    n = 4000 // scale
    lat: dict[str, list[float]] = {t: [] for t in targets}
    for _ in range(rounds):
        for t in targets:
            lat[t] += round_trips(ports[t], n)
    d = lat["direct"]
    print(f"sequential redis-py round trips ({len(d)} per target, SET/GET alternating):")
    print(
        f"  direct: {statistics.mean(d) * 1e6:.0f} us/op, p50 {pct(d, 0.5) * 1e6:.0f} us, p99 {pct(d, 0.99) * 1e6:.0f} us"
    )
    for t in targets[1:]:
        x = lat[t]
        print(
            f"  {t}: {statistics.mean(x) * 1e6:.0f} us/op ({statistics.mean(x) / statistics.mean(d):.2f}x direct), "
            f"added p50 {(pct(x, 0.5) - pct(d, 0.5)) * 1e6:+.0f} us, p99 {(pct(x, 0.99) - pct(d, 0.99)) * 1e6:+.0f} us"
        )
    size = 50 * 1024 * 1024
    base, peak, after = memory_check(ports["no rules"], none_pid, size)
    print(
        f"50 MB value through the proxy (no rules): RSS {base:.0f} MB -> peak {peak:.0f} MB "
        f"(+{peak - base:.0f} MB = {(peak - base) / 50:.2f}x the value) -> {after:.0f} MB after"
    )


if __name__ == "__main__":
    main()
