"""`redtest proxy`: the fault proxy alone, with faults taken from a redtest file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redtest.errors import UsageError
from redtest.spec.build import suggest
from redtest.spec.model import Rule


def parse_address(text: str, option: str) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`) → (host, port); raises UsageError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{option} takes HOST:PORT, got {text!r}")
    return (host.strip("[]") or "127.0.0.1", int(port))


def load_rules(faults_file: str | None, names: tuple[str, ...]) -> list[Rule]:
    """The rules of the named faults of a redtest file, in the order named."""
    if names and not faults_file:
        raise UsageError("--fault needs --faults FILE to say where the faults are defined")
    if not faults_file:
        return []
    from redtest.spec.build import load_suite

    suite = load_suite(Path(faults_file))
    chosen = names or tuple(suite.faults)
    rules: list[Rule] = []
    for name in chosen:
        if name not in suite.faults:
            raise UsageError(f"{faults_file} has no fault {name!r}{suggest(name, suite.faults)}")
        rules.extend(suite.faults[name].rules)
    return rules


def run_proxy_command(
    upstream: str, listen: str, faults_file: str | None, names: tuple[str, ...], *,
    quiet: bool, echo: Callable[[str], None],
) -> None:
    """Run until Ctrl-C."""
    from redtest.proxy.standalone import serve

    rules = load_rules(faults_file, names)
    serve(parse_address(upstream, "--upstream"), parse_address(listen, "--listen"), rules,
          quiet=quiet, echo=echo)
