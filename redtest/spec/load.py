"""Safe YAML loading that remembers where every key and value came from.

PyYAML's composer gives nodes with start marks; we build plain Python data from
them ourselves so that no tag can construct an object, and record a Location for
every mapping key, mapping value and sequence item along the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from redtest.errors import Location, SpecError

PathKey = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    # Dates stay the text the user wrote: the format has no date fields.
    "tag:yaml.org,2002:timestamp",
}
_MAX_NODES = 200_000  # guards against alias bombs ("billion laughs")


@dataclass
class Positions:
    """Where each value (and each mapping key) of a document was written."""

    file: str
    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)
    quoted: set[PathKey] = field(default_factory=set)  # scalars written in quotes
    # scalars written over several lines, for char_positions (mapped only when asked)
    multiline: dict[PathKey, ScalarNode] = field(default_factory=dict)

    def text_start(self, path: PathKey) -> Location:
        """Where a scalar's text begins: one past its opening quote, if it has one."""
        loc = self.of(path)
        if tuple(path) in self.quoted:
            return Location(loc.file, loc.line, loc.col + 1)
        return loc

    def char_positions(self, path: PathKey) -> tuple[tuple[int, int], ...] | None:
        """The file (line, column) of each character of a scalar written over several
        lines; None for a one-line scalar or when the two cannot be aligned."""
        node = self.multiline.get(tuple(path))
        return None if node is None else _char_positions(node)

    def of(self, path: PathKey) -> Location:
        """The location of the value at `path`, or of its nearest ancestor."""
        path = tuple(path)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Location(self.file, 1, 1))

    def key_of(self, path: PathKey) -> Location:
        """The location of the mapping key whose value is at `path` (else the value's)."""
        return self.keys.get(tuple(path)) or self.of(path)


@dataclass
class Document:
    """One loaded YAML file: plain data plus positions."""

    path: Path  # as the user gave it (relative paths stay relative for messages)
    data: Any
    positions: Positions
    text: str = ""

    def line(self, number: int) -> str:
        """Line `number` (1-based) of the source, for hints."""
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""

    @property
    def display(self) -> str:
        return self.positions.file

    @property
    def base_dir(self) -> Path:
        return self.path.parent


_MAX_MAPPED_CHARS = 20_000


def _char_positions(node: ScalarNode) -> tuple[tuple[int, int], ...] | None:
    """The file (line, column) of each character of a scalar written over several lines.

    YAML folds and indents such scalars, so a character's offset in the value says
    nothing about its line. Each value character is matched to the next equal character
    of the raw text; what the value lacks (indentation, indicators, quotes, escapes) is
    skipped. None when the two cannot be aligned.
    """
    start, end = node.start_mark, node.end_mark
    buffer, value = start.buffer, node.value
    if buffer is None or not isinstance(value, str) or len(value) > _MAX_MAPPED_CHARS:
        return None
    j, line, col = start.index, start.line + 1, start.column + 1
    if node.style in ("|", ">"):  # the content starts on the line after the indicator
        nl = buffer.find("\n", j, end.index)
        if nl < 0:
            return None
        j, line, col = nl + 1, line + 1, 1
    elif node.style in ("'", '"'):
        j, col = j + 1, col + 1
    out = []
    for ch in value:
        while j < end.index and buffer[j] != ch:
            line, col = (line + 1, 1) if buffer[j] == "\n" else (line, col + 1)
            j += 1
        if j >= end.index:
            return None
        out.append((line, col))
        line, col = (line + 1, 1) if ch == "\n" else (line, col + 1)
        j += 1
    return tuple(out)


class _Builder:
    """Turns composed nodes into plain data, recording positions."""

    def __init__(self, file: str) -> None:
        self.positions = Positions(file)
        self.file = file
        self._constructor = yaml.SafeLoader("")
        self._count = 0

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: PathKey) -> Any:
        self._count += 1
        if self._count > _MAX_NODES:
            raise SpecError(
                f"the document expands to more than {_MAX_NODES} nodes (too many YAML aliases?)",
                self.loc(node),
            )
        self.positions.values[path] = self.loc(node)
        if isinstance(node, ScalarNode):
            if node.style in ("'", '"'):
                self.positions.quoted.add(path)
            if node.start_mark.line != node.end_mark.line:
                self.positions.multiline[path] = node
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            self._check_tag(node, "tag:yaml.org,2002:seq")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            self._check_tag(node, "tag:yaml.org,2002:map")
            return self._mapping(node, path)
        raise SpecError(f"unsupported YAML node {type(node).__name__}", self.loc(node))

    def _check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            raise SpecError(
                f"YAML tag '{node.tag.replace('tag:yaml.org,2002:', '!!')}' is not allowed: redtest files hold plain data only "
                "(strings, numbers, booleans, null, lists and mappings)",
                self.loc(node),
            )

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self._check_tag(node, _STR)
        if node.tag in (_STR, "tag:yaml.org,2002:timestamp"):
            return node.value
        if node.tag == "tag:yaml.org,2002:bool" and node.value.lower() not in ("true", "false"):
            # YAML 1.2 booleans only: `yes`, `no`, `on`, `off` stay text (`country: no`).
            return node.value
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        # `<<: *anchor` merge keys are a YAML convenience users expect to work.
        self._constructor.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise SpecError("mapping keys must be plain strings", self.loc(key_node))
            key = self._scalar(key_node)
            if key is None or isinstance(key, bool):
                # `yes:`/`null:` as keys are almost always a mistake; keep the text.
                key = key_node.value
            key = str(key)
            if key in out:
                first = self.positions.keys[(*path, key)]
                raise SpecError(
                    f"duplicate key {key!r} (first written at {first.line}:{first.col}); "
                    "YAML would silently keep only the last one",
                    self.loc(key_node),
                )
            self.positions.keys[(*path, key)] = self.loc(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out


def _yaml_error(exc: yaml.YAMLError, display: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"invalid YAML: {problem}"
    if context:
        text += f" ({context})"
    if mark is None:
        return SpecError(text, Location(display, 1, 1))
    return SpecError(text, Location(display, mark.line + 1, mark.column + 1))


def _quoted(line: str) -> str:
    item = line.strip().removeprefix("-").strip()
    return item.replace("'", "''")


def load_document(path: Path, display: str | None = None) -> Document:
    """Load one YAML file safely; raises SpecError with file:line:col."""
    display = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"file not found: {path}", Location(display, 1, 1)) from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc}", Location(display, 1, 1)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Point at the offending byte, as for any other error in the file.
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} here); save it as UTF-8",
            Location(display, line, column),
        ) from None
    return parse_document(text, path, display)


def parse_document(text: str, path: Path, display: str | None = None) -> Document:
    """Parse YAML text as one document; an empty file is an empty mapping."""
    display = display or str(path)
    builder = _Builder(display)
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        error = _yaml_error(exc, display)
        lines = text.splitlines()
        # The error may sit past the last line (end of stream after a final newline).
        at = error.location.line - 1 if error.location else -1
        line = lines[at] if 0 <= at < len(lines) else ""
        if error.location and ": " in line and "(" in line:
            error.message += (
                ". An expression that holds ': ' (a dict literal, say) must be quoted, "
                f"e.g. - '{_quoted(line)}'"
            )
        raise error from None
    if len(nodes) > 1:
        raise SpecError(
            "a redtest file holds one YAML document; found a second one after '---'",
            builder.loc(nodes[1]),
        )
    if not nodes or nodes[0] is None:
        builder.positions.values[()] = Location(display, 1, 1)
        return Document(path, {}, builder.positions, text)
    try:
        data = builder.build(nodes[0], ())
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, display) from None
    return Document(path, data, builder.positions, text)
