"""JUnit XML: valid against the Jenkins xUnit XSD, with the right counts and content."""

from __future__ import annotations

import filecmp
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from redtest.clients.response import Response
from redtest.report.junit import write_junit
from redtest.results import RunResult


@pytest.fixture
def schema(junit_xsd: Path) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(junit_xsd))


def _write(result: RunResult, tmp_path: Path, schema: xmlschema.XMLSchema) -> ET.Element:
    out = tmp_path / "reports" / "junit.xml"
    write_junit(result, out)
    schema.validate(str(out))  # raises with the reason when invalid
    return ET.parse(out).getroot()


def test_vendored_xsd_matches_shared(junit_xsd: Path) -> None:
    vendored = Path(__file__).with_name("junit-10.xsd")
    assert vendored.is_file()
    if junit_xsd != vendored:
        assert filecmp.cmp(junit_xsd, vendored, shallow=False), "tests/report/junit-10.xsd is stale"


def test_valid_with_right_counts(run: RunResult, tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    root = _write(run, tmp_path, schema)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "2", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["scenarios/basic.yaml", "scenarios/app.yaml"]
    basic, app = suites["scenarios/basic.yaml"], suites["scenarios/app.yaml"]
    assert [basic.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["4", "2", "0", "0"]
    assert [app.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["2", "0", "1", "1"]
    assert basic.get("timestamp") == "2026-11-26T14:05:15"
    assert len(basic.findall("testcase")) == 4 and len(app.findall("testcase")) == 2


def test_testcases(run: RunResult, tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    root = _write(run, tmp_path, schema)
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"counter_increments", "incr_when_writes_fail", "no_stale_cache", "create_order",
                          "counter_increments[set_fails]", "counter_increments[slow_reads]"}
    ok = cases["counter_increments"]
    assert ok.get("classname") == "scenarios/basic.yaml" and ok.get("time") == "0.021"
    assert ok.find("failure") is None and ok.find("error") is None

    failure = cases["incr_when_writes_fail"].find("failure")
    assert failure is not None and failure.get("type") == "AssertionError"
    assert failure.get("message") == "expected None, got '1'"
    assert 'assert_eq(cache.main.get(key="counter").data["value"], None' in failure.text
    assert "scenarios/basic.yaml:27" in failure.text and "<no> counter & stale" in failure.text

    error = cases["no_stale_cache"].find("error")
    assert error is not None and "exited with status 1" in error.get("message")
    err_out = cases["no_stale_cache"].find("system-err").text
    assert "ConnectionError: redis down" in err_out and "\x1b" not in err_out

    skipped = cases["create_order"].find("skipped")
    assert skipped is not None and skipped.get("message") == "deselected by --tag smoke"


def test_system_out_has_steps_and_fault_hits(run: RunResult, tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    root = _write(run, tmp_path, schema)
    case = next(c for c in root.iter("testcase") if c.get("name") == "incr_when_writes_fail")
    out = case.find("system-out").text
    assert "set_fails@cache.main (error(command=SET, message=READONLY): 1 hit)" in out
    assert "delay(command=GET, delay=500ms): 2 hits" in out
    assert '[0] cache.main.set {"key": "counter", "value": "0"} -> error: READONLY' in out
    assert "(512 ms)  [SLOW]" in out


def test_properties_name_runtimes_and_seed(run: RunResult, tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    root = _write(run, tmp_path, schema)
    props = {p.get("name"): p.get("value") for p in root.find("testsuite").iter("property")}
    assert props["random_seed"] == "1234"
    assert props["service.cache.runtime"] == "docker"
    assert props["service.app.runtime"] == "process"
    assert props["redtest.version"] == "0.1.0"


def test_step_failure_without_assertions_is_a_failure(run: RunResult, tmp_path: Path,
                                                      schema: xmlschema.XMLSchema) -> None:
    t = run.tests[0]
    t.status, t.assertions = "failed", []
    t.error = "step 1 (cache.main.incr) failed: ERR value is not an integer"
    t.steps[1].response = Response(None, ok=False, error="ERR value is not an integer\x00\x1b[1m", duration_ms=1)
    root = _write(run, tmp_path, schema)
    failure = next(root.iter("testcase")).find("failure")
    assert failure.get("message") == t.error and failure.get("type") == "AssertionError"


def test_empty_run_is_valid(run: RunResult, tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    run.tests = []
    root = _write(run, tmp_path, schema)
    assert root.get("tests") == "0" and root.findall("testsuite") == []
