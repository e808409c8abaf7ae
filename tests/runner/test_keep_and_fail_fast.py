"""--keep-services reports what it keeps on every exit path; -x stops at a failed start.

Real CLI, real redis-server processes. Whatever a test keeps it stops itself, through
the command redtest printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from process_support import processes_under

ROOT = Path(__file__).resolve().parents[2]
KEPT = re.compile(
    r"kept (\w+) \((\w+)\): .*; pid (\d+); stop it with: kill -TERM -- -(\d+)(?: && rm -rf (\S+))?\n"
)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_kept(text: str) -> list[int]:
    """Stop every kept service as the printed hint says; returns their pids."""
    pids = []
    for _name, _runtime, pid, group, _folder in KEPT.findall(text):
        assert int(group) > 1  # never signal group 0 or 1
        pids.append(int(pid))
        try:
            os.killpg(int(group), signal.SIGTERM)
        except ProcessLookupError:
            pass

    return pids


def _remove_kept_folders(text: str, tmp: Path) -> None:
    """The second half of each printed hint (`&& rm -rf FOLDER`), once the servers are
    gone; then nothing of theirs is left under `tmp` (a failed app's log stays: its error
    names it)."""
    for *_, folder in KEPT.findall(text):
        if folder:
            shutil.rmtree(folder)
    assert not list(tmp.glob("redtest-cache-*")), list(tmp.iterdir())


def _wait_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_fail_fast_stops_after_a_service_that_cannot_start(cli, tmp_path: Path) -> None:
    (tmp_path / "a_bad.yaml").write_text(
        "version: 1\nservices:\n  app:\n    command: [python3, -c, 'import sys; sys.exit(3)']\n"
        "scenarios:\n  t1:\n    steps:\n      - sleep: 1ms\n"
    )
    (tmp_path / "b_good.yaml").write_text(
        "version: 1\nservices:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"
        "scenarios:\n  t2:\n    steps:\n      - cache.main.ping: {}\n"
    )
    result = cli(["run", ".", "-x", "--runtime", "local"], cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert re.search(r"ERROR +a_bad\.yaml::t1", result.stdout), result.stdout
    assert re.search(r"SKIP +b_good\.yaml::t2 .*--fail-fast", result.stdout), result.stdout


def test_reports_list_the_services_that_started_before_one_failed(cli, tmp_path: Path) -> None:
    """The JSON report promises every service of the run: a file whose app cannot start
    still ran its Redis server, which the report must show."""
    suite = tmp_path / "mixed.yaml"
    suite.write_text(
        "version: 1\nservices:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"
        "  app:\n    command: [python3, -c, 'import sys; sys.exit(3)']\n    depends_on: [cache]\n"
        "scenarios:\n  t1:\n    steps:\n      - sleep: 1ms\n"
    )
    report = tmp_path / "r.json"
    result = cli(["run", str(suite), "--runtime", "local", "--json", str(report)])
    assert result.returncode == 3, result.stdout + result.stderr
    services = json.loads(report.read_text())["services"]
    assert [(s["name"], s["runtime"]) for s in services] == [("cache", "local")], services


def test_keep_services_reports_what_it_kept_when_a_later_service_fails(cli, tmp_path: Path) -> None:
    suite = tmp_path / "mixed.yaml"
    suite.write_text(
        "version: 1\nservices:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"
        "  app:\n    command: [python3, -c, 'import sys; sys.exit(3)']\n    depends_on: [cache]\n"
        "scenarios:\n  t1:\n    steps:\n      - sleep: 1ms\n"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = cli(["run", str(suite), "--runtime", "local", "--keep-services"], env={"TMPDIR": str(tmp)})
    left = processes_under(tmp)  # before the hint stops them: a quick exit hides one
    pids = _stop_kept(result.stderr)
    for pid in left:
        if pid not in pids:  # not reported, so stop it here
            os.killpg(pid, signal.SIGKILL)
    assert result.returncode == 3, result.stdout + result.stderr
    assert [m[0] for m in KEPT.findall(result.stderr)] == ["cache"], result.stderr
    assert left == pids, "every server left running is reported"
    assert _wait_gone(pids) == []
    _remove_kept_folders(result.stderr, tmp)


def test_keep_services_reports_what_it_kept_when_interrupted(tmp_path: Path) -> None:
    suite = tmp_path / "slow.yaml"
    suite.write_text(
        "version: 1\nservices:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"
        "scenarios:\n  t1:\n    steps:\n      - cache.main.set: {key: started, value: '1'}\n"
        "      - sleep: 60s\n"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "NO_COLOR": "1", "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "redtest", "run", str(suite), "--runtime", "local", "--keep-services"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not processes_under(tmp):
        time.sleep(0.05)
    time.sleep(1.0)  # in the 60 s sleep
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    left = processes_under(tmp)  # before the hint stops them: a quick exit hides one
    pids = _stop_kept(err)
    for pid in left:
        if pid not in pids:
            os.killpg(pid, signal.SIGKILL)
    assert proc.returncode == 130, out + err
    assert len(pids) == 1 and left == pids, err
    assert "interrupted: everything redtest started has been stopped, except the services kept" in err
    assert _wait_gone(pids) == []
    _remove_kept_folders(err, tmp)
