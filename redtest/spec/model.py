"""The validated suite: frozen dataclasses every later stage reads, each with its Location."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from redtest.errors import Location

Protocol = Literal["redis", "http", "sqlite"]
ServiceKind = Literal["redis", "process", "container", "sqlite"]
RuntimeName = Literal["auto", "docker", "local", "embedded"]

DEFAULT_STEP_TIMEOUT = 5.0
DEFAULT_HEALTH_TIMEOUT = 10.0
DEFAULT_REDIS_IMAGE = "redis:7"


@dataclass(frozen=True)
class Interface:
    """One endpoint of a service: `interfaces: {main: {protocol: redis, port: 6379}}`."""

    name: str
    protocol: Protocol
    port: int | None  # the port inside the container / the port the app is told; None for sqlite
    path: str | None  # sqlite: database file (template; relative to base_dir); http: base path
    loc: Location


@dataclass(frozen=True)
class Healthcheck:
    """How to tell a service is ready: tcp "host:port", redis ping, or an http path."""

    kind: Literal["tcp", "redis", "http"]
    target: str  # "localhost:6379" | "ping" | "/health"
    timeout: float  # seconds
    loc: Location


@dataclass(frozen=True)
class Call:
    """A step that calls SERVICE.INTERFACE.METHOD with keyword arguments."""

    service: str
    interface: str
    method: str
    args: dict[str, Any]
    loc: Location
    as_name: str | None = None
    expect: tuple[Expectation, ...] = ()
    allow_error: bool = False
    timeout: float | None = None  # seconds; None = the service's step timeout

    @property
    def target(self) -> str:
        return f"{self.service}.{self.interface}"

    @property
    def label(self) -> str:
        return f"{self.service}.{self.interface}.{self.method}"


@dataclass(frozen=True)
class Sleep:
    """A step that waits: `- sleep: 200ms`."""

    seconds: float
    loc: Location
    as_name: str | None = None
    expect: tuple[Expectation, ...] = ()
    allow_error: bool = False

    @property
    def label(self) -> str:
        return "sleep"


Step = Call | Sleep


@dataclass(frozen=True)
class Expectation:
    """One assertion expression, compiled at load time by redtest.expr."""

    source: str
    loc: Location
    compiled: Any = field(compare=False, repr=False)  # redtest.expr.CompiledExpression


@dataclass(frozen=True)
class Service:
    """A declared service; `kind` follows from what it declares (SPEC §2, §8)."""

    name: str
    kind: ServiceKind
    interfaces: dict[str, Interface]
    loc: Location
    base_dir: Path  # folder of the file that declared it; relative paths resolve here
    image: str | None = None  # redis: defaults to redis:7
    command: tuple[str, ...] | None = None  # templates, expanded at start
    env: dict[str, str] = field(default_factory=dict)  # templates, expanded at start
    workdir: str | None = None  # template, relative to base_dir
    healthcheck: Healthcheck | None = None
    depends_on: tuple[str, ...] = ()
    reuse: bool = False
    seed: tuple[Step, ...] = ()  # resolved: a named seed's steps or the inline list
    seed_name: str | None = None
    runtime: RuntimeName = "auto"
    step_timeout: float = DEFAULT_STEP_TIMEOUT


@dataclass(frozen=True)
class ErrorEffect:
    """Reply with an error instead of forwarding: `-MESSAGE`."""

    message: str = "ERR injected fault"


@dataclass(frozen=True)
class ResponseEffect:
    """Reply with a value instead of forwarding: null, a string or an integer."""

    value: str | int | None = None


@dataclass(frozen=True)
class DelayEffect:
    """Forward after `seconds`; later rules still apply."""

    seconds: float


@dataclass(frozen=True)
class DropEffect:
    """Do not answer: close (default), blackhole, or lose_reply (forward, then close)."""

    mode: Literal["close", "blackhole", "lose_reply"] = "close"


@dataclass(frozen=True)
class DownEffect:
    """The interface is unreachable while the fault is active."""


Effect = ErrorEffect | ResponseEffect | DelayEffect | DropEffect | DownEffect


@dataclass(frozen=True)
class Rule:
    """One fault rule: what it matches, what it does, and its modifiers."""

    effect: Effect
    loc: Location
    command: str | None = None  # glob on the command name, case-insensitive
    key: str | None = None  # glob on the key arguments
    probability: float = 1.0
    after: int = 0  # skip the first N matches
    times: int | None = None  # apply to at most N matches
    for_seconds: float | None = None  # active only this long after switch-on
    client: str | None = None  # glob on the connection's client name

    @property
    def kind(self) -> str:
        return {
            ErrorEffect: "error",
            ResponseEffect: "response",
            DelayEffect: "delay",
            DropEffect: "drop",
            DownEffect: "down",
        }[type(self.effect)]

    def describe(self) -> str:
        """A short human description, e.g. `error(command=SET, message=READONLY)`."""
        parts = []
        if self.command is not None:
            parts.append(f"command={self.command}")
        if self.key is not None:
            parts.append(f"key={self.key}")
        eff = self.effect
        if isinstance(eff, ErrorEffect):
            parts.append(f"message={eff.message}")
        elif isinstance(eff, ResponseEffect):
            parts.append(f"value={eff.value!r}")
        elif isinstance(eff, DelayEffect):
            parts.append(f"delay={eff.seconds * 1000:g}ms")
        elif isinstance(eff, DropEffect) and eff.mode != "close":
            parts.append(f"mode={eff.mode}")
        if self.probability != 1.0:
            parts.append(f"probability={self.probability:g}")
        if self.after:
            parts.append(f"after={self.after}")
        if self.times is not None:
            parts.append(f"times={self.times}")
        if self.for_seconds is not None:
            parts.append(f"for={self.for_seconds:g}s")
        if self.client is not None:
            parts.append(f"client={self.client}")
        return f"{self.kind}({', '.join(parts)})"


@dataclass(frozen=True)
class Fault:
    """A named fault assumption: rules applied by the proxy in front of one interface."""

    name: str
    service: str
    interface: str
    rules: tuple[Rule, ...]
    loc: Location
    description: str | None = None

    @property
    def target(self) -> str:
        return f"{self.service}.{self.interface}"


@dataclass(frozen=True)
class Scenario:
    """Steps plus expectations."""

    name: str
    steps: tuple[Step, ...]
    expect: tuple[Expectation, ...]
    loc: Location
    description: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaultScenario:
    """A scenario's steps run with faults active, judged by its own expectations."""

    name: str
    scenario: str
    faults: tuple[str, ...]
    expect: tuple[Expectation, ...]
    loc: Location
    description: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    """One file with everything it declares or includes."""

    path: Path  # as given (relative to the cwd when it was given relative)
    services: dict[str, Service]
    seeds: dict[str, tuple[Step, ...]]
    faults: dict[str, Fault]
    scenarios: dict[str, Scenario]
    fault_scenarios: dict[str, FaultScenario]

    @property
    def runnable(self) -> bool:
        """A file without scenarios is a library: validated, includable, not run."""
        return bool(self.scenarios or self.fault_scenarios)

    @property
    def display_path(self) -> str:
        return str(self.path)
