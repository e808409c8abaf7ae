"""Which tests a run holds: scenarios, fault scenarios and matrix cells, filtered."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from redtest.results import PlannedTest
from redtest.spec import model, templates


@dataclass(frozen=True)
class Selection:
    """What the user asked for on the command line."""

    keyword: str | None = None  # -k: substring, or a glob when it holds * ? [
    tags: tuple[str, ...] = ()  # --tag: a test runs when it has any of them
    matrix: bool = False


def interfaces_used(scenario: model.Scenario, services: dict[str, model.Service] | None = None) -> set[str]:
    """The `service.interface` targets a scenario's steps call, and those reached through
    them: an application whose templates name `${cache.main.url}` talks to cache.main
    through its proxy, so its faults reach a scenario that only calls the application."""
    used = {s.target for s in scenario.steps if isinstance(s, model.Call)}
    if not services:
        return used
    todo = [t.split(".", 1)[0] for t in used]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        svc = services.get(name)
        if svc is None or name in seen:
            continue
        seen.add(name)
        for ref in templates.service_refs(svc):
            if ref.service in services and ref.interface is not None:
                used.add(f"{ref.service}.{ref.interface}")
                todo.append(ref.service)
    return used


def plan_suite(suite: model.Suite, selection: Selection) -> list[PlannedTest]:
    """The suite's tests in file order: scenarios, fault scenarios, then matrix cells."""
    file = suite.display_path
    tests: list[PlannedTest] = []
    for sc in suite.scenarios.values():
        tests.append(
            PlannedTest(f"{file}::{sc.name}", sc.name, file, "scenario", sc.name, (), sc.loc,
                        sc.description, sc.tags)
        )
    for fs in suite.fault_scenarios.values():
        base = suite.scenarios[fs.scenario]
        tags = tuple(dict.fromkeys((*fs.tags, *base.tags)))
        tests.append(
            PlannedTest(f"{file}::{fs.name}", fs.name, file, "fault_scenario", fs.scenario,
                        fs.faults, fs.loc, fs.description or base.description, tags)
        )
    if selection.matrix:
        for sc in suite.scenarios.values():
            used = interfaces_used(sc, suite.services)
            for fault in suite.faults.values():
                if fault.target not in used:
                    continue
                name = f"{sc.name}[{fault.name}]"
                tests.append(
                    PlannedTest(f"{file}::{name}", name, file, "matrix", sc.name, (fault.name,),
                                sc.loc, sc.description, sc.tags)
                )
    return [t for t in tests if _selected(t, selection)]


def _selected(test: PlannedTest, selection: Selection) -> bool:
    if selection.tags and not set(selection.tags) & set(test.tags):
        return False
    keyword = selection.keyword
    if not keyword:
        return True
    if keyword in test.id:  # also a matrix cell's id as printed: `file::s[fault]`
        return True
    if any(ch in keyword for ch in "*?["):
        return fnmatch.fnmatchcase(test.name, keyword) or fnmatch.fnmatchcase(test.id, keyword)
    return False


def services_needed(suite: model.Suite, test: PlannedTest) -> set[str]:
    """The services a test cannot run without: those its steps, expectations and faults
    name, the seeded ones (every test starts with a reset), and what those depend on
    (`depends_on` and `${...}` templates). A service that died fails exactly these tests."""
    services = suite.services
    scenario = suite.scenarios[test.scenario]
    needed: set[str] = set()
    expectations: list[model.Expectation] = []
    for step in scenario.steps:
        if isinstance(step, model.Call):
            needed.add(step.service)
        expectations.extend(step.expect)
    if test.kind == "fault_scenario":
        expectations.extend(suite.fault_scenarios[test.name].expect)
    else:
        expectations.extend(scenario.expect)
    for expectation in expectations:
        compiled = expectation.compiled
        needed.update(n for n in getattr(compiled, "names", ()) if n in services)
    for name in test.faults:
        fault = suite.faults.get(name)
        if fault is not None:
            needed.add(fault.target.split(".", 1)[0])
    for svc in services.values():
        for step in svc.seed:
            if isinstance(step, model.Call):
                needed.update((svc.name, step.service))
    todo = list(needed)
    while todo:
        svc = services.get(todo.pop())
        if svc is None:
            continue
        deps = set(svc.depends_on) | {r.service for r in templates.service_refs(svc) if r.service}
        for dep in deps - needed:
            if dep in services:
                needed.add(dep)
                todo.append(dep)
    return {n for n in needed if n in services}
