"""JSON report: matches its published schema and the documented field list."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import jsonschema
import pytest

from redtest.clients.response import Response
from redtest.report.json_report import to_json_dict, write_json
from redtest.results import RunResult

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "redtest" / "schemas" / "report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_written_file_validates(run: RunResult, tmp_path: Path, validator: jsonschema.Draft202012Validator) -> None:
    out = tmp_path / "out" / "report.json"
    write_json(run, out)
    data = json.loads(out.read_text(encoding="utf-8"))
    validator.validate(data)
    assert data == json.loads(json.dumps(to_json_dict(run)))


def test_run_metadata(run: RunResult) -> None:
    data = to_json_dict(run)
    assert data["format"] == "redtest-report" and data["format_version"] == 1
    assert data["redtest_version"] == "0.1.0" and data["random_seed"] == 1234
    assert data["started_at"] == "2026-11-26T14:05:15.123456+00:00" and data["duration_s"] == 2.75
    assert data["matrix"] is True and data["passed"] is False
    assert data["counts"] == {"total": 6, "passed": 2, "failed": 2, "error": 1, "skipped": 1}
    assert [(s["name"], s["runtime"]) for s in data["services"]] == [("cache", "docker"), ("app", "process")]
    assert data["services"][0]["proxies"] == {"main": "127.0.0.1:40001"}


def test_failed_test_detail(run: RunResult) -> None:
    t = to_json_dict(run)["tests"][1]
    assert (t["id"], t["kind"], t["status"], t["scenario"]) == (
        "scenarios/basic.yaml::incr_when_writes_fail", "fault_scenario", "failed", "counter_increments")
    assert t["fault_names"] == ["set_fails", "slow_reads"]
    assert t["faults"][1] == {"name": "slow_reads", "target": "cache.main",
                              "rules": [{"rule": "delay(command=GET, delay=500ms)", "hits": 2}], "hits": 2}
    assert t["steps"][0]["response"] == {
        "data": None, "ok": False, "error": "READONLY You can't write against a read only replica.", "duration_ms": 3}
    assert t["steps"][2]["slow"] is True and t["steps"][2]["as"] == "r"
    assert t["steps"][0]["args"] == {"key": "counter", "value": "0"}
    failed = [a for a in t["assertions"] if not a["passed"]]
    assert failed == [{"source": 'assert_eq(cache.main.get(key="counter").data["value"], None, "<no> counter & stale")',
                       "location": {"file": "scenarios/basic.yaml", "line": 27, "col": 9}, "passed": False,
                       "detail": "expected None, got '1'", "message": "<no> counter & stale", "error": None}]


def test_other_statuses(run: RunResult) -> None:
    tests = {t["name"]: t for t in to_json_dict(run)["tests"]}
    assert tests["no_stale_cache"]["status"] == "error"
    assert "exited with status 1" in tests["no_stale_cache"]["error"]
    assert "ConnectionError" in tests["no_stale_cache"]["output"]
    assert tests["create_order"]["skip_reason"] == "deselected by --tag smoke"
    assert tests["counter_increments"]["tags"] == ["smoke"]
    assert tests["counter_increments"]["description"] == 'INCR turns "0" into "1"'
    assert tests["counter_increments[set_fails]"]["kind"] == "matrix"


def test_odd_values_become_json(run: RunResult, tmp_path: Path, validator: jsonschema.Draft202012Validator) -> None:
    step = run.tests[0].steps[2]
    step.response = Response({b"k": b"\xff\x00", "t": (1, 2), "nan": math.nan, "s": {3}},
                             duration_ms=1, status=200, headers={"content-type": "text/plain"})
    step.args = {"value": b"raw"}
    out = tmp_path / "r.json"
    write_json(run, out)
    data = json.loads(out.read_text(encoding="utf-8"))
    validator.validate(data)
    s = data["tests"][0]["steps"][2]
    assert s["response"]["data"] == {"k": "\\xff\x00", "t": [1, 2], "nan": "nan", "s": [3]}
    assert s["response"]["status"] == 200 and s["args"] == {"value": "raw"}


def test_docs_describe_every_field(run: RunResult) -> None:
    """docs/json-report.md names every key the report can hold, so the doc cannot rot."""
    doc = (ROOT / "docs" / "json-report.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_]+)`", doc))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    keys = set(schema["properties"])
    for definition in schema["$defs"].values():
        keys |= set(definition.get("properties", {}))
    missing = sorted(keys - documented)
    assert not missing, f"docs/json-report.md does not mention: {missing}"


def test_docs_example_validates(validator: jsonschema.Draft202012Validator) -> None:
    doc = (ROOT / "docs" / "json-report.md").read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", doc, re.S)
    assert example is not None
    validator.validate(json.loads(example.group(1)))


def test_schema_names_the_kinds_and_statuses_the_results_can_hold() -> None:
    """Both lists exist twice (typing for the code, the schema for readers): they agree."""
    from typing import get_args

    from redtest.results import Status, TestKind

    test = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["$defs"]["test"]["properties"]
    assert test["kind"]["enum"] == list(get_args(TestKind))
    assert test["status"]["enum"] == list(get_args(Status))
