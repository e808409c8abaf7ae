"""Running at scale: long scenarios, many tests (real embedded redis-server, real proxy).

Costs are checked by counting operations, so these tests cannot be flaky on a busy machine.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from redtest import results
from redtest.results import BaseListener
from redtest.runner import RunOptions, execute, run
from redtest.spec.build import load_suite

SERVICE = (
    "version: 1\nservices:\n  cache:\n    runtime: embedded\n"
    "    interfaces: {main: {protocol: redis}}\n"
)


def _long_scenario(n: int) -> str:
    steps = "".join(
        f"      - cache.main.incr: {{key: c}}\n        as: s{i}\n"
        f"        expect: ['assert_eq(len(steps), {i + 1})', 'assert_eq(r.data[\"value\"], {i + 1})'"
        + (f", 'assert_eq(s{i - 1}.data[\"value\"], {i})'" if i else "")
        + "]\n"
        for i in range(n)
    )
    return (
        f"{SERVICE}scenarios:\n  long:\n    steps:\n{steps}"
        f"    expect:\n      - assert_eq(len(steps), {n})\n      - assert_eq(s0.data['value'], 1)\n"
    )


def test_step_expectations_cost_does_not_grow_with_the_steps_before(monkeypatch, tmp_path) -> None:
    """Every step's expect rebuilt the namespace from all the steps before it: a scenario
    of 10,000 steps with expect took 9 s instead of 1 s. Count the responses copied."""
    copied: list[int] = []
    real = execute._namespace

    def counting(env, steps):  # type: ignore[no-untyped-def]
        copied.append(len(steps))
        return real(env, steps)

    monkeypatch.setattr(execute, "_namespace", counting)
    n = 400
    path = tmp_path / "long.yaml"
    path.write_text(_long_scenario(n))
    result, start_failed = run([load_suite(path)], RunOptions(runtime="embedded"))
    assert not start_failed
    [test] = result.tests
    assert test.status == "passed", test.error
    assert sum(len(s.assertions) for s in test.steps) == 3 * n - 1
    assert all(a.passed for s in test.steps for a in s.assertions)
    assert sum(copied) <= 2 * n + 2, sum(copied)  # it was n * (n + 1) / 2


def test_each_step_expect_sees_its_own_response_and_the_names_before_it(cli, tmp_path) -> None:
    (tmp_path / "long.yaml").write_text(_long_scenario(30))
    report = tmp_path / "r.json"
    result = cli(["run", "long.yaml", "--json", str(report)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    [test] = json.loads(report.read_text())["tests"]
    assert [len(s["assertions"]) for s in test["steps"]] == [2] + [3] * 29
    assert all(a["passed"] for s in test["steps"] for a in s["assertions"])
    assert len(test["assertions"]) == 2


def test_a_wrong_step_expectation_in_a_long_scenario_still_fails_it(cli, tmp_path) -> None:
    text = _long_scenario(30).replace("assert_eq(len(steps), 20)", "assert_eq(len(steps), 19)")
    (tmp_path / "long.yaml").write_text(text)
    result = cli(["run", "long.yaml"], cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "assert_eq(len(steps), 19)" in result.stdout
    assert "expected 19, got 20" in result.stdout


class _Sampler(BaseListener):
    """Open file descriptors and threads of this process after each test."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, int]] = []

    def test_finished(self, result: results.TestResult) -> None:
        self.samples.append((len(os.listdir("/proc/self/fd")), threading.active_count()))


def test_a_long_run_holds_no_more_connections_or_threads_at_its_end(tmp_path: Path) -> None:
    """300 tests, a third of them with a fault (fresh connections, rule swaps): what is
    open near the end is no more than what was open early on, and after the run, what was
    before."""
    parts = [
        SERVICE,
        "    seed:\n      - cache.main.command: {cmd: FLUSHALL}\n",
        "faults:\n  slow: {target: cache.main, rules: [{delay: {command: GET, delay: 1ms}}]}\n",
        "  down: {target: cache.main, rules: [{down: {}}]}\n",
        "scenarios:\n",
    ]
    for i in range(200):
        parts.append(
            f"  s{i}:\n    steps:\n      - cache.main.set: {{key: k, value: v{i}}}\n"
            f"      - cache.main.get: {{key: k}}\n    expect: ['assert_eq(r.data[\"value\"], \"v{i}\")']\n"
        )
    parts.append("fault_scenarios:\n")
    for i in range(0, 200, 2):
        fault = "slow" if i % 4 else "down"
        parts.append(f"  f{i}:\n    scenario: s{i}\n    faults: {fault}\n    expect: ['True']\n")
    path = tmp_path / "many.yaml"
    path.write_text("".join(parts))
    suite = load_suite(path)
    # a first, small run opens what stays open for the process's life (modules imported
    # on first use, the embedded runtime's files), so `before` is taken after it
    warm = tmp_path / "warm.yaml"
    warm.write_text("".join(parts[:3]) + "scenarios:\n  w:\n    steps:\n      - cache.main.ping: {}\n")
    assert run([load_suite(warm)], RunOptions(runtime="embedded"), [])[0].tests[0].status == "passed"
    before = (len(os.listdir("/proc/self/fd")), threading.active_count())
    sampler = _Sampler()
    result, _ = run([suite], RunOptions(runtime="embedded"), [sampler])
    assert [t.status for t in result.tests] == ["passed"] * 300
    # Closing is asynchronous (the proxy's loop closes a pair a moment after the test),
    # so a sample may catch one or two descriptors on their way out: compare the highest
    # counts of an early stretch and of the end, which grow only if something piles up.
    early, late = sampler.samples[20:80], sampler.samples[-60:]
    for what, i in (("descriptors", 0), ("threads", 1)):
        assert max(x[i] for x in late) <= max(x[i] for x in early), (what, early, late)
    after = (len(os.listdir("/proc/self/fd")), threading.active_count())
    assert after == before
