"""A corpus of invalid files, one mistake each: `redtest validate` must exit 2 and
point at the exact line and column with a readable message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "invalid"
ROOT = Path(__file__).resolve().parents[2]


def _cases() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*.yaml") if p.read_text().startswith("# expect:"))


def _expectation(path: Path) -> tuple[str, list[str]]:
    header = path.read_text().splitlines()[0].removeprefix("# expect:")
    position, *words = [part.strip() for part in header.split("|")]
    return position, words


def test_corpus_is_large_enough() -> None:
    assert len(_cases()) >= 30


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.stem)
def test_invalid_file_is_reported_at_its_position(path: Path, cli) -> None:
    position, words = _expectation(path)
    relative = path.relative_to(ROOT)
    result = cli(["validate", str(relative)])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"{relative}:{position}" in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} not in: {result.stderr}"


def test_only_true_and_false_are_booleans(tmp_path) -> None:
    from redtest.spec.load import parse_document

    doc = parse_document("a: yes\nb: no\nc: on\nd: true\ne: False\n", tmp_path / "x.yaml")
    assert doc.data == {"a": "yes", "b": "no", "c": "on", "d": True, "e": False}


def test_non_utf8_file_names_the_bad_byte(tmp_path, cli) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1\n\n\n\n# caf\xe9 line 5\n")
    result = cli(["validate", str(bad)])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"{bad}:5:6:" in result.stderr, result.stderr
    assert "not UTF-8 (byte 0xe9" in result.stderr
