"""One self-contained HTML page (inline CSS, no script, no fetches): the CI artifact people open."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from redtest.report._common import (
    SLOW_STEP_MS,
    STATUS_WORD,
    Matrix,
    args_text,
    assertion_lines,
    by_file,
    clean,
    count,
    failed_assertions,
    fault_summary,
    fmt_duration,
    is_slow,
    matrix_grid,
    response_text,
)
from redtest.results import RunResult, TestResult

OUTPUT_TAIL_LINES = 200

CSS = """
:root { --pass:#1a7f37; --fail:#cf222e; --error:#8250df; --skip:#9a6700; --muted:#57606a;
        --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 8px; overflow-x: auto;
      white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
.meta { color: var(--muted); }
.pill { display: inline-block; min-width: 52px; text-align: center; border-radius: 10px; padding: 0 8px;
        color: #fff; font-weight: 600; font-size: 12px; }
.passed { background: var(--pass); } .failed { background: var(--fail); }
.error { background: var(--error); } .skipped { background: var(--skip); }
.cards { display: flex; gap: 12px; margin: 16px 0; flex-wrap: wrap; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 16px; min-width: 110px; }
.card b { display: block; font-size: 22px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); } td.num, th.num { text-align: right; } tr.total td { font-weight: 600; }
/* A long unbroken name or value wraps where it must instead of widening the page. In
   tables, "anywhere" also lets a column shrink, so headers do not wrap: they keep short
   cells whole; the steps table has fixed columns; the matrix scrolls in its own box. */
td, th, h3, summary, .mono, .meta, .faults, .assertion div, li { overflow-wrap: anywhere; }
th, td.num, .pill { white-space: nowrap; overflow-wrap: normal; }
.scroll { overflow-x: auto; }
table.steps { table-layout: fixed; }
table.steps th:nth-child(1) { width: 40px; } table.steps th:nth-child(2) { width: 22%; }
table.steps th:nth-child(3) { width: 30%; } table.steps th:nth-child(5) { width: 110px; }
table.matrix th { white-space: normal; overflow-wrap: break-word; min-width: 64px; }
table.matrix td[class^="cell-"] { white-space: nowrap; overflow-wrap: normal; }
table.matrix td, table.matrix th { text-align: center; border: 1px solid var(--line); }
table.matrix td:first-child { text-align: left; min-width: 24ch; }
.cell-passed { background: #dafbe1; color: var(--pass); font-weight: 600; }
.cell-failed { background: #ffebe9; color: var(--fail); font-weight: 600; }
.cell-error { background: #fbefff; color: var(--error); font-weight: 600; }
.cell-skipped { background: #fff8c5; color: var(--skip); }
.failure { border: 1px solid var(--fail); border-left: 6px solid var(--fail); border-radius: 6px;
           padding: 10px 14px; margin: 12px 0; }
.failure.status-error { border-color: var(--error); }
.assertion { margin: 8px 0; } .assertion .detail { color: var(--fail); font-weight: 600; }
.slow { color: #bc4c00; font-weight: 600; } .step-error { color: var(--fail); }
details.test { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
details.test > summary { cursor: pointer; }
.faults { color: #0969da; }
.timeline { margin: 8px 0; }
.tl-row { display: grid; grid-template-columns: 240px 1fr 110px; gap: 8px; align-items: center; }
.tl-track { position: relative; height: 14px; background: var(--bg); border-radius: 3px; }
.tl-bar { position: absolute; top: 0; height: 14px; border-radius: 3px; background: #54aeff; min-width: 2px; }
.tl-bar.slow { background: #fb8f44; } .tl-bar.bad { background: var(--fail); }
.tl-bar.sleep { background: #afb8c1; }
.tl-axis { color: var(--muted); font-size: 11px; } .tl-axis .tl-scale { display: flex; justify-content: space-between; }
"""


def write_html(result: RunResult, path: str | os.PathLike[str]) -> None:
    """Write the run as one self-contained HTML page to `path` (parent folders are created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(result), encoding="utf-8")


def render_html(result: RunResult) -> str:
    """The page as a string."""
    c = count(result.tests)
    status = "passed" if result.passed else "failed"
    problems = [t for t in result.tests if t.status in ("failed", "error")]
    grid = matrix_grid(result)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # forbid every fetch: the page must read the same offline, in any CI artifact viewer
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>redtest: {_e(c.phrase())}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>redtest report <span class="pill {status}">{status.upper()}</span></h1>',
        f'<div class="meta">{_e(c.phrase())} in {result.duration_s:.2f}s · started {_e(result.started_at)}'
        f" · redtest {_e(result.version)} · random seed <code>{result.random_seed}</code>"
        f" (rerun with <code>--random-seed {result.random_seed}</code>)</div>",
        _cards(result),
        _summary(result),
        _services(result),
    ]
    if grid is not None:
        parts.append(_matrix(grid))
    if problems:
        parts.append(f'<h2 id="failures">Failures ({len(problems)})</h2>')
        parts.extend(_failure(t) for t in problems)
    parts.append("<h2 id=\"tests\">Tests and step timelines</h2>")
    parts.extend(_test(t) for t in result.tests)
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(text: object) -> str:
    return html.escape(clean(str(text)), quote=True)


def _breakable(name: str) -> str:
    """Escaped, with a line-break opportunity after each _ . - + so a long fault name wraps there."""
    return re.sub(r"([_.+-])", r"\1<wbr>", _e(name))


def _pill(status: str) -> str:
    return f'<span class="pill {status}">{STATUS_WORD[status]}</span>'


def _cards(result: RunResult) -> str:
    c = count(result.tests)
    cards = [("tests", c.total), ("passed", c.passed), ("failed", c.failed), ("errors", c.error),
             ("skipped", c.skipped)]
    inner = "".join(f'<div class="card"><b>{n}</b>{label}</div>' for label, n in cards)
    return f'<div class="cards">{inner}</div>'


def _summary(result: RunResult) -> str:
    rows = []
    for file, tests in by_file(result.tests).items():
        c = count(tests)
        rows.append(f"<tr><td class=mono>{_e(file)}</td><td class=num>{c.total}</td><td class=num>{c.passed}</td>"
                    f"<td class=num>{c.failed}</td><td class=num>{c.error}</td><td class=num>{c.skipped}</td>"
                    f"<td class=num>{fmt_duration(c.duration_s)}</td></tr>")
    total = count(result.tests)
    rows.append(f'<tr class="total"><td>total</td><td class=num>{total.total}</td><td class=num>{total.passed}</td>'
                f"<td class=num>{total.failed}</td><td class=num>{total.error}</td><td class=num>{total.skipped}</td>"
                f"<td class=num>{fmt_duration(result.duration_s)}</td></tr>")
    head = "<tr><th>file</th>" + "".join(
        f"<th class=num>{h}</th>" for h in ("tests", "passed", "failed", "errors", "skipped", "time")) + "</tr>"
    return f'<h2 id="summary">Summary</h2><table class="summary">{head}{"".join(rows)}</table>'


def _services(result: RunResult) -> str:
    if not result.services:
        return ""
    rows = []
    for s in result.services:
        where = ", ".join(f"{k} {v}" for k, v in s.endpoints.items())
        via = ", ".join(f"{k} {v}" for k, v in s.proxies.items())
        rows.append(f"<tr><td>{_e(s.name)}</td><td class=mono>{_e(s.file or '')}</td><td>{_e(s.kind)}</td><td><b>{_e(s.runtime)}</b></td>"
                    f"<td class=mono>{_e(where)}</td><td class=mono>{_e(via)}</td>"
                    f"<td class=mono>{_e(s.detail or '')}</td></tr>")
    head = "<tr><th>service</th><th>file</th><th>kind</th><th>runtime</th><th>server</th><th>proxy</th><th>detail</th></tr>"
    return f'<h2 id="services">Services</h2><table>{head}{"".join(rows)}</table>'


def _matrix(grid: Matrix) -> str:
    head = "<tr><th>scenario</th><th>no fault</th>" + "".join(f"<th>{_breakable(c)}</th>" for c in grid.columns) + "</tr>"
    rows = []
    for row in grid.rows:
        cells = [grid.baseline.get(row)] + [grid.cells.get((row, col)) for col in grid.columns]
        tds = "".join(
            '<td class="cell-none">–</td>' if t is None
            else f'<td class="cell-{t.status}" title="{_e(t.test.id)}">{STATUS_WORD[t.status]}</td>'
            for t in cells
        )
        rows.append(f"<tr><td class=mono>{_e(grid.row_label(row))}</td>{tds}</tr>")
    # many fault columns scroll inside their box; the rest of the page keeps its width
    return (f'<h2 id="matrix">Matrix: scenario × fault</h2>'
            f'<div class="scroll"><table class="matrix">{head}{"".join(rows)}</table></div>')


def _faults_html(t: TestResult) -> str:
    if t.faults:
        items = "".join(f"<li>{_e(fault_summary(f))}</li>" for f in t.faults)
        return f'<div class="faults">faults:<ul>{items}</ul></div>'
    if t.test.faults:
        return f'<div class="faults">faults: {_e(", ".join(t.test.faults))} (not activated)</div>'
    return ""


def _failure(t: TestResult) -> str:
    loc = t.test.loc
    parts = [f'<section class="failure status-{t.status}" id="fail-{_e(t.test.id)}">',
             f"<h3>{_pill(t.status)} <span class=mono>{_e(t.test.id)}</span></h3>",
             f'<div class="meta">{_e(loc.file)}:{loc.line} · {_e(t.test.kind)} · {fmt_duration(t.duration_s)}'
             + (f" · {_e(t.test.description)}" if t.test.description else "") + "</div>",
             _faults_html(t)]
    for a in failed_assertions(t):
        first, *rest = assertion_lines(a)
        extra = "".join(f'<div class="{"detail" if i == 0 else "msg"}">{_e(x)}</div>' for i, x in enumerate(rest))
        parts.append(f'<div class="assertion"><pre>{_e(first)}</pre>{extra}</div>')
    if t.error and (t.status == "error" or not failed_assertions(t)):
        parts.append(f'<pre class="step-error">{_e(t.error)}</pre>')
    if t.steps:
        parts.append(_steps_table(t))
    if t.output:
        tail = t.output.rstrip("\n").splitlines()[-OUTPUT_TAIL_LINES:]
        parts.append(f"<div><b>application output</b></div><pre>{_e(chr(10).join(tail))}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def _steps_table(t: TestResult) -> str:
    rows = []
    for s in t.steps:
        slow = is_slow(s)
        took = f'<span class="slow">{s.response.duration_ms} ms SLOW</span>' if slow else f"{s.response.duration_ms} ms"
        cls = "" if s.response.ok else ' class="step-error"'
        label = s.label + (f" as {s.as_name}" if s.as_name else "")
        rows.append(f"<tr><td class=num>{s.index}</td><td class=mono>{_e(label)}</td>"
                    f"<td class=mono>{_e(args_text(s, 300))}</td>"
                    f"<td class=mono><span{cls}>{_e(response_text(s, 500))}</span></td><td class=num>{took}</td></tr>")
    head = "<tr><th>#</th><th>step</th><th>args</th><th>response</th><th>time</th></tr>"
    return f'<table class="steps">{head}{"".join(rows)}</table>'


def _timeline(t: TestResult) -> str:
    """Steps as bars on one time axis: where each began and how long it took.

    The axis is never shorter than SLOW_STEP_MS: a test whose steps took 1 ms in all
    would otherwise draw a full-width bar, the same as a half-second delay in another
    test, and a delayed step would no longer stand out when scanning the page.
    """
    if not t.steps:
        return ""
    axis = max(sum(s.response.duration_ms for s in t.steps), SLOW_STEP_MS)
    rows, start = [], 0
    for s in t.steps:
        ms = s.response.duration_ms
        slow = is_slow(s)
        # a failure wins over slowness: a step that timed out is both, and it failed
        kind = "sleep" if s.label == "sleep" else "bad" if not s.response.ok else "slow" if slow else ""
        left, width = 100 * start / axis, 100 * ms / axis
        note = " SLOW" if slow else ""
        rows.append(
            f'<div class="tl-row"><span class=mono>[{s.index}] {_e(s.label)}</span>'
            f'<div class="tl-track"><div class="tl-bar {kind}" style="left:{left:.2f}%;width:{width:.2f}%"'
            f' title="{_e(s.label)}: {ms} ms"></div></div>'
            f'<span class="num{" slow" if note else ""}">{ms} ms{note}</span></div>'
        )
        start += ms
    scale = (f'<div class="tl-row tl-axis"><span></span><div class="tl-scale"><span>0</span>'
             f"<span>{axis} ms</span></div><span></span></div>")
    return f'<div class="timeline">{"".join(rows)}{scale}</div>'


def _test(t: TestResult) -> str:
    is_open = " open" if t.status in ("failed", "error") else ""
    faults = "; ".join(fault_summary(f) for f in t.faults) or ", ".join(t.test.faults)
    summary = (f"{_pill(t.status)} <span class=mono>{_e(t.test.id)}</span> "
               f'<span class="meta">{fmt_duration(t.duration_s)}</span>'
               + (f' <span class="faults">{_e(faults)}</span>' if faults else ""))
    body = []
    if t.test.description:
        body.append(f'<div class="meta">{_e(t.test.description)}</div>')
    if t.skip_reason:
        body.append(f'<div class="meta">skipped: {_e(t.skip_reason)}</div>')
    body.append(_timeline(t))
    if t.steps:
        body.append(_steps_table(t))
    # the steps' own expect, then the test's: every result the JSON report has
    results = [(f"steps[{s.index}] ", a) for s in t.steps for a in s.assertions]
    results += [("", a) for a in t.assertions]
    if results:
        items = "".join(
            f'<li class=mono>{"✔" if a.passed else "✘"} {_e(where + a.source)}'
            + (f' <span class="step-error">{_e(a.detail or a.error or "")}</span>' if not a.passed else "")
            + "</li>" for where, a in results)
        body.append(f"<ul>{items}</ul>")
    return f'<details class="test"{is_open}><summary>{summary}</summary>{"".join(body)}</details>'
