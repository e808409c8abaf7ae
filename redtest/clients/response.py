"""What every step and every interface call returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    """A call's outcome: `.data`, `.ok`, `.error`, `.duration_ms` (+ `.status`, `.headers` for HTTP)."""

    data: Any = None
    ok: bool = True
    error: str | None = None
    duration_ms: int = 0
    status: int | None = None  # HTTP only
    headers: dict[str, str] = field(default_factory=dict)  # HTTP only

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view for reports."""
        out: dict[str, Any] = {
            "data": self.data,
            "ok": self.ok,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }
        if self.status is not None:
            out["status"] = self.status
            out["headers"] = dict(self.headers)
        return out
