"""`redtest proxy`: run one FaultProxy in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from redtest.proxy.server import FaultProxy
from redtest.spec.model import Rule

__all__ = ["serve"]


def serve(
    upstream: tuple[str, int],
    listen: tuple[str, int],
    rules: Sequence[Rule],
    *,
    quiet: bool,
    echo: Callable[[str], None],
) -> None:
    """Proxy `listen` -> `upstream` with `rules` active; print the address and, unless quiet, each hit."""

    printing = [True]

    def say(line: str) -> None:
        if printing[0]:
            try:
                echo(line)
            except OSError:  # stdout gone (`| head`): the proxy goes on, unprinted
                printing[0] = False

    def on_hit(index: int, rule: Rule) -> None:
        if not quiet:
            say(f"hit rule {index + 1}: {rule.describe()}")

    stop = threading.Event()
    proxy = FaultProxy(upstream[0], upstream[1], listen[0], listen[1], on_hit=on_hit)
    proxy.start()  # raises ProxyError when the port cannot be bound
    previous = None
    on_main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        if on_main:  # SIGTERM ends the proxy like Ctrl-C does
            previous = signal.signal(signal.SIGTERM, on_term)
        proxy.set_rules(list(rules))
        host, port = proxy.address
        say(f"redtest proxy listening on {host}:{port} -> {upstream[0]}:{upstream[1]}")
        for i, rule in enumerate(rules):
            say(f"  rule {i + 1}: {rule.describe()}")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if on_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        proxy.stop()
