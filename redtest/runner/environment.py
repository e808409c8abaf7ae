"""A suite's running world: services, one proxy per Redis interface, and clients.

Everything started here is registered on the caller's ExitStack, so every exit
path (success, failure, exception, Ctrl-C, SIGTERM) stops it again.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redtest.errors import ServiceError, SpecError
from redtest.expr import ServiceFacade
from redtest.results import ServiceInfo
from redtest.spec import model, templates


@dataclass
class InterfaceAccess:
    """How the runner reaches one interface: directly, and (Redis) through the proxy."""

    service: str
    name: str
    protocol: str
    host: str = "127.0.0.1"
    port: int | None = None  # the real server (or the app's listening port)
    proxy: Any = None  # FaultProxy for redis interfaces
    path: Path | None = None  # sqlite file
    base_path: str = ""  # http: the interface's `path`, prefixed to every request path
    timeout: float = model.DEFAULT_STEP_TIMEOUT

    @property
    def public_port(self) -> int | None:
        """The port others should use: the proxy's for Redis, else the real one."""
        if self.proxy is not None:
            return self.proxy.address[1]
        return self.port


@dataclass
class Environment:
    """Everything a suite's tests need while they run."""

    suite: model.Suite
    access: dict[tuple[str, str], InterfaceAccess] = field(default_factory=dict)
    running: dict[str, Any] = field(default_factory=dict)  # service name -> RunningService
    infos: list[ServiceInfo] = field(default_factory=list)
    direct_clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    step_clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    armed: set[str] = field(default_factory=set)  # proxies whose rule set may be non-empty

    def proxies(self) -> dict[str, Any]:
        """`service.interface` -> FaultProxy."""
        return {f"{a.service}.{a.name}": a.proxy for a in self.access.values() if a.proxy is not None}

    def direct_client(self, service: str, interface: str) -> Any:
        """A client that bypasses faults, kept for the whole suite (seeds, expectations)."""
        key = (service, interface)
        if key not in self.direct_clients:
            self.direct_clients[key] = make_client(self.access[key], via_proxy=False)
        return self.direct_clients[key]

    def step_client(self, service: str, interface: str) -> Any:
        """A client for steps: through the proxy for Redis; kept while tests leave it clean."""
        key = (service, interface)
        if key not in self.step_clients:
            self.step_clients[key] = make_client(self.access[key], via_proxy=True)
        return self.step_clients[key]

    def close_step_clients(self) -> None:
        for client in self.step_clients.values():
            client.close()
        self.step_clients.clear()

    def facades(self) -> dict[str, ServiceFacade]:
        """The service names of expressions, bound to direct clients."""
        out: dict[str, ServiceFacade] = {}
        for name, svc in self.suite.services.items():
            ifaces = {i: self.direct_client(name, i) for i in svc.interfaces if (name, i) in self.access}
            out[name] = ServiceFacade(name, ifaces)
        return out

    def output_tail(self, limit: int = 4000) -> str | None:
        """The captured output of application services, for failure reports."""
        parts = []
        for name, rs in self.running.items():
            if self.suite.services[name].kind not in ("process", "container"):
                continue
            text = rs.logs()
            if text:
                parts.append(f"--- {name} ---\n{text[-limit:]}")
        return "\n".join(parts) or None

    def close_clients(self) -> None:
        self.close_step_clients()
        for client in self.direct_clients.values():
            client.close()
        self.direct_clients.clear()


def make_client(access: InterfaceAccess, *, via_proxy: bool, client_name: str | None = None) -> Any:
    """A client for one interface; Redis goes through the proxy when `via_proxy`."""
    if access.protocol == "redis":
        from redtest.clients.redis import RedisInterface

        port = access.public_port if via_proxy else access.port
        return RedisInterface(access.host, port, timeout=access.timeout, client_name=client_name)
    if access.protocol == "http":
        from redtest.clients.http import HttpInterface

        return HttpInterface(f"http://{access.host}:{access.port}{access.base_path}", timeout=access.timeout)
    from redtest.clients.sqlite import SqliteInterface

    assert access.path is not None
    return SqliteInterface(access.path)


def start_order(services: dict[str, model.Service]) -> list[model.Service]:
    """Services in dependency order; Redis and SQLite first so apps can be wired to them."""
    done: dict[str, model.Service] = {}

    def visit(svc: model.Service) -> None:
        if svc.name in done:
            return
        for dep in svc.depends_on:
            visit(services[dep])
        done[svc.name] = svc

    for svc in sorted(services.values(), key=lambda s: s.kind in ("process", "container")):
        visit(svc)
    return list(done.values())


def provision(
    suite: model.Suite, stack: ExitStack, *, runtime: str | None, keep: bool
) -> Environment:
    """Start the suite's services and proxies; raises ServiceError (exit 3)."""
    env = Environment(suite)
    stack.callback(env.close_clients)
    suite_id = str(suite.path.resolve())
    for svc in start_order(suite.services):
        if svc.kind == "redis":
            _start_redis(env, svc, stack, runtime=runtime, keep=keep, suite_id=suite_id)
        elif svc.kind == "sqlite":
            _declare_sqlite(env, svc)
        elif svc.kind == "process":
            _start_process(env, svc, stack, keep=keep)
        else:
            _start_container(env, svc, stack, keep=keep, suite_id=suite_id)
    for info in env.infos:
        info.file = suite.display_path
    return env


def _start_redis(
    env: Environment, svc: model.Service, stack: ExitStack, *, runtime: str | None, keep: bool, suite_id: str
) -> None:
    from redtest.proxy.server import FaultProxy
    from redtest.services.runtime import start_redis

    rs = start_redis(svc, runtime, suite_id=suite_id, keep=keep)
    env.running[svc.name] = rs
    if not (svc.reuse or keep):
        stack.callback(rs.stop)
    proxies: dict[str, str] = {}
    for iname, iface in svc.interfaces.items():
        if iface.protocol != "redis":
            continue
        endpoint = rs.endpoints[iname]
        proxy = FaultProxy(
            endpoint.host, endpoint.port, name=f"{svc.name}.{iname}", upstream_unix=endpoint.unix
        )
        proxy.start()
        stack.callback(proxy.stop)
        env.access[(svc.name, iname)] = InterfaceAccess(
            svc.name, iname, "redis", endpoint.host, endpoint.port, proxy, timeout=svc.step_timeout
        )
        proxies[iname] = "{}:{}".format(*proxy.address)
    env.infos.append(
        ServiceInfo(svc.name, svc.kind, rs.runtime,
                    {k: f"{e.host}:{e.port}" for k, e in rs.endpoints.items()}, proxies, rs.detail)
    )


def _declare_sqlite(env: Environment, svc: model.Service) -> None:
    endpoints = {}
    for iname, iface in svc.interfaces.items():
        path = Path(expand(iface.path or "", env, svc, {}))
        if not path.is_absolute():
            path = svc.base_dir / path
        env.access[(svc.name, iname)] = InterfaceAccess(
            svc.name, iname, "sqlite", path=path, timeout=svc.step_timeout
        )
        endpoints[iname] = str(path)
    env.infos.append(ServiceInfo(svc.name, "sqlite", "none", endpoints))


def _own_ports(svc: model.Service) -> dict[str, int]:
    from redtest.services.runtime import free_port

    return {name: free_port() for name, iface in svc.interfaces.items() if iface.protocol != "sqlite"}


def _start_process(env: Environment, svc: model.Service, stack: ExitStack, *, keep: bool) -> None:
    from redtest.services.process import start_process
    from redtest.services.runtime import Endpoint

    own = _own_ports(svc)
    assert svc.command is not None
    command = [expand(part, env, svc, own) for part in svc.command]
    variables = {k: expand(v, env, svc, own) for k, v in svc.env.items()}
    workdir = Path(expand(svc.workdir, env, svc, own)) if svc.workdir else Path(".")
    if not workdir.is_absolute():
        workdir = svc.base_dir / workdir
    log_dir = Path(tempfile.mkdtemp(prefix=f"redtest-{svc.name}-"))
    if not keep:
        # Registered before the process, so it is removed after the process stops.
        stack.callback(shutil.rmtree, log_dir, ignore_errors=True)
    for iname, port in own.items():
        iface = svc.interfaces[iname]
        env.access[(svc.name, iname)] = InterfaceAccess(
            svc.name, iname, iface.protocol, "127.0.0.1", port, timeout=svc.step_timeout,
            base_path=_base_path(iface, env, svc, own),
        )
    if svc.healthcheck is not None:
        # The healthcheck target may hold templates too (`tcp: "localhost:${self.api.port}"`).
        target = expand(svc.healthcheck.target, env, svc, own)
        svc = replace(svc, healthcheck=replace(svc.healthcheck, target=target))
    rp = start_process(
        svc, command, variables, workdir, log_path=log_dir / "output.log",
        endpoints={name: Endpoint("127.0.0.1", port) for name, port in own.items()},
    )
    env.running[svc.name] = rp
    if not keep:
        stack.callback(rp.stop)
    env.infos.append(
        ServiceInfo(svc.name, "process", "process",
                    {k: f"127.0.0.1:{p}" for k, p in own.items()}, {}, f"pid {rp.pid}")
    )


def _start_container(
    env: Environment, svc: model.Service, stack: ExitStack, *, keep: bool, suite_id: str
) -> None:
    from redtest.services.docker import start_container

    # Host networking: an interface's own port is where the app listens on this host.
    own = {
        name: iface.port for name, iface in svc.interfaces.items()
        if iface.port is not None and iface.protocol != "sqlite"
    }
    variables = {k: expand(v, env, svc, own) for k, v in svc.env.items()}
    if svc.healthcheck is not None:
        target = expand(svc.healthcheck.target, env, svc, own)
        svc = replace(svc, healthcheck=replace(svc.healthcheck, target=target))
    rs = start_container(svc, variables, suite_id=suite_id, keep=keep)
    env.running[svc.name] = rs
    if not keep:
        stack.callback(rs.stop)
    for iname, endpoint in rs.endpoints.items():
        iface = svc.interfaces[iname]
        env.access[(svc.name, iname)] = InterfaceAccess(
            svc.name, iname, iface.protocol, endpoint.host, endpoint.port, timeout=svc.step_timeout,
            base_path=_base_path(iface, env, svc, own),
        )
    env.infos.append(
        ServiceInfo(svc.name, "container", rs.runtime,
                    {k: f"{e.host}:{e.port}" for k, e in rs.endpoints.items()}, {}, rs.detail)
    )


def _base_path(iface: model.Interface, env: Environment, svc: model.Service, own: dict[str, int]) -> str:
    """An http interface's `path` (e.g. `/api/v1`), expanded, without a trailing slash."""
    if iface.protocol != "http" or not iface.path:
        return ""
    path = expand(iface.path, env, svc, own).rstrip("/")
    return path if path.startswith("/") else f"/{path}"


def expand(text: str, env: Environment, svc: model.Service, own_ports: dict[str, int]) -> str:
    """Expand `${...}` for `svc`: other services' addresses (proxies for Redis), own ports, env."""
    import os

    def resolve(ref: templates.Ref) -> str:
        if ref.env is not None:
            value = os.environ.get(ref.env)
            if value is None:
                raise SpecError(f"${{{ref.text}}}: environment variable {ref.env} is not set", svc.loc)
            return value
        if ref.service == "self":
            assert ref.interface is not None
            port = own_ports.get(ref.interface)
            host = "127.0.0.1"
            if port is None:
                raise ServiceError(f"${{{ref.text}}}: {svc.name}.{ref.interface} has no port", svc.loc)
            protocol = svc.interfaces[ref.interface].protocol
        else:
            assert ref.service is not None and ref.interface is not None
            access = env.access.get((ref.service, ref.interface))
            if access is None:
                raise ServiceError(
                    f"${{{ref.text}}}: service {ref.service!r} is not started yet; "
                    f"add it to depends_on of {svc.name!r}",
                    svc.loc,
                )
            if access.protocol == "sqlite":
                return str(access.path)
            host, port, protocol = access.host, access.public_port, access.protocol
        return _attribute(ref.attribute or "addr", host, port, protocol)

    return templates.expand(text, resolve)


def _attribute(attribute: str, host: str, port: int | None, protocol: str) -> str:
    if attribute == "host":
        return host
    if attribute == "port":
        return str(port)
    if attribute == "addr":
        return f"{host}:{port}"
    scheme = {"redis": "redis", "http": "http"}.get(protocol, protocol)
    return f"{scheme}://{host}:{port}" + ("/0" if protocol == "redis" else "")
