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
    if any(ch in keyword for ch in "*?["):
        return fnmatch.fnmatchcase(test.name, keyword) or fnmatch.fnmatchcase(test.id, keyword)
    return keyword in test.id
