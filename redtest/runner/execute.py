"""Run one planned test: reset → faults on → steps via the proxy → faults off → expect."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redtest import expr
from redtest.clients.redis import CONNECTION_STATE_COMMANDS
from redtest.clients.response import Response
from redtest.errors import RedtestError
from redtest.results import (
    AssertionResult,
    FaultActivation,
    PlannedTest,
    RuleHits,
    StepResult,
    TestResult,
)
from redtest.runner.environment import Environment
from redtest.spec import model

StepCallback = Callable[[StepResult], None]


class SetupFailed(Exception):
    """Resetting the data before a test failed: the test errors, it does not fail."""


def run_test(
    test: PlannedTest, env: Environment, *, random_seed: int, on_step: StepCallback
) -> TestResult:
    """Execute `test` against `env` and judge it."""
    suite = env.suite
    started = time.monotonic()
    scenario = suite.scenarios[test.scenario]
    result = TestResult(test, "passed", 0.0)
    lenient = test.kind == "fault_scenario"  # step failures are recorded, not fatal
    if test.faults:
        # Fresh connections: one kept from an earlier clean test would meet this test's
        # faults (a `down` closing it counted as this test's hit), so reports depended on
        # what ran before. Closed before the reset, which gives the proxy time to see it go.
        env.close_step_clients()
    try:
        reset(env)
        active = _activate(env, test, random_seed)
        try:
            stopped = _run_steps(env, scenario.steps, result, lenient=lenient, on_step=on_step)
        finally:
            result.faults = _deactivate(env, active)
        if stopped is not None:
            result.status = "failed"
            result.error = stopped
        else:
            expectations = (
                suite.fault_scenarios[test.name].expect if test.kind == "fault_scenario" else scenario.expect
            )
            namespace = _namespace(env, result.steps)
            for expectation in expectations:
                outcome = _evaluate(expectation, namespace)
                result.assertions.append(outcome)
            failed = [a for a in result.assertions if not a.passed]
            if failed:
                result.status = "failed"
                result.error = _summary(failed[0])
    except SetupFailed as exc:
        result.status = "error"
        result.error = str(exc)
    except RedtestError as exc:
        result.status = "error"
        result.error = str(exc)
    if result.status != "passed":
        result.output = env.output_tail()
    result.duration_s = time.monotonic() - started
    return result


def reset(env: Environment) -> None:
    """Run every seeded service's seed directly against the server (never via faults)."""
    # An assertion of the last test may have sent SELECT 1 or SUBSCRIBE on a direct
    # connection: this test's seed and assertions start on fresh ones.
    env.close_changed_direct_clients()
    for svc in env.suite.services.values():
        for i, step in enumerate(svc.seed):
            if isinstance(step, model.Sleep):
                time.sleep(step.seconds)
                continue
            client = env.direct_client(step.service, step.interface)
            response = client.call(step.method, step.args, timeout=step.timeout)
            if not response.ok:
                raise SetupFailed(
                    f"{step.loc}: the seed of service {svc.name!r} failed at seed[{i}] "
                    f"({step.label}): {response.error}"  # 0-based, as steps[i] in messages
                )


def _activate(env: Environment, test: PlannedTest, random_seed: int) -> list[tuple[model.Fault, Any, int]]:
    """Switch the test's faults on; returns (fault, proxy, offset of its first rule)."""
    by_target: dict[str, list[model.Fault]] = {}
    for name in test.faults:
        fault = env.suite.faults[name]
        by_target.setdefault(fault.target, []).append(fault)
    active: list[tuple[model.Fault, Any, int]] = []
    for target, proxy in env.proxies().items():
        faults = by_target.get(target, [])
        rules: list[model.Rule] = []
        for fault in faults:
            active.append((fault, proxy, len(rules)))
            rules.extend(fault.rules)
        if not rules and target not in env.armed:
            continue  # already off: skip the cross-thread round trip
        # A seed per test and target keeps probabilities repeatable with --random-seed;
        # the file's name, not its path as typed, so the rerun the report suggests gives the
        # same faults from another folder or with an absolute path.
        rng_seed = zlib.crc32(f"{random_seed}:{Path(test.file).name}::{test.name}:{target}".encode())
        proxy.set_rules(rules, rng_seed=rng_seed)
        env.armed.add(target)
    return active


def _deactivate(env: Environment, active: list[tuple[model.Fault, Any, int]]) -> list[FaultActivation]:
    counts = {id(proxy): proxy.hit_counts() for _, proxy, _ in active}
    proxies = env.proxies()
    for target in env.armed:
        # what a delay still holds belongs to this test: it must not land after the reset
        proxies[target].set_rules([], drop_held=True)
    env.armed.clear()
    out = []
    for fault, proxy, offset in active:
        hits = counts[id(proxy)]
        out.append(
            FaultActivation(
                fault.name,
                fault.target,
                [RuleHits(rule.describe(), hits[offset + i]) for i, rule in enumerate(fault.rules)],
            )
        )
    return out


def _run_steps(
    env: Environment, steps: tuple[model.Step, ...], result: TestResult, *, lenient: bool,
    on_step: StepCallback,
) -> str | None:
    """Run steps through the proxy; returns why the test stopped early, or None."""
    clean = not result.test.faults
    # Made at the first step expect, then kept up to date: rebuilt for every step, it cost
    # the square of a scenario's length (10,000 steps with expect: 9 s instead of 1 s).
    namespace: dict[str, Any] | None = None
    try:
        for index, step in enumerate(steps):
            response = _call(env, step)
            clean = clean and response.ok and not _changes_connection(step)
            record = StepResult(index, step.label, _args(step), response, step.loc, step.as_name)
            result.steps.append(record)
            if namespace is not None:
                _add_step(namespace, record)
            fatal = not response.ok and not step.allow_error and not lenient
            # A fault scenario is judged by its own expect only (SPEC §6): the steps'
            # expectations belong to the scenario, which is expected to go wrong here.
            # A fatal failure is the reason: expectations about a response that never
            # came would only hide it in the reports.
            if step.expect and not lenient and not fatal:
                if namespace is None:
                    namespace = _namespace(env, result.steps)
                record.assertions = [_evaluate(e, namespace) for e in step.expect]
            on_step(record)
            if fatal:
                return f"{step.loc}: steps[{index}] ({step.label}) failed: {response.error}"
            failed = [a for a in record.assertions if not a.passed]
            if failed and not lenient:
                return _summary(failed[0])
    finally:
        if not clean:
            # Faults, errors or connection-state commands: the next test starts afresh.
            env.close_step_clients()
    return None


def _changes_connection(step: model.Step) -> bool:
    if not isinstance(step, model.Call) or step.method != "command":
        return False
    words = str(step.args.get("cmd", "")).split()
    return bool(words) and words[0].upper() in CONNECTION_STATE_COMMANDS


def _call(env: Environment, step: model.Step) -> Response:
    if isinstance(step, model.Sleep):
        started = time.monotonic()
        time.sleep(step.seconds)
        return Response(data=None, duration_ms=int((time.monotonic() - started) * 1000))
    return env.step_client(step.service, step.interface).call(step.method, step.args, timeout=step.timeout)


def _args(step: model.Step) -> dict[str, Any]:
    if isinstance(step, model.Sleep):
        return {"seconds": step.seconds}
    return dict(step.args)


def _namespace(env: Environment, steps: list[StepResult]) -> dict[str, Any]:
    namespace: dict[str, Any] = dict(env.facades())
    responses = [s.response for s in steps]
    namespace["steps"] = responses
    namespace["r"] = responses[-1] if responses else None
    for s in steps:
        if s.as_name:
            namespace[s.as_name] = s.response
    return namespace


def _add_step(namespace: dict[str, Any], step: StepResult) -> None:
    """Bring a namespace made by _namespace up to date with one more step."""
    namespace["steps"].append(step.response)
    namespace["r"] = step.response
    if step.as_name:
        namespace[step.as_name] = step.response


def _evaluate(expectation: model.Expectation, namespace: dict[str, Any]) -> AssertionResult:
    return expr.evaluate(expectation.compiled, namespace)


def _summary(failed: AssertionResult) -> str:
    text = f"{failed.loc}: {failed.source}"
    if failed.error:
        return f"{text} — {failed.error}"
    if failed.detail:
        text += f" — {failed.detail}"
    if failed.message:
        text += f" ({failed.message})"
    return text
