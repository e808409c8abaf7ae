"""Reports of real runs: the HTML page as a browser lays it out, and JSON fields as documented."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from redtest.clients.response import Response
from redtest.errors import Location
from redtest.report.html import render_html
from redtest.results import RunResult, StepResult

from .conftest import find_chromium

LONG_SCENARIO = "a_scenario_with_a_long_name_" + "a" * 110
LONG_FAULT = "set_fails_with_a_long_fault_name_that_goes_on_and_on_and_on_and_on_forever"

SUITE = f"""\
version: 1
services:
  cache:
    image: redis:7
    interfaces:
      main: {{protocol: redis, port: 6379}}
    seed: flush
seeds:
  flush:
    - cache.main.command: {{cmd: FLUSHALL}}
faults:
  slow_reads:
    target: cache.main
    rules:
      - delay: {{command: GET, delay: 10ms}}
  {LONG_FAULT}:
    target: cache.main
    rules:
      - error: {{command: SET, message: READONLY}}
scenarios:
  quick:
    steps:
      - cache.main.set: {{key: a, value: "1"}}
        expect: ['assert_eq(r.data, {{"value": "OK"}})']
  {LONG_SCENARIO}:
    steps:
      - cache.main.set: {{key: "{'k' * 160}", value: "{'v' * 160}"}}
      - cache.main.get: {{key: "{'k' * 160}"}}
    expect:
      - assert_eq(r.data["value"], "{'x' * 160}")
"""


# Lays the page out at 1300 px with every <details> open and reports what sticks out on
# the right, and where the matrix's status cells end.
LAYOUT_PROBE = """<script>
window.addEventListener("load", () => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  const vw = document.documentElement.clientWidth;
  const out = {vw, scrollWidth: document.documentElement.scrollWidth, over: [], cells: []};
  document.querySelectorAll("body *").forEach(el => {
    const r = el.getBoundingClientRect();
    if (r.right > vw + 1 && !el.closest(".scroll")) out.over.push(el.tagName + "." + el.className);
  });
  document.querySelectorAll("table.matrix td[class^=cell-]").forEach(td => {
    const r = td.getBoundingClientRect();
    out.cells.push([td.textContent, Math.round(r.right), Math.round(r.width)]);
  });
  const pre = document.createElement("pre");
  pre.id = "rt-layout";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _layout(browser: str, page: Path) -> dict:
    html = page.read_text(encoding="utf-8")
    # the report's own policy forbids scripts; lift it for the probe only
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    probed = page.with_name("probed.html")
    probed.write_text(html.replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1300,900", "--virtual-time-budget=5000",
             "--dump-dom", probed.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )
    match = re.search(r'<pre id="rt-layout">(.*?)</pre>', proc.stdout, re.S)
    assert match is not None, proc.stderr[-2000:]
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture
def suite_report(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    (tmp_path / "suite.yaml").write_text(SUITE, encoding="utf-8")
    result = cli(["run", "suite.yaml", "--runtime", "local", "--matrix", "--html", "report.html"], cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # the long-named scenario fails
    return tmp_path / "report.html"


@pytest.mark.skipif(find_chromium() is None,
                    reason="chromium is not installed (CI installs it: apt-get install -y chromium)")
def test_long_names_and_values_do_not_widen_the_page(suite_report: Path) -> None:
    browser = find_chromium()
    assert browser is not None
    layout = _layout(browser, suite_report)
    assert layout["scrollWidth"] <= layout["vw"], layout["over"][:10]
    assert not layout["over"], layout["over"][:10]
    # every matrix cell is on screen and wide enough to read PASS / FAIL on one line
    assert len(layout["cells"]) == 6
    for text, right, width in layout["cells"]:
        assert right <= layout["vw"] and width >= 40, (text, right, width)


def test_step_expectations_are_listed_with_the_test(suite_report: Path) -> None:
    page = suite_report.read_text(encoding="utf-8")
    # the passing test's step `expect` is shown in its block, marked with its step
    assert "✔ steps[0] assert_eq(r.data, {&quot;value&quot;: &quot;OK&quot;})" in page


def _bar_widths(page: str) -> list[float]:
    return [float(w) for w in re.findall(r'class="tl-bar[^"]*" style="left:[0-9.]+%;width:([0-9.]+)%"', page)]


def test_timeline_axis_does_not_stretch_a_fast_test(run: RunResult) -> None:
    fast = run.tests[0]  # three steps of 1, 1 and 2 ms
    run.tests = [fast]
    widths = _bar_widths(render_html(run))
    # 4 ms in all: drawn against at least the SLOW threshold, not as bars filling the track
    assert widths and max(widths) < 1.0, widths
    assert "250 ms</span>" in render_html(run)  # the axis says what the track's width means


def test_timeline_slow_step_still_fills_its_axis(run: RunResult) -> None:
    slow = run.tests[1]  # 3 + 2 + 512 ms: the delayed GET takes nearly the whole track
    run.tests = [slow]
    widths = _bar_widths(render_html(run))
    assert widths[-1] > 98.0, widths


def test_timeline_failed_slow_step_is_red(run: RunResult) -> None:
    t = run.tests[0]
    t.steps = [StepResult(0, "cache.main.get", {"key": "k"},
                          Response(None, ok=False, error="Timeout reading from socket", duration_ms=5000),
                          Location("scenarios/basic.yaml", 12, 9))]
    run.tests = [t]
    page = render_html(run)
    # a step that timed out is slow because it failed: the failure is what the bar shows
    assert 'class="tl-bar bad"' in page and "5000 ms SLOW" in page


FAULT_SUITE = """\
version: 1
services:
  cache:
    image: redis:7
    interfaces:
      main: {protocol: redis, port: 6379}
faults:
  set_fails:
    target: cache.main
    rules:
      - error: {command: SET, message: READONLY}
scenarios:
  write:
    description: the scenario's own words
    tags: [base]
    steps:
      - cache.main.set: {key: a, value: "1"}
      - sleep: 20ms
fault_scenarios:
  write_refused:
    description: the fault scenario's own words
    tags: [fs]
    scenario: write
    faults: set_fails
    expect:
      - assert_false(steps[0].ok)
"""


def test_json_fields_read_as_documented(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """docs/json-report.md: description and tags of a fault scenario, sleep args, rule text."""
    (tmp_path / "suite.yaml").write_text(FAULT_SUITE, encoding="utf-8")
    result = cli(["run", "suite.yaml", "--runtime", "local", "--json", "r.json"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = {t["name"]: t for t in json.loads((tmp_path / "r.json").read_text())["tests"]}
    fs = tests["write_refused"]
    assert fs["description"] == "the fault scenario's own words"
    assert fs["tags"] == ["fs", "base"]
    assert fs["faults"][0]["rules"] == [{"rule": "error(command=SET, message=READONLY)", "hits": 1}]
    sleep = tests["write"]["steps"][1]
    assert sleep["label"] == "sleep" and sleep["args"] == {"seconds": 0.02}
    # status and headers belong to HTTP replies only
    assert all("status" not in s["response"] and "headers" not in s["response"] for s in fs["steps"])
