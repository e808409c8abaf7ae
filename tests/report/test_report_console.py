"""The terminal report, captured at a fixed width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from redtest.report.console import ConsoleReporter, make_console
from redtest.results import RunResult


def replay(result: RunResult, console: Console, *, verbosity: int = 0, matrix: bool = False) -> None:
    """Feed the reporter the events a runner would emit for `result`."""
    rep = ConsoleReporter(console, verbosity=verbosity, matrix=matrix)
    rep.run_started([t.test for t in result.tests], result.random_seed)
    rep.services_ready(result.services)
    for t in result.tests:
        rep.test_started(t.test)
        for s in t.steps:
            rep.step_done(t.test, s)
        rep.test_finished(t)
    rep.run_finished(result)


def plain_console() -> Console:
    return Console(file=io.StringIO(), width=120, color_system=None, highlight=False)


def render(result: RunResult, **kw: object) -> str:
    console = plain_console()
    replay(result, console, **kw)  # type: ignore[arg-type]
    return console.file.getvalue()  # type: ignore[attr-defined]


def flat(text: str) -> str:
    """Whitespace-normalised text, so rich's wrapping at 120 columns does not matter."""
    return " ".join(text.split())


def test_test_lines_with_faults_and_hits(run: RunResult) -> None:
    out = flat(render(run))
    assert "PASS scenarios/basic.yaml::counter_increments 21 ms" in out
    assert ("FAIL scenarios/basic.yaml::incr_when_writes_fail 534 ms faults: "
            "set_fails@cache.main (error(command=SET, message=READONLY): 1 hit)") in out
    assert "slow_reads@cache.main (delay(command=GET, delay=500ms): 2 hits)" in out
    assert "ERROR scenarios/app.yaml::no_stale_cache 1.50 s faults: redis_down@cache.main (down(): 0 hits)" in out
    assert "SKIP scenarios/app.yaml::create_order 0 ms (deselected by --tag smoke)" in out


def test_failure_panel(run: RunResult) -> None:
    out = render(run)
    panel = out[out.index("FAIL scenarios/basic.yaml::incr_when_writes_fail ─"):]
    panel = panel[: panel.index("╰")]
    assert 'scenarios/basic.yaml:27: assert_eq(cache.main.get(key="counter").data["value"], None, "<no> counter &' in panel
    assert "expected None, got '1'" in panel
    assert "message: <no> counter & stale" in panel
    assert "error: READONLY You can't write against a" in panel and "read only replica." in panel
    assert "512 ms SLOW" in panel and "cache.main.get as r" in panel
    assert "3 ms SLOW" not in panel


def test_error_panel_shows_error_and_output(run: RunResult) -> None:
    out = render(run)
    panel = out[out.index("ERROR scenarios/app.yaml::no_stale_cache ─"):]
    panel = panel[: panel.index("╰")]
    assert "service app exited with status 1 before the test ended" in panel
    assert "application output" in panel and "ConnectionError: redis down\\x00" in panel


def test_summary_seed_and_runtimes(run: RunResult) -> None:
    out = render(run)
    summary = out[out.index("summary"):]
    rows = [" ".join(line.split()) for line in summary.splitlines()]
    assert "scenarios/basic.yaml 4 2 2 0 0 1.08 s" in rows
    assert "scenarios/app.yaml 2 0 0 1 1 1.50 s" in rows
    assert "total 6 2 2 1 1 2.75 s" in rows
    assert "2 passed, 2 failed, 1 error, 1 skipped in 2.75s" in out
    assert "random seed: 1234 — rerun with --random-seed 1234" in out
    assert "service cache (redis) in scenarios/basic.yaml: docker" in out and "service app (process): process" in out


def test_matrix_grid(run: RunResult) -> None:
    out = render(run, matrix=True)
    grid = out[out.index("matrix: scenario × fault"):]
    header = next(line for line in grid.splitlines() if "no fault" in line)
    assert header.split("│")[1:5] == [" scenario           ", " no fault ", " set_fails ", " slow_reads "]
    row = next(line for line in grid.splitlines() if line.startswith("│ counter_increments"))
    assert [c.strip() for c in row.split("│")[1:5]] == ["counter_increments", "PASS", "FAIL", "PASS"]


def test_verbose_shows_every_step(run: RunResult) -> None:
    normal, verbose = render(run), render(run, verbosity=1)
    passing_reply = '{"value": "OK"}'  # only the passing test's first step answers OK
    assert passing_reply not in normal
    assert passing_reply in verbose
    assert verbose.count("512 ms SLOW") == 1  # a failure's steps are shown once, in its panel


def test_quiet_keeps_failures_only(run: RunResult) -> None:
    out = render(run, verbosity=-1)
    lines = out.splitlines()
    assert not [line for line in lines if line.startswith(("PASS", "SKIP"))]
    assert "FAIL  scenarios/basic.yaml::incr_when_writes_fail" in out
    assert "expected None, got '1'" in out
    assert "summary" not in out
    assert "2 passed, 2 failed, 1 error, 1 skipped" in out and "random seed: 1234" in out


def test_green_run(clean_run: RunResult) -> None:
    out = render(clean_run)
    assert "failures" not in out and "matrix" not in out
    assert "1 passed in 2.75s" in out


def test_names_are_not_markup(run: RunResult) -> None:
    run.tests[1].test.id = "scenarios/basic.yaml::[bold]odd[/bold]"
    out = render(run)
    assert "scenarios/basic.yaml::[bold]odd[/bold]" in out


def test_description_control_characters_are_shown_not_sent(run: RunResult) -> None:
    failed = next(t for t in run.tests if t.status == "failed")
    failed.test.description = "fs \x1b[34mblue\x00 nul"
    out = render(run)
    assert "\x1b" not in out and "\x00" not in out
    assert "fs blue\\x00 nul" in out


@pytest.mark.parametrize("how", ["no_color_env", "no_color_flag", "quiet", "not_a_terminal"])
def test_plain_text_without_escape_codes(run: RunResult, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    stream = io.StringIO()
    if how != "not_a_terminal":
        monkeypatch.setenv("FORCE_COLOR", "1")  # pretend the stream is a terminal
        monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    if how == "no_color_env":
        monkeypatch.setenv("NO_COLOR", "1")
    console = make_console(no_color=how == "no_color_flag", stream=stream, quiet=how == "quiet")
    replay(run, console, verbosity=-1 if how == "quiet" else 0, matrix=True)
    out = stream.getvalue()
    assert "\x1b" not in out
    assert "expected None, got '1'" in out


def test_colour_and_live_progress_on_a_terminal(run: RunResult, monkeypatch: pytest.MonkeyPatch) -> None:
    # the counterpart of the test above: the same setup without NO_COLOR does colour
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")  # CI shells often say TERM=dumb
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()
    console = make_console(no_color=False, stream=stream)
    rep = ConsoleReporter(console)
    rep.run_started([t.test for t in run.tests], run.random_seed)
    assert rep._progress is not None and not rep._live  # not while services start
    rep.services_ready(run.services)
    rep.test_started(run.tests[0].test)
    assert rep._live  # the live display runs on a terminal
    rep.test_finished(run.tests[0])
    rep.run_finished(run)
    assert rep._progress is None
    assert "\x1b[" in stream.getvalue()


def test_no_live_progress_off_a_terminal(run: RunResult) -> None:
    rep = ConsoleReporter(plain_console())
    rep.run_started([t.test for t in run.tests], run.random_seed)
    assert rep._progress is None


def test_off_a_terminal_names_are_not_cut_to_80_columns(run: RunResult, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    stream = io.StringIO()
    console = make_console(stream=stream)
    assert console.width == 160
    replay(run, console, matrix=True)
    assert "…" not in stream.getvalue()
    monkeypatch.setenv("COLUMNS", "100")  # an explicit width still wins
    assert make_console(stream=io.StringIO()).width == 100


def test_narrow_terminal_wraps_matrix_and_summary_names_instead_of_cutting_them(run: RunResult) -> None:
    """At 40 columns the grid read `counte… │ set_f…`: every name must still be all there."""
    console = Console(file=io.StringIO(), width=40, color_system=None, highlight=False)
    rep = ConsoleReporter(console, matrix=True)
    from redtest.report._common import matrix_grid

    grid = matrix_grid(run)
    assert grid is not None
    console.print(rep.matrix_table(grid))
    console.print(rep.summary_table(run))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in out
    # the folded cells, read column by column, spell the names out again
    first_column = "".join(line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│"))
    assert "counter_increments" in first_column
    assert "2.75 s" in out  # a time is never split over two lines
