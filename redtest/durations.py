"""Durations as users write them: 250ms, 2s, 1.5s, 1m, or a number of milliseconds."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 0.001}


def parse_duration(value: object) -> float:
    """Return the duration in seconds; a bare number means milliseconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value) / 1000.0
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(
            f"not a duration: {value!r} (write e.g. 250ms, 2s, 1.5s, 1m, or a number of milliseconds)"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
