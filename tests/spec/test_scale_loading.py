"""Loading at scale: big files, shared includes, long scenarios (the real CLI where it counts).

Costs are checked by counting operations, or by the ratio of two sizes with a wide
margin (a cost that grows with the square of the size gives 16 for 4 times the size,
a linear one about 4), so these tests cannot be flaky on a busy machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from redtest.errors import SpecError
from redtest.spec import build, schema

SERVICE = "services:\n  cache:\n    interfaces: {main: {protocol: redis}}\n"


def test_a_seed_of_a_hundred_thousand_keys_written_out_is_valid(cli, tmp_path) -> None:
    """The node limit guards against alias bombs; it refused plain big files too: a seed
    MSET of 100,000 keys was 'more than 200000 nodes (too many YAML aliases?)'."""
    args = ", ".join(f"k{i}, v" for i in range(100_001))
    (tmp_path / "big.yaml").write_text(
        f"version: 1\n{SERVICE}    seed:\n      - cache.main.command: {{cmd: MSET, args: [{args}]}}\n"
        "scenarios:\n  a:\n    steps:\n      - cache.main.get: {key: k100000}\n"
    )
    result = cli(["validate", "big.yaml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 file(s) valid" in result.stdout


def test_an_alias_bomb_is_still_refused_at_its_place(cli, tmp_path) -> None:
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("version: 1\n" + "\n".join(rows) + "\n")
    started = time.monotonic()
    result = cli(["validate", "bomb.yaml"], cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    assert "bomb.yaml:2:" in result.stderr
    assert "aliases expand to more than 200000 nodes" in result.stderr
    assert "Traceback" not in result.stderr


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[str]:
    """Record each call of module.name (the real function still runs)."""
    calls: list[str] = []
    real = getattr(module, name)

    def counting(doc_or_path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(getattr(doc_or_path, "path", doc_or_path)))
        return real(doc_or_path, *args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def _shared_include_project(root: Path, suites: int) -> None:
    (root / "common").mkdir(parents=True)
    seed = "".join(f'    - cache.main.set: {{key: "s:{i}", value: "{i}"}}\n' for i in range(200))
    (root / "common" / "base.yaml").write_text(
        f"version: 1\n{SERVICE}    seed: base\nseeds:\n  base:\n{seed}"
    )
    for n in range(suites):
        (root / f"suite{n:03d}.yaml").write_text(
            f"version: 1\ninclude: [common/base.yaml]\nscenarios:\n  t{n}:\n"
            f"    steps:\n      - cache.main.get: {{key: \"s:{n}\"}}\n"
        )


def test_a_file_that_many_suites_include_is_loaded_and_checked_once(monkeypatch, tmp_path) -> None:
    """300 suites that include one common file (with a big seed) parsed and schema-checked
    it 300 times: validating a project cost suites x size of the shared file."""
    _shared_include_project(tmp_path, 30)
    loaded = _count_calls(monkeypatch, build, "load_document")
    checked = _count_calls(monkeypatch, schema, "validate_document")
    suites = build.load_suites([tmp_path])
    assert len(suites) == 31  # 30 suites and the library itself
    assert len(loaded) == 31, loaded  # each file once
    assert len(checked) == 31, checked
    assert all(len(s.services["cache"].seed) == 200 for s in suites)


def test_an_include_chain_loads_each_file_once(monkeypatch, tmp_path) -> None:
    depth = 60
    for k in range(depth):
        include = f"include: [lib{k + 1:03d}.yaml]\n" if k + 1 < depth else SERVICE
        (tmp_path / f"lib{k:03d}.yaml").write_text(
            f"version: 1\n{include}faults:\n  f{k}:\n    target: cache.main\n"
            f"    rules:\n      - error: {{command: X{k}}}\n"
        )
    loaded = _count_calls(monkeypatch, build, "load_document")
    suites = build.load_suites([tmp_path])
    assert len(loaded) == depth  # was depth * (depth + 1) / 2
    assert len(suites[0].faults) == depth


def test_an_error_in_a_shared_include_is_reported_once_per_place(cli, tmp_path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "base.yaml").write_text(f"version: 1\n{SERVICE}    bogus: 1\n")
    (tmp_path / "common" / "broken.yaml").write_text("version: 1\nfaults: [\n")
    for n in range(3):
        (tmp_path / f"s{n}.yaml").write_text(
            "version: 1\ninclude: [common/base.yaml, common/broken.yaml]\n"
            "scenarios:\n  t:\n    steps:\n      - cache.main.ping: {}\n"
        )
    result = cli(["validate", "."], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("common/base.yaml:5:5") == 1, result.stderr
    assert result.stderr.count("common/broken.yaml:") == 1, result.stderr
    assert "Traceback" not in result.stderr


def _long_scenario(n: int) -> str:
    steps = "".join(
        f"      - cache.main.set: {{key: k{i}, value: v}}\n        as: s{i}\n        expect: ['r.ok']\n"
        for i in range(n)
    )
    return f"version: 1\n{SERVICE}scenarios:\n  long:\n    steps:\n{steps}"


def _build_seconds(path: Path) -> float:
    """The fastest of three builds of the already parsed file (parsing is linear anyway)."""
    docs = build.collect_documents(path)
    best = float("inf")
    for _ in range(3):
        ctx = build._Context(docs[0], docs)
        build._merge_definitions(ctx)
        started = time.perf_counter()
        build._Builder(ctx).build()
        assert not ctx.errors
        best = min(best, time.perf_counter() - started)
    return best


def test_building_a_long_scenario_grows_linearly(tmp_path) -> None:
    """Each step copied the names of all the others: 10,000 named steps with an expect
    took 20 s to validate. Four times the steps: about 4 times the time (it was 16)."""
    small, large = tmp_path / "small.yaml", tmp_path / "large.yaml"
    small.write_text(_long_scenario(1000))
    large.write_text(_long_scenario(4000))
    ratio = _build_seconds(large) / _build_seconds(small)
    assert ratio < 10, ratio


def test_a_step_expect_still_sees_exactly_the_names_before_it(tmp_path) -> None:
    text = (
        f"version: 1\n{SERVICE}scenarios:\n  t:\n    steps:\n"
        "      - cache.main.ping: {}\n        as: first\n        expect: ['assert_eq(first.ok, True)']\n"
        "      - cache.main.ping: {}\n        expect: ['assert_true(third.ok)']\n"
        "      - cache.main.ping: {}\n        as: third\n"
    )
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        build.load_suite(path)
    assert "'third' is the name of a later step (steps[2])" in str(info.value)
    assert "t.yaml:12:19:" in str(info.value)
    path.write_text(text.replace("third.ok", "thrid.ok"))
    with pytest.raises(SpecError) as info:
        build.load_suite(path)
    assert "unknown name 'thrid' (did you mean 'third'?)" not in str(info.value)  # not visible yet
    assert "unknown name 'thrid'" in str(info.value)



def test_a_thousand_deep_include_chain_is_valid_not_an_internal_error(cli, tmp_path) -> None:
    depth = 1100  # deeper than Python's recursion limit
    for k in range(depth):
        include = f"include: [lib{k + 1:04d}.yaml]\n" if k + 1 < depth else SERVICE
        (tmp_path / f"lib{k:04d}.yaml").write_text(f"version: 1\n{include}")
    (tmp_path / "main.yaml").write_text(
        "version: 1\ninclude: [lib0000.yaml]\nscenarios:\n  a:\n    steps:\n      - cache.main.ping: {}\n"
    )
    result = cli(["validate", "main.yaml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / f"lib{depth - 1:04d}.yaml").write_text("version: 1\ninclude: [lib0500.yaml]\n")
    result = cli(["validate", "main.yaml"], cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"lib{depth - 1:04d}.yaml:2:11: include cycle: lib0500.yaml includes itself" in result.stderr


def _sqlite_chain(n: int, *, cycle: bool = False) -> str:
    """n sqlite services, each depending on the next (so the first is visited deepest)."""
    parts = ["version: 1\nservices:\n"]
    for i in range(n):
        nxt = i + 1 if i + 1 < n else (0 if cycle else None)
        dep = f"\n    depends_on: [d{nxt}]" if nxt is not None else ""
        parts.append(f"  d{i}:\n    interfaces: {{main: {{protocol: sqlite, path: db{i}.sqlite}}}}{dep}\n")
    parts.append("scenarios:\n  a:\n    steps:\n      - d0.main.query: {sql: 'SELECT 1 AS x'}\n")
    return "".join(parts)


def test_a_thousand_long_depends_on_chain_runs_not_an_internal_error(cli, tmp_path) -> None:
    (tmp_path / "deps.yaml").write_text(_sqlite_chain(1100))
    (tmp_path / "db0.sqlite").write_bytes(b"")  # an empty file is an empty database
    result = cli(["run", "deps.yaml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "deps.yaml").write_text(_sqlite_chain(1100, cycle=True))
    result = cli(["validate", "deps.yaml"], cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "depends_on cycle: d0 → d1 → d2 → " in result.stderr
    assert result.stderr.count("depends_on cycle") == 1
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
