"""Stopping services under signals: a Ctrl-C while they stop hurries them, never cuts it short."""

from __future__ import annotations

import signal
import threading
from contextlib import ExitStack
from types import FrameType, TracebackType
from typing import Any

from redtest.services.runtime import HURRY

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CleanupStack(ExitStack):
    """An ExitStack whose unwinding cannot be interrupted.

    Without this, a second Ctrl-C raises inside whichever stop callback is running and
    that service is left half-stopped (its process alive, its temp dir behind). While
    the stack unwinds, SIGINT and SIGTERM only set HURRY (stop at once with SIGKILL).
    A signal that arrives during a normal unwind is delivered again once it is done, so
    it still ends the run.
    """

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return super().__exit__(exc_type, exc, tb)
        received: list[int] = []

        def hurry(signum: int, frame: FrameType | None) -> None:
            received.append(signum)
            HURRY.set()

        previous: dict[int, Any] = {sig: signal.signal(sig, hurry) for sig in _SIGNALS}
        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            HURRY.clear()
            if received and exc_type is None:
                signal.raise_signal(received[0])  # the run goes on no further
