"""`redtest proxy`: the fault proxy alone, with faults taken from a redtest file."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from redtest.errors import UsageError
from redtest.spec.build import suggest
from redtest.spec.model import Rule


def parse_address(text: str, option: str) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT`) → (host, port); raises UsageError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not _host_ok(host):
        raise UsageError(
            f"{option} takes HOST:PORT (an IPv6 address in brackets: [::1]:6379), got {text!r}"
        )
    return (host.strip("[]") or "127.0.0.1", int(port))


def _host_ok(host: str) -> bool:
    """A name, an IPv4 address, or an IPv6 address: `::1` alone split into `:` and port 1."""
    if ":" not in host:
        return True
    try:
        ipaddress.IPv6Address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return False
    return True


def load_rules(faults_file: str | None, names: tuple[str, ...]) -> list[tuple[str, Rule]]:
    """(fault name, rule) for the named faults of a redtest file, in the order named;
    every fault of the file when none is named."""
    if names and not faults_file:
        raise UsageError("--fault needs --faults FILE to say where the faults are defined")
    if not faults_file:
        return []
    from redtest.spec.build import load_suite

    suite = load_suite(Path(faults_file))
    chosen = names or tuple(suite.faults)
    rules: list[tuple[str, Rule]] = []
    for name in chosen:
        if name not in suite.faults:
            known = ", ".join(suite.faults) or "none"
            raise UsageError(
                f"{faults_file} has no fault {name!r}{suggest(name, suite.faults)}; its faults: {known}"
            )
        rules.extend((name, rule) for rule in suite.faults[name].rules)
    return rules


def run_proxy_command(
    upstream: str, listen: str, faults_file: str | None, names: tuple[str, ...], *,
    quiet: bool, echo: Callable[[str], None],
) -> None:
    """Run until Ctrl-C."""
    from redtest.proxy.standalone import serve

    chosen = load_rules(faults_file, names)
    serve(parse_address(upstream, "--upstream"), parse_address(listen, "--listen"),
          [rule for _, rule in chosen], quiet=quiet, echo=echo,
          rule_faults=[name for name, _ in chosen])
