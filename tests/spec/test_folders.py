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


def test_a_name_defined_twice_through_nested_includes_is_reported_once_at_the_outer_file(
    cli, tmp_path: Path
) -> None:
    """main includes lib/b.yaml, which includes a.yaml; both define seed `s`: the
    definition read second is b's (includes are read before the file that includes them)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.yaml").write_text(
        "version: 1\nservices:\n  cache:\n    interfaces:\n      main: {protocol: redis}\n"
        "seeds:\n  s: [{cache.main.ping: {}}]\n"
    )
    (lib / "b.yaml").write_text("version: 1\ninclude: [a.yaml]\nseeds:\n  s: [{cache.main.ping: {}}]\n")
    (tmp_path / "main.yaml").write_text(
        "version: 1\ninclude: [lib/b.yaml]\nscenarios:\n  t: {steps: [{cache.main.ping: {}}]}\n"
    )
    for args in (["main.yaml"], ["main.yaml", "lib/b.yaml"]):
        result = cli(["validate", *args], cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.count("defined twice") == 1, result.stderr
        assert "lib/b.yaml:4:3: seed 's' is defined twice: here and at lib/a.yaml:7:3" in result.stderr
