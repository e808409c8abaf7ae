"""Service runtimes: start Redis servers (docker, local, embedded) and wait for readiness."""

from redtest.services.health import wait_http, wait_redis_ping, wait_tcp
from redtest.services.runtime import (
    RUNTIMES,
    Endpoint,
    RunningService,
    free_port,
    resolve_runtime,
    start_redis,
    stop_all_reusable,
)

__all__ = [
    "RUNTIMES",
    "Endpoint",
    "RunningService",
    "free_port",
    "resolve_runtime",
    "start_redis",
    "stop_all_reusable",
    "wait_http",
    "wait_redis_ping",
    "wait_tcp",
]
