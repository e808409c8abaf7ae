"""Durations as users write them: 250ms, 2s, 1.5s, 1m, or a number of milliseconds."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
# Exact decimal factors: `700ms` is 700 * 0.001 computed in decimal, then rounded once
# to the nearest float (0.7), not 700 * 0.001 in binary (0.7000000000000001).
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600),
                 None: Decimal("0.001")}
# Sockets, sleeps and thread waits overflow somewhere past ~292 years (and crash the
# run); no test waits longer than a day, so a longer duration is a typo.
MAX_SECONDS = 24 * 3600


def parse_duration(value: object) -> float:
    """Return the duration in seconds; a bare number means milliseconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a duration: {value!r} (write e.g. 250ms, 2s, or a number of milliseconds)")
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        # int / int and float / int are correctly rounded: 700 / 1000 == 0.7.
        try:
            return _finite(value / 1000, value)
        except OverflowError:
            raise ValueError(f"duration {value!r} is too long: at most 24h") from None
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(
            f"not a duration: {value!r} (write e.g. 250ms, 2s, 1.5s, 1m, or a number of milliseconds)"
        )
    return _finite(float(Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]), value)


def _finite(seconds: float, value: object) -> float:
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(f"duration {value!r} is too long: at most 24h")
    return seconds
