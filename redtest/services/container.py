"""Application containers (SPEC §8): an `image` with no `command`, run by the Docker runtime."""

from __future__ import annotations

import uuid
from typing import Any

from redtest.errors import ServiceError
from redtest.services.docker import (
    HOST,
    ContainerService,
    cleaning_up,
    connect,
    ensure_image,
    labels_for,
    remove_orphans,
    remove_started,
    short_error,
)
from redtest.services.health import wait_http, wait_tcp
from redtest.services.runtime import Endpoint, RunningService, health_timeout, track
from redtest.spec.model import Service


def start_app_container(
    service: Service, env: dict[str, str], *, suite_id: str, keep: bool = False
) -> RunningService:
    """Run an application image with host networking; wait for its healthcheck.

    Host networking keeps the wiring of process services: `${cache.main.url}` is a
    loopback proxy address, which a container on Docker's bridge could not reach.
    Each interface's `port` is therefore where the app listens on this host.
    """
    import docker

    if not service.image:
        raise ValueError(f"start_container called for {service.name}, which has no image")
    client = connect(location=service.loc)
    token = uuid.uuid4().hex
    try:
        remove_orphans(client)
        ensure_image(client, service.image, service)
        labels = labels_for(service, suite_id, "", service.image, keep=keep, token=token)
        labels["redtest.reuse"] = "0"  # an application is never kept between runs
        try:
            container = client.containers.run(
                service.image, detach=True, environment=env, labels=labels, network_mode="host"
            )
        except docker.errors.APIError as exc:
            raise ServiceError(
                f"service '{service.name}' (runtime container): cannot start a container from "
                f"image '{service.image}': {short_error(exc)}",
                service.loc,
            ) from None
        endpoints = {
            name: Endpoint(HOST, iface.port)
            for name, iface in service.interfaces.items()
            if iface.port is not None and iface.protocol != "sqlite"
        }
        running = ContainerService(service.name, "container", endpoints, client, container)
        if not keep:
            track(running)  # from here the runner's last cleanup removes it, whatever happens
    except BaseException as exc:
        with cleaning_up(exc):
            remove_started(client, token)
            client.close()
        raise
    try:
        _wait_app_ready(running, service)
    except BaseException as exc:
        with cleaning_up(exc):
            running.stop()
        raise
    return running


def _wait_app_ready(running: ContainerService, service: Service) -> None:
    hc = service.healthcheck
    timeout = health_timeout(service)
    common: dict[str, Any] = {
        "service": service.name, "runtime": "container", "location": service.loc,
        "alive": running.exit_reason,
    }  # fmt: skip
    if hc is not None and hc.kind == "http":
        http = [n for n, i in service.interfaces.items() if i.protocol == "http"]
        if not http:
            raise ServiceError(
                f"service '{service.name}': an http healthcheck needs an http interface",
                service.loc,
            )
        ep = running.endpoints[http[0]]
        path = hc.target if hc.target.startswith("/") else "/" + hc.target
        wait_http(f"http://{ep.host}:{ep.port}{path}", timeout, **common)
    elif hc is not None and hc.kind == "tcp":
        host, _, port = hc.target.rpartition(":")
        if not port.isdigit():  # `${env.NAME}` may expand to anything
            raise ServiceError(f"service '{service.name}': bad tcp healthcheck {hc.target!r}", service.loc)
        wait_tcp(host or HOST, int(port), timeout, **common)
    else:
        for ep in running.endpoints.values():
            wait_tcp(ep.host, ep.port, timeout, **common)
