"""Every example of the protocol reference (seed/redis-protocol-reference.txt) has a
redtest YAML form in scenarios/ that runs and passes (SPEC §9).

The reference's examples are copied below as written. Each is looked up in the
suites under scenarios/ (a step with the same call and arguments, a call with the
same arguments in an expectation, a fault rule, a service, a fault scenario); then
scenarios/ runs once and every test that holds an example must have passed.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SEED_FILE = ROOT.parent / "shared" / "seed" / "redis-protocol-reference.txt"

# The calls of the reference's method, command and seed examples, as written.
CALLS = [
    'resp = cache.main.get(key="user:1")',
    'cache.main.set(key="user:1", value="alice")',
    'cache.main.set(key="config:timeout", value="5000")',
    'cache.main.del(key="user:1")',
    'resp = cache.main.keys(pattern="user:*")',
    'resp = cache.main.keys(pattern="*")',
    "resp = cache.main.ping()",
    'cache.main.set(key="counter", value="0")',
    'cache.main.incr(key="counter")',
    'resp = cache.main.get(key="counter")',
    'cache.main.lpush(key="queue", value="first")',
    'cache.main.rpush(key="queue", value="last")',
    'resp = cache.main.lrange(key="queue", start="0", stop="-1")',
    'cache.main.command(cmd="EXPIRE", args=["user:1", "3600"])',
    'cache.main.command(cmd="FLUSHALL")',
    'cache.main.command(cmd="HSET", args=["user:1", "name", "alice", "email", "alice@example.com"])',
    'resp = cache.main.command(cmd="HGETALL", args=["user:1"])',
    'cache.main.set(key="config:max_retries", value="3")',
    'cache.main.set(key="config:timeout_ms", value="5000")',
    # inside the data-integrity patterns' expectations
    'cache.main.keys(pattern="order:*")',
    'cache.main.get(key="user:1")',
    'db.main.query(sql="SELECT name FROM users WHERE id=1")',
]

# The reference's fault assumptions: name -> its rule.
FAULTS = {
    "set_fails": 'error(command="SET", message="READONLY")',
    "key_error": 'error(key="order:*", message="WRONGTYPE")',
    "slow_reads": 'delay(command="GET", delay="500ms")',
    "drop_writes": 'drop(command="SET")',
}

# The reference's fault scenarios: name -> (scenario, fault, expectations as written).
FAULT_SCENARIOS = {
    "no_stale_cache": ("create_order", "redis_down", [
        "assert_true(r.status >= 500)",
        'assert_eq(len(cache.main.keys(pattern="order:*").data), 0, "no cached order data after Redis failure")',
    ]),
    "cache_consistent": ("update_user", "slow_cache", [
        "assert_eq(r.status, 200)",
        'assert_eq(db.main.query(sql="SELECT name FROM users WHERE id=1").data[0]["name"], "updated")',
    ]),
}

SEED_REDIS = ['cache.main.command(cmd="FLUSHALL")', 'cache.main.set(key="config:max_retries", value="3")',
              'cache.main.set(key="config:timeout_ms", value="5000")']


@dataclass
class Suites:
    """What scenarios/ holds, and which tests run each piece of it."""

    steps: list[tuple[str, dict, set[str]]] = field(default_factory=list)  # call, args, tests
    expressions: list[tuple[str, set[str]]] = field(default_factory=list)
    rules: list[tuple[str, dict, set[str]]] = field(default_factory=list)  # fault, rule, tests
    fault_scenarios: dict[str, tuple[dict, str]] = field(default_factory=dict)  # name -> (it, id)
    services: list[tuple[dict, list, set[str]]] = field(default_factory=list)  # service, seed, tests


def _parse_call(text: str) -> tuple[str, dict]:
    """'resp = cache.main.get(key="x")' -> ("cache.main.get", {"key": "x"})."""
    source = text.split(" = ", 1)[-1].replace(".del(", ".delete(")  # `del` is a keyword
    node = ast.parse(source, mode="eval").body
    assert isinstance(node, ast.Call)
    name = ast.unparse(node.func).replace(".delete", ".del")
    return name, {k.arg: ast.literal_eval(k.value) for k in node.keywords}


def _as_text(value: object) -> object:
    """YAML arguments as the reference writes them: numbers as strings."""
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    return value if isinstance(value, str) else str(value)


def _calls_in(expression: str) -> Iterator[tuple[str, dict]]:
    for node in ast.walk(ast.parse(expression, mode="eval")):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = ast.unparse(node.func).replace(".delete", ".del")
            try:
                yield name, {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            except ValueError:
                continue


def _load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    merged = {"services": {}, "seeds": {}, "faults": {}}
    for name in doc.get("include", []):
        included = _load(path.parent / name)
        for section in merged:
            merged[section].update(included.get(section) or {})
    for section in merged:
        merged[section].update(doc.get(section) or {})
    merged["scenarios"] = doc.get("scenarios") or {}
    merged["fault_scenarios"] = doc.get("fault_scenarios") or {}
    return merged


def _add_steps(found: Suites, steps: list, tests: set[str]) -> None:
    for step in steps:
        call = next(k for k in step if k not in ("as", "expect", "allow_error"))
        found.steps.append((call, step[call] or {}, tests))
        found.expressions += [(e, tests) for e in step.get("expect", [])]


def _collect() -> Suites:
    found = Suites()
    for path in sorted(SCENARIOS.glob("*.yaml")):
        doc = _load(path)
        scenarios, fault_scenarios = doc["scenarios"], doc["fault_scenarios"]
        test_id = f"scenarios/{path.name}::{{}}".format  # the report's test id
        every = {test_id(name) for name in [*scenarios, *fault_scenarios]}
        for name, scenario in scenarios.items():
            runs = {test_id(name)} | {test_id(f) for f, fs in fault_scenarios.items()
                                      if fs["scenario"] == name}
            _add_steps(found, scenario["steps"], runs)
            found.expressions += [(e, {test_id(name)}) for e in scenario.get("expect", [])]
        for name, fault_scenario in fault_scenarios.items():
            found.fault_scenarios[name] = (fault_scenario, test_id(name))
            found.expressions += [(e, {test_id(name)}) for e in fault_scenario.get("expect", [])]
            faults = fault_scenario["faults"]
            for fault in [faults] if isinstance(faults, str) else faults:
                for rule in doc["faults"][fault]["rules"]:
                    found.rules.append((fault, rule, {test_id(name)}))
        for service in doc["services"].values():
            seed = service.get("seed")
            steps = doc["seeds"][seed] if isinstance(seed, str) else seed or []
            found.services.append((service, steps, every))
            _add_steps(found, steps, every)  # a seed runs before every test of the file
    return found


def _where(call: str, found: Suites) -> set[str]:
    """The tests that run `call` as a step or inside an expectation."""
    name, args = _parse_call(call)
    tests: set[str] = set()
    for step, step_args, runs in found.steps:
        if step == name and {k: _as_text(v) for k, v in step_args.items()} == args:
            tests |= runs
    for expression, runs in found.expressions:
        if (name, args) in _calls_in(expression):
            tests |= runs
    return tests


def _where_rule(fault: str, rule: str, found: Suites) -> set[str]:
    kind, args = _parse_call(rule)
    return set().union(*[runs for name, r, runs in found.rules if name == fault and r == {kind: args}])


def _where_fault_scenario(name: str, found: Suites) -> set[str]:
    scenario, fault, expectations = FAULT_SCENARIOS[name]
    fs, test = found.fault_scenarios.get(name, ({}, ""))
    if fs.get("scenario") != scenario or fs.get("faults") not in (fault, [fault]):
        return set()
    return {test} if all(e in fs["expect"] for e in expectations) else set()


def _where_services(found: Suites) -> set[str]:
    """A cache declared as the reference does, and one reused and reset by its seed."""
    declared = {
        t for service, _, runs in found.services for t in runs
        if service.get("image") == "redis:7"
        and service.get("interfaces", {}).get("main") == {"protocol": "redis", "port": 6379}
        and service.get("healthcheck", {}).get("tcp") == "localhost:6379"
    }
    reused = {
        t for service, seed, runs in found.services for t in runs
        if service.get("reuse") is True
        and [_parse_call(s) for s in SEED_REDIS]
        == [(c, {k: _as_text(v) for k, v in (a or {}).items()}) for st in seed
            for c, a in st.items()]
    }
    return declared & reused


def _examples() -> list[tuple[str, object]]:
    found = _collect()
    examples: list[tuple[str, object]] = [(c, _where(c, found)) for c in CALLS]
    examples += [(f"{f}: {r}", _where_rule(f, r, found)) for f, r in FAULTS.items()]
    examples += [(f"fault_scenario {n}", _where_fault_scenario(n, found)) for n in FAULT_SCENARIOS]
    examples.append(("service(reuse=True, seed=seed_redis)", _where_services(found)))
    return examples


def test_the_copied_examples_are_the_reference_s() -> None:
    """Every call and rule of the reference is in the lists above (when the reference is here)."""
    if not SEED_FILE.exists():
        pytest.skip(f"{SEED_FILE} is not in this checkout")
    text = SEED_FILE.read_text()
    lines = {line.strip() for line in text.splitlines()}
    for call in CALLS + SEED_REDIS:
        assert call in text, call
    calls = set(re.findall(r"(?:cache|db)\.main\.\w+\([^()]*\)", text))
    assert calls <= {c.split(" = ", 1)[-1] for c in CALLS}
    for rule in FAULTS.values():
        assert f"rules = [{rule}]," in lines, rule


def test_every_example_of_the_reference_is_in_scenarios() -> None:
    missing = [example for example, tests in _examples() if not tests]
    assert not missing, f"no YAML form in scenarios/ for: {missing}"


@pytest.fixture
def stop_kept_servers():
    """scenarios/seed_reset.yaml keeps its server (reuse: true); leave nothing behind."""
    yield
    from redtest.services.runtime import stop_all_reusable

    stop_all_reusable(str((SCENARIOS / "seed_reset.yaml").resolve()))


def test_every_example_of_the_reference_runs_and_passes(tmp_path: Path, stop_kept_servers) -> None:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "redtest", "run", "scenarios/", "--json", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    status = {t["id"]: t["status"] for t in json.loads(report.read_text())["tests"]}
    for example, tests in _examples():
        assert tests, example
        assert all(status.get(t) == "passed" for t in tests), (example, {t: status.get(t) for t in tests})
