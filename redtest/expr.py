"""The safe assertion language (SPEC §7): compile once at load time, evaluate at run time.

An assertion is one Python expression, parsed with `ast` and checked against a whitelist
when the file is loaded (`compile_expression`, which raises SpecError at file:line:col).
`evaluate` walks the checked tree itself — nothing ever reaches `eval` — and at run time
touches only:

- the attributes `data ok error duration_ms status headers` of a Response,
- a service's interfaces and an interface's methods from the method table (`spec/methods.py`),
- a fixed list of read-only str / list / mapping methods, called through the builtin
  type (`str.lower(x)`), never looked up on the object,
- the functions of SPEC §7.

Sizes are bounded so an assertion cannot exhaust memory or CPU (`"a" * 10**10`,
`2 ** 10**10`, `"%999999999d" % 1`): see the limits below. The user-facing description,
with every decision, is docs/expressions.md.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
import operator
import re
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redtest.clients.response import Response
from redtest.errors import Location, SpecError
from redtest.results import AssertionResult
from redtest.spec.methods import EXPRESSION_ALIASES, METHODS, argument_problems, resolve_method

# -- limits ---------------------------------------------------------------------------------

MAX_SOURCE_CHARS = 10_000  # an assertion longer than this is a mistake
MAX_DEPTH = 60  # nesting of the syntax tree; keeps both walkers far from Python's recursion limit
MAX_SEQUENCE = 1_000_000  # elements/characters one `*` or `+` may produce
MAX_ALLOCATED = 4_000_000  # elements/characters all `*`/`+` of one evaluation may produce
MAX_INT_BITS = 65_536  # integers beyond ~19 700 digits are refused
MAX_FORMAT_WIDTH = 1_000  # f-string widths/precisions
MAX_SHOWN = 200  # characters of a value shown in a detail text

# -- what expressions may name ----------------------------------------------------------------

RESPONSE_ATTRIBUTES = frozenset({"data", "ok", "error", "duration_ms", "status", "headers"})

_STR_METHODS = frozenset(
    {"count", "index", "startswith", "endswith", "lower", "upper", "strip", "split"}
)
_SEQUENCE_METHODS = frozenset({"count", "index"})
_MAPPING_METHODS = frozenset({"get", "keys", "values", "items"})
SAFE_METHODS = _STR_METHODS | _SEQUENCE_METHODS | _MAPPING_METHODS
# positional argument count (min, max) and allowed keywords, checked at load time
_METHOD_ARITY: dict[str, tuple[int, int, frozenset[str]]] = {
    "get": (1, 2, frozenset()),
    "keys": (0, 0, frozenset()),
    "values": (0, 0, frozenset()),
    "items": (0, 0, frozenset()),
    "count": (1, 3, frozenset()),
    "index": (1, 3, frozenset()),
    "startswith": (1, 3, frozenset()),
    "endswith": (1, 3, frozenset()),
    "lower": (0, 0, frozenset()),
    "upper": (0, 0, frozenset()),
    "strip": (0, 1, frozenset()),
    "split": (0, 2, frozenset({"sep", "maxsplit"})),
}


@dataclass(frozen=True)
class _Function:
    min_args: int
    max_args: int  # -1: any number
    keywords: frozenset[str] = frozenset()
    assertion: bool = False  # assert_*: only as the whole expression


_MSG = frozenset({"msg"})
FUNCTIONS: dict[str, _Function] = {
    "assert_eq": _Function(2, 3, _MSG, True),
    "assert_ne": _Function(2, 3, _MSG, True),
    "assert_true": _Function(1, 2, _MSG, True),
    "assert_false": _Function(1, 2, _MSG, True),
    "assert_in": _Function(2, 3, _MSG, True),
    "assert_lt": _Function(2, 3, _MSG, True),
    "assert_le": _Function(2, 3, _MSG, True),
    "assert_gt": _Function(2, 3, _MSG, True),
    "assert_ge": _Function(2, 3, _MSG, True),
    "assert_match": _Function(2, 3, _MSG, True),
    "len": _Function(1, 1),
    "int": _Function(0, 2, frozenset({"base"})),
    "float": _Function(0, 1),
    "str": _Function(0, 1),
    "bool": _Function(0, 1),
    "min": _Function(1, -1, frozenset({"default"})),
    "max": _Function(1, -1, frozenset({"default"})),
    "sum": _Function(1, 2, frozenset({"start"})),
    "sorted": _Function(1, 1, frozenset({"reverse"})),
    "any": _Function(1, 1),
    "all": _Function(1, 1),
    "abs": _Function(1, 1),
    "round": _Function(1, 2, frozenset({"ndigits"})),
}

_COMPARE_OPS: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.In: ("in", lambda a, b: a in b),
    ast.NotIn: ("not in", lambda a, b: a not in b),
    ast.Is: ("is", operator.is_),
    ast.IsNot: ("is not", operator.is_not),
}
_BIN_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
# Constructs named in load-time errors.
_REJECTED: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda functions are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "generator expressions are",
    ast.NamedExpr: "assignments (:=) are",
    ast.Await: "await is",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
    ast.Starred: "starred arguments (*x) are",
}
_STATEMENTS: dict[type[ast.AST], str] = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.Assign: "assignments are not allowed",
    ast.AugAssign: "assignments are not allowed",
    ast.AnnAssign: "assignments are not allowed",
    ast.Delete: "`del` statements are not allowed (the redis method is spelled `delete`)",
}


# -- public types ---------------------------------------------------------------------------


ALWAYS_IN_SCOPE = frozenset({"r", "steps"})  # the last response and all of them


@dataclass(frozen=True)
class Scope:
    """What names an expression may use, known at load time."""

    services: Mapping[str, Mapping[str, str]]  # service -> interface -> protocol
    # the `as:` names: a live view is fine, it is only read while compiling (r and steps,
    # ALWAYS_IN_SCOPE, need not be in it)
    names: Collection[str]
    # names that exist but not here, with why (a later step's `as:` in a step's expect)
    unavailable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _InterfaceCall:
    """A checked `service.interface.method(...)` call: argument names for the positionals."""

    service: str
    interface: str
    method: str  # canonical (methods.py) name, e.g. "del"
    python_name: str  # as written, e.g. "delete"
    positional: tuple[str, ...]


@dataclass(frozen=True)
class CompiledExpression:
    """A checked assertion, ready to evaluate any number of times."""

    source: str
    loc: Location
    tree: ast.expr = field(repr=False, compare=False)
    names: frozenset[str] = frozenset()  # scope names and services it refers to
    # checked interface calls by the call node's span (stable across copy/pickle, unlike id())
    _calls: Mapping[tuple[int, int], _InterfaceCall] = field(
        default_factory=dict, repr=False, compare=False
    )


class ServiceFacade:
    """A service in an expression's namespace: exposes its interfaces and nothing else."""

    __slots__ = ("_name", "_interfaces")

    def __init__(self, name: str, interfaces: Mapping[str, Any]) -> None:
        self._name = name
        self._interfaces = dict(interfaces)

    def interface(self, name: str) -> Any:
        try:
            return self._interfaces[name]
        except KeyError:
            raise _EvalError(f"service {self._name} has no interface {name!r} here") from None

    def __repr__(self) -> str:
        return f"<service {self._name}>"


# -- compiling ------------------------------------------------------------------------------


def compile_expression(
    source: str,
    loc: Location,
    scope: Scope,
    chars: Sequence[tuple[int, int]] | None = None,
) -> CompiledExpression:
    """Parse and check one assertion; raise SpecError at the offending position.

    `chars` gives the file (line, column) of each character of `source` when the YAML
    scalar spread over several lines (block and folded scalars, folded quoted strings).
    """
    if not isinstance(source, str):
        raise SpecError("an assertion must be a string holding one expression", loc)
    if not source.strip():
        raise SpecError("empty assertion", loc)
    if len(source) > MAX_SOURCE_CHARS:
        raise SpecError(f"assertion is longer than {MAX_SOURCE_CHARS} characters", loc)
    locate = _locator(source, loc, chars)
    tree = _parse(source, loc, locate)
    checker = _Checker(source, loc, scope, locate)
    try:
        checker.check(tree, depth=0, top=True)
    except RecursionError:
        raise SpecError("expression is nested too deeply", loc) from None
    return CompiledExpression(
        source=source,
        loc=loc,
        tree=tree,
        names=frozenset(checker.used),
        _calls=checker.calls,
    )


def _prepare(source: str) -> tuple[str, int]:
    """The text `ast` parses and how many leading characters were dropped to get it.

    YAML block scalars bring newlines and indentation; newlines become spaces (so the
    expression is one line, and character offsets are unchanged) and leading blanks are
    dropped (an IndentationError otherwise).
    """
    flat = source.replace("\r", " ").replace("\n", " ")
    text = flat.lstrip()
    return text, len(flat) - len(text)


def _parse_quietly(text: str, mode: str) -> Any:
    """`ast.parse` without Python's warnings: `"\\d+"` (a regex written in a YAML string)
    is an invalid escape to Python, which keeps the backslash but prints a SyntaxWarning
    (3.12+; a DeprecationWarning before), or refuses the text under `-W error`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(text, mode=mode)


def _parse(source: str, loc: Location, locate: Callable[[int], Location]) -> ast.expr:
    text, lead = _prepare(source)
    try:
        return _parse_quietly(text, "eval").body
    except SyntaxError as exc:
        raise _syntax_error(source, loc, exc, lead, locate) from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError("expression is too complex to parse", loc) from None


def _syntax_error(
    source: str, loc: Location, exc: SyntaxError, lead: int, locate: Callable[[int], Location]
) -> SpecError:
    """Name the statement when the user wrote one (`import os`, `x = 1`), else Python's message."""
    try:
        body = _parse_quietly(source.strip(), "exec").body
    except SyntaxError:
        body = []
    if len(body) == 1 and type(body[0]) in _STATEMENTS:
        return SpecError(f"{_STATEMENTS[type(body[0])]}: an assertion is one expression", loc)
    if len(body) == 1 and not isinstance(body[0], ast.Expr):
        return SpecError("statements are not allowed: an assertion is one expression", loc)
    if len(body) > 1:
        return SpecError("an assertion is one expression, not several statements", loc)
    if exc.offset:  # 1-based characters into the parsed text
        offset = lead + exc.offset - 1
    else:  # 0: the text ended too early
        offset = len(source.rstrip())
    where = locate(offset)
    msg = exc.msg or "invalid syntax"
    return SpecError(f"invalid expression: {msg}", where)


def _char_offset(source: str, col_offset: int) -> int:
    """A node's col_offset (UTF-8 bytes into the parsed text) as a character offset into source."""
    text, lead = _prepare(source)
    return lead + len(text.encode("utf-8")[:col_offset].decode("utf-8", "ignore"))


def _locator(
    source: str, loc: Location, chars: Sequence[tuple[int, int]] | None
) -> Callable[[int], Location]:
    """Character offset into `source` -> file position."""
    if not chars or len(chars) != len(source):
        return lambda offset: _position(source, loc, offset)

    def locate(offset: int) -> Location:
        if offset < len(chars):
            line, col = chars[max(0, offset)]
            return Location(loc.file, line, col)
        line, col = chars[-1]  # just past the end
        return Location(loc.file, line, col + 1)

    return locate


def _position(source: str, loc: Location, offset: int) -> Location:
    """The file position of a character offset into `source` (the first line is at loc)."""
    offset = max(0, min(offset, len(source)))
    before = source[:offset]
    line_index = before.count("\n")
    if line_index == 0:
        return Location(loc.file, loc.line, loc.col + offset)
    return Location(loc.file, loc.line + line_index, offset - before.rfind("\n"))


class _Checker:
    """Load-time checks: every node is on the whitelist, every name and method exists."""

    def __init__(
        self, source: str, loc: Location, scope: Scope, locate: Callable[[int], Location]
    ) -> None:
        self.source = source
        self.loc = loc
        self.locate = locate
        self.scope = scope
        self.used: set[str] = set()
        self.calls: dict[tuple[int, int], _InterfaceCall] = {}

    # errors point at the node: its column on the (single, normalised) line
    def error(self, node: ast.AST, message: str) -> SpecError:
        col = getattr(node, "col_offset", None)
        if isinstance(node, ast.Attribute) and node.end_col_offset is not None:
            col = node.end_col_offset - len(node.attr.encode("utf-8"))  # at the name, not at `r`
        where = (
            self.loc
            if col is None
            else self.locate(_char_offset(self.source, col))
        )
        return SpecError(message, where)

    def check(self, node: ast.AST, depth: int, top: bool = False) -> None:
        if depth > MAX_DEPTH:
            raise self.error(node, "expression is nested too deeply")
        if type(node) in _REJECTED:
            raise self.error(node, f"{_REJECTED[type(node)]} not allowed in assertions")
        method = getattr(self, f"check_{type(node).__name__}", None)
        if method is None:
            raise self.error(node, f"{_describe_node(node)} is not allowed in assertions")
        if isinstance(node, ast.Call):
            method(node, depth + 1, top)  # only a call can be an assert_* at the top
        else:
            method(node, depth + 1)

    def check_Constant(self, node: ast.Constant, depth: int) -> None:
        if isinstance(node.value, (bytes, complex)) or node.value is Ellipsis:
            raise self.error(node, f"{type(node.value).__name__} literals are not allowed")

    def check_Name(self, node: ast.Name, depth: int) -> None:
        name = node.id
        if name.startswith("_"):
            raise self.error(node, f"names that begin with '_' are not allowed: {name}")
        if name in self.scope.services:
            raise self.error(
                node,
                f"service {name} can only be used to call a method: {name}.INTERFACE.METHOD(...)",
            )
        if name in ALWAYS_IN_SCOPE or name in self.scope.names:
            self.used.add(name)
            return
        if name in FUNCTIONS:
            raise self.error(node, f"function {name} must be called: {name}(...)")
        if name in self.scope.unavailable:
            raise SpecError(f"'{name}' {self.scope.unavailable[name]}", self.loc)
        candidates = ALWAYS_IN_SCOPE | set(self.scope.names) | set(self.scope.services) | set(FUNCTIONS)
        match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
        hint = f" (did you mean '{match[0]}'?)" if match else ""
        # reported at the assertion itself, as the project's invalid-file corpus expects
        raise SpecError(f"unknown name '{name}'{hint}", self.loc)

    def check_Attribute(self, node: ast.Attribute, depth: int) -> None:
        attr = node.attr
        # forbidden first (outermost), then the inner expression, then unknown names
        if attr.startswith("_"):
            raise self.error(node, f"attributes that begin with '_' are not allowed: .{attr}")
        service = self._service_path(node.value)
        if service is None:
            self.check(node.value, depth)
        if service is not None:
            # `cache.main` or `cache.main.get` without a call
            svc, iface = service
            if iface is None:
                self._interface_protocol(node, svc, attr)
                raise self.error(
                    node,
                    f"{svc}.{attr} must be followed by a method call: {svc}.{attr}.METHOD(...)",
                )
            raise self.error(
                node, f"method {svc}.{iface}.{attr} must be called: {svc}.{iface}.{attr}(...)"
            )
        if attr in SAFE_METHODS and attr not in RESPONSE_ATTRIBUTES:
            raise self.error(node, f"method .{attr} must be called: .{attr}(...)")
        if attr not in RESPONSE_ATTRIBUTES:
            hint = _did_you_mean(attr, RESPONSE_ATTRIBUTES)
            if not hint:
                hint = f' (a mapping\'s values are read with [...]: r.data["{attr}"])'
            raise self.error(node, f"unknown attribute .{attr}{hint}")

    def check_Subscript(self, node: ast.Subscript, depth: int) -> None:
        self.check(node.value, depth)
        self.check(node.slice, depth)

    def check_Slice(self, node: ast.Slice, depth: int) -> None:
        for part in (node.lower, node.upper, node.step):
            if part is not None:
                self.check(part, depth)

    def check_List(self, node: ast.List, depth: int) -> None:
        for elt in node.elts:
            self.check(elt, depth)

    check_Tuple = check_List
    check_Set = check_List

    def check_Dict(self, node: ast.Dict, depth: int) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise self.error(value, "dict unpacking (**x) is not allowed in assertions")
            self.check(key, depth)
            self.check(value, depth)

    def check_BoolOp(self, node: ast.BoolOp, depth: int) -> None:
        for value in node.values:
            self.check(value, depth)

    def check_UnaryOp(self, node: ast.UnaryOp, depth: int) -> None:
        if isinstance(node.op, ast.Invert):
            raise self.error(node, "the operator ~ is not allowed in assertions")
        self.check(node.operand, depth)

    def check_BinOp(self, node: ast.BinOp, depth: int) -> None:
        if type(node.op) not in _BIN_OPS:
            symbol = {
                ast.LShift: "<<",
                ast.RShift: ">>",
                ast.BitAnd: "&",
                ast.BitOr: "|",
                ast.BitXor: "^",
                ast.MatMult: "@",
            }.get(type(node.op), "?")
            raise self.error(node, f"the operator {symbol} is not allowed in assertions")
        self.check(node.left, depth)
        self.check(node.right, depth)

    def check_Compare(self, node: ast.Compare, depth: int) -> None:
        self.check(node.left, depth)
        left = node.left
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            self.check(comparator, depth)
            # Identity of strings and numbers depends on CPython's caches: `"1" is "1"`
            # passes and `"OK" is "OK"` fails for the same data (Python itself warns).
            if isinstance(op, (ast.Is, ast.IsNot)) and not (
                _is_singleton(left) or _is_singleton(comparator)
            ):
                word = "is" if isinstance(op, ast.Is) else "is not"
                raise self.error(
                    comparator,
                    f"'{word}' compares identity, not value: use "
                    f"{'==' if word == 'is' else '!='} ('{word}' only compares with None, "
                    "True or False)",
                )
            left = comparator

    def check_IfExp(self, node: ast.IfExp, depth: int) -> None:
        self.check(node.test, depth)
        self.check(node.body, depth)
        self.check(node.orelse, depth)

    def check_JoinedStr(self, node: ast.JoinedStr, depth: int) -> None:
        for value in node.values:
            if isinstance(value, ast.Constant):
                continue
            if not isinstance(value, ast.FormattedValue):
                raise self.error(value, "unsupported f-string part")
            self.check(value.value, depth)
            spec = value.format_spec
            if spec is None:
                continue
            # A computed format spec (`{x:{w}}`) could ask for any width: constant ones only.
            if not all(isinstance(p, ast.Constant) for p in getattr(spec, "values", [None])):
                raise self.error(value, "f-string format specs must be written out, not computed")
            text = "".join(str(p.value) for p in spec.values)  # type: ignore[attr-defined]
            if any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", text)):
                raise self.error(value, f"f-string widths above {MAX_FORMAT_WIDTH} are not allowed")

    def check_Call(self, node: ast.Call, depth: int, top: bool) -> None:
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(arg, "starred arguments (*x) are not allowed in assertions")
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error(kw.value, "keyword unpacking (**x) is not allowed in assertions")
        func = node.func
        if isinstance(func, ast.Name):
            self._check_function(node, func.id, top)
        elif isinstance(func, ast.Attribute):
            path = self._service_path(func.value)
            if path is not None and func.attr.startswith("_"):
                raise self.error(
                    func, f"attributes that begin with '_' are not allowed: .{func.attr}"
                )
            if path is not None and path[1] is not None:
                self._check_interface_call(node, path[0], path[1], func.attr)
            elif path is not None:
                raise self.error(
                    func,
                    f"{path[0]}.{func.attr} is an interface, not a method: "
                    f"{path[0]}.{func.attr}.METHOD(...)",
                )
            else:
                self._check_method(node, func, depth)
        else:
            if type(func) in _REJECTED:  # `(lambda: 1)()`: name the lambda
                raise self.error(node, f"{_REJECTED[type(func)]} not allowed in assertions")
            raise self.error(node, "only named functions and methods can be called")
        for arg in node.args:
            self.check(arg, depth)
        for kw in node.keywords:
            self.check(kw.value, depth)

    # -- helpers ---------------------------------------------------------------------------

    def _service_path(self, node: ast.expr) -> tuple[str, str | None] | None:
        """(service, None) for `cache`, (service, interface) for `cache.main`, else None."""
        if isinstance(node, ast.Name) and node.id in self.scope.services:
            self.used.add(node.id)
            return node.id, None
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in self.scope.services
        ):
            self._interface_protocol(node, node.value.id, node.attr)
            self.used.add(node.value.id)
            return node.value.id, node.attr
        return None

    def _interface_protocol(self, node: ast.AST, service: str, interface: str) -> str:
        interfaces = self.scope.services[service]
        if interface not in interfaces:
            hint = _did_you_mean(interface, interfaces)
            raise self.error(node, f"service {service} has no interface {interface}{hint}")
        return interfaces[interface]

    def _check_function(self, node: ast.Call, name: str, top: bool) -> None:
        if name.startswith("_"):
            raise self.error(node, f"names that begin with '_' are not allowed: {name}")
        fn = FUNCTIONS.get(name)
        if fn is None:
            if name in ALWAYS_IN_SCOPE or name in self.scope.names:
                raise self.error(node, f"{name} is a value, not a function")
            if name in self.scope.services:
                raise self.error(
                    node, f"{name} is a service: call its methods, {name}.INTERFACE.METHOD(...)"
                )
            hint = _did_you_mean(name, FUNCTIONS)
            raise self.error(node, f"unknown function {name}{hint}")
        if fn.assertion and not top:
            raise self.error(
                node, f"{name}(...) must be the whole assertion, not part of an expression"
            )
        count = len(node.args)
        if count < fn.min_args and not (name == "min" or name == "max"):
            raise self.error(
                node, f"{name}() needs at least {fn.min_args} argument(s), got {count}"
            )
        if name in ("min", "max") and count < 1:
            raise self.error(node, f"{name}() needs at least one argument")
        if fn.max_args >= 0 and count > fn.max_args:
            raise self.error(node, f"{name}() takes at most {fn.max_args} argument(s), got {count}")
        for kw in node.keywords:
            if kw.arg not in fn.keywords:
                allowed = ", ".join(sorted(fn.keywords)) or "none"
                raise self.error(
                    kw.value, f"{name}() has no keyword argument {kw.arg} (allowed: {allowed})"
                )
        if "msg" in {kw.arg for kw in node.keywords} and count == fn.max_args:
            raise self.error(node, f"{name}() got msg twice")

    def _check_method(self, node: ast.Call, func: ast.Attribute, depth: int) -> None:
        name = func.attr
        # forbidden first (outermost), then the inner expression, then unknown methods
        if name.startswith("_"):
            raise self.error(func, f"attributes that begin with '_' are not allowed: .{name}")
        self.check(func.value, depth)
        arity = _METHOD_ARITY.get(name)
        if arity is None:
            hint = _did_you_mean(name, SAFE_METHODS)
            raise self.error(func, f"method .{name}() is not allowed in assertions{hint}")
        low, high, keywords = arity
        count = len(node.args)
        if not low <= count <= high:
            raise self.error(
                func,
                f".{name}() takes {low}–{high} argument(s), got {count}"
                if low != high
                else f".{name}() takes {low} argument(s), got {count}",
            )
        for kw in node.keywords:
            if kw.arg not in keywords:
                raise self.error(kw.value, f".{name}() has no keyword argument {kw.arg}")

    def _check_interface_call(
        self, node: ast.Call, service: str, interface: str, name: str
    ) -> None:
        protocol = self._interface_protocol(node.func, service, interface)
        canonical = resolve_method(protocol, name, in_expression=True)
        aliases = {v: k for k, v in EXPRESSION_ALIASES.get(protocol, {}).items()}
        if canonical is None:
            spelled = [aliases.get(m, m) for m in METHODS.get(protocol, {})]
            hint = _did_you_mean(name, spelled, cutoff=0.7)  # flushall is not lpush
            if not hint and protocol == "redis":
                hint = (
                    f" (other commands go through command: "
                    f'{service}.{interface}.command(cmd="{name.upper()}", args=[...]))'
                )
            raise self.error(
                node.func, f"{protocol} interface {service}.{interface} has no method {name}{hint}"
            )
        method = METHODS[protocol][canonical]
        arguments = method.arguments
        label = f"{service}.{interface}.{name}()"
        if len(node.args) > len(arguments):
            raise self.error(
                node, f"{label} takes at most {len(arguments)} argument(s), got {len(node.args)}"
            )
        given = list(arguments[: len(node.args)])
        for kw in node.keywords:
            assert kw.arg is not None
            if kw.arg not in arguments:
                hint = _did_you_mean(kw.arg, arguments)
                allowed = ", ".join(arguments) or "none"
                raise self.error(
                    kw.value, f"{label} has no argument {kw.arg}{hint} (arguments: {allowed})"
                )
            if kw.arg in given:
                raise self.error(kw.value, f"{label} got argument {kw.arg} twice")
            given.append(kw.arg)
        missing = [a for a in method.required if a not in given]
        if missing:
            raise self.error(node, f"{label} is missing argument(s): {', '.join(missing)}")
        self._check_literal_arguments(node, protocol, canonical, label, arguments)
        self.calls[_span(node)] = _InterfaceCall(
            service, interface, canonical, name, tuple(arguments[: len(node.args)])
        )


    def _check_literal_arguments(
        self, node: ast.Call, protocol: str, method: str, label: str, arguments: tuple[str, ...]
    ) -> None:
        """Argument values written out (`key=None`, `args=[True]`) are checked as a step's
        are, so what the client would refuse at run time fails `validate` instead."""
        nodes = dict(zip(arguments, node.args, strict=False))
        nodes.update({kw.arg: kw.value for kw in node.keywords if kw.arg is not None})
        values: dict[str, Any] = {}
        for name, arg in nodes.items():
            if _is_literal(arg):
                value = ast.literal_eval(arg)
                # the clients take a tuple as they take a list
                values[name] = list(value) if isinstance(value, tuple) else value
        for path, message in argument_problems(protocol, method, values, label):
            raise self.error(nodes[str(path[0])], message)


def _is_singleton(node: ast.expr) -> bool:
    """`None`, `True` or `False` written out: the values `is` can compare reliably."""
    return isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool))


def _span(node: ast.expr) -> tuple[int, int]:
    return node.col_offset, node.end_col_offset or 0


def _did_you_mean(name: str, candidates: Any, cutoff: float = 0.6) -> str:
    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=cutoff)
    return f" (did you mean {match[0]}?)" if match else ""


def _describe_node(node: ast.AST) -> str:
    names = {
        "Call": "this call",
        "Attribute": "attribute access",
        "Starred": "starred arguments",
        "FormattedValue": "f-string part",
    }
    name = type(node).__name__
    return names.get(name, f"the construct {name}")


# -- evaluating -----------------------------------------------------------------------------


class _EvalError(Exception):
    """A readable evaluation failure (the text is what the report shows)."""


def evaluate(compiled: CompiledExpression, namespace: Mapping[str, object]) -> AssertionResult:
    """Evaluate a compiled assertion against names → values (responses, services)."""
    result = AssertionResult(source=compiled.source, loc=compiled.loc, passed=False)
    ev = _Evaluator(compiled, namespace)
    try:
        passed, detail, message = ev.run()
    except _EvalError as exc:
        result.error = ev.with_failed_calls(str(exc))
        return result
    except RecursionError:
        result.error = "expression is nested too deeply"
        return result
    except MemoryError:
        result.error = "out of memory while evaluating the expression"
        return result
    except Exception as exc:  # a bug or an unexpected value: still a readable result
        result.error = ev.with_failed_calls(_exception_text(exc))
        return result
    result.passed = passed
    result.detail = None if passed else ev.with_failed_calls(detail)
    result.message = message
    return result


def _exception_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return f"KeyError: key {show(exc.args[0])} not found"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Evaluator:
    """The tree walker. Every node type here was admitted by _Checker."""

    def __init__(self, compiled: CompiledExpression, namespace: Mapping[str, object]) -> None:
        self.compiled = compiled
        self.source = compiled.source
        self.namespace = namespace
        self.allocated = 0
        # interface calls that answered with an error: a failure names them, or
        # `expected 1, got None` would hide why the call has no data
        self.failed_calls: list[str] = []

    def with_failed_calls(self, text: str | None) -> str | None:
        """`text`, followed by what the interface calls that failed said."""
        if not self.failed_calls:
            return text
        notes = "; ".join(self.failed_calls[:3])
        return f"{text} ({notes})" if text else notes

    def segment(self, node: ast.AST) -> str:
        """The source text of a node, as written."""
        piece = ast.get_source_segment(_prepare(self.source)[0], node)
        return (piece or ast.unparse(node)).strip()

    # -- the top: assert_* or a bare boolean expression --------------------------------------

    def run(self) -> tuple[bool, str | None, str | None]:
        tree = self.compiled.tree
        if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
            fn = FUNCTIONS.get(tree.func.id)
            if fn is not None and fn.assertion:
                return self.run_assertion(tree.func.id, tree)
        passed, text = self.decide(tree)
        return passed, text, None

    def run_assertion(self, name: str, node: ast.Call) -> tuple[bool, str | None, str | None]:
        fn = FUNCTIONS[name]
        arg_nodes = list(node.args)
        msg_node = next((kw.value for kw in node.keywords if kw.arg == "msg"), None)
        if msg_node is None and len(arg_nodes) == fn.max_args:
            msg_node = arg_nodes.pop()
        detail: str | None = None
        if name in ("assert_true", "assert_false"):
            want = name == "assert_true"
            truth, text = self.decide(arg_nodes[0])
            if truth != want:
                detail = text
        else:
            a, b = (self.eval(n) for n in arg_nodes)
            detail = self.check_pair(name, a, b, arg_nodes)
        message = None
        if msg_node is not None:
            value = self.eval(msg_node)
            message = value if isinstance(value, str) else show(value)
        return detail is None, detail, message

    def check_pair(self, name: str, a: Any, b: Any, nodes: list[ast.expr]) -> str | None:
        try:
            if name == "assert_eq":
                return None if a == b else f"expected {show(b)}, got {show(a)}"
            if name == "assert_ne":
                return None if a != b else f"expected anything but {show(b)}, got {show(a)}"
            if name == "assert_in":
                return None if a in b else f"expected {show(a)} in {show(b)}"
            if name == "assert_match":
                if not isinstance(a, str):
                    raise _EvalError(f"assert_match: the pattern must be a string, got {show(a)}")
                if not isinstance(b, str):
                    return f"expected a string matching {show(a)}, got {show(b)} (not a string)"
                if re.search(a, b) is None:
                    return f"expected a string matching {show(a)}, got {show(b)}"
                return None
        except re.error as exc:
            raise _EvalError(f"assert_match: invalid regular expression {show(a)}: {exc}") from None
        except TypeError as exc:
            raise _EvalError(f"{name}: {exc}") from None
        symbol = {"assert_lt": "<", "assert_le": "<=", "assert_gt": ">", "assert_ge": ">="}[name]
        try:
            ok = _COMPARE_OPS[_OP_BY_SYMBOL[symbol]][1](a, b)
        except TypeError:
            raise _EvalError(
                f"{name}: cannot compare {show(a)} {symbol} {show(b)} "
                f"({_type_name(a)} and {_type_name(b)})"
            ) from None
        return None if ok else f"expected a value {symbol} {show(b)}, got {show(a)}"

    def decide(self, node: ast.expr) -> tuple[bool, str]:
        """Truth of a node and a sentence explaining it (for failure details)."""
        if isinstance(node, ast.Compare):
            return self.decide_compare(node)
        if isinstance(node, ast.BoolOp):
            texts = []
            for value in node.values:
                truth, text = self.decide(value)
                if isinstance(node.op, ast.And) and not truth:
                    return False, text
                if isinstance(node.op, ast.Or) and truth:
                    return True, text
                texts.append(text)
            return isinstance(node.op, ast.And), "; ".join(texts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            truth, text = self.decide(node.operand)
            return not truth, text
        value = self.eval(node)
        return bool(value), self.truth_text(node, value)

    def truth_text(self, node: ast.expr, value: Any) -> str:
        """Why a bare value counts as true or false: `r.data["value"] is "", which is false`."""
        truth = "true" if value else "false"
        if _is_literal(node):
            return f"{self.segment(node)} is {truth}"  # `[] is []` would say nothing
        if value is None or isinstance(value, bool):
            return f"{self.segment(node)} is {show(value)}"  # its truth is its name
        # "", 0, [] or {} being false (or a mapping being true) is not obvious to everyone
        return f"{self.segment(node)} is {show(value)}, which is {truth}"

    def decide_compare(self, node: ast.Compare) -> tuple[bool, str]:
        left_node, left = node.left, self.eval(node.left)
        shown: list[str] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node)
            symbol = _COMPARE_OPS[type(op)][0]
            ok = self.compare(op, left, right, node)
            if not ok:
                return False, self.compare_text(left_node, left, symbol, right_node, right, False)
            shown.append(self.compare_text(left_node, left, symbol, right_node, right, True))
            left_node, left = right_node, right
        return True, "; ".join(shown)

    def compare_text(
        self, ln: ast.expr, lv: Any, symbol: str, rn: ast.expr, rv: Any, truth: bool
    ) -> str:
        text = f"{show(lv)} {symbol} {show(rv)} is {'true' if truth else 'false'}"
        sides = [
            f"{self.segment(n)} = {show(v)}"
            for n, v in ((ln, lv), (rn, rv))
            if not isinstance(n, ast.Constant) and self.segment(n) != show(v)
        ]
        return f"{text} ({', '.join(sides)})" if sides else text

    # -- expressions -------------------------------------------------------------------------

    def eval(self, node: ast.AST) -> Any:
        method = getattr(self, f"eval_{type(node).__name__}", None)
        if method is None:  # cannot happen after _Checker; refuse rather than guess
            raise _EvalError(f"unsupported expression: {type(node).__name__}")
        return method(node)

    def eval_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def eval_Name(self, node: ast.Name) -> Any:
        try:
            return self.namespace[node.id]
        except KeyError:
            raise _EvalError(f"{node.id} is not available here") from None

    def eval_Attribute(self, node: ast.Attribute) -> Any:
        value = self.eval(node.value)
        if isinstance(value, Response) and node.attr in RESPONSE_ATTRIBUTES:
            return getattr(value, node.attr)
        raise _EvalError(
            f"{self.segment(node)}: {self.segment(node.value)} is {show(value)}, "
            f"which has no attribute {node.attr} (only responses have .{node.attr})"
        )

    def eval_Subscript(self, node: ast.Subscript) -> Any:
        value = self.eval(node.value)
        key = self.eval(node.slice)
        if not isinstance(value, (str, list, tuple, Mapping)):
            raise _EvalError(
                f"{self.segment(node)}: cannot index {_show_typed(value, parens=True)}"
            )
        try:
            return value[key]
        except KeyError:
            raise _EvalError(
                f"{self.segment(node)}: key {show(key)} not found in {show(value)}"
            ) from None
        except IndexError:
            raise _EvalError(
                f"{self.segment(node)}: index {show(key)} out of range "
                f"({_type_name(value)} of length {len(value)})"
            ) from None
        except TypeError as exc:
            raise _EvalError(f"{self.segment(node)}: {exc}") from None

    def eval_Slice(self, node: ast.Slice) -> slice:
        parts = [None if p is None else self.eval(p) for p in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def eval_List(self, node: ast.List) -> list[Any]:
        return [self.eval(e) for e in node.elts]

    def eval_Tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self.eval(e) for e in node.elts)

    def eval_Set(self, node: ast.Set) -> set[Any]:
        return self.guard(node, lambda: {self.eval(e) for e in node.elts})

    def eval_Dict(self, node: ast.Dict) -> dict[Any, Any]:
        return self.guard(
            node,
            lambda: {
                self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values, strict=True)
            },
        )

    def eval_BoolOp(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for part in node.values:
            value = self.eval(part)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value

    def eval_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not isinstance(value, (int, float)):
            raise _EvalError(
                f"{self.segment(node)}: bad operand {show(value)} for unary minus/plus"
            )
        return -value if isinstance(node.op, ast.USub) else +value

    def eval_BinOp(self, node: ast.BinOp) -> Any:
        left = self.eval(node.left)
        right = self.eval(node.right)
        return self.guard(node, lambda: self.arith(node.op, left, right, node))

    def eval_Compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node)
            if not self.compare(op, left, right, node):
                return False
            left = right
        return True

    def eval_IfExp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)

    def eval_JoinedStr(self, node: ast.JoinedStr) -> str:
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
                continue
            assert isinstance(part, ast.FormattedValue)
            value = self.eval(part.value)
            self.check_size(part, value)
            if part.conversion == ord("r"):
                value = repr(value)
            elif part.conversion == ord("s"):
                value = str(value)
            elif part.conversion == ord("a"):
                value = ascii(value)
            spec = ""
            if part.format_spec is not None:
                spec = "".join(str(p.value) for p in part.format_spec.values)  # type: ignore[attr-defined]
            if spec and not isinstance(value, (str, int, float)):
                raise _EvalError(f"{self.segment(part)}: cannot format {show(value)} with {spec!r}")
            out.append(self.guard(part, lambda v=value, s=spec: format(v, s)))
        return "".join(out)

    def eval_Call(self, node: ast.Call) -> Any:
        func = node.func
        plan = self.compiled._calls.get(_span(node))
        if plan is not None:
            return self.call_interface(node, plan)
        args = [self.eval(a) for a in node.args]
        kwargs = {kw.arg: self.eval(kw.value) for kw in node.keywords if kw.arg is not None}
        if isinstance(func, ast.Name):
            return self.guard(node, lambda: self.call_function(node, func.id, args, kwargs))
        assert isinstance(func, ast.Attribute)
        target = self.eval(func.value)
        return self.guard(node, lambda: self.call_method(node, target, func.attr, args, kwargs))

    # -- calls ---------------------------------------------------------------------------------

    def call_interface(self, node: ast.Call, plan: _InterfaceCall) -> Any:
        service = self.namespace.get(plan.service)
        if service is None:
            raise _EvalError(f"service {plan.service} is not available here")
        if isinstance(service, ServiceFacade):
            client = service.interface(plan.interface)
        elif isinstance(service, Mapping):
            client = service.get(plan.interface)
        else:
            raise _EvalError(f"service {plan.service} is not available here")
        if client is None:
            raise _EvalError(f"interface {plan.service}.{plan.interface} is not available here")
        args: dict[str, Any] = {}
        for name, arg in zip(plan.positional, node.args, strict=True):
            args[name] = self.eval(arg)
        for kw in node.keywords:
            assert kw.arg is not None
            args[kw.arg] = self.eval(kw.value)
        # `call` is the generic entry every interface client offers; the method name
        # comes from the method table, checked at load time.
        try:
            call = getattr(client, "call", None)
            if callable(call):
                response = call(plan.method, args)
            else:
                response = getattr(client, plan.python_name)(**args)
        except Exception as exc:
            raise _EvalError(f"{self.segment(node)}: {_exception_text(exc)}") from None
        if isinstance(response, Response) and not response.ok:
            error = str(response.error or "no error text")
            error = error if len(error) <= MAX_SHOWN else error[: MAX_SHOWN - 1] + "…"
            self.failed_calls.append(f"{self.segment(node)} failed: {error}")
        return response

    def call_function(
        self, node: ast.Call, name: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        if name == "len":
            if not isinstance(args[0], (str, list, tuple, dict, set, frozenset, Mapping)):
                raise TypeError(f"len() of {_show_typed(args[0])}")
            return len(args[0])
        if name == "int":
            # int("1" * 100_000, 2) has 100 000 bits: the integer limit holds here too
            return self.int_guard(node, int(*args, **kwargs))
        if name == "float":
            return float(*args)
        if name == "bool":
            return bool(*args)
        if name == "str":
            if args:
                self.check_size(node, args[0])
            return str(*args)
        if name in ("min", "max"):
            fn = min if name == "min" else max
            return fn(*args, **kwargs)
        if name == "sum":
            start = kwargs.get("start", args[1] if len(args) > 1 else 0)
            # numbers only: list/tuple concatenation through sum is quadratic
            if not isinstance(start, (int, float)):
                raise TypeError("sum() adds numbers; its start value must be a number")
            items = list(args[0]) if not isinstance(args[0], (str, bytes)) else None
            if items is None or not all(isinstance(x, (int, float)) for x in items):
                raise TypeError(f"sum() adds numbers, got {show(args[0])}")
            return self.int_guard(node, sum(items, start))
        if name == "sorted":
            return sorted(args[0], reverse=bool(kwargs.get("reverse", False)))
        if name == "any":
            return any(args[0])
        if name == "all":
            return all(args[0])
        if name == "abs":
            return abs(args[0])
        if name == "round":
            ndigits = kwargs.get("ndigits", args[1] if len(args) > 1 else None)
            # round(5, -10**8) computes 10**(10**8)
            if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 400):
                raise ValueError("round(): ndigits must be an integer between -400 and 400")
            return round(args[0]) if ndigits is None else round(args[0], ndigits)
        raise _EvalError(f"{name}(...) must be the whole assertion")  # assert_* nested

    def call_method(
        self, node: ast.Call, target: Any, name: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        # The method is taken from the builtin type, never from the object: no overrides.
        if isinstance(target, str) and name in _STR_METHODS:
            return getattr(str, name)(target, *args, **kwargs)
        if isinstance(target, (list, tuple)) and name in _SEQUENCE_METHODS:
            return getattr(list if isinstance(target, list) else tuple, name)(target, *args)
        if isinstance(target, Mapping) and name in _MAPPING_METHODS:
            base = dict if isinstance(target, dict) else Mapping
            result = getattr(base, name)(target, *args)
            # views compare unlike lists; lists are what users expect to compare with
            return result if name == "get" else list(result)
        raise _EvalError(
            f"{self.segment(node)}: {_show_typed(target)} has no method .{name}()"
        )

    # -- operators and guards ------------------------------------------------------------

    def compare(self, op: ast.cmpop, left: Any, right: Any, node: ast.AST) -> bool:
        symbol, fn = _COMPARE_OPS[type(op)]
        try:
            return bool(fn(left, right))
        except TypeError:
            raise _EvalError(
                f"{self.segment(node)}: cannot evaluate {show(left)} {symbol} {show(right)} "
                f"({_type_name(left)} and {_type_name(right)})"
            ) from None

    def arith(self, op: ast.operator, left: Any, right: Any, node: ast.BinOp) -> Any:
        symbol = _BIN_OPS[type(op)]
        if isinstance(op, ast.Mult):
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if not isinstance(seq, str) and any(
                        isinstance(x, (list, tuple, dict, set)) for x in seq
                    ):
                        # shared nested containers make later comparisons quadratic
                        raise _EvalError(
                            f"{self.segment(node)}: repeating a list of containers is not supported"
                        )
                    self.spend(node, len(seq) * max(times, 0))
        elif isinstance(op, ast.Add):
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                self.spend(node, len(left) + len(right))
        elif isinstance(op, ast.Mod) and isinstance(left, str):
            # printf-style formatting can ask for any width: "%999999999d" % 1
            raise _EvalError(f"{self.segment(node)}: string formatting with % is not supported")
        elif isinstance(op, ast.Pow):
            self.check_power(node, left, right)
        fn = {
            "+": operator.add,
            "-": operator.sub,
            "*": operator.mul,
            "/": operator.truediv,
            "//": operator.floordiv,
            "%": operator.mod,
            "**": operator.pow,
        }[symbol]
        try:
            return self.int_guard(node, fn(left, right))
        except TypeError:
            raise _EvalError(
                f"{self.segment(node)}: cannot evaluate {show(left)} {symbol} {show(right)} "
                f"({_type_name(left)} and {_type_name(right)})"
            ) from None

    def check_power(self, node: ast.AST, base: Any, exponent: Any) -> None:
        if not isinstance(base, (int, float)) or not isinstance(exponent, (int, float)):
            return  # the TypeError path reports it
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
            if abs(base) > 1 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
                raise _EvalError(f"{self.segment(node)}: result would be too large")
        if isinstance(exponent, int) and abs(exponent) > 10**6 and not isinstance(base, int):
            raise _EvalError(f"{self.segment(node)}: exponent is too large")

    def int_guard(self, node: ast.AST, value: Any) -> Any:
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise _EvalError(
                f"{self.segment(node)}: integer result is too large (over {MAX_INT_BITS} bits)"
            )
        return value

    def spend(self, node: ast.AST, size: int) -> None:
        if size > MAX_SEQUENCE:
            raise _EvalError(
                f"{self.segment(node)}: result would have {size} elements (limit {MAX_SEQUENCE})"
            )
        self.allocated += size
        if self.allocated > MAX_ALLOCATED:
            raise _EvalError(f"{self.segment(node)}: the expression builds too much data")

    def check_size(self, node: ast.AST, value: Any) -> None:
        """Refuse to turn huge nested values into text (`str(x)`, f-strings)."""
        budget = [MAX_SEQUENCE]

        def walk(v: Any, depth: int) -> None:
            budget[0] -= 1 + (len(v) if isinstance(v, str) else 0)
            if budget[0] < 0 or depth > 100:
                raise _EvalError(f"{self.segment(node)}: value is too large to convert to text")
            if isinstance(v, Mapping):
                for k, x in v.items():
                    walk(k, depth + 1)
                    walk(x, depth + 1)
            elif isinstance(v, (list, tuple, set, frozenset)):
                for x in v:
                    walk(x, depth + 1)

        walk(value, 0)

    def guard(self, node: ast.AST, fn: Callable[[], Any]) -> Any:
        """Run one operation; Python's exceptions become readable failures naming the code."""
        try:
            return fn()
        except _EvalError:
            raise
        except KeyError as exc:
            raise _EvalError(
                f"{self.segment(node)}: key {show(exc.args[0] if exc.args else None)} not found"
            ) from None
        except (
            TypeError,
            ValueError,
            IndexError,
            ZeroDivisionError,
            OverflowError,
            AttributeError,
        ) as exc:
            raise _EvalError(f"{self.segment(node)}: {_exception_text(exc)}") from None


_OP_BY_SYMBOL = {symbol: op for op, (symbol, _) in _COMPARE_OPS.items()}


# -- showing values -------------------------------------------------------------------------


def show(value: Any, limit: int = MAX_SHOWN) -> str:
    """A value as it would be written in an assertion (strings in double quotes), truncated."""
    parts: list[str] = []
    _render(value, parts, 0, [limit + 1])
    text = "".join(parts)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _render(value: Any, out: list[str], depth: int, budget: list[int]) -> None:
    # `budget` counts characters still wanted, so a huge value costs only what is shown.
    if budget[0] <= 0:
        return
    if isinstance(value, str):
        text = json.dumps(value[: budget[0] + 1], ensure_ascii=False)
    elif value is None or isinstance(value, (bool, int, float)):
        text = (
            repr(value)
            if not isinstance(value, int) or value.bit_length() < 4000
            else "<a huge integer>"
        )
    elif isinstance(value, Response):
        fields = {"ok": value.ok, "data": value.data, "error": value.error}
        if value.status is not None:
            fields = {"status": value.status, **fields}
        out.append("Response(")
        budget[0] -= 9
        for i, (k, v) in enumerate(fields.items()):
            out.append(f"{', ' if i else ''}{k}=")
            budget[0] -= len(k) + 3
            _render(v, out, depth + 1, budget)
        out.append(")")
        return
    elif isinstance(value, (list, tuple, set, frozenset, Mapping)):
        if isinstance(value, list):
            open_, close = "[", "]"
        elif isinstance(value, tuple):
            open_, close = "(", ",)" if len(value) == 1 else ")"
        elif isinstance(value, Mapping):
            open_, close = "{", "}"
        else:
            open_, close = ("{", "}") if value else ("set(", ")")
        if depth > 6:
            out.append(open_ + "…" + close)
            budget[0] -= 5
            return
        out.append(open_)
        budget[0] -= 1
        items = value.items() if isinstance(value, Mapping) else value
        for i, item in enumerate(items):
            if budget[0] <= 0:
                out.append("…")
                return
            if i:
                out.append(", ")
                budget[0] -= 2
            if isinstance(value, Mapping):
                _render(item[0], out, depth + 1, budget)
                out.append(": ")
                budget[0] -= 2
                _render(item[1], out, depth + 1, budget)
            else:
                _render(item, out, depth + 1, budget)
        out.append(close)
        budget[0] -= len(close)
        return
    else:
        text = repr(value) if isinstance(value, ServiceFacade) else f"<{type(value).__name__}>"
    out.append(text)
    budget[0] -= len(text)


def _show_typed(value: Any, parens: bool = False) -> str:
    """A value with its type (`int 3`, or `3 (int)`), except where the value names its type
    already: None would read `None None`."""
    if value is None:
        return show(value)
    return f"{show(value)} ({_type_name(value)})" if parens else f"{_type_name(value)} {show(value)}"


def _is_literal(node: ast.expr) -> bool:
    """A constant written out (`[]`, `""`, `0`): showing its value again adds nothing."""
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _type_name(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Response):
        return "response"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__
