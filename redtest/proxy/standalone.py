"""`redtest proxy`: run one FaultProxy in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from redtest.proxy.server import FaultProxy
from redtest.spec.model import Rule

__all__ = ["serve"]

_SENTINEL = object()


class _HitPrinter:
    """Prints hit lines from a thread of its own. `on_hit` runs on the proxy's loop
    thread, which must never wait for stdout: a pipe nobody reads fills up, and a print
    blocked on it stalled every connection (and SIGTERM). Lines beyond `limit` waiting
    are counted, not kept."""

    def __init__(self, say: Callable[[str], None], limit: int = 10_000) -> None:
        self._say = say
        self._lines: queue.Queue[object] = queue.Queue(limit)
        self.dropped = 0  # written by the loop thread only
        self._reported = 0
        self._thread = threading.Thread(target=self._run, name="redtest-proxy hits", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (line := self._lines.get()) is not _SENTINEL:
            missed = self.dropped - self._reported
            if missed:
                self._reported += missed
                self._say(f"({missed} hit line(s) not printed: the output was not read)")
            self._say(str(line))

    def close(self, timeout: float = 2.0) -> None:
        """Print what is queued, unless the output stays blocked for `timeout` seconds."""
        try:
            self._lines.put(_SENTINEL, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


def _show(host: str, port: int) -> str:
    """HOST:PORT, with an IPv6 address in brackets as `--listen` takes it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(error: OSError) -> str:
    """`Connection refused`, not uvloop's `Connect call failed ('127.0.0.1', 1)`."""
    if error.errno is not None and error.errno > 0:
        return os.strerror(error.errno)
    return str(error.strerror or error)


def serve(
    upstream: tuple[str, int],
    listen: tuple[str, int],
    rules: Sequence[Rule],
    *,
    quiet: bool,
    echo: Callable[[str], None],
    rule_faults: Sequence[str] = (),
) -> None:
    """Proxy `listen` -> `upstream` with `rules` active; print the address and, unless quiet, each hit.

    `rule_faults` names the fault each rule comes from, for the start-up lines.
    """

    printing = [True]

    def say(line: str) -> None:
        if printing[0]:
            try:
                echo(line)
            except OSError:  # stdout gone (`| head`): the proxy goes on, unprinted
                printing[0] = False

    hits = _HitPrinter(say)

    def on_hit(index: int, rule: Rule) -> None:
        if not quiet:
            hits.put(f"hit rule {index + 1}: {rule.describe()}")

    last_warning = [-1e9]

    def on_upstream_error(error: OSError) -> None:
        # else a wrong --upstream shows only as clients whose connections close at once
        now = time.monotonic()
        if now - last_warning[0] >= 5.0:  # at most one line per 5 s while it lasts
            last_warning[0] = now
            hits.put(
                f"cannot reach upstream {_show(*upstream)} ({_reason(error)}): "
                "closed the client's connection"
            )

    stop = threading.Event()
    proxy = FaultProxy(
        upstream[0], upstream[1], listen[0], listen[1], on_hit=on_hit,
        on_upstream_error=on_upstream_error,
    )
    previous = None
    on_main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        proxy.start()  # raises ProxyError when the port cannot be bound
        if on_main:  # SIGTERM ends the proxy like Ctrl-C does
            previous = signal.signal(signal.SIGTERM, on_term)
        proxy.set_rules(list(rules))
        host, port = proxy.address
        say(f"redtest proxy listening on {_show(host, port)} -> {_show(*upstream)}")
        for i, rule in enumerate(rules):
            source = f" ({rule_faults[i]})" if i < len(rule_faults) else ""
            say(f"  rule {i + 1}{source}: {rule.describe()}")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if on_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        proxy.stop()
        hits.close()
