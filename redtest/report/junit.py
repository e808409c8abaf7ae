"""JUnit XML in the shape Jenkins' xUnit plugin (junit-10.xsd) and GitLab read."""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from redtest.report._common import (
    assertion_lines,
    by_file,
    clean,
    count,
    failed_assertions,
    fault_summary,
    step_log,
)
from redtest.results import RunResult, TestResult


def write_junit(result: RunResult, path: str | os.PathLike[str]) -> None:
    """Write the run as JUnit XML to `path` (parent folders are created)."""
    tree = ET.ElementTree(to_junit_element(result))
    ET.indent(tree)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tree.write(target, encoding="utf-8", xml_declaration=True)


def to_junit_element(result: RunResult) -> ET.Element:
    """`<testsuites>` with one `<testsuite>` per file."""
    total = count(result.tests)
    root = ET.Element("testsuites", {
        "name": "redtest",
        "tests": str(total.total),
        "failures": str(total.failed),
        "errors": str(total.error),
        "time": _time(result.duration_s),
    })
    host = socket.gethostname()
    stamp = _timestamp(result.started_at)
    for index, (file, tests) in enumerate(by_file(result.tests).items()):
        root.append(_suite(result, file, tests, index, host, stamp))
    return root


def _suite(result: RunResult, file: str, tests: list[TestResult], index: int,
           host: str, stamp: str) -> ET.Element:
    c = count(tests)
    suite = ET.Element("testsuite", {
        "name": _x(file),
        "tests": str(c.total),
        "failures": str(c.failed),
        "errors": str(c.error),
        "skipped": str(c.skipped),
        "time": _time(c.duration_s),
        "timestamp": stamp,
        "hostname": _x(host),
        "id": str(index),
        "package": "redtest",
        "file": _x(file),
    })
    suite.append(_properties(result, file))
    for t in tests:
        suite.append(_testcase(t))
    return suite


def _properties(result: RunResult, file: str) -> ET.Element:
    props = ET.Element("properties")

    def prop(name: str, value: object) -> None:
        ET.SubElement(props, "property", {"name": _x(name), "value": _x(str(value))})

    prop("redtest.version", result.version)
    prop("random_seed", result.random_seed)
    prop("matrix", str(result.matrix).lower())
    for s in result.services:
        if s.file not in (None, file):
            continue  # each file's own services
        prop(f"service.{s.name}.runtime", s.runtime)
        for iface, addr in s.endpoints.items():
            prop(f"service.{s.name}.{iface}", addr)
    return props


def _testcase(t: TestResult) -> ET.Element:
    case = ET.Element("testcase", {
        "classname": _x(t.test.file),
        "name": _x(t.test.name),
        "time": _time(t.duration_s),
    })
    if t.status == "failed":
        failed = failed_assertions(t)
        if failed:
            message = failed[0].detail or failed[0].error or failed[0].source
            body = "\n\n".join("\n".join(assertion_lines(a)) for a in failed)
        else:  # a step failed in a plain scenario: no assertion to blame
            message = (t.error or "failed").splitlines()[0] if t.error else "failed"
            body = t.error or ""
        el = ET.SubElement(case, "failure", {"message": _x(message), "type": "AssertionError"})
        el.text = _x(body)
    elif t.status == "error":
        text = t.error or "error"
        el = ET.SubElement(case, "error", {"message": _x(text.splitlines()[0] if text else ""),
                                           "type": "RedtestError"})
        el.text = _x(text)
    elif t.status == "skipped":
        ET.SubElement(case, "skipped", {"message": _x(t.skip_reason or "skipped")})
    out = _system_out(t)
    if out:
        ET.SubElement(case, "system-out").text = _x(out)
    if t.output and t.status in ("failed", "error"):
        ET.SubElement(case, "system-err").text = _x(t.output)
    return case


def _system_out(t: TestResult) -> str:
    """The step log and active faults: what CI shows next to the test."""
    parts = []
    if t.test.description:
        parts.append(f"description: {t.test.description}")
    if t.faults:
        parts.append("faults:\n" + "\n".join(f"  {fault_summary(f)}" for f in t.faults))
    elif t.test.faults:
        parts.append("faults: " + ", ".join(t.test.faults))
    if t.steps:
        parts.append("steps:\n" + step_log(t))
    return "\n".join(parts)


def _x(text: str) -> str:
    # XML 1.0 cannot hold most control characters at all, even escaped
    return clean(text)


def _time(seconds: float) -> str:
    # SUREFIRE_TIME: digits, a dot, digits; never negative, never exponent notation
    return f"{max(seconds, 0.0):.3f}"


def _timestamp(started_at: str) -> str:
    """ISO 8601 without zone or fraction, the form the Ant/Jenkins readers parse."""
    try:
        return datetime.fromisoformat(started_at.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return _x(started_at)
