"""The `redtest` command: parse options, call one function, map the outcome to an exit status.

Exit statuses (SPEC §10): 0 all passed · 1 a test failed · 2 invalid files or usage ·
3 services could not start · 4 an internal error (a bug in redtest) · 130/143 interrupted.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from redtest import __version__
from redtest.errors import RedtestError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_PATH = "scenarios/"
EXIT_INTERNAL = 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `git log | head` and other Unix tools end with


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so every `with` block cleans up."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["redtest.debug"] = True  # meta is shared by the whole context chain


# Errors say "run again with --debug": users append it to the command they ran
# (`redtest run scenarios/ --debug`), so every command takes it, as the group does.
debug_option = click.option("--debug", is_flag=True, expose_value=False, callback=_set_debug,
                            help="Show Python tracebacks for errors.")


class StdoutClosed(Exception):
    """The reader of our standard output went away (`redtest list | head -1`)."""


def echo(text: str = "", **kwargs: Any) -> None:
    """click.echo to stdout; a closed pipe ends the command quietly instead of as a bug."""
    try:
        click.echo(text, **kwargs)
    except BrokenPipeError as exc:
        raise StdoutClosed() from exc


def _stopped(params: dict[str, Any]) -> str:
    """What an interrupted command leaves behind."""
    if params.get("keep_services"):
        return "everything redtest started has been stopped, except the services kept (listed above)"
    return "everything redtest started has been stopped"


def handles_errors(func: F) -> F:
    """Turn RedtestErrors into one paragraph and an exit status; no traceback unless --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug") or ctx.meta.get("redtest.debug"))
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        # Ctrl-C as KeyboardInterrupt, so every `with` block cleans up (redtest._entry
        # installed a quiet exit for the moments before a command runs).
        previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return func(*args, **kwargs)
        except RedtestError as exc:
            if debug:
                raise
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo(f"interrupted: {_stopped(kwargs)}", err=True)
            sys.exit(130)
        except Terminated:
            click.echo(f"terminated: {_stopped(kwargs)}", err=True)
            sys.exit(143)
        except StdoutClosed:
            from redtest.report.console import point_at_devnull

            point_at_devnull(sys.stdout)
            sys.exit(EXIT_BROKEN_PIPE)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
            if debug:
                raise
            _fail(
                f"internal error: {type(exc).__name__}: {exc} — this is a bug in redtest; "
                "run again with --debug for the traceback",
                EXIT_INTERNAL,
            )
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="redtest")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def main(debug: bool) -> None:
    """Test how applications behave when Redis misbehaves."""


def _paths(paths: tuple[str, ...]) -> list[Path]:
    return [Path(p) for p in (paths or (DEFAULT_PATH,))]


def _load(paths: tuple[str, ...]) -> list[Any]:
    from redtest.spec.build import load_suites

    return load_suites(_paths(paths))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@debug_option
@handles_errors
def validate(paths: tuple[str, ...]) -> None:
    """Check files against the schema and their references; start nothing."""
    suites = _load(paths)
    if not suites:  # a folder with nothing in it: "0 valid" would pass a CI check by mistake
        where = ", ".join(str(p) for p in _paths(paths))
        _fail(f"no redtest files (*.yaml, *.yml) found in {where}", 2)
    tests = sum(len(s.scenarios) + len(s.fault_scenarios) for s in suites)
    echo(f"{len(suites)} file(s) valid, {tests} test(s)")


@main.command(name="list")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-k", "keyword", help="Only tests whose id (FILE::NAME) contains TEXT; with * ? [ also a glob on the name or id.")
@click.option("--tag", "tags", multiple=True, help="Only tests with this tag (repeatable).")
@click.option("--matrix", is_flag=True, help="Include the scenario × fault matrix cells.")
@debug_option
@handles_errors
def list_tests(paths: tuple[str, ...], keyword: str | None, tags: tuple[str, ...], matrix: bool) -> None:
    """Print the scenarios and fault scenarios that would run."""
    from redtest.runner import Selection, plan

    planned = plan(_load(paths), Selection(keyword, tags, matrix))
    if not planned:  # as `run` does: a selection of nothing is a mistake, not a success
        _fail("no tests selected: check the paths, -k and --tag", 2)
    for _, tests in planned:
        for test in tests:
            extra = f"  faults: {', '.join(test.faults)}" if test.faults else ""
            echo(f"{test.id}  [{test.kind}]{extra}")
    echo(f"{sum(len(t) for _, t in planned)} test(s)")


@main.command()
@debug_option
@handles_errors
def schema() -> None:
    """Print the JSON Schema of the file format."""
    from redtest.spec.schema import schema_text

    echo(schema_text(), nl=False)


@main.command()
# The same default as `run`, so `redtest init && redtest run` works as written.
@click.argument("directory", default=DEFAULT_PATH, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@debug_option
@handles_errors
def init(directory: str, force: bool) -> None:
    """Write a small working example suite (with the editor schema modeline)."""
    from redtest.scaffold import write_example

    for path in write_example(Path(directory), force=force):
        echo(f"wrote {path}")
    echo("run it with: redtest run" + ("" if directory == DEFAULT_PATH else f" {directory}"))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--all", "everything", is_flag=True,
              help="Stop every kept server of this user, whatever suite kept it.")
@debug_option
@handles_errors
def clean(paths: tuple[str, ...], everything: bool) -> None:
    """Stop the servers and containers that `reuse: true` kept for the suites in PATHS.

    PATHS are suite files or folders (default: the current folder), as with
    `docker compose down` for one project; --all stops every kept server.
    """
    from redtest.services.runtime import stop_kept, suites_under

    if everything and paths:
        _fail("give either PATHS or --all, not both", 2)
    select = (lambda suite: True) if everything else suites_under(paths or (".",))
    stopped = stop_kept(select)
    missing = [p for p in paths if not Path(p).exists()]
    if missing and not stopped:  # a deleted suite's servers are still found; a typo is not
        click.echo(f"note: no such file or folder: {', '.join(missing)}", err=True)
    for line in stopped:
        echo(f"stopped {line}")
    where = "" if everything else f" under {', '.join(paths or ('.',))}"
    echo(f"stopped {len(stopped)} kept server(s){where}")


@main.command()
@click.option("--upstream", required=True, help="The Redis server, HOST:PORT.")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help="Where to listen, HOST:PORT.")
@click.option("--faults", "faults_file", type=click.Path(exists=True, dir_okay=False),
              help="A redtest file whose faults to switch on: all of them, unless --fault names some.")
@click.option("--fault", "fault_names", multiple=True, help="Switch on only this fault of that file (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Don't print a line per rule hit.")
@debug_option
@handles_errors
def proxy(upstream: str, listen: str, faults_file: str | None, fault_names: tuple[str, ...], quiet: bool) -> None:
    """Run the fault proxy alone in front of any Redis, until Ctrl-C."""
    from redtest.proxy_command import run_proxy_command

    run_proxy_command(upstream, listen, faults_file, fault_names, quiet=quiet, echo=click.echo)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-k", "keyword", help="Only tests whose id (FILE::NAME) contains TEXT; with * ? [ also a glob on the name or id.")
@click.option("--tag", "tags", multiple=True, help="Only tests with this tag (repeatable).")
@click.option("-x", "--fail-fast", is_flag=True, help="Stop after the first failed or errored test; the rest are reported as skipped.")
@click.option("--junit-xml", type=click.Path(dir_okay=False), help="Write a JUnit XML report.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write a JSON report (shape: docs/json-report.md).")
@click.option("--html", type=click.Path(dir_okay=False), help="Write a self-contained HTML report.")
@click.option("--runtime", type=click.Choice(["auto", "docker", "local", "embedded"]),
              help="Serve every Redis service with this runtime, whatever its file says (auto: docker, else a local redis-server, else embedded).")
@click.option("--matrix", is_flag=True, help="Also run every scenario under every fault on its interfaces.")
@click.option("--random-seed", type=int, help="Seed for probabilistic fault rules (printed when omitted).")
@click.option("--keep-services", is_flag=True, help="Leave Redis servers and applications running after the run and print how to stop each (the fault proxies stop with redtest).")
@click.option("-v", "--verbose", count=True, help="Show every step of every test.")
@click.option("-q", "--quiet", is_flag=True, help="Only failures and the summary.")
@click.option("--no-color", is_flag=True, help="Plain text, no colours (also NO_COLOR=1).")
@debug_option
@handles_errors
def run(
    paths: tuple[str, ...], keyword: str | None, tags: tuple[str, ...], fail_fast: bool,
    junit_xml: str | None, json_path: str | None, html: str | None, runtime: str | None,
    matrix: bool, random_seed: int | None, keep_services: bool, verbose: int, quiet: bool,
    no_color: bool,
) -> None:
    """Validate, start services, run every scenario with and without its faults, report."""
    from redtest.runner import RunOptions, Selection, plan
    from redtest.runner import run as run_suites

    reports = {"JUnit XML": junit_xml, "JSON": json_path, "HTML": html}
    _check_reports_are_distinct(reports)
    _check_reports_are_not_inputs(reports, paths)
    for kind, target in reports.items():
        if target:
            _check_report_path(kind, target)
    # A report left by an earlier run must not pass for this run's result when this one
    # ends without writing its own (Ctrl-C, invalid files, no test selected).
    _remove_old_reports(reports)
    suites = _load(paths)
    if not plan(suites, Selection(keyword, tags, matrix)):
        _fail("no tests selected: check the paths, -k and --tag", 2)
    options = RunOptions(
        selection=Selection(keyword, tags, matrix),
        fail_fast=fail_fast,
        runtime=runtime,
        random_seed=random_seed,
        keep_services=keep_services,
    )
    listeners = _reporters(verbose=-1 if quiet else verbose, no_color=no_color, matrix=matrix)
    result, start_failed = run_suites(suites, options, listeners)
    unwritten = _write_reports(result, reports)
    if unwritten:
        _fail(" ".join(unwritten), 2)
    if start_failed:
        sys.exit(3)
    sys.exit(0 if result.passed else 1)


def _reporters(*, verbose: int, no_color: bool, matrix: bool) -> list[Any]:
    from redtest.report.console import ConsoleReporter, make_console

    console = make_console(no_color=no_color, quiet=verbose < 0)
    return [ConsoleReporter(console, verbosity=verbose, matrix=matrix)]


def _check_reports_are_distinct(reports: dict[str, str | None]) -> None:
    """Two reports at one path: the second would silently replace the first, and a CI
    job would read JSON where it expects JUnit XML."""
    seen: dict[Path, str] = {}
    for kind, target in reports.items():
        if not target:
            continue
        key = Path(target).resolve()
        if key in seen:
            _fail(f"the {seen[key]} and {kind} reports would both be written to {target}; "
                  "give each report its own file name", 2)
        seen[key] = kind


def _check_reports_are_not_inputs(reports: dict[str, str | None], paths: tuple[str, ...]) -> None:
    """`--json suite.yaml other.yaml` (the report's own name forgotten) must not replace
    a suite with a report: refuse a report path that is one of the files to run."""
    from redtest.spec.build import find_suite_files

    inputs = {p.resolve() for p in find_suite_files(Path(p) for p in paths)}
    for kind, target in reports.items():
        if target and Path(target).resolve() in inputs:
            _fail(
                f"the {kind} report would be written to {target}, which is a suite file of "
                "this run; give the report its own file name",
                2,
            )


def _check_report_path(kind: str, target: str) -> None:
    """Fail before anything runs when a report could not be written where asked."""
    path = Path(target).absolute()
    folder = path.parent
    if not folder.exists():  # the writers would create it: create it now, or fail now
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fail(f"cannot write the {kind} report to {target}: {exc.strerror or exc}", 2)
    if not folder.is_dir():
        _fail(f"cannot write the {kind} report to {target}: {folder} is a file, not a folder", 2)
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        _fail(f"cannot write the {kind} report to {target}: permission denied", 2)


# How each report's file starts: an existing file at a report path is replaced only
# when it looks like such a report (or is empty), never a suite or anything else.
_REPORT_STARTS = {"JUnit XML": (b"<?xml", b"<testsuites"), "JSON": (b"{",), "HTML": (b"<!doctype html", b"<html")}


def _remove_old_reports(reports: dict[str, str | None]) -> None:
    for kind, target in reports.items():
        if not target:
            continue
        path = Path(target)
        # Only plain files: /dev/stdout or a symlink the user set up must stay as they are.
        if not path.is_file() or path.is_symlink():
            continue
        try:
            with path.open("rb") as f:
                head = f.read(512).lstrip().lower()
        except OSError as exc:
            _fail(f"cannot replace the {kind} report {target}: {exc.strerror or exc}", 2)
        if head and not head.startswith(_REPORT_STARTS[kind]):
            _fail(
                f"{target} exists and is not a {kind} report; redtest will not replace it "
                "(a report option followed by a suite, its own file name forgotten?)",
                2,
            )
        try:
            path.unlink()
        except OSError as exc:
            _fail(f"cannot replace the {kind} report {target}: {exc.strerror or exc}", 2)


def _write_reports(result: Any, reports: dict[str, str | None]) -> list[str]:
    """Write every report asked for; return one sentence per report that could not be written."""
    if not any(reports.values()):
        return []
    from redtest.report.html import write_html
    from redtest.report.json_report import write_json
    from redtest.report.junit import write_junit

    writers = {"JUnit XML": write_junit, "JSON": write_json, "HTML": write_html}
    unwritten = []
    for kind, target in reports.items():
        if not target:
            continue
        try:
            writers[kind](result, target)
        except OSError as exc:  # the disk filled up, the folder went away...
            unwritten.append(f"cannot write the {kind} report to {target}: {exc.strerror or exc}.")
    return unwritten


if __name__ == "__main__":
    main()
