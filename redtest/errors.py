"""Error types shared by every layer; each knows where in the user's files it points."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A position in a user's file; line and column are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class RedtestError(Exception):
    """Base of every error redtest reports to users as one readable paragraph."""

    exit_code = 1

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class SpecError(RedtestError):
    """The user's files are invalid: YAML, schema, references or expressions."""

    exit_code = 2


class SpecErrors(SpecError):
    """Several SpecErrors found in one pass, reported together."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.location is None, e.location or Location("", 0, 0)))
        super().__init__("\n\n".join(str(e) for e in self.errors), None)

    def __str__(self) -> str:
        return self.message


class UsageError(RedtestError):
    """Bad command-line usage."""

    exit_code = 2


class ServiceError(RedtestError):
    """A service could not be started, reached or became ready."""

    exit_code = 3


class ProxyError(RedtestError):
    """The fault proxy could not start or failed."""

    exit_code = 3
