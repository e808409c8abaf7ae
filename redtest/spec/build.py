"""From schema-valid documents to a Suite: includes, references, expressions.

Everything a JSON Schema cannot check is checked here, and every problem is
collected (not just the first) so one `redtest validate` shows them all.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redtest import expr
from redtest.durations import parse_duration
from redtest.errors import Location, SpecError, SpecErrors, UsageError
from redtest.spec import model, templates
from redtest.spec.load import Document, PathKey, file_problem, load_document
from redtest.spec.methods import METHODS, argument_problems, timeout_problem
from redtest.spec.schema import check_documents

_SECTIONS = ("services", "seeds", "faults")
_EFFECTS = ("error", "response", "delay", "drop", "down")


def suggest(name: str, choices: Iterable[str]) -> str:
    """` — did you mean 'x'?` when a close name exists, else ''."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {match[0]!r}?" if match else ""


def _display(path: Path) -> str:
    """How a file is named in messages: as given, with `a/../b` folded."""
    return os.path.normpath(str(path))


class _LaterNames(Mapping[str, str]):
    """The `as:` names of steps after steps[index] that are not given yet, each with why a
    step's expect cannot use it; looked up when asked, from the live `given` names."""

    def __init__(self, later: dict[str, int], given: Collection[str], index: int) -> None:
        self._later, self._given, self._index = later, given, index

    def __getitem__(self, name: str) -> str:
        j = self._later.get(name)
        if j is None or j <= self._index or name in self._given:
            raise KeyError(name)
        return (
            f"is the name of a later step (steps[{j}]): a step's expect sees its own "
            "response (r) and the steps before it"
        )

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._later if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class _Origin:
    """A named definition and the document it came from."""

    doc: Document
    data: Any
    loc: Location


@dataclass
class _Context:
    root: Document
    docs: list[Document]
    errors: list[SpecError] = field(default_factory=list)
    defs: dict[str, dict[str, _Origin]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def error(self, message: str, loc: Location) -> None:
        self.errors.append(SpecError(message, loc))


@dataclass
class DocumentCache:
    """Files loaded and schema-checked once per command, however many suites include them.

    Without it every suite parsed its includes again: 300 suites that include one
    common file with a large seed parsed it 300 times, and an include chain cost the
    square of its length.
    """

    loaded: dict[tuple[Path, str], Document | SpecError] = field(default_factory=dict)
    schema_errors: dict[int, list[SpecError]] = field(default_factory=dict)  # by id(document)

    def load(self, file: Path, display: str) -> Document:
        key = (file.resolve(), str(file))  # the same text names it the same way in messages
        if key not in self.loaded:
            try:
                self.loaded[key] = load_document(file, display)
            except SpecError as exc:
                self.loaded[key] = exc
        found = self.loaded[key]
        if isinstance(found, SpecError):
            raise found
        return found


def collect_documents(path: Path, cache: DocumentCache | None = None) -> list[Document]:
    """The file, then everything it includes, each file once, every file after the files
    it includes (depth first, post-order): merging in this order reports a name defined
    twice at the definition read second, the outer of two nested includes."""
    cache = cache if cache is not None else DocumentCache()
    docs: list[Document] = []
    seen: dict[Path, Document] = {}
    errors: list[SpecError] = []

    # An explicit stack, not recursion: a chain of a thousand includes is no reason for a
    # RecursionError. Each entry: the file's document, the chain of files from the suite
    # down to it (real paths), and its includes still to visit, the next one last.
    stack: list[tuple[Document, tuple[Path, ...], list[tuple[Path, Location]]]] = []

    def enter(file: Path, chain: tuple[Path, ...], at: Location | None) -> None:
        display = _display(file)
        real = file.resolve()
        if real in chain:
            assert at is not None
            errors.append(SpecError(f"include cycle: {display} includes itself through its includes", at))
            return
        if real in seen:
            return
        problem = file_problem(file, display, at)  # missing, a folder, a FIFO, a device
        if problem is not None:
            errors.append(problem)
            return
        doc = cache.load(file, display)
        seen[real] = doc
        includes = doc.data.get("include") if isinstance(doc.data, dict) else None
        todo = [
            (file.parent / inc, doc.positions.of(("include", i)))
            for i, inc in enumerate(includes if isinstance(includes, list) else [])
            # the schema reports the others (a "" path would read as the folder)
            if isinstance(inc, str) and inc
        ]
        stack.append((doc, (*chain, real), todo[::-1]))

    enter(path, (), None)
    while stack:
        doc, chain, todo = stack[-1]
        if todo:
            target, at = todo.pop()
            enter(target, chain, at)
        else:
            stack.pop()
            docs.append(doc)  # after everything it includes
    if errors:
        raise SpecErrors(errors) if len(errors) > 1 else errors[0]
    return [docs[-1], *docs[:-1]]  # the file itself first


def load_suite(path: Path, cache: DocumentCache | None = None) -> model.Suite:
    """Load, validate and build one suite file; raises SpecError/SpecErrors.

    Pass one `cache` for all the suites of a command, so shared includes load once.
    """
    cache = cache if cache is not None else DocumentCache()
    docs = collect_documents(path, cache)
    check_documents(docs, cache.schema_errors)
    ctx = _Context(docs[0], docs)
    _merge_definitions(ctx)
    suite = _Builder(ctx).build()
    if ctx.errors:
        if len(ctx.errors) == 1:
            raise ctx.errors[0]
        raise SpecErrors(ctx.errors)
    return suite


def find_suite_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders searched recursively for *.yaml / *.yml, sorted. Hidden
    files and folders (`.github/`, `.venv/`) are not searched, as pytest does not: run
    from a project's root, their YAML is not redtest's."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.suffix in (".yaml", ".yml")
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                    and p.is_file()
                )
            )
        else:
            found.append(path)
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def load_suites(paths: Iterable[Path]) -> list[model.Suite]:
    """Every suite under `paths`, with all errors of all files collected."""
    files = find_suite_files(paths)
    suites: list[model.Suite] = []
    errors: list[SpecError] = []
    cache = DocumentCache()
    for file in files:
        if not file.exists():
            raise UsageError(f"no such file or folder: {file}")
        try:
            suites.append(load_suite(file, cache))
        except SpecErrors as many:
            errors.extend(many.errors)
        except SpecError as one:
            errors.append(one)
    if errors:
        unique = list({str(e): e for e in errors}.values())
        raise SpecErrors(unique) if len(unique) > 1 else unique[0]
    return suites


def _merge_definitions(ctx: _Context) -> None:
    for section in _SECTIONS:
        merged: dict[str, _Origin] = {}
        # Included files first, so a clash is reported where the including file repeats a name.
        for doc in [*ctx.docs[1:], ctx.docs[0]]:
            items = doc.data.get(section) or {}
            for name, data in items.items():
                loc = doc.positions.key_of((section, name))
                if name in merged:
                    first = merged[name].loc
                    ctx.error(
                        f"{section[:-1]} {name!r} is defined twice: here and at {first}", loc
                    )
                    continue
                merged[name] = _Origin(doc, data, loc)
        ctx.defs[section] = merged


class _Builder:
    """Builds model objects; records problems on the context instead of stopping."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.services: dict[str, model.Service] = {}
        self.seeds: dict[str, tuple[model.Step, ...]] = {}

    # ---------------------------------------------------------------- services

    def build(self) -> model.Suite:
        ctx = self.ctx
        for name, origin in ctx.defs["services"].items():
            self.services[name] = self._service(name, origin)
        for name, svc in self.services.items():
            # a service whose address a template uses is started first, like depends_on
            named = (r.service for r in templates.service_refs(svc))
            implicit = tuple(dict.fromkeys(
                d for d in named if d in self.services and d != name and d not in svc.depends_on
            ))
            if implicit:
                self.services[name] = replace(svc, depends_on=svc.depends_on + implicit)
        self._check_depends_on()
        self.scope_services = {
            name: {i.name: i.protocol for i in svc.interfaces.values()}
            for name, svc in self.services.items()
        }
        for name, origin in ctx.defs["seeds"].items():
            self.seeds[name] = self._steps(origin.doc, ("seeds", name), origin.data, seed=True)
        # Resolve each service's seed now that seeds exist.
        for name, svc in list(self.services.items()):
            self.services[name] = self._resolve_seed(svc, ctx.defs["services"][name])
        faults = {
            name: f
            for name, origin in ctx.defs["faults"].items()
            if (f := self._fault(name, origin)) is not None
        }
        root = ctx.root
        scenarios: dict[str, model.Scenario] = {}
        for name, data in (root.data.get("scenarios") or {}).items():
            scenarios[name] = self._scenario(root, name, data)
        fault_scenarios: dict[str, model.FaultScenario] = {}
        for name, data in (root.data.get("fault_scenarios") or {}).items():
            fs = self._fault_scenario(root, name, data, scenarios, faults)
            if fs is not None:
                fault_scenarios[name] = fs
        both = set(scenarios) & set(fault_scenarios)
        for name in sorted(both):
            ctx.error(
                f"{name!r} names both a scenario and a fault scenario; test names must be unique",
                root.positions.key_of(("fault_scenarios", name)),
            )
        return model.Suite(
            path=root.path,
            services=self.services,
            seeds=self.seeds,
            faults=faults,
            scenarios=scenarios,
            fault_scenarios=fault_scenarios,
        )

    def _duration(self, doc: Document, path: PathKey, value: Any, default: float) -> float:
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.ctx.error(str(exc), doc.positions.of(path))
            return default

    def _timeout(self, doc: Document, path: PathKey, value: Any, default: float) -> float:
        """A duration that must be more than zero: with a zero timeout an HTTP call
        crashes the client library and a Redis connect fails with EINPROGRESS."""
        if value is None:
            return default
        problem = timeout_problem(value)
        if problem is not None:
            self.ctx.error(problem, doc.positions.of(path))
            return default
        return parse_duration(value)

    def _service(self, name: str, origin: _Origin) -> model.Service:
        doc, data = origin.doc, origin.data
        base = ("services", name)
        interfaces: dict[str, model.Interface] = {}
        for iname, idata in (data.get("interfaces") or {}).items():
            ipath = (*base, "interfaces", iname)
            protocol = idata["protocol"]
            port = idata.get("port")
            if protocol == "redis" and port is None:
                port = 6379
            if protocol == "sqlite" and not idata.get("path"):
                self.ctx.error(
                    f"sqlite interface {name}.{iname} needs a 'path' to the database file",
                    doc.positions.key_of(ipath),
                )
            path_value = idata.get("path")
            if path_value is not None:
                self._check_templates(doc, (*ipath, "path"), path_value, name)
            interfaces[iname] = model.Interface(
                iname, protocol, port, path_value, doc.positions.key_of(ipath)
            )
        protocols = {i.protocol for i in interfaces.values()}
        kind: model.ServiceKind
        if data.get("command"):
            kind = "process"
            if data.get("image"):
                # docker compose runs a command inside its image; here a command is a
                # process on this machine (SPEC §2), so the image would be silently ignored
                self.ctx.error(
                    f"service {name!r} has both a command and an image: a command runs as a "
                    "process on this machine, and an image with no command runs as a container "
                    "(a command inside an image is not supported); remove one of them",
                    doc.positions.of((*base, "image")),
                )
            if "redis" in protocols:
                self.ctx.error(
                    f"service {name!r} has a command and a redis interface: declare the Redis "
                    "server as its own service and point the application at it with ${...url}",
                    origin.loc,
                )
        elif "redis" in protocols:
            kind = "redis"
        elif data.get("image"):
            kind = "container"
        elif protocols and protocols <= {"sqlite"}:
            kind = "sqlite"
        else:
            kind = "redis"
            self.ctx.error(
                f"service {name!r} declares nothing to start: give it a redis interface, "
                "a command, an image, or sqlite interfaces",
                origin.loc,
            )
        health = None
        if (hc := data.get("healthcheck")) is not None:
            hpath = (*base, "healthcheck")
            hkind = next(k for k in ("tcp", "redis", "http") if k in hc)
            target = str(hc[hkind])
            self._check_templates(doc, (*hpath, hkind), target, name)
            if hkind in ("redis", "http") and hkind not in protocols:
                # The runtimes would skip such a check (a Redis service) or fail only
                # at start-up (a process); it is a mistake in the file either way.
                article = "an" if hkind == "http" else "a"
                self.ctx.error(
                    f"service {name!r} has {article} {hkind} healthcheck but no {hkind} interface "
                    f"to check (its interfaces: {', '.join(sorted(interfaces)) or 'none'})",
                    doc.positions.key_of(hpath),
                )
            health = model.Healthcheck(
                hkind,  # type: ignore[arg-type]
                target,
                self._timeout(doc, (*hpath, "timeout"), hc.get("timeout"), model.DEFAULT_HEALTH_TIMEOUT),
                doc.positions.key_of(hpath),
            )
        command = tuple(data["command"]) if data.get("command") else None
        for i, part in enumerate(command or ()):
            self._check_templates(doc, (*base, "command", i), part, name)
        env = {k: _env_text(v) for k, v in (data.get("env") or {}).items()}
        for key, value in env.items():
            self._check_templates(doc, (*base, "env", key), value, name)
        if data.get("workdir") is not None:
            self._check_templates(doc, (*base, "workdir"), data["workdir"], name)
        return model.Service(
            name=name,
            kind=kind,
            interfaces=interfaces,
            loc=origin.loc,
            base_dir=doc.base_dir,
            image=data.get("image") or (model.DEFAULT_REDIS_IMAGE if kind == "redis" else None),
            command=command,
            env=env,
            workdir=data.get("workdir"),
            healthcheck=health,
            depends_on=tuple(data.get("depends_on") or ()),
            reuse=bool(data.get("reuse", False)),
            runtime=data.get("runtime", "auto"),
            step_timeout=self._timeout(doc, (*base, "timeout"), data.get("timeout"), model.DEFAULT_STEP_TIMEOUT),
        )

    def _check_templates(self, doc: Document, path: PathKey, text: str, owner: str) -> None:
        loc = doc.positions.of(path)
        try:
            refs = templates.parse(text)
        except ValueError as exc:
            self.ctx.error(str(exc), loc)
            return
        defs = self.ctx.defs["services"]
        for ref in refs:
            if ref.env is not None:
                if ref.env not in self.ctx.env:
                    self.ctx.error(
                        f"${{{ref.text}}}: environment variable {ref.env} is not set", loc
                    )
                continue
            if ref.service == owner:
                self.ctx.error(
                    f"${{{ref.text}}}: a service names its own interfaces as "
                    f"${{self.{ref.interface}.{ref.attribute or 'addr'}}}",
                    loc,
                )
                continue
            service = owner if ref.service == "self" else ref.service
            assert service is not None
            if service not in defs:
                self.ctx.error(
                    f"${{{ref.text}}}: unknown service {service!r}{suggest(service, defs)}", loc
                )
                continue
            ifaces = defs[service].data.get("interfaces") or {}
            if ref.interface not in ifaces:
                self.ctx.error(
                    f"${{{ref.text}}}: service {service!r} has no interface {ref.interface!r}"
                    f"{suggest(ref.interface or '', ifaces)}",
                    loc,
                )
                continue
            iface = ifaces[ref.interface]
            if ref.service == "self" and isinstance(iface, dict) and iface.get("protocol") == "sqlite":
                self.ctx.error(
                    f"${{{ref.text}}}: {ref.interface!r} is a sqlite interface, a file with no "
                    "port to listen on; write the file's path here as in its `path`",
                    loc,
                )

    def _check_depends_on(self) -> None:
        for name, svc in self.services.items():
            origin = self.ctx.defs["services"][name]
            for i, dep in enumerate(svc.depends_on):
                if dep not in self.services:
                    self.ctx.error(
                        f"service {name!r} depends on unknown service {dep!r}{suggest(dep, self.services)}",
                        origin.doc.positions.of(("services", name, "depends_on", i)),
                    )
        # Cycles: depth-first search over the known edges, with an explicit stack (a
        # thousand services in a chain are no reason for a RecursionError).
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in self.services:
            if state.get(root):
                continue
            state[root] = 1
            path = [root]
            todo = [iter(self.services[root].depends_on)]
            while todo:
                dep = next((d for d in todo[-1] if d in self.services), None)
                if dep is None:
                    state[path.pop()] = 2
                    todo.pop()
                elif state.get(dep) == 1:
                    cycle = " → ".join([*path[path.index(dep):], dep])
                    self.ctx.error(
                        f"depends_on cycle: {cycle} (a service whose address a template uses "
                        "counts as a dependency)",
                        self.services[dep].loc,
                    )
                elif state.get(dep) is None:
                    state[dep] = 1
                    path.append(dep)
                    todo.append(iter(self.services[dep].depends_on))

    def _resolve_seed(self, svc: model.Service, origin: _Origin) -> model.Service:
        seed = origin.data.get("seed")
        if seed is None:
            return svc

        if isinstance(seed, str):
            if seed not in self.seeds:
                self.ctx.error(
                    f"service {svc.name!r} uses unknown seed {seed!r}{suggest(seed, self.seeds)}",
                    origin.doc.positions.of(("services", svc.name, "seed")),
                )
                return svc
            return replace(svc, seed=self.seeds[seed], seed_name=seed)
        steps = self._steps(origin.doc, ("services", svc.name, "seed"), seed, seed=True)
        return replace(svc, seed=steps, seed_name=None)

    # ------------------------------------------------------------------- steps

    def _steps(
        self, doc: Document, path: PathKey, items: list[Any], *, seed: bool
    ) -> tuple[model.Step, ...]:
        steps: list[model.Step] = []
        names: dict[str, tuple[int, Location]] = {}  # as-name -> (step index, where it was given)
        # a step's expect cannot use the names of the steps after it: say so, not "unknown"
        later_names = {
            item["as"]: i for i, item in enumerate(items) if isinstance(item.get("as"), str)
        }
        for i, item in enumerate(items):
            as_name = item.get("as")
            if as_name is not None and as_name in names:
                # The later step would silently win in expressions; the earlier one
                # would be unreachable by name (docs/format.md, "Names").
                first, where = names[as_name]
                self.ctx.error(
                    f"'as: {as_name}' is already the name of steps[{first}] (at {where}); "
                    "give each step its own name",
                    doc.positions.of((*path, i, "as")),
                )
            elif as_name is not None:
                names[as_name] = (i, doc.positions.of((*path, i, "as")))
            # Views of the names as they stand now, used at once: copies made for each step
            # cost the square of a scenario's length (10,000 named steps took 20 s).
            later = _LaterNames(later_names, names, i)
            step = self._step(doc, (*path, i), item, names.keys(), seed, later)
            if step is not None:
                steps.append(step)
        return tuple(steps)

    def _step(
        self, doc: Document, path: PathKey, item: dict[str, Any], names: Collection[str], seed: bool,
        later: Mapping[str, str] | None = None,
    ) -> model.Step | None:
        pos = doc.positions
        loc = pos.of(path)
        as_name = item.get("as")
        if as_name is not None and as_name in ("r", "steps"):
            self.ctx.error(f"'as: {as_name}' would hide the built-in name {as_name!r}", pos.of((*path, "as")))
        if as_name is not None and as_name in self.services:
            self.ctx.error(f"'as: {as_name}' would hide the service {as_name!r}", pos.of((*path, "as")))
        expect: tuple[model.Expectation, ...] = ()
        if item.get("expect"):
            if seed:
                self.ctx.error("seed steps cannot have 'expect'", pos.key_of((*path, "expect")))
            else:
                expect = self._expectations(doc, (*path, "expect"), item["expect"], names, later)
        allow_error = bool(item.get("allow_error", False))
        if seed and allow_error:
            # A failed seed step makes the test an error (docs/format.md): a seed that
            # tolerated its own failures would start tests from data nobody checked.
            self.ctx.error(
                "seed steps cannot have 'allow_error': a seed must succeed, or the test it "
                "prepares is an error",
                pos.key_of((*path, "allow_error")),
            )
            allow_error = False
        if "sleep" in item:
            seconds = self._duration(doc, (*path, "sleep"), item["sleep"], 0.0)
            return model.Sleep(seconds, loc, as_name, expect, allow_error)
        call_key = next(k for k in item if k.count(".") == 2)
        service, interface, method = call_key.split(".")
        key_loc = pos.key_of((*path, call_key))
        args = item[call_key] or {}
        if not isinstance(args, dict):
            self.ctx.error(f"the arguments of {call_key} must be a mapping", key_loc)
            return None
        if not self._check_call(service, interface, method, args, key_loc, doc, (*path, call_key)):
            return None
        timeout = None
        if "timeout" in item:
            timeout = self._timeout(doc, (*path, "timeout"), item["timeout"], model.DEFAULT_STEP_TIMEOUT)
        return model.Call(service, interface, method, dict(args), key_loc, as_name, expect, allow_error, timeout)

    def _check_call(
        self, service: str, interface: str, method: str, args: dict[str, Any],
        loc: Location, doc: Document, path: PathKey,
    ) -> bool:
        if service not in self.services:
            self.ctx.error(f"unknown service {service!r}{suggest(service, self.services)}", loc)
            return False
        svc = self.services[service]
        if interface not in svc.interfaces:
            self.ctx.error(
                f"service {service!r} has no interface {interface!r}{suggest(interface, svc.interfaces)}",
                loc,
            )
            return False
        protocol = svc.interfaces[interface].protocol
        methods = METHODS[protocol]
        if method not in methods:
            hint = suggest(method, methods) or f" (methods: {', '.join(methods)})"
            self.ctx.error(f"{protocol} interface {service}.{interface} has no method {method!r}{hint}", loc)
            return False
        spec = methods[method]
        ok = True
        for arg in args:
            if arg not in spec.arguments:
                hint = suggest(arg, spec.arguments) or (
                    f" (it takes {', '.join(spec.arguments)})" if spec.arguments else " (it takes none)"
                )
                self.ctx.error(f"{service}.{interface}.{method} has no argument {arg!r}{hint}",
                               doc.positions.key_of((*path, arg)))
                ok = False
        for arg in spec.required:
            if arg not in args:
                self.ctx.error(f"{service}.{interface}.{method} needs the argument {arg!r}", loc)
                ok = False
        known = {k: v for k, v in args.items() if k in spec.arguments}
        for where, message in argument_problems(protocol, method, known, f"{service}.{interface}.{method}"):
            self.ctx.error(message, doc.positions.of((*path, *where)))
            ok = False
        return ok

    # ------------------------------------------------------------ expressions

    def _scope(self, names: Collection[str], later: Mapping[str, str] | None = None) -> expr.Scope:
        return expr.Scope(
            services=self.scope_services,
            names=names,  # a view of the names given so far, not a copy
            unavailable=later if later is not None else {},
        )

    def _expectations(
        self, doc: Document, path: PathKey, items: list[Any], names: Collection[str],
        later: Mapping[str, str] | None = None,
    ) -> tuple[model.Expectation, ...]:
        out = []
        scope = self._scope(names, later)
        for i, source in enumerate(items):
            loc = doc.positions.text_start((*path, i))
            try:
                chars = doc.positions.char_positions((*path, i))
                compiled = expr.compile_expression(source, loc, scope, chars)
            except SpecError as exc:
                self.ctx.errors.append(exc)
                continue
            out.append(model.Expectation(source, loc, compiled))
        return tuple(out)

    # ------------------------------------------------------------------ faults

    def _fault(self, name: str, origin: _Origin) -> model.Fault | None:
        doc, data = origin.doc, origin.data
        target = data["target"]
        tloc = doc.positions.of(("faults", name, "target"))
        service, interface = target.split(".")
        svc = self.services.get(service)
        if svc is None:
            self.ctx.error(f"fault {name!r} targets unknown service {service!r}{suggest(service, self.services)}", tloc)
            return None
        iface = svc.interfaces.get(interface)
        if iface is None:
            self.ctx.error(
                f"fault {name!r} targets {target}, but {service!r} has no interface {interface!r}"
                f"{suggest(interface, svc.interfaces)}",
                tloc,
            )
            return None
        if iface.protocol != "redis":
            self.ctx.error(f"fault {name!r} targets {target}, a {iface.protocol} interface; faults apply to redis interfaces", tloc)
            return None
        rules = []
        for i, rdata in enumerate(data["rules"]):
            rule = self._rule(doc, ("faults", name, "rules", i), rdata)
            if rule is not None:
                rules.append(rule)
        return model.Fault(name, service, interface, tuple(rules), origin.loc, data.get("description"))

    def _rule(self, doc: Document, path: PathKey, data: dict[str, Any]) -> model.Rule | None:
        kind = next(k for k in _EFFECTS if k in data)
        body = data[kind] or {}
        bpath = (*path, kind)
        effect: model.Effect
        if kind == "error":
            effect = model.ErrorEffect(body.get("message", "ERR injected fault"))
        elif kind == "response":
            effect = model.ResponseEffect(body.get("value"))
        elif kind == "delay":
            effect = model.DelayEffect(self._duration(doc, (*bpath, "delay"), body.get("delay"), 0.0))
        elif kind == "drop":
            effect = model.DropEffect(body.get("mode", "close"))
        else:
            effect = model.DownEffect()
        for_seconds = None
        if body.get("for") is not None:
            for_seconds = self._duration(doc, (*bpath, "for"), body["for"], 0.0)
        for glob_key in ("command", "key", "client"):
            value = body.get(glob_key)
            if value is not None and not str(value).strip():
                self.ctx.error(f"{glob_key} pattern is empty", doc.positions.of((*bpath, glob_key)))
        return model.Rule(
            effect=effect,
            loc=doc.positions.key_of(bpath),
            command=body.get("command"),
            key=body.get("key"),
            probability=float(body.get("probability", 1.0)),
            after=int(body.get("after", 0)),
            times=body.get("times"),
            for_seconds=for_seconds,
            client=body.get("client"),
        )

    # --------------------------------------------------------------- scenarios

    def _scenario(self, doc: Document, name: str, data: dict[str, Any]) -> model.Scenario:
        path = ("scenarios", name)
        steps = self._steps(doc, (*path, "steps"), data["steps"], seed=False)
        names = {s.as_name for s in steps if s.as_name}
        expect = self._expectations(doc, (*path, "expect"), data.get("expect") or [], names)
        return model.Scenario(
            name, steps, expect, doc.positions.key_of(path),
            data.get("description"), tuple(data.get("tags") or ()),
        )

    def _fault_scenario(
        self, doc: Document, name: str, data: dict[str, Any],
        scenarios: dict[str, model.Scenario], faults: dict[str, model.Fault],
    ) -> model.FaultScenario | None:
        path = ("fault_scenarios", name)
        pos = doc.positions
        ok = True
        scenario = scenarios.get(data["scenario"])
        if scenario is None:
            self.ctx.error(
                f"fault scenario {name!r} refers to unknown scenario {data['scenario']!r}"
                f"{suggest(data['scenario'], scenarios)}",
                pos.of((*path, "scenario")),
            )
            ok = False
        fault_names = data["faults"] if isinstance(data["faults"], list) else [data["faults"]]
        defined = self.ctx.defs["faults"]
        for i, fname in enumerate(fault_names):
            if fname not in defined:
                where = (*path, "faults", i) if isinstance(data["faults"], list) else (*path, "faults")
                self.ctx.error(
                    f"fault scenario {name!r} uses unknown fault {fname!r}{suggest(fname, defined)}",
                    pos.of(where),
                )
                ok = False
        names = {s.as_name for s in scenario.steps if s.as_name} if scenario else set()
        expect = self._expectations(doc, (*path, "expect"), data.get("expect") or [], names)
        if not ok:
            return None
        return model.FaultScenario(
            name, data["scenario"], tuple(fault_names), expect, pos.key_of(path),
            data.get("description"), tuple(data.get("tags") or ()),
        )


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
