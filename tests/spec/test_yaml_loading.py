"""The YAML layer: YAML 1.2 scalars, merge keys, surrogates, nesting, odd files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from redtest.errors import SpecError
from redtest.spec.load import parse_document


def load(text: str) -> dict:
    return parse_document(text, Path("t.yaml")).data


def error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_document(text, Path("t.yaml"))
    return info.value


def test_numbers_are_read_as_yaml_1_2_and_leading_zeros_stay_text() -> None:
    data = load(
        "zip: 01234\ntime: 12:30\nunder: 1_000\nhex: 0x1F\noct: 0o17\nport: 6379\n"
        "neg: -3\nratio: 0.5\nexp: 1e3\nzero: 0\nbin: 0b101\nfloat0: 0.25\n"
    )
    assert data == {
        "zip": "01234", "time": "12:30", "under": "1_000", "hex": 31, "oct": 15, "port": 6379,
        "neg": -3, "ratio": 0.5, "exp": 1000.0, "zero": 0, "bin": "0b101", "float0": 0.25,
    }


def test_keys_written_next_to_a_merge_override_the_merged_ones() -> None:
    data = load(
        "x-a: &a {runtime: local, port: 1}\n"
        "x-b: &b {runtime: docker, image: redis}\n"
        "after: {<<: *a, runtime: embedded}\n"
        "before: {runtime: embedded, <<: *a}\n"
        "list: {<<: [*a, *b]}\n"
    )
    assert data["after"] == {"runtime": "embedded", "port": 1}
    assert data["before"] == {"runtime": "embedded", "port": 1}
    assert data["list"] == {"runtime": "local", "port": 1, "image": "redis"}  # the first wins


def test_a_key_written_twice_is_still_an_error_next_to_a_merge() -> None:
    e = error("x-a: &a {p: 1}\ny:\n  <<: *a\n  r: 1\n  r: 2\n")
    assert "duplicate key 'r'" in e.message and (e.location.line, e.location.col) == (5, 3)


def test_an_escaped_surrogate_pair_is_one_character_and_a_lone_half_is_refused() -> None:
    assert load('v: "\\ud83c\\udf89"\n') == {"v": "\U0001F389"}
    e = error('a: 1\nv: "x\\ud83c"\n')
    assert "surrogate" in e.message and (e.location.line, e.location.col) == (2, 4)


def test_deep_nesting_is_refused_with_a_location() -> None:
    e = error("a: 1\nx-d: " + "[" * 500 + "]" * 500 + "\n")
    assert "nested more than" in e.message and e.location.line == 2


def test_a_control_character_is_located_where_it_is() -> None:
    e = error('version: 1\ndescription: "a\x01b"\n')
    assert (e.location.line, e.location.col) == (2, 16), e
    assert "\n" not in e.message and "U+0001" in e.message


def test_an_unterminated_string_is_located_at_its_opening_quote() -> None:
    e = error('version: 1\nfoo: "never closed\nbar: 1\n')
    assert (e.location.line, e.location.col) == (2, 6) and "never closed" in e.message


def test_an_expect_item_split_at_a_colon_points_at_the_item_and_shows_it_quoted() -> None:
    text = (
        "version: 1\nscenarios:\n  s:\n    steps:\n      - cache.main.ping: {}\n    expect:\n"
        '      - assert_true(r.data["value"].startswith("PONG: "))\n'
        "      - assert_true(r.ok)\n      - assert_true(r.ok)\n"
    )
    e = error(text)
    assert e.location.line == 7, e
    assert """- 'assert_true(r.data["value"].startswith("PONG: "))'""" in e.message


def test_a_fifo_or_a_device_is_not_called_a_missing_include(cli, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "named pipe"), (Path("/dev/null"), "device")):
        result = cli(["validate", str(path)])
        assert result.returncode == 2, result.stderr
        assert kind in result.stderr and "not found" not in result.stderr, result.stderr


def test_a_bare_comparison_in_expect_split_at_a_colon_gets_the_quoted_form() -> None:
    text = (
        "version: 1\nscenarios:\n  s:\n    steps:\n      - cache.main.get: {key: k}\n"
        "        expect:\n          - r.ok\n    expect:\n"
        '      - r.data == {"value": "PONG"}\n      - r.ok\n'
    )
    e = error(text)
    assert (e.location.line, e.location.col) == (9, 9), e
    assert """- 'r.data == {"value": "PONG"}'""" in e.message
