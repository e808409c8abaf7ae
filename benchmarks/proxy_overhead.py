"""Proxy overhead: redis-benchmark and redis-py round trips, direct vs through FaultProxy.

Starts a redis-server (a TCP port and a Unix socket) and four proxies, each in its own
process: with no rules and with 10 rules that never match SET/GET, both reaching the
server over its Unix socket as redtest does for the servers it starts (local,
embedded); with no rules over TCP, as for docker and external servers; and with no
rules and the fast lane off (REDTEST_PROXY_FAST_LANE=0: every connection on the asyncio
path), to show what the lane adds. Clients
always reach the proxies over TCP, like the direct runs. Direct and proxied runs
alternate, round by round, and every throughput is printed as a ratio to the direct
run of the same round (median over rounds). Then a 50 MB value passes the no-rule
proxy while its resident memory is sampled.

    python benchmarks/proxy_overhead.py [--rounds 5] [--quick]

REDTEST_PROXY_PURE_PYTHON=1 measures the proxies without their C counters.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import resource
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


RELAYS = ("protocol", "buffered", "buffered-bytes", "oswrite", "epoll")


def serve_relay(upstream_port: int, variant: str, unix: str | None) -> None:
    """Child process: a bare uvloop byte relay (no framing, no rules) and print its port.

    Not part of redtest: the ceiling any asyncio proxy can reach on this machine, to tell
    the proxy's own cost from the cost of a second hop through the kernel. Variants:

    - protocol: asyncio.Protocol, data_received -> transport.write (what the proxy does)
    - buffered: asyncio.BufferedProtocol reading into a preallocated bytearray; a
      memoryview slice is written (no bytes object per chunk); a new buffer is taken
      when the transport kept a reference (partial write)
    - buffered-bytes: the same, but a bytes copy of the slice is written
    - oswrite: Protocol, but os.write() on the peer's fd while its transport buffer is
      empty (one layer less); transport.write for the rest
    - epoll: no asyncio at all: select.epoll, recv_into a preallocated buffer, send
    """
    if variant == "epoll":
        serve_epoll_relay(upstream_port, unix)
        return
    import asyncio

    import uvloop

    size = 256 * 1024

    class Side:
        """What both directions share: the peer transport and how to write to it."""

        peer: asyncio.Transport | None = None
        peer_fd = -1

        def send(self, data: bytes | memoryview) -> None:
            peer = self.peer
            assert peer is not None
            if variant == "oswrite" and not peer.get_write_buffer_size():
                try:
                    n = os.write(self.peer_fd, data)
                except BlockingIOError:
                    n = 0
                if n == len(data):
                    return
                data = data[n:]
            peer.write(data)

        def set_peer(self, t: asyncio.Transport) -> None:
            self.peer = t
            self.peer_fd = t.get_extra_info("socket").fileno()

    if variant in ("buffered", "buffered-bytes"):

        class Base(Side, asyncio.BufferedProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.buf = bytearray(size)
                self.view = memoryview(self.buf)

            def get_buffer(self, sizehint: int) -> memoryview:
                return self.view

            def buffer_updated(self, nbytes: int) -> None:
                peer = self.peer
                assert peer is not None
                if variant == "buffered-bytes":
                    peer.write(self.buf[:nbytes])
                    return
                peer.write(self.view[:nbytes])
                if peer.get_write_buffer_size():  # the transport holds our slice
                    self.buf = bytearray(size)
                    self.view = memoryview(self.buf)

    else:

        class Base(Side, asyncio.Protocol):  # type: ignore[no-redef]
            def data_received(self, data: bytes) -> None:
                self.send(data)

    class Up(Base):
        def __init__(self, down: asyncio.Transport) -> None:
            self.set_peer(down)

        def connection_lost(self, exc: Exception | None) -> None:
            assert self.peer is not None
            self.peer.close()

    class Down(Base):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.pending: list[bytes] = []
            asyncio.get_running_loop().create_task(self.connect())

        async def connect(self) -> None:
            loop = asyncio.get_running_loop()
            if unix:
                up, _ = await loop.create_unix_connection(lambda: Up(self.transport), unix)
            else:
                up, _ = await loop.create_connection(
                    lambda: Up(self.transport), "127.0.0.1", upstream_port
                )
            self.set_peer(up)  # type: ignore[arg-type]
            up.write(b"".join(self.pending))

        def data_received(self, data: bytes) -> None:
            if self.peer is None:
                self.pending.append(data)
            else:
                self.send(data)

        def buffer_updated(self, nbytes: int) -> None:
            if self.peer is None:
                self.pending.append(bytes(self.buf[:nbytes]))
            else:
                super().buffer_updated(nbytes)  # type: ignore[misc]

        def connection_lost(self, exc: Exception | None) -> None:
            if self.peer is not None:
                self.peer.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Down, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)

    uvloop.run(main())


def serve_epoll_relay(upstream_port: int, unix: str | None) -> None:
    """The `epoll` relay variant: a plain level-triggered epoll loop, no event-loop library."""
    import select

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    lsock.setblocking(False)
    print(lsock.getsockname()[1], flush=True)
    ep = select.epoll()
    ep.register(lsock.fileno(), select.EPOLLIN)
    ep.register(sys.stdin.fileno(), select.EPOLLIN)  # parent closes stdin: stop
    socks: dict[int, socket.socket] = {}
    peer: dict[int, int] = {}
    backlog: dict[int, bytes] = {}  # fd -> bytes not yet sent to it (its source is paused)
    buf = bytearray(256 * 1024)
    view = memoryview(buf)

    def close(fd: int) -> None:
        for f in (fd, peer.get(fd, -1)):
            s = socks.pop(f, None)
            if s is not None:
                ep.unregister(f)
                s.close()
            peer.pop(f, None)
            backlog.pop(f, None)

    def send(dst: int, data: bytes | memoryview, src: int) -> None:
        try:
            n = socks[dst].send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):  # back-pressure: stop reading src until dst drains
            backlog[dst] = bytes(data[n:])
            ep.modify(dst, select.EPOLLIN | select.EPOLLOUT)
            ep.modify(src, 0)

    while True:
        for fd, ev in ep.poll():
            if fd == lsock.fileno():
                c, _ = lsock.accept()
                if unix:
                    u = socket.socket(socket.AF_UNIX)
                    u.connect(unix)
                else:
                    u = socket.create_connection(("127.0.0.1", upstream_port))
                for s in (c, u):
                    s.setblocking(False)
                    if s.family != socket.AF_UNIX:
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    socks[s.fileno()] = s
                    ep.register(s.fileno(), select.EPOLLIN)
                peer[c.fileno()], peer[u.fileno()] = u.fileno(), c.fileno()
                continue
            if fd == sys.stdin.fileno():
                return
            s = socks.get(fd)
            if s is None:
                continue
            if ev & select.EPOLLOUT and fd in backlog:
                data = backlog.pop(fd)
                ep.modify(fd, select.EPOLLIN)
                ep.modify(peer[fd], select.EPOLLIN)
                send(fd, data, peer[fd])
                continue
            try:
                n = s.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                n = 0
            if not n:
                close(fd)
                continue
            send(peer[fd], view[:n], fd)


def serve_proxy(upstream_port: int, mode: str, unix: str) -> None:
    """Child process: run a proxy and print its port.

    Modes: none / ten (rules), tcp (no rules, upstream over TCP), asyncio (no rules,
    without the fast lane: every connection on the event loop), relay:VARIANT.
    """
    upstream_unix = None if mode == "tcp" else unix
    if mode == "asyncio":
        os.environ["REDTEST_PROXY_FAST_LANE"] = "0"
    if mode.startswith("relay:"):
        serve_relay(upstream_port, mode[6:], upstream_unix)
        return
    from redtest.proxy.server import FaultProxy

    proxy = FaultProxy("127.0.0.1", upstream_port, upstream_unix=upstream_unix)
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
            "--unixsocket",
            f"{tmp}/redis.sock",
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


def start_proxy(upstream: int, mode: str, unix: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(upstream), mode, unix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def start_haproxy(upstream: str, tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    """haproxy in TCP mode (one thread), the C transparent proxy issue 4 compares with.

    `upstream` is 127.0.0.1:PORT or a Unix socket path (haproxy takes both as a server).
    """
    binary = shutil.which("haproxy")
    if binary is None:
        sys.exit("--haproxy: no haproxy on PATH (apt-get install haproxy)")
    port = free_port()
    cfg = Path(tmp) / f"haproxy-{port}.cfg"
    cfg.write_text(
        "global\n  nbthread 1\n"
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n"
        f"listen redis\n  bind 127.0.0.1:{port}\n  server s1 {upstream}\n"
    )
    proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("haproxy did not start")


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


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """user+system CPU seconds of each process so far, and of finished redis-benchmark runs."""
    import psutil

    out = {}
    for t, pid in pids.items():
        c = psutil.Process(pid).cpu_times()
        out[t] = c.user + c.system
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited children: redis-benchmark
    out["redis-benchmark"] = r.ru_utime + r.ru_stime
    return out


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
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer requests")
    ap.add_argument(
        "--relay",
        nargs="?",
        const="protocol",
        default="",
        help="also measure bare uvloop byte relays (the ceiling for an asyncio proxy): "
        f"comma-separated variants of {', '.join(RELAYS)} (default protocol)",
    )
    ap.add_argument(
        "--haproxy",
        action="store_true",
        help="also measure haproxy in TCP mode, over the Unix socket and over TCP to the "
        "server (a C transparent proxy; needs haproxy on PATH)",
    )
    ap.add_argument(
        "--pipelines",
        default="1,16",
        help="redis-benchmark pipeline depths, comma-separated (default 1,16)",
    )
    ap.add_argument(
        "--no-extras",
        action="store_true",
        help="skip the redis-py round trips and the 50 MB memory check",
    )
    ap.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_proxy(int(args.serve[0]), args.serve[1], args.serve[2])
        return
    scale = 4 if args.quick else 1
    relays = [v for v in args.relay.split(",") if v]
    for v in relays:
        if v not in RELAYS:
            ap.error(f"unknown relay variant {v!r} (choose from {', '.join(RELAYS)})")
    pipelines = [int(x) for x in args.pipelines.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        server, port = start_redis(tmp)
        unix = f"{tmp}/redis.sock"
        proxies = [start_proxy(port, m, unix) for m in ("none", "ten", "tcp", "asyncio")]
        ports = {
            "direct": port,
            "no rules": proxies[0][1],
            "10 rules": proxies[1][1],
            "no rules, TCP up": proxies[2][1],
            "no rules, no fast lane": proxies[3][1],
        }
        for v in relays:
            proxies.append(start_proxy(port, f"relay:{v}", unix))
            ports["relay" if v == "protocol" else f"relay {v}"] = proxies[-1][1]
        pids = {"direct": server.pid} | {
            t: proc.pid for t, (proc, _) in zip(list(ports)[1:], proxies, strict=True)
        }
        haproxies = []
        if args.haproxy:  # both upstreams, to compare like with like
            for name, up in (("haproxy", unix), ("haproxy, TCP up", f"127.0.0.1:{port}")):
                haproxies.append(start_haproxy(up, tmp))
                ports[name], pids[name] = haproxies[-1][1], haproxies[-1][0].pid
        try:
            run(args.rounds, scale, ports, pids, pipelines, not args.no_extras)
        finally:
            for proc, _ in haproxies:
                proc.terminate()
                proc.wait(10)
            for p, _ in proxies:
                assert p.stdin is not None
                p.stdin.close()
                p.wait(10)
            server.terminate()
            server.wait(10)


def run(
    rounds: int,
    scale: int,
    ports: dict[str, int],
    pids: dict[str, int],
    pipelines: list[int],
    extras: bool,
) -> None:
    targets = tuple(ports)
    from redtest.proxy import resp

    framing = "C counters" if resp.count_commands is not None else "pure Python (no C counters)"
    print(
        f"proxy overhead: redis-benchmark -c 50 (SET, GET), {rounds} rounds, ratios to direct (median)"
    )
    print(
        f"  proxy framing: {framing}; upstream over the server's Unix socket unless 'TCP up'"
    )
    for pipeline in pipelines:
        requests = (100_000 if pipeline == 1 else 400_000) // scale
        ratios: dict[tuple[str, str], list[float]] = {}
        rps: dict[tuple[str, str], list[float]] = {}
        cpu: dict[str, list[tuple[float, float, float]]] = {}
        for rnd in range(rounds):
            order = list(targets) if rnd % 2 == 0 else list(reversed(targets))
            got = {}
            for t in order:
                # CPU per request is steadier than throughput on a shared machine.
                before = cpu_seconds(pids)
                got[t] = redis_benchmark(ports[t], pipeline, requests)
                after = cpu_seconds(pids)
                used = {k: (after[k] - before[k]) * 1e6 / (2 * requests) for k in after}
                cpu.setdefault(t, []).append((used[t], used["direct"], used["redis-benchmark"]))
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
        cells = []
        for t in targets:
            own, srv, bench = (statistics.median(c) for c in zip(*cpu[t], strict=True))
            cells.append(
                f"{t} srv {srv:.2f} bench {bench:.2f}"
                + ("" if t == "direct" else f" proxy {own:.2f}")
            )
        print(f"  pipeline {pipeline:>2} CPU us/request: " + " | ".join(cells))
    if not extras:
        return
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
    base, peak, after = memory_check(ports["no rules"], pids["no rules"], size)
    print(
        f"50 MB value through the proxy (no rules): RSS {base:.0f} MB -> peak {peak:.0f} MB "
        f"(+{peak - base:.0f} MB = {(peak - base) / 50:.2f}x the value) -> {after:.0f} MB after"
    )


if __name__ == "__main__":
    main()
