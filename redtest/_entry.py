"""The `redtest` command's first code: a Ctrl-C while Python imports must not print a traceback.

The CLI's own handlers exist only once `redtest.cli` is imported (click, rich and the
rest take a noticeable moment); until then an interrupt just ends the process with 130.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _interrupted_early(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("interrupted\n")
    raise SystemExit(130 if signum == signal.SIGINT else 143)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupted_early)
    from redtest.cli import main as cli_main

    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt from here on
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the CLI installs its own
    cli_main()
