"""Which files a folder on the command line brings (real CLI)."""

from __future__ import annotations

from pathlib import Path

SUITE = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis}
scenarios:
  ping:
    steps:
      - cache.main.ping: {}
"""


def test_a_folder_skips_hidden_files_and_folders(cli, tmp_path: Path) -> None:
    """Run from a project's root, `.github/workflows/*.yml` is not a redtest suite."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "a.yaml").write_text(SUITE)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (tmp_path / "suites" / ".draft.yaml").write_text("not: redtest\n")
    result = cli(["validate", str(tmp_path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 file(s) valid" in result.stdout
    named = cli(["validate", str(tmp_path / "suites" / ".draft.yaml")])
    assert named.returncode == 2, named.stdout + named.stderr
