"""The `redtest` command's first code: a Ctrl-C while Python imports must not print a traceback.

The CLI's own handlers exist only once a command runs (importing click, rich and the
rest, and parsing the command line, take a noticeable moment); until then an interrupt
just ends the process with 130 (143 for SIGTERM).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted_early(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("interrupted\n")
    raise SystemExit(130 if signum == signal.SIGINT else 143)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """After the command: everything is stopped, and an exception raised while the
    interpreter shuts down would print "Exception ignored in ..." with a traceback."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130 if signum == signal.SIGINT else 143)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupted_early)
    from redtest.cli import main as cli_main

    # Each command installs its own handlers (cli.handles_errors); until then, and while
    # click parses the command line, these stay, so an early Ctrl-C still ends quietly.
    try:
        cli_main()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_now)
