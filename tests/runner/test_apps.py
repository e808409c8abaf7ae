"""Applications under test through the real CLI: templates, start order, every
HTTP method with JSON and text bodies, the sqlite interface, and a health wait
that times out with the application's output in the error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

SUITES = Path(__file__).parent / "suites"


def test_apps_suite(cli, tmp_path) -> None:
    report = tmp_path / "report.json"
    result = cli(
        ["run", str(SUITES / "apps.yaml"), "--runtime", "embedded", "--json", str(report)],
        env={"APPS_DB": str(tmp_path / "apps.db")},
    )
    data = json.loads(report.read_text())
    statuses = {t["name"]: (t["status"], t["error"]) for t in data["tests"]}
    assert result.returncode == 1, result.stdout + result.stderr
    # a 503 answer is a failed step in a plain scenario; everything else passes
    assert statuses.pop("error_status")[0] == "failed"
    assert all(s == "passed" for s, _ in statuses.values()), statuses
    by_name = {t["name"]: t for t in data["tests"]}
    failed = by_name["error_status"]
    assert "HTTP 503" in failed["error"]
    # the app's output is attached: what it printed during this test, not at start-up
    # or during the tests before it (docs/json-report.md, `output`)
    assert '"GET /api/echo HTTP/1.1" 503' in (failed["output"] or "")
    assert "echo app starting" not in failed["output"]


def test_unhealthy_app_shows_its_output(cli) -> None:
    result = cli(["run", str(SUITES / "unhealthy.yaml")])
    assert result.returncode == 3, result.stdout + result.stderr
    text = result.stdout + result.stderr
    assert "app" in text and "this app never becomes healthy" in text
    # the error ends with the log's path, and that log is kept (the app failed)
    logs = re.findall(r"^│?\s*log: (/\S+output\.log)", text, re.MULTILINE)
    assert logs, text
    log = Path(logs[0])
    try:
        assert "this app never becomes healthy" in log.read_text()
    finally:
        shutil.rmtree(log.parent, ignore_errors=True)
