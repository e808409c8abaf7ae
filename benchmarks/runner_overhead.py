"""How much redtest adds per scenario, compared with a plain redis-py script.

A generated suite of N scenarios (each: a seed reset of FLUSHALL + 2 SETs, 5 steps
through the proxy, 2 assertions that read the server) runs under `redtest run
--runtime embedded`. A plain redis-py script sends the same commands, directly,
to the same kind of server (the embedded binary). Both are measured in this one
run, side by side, and the script prints:

- the per-scenario time of each (redtest: the sum of its tests' durations from
  the JSON report, so service start-up is excluded) and their ratio;
- the time from starting `redtest run` to its first step (the first step runs
  TIME on the server; the same machine's clock started the process).

Targets: per-scenario ratio <= 3, first step <= 1.5 s after start.
Usage: python benchmarks/runner_overhead.py [--scenarios 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

STEPS = """\
      - cache.main.command: {{cmd: TIME}}
      - cache.main.set: {{key: "k:{i}", value: "v{i}"}}
      - cache.main.incr: {{key: counter}}
      - cache.main.get: {{key: "k:{i}"}}
      - cache.main.rpush: {{key: queue, value: "item{i}"}}
"""


def generate_suite(path: Path, count: int) -> None:
    """Write the benchmark suite: one service with a seed, `count` scenarios."""
    lines = [
        "version: 1",
        "services:",
        "  cache:",
        "    runtime: embedded",
        "    interfaces: {main: {protocol: redis}}",
        "    seed:",
        "      - cache.main.command: {cmd: FLUSHALL}",
        '      - cache.main.set: {key: "config:a", value: "1"}',
        '      - cache.main.set: {key: "config:b", value: "2"}',
        "scenarios:",
    ]
    for i in range(count):
        lines.append(f"  s{i:04d}:")
        lines.append("    steps:")
        lines.append(STEPS.format(i=i).rstrip("\n"))
        lines.append("    expect:")
        lines.append(f'      - assert_eq(cache.main.get(key="k:{i}").data["value"], "v{i}")')
        lines.append('      - assert_eq(cache.main.get(key="config:a").data["value"], "1")')
    path.write_text("\n".join(lines) + "\n")


def run_redtest(suite: Path, workdir: Path) -> tuple[float, float]:
    """(per-scenario seconds from the report, seconds from start to the first step)."""
    report = workdir / "report.json"
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "redtest", "run", str(suite), "-q", "--json", str(report)],
        capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"redtest run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(report.read_text())
    tests = data["tests"]
    per_scenario = sum(t["duration_s"] for t in tests) / len(tests)
    first_time = tests[0]["steps"][0]["response"]["data"]
    first_step_at = int(first_time[0]) + int(first_time[1]) / 1e6
    return per_scenario, first_step_at - started


def run_plain(count: int) -> float:
    """Per-scenario seconds of the same commands sent with redis-py, directly."""
    from redtest.services.embedded import embedded_binary

    with tempfile.TemporaryDirectory() as tmp:
        sock_port = _free_port()
        server = subprocess.Popen(
            [str(embedded_binary()), "--port", str(sock_port), "--save", "", "--appendonly", "no",
             "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=sock_port, decode_responses=True)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            started = time.perf_counter()
            for i in range(count):
                client.flushall()
                client.set("config:a", "1")
                client.set("config:b", "2")
                client.execute_command("TIME")
                client.set(f"k:{i}", f"v{i}")
                client.incr("counter")
                client.get(f"k:{i}")
                client.rpush("queue", f"item{i}")
                assert client.get(f"k:{i}") == f"v{i}"
                assert client.get("config:a") == "1"
            return (time.perf_counter() - started) / count
        finally:
            server.terminate()
            server.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        suite = workdir / "bench.yaml"
        generate_suite(suite, args.scenarios)
        redtest_times, plain_times, first_steps = [], [], []
        for _ in range(args.rounds):  # alternate, so machine noise hits both alike
            per, first = run_redtest(suite, workdir)
            redtest_times.append(per)
            first_steps.append(first)
            plain_times.append(run_plain(args.scenarios))
    r = statistics.median(redtest_times)
    p = statistics.median(plain_times)
    print(f"scenarios: {args.scenarios}, rounds: {args.rounds} (medians)")
    print(f"redtest per scenario:   {r * 1000:8.2f} ms")
    print(f"redis-py per scenario:  {p * 1000:8.2f} ms")
    print(f"ratio redtest/redis-py: {r / p:8.2f}   (target <= 3)")
    print(f"start to first step:    {statistics.median(first_steps):8.2f} s    (target <= 1.5 s)")


if __name__ == "__main__":
    main()
