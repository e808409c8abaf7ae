"""Results of a run and the events reporters listen to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from redtest.clients.response import Response
from redtest.errors import Location

Status = Literal["passed", "failed", "error", "skipped"]
TestKind = Literal["scenario", "fault_scenario", "matrix"]


@dataclass
class StepResult:
    """One executed step: what was called, with what, and the response."""

    index: int
    label: str  # "cache.main.set" or "sleep"
    args: dict[str, Any]
    response: Response
    loc: Location
    as_name: str | None = None
    assertions: list[AssertionResult] = field(default_factory=list)  # the step's own expect


@dataclass
class AssertionResult:
    """One evaluated expectation."""

    source: str  # the expression as written
    loc: Location
    passed: bool
    detail: str | None = None  # "expected 0, got 3" when it failed
    message: str | None = None  # the user's msg argument
    error: str | None = None  # the expression raised (e.g. KeyError) instead of deciding


@dataclass
class RuleHits:
    """How often one rule of an active fault fired during a test."""

    rule: str  # Rule.describe()
    hits: int


@dataclass
class FaultActivation:
    """A fault that was active during a test."""

    name: str
    target: str  # "cache.main"
    rules: list[RuleHits]


@dataclass
class PlannedTest:
    """A test the runner will run; `id` is `file::name`."""

    id: str
    name: str  # scenario name, fault scenario name, or "scenario[fault]" for matrix cells
    file: str
    kind: TestKind
    scenario: str  # the scenario whose steps run
    faults: tuple[str, ...]  # fault names active during the steps
    loc: Location
    description: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class TestResult:
    """The outcome of one test."""

    test: PlannedTest
    status: Status
    duration_s: float
    steps: list[StepResult] = field(default_factory=list)
    assertions: list[AssertionResult] = field(default_factory=list)
    faults: list[FaultActivation] = field(default_factory=list)
    error: str | None = None  # infrastructure error (status "error") or the failure summary
    skip_reason: str | None = None
    output: str | None = None  # captured output of application services, for failures


@dataclass
class ServiceInfo:
    """How a service was served during the run."""

    name: str
    kind: str  # redis | process | container | sqlite
    runtime: str  # docker | local | embedded | process | container | none
    endpoints: dict[str, str]  # interface -> "host:port" of the server (or the file)
    proxies: dict[str, str] = field(default_factory=dict)  # redis interface -> proxy "host:port"
    detail: str | None = None  # container id, pid, binary path
    file: str | None = None  # the suite file that declared it (each file starts its own)


@dataclass
class RunResult:
    """Everything a reporter needs at the end."""

    version: str
    started_at: str  # ISO 8601, UTC
    duration_s: float
    random_seed: int
    services: list[ServiceInfo]
    tests: list[TestResult]
    matrix: bool = False

    def count(self, status: Status) -> int:
        return sum(1 for t in self.tests if t.status == status)

    @property
    def passed(self) -> bool:
        return all(t.status in ("passed", "skipped") for t in self.tests)


class Listener(Protocol):
    """Reporters subscribe to these; every method is optional in practice (see BaseListener)."""

    def run_started(self, tests: list[PlannedTest], random_seed: int) -> None: ...
    def services_ready(self, services: list[ServiceInfo]) -> None: ...
    def test_started(self, test: PlannedTest) -> None: ...
    def step_done(self, test: PlannedTest, step: StepResult) -> None: ...
    def test_finished(self, result: TestResult) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class BaseListener:
    """A listener that ignores every event; subclass and override what you need."""

    def run_started(self, tests: list[PlannedTest], random_seed: int) -> None:
        pass

    def services_ready(self, services: list[ServiceInfo]) -> None:
        pass

    def test_started(self, test: PlannedTest) -> None:
        pass

    def step_done(self, test: PlannedTest, step: StepResult) -> None:
        pass

    def test_finished(self, result: TestResult) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass
