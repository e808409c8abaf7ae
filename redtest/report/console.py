"""The terminal report: live progress, a line per test, failure panels, summary, matrix."""

from __future__ import annotations

import os
import sys
import time
from typing import IO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from redtest.report._common import (
    STATUS_WORD,
    Matrix,
    args_text,
    assertion_lines,
    by_file,
    clean,
    count,
    failed_assertions,
    faults_line,
    fmt_duration,
    is_slow,
    matrix_grid,
    response_text,
)
from redtest.results import (
    BaseListener,
    PlannedTest,
    RunResult,
    ServiceInfo,
    StepResult,
    TestResult,
)

STATUS_STYLE = {"passed": "green", "failed": "bold red", "error": "bold magenta", "skipped": "yellow"}
PLAIN_WIDTH = 160  # columns when the output is not a terminal and COLUMNS is unset
OUTPUT_TAIL_LINES = 40  # application output can be long; the end is where the trouble shows


class _Console(Console):
    """A Console that outlives its reader: `redtest run | head` must still run every test,
    write the reports and exit with the run's status (rich would exit with 1 at once)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more is printed
        point_at_devnull(self.file)


def point_at_devnull(stream: IO[str]) -> None:
    """Point a stream whose reader went away at /dev/null, so the final flush at exit
    finds no closed pipe (Python would print an error and exit with 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def make_console(no_color: bool = False, stream: IO[str] | None = None, *, quiet: bool = False) -> Console:
    """A Console that writes plain text (no escape codes at all) when asked, when NO_COLOR
    is set, or when `stream` is not a terminal; `quiet` (-q) asks for plain text too."""
    stream = stream if stream is not None else sys.stdout
    plain = no_color or quiet or bool(os.environ.get("NO_COLOR"))
    # rich's own no_color keeps bold/underline; color_system=None drops every escape code.
    # Non-terminals already get color_system=None from rich's detection ("auto").
    # Off a terminal rich assumes 80 columns, which cuts test and fault names in the
    # tables to "write_t…"; CI logs and files have room, so use more unless COLUMNS says.
    is_tty = getattr(stream, "isatty", lambda: False)()
    width = None if is_tty or os.environ.get("COLUMNS") else PLAIN_WIDTH
    return _Console(
        file=stream,
        color_system=None if plain else "auto",
        no_color=plain,
        highlight=False,
        emoji=False,
        width=width,
    )


class ConsoleReporter(BaseListener):
    """Listens to run events and prints the terminal report (verbosity: -1 = -q, 1 = -v)."""

    def __init__(self, console: Console, *, verbosity: int = 0, matrix: bool = False) -> None:
        self.console = console
        self.verbosity = verbosity
        self.matrix = matrix
        self.services: list[ServiceInfo] = []
        self.random_seed: int | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._live = False  # whether the progress display is on screen
        self._started = time.monotonic()

    # -- events -----------------------------------------------------------------------------

    def run_started(self, tests: list[PlannedTest], random_seed: int) -> None:
        self.random_seed = random_seed
        self._started = time.monotonic()
        if self._live_allowed():
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task("", total=len(tests))
            # started at the first test, not here: services start in between, and a
            # runtime's own progress display (docker pull) must not meet a second live one

    def services_ready(self, services: list[ServiceInfo]) -> None:
        self.services.extend(services)  # called once per suite file
        if self.verbosity >= 1:
            for line in self._service_lines():
                self.console.print(line, markup=False)

    def test_started(self, test: PlannedTest) -> None:
        if self._progress is not None and not self._live:
            self._progress.start()
            self._live = True
        self._describe(Text(test.id))

    def step_done(self, test: PlannedTest, step: StepResult) -> None:
        self._describe(Text(f"{test.id} · step {step.index} {step.label}"))

    def test_finished(self, result: TestResult) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
        if self.verbosity < 0 and result.status in ("passed", "skipped"):
            return
        self.console.print(self._test_line(result))
        # failures get their steps in the closing panel; printing them twice only adds noise
        if self.verbosity >= 1 and result.steps and result.status not in ("failed", "error"):
            self.console.print(self._steps_table(result), markup=False)

    def run_finished(self, result: RunResult) -> None:
        self.close()
        if self.random_seed is None:
            self.random_seed = result.random_seed
        if not self.services:
            self.services = list(result.services)
        problems = [t for t in result.tests if t.status in ("failed", "error")]
        if problems:
            self.console.rule("failures", style="red")
            for t in problems:
                self.console.print(self.failure_panel(t))
        if self.matrix or result.matrix:
            grid = matrix_grid(result)
            if grid is not None:
                self.console.print(self.matrix_table(grid))
        if self.verbosity >= 0:
            self.console.print(self.summary_table(result))
            for line in self._service_lines():
                self.console.print(line, markup=False)
        c = count(result.tests)
        style = "bold green" if result.passed else "bold red"
        self.console.print(Text(f"{c.phrase()} in {result.duration_s:.2f}s", style=style))
        seed = result.random_seed
        self.console.print(f"random seed: {seed} — rerun with --random-seed {seed}", markup=False)

    def close(self) -> None:
        """Stop the live display (idempotent); call it if the run ends without run_finished."""
        if self._progress is not None and self._live:
            self._progress.stop()
        self._progress, self._live = None, False

    # -- pieces -----------------------------------------------------------------------------

    def _live_allowed(self) -> bool:
        # a live display needs a terminal that redraws in place; plain mode (NO_COLOR,
        # --no-color, -q) promises no escape codes, and cursor movement is escape codes too
        c = self.console
        return c.is_terminal and not c.is_dumb_terminal and c.color_system is not None and self.verbosity >= 0

    def _describe(self, text: Text) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text.markup)

    def _test_line(self, r: TestResult) -> Text:
        line = Text()
        line.append(f"{STATUS_WORD[r.status]:<5}", style=STATUS_STYLE[r.status])
        line.append(f" {clean(r.test.id)}")
        line.append(f"  {fmt_duration(r.duration_s)}", style="dim")
        faults = faults_line(r)
        if faults:
            line.append("  faults: ", style="dim")
            line.append(faults, style="cyan")
        if r.status == "skipped" and r.skip_reason:
            line.append(f"  ({clean(r.skip_reason)})", style="yellow")
        return line

    def _steps_table(self, r: TestResult) -> Table:
        table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, padding=(0, 1))
        table.add_column("#", justify="right")
        table.add_column("step")
        table.add_column("args", overflow="fold")
        table.add_column("response", overflow="fold")
        table.add_column("time", justify="right", no_wrap=True)
        for s in r.steps:
            slow = is_slow(s)
            took = Text(f"{s.response.duration_ms} ms" + (" SLOW" if slow else ""))
            if slow:
                took.stylize("bold yellow")
            resp = Text(response_text(s), style=None if s.response.ok else "red")
            label = s.label + (f" as {s.as_name}" if s.as_name else "")
            table.add_row(str(s.index), label, args_text(s), resp, took)
        return table

    def failure_panel(self, r: TestResult) -> Panel:
        """Everything needed to understand one failed or erroring test."""
        parts: list[RenderableType] = []
        where = f"{r.test.loc.file}:{r.test.loc.line}"
        head = Text(f"{where}  {r.test.kind}", style="dim")
        if r.test.description:
            head.append(f"  — {clean(r.test.description)}")
        parts.append(head)
        faults = faults_line(r)
        if faults:
            parts.append(Text.assemble(("faults: ", "bold"), (faults, "cyan")))
        for a in failed_assertions(r):
            first, *rest = assertion_lines(a)
            block = Text(first, style="bold")
            for i, extra in enumerate(rest):
                block.append("\n  " + extra, style="red" if i == 0 else "")
            parts.append(block)
        if r.error and (r.status == "error" or not failed_assertions(r)):
            parts.append(Text(clean(r.error), style="red"))
        if r.steps:
            parts.append(self._steps_table(r))
        if r.output:
            tail = clean(r.output).rstrip("\n").splitlines()[-OUTPUT_TAIL_LINES:]
            parts.append(Text("application output (last lines):", style="bold"))
            parts.append(Text("\n".join(tail), style="dim"))
        style = STATUS_STYLE[r.status]
        title = Text(f"{STATUS_WORD[r.status]} {r.test.id}", style=style)
        return Panel(Group(*parts), title=title, title_align="left", border_style=style.split()[-1])

    def summary_table(self, result: RunResult) -> Table:
        """One row per file, then the total."""
        table = Table(title="summary", box=box.SIMPLE_HEAD, title_justify="left")
        # In a narrow terminal names wrap rather than end in "…": a cut name says nothing
        table.add_column("file", overflow="fold")
        for name in ("tests", "passed", "failed", "errors", "skipped"):
            table.add_column(name, justify="right", overflow="fold")
        table.add_column("time", justify="right", no_wrap=True)
        groups = by_file(result.tests)
        for file, tests in groups.items():
            c = count(tests)
            table.add_row(file, *self._count_cells(c.total, c.passed, c.failed, c.error, c.skipped),
                          fmt_duration(c.duration_s))
        total = count(result.tests)
        table.add_row(Text("total", style="bold"),
                      *self._count_cells(total.total, total.passed, total.failed, total.error, total.skipped),
                      fmt_duration(result.duration_s), end_section=True)
        return table

    @staticmethod
    def _count_cells(total: int, passed: int, failed: int, error: int, skipped: int) -> list[Text]:
        return [
            Text(str(total)),
            Text(str(passed), style="green" if passed else "dim"),
            Text(str(failed), style="red" if failed else "dim"),
            Text(str(error), style="magenta" if error else "dim"),
            Text(str(skipped), style="yellow" if skipped else "dim"),
        ]

    def matrix_table(self, grid: Matrix) -> Table:
        """Scenario rows × fault columns, each cell PASS/FAIL/ERROR/SKIP ('-' when not run)."""
        table = Table(title="matrix: scenario × fault", box=box.SQUARE, title_justify="left")
        table.add_column("scenario", overflow="fold")
        table.add_column("no fault", justify="center", overflow="fold")
        for col in grid.columns:
            table.add_column(col, justify="center", overflow="fold")
        for row in grid.rows:
            cells = [self._cell(grid.baseline.get(row))]
            cells += [self._cell(grid.cells.get((row, col))) for col in grid.columns]
            table.add_row(grid.row_label(row), *cells)
        return table

    @staticmethod
    def _cell(r: TestResult | None) -> Text:
        if r is None:
            return Text("-", style="dim")
        return Text(STATUS_WORD[r.status], style=STATUS_STYLE[r.status])

    def _service_lines(self) -> list[str]:
        lines = []
        for s in self.services:
            where = ", ".join(f"{k} {v}" for k, v in s.endpoints.items())
            via = ", ".join(f"{k} via proxy {v}" for k, v in s.proxies.items())
            extra = "; ".join(x for x in (where, via) if x)
            origin = f" in {s.file}" if s.file else ""
            lines.append(f"service {s.name} ({s.kind}){origin}: {s.runtime}" + (f" [{extra}]" if extra else ""))
        return lines
