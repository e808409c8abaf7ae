"""The small commands, through the real CLI: schema, init, validate, list, --version,
and the example suites under scenarios/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from redtest import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_schema_prints_the_shipped_file_exactly(cli) -> None:
    result = cli(["schema"])
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schemas" / "redtest.schema.json").read_text()
    Draft202012Validator.check_schema(json.loads(result.stdout))


def test_version(cli) -> None:
    result = cli(["--version"])
    assert result.returncode == 0 and __version__ in result.stdout


def test_validate_the_example_scenarios(cli) -> None:
    result = cli(["validate", "scenarios/"])
    assert result.returncode == 0, result.stderr
    assert re.search(r"\d+ file\(s\) valid", result.stdout)


def test_every_scenario_file_has_the_schema_modeline() -> None:
    for path in sorted((ROOT / "scenarios").rglob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == (ROOT / "redtest" / "schemas" / "redtest.schema.json").resolve(), path


def test_list_prints_the_plan(cli) -> None:
    result = cli(["list", "scenarios/faults.yaml"])
    assert result.returncode == 0
    assert "scenarios/faults.yaml::write_when_readonly  [fault_scenario]  faults: set_fails" in result.stdout
    assert "scenarios/faults.yaml::write_then_read  [scenario]" in result.stdout
    matrix = cli(["list", "scenarios/faults.yaml", "--matrix", "-k", "write_then_read"])
    assert "write_then_read[redis_down]" in matrix.stdout


def test_list_selecting_nothing_is_a_usage_error_like_run(cli, tmp_path) -> None:
    result = cli(["list", "scenarios/faults.yaml", "-k", "no-such-test"])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no tests selected" in result.stderr
    assert cli(["list", "scenarios/faults.yaml", "--tag", "no-such-tag"]).returncode == 2
    (tmp_path / "lib.yaml").write_text("version: 1\n")  # a library alone: nothing to run either
    assert cli(["list", str(tmp_path)]).returncode == 2


def test_init_writes_a_suite_that_runs(cli, tmp_path) -> None:
    target = tmp_path / "suite"
    result = cli(["init", str(target)])
    assert result.returncode == 0, result.stderr
    example = target / "example.yaml"
    assert example.read_text().startswith("# yaml-language-server: $schema=redtest.schema.json")
    assert (target / "redtest.schema.json").read_text() == (ROOT / "schemas" / "redtest.schema.json").read_text()
    again = cli(["init", str(target)])
    assert again.returncode == 2 and "already exists" in again.stderr
    run = cli(["run", str(target), "--runtime", "embedded"])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


def test_init_then_run_with_no_arguments_works(cli, tmp_path) -> None:
    """`init` writes where `run` reads by default (scenarios/), so the two commands as a new
    user types them work together."""
    result = cli(["init"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scenarios" / "example.yaml").is_file()
    assert result.stdout.rstrip().endswith("run it with: redtest run")
    run = cli(["run", "--runtime", "embedded"], cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


def test_unknown_path_is_an_error(cli, tmp_path) -> None:
    result = cli(["validate", str(tmp_path / "missing.yaml")])
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr and "Traceback" not in result.stderr


def test_validate_a_folder_without_files_is_an_error(cli, tmp_path) -> None:
    result = cli(["validate", str(tmp_path)])
    assert result.returncode == 2
    assert f"no redtest files (*.yaml, *.yml) found in {tmp_path}" in result.stderr
    (tmp_path / "lib.yaml").write_text("version: 1\n")  # a library alone is fine
    assert cli(["validate", str(tmp_path)]).returncode == 0


@pytest.fixture
def stop_kept_seed_reset_server():
    """scenarios/seed_reset.yaml keeps its server (reuse: true); tests leave nothing behind."""
    yield
    from redtest.services.runtime import stop_all_reusable

    stop_all_reusable(str((ROOT / "scenarios" / "seed_reset.yaml").resolve()))


def test_the_example_scenarios_pass(cli, tmp_path, stop_kept_seed_reset_server) -> None:
    report = tmp_path / "report.json"
    result = cli(["run", "scenarios/", "--json", str(report)], timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    names = {t["name"] for t in data["tests"]}
    # every fault of the protocol reference ran against a scenario
    assert {"write_when_readonly", "order_keys_fail", "reads_are_slow", "writes_dropped", "redis_is_down"} <= names
    # and both data-integrity patterns ran against the example application
    assert {"no_stale_cache", "cache_consistent"} <= names
    assert data["counts"]["failed"] == 0 and data["counts"]["error"] == 0


def test_the_fault_scenarios_pass_with_the_pure_python_proxy(cli) -> None:
    """REDTEST_PROXY_PURE_PYTHON=1 (or an install without a C compiler): same results."""
    result = cli(
        ["run", "scenarios/faults.yaml", "scenarios/methods.yaml"],
        env={"REDTEST_PROXY_PURE_PYTHON": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 passed" in result.stdout


def test_the_readme_example_runs(cli, tmp_path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    suite = tmp_path / "readme.yaml"
    suite.write_text(block)
    result = cli(["run", str(suite), "--runtime", "embedded"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def _handles_sigterm(pid: int) -> bool:
    """redtest._entry has run: it catches SIGTERM, which a starting Python does not."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone already
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt")), 16)
    return bool(caught & (1 << (15 - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_ctrl_c_while_starting_up_prints_no_traceback(tmp_path) -> None:
    # Importing click, rich and the rest, then parsing the command line, takes a while
    # before a command's handlers exist; an interrupt then must still end quietly. (Before
    # redtest's first line runs, the interpreter's own start-up is Python's business.)
    import signal
    import subprocess
    import sys
    import time

    outcomes = set()
    for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "redtest", "validate", "scenarios/"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _handles_sigterm(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err and "Aborted" not in err, (delay, err)
        # 130, or killed by SIGINT itself (python -m re-raises an interrupt at exit)
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, proc.returncode, err)
        outcomes.add(proc.returncode)
    assert outcomes - {0}  # at least one interrupt landed while starting


def test_a_matrix_cell_id_as_printed_selects_that_cell(cli) -> None:
    """`[` makes -k a glob, where `[redis_down]` is a character class; the id as printed
    is matched as text first."""
    cell = "scenarios/faults.yaml::write_then_read[redis_down]"
    result = cli(["list", "scenarios/faults.yaml", "--matrix", "-k", cell])
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines() if "::" in line] == [cell]


def _many_tests_suite(folder: Path, n: int) -> Path:
    """A suite of `n` ping scenarios: enough output to fill a pipe."""
    lines = ["version: 1", "services:", "  cache:", "    interfaces:",
             "      main: {protocol: redis, port: 6379}", "scenarios:"]
    for i in range(n):
        lines += [f"  ping_{i}:", "    steps:", "      - cache.main.ping: {}"]
    suite = folder / "many.yaml"
    suite.write_text("\n".join(lines) + "\n")
    return suite


def _popen_redtest(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    return subprocess.Popen([sys.executable, "-m", "redtest", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_list_into_a_pipe_closed_early_ends_quietly(tmp_path) -> None:
    """`redtest list | head -1` is not a bug in redtest: no "internal error", exit 141 like git."""
    suite = _many_tests_suite(tmp_path, 3000)
    proc = _popen_redtest(["list", str(suite)])
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as `head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "ping_0" in first
    assert "internal error" not in err and "Traceback" not in err


def test_run_into_a_pipe_closed_early_still_runs_and_writes_reports(tmp_path) -> None:
    """`redtest run ... | head -1`: rich would exit 1 at the first line it cannot print,
    leaving no report; every test still runs and the reports and exit status are the run's."""
    suite = _many_tests_suite(tmp_path, 40)
    report = tmp_path / "report.json"
    proc = _popen_redtest(["run", str(suite), "--runtime", "embedded", "--json", str(report)])
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # closed before redtest prints its first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err
    data = json.loads(report.read_text())
    assert data["counts"] == {"total": 40, "passed": 40, "failed": 0, "error": 0, "skipped": 0}


def test_debug_is_accepted_after_the_command(cli, tmp_path) -> None:
    """Errors say "run again with --debug": appended to the command, it must work there too."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli(["init", str(blocker / "suite"), "--debug"])
    assert "No such option" not in result.stderr
    assert "Traceback" in result.stderr and "NotADirectoryError" in result.stderr
    ran = cli(["validate", "scenarios/faults.yaml", "--debug"])
    assert ran.returncode == 0, ran.stderr


def test_init_where_it_cannot_write_is_one_clear_error(cli, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli(["init", str(blocker / "suite")])
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr
    assert f"cannot write the example suite: {blocker / 'suite'}: Not a directory" in result.stderr


def test_two_reports_at_one_path_are_refused(cli, tmp_path) -> None:
    """The JSON report would silently replace the JUnit XML one a CI job then fails to read."""
    target = tmp_path / "report.out"
    result = cli(["run", "scenarios/faults.yaml", "--junit-xml", str(target), "--json",
                  str(tmp_path / "." / "report.out")])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the JUnit XML and JSON reports would both be written to" in result.stderr
    assert not target.exists() and "passed" not in result.stdout

