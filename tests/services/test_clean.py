"""`redtest clean [PATHS...] [--all]`: stops what `reuse: true` kept for one project, not
everyone's, says what it stopped, and removes lock files nobody uses.

Every run here has its own TMPDIR, so the reuse state (and `--all`) sees only this test's
servers, never those of other tests or people on the machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from pathlib import Path

import pytest

SUITE = (
    "version: 1\nservices:\n  cache:\n    runtime: embedded\n    reuse: true\n"
    "    interfaces: {main: {protocol: redis}}\n"
    "scenarios:\n  s:\n    steps:\n      - cache.main.ping: {}\n"
)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stopped(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    return not _running(pid)


@pytest.fixture
def project(tmp_path: Path, cli):
    """Two projects, each with a suite whose server `reuse: true` kept; yields a runner."""
    env = {"TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    pids: dict[str, int] = {}
    for name in ("alpha", "beta"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "suite.yaml").write_text(SUITE)
        report = tmp_path / f"{name}.json"
        result = cli(["run", str(folder / "suite.yaml"), "--json", str(report)], env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        detail = json.loads(report.read_text())["services"][0]["detail"]
        pids[name] = int(detail.split()[1])
        assert _running(pids[name])

    def clean(*args: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
        return cli(["clean", *args], cwd=cwd or tmp_path, env=env)

    yield clean, pids, tmp_path
    clean("--all")


def test_clean_stops_only_the_current_projects_servers(project) -> None:
    clean, pids, root = project
    result = clean(cwd=root / "alpha")
    assert result.returncode == 0, result.stderr
    assert _stopped(pids["alpha"])
    assert _running(pids["beta"]), "another project's server was stopped"
    assert re.search(rf"stopped cache \(embedded, pid {pids['alpha']}, port \d+\) of .*alpha/suite\.yaml",
                     result.stdout), result.stdout
    assert "stopped 1 kept server(s)" in result.stdout


def test_clean_takes_paths_and_all(project) -> None:
    clean, pids, root = project
    result = clean(str(root / "beta" / "suite.yaml"))
    assert result.returncode == 0 and "stopped 1 kept server(s)" in result.stdout, result.stdout
    assert _stopped(pids["beta"]) and _running(pids["alpha"])
    nothing = clean(str(root / "beta"))
    assert nothing.returncode == 0 and "stopped 0 kept server(s)" in nothing.stdout
    everything = clean("--all")
    assert everything.returncode == 0 and "stopped 1 kept server(s)" in everything.stdout
    assert _stopped(pids["alpha"])
    both = clean("--all", str(root))
    assert both.returncode == 2 and "either PATHS or --all" in both.stderr


def test_a_path_is_a_folder_prefix_not_a_string_prefix(project) -> None:
    clean, pids, root = project
    (root / "alp").mkdir()
    result = clean(str(root / "alp"))  # ".../alp" must not match ".../alpha/suite.yaml"
    assert "stopped 0 kept server(s)" in result.stdout
    assert _running(pids["alpha"])


def test_clean_removes_only_unused_lock_files(project) -> None:
    clean, pids, root = project
    reuse = root / "tmp" / f"redtest-{os.getuid()}" / "reuse"
    kept = sorted(p.name for p in reuse.glob("*.lock"))
    assert len(kept) == 2  # one per kept server
    (reuse / "embedded-stale.lock").write_text("")
    held = reuse / "embedded-held.lock"
    with open(held, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # a run that is starting a server right now
        result = clean(str(root / "nothing-here"))
    assert result.returncode == 0, result.stderr
    assert "note: no such file or folder:" in result.stderr  # a typo does not pass unseen
    assert not (reuse / "embedded-stale.lock").exists()
    assert held.exists()
    assert sorted(p.name for p in reuse.glob("*.lock") if p != held) == kept  # their servers still run
    clean(str(root / "alpha"))  # alpha's lock goes with its server, the released one as unused
    assert len(list(reuse.glob("*.lock"))) == 1 and not held.exists()


def test_a_deleted_lock_file_is_not_held_by_two_runs(tmp_path: Path, monkeypatch) -> None:
    import threading

    from redtest.services import reuse_state

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with reuse_state.locked("k", discard=True):  # no state file: the lock file is deleted
            first_holds.set()
            time.sleep(0.3)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    first_holds.wait(5)
    with reuse_state.locked("k"):  # waits on the old file, then must lock the new one
        order.append("second in")
        assert (reuse_state.state_dir() / "k.lock").exists()
    thread.join()
    assert order == ["first out", "second in"]
