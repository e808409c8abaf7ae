"""Branches of the YAML layer no other test reached (round 6, coverage-guided): expect items
that start with a quote or a bracket, merge-key errors, escapes in double-quoted expressions,
and the loader's refusals — each with its exact message and file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from redtest.errors import SpecError
from redtest.spec.load import parse_document

HEAD = """\
version: 1
services:
  cache:
    interfaces:
      main: {protocol: redis}
scenarios:
  t:
    steps:
      - cache.main.get: {key: a}
    expect:
"""


def _suite(tmp_path: Path, expect: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(HEAD + expect)
    return path


def _validate(cli, path: Path):  # type: ignore[no-untyped-def]
    return cli(["validate", path.name], cwd=path.parent)


# -- an expect item that starts with a quote or a bracket --------------------------------


@pytest.mark.parametrize(
    ("item", "opener", "what", "fails_at", "quoted"),
    [
        ('"a" in r.data', '"', "string", "11:13", """'"a" in r.data'"""),
        ("'a' in r.data", "'", "string", "11:13", '''"'a' in r.data"'''),
        ('{"value": "1"} == r.data', "{", "mapping", "11:24", """'{"value": "1"} == r.data'"""),
        ("[1, 2] == steps", "[", "list", "11:16", "'[1, 2] == steps'"),
    ],
)
def test_an_item_starting_with_a_quote_or_bracket_gets_its_quoted_form(
    cli, tmp_path: Path, item: str, opener: str, what: str, fails_at: str, quoted: str
) -> None:
    path = _suite(tmp_path, f"      - {item}\n      - r.ok\n")
    proc = _validate(cli, path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: suite.yaml:11:9: invalid YAML: this item starts with {opener}, so YAML reads "
        f"the {what} it opens as the whole item, and then fails at {fails_at}: expected "
        f"<block end>, but found '<scalar>'; an expression that starts with a {what} must be "
        f"quoted as a whole: - {quoted}"
    )
    # the form the message shows is valid as it stands
    path.write_text(HEAD + f"      - {quoted}\n      - r.ok\n")
    fixed = _validate(cli, path)
    assert fixed.returncode == 0, fixed.stderr


def test_an_unclosed_quote_in_an_item_is_still_reported_as_never_closed(cli, tmp_path: Path) -> None:
    path = _suite(tmp_path, '      - "a in r.data\n      - r.ok\n')
    proc = _validate(cli, path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: suite.yaml:11:9: invalid YAML: this quoted string is never closed "
        "(YAML reached the end of the file at 13:1 looking for its closing quote)"
    )


def test_a_quoted_step_outside_expect_gets_no_expression_hint(cli, tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(HEAD.replace("      - cache.main.get: {key: a}\n", '      - "x" y\n') + "      - r.ok\n")
    proc = _validate(cli, path)
    assert proc.returncode == 2
    assert "suite.yaml:9:13: invalid YAML: expected <block end>, but found '<scalar>'" in proc.stderr
    assert "quoted as a whole" not in proc.stderr


# -- escapes in a double-quoted expression: errors point at the written column -------------


@pytest.mark.parametrize(
    "item",
    [
        r'"\t r.ok and r.data.pop()"',
        r'"r.data[\"v\"] == \"\x41\u00e9\\\"\" and r.data.pop()"',
        r'"r.data[\"v\"] == \"\U0001F389\" and r.data.pop()"',
    ],
)
def test_an_error_after_an_escape_points_at_the_column_written(cli, tmp_path: Path, item: str) -> None:
    path = _suite(tmp_path, f"      - {item}\n")
    proc = _validate(cli, path)
    column = len("      - ") + item.index("pop") + 1
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: suite.yaml:11:{column}: method .pop() is not allowed in assertions"


def test_an_escape_on_the_second_line_of_a_quoted_expression_is_located(cli, tmp_path: Path) -> None:
    path = _suite(tmp_path, '      - "r.ok and\n         \\t r.data.pop()"\n')
    proc = _validate(cli, path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: suite.yaml:12:20: method .pop() is not allowed in assertions"


# -- merge keys: errors at the `<<` that is wrong, not at the anchor it names --------------


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_document(text, Path("t.yaml"))
    return info.value


def test_merging_a_single_value_is_reported_at_the_merge_key() -> None:
    e = _error("version: 1\nx-a: &a hello\nx:\n  <<: *a\n")
    assert str(e) == (
        "t.yaml:4:3: a merge key '<<' takes a mapping or a list of mappings, e.g. <<: *base or "
        "<<: [*a, *b]; here it is given a single value"
    )


def test_merging_a_list_inside_the_merge_list_is_reported_at_the_merge_key() -> None:
    e = _error("version: 1\nx-a: &a {k: 1}\nx:\n  <<: [*a, [1]]\n")
    assert str(e).startswith("t.yaml:4:3: a merge key '<<' takes a mapping or a list of mappings")
    assert str(e).endswith("here it is given a list")


def test_a_mapping_merging_itself_is_reported_at_its_merge_key() -> None:
    e = _error("version: 1\nx: &x\n  a: 1\n  <<: *x\n")
    assert str(e) == "t.yaml:4:3: this merge key '<<' merges a mapping that contains it"


def test_two_merge_keys_in_one_mapping_name_both() -> None:
    e = _error("version: 1\nx-b: &b {x: 1}\ny:\n  <<: *b\n  <<: *b\n")
    assert str(e) == (
        "t.yaml:5:3: duplicate merge key '<<' (first written at 4:3); merge several mappings "
        "with <<: [*a, *b]"
    )


def test_a_merged_mapping_reused_through_aliases_loads() -> None:
    doc = parse_document(
        "x-a: &a {k: 1}\nx-c: &c\n  <<: *a\n  j: 2\nx-d:\n  <<: [*c, *a]\n", Path("t.yaml")
    )
    assert doc.data["x-d"] == {"k": 1, "j": 2}


# -- the loader's other refusals ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: &x [1, *x]\n", "t.yaml:1:4: an alias here refers to a list or mapping that contains it"),
        ("x: &x {a: {<<: *x}}\n", "t.yaml:1:11: an alias here refers to a list or mapping that contains it"),
        ("? [a, b]\n: 1\n", "t.yaml:1:3: mapping keys must be plain strings"),
        ("!!binary aGk=: 1\n", "t.yaml:1:1: YAML tag '!!binary' is not allowed"),
        ('x: !!int "12a"\n', "t.yaml:1:4: '12a' is not an integer (tagged !!int)"),
        ('x: !!float "abc"\n', "t.yaml:1:4: 'abc' is not a number (tagged !!float)"),
        ('x: !!bool "yes"\n', "t.yaml:1:4: 'yes' is not true or false (tagged !!bool)"),
        ("x: !!int \"" + "9" * 5000 + "\"\n", "t.yaml:1:4: the number is too long (5000 digits)"),
        ("version: 1\n---\nversion: 1\n", "t.yaml:3:1: a redtest file holds one YAML document"),
    ],
)
def test_the_loader_refuses_with_a_position(text: str, expected: str) -> None:
    assert str(_error(text)).startswith(expected)


def test_explicit_float_tags_read_the_yaml_1_2_forms() -> None:
    data = parse_document(
        'x: [!!float ".inf", !!float "-.Inf", !!float "1e3", !!int "0x1F", !!int "0o17"]\n',
        Path("t.yaml"),
    ).data
    assert data["x"][:3] == [float("inf"), float("-inf"), 1000.0]
    assert data["x"][3:] == [31, 15]
    nan = parse_document('x: !!float ".nan"\n', Path("t.yaml")).data["x"]
    assert nan != nan


def test_a_file_of_only_a_document_marker_is_null_at_its_content(cli, tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text("---\n")
    proc = _validate(cli, path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: suite.yaml:2:1: the file must be a mapping, not null")
