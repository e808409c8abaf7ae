"""A suite's running world: services, one proxy per Redis interface, and clients.

Everything started here is registered on the caller's ExitStack, so every exit
path (success, failure, exception, Ctrl-C, SIGTERM) stops it again.
"""

from __future__ import annotations

import os
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
    # Each application's log size when the previous test ended (see mark_output), so a
    # failed test shows only the output of its own time (not a previous test's megabytes).
    log_marks: dict[str, int] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)  # service -> why it is gone (see check_services)
    keep_logs: set[str] = field(default_factory=set)  # process services whose log outlives the suite

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

    def mark_output(self) -> None:
        """Remember where each application's log stands: output_tail() then shows what follows.

        The runner marks after each test, so a test's output is what the apps printed
        since the previous test ended (for the first test, since they started).
        """
        self.log_marks = {
            name: rs.log_size() for name, rs in self.running.items() if hasattr(rs, "log_size")
        }

    def output_tail(self, limit: int = 4000) -> str | None:
        """The captured output of application services, for failure reports.

        Process services: only what was written since mark_output() (the whole tail
        before the first mark). Containers: the tail of their whole log.
        """
        parts = []
        for name, rs in self.running.items():
            if self.suite.services[name].kind not in ("process", "container"):
                continue
            mark = self.log_marks.get(name)
            text = rs.logs(since=mark) if mark is not None else rs.logs()
            if text:
                parts.append(f"--- {name} ---\n{text[-limit:]}")
        return "\n".join(parts) or None

    def check_services(self, *, thorough: bool = False) -> dict[str, str]:
        """Services that died since the last check: name -> what to report (also kept in `dead`).

        Processes (applications, local Redis servers) are checked every time: it costs a
        waitpid. Containers ask the Docker engine, so only when `thorough`.
        """
        found: dict[str, str] = {}
        for name, rs in self.running.items():
            if name in self.dead or rs.stopped:
                continue
            if not thorough and (self.suite.services[name].kind == "container" or rs.runtime == "docker"):
                continue
            reason = rs.exit_reason()
            if reason is None:
                continue
            found[name] = self._death_message(name, rs, reason)
            if self.suite.services[name].kind == "process":
                self.keep_logs.add(name)  # the message points at it
        self.dead.update(found)
        return found

    def _death_message(self, name: str, rs: Any, reason: str) -> str:
        svc = self.suite.services[name]
        if svc.kind == "process":
            from redtest.services.process import output_block

            return f"{svc.loc}: service {name!r} {reason} during the run ({rs.detail})" + output_block(rs)
        return f"{svc.loc}: service {name!r} (runtime {rs.runtime}) stopped during the run: {reason}"

    def close_changed_direct_clients(self) -> None:
        """Close the direct connections whose state a command changed (they reconnect)."""
        for client in self.direct_clients.values():
            if getattr(client, "changed_connection", False):
                client.close()

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
    for root in sorted(services.values(), key=lambda s: s.kind in ("process", "container")):
        # depth first, with an explicit stack: a long depends_on chain is no RecursionError
        todo = [(root, iter(root.depends_on))]
        while todo:
            svc, deps = todo[-1]
            dep = next((services[d] for d in deps if d not in done), None)
            if dep is None:
                todo.pop()
                done.setdefault(svc.name, svc)
            elif all(dep is not s for s, _ in todo):  # validation refuses cycles
                todo.append((dep, iter(dep.depends_on)))
    return list(done.values())


def provision(
    suite: model.Suite, stack: ExitStack, *, runtime: str | None, keep: bool, env: Environment | None = None
) -> Environment:
    """Start the suite's services and proxies; raises ServiceError (exit 3).

    Pass `env` to see what was started before a failure or a Ctrl-C (--keep-services
    must report what it keeps even then).
    """
    from redtest.services.runtime import stop_tracked, tracking_mark

    env = env if env is not None else Environment(suite)
    # First in, so last out: whatever was spawned but not yet registered below when a
    # Ctrl-C arrived (the registration is a separate step after each start) is stopped too.
    stack.callback(stop_tracked, tracking_mark())
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
    from redtest.services.runtime import signals_deferred, start_redis

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
        with signals_deferred():  # no Ctrl-C between starting it and registering its stop
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
        # Absolute (SPEC §8: relative to the file's folder), so `${db.main.url}` names the
        # same file for an app with another workdir, whatever folder redtest runs in.
        path = _absolute(svc.base_dir, expand(iface.path or "", env, svc, {}))
        env.access[(svc.name, iname)] = InterfaceAccess(
            svc.name, iname, "sqlite", path=path, timeout=svc.step_timeout
        )
        endpoints[iname] = str(path)
    env.infos.append(ServiceInfo(svc.name, "sqlite", "none", endpoints))


def _absolute(base_dir: Path, path: str) -> Path:
    """`path` resolved against `base_dir`, absolute and without `..` (symlinks kept)."""
    return Path(os.path.abspath(base_dir / path))


def _own_ports(svc: model.Service) -> dict[str, int]:
    """A free host port per interface; interfaces that declare the same port share one
    (`api: {port: 8080, path: /v1}` and `root: {port: 8080}` are one listener), as they
    do in a container."""
    from redtest.services.runtime import free_port

    by_declared: dict[int, int] = {}
    own: dict[str, int] = {}
    for name, iface in svc.interfaces.items():
        if iface.protocol == "sqlite":
            continue
        if iface.port is None:
            own[name] = free_port()
            continue
        if iface.port not in by_declared:
            by_declared[iface.port] = _distinct_free_port(set(by_declared.values()))
        own[name] = by_declared[iface.port]
    return own


def _distinct_free_port(taken: set[int]) -> int:
    from redtest.services.runtime import free_port

    while True:  # the kernel may hand out a port it just gave us again
        port = free_port()
        if port not in taken:
            return port


def _start_process(env: Environment, svc: model.Service, stack: ExitStack, *, keep: bool) -> None:
    from redtest.services.process import ProcessStartError, start_process
    from redtest.services.runtime import Endpoint, signals_deferred

    own = _own_ports(svc)
    assert svc.command is not None
    command = [expand(part, env, svc, own) for part in svc.command]
    variables = {k: expand(v, env, svc, own) for k, v in svc.env.items()}
    workdir = _absolute(svc.base_dir, expand(svc.workdir, env, svc, own) if svc.workdir else ".")
    with signals_deferred():  # a Ctrl-C between the two would leave the folder behind
        log_dir = Path(tempfile.mkdtemp(prefix=f"redtest-{svc.name}-"))
        if not keep:
            # Registered before the process, so it is removed after the process stops;
            # kept when the app failed to start or died, since its error names the log.
            stack.callback(_remove_log_dir, env, svc.name, log_dir)
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
    try:
        rp = start_process(
            svc, command, variables, workdir, log_path=log_dir / "output.log",
            endpoints={name: Endpoint("127.0.0.1", port) for name, port in own.items()}, keep=keep,
        )
    except ProcessStartError:
        env.keep_logs.add(svc.name)
        raise
    except ServiceError:
        if keep:  # it never ran (no workdir, no program): an empty folder no message names
            shutil.rmtree(log_dir, ignore_errors=True)
        raise
    env.running[svc.name] = rp
    if not keep:
        stack.callback(rp.stop)
    env.infos.append(
        ServiceInfo(svc.name, "process", "process",
                    {k: f"127.0.0.1:{p}" for k, p in own.items()}, {}, f"pid {rp.pid}")
    )


def _remove_log_dir(env: Environment, name: str, log_dir: Path) -> None:
    if name not in env.keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)


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
