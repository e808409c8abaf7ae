"""`redtest init`: a small working example suite with the editor schema modeline."""

from __future__ import annotations

from pathlib import Path

from redtest.errors import UsageError
from redtest.spec.schema import schema_text

EXAMPLE = """\
# yaml-language-server: $schema=redtest.schema.json
version: 1

services:
  cache:
    interfaces:
      main: {protocol: redis, port: 6379}
    seed: seed_cache

seeds:
  seed_cache:
    - cache.main.command: {cmd: FLUSHALL}
    - cache.main.set: {key: "config:max_retries", value: "3"}

faults:
  set_fails:
    target: cache.main
    rules:
      - error: {command: SET, message: READONLY You can't write against a read only replica.}
  slow_reads:
    target: cache.main
    rules:
      - delay: {command: GET, delay: 200ms}

scenarios:
  counter_increments:
    description: INCR turns "0" into "1"
    tags: [smoke]
    steps:
      - cache.main.set: {key: counter, value: "0"}
      - cache.main.incr: {key: counter}
      - cache.main.get: {key: counter}
        as: counter
    expect:
      - assert_eq(counter.data["value"], "1")
      - assert_eq(cache.main.get(key="config:max_retries").data["value"], "3")

fault_scenarios:
  counter_when_writes_fail:
    description: a READONLY replica refuses the SET; nothing is written
    scenario: counter_increments
    faults: set_fails
    expect:
      - assert_false(steps[0].ok)
      - assert_match("READONLY", steps[0].error)
      # INCR still ran: it creates the missing key, so the counter is 1, not 0.
      - assert_eq(cache.main.get(key="counter").data["value"], "1")
  counter_with_slow_reads:
    description: a slow GET still returns the right value
    scenario: counter_increments
    faults: [slow_reads]
    expect:
      - assert_eq(r.data["value"], "1")
      - assert_ge(r.duration_ms, 200)
"""


def write_example(directory: Path, *, force: bool = False) -> list[Path]:
    """Write example.yaml and the schema it names; returns the paths written."""
    files = {directory / "example.yaml": EXAMPLE, directory / "redtest.schema.json": schema_text()}
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise UsageError(f"{existing[0]} already exists; use --force to overwrite")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
    except OSError as exc:  # a file in the way, a read-only disk, no permission
        where = exc.filename or directory
        raise UsageError(f"cannot write the example suite: {where}: {exc.strerror or exc}") from exc
    return list(files)
