"""The report files a real `redtest run` writes: JUnit against the XSD CI uses,
JSON against its schema, HTML with the failure in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xmlschema
from jsonschema import Draft202012Validator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def reports(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("reports")
    result = cli([
        "run", str(HERE / "suites" / "failing.yaml"), "--runtime", "embedded",
        "--matrix", "--junit-xml", str(out / "junit.xml"), "--json", str(out / "report.json"),
        "--html", str(out / "report.html"),
    ])
    return result, out


def _xsd() -> Path:
    shared = ROOT.parent / "shared" / "junit" / "junit-10.xsd"
    return shared if shared.is_file() else ROOT / "tests" / "report" / "junit-10.xsd"


def test_junit_validates_with_the_right_counts(reports) -> None:
    result, out = reports
    assert result.returncode == 1
    schema = xmlschema.XMLSchema(str(_xsd()))
    schema.validate(str(out / "junit.xml"))
    tree = schema.to_dict(str(out / "junit.xml"))
    suite = tree["testsuite"][0]
    report = json.loads((out / "report.json").read_text())
    counts = report["counts"]
    assert int(suite["@tests"]) == counts["total"]
    assert int(suite["@failures"]) == counts["failed"] >= 3
    names = [case["@name"] for case in suite["testcase"]]
    assert "c_wrong_value" in names and "a_passes[readonly]" in names


def test_json_matches_its_schema(reports) -> None:
    _, out = reports
    schema = json.loads((ROOT / "redtest" / "schemas" / "report.schema.json").read_text())
    data = json.loads((out / "report.json").read_text())
    Draft202012Validator(schema).validate(data)
    assert data["services"][0]["runtime"] == "embedded"
    assert data["matrix"] is True


def test_html_holds_the_failure(reports) -> None:
    _, out = reports
    page = (out / "report.html").read_text()
    assert "c_wrong_value" in page
    assert "counter starts at zero" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
