"""The helpers the reporters share."""

from __future__ import annotations

from redtest.clients.response import Response
from redtest.errors import Location
from redtest.report._common import clean, count, fmt_duration, is_slow, matrix_grid
from redtest.results import RunResult, StepResult


def test_clean_strips_colour_and_shows_control_characters() -> None:
    assert clean("a\x1b[31mred\x1b[0m\r\nb\x00c\x7f\ud800") == "ared\nb\\x00c\\x7f\\ud800"
    assert clean("tab\tand é stay") == "tab\tand é stay"
    assert clean("\x1b]0;title\x07x") == "x"


def test_counts_phrase(run: RunResult) -> None:
    assert count(run.tests).phrase() == "2 passed, 2 failed, 1 error, 1 skipped"
    assert count([]).phrase() == "no tests ran"
    assert count(run.tests[1:2] * 2).phrase() == "2 failed"


def test_fmt_duration() -> None:
    assert fmt_duration(0.0214) == "21 ms" and fmt_duration(2.5) == "2.50 s"


def test_slow_marks_delays_not_sleeps() -> None:
    def step(label: str, ms: int) -> StepResult:
        return StepResult(0, label, {}, Response(duration_ms=ms), Location("f.yaml", 1, 1))

    assert is_slow(step("cache.main.get", 250)) and not is_slow(step("cache.main.get", 249))
    assert not is_slow(step("sleep", 2000))


def test_matrix_grid(run: RunResult) -> None:
    grid = matrix_grid(run)
    assert grid is not None
    assert grid.rows == [("scenarios/basic.yaml", "counter_increments")]
    assert grid.columns == ["set_fails", "slow_reads"]
    row = grid.rows[0]
    assert grid.baseline[row].status == "passed"
    assert grid.cells[(row, "set_fails")].status == "failed"
    assert grid.row_label(row) == "counter_increments"


def test_matrix_grid_names_files_when_scenarios_clash(run: RunResult) -> None:
    other = run.tests[5]  # the second matrix cell
    other.test.file = "scenarios/other.yaml"
    grid = matrix_grid(run)
    assert grid is not None
    assert [grid.row_label(r) for r in grid.rows] == [
        "scenarios/basic.yaml::counter_increments", "scenarios/other.yaml::counter_increments"]


def test_no_grid_without_matrix_cells(clean_run: RunResult) -> None:
    assert matrix_grid(clean_run) is None


def test_clean_shows_bidi_overrides_but_keeps_rtl_text() -> None:
    """U+202E in a value would show the rest of its line reversed on a terminal and in HTML."""
    assert clean("got \u202eabc") == "got \\u202eabc"
    assert clean("\u2067x\u2069 \u202a\u202d") == "\\u2067x\\u2069 \\u202a\\u202d"
    assert clean("שלום مرحبا") == "שלום مرحبا"
