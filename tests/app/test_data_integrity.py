"""scenarios/data_integrity.yaml end to end through the CLI: it passes against the
example app and fails, naming the right tests, against each deliberate bug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_support import EXAMPLE_APP, redis_binary

SUITE = EXAMPLE_APP.parents[1] / "scenarios" / "data_integrity.yaml"
PLAIN = {"create_order", "update_user", "browse"}
FAULTED = {"no_stale_cache", "cache_consistent", "readonly_set", "lose_reply_set", "flaky_get"}


def _run(cli, tmp_path: Path, bug: str) -> tuple[int, dict[str, str], str]:
    binary = redis_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    report = tmp_path / f"report-{bug or 'none'}.json"
    result = cli(
        ["run", "--runtime", "local", "--random-seed", "7", "--json", str(report), str(SUITE)],
        env={"REDTEST_REDIS_SERVER": binary, "ORDERS_APP_BUG": bug},
        timeout=240,
    )
    data = json.loads(report.read_text())
    statuses = {t["name"]: t["status"] for t in data["tests"]}
    return result.returncode, statuses, result.stdout + result.stderr


def test_the_suite_passes_against_the_example_app(cli, tmp_path: Path) -> None:
    code, statuses, output = _run(cli, tmp_path, "")
    assert code == 0, output
    assert statuses == {name: "passed" for name in PLAIN | FAULTED}


@pytest.mark.parametrize(
    ("bug", "caught_by"),
    [
        ("all", FAULTED),
        ("commit_before_cache", {"no_stale_cache", "readonly_set", "lose_reply_set"}),
        ("cache_before_commit", {"lose_reply_set"}),
        ("stale_user", {"cache_consistent"}),
        ("no_read_fallback", {"flaky_get"}),
    ],
)
def test_the_suite_catches_each_bug(cli, tmp_path: Path, bug: str, caught_by: set[str]) -> None:
    code, statuses, output = _run(cli, tmp_path, bug)
    assert code == 1, output
    failed = {name for name, status in statuses.items() if status == "failed"}
    assert failed == caught_by, output
    assert all(statuses[name] == "passed" for name in PLAIN)
