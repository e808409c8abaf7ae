"""Plan and execute suites; the one owner of every service's lifecycle."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from redtest import __version__
from redtest.errors import ServiceError
from redtest.results import Listener, PlannedTest, RunResult, ServiceInfo, TestResult
from redtest.runner.cleanup import CleanupStack
from redtest.runner.environment import Environment, provision
from redtest.runner.execute import run_test
from redtest.runner.plan import Selection, plan_suite, services_needed
from redtest.spec import model

__all__ = ["RunOptions", "Selection", "plan", "run"]


@dataclass(frozen=True)
class RunOptions:
    """Everything `redtest run` can be told."""

    selection: Selection = Selection()
    fail_fast: bool = False
    runtime: str | None = None  # overrides every Redis service's runtime
    random_seed: int | None = None
    keep_services: bool = False


def plan(suites: Sequence[model.Suite], selection: Selection) -> list[tuple[model.Suite, list[PlannedTest]]]:
    """Each runnable suite with its selected tests (suites with none are left out)."""
    out = []
    for suite in suites:
        if not suite.runnable:
            continue
        tests = plan_suite(suite, selection)
        if tests:
            out.append((suite, tests))
    return out


class _Broadcast:
    def __init__(self, listeners: Sequence[Listener]) -> None:
        self.listeners = list(listeners)

    def __getattr__(self, event: str):  # type: ignore[no-untyped-def]
        def emit(*args: object) -> None:
            for listener in self.listeners:
                getattr(listener, event)(*args)

        return emit


def run(
    suites: Sequence[model.Suite], options: RunOptions, listeners: Sequence[Listener] = ()
) -> tuple[RunResult, bool]:
    """Run every selected test; returns the result and whether any services failed to start."""
    events = _Broadcast(listeners)
    seed = options.random_seed if options.random_seed is not None else random.SystemRandom().randrange(2**31)
    planned = plan(suites, options.selection)
    all_tests = [t for _, tests in planned for t in tests]
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.monotonic()
    events.run_started(all_tests, seed)
    results: list[TestResult] = []
    infos: list[ServiceInfo] = []
    start_failed = False
    stop = False
    for suite, tests in planned:
        if stop:
            results.extend(_skip(t, "not run: --fail-fast stopped the run", events) for t in tests)
            continue
        with CleanupStack() as stack:
            env = Environment(suite)
            try:
                try:
                    provision(suite, stack, runtime=options.runtime, keep=options.keep_services, env=env)
                except ServiceError as exc:
                    start_failed = True
                    stop = options.fail_fast  # the tests error: -x stops the run as for a failure
                    # A process that failed to start carries its output (ProcessStartError).
                    output = getattr(exc, "output", None)
                    results.extend(_errored(t, str(exc), events, output) for t in tests)
                    infos.extend(env.infos)  # what did start, for the reports' services
                    continue
                infos.extend(env.infos)
                events.services_ready(env.infos)
                for test in tests:
                    if stop:
                        results.append(_skip(test, "not run: --fail-fast stopped the run", events))
                        continue
                    result = _run_one(test, env, seed, events)
                    results.append(result)
                    if options.fail_fast and result.status in ("failed", "error"):
                        stop = True
            finally:
                if options.keep_services:
                    # Also after a failed start or a Ctrl-C: what was started stays up, so the
                    # user must learn where it is and how to stop it.
                    _print_kept(env)
    run_result = RunResult(
        version=__version__,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        random_seed=seed,
        services=infos,
        tests=results,
        matrix=options.selection.matrix,
    )
    events.run_finished(run_result)
    return run_result, start_failed


# After a failed test, how long to give a process that is exiting to become a zombie
# before checking again: a client can see the connection reset a moment earlier.
_EXIT_SETTLE = 0.05


def _run_one(test: PlannedTest, env: Environment, seed: int, events: _Broadcast) -> TestResult:
    """Run one test; a service it needs that died before or during it makes it an error.

    Decision (docs/services.md, "A service that dies"): the test during which a service
    died, and every later test that needs that service, error with the same message
    (service, exit status, last output, log path), as when a service fails to start.
    Tests that do not need it still run.
    """
    events.test_started(test)
    needed = services_needed(env.suite, test)
    env.check_services()
    gone = [name for name in env.dead if name in needed]
    if gone:
        result = TestResult(test, "error", 0.0, error=_dead_message(env, gone), output=_dead_output(env, gone))
        events.test_finished(result)
        return result
    result = run_test(test, env, random_seed=seed, on_step=lambda step: events.step_done(test, step))
    failed = result.status != "passed"
    died = env.check_services(thorough=failed)
    if not died and env.running and (failed or any(not s.response.ok for s in result.steps)):
        # A failed step may be the first sign of a dying process: wait for its exit briefly.
        deadline = time.monotonic() + _EXIT_SETTLE
        while not died and time.monotonic() < deadline:
            time.sleep(0.005)
            died = env.check_services()
    gone = [name for name in died if name in needed]
    if gone:
        result.status = "error"
        result.error = _dead_message(env, gone)
        result.output = env.output_tail()
    env.mark_output()  # the next test's output starts here
    events.test_finished(result)
    return result


def _dead_message(env: Environment, names: list[str]) -> str:
    return "\n\n".join(env.dead[name] for name in names)


def _dead_output(env: Environment, names: list[str], limit: int = 4000) -> str | None:
    """The last output of dead application services (a later test has none of its own)."""
    parts = []
    for name in names:
        if env.suite.services[name].kind in ("process", "container"):
            text = env.running[name].logs()
            if text:
                parts.append(f"--- {name} ---\n{text[-limit:]}")
    return "\n".join(parts) or None


def _skip(test: PlannedTest, reason: str, events: _Broadcast) -> TestResult:
    result = TestResult(test, "skipped", 0.0, skip_reason=reason)
    events.test_finished(result)
    return result


def _errored(test: PlannedTest, message: str, events: _Broadcast, output: str | None = None) -> TestResult:
    events.test_started(test)
    result = TestResult(test, "error", 0.0, error=message, output=output)
    events.test_finished(result)
    return result


def _print_kept(env: Environment) -> None:
    """What --keep-services left running, how to reach it, and how to stop it."""
    import shlex
    import sys

    for info in env.infos:
        if info.kind == "sqlite":
            continue
        where = ", ".join(f"{k} {v}" for k, v in info.endpoints.items()) or "no interfaces"
        line = f"kept {info.name} ({info.runtime}): {where}"
        if info.detail:
            line += f"; {info.detail}"
        stop = _stop_hint(info)
        workdir = getattr(env.running.get(info.name), "workdir", None)
        if stop and workdir is not None:  # a local server's folder: its log and socket
            stop += f" && rm -rf {shlex.quote(str(workdir))}"
        if stop:
            line += f"; stop it with: {stop}"
        sys.stderr.write(line + "\n")
        svc = env.suite.services.get(info.name)
        if svc is not None and _wired_to_a_proxy(svc, env):
            sys.stderr.write(
                f"  note: {info.name} was given a proxy's address for Redis; proxies live in "
                "the redtest process and stopped with it, so that address no longer answers\n"
            )


def _stop_hint(info: ServiceInfo) -> str | None:
    detail = info.detail or ""
    if info.runtime == "docker" or info.kind == "container":
        return f"docker rm -f {detail.split()[-1]}" if detail else None
    if detail.startswith("pid "):  # its own process group (session): stop the group
        return f"kill -TERM -- -{detail.split()[1]}"
    return None


def _wired_to_a_proxy(svc: model.Service, env: Environment) -> bool:
    from redtest.spec import templates

    refs = templates.service_refs(svc)
    services = env.suite.services
    return any(r.service in services and services[r.service].kind == "redis" for r in refs)
