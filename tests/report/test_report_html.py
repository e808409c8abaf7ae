"""The HTML report: self-contained, escaped, and readable in a real browser (headless Chromium)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from redtest.report.html import render_html, write_html
from redtest.results import RunResult

from .conftest import find_chromium

FAILED_NAME = "scenarios/basic.yaml::incr_when_writes_fail"
ASSERTION = 'assert_eq(cache.main.get(key="counter").data["value"], None, "<no> counter & stale")'


def test_self_contained(run: RunResult) -> None:
    page = render_html(run)
    # nothing that could make a browser fetch anything: no links, sources, imports or urls
    assert not re.search(r"\b(src|href)\s*=|@import|url\(|<link|<script|https?:", page, re.I)
    assert "Content-Security-Policy" in page


def test_escapes_user_text(run: RunResult) -> None:
    run.tests[1].test.id = 'scenarios/basic.yaml::<img src=x onerror="alert(1)">'
    page = render_html(run)
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&lt;no&gt; counter &amp; stale" in page
    assert "\x1b" not in page and "\x00" not in page  # the app's colour codes and NUL


def test_sections(run: RunResult, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.html"
    write_html(run, out)
    page = out.read_text(encoding="utf-8")
    for anchor in ("summary", "services", "matrix", "failures", "tests"):
        assert f'id="{anchor}"' in page
    assert "random seed <code>1234</code>" in page
    assert page.count('class="tl-row"') == 6  # one timeline row per executed step
    assert 'class="tl-bar slow"' in page and "512 ms SLOW" in page


def test_no_matrix_section_without_cells(clean_run: RunResult) -> None:
    page = render_html(clean_run)
    assert 'id="matrix"' not in page and 'id="failures"' not in page


def _dump_dom(browser: str, page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# innerText only holds what is rendered visible (closed <details>, display:none are left
# out), so this script turns "visible on screen" into text that --dump-dom can show.
VISIBLE_PROBE = """<script>
document.addEventListener("DOMContentLoaded", () => {
  const pre = document.createElement("pre");
  pre.id = "rt-visible";
  pre.textContent = document.body.innerText;
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.skipif(find_chromium() is None,
                    reason="chromium is not installed (CI installs it: apt-get install -y chromium)")
def test_chromium_shows_the_failure(run: RunResult, tmp_path: Path) -> None:
    browser = find_chromium()
    assert browser is not None
    page = tmp_path / "report.html"
    write_html(run, page)

    dom = _dump_dom(browser, page)
    assert "<title>redtest: 2 passed, 2 failed, 1 error, 1 skipped</title>" in dom
    assert FAILED_NAME in dom

    # the same page with the probe (the report's own policy forbids scripts; lift it for the probe)
    html = page.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", VISIBLE_PROBE + "</body>"), encoding="utf-8")
    dom = _dump_dom(browser, probed)
    match = re.search(r'<pre id="rt-visible">(.*?)</pre>', dom, re.S)
    assert match is not None, dom[-2000:]
    visible = match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert FAILED_NAME in visible
    assert ASSERTION in visible
    assert "expected None, got '1'" in visible
    assert "512 ms SLOW" in visible
    assert "service app exited with status 1" in visible
    # and the probe does tell visible from hidden: a passing test's steps sit in a closed <details>
    assert "{&quot;value&quot;: &quot;OK&quot;}" in html and '{"value": "OK"}' not in visible


def test_bidi_override_in_user_text_is_shown_escaped(run: RunResult) -> None:
    failed = next(t for t in run.tests if t.status == "failed")
    failed.test.description = "ends \u202eesrever"
    page = render_html(run)
    assert "\u202e" not in page and "ends \\u202eesrever" in page
