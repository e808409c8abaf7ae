"""Safe YAML loading that remembers where every key and value came from.

PyYAML's composer gives nodes with start marks; we build plain Python data from
them ourselves so that no tag can construct an object, and record a Location for
every mapping key, mapping value and sequence item along the way.
"""

from __future__ import annotations

import math
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from redtest.errors import Location, SpecError

PathKey = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_INT = _TAG + "int"
_FLOAT = _TAG + "float"
_BOOL = _TAG + "bool"
_NULL = _TAG + "null"
# Dates stay the text the user wrote: the format has no date fields.
_TIMESTAMP = _TAG + "timestamp"
_MERGE = _TAG + "merge"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP}
# Guards against alias bombs ("billion laughs"): how many nodes aliases may add by
# repeating what is written elsewhere. What the file itself writes is bounded by its size
# and never counted, so a seed of 100,000 keys loads.
_MAX_ALIASED_NODES = 200_000
# Far deeper than any real file, and shallow enough that nothing recursive (the composer,
# the builder, the schema check) comes near Python's recursion limit.
_MAX_DEPTH = 100

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution) instead of
# PyYAML's YAML 1.1: no sexagesimal `12:30`, no `1_000`, no `0b101`, no `yes`/`no`.
_BOOL_CORE = re.compile(r"true|True|TRUE|false|False|FALSE")
_INT_CORE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_CORE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
# What a plain scalar must look like to be read as a number. Unlike the core schema, a
# decimal with a leading zero (`01234`, `007.5`) stays text: as a number it would lose
# its zeros, and YAML 1.1 tools would read it as octal.
_INT_PLAIN = re.compile(r"(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_PLAIN = re.compile(
    r"(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)
_LONE_SURROGATE = re.compile(r"[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class _TooDeep(Exception):
    """Raised by the composer when collections nest deeper than _MAX_DEPTH."""

    def __init__(self, mark: Mark) -> None:
        super().__init__("too deep")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars and a nesting limit."""

    # PyYAML's composer recurses once per level: without a limit `[[[[...` of a few
    # hundred levels ends in RecursionError.
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self._depth >= _MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# Keep null, timestamp (kept as text) and merge `<<`; replace bool, int and float by the
# YAML 1.2 forms; drop the 1.1-only `=` value type (a plain `=` is just text).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TAG + "value")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(rf"(?:{_BOOL_CORE.pattern})\Z"), list("tTfF"))
_Loader.add_implicit_resolver(_INT, _INT_PLAIN, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT, _FLOAT_PLAIN, list("-+.0123456789"))


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
# How many characters of a double-quoted scalar an escape takes (`\t`, `\"`: 2).
_ESCAPE_SIZES = {"x": 4, "u": 6, "U": 10}


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
    escapes = node.style == '"'
    out = []
    for ch in value:
        while j < end.index and buffer[j] != ch:
            if escapes and buffer[j] == "\\" and buffer[j + 1 : j + 2] not in ("\n", "\r"):
                break  # an escape (`\t`, `\x41`...) written for this character
            line, col = (line + 1, 1) if buffer[j] == "\n" else (line, col + 1)
            j += 1
        if j >= end.index:
            return None
        out.append((line, col))
        if escapes and buffer[j] == "\\":
            size = _ESCAPE_SIZES.get(buffer[j + 1 : j + 2], 2)
            j, col = j + size, col + size
            continue
        line, col = (line + 1, 1) if ch == "\n" else (line, col + 1)
        j += 1
    return tuple(out)


def _has_escapes(node: ScalarNode) -> bool:
    """A quoted one-line scalar whose text is not its value (`"a\\"b"`, `'it''s'`): a
    character's offset in the value is then not its column."""
    if node.style not in ("'", '"') or not isinstance(node.value, str):
        return False
    return node.end_mark.index - node.start_mark.index - 2 != len(node.value)


class _Builder:
    """Turns composed nodes into plain data, recording positions."""

    def __init__(self, file: str) -> None:
        self.positions = Positions(file)
        self.file = file
        self._built: set[int] = set()  # nodes built once; building one again is an alias
        self._aliased = 0
        self._open: set[int] = set()  # collections being built: an alias to one is a cycle
        self._entries: dict[int, list[tuple[str, ScalarNode, Node]]] = {}  # per mapping node
        self._merging: set[int] = set()

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: PathKey) -> Any:
        if id(node) in self._built:
            self._aliased += 1
            if self._aliased > _MAX_ALIASED_NODES:
                raise SpecError(
                    f"the document's aliases expand to more than {_MAX_ALIASED_NODES} nodes "
                    "(an alias of an alias of ...: a \"billion laughs\" document?)",
                    self.loc(node),
                )
        else:
            self._built.add(id(node))
        if len(path) >= _MAX_DEPTH:  # reachable through aliases, which the composer does not nest
            raise SpecError(_too_deep_message(), self.loc(node))
        self.positions.values[path] = self.loc(node)
        if isinstance(node, ScalarNode):
            if node.style in ("'", '"'):
                self.positions.quoted.add(path)
            if node.start_mark.line != node.end_mark.line or _has_escapes(node):
                self.positions.multiline[path] = node
            return self._scalar(node)
        if id(node) in self._open:
            raise SpecError(
                "an alias here refers to a list or mapping that contains it: YAML data cannot "
                "hold itself",
                self.loc(node),
            )
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, "tag:yaml.org,2002:seq")
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                self._check_tag(node, "tag:yaml.org,2002:map")
                return {
                    key: self._build_entry(key_node, value_node, (*path, key))
                    for key, key_node, value_node in self._mapping_entries(node)
                }
        finally:
            self._open.discard(id(node))
        raise SpecError(f"unsupported YAML node {type(node).__name__}", self.loc(node))

    def _build_entry(self, key_node: ScalarNode, value_node: Node, path: PathKey) -> Any:
        self.positions.keys[path] = self.loc(key_node)
        return self.build(value_node, path)

    def _check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            raise SpecError(
                f"YAML tag '{node.tag.replace(_TAG, '!!')}' is not allowed: redtest files hold plain data only "
                "(strings, numbers, booleans, null, lists and mappings)",
                self.loc(node),
            )

    def _text(self, node: ScalarNode) -> str:
        """A scalar's text, with UTF-16 surrogate pairs from `\\uD83C\\uDF89` escapes joined.

        PyYAML turns each `\\u` escape into one code point, so an escaped pair (as JSON
        writers emit for characters beyond U+FFFF) becomes two surrogates; we join a valid
        pair into its character, as JSON does. A lone surrogate is no character at all:
        nothing can encode it (Redis clients fail on it), so it is refused here.
        """
        value: str = node.value
        if not _SURROGATE.search(value):
            return value
        lone = _LONE_SURROGATE.search(value)
        if lone:
            raise SpecError(
                f"the string holds \\u{ord(lone.group()):04x}, half of a UTF-16 surrogate pair and "
                "not a character by itself; write the character itself (🎉), or escape it as "
                "\\U0001F389 (eight hex digits) or as a complete pair \\ud83c\\udf89",
                self.loc(node),
            )
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            self._check_tag(node, _STR)
        if tag in (_STR, _TIMESTAMP):
            return self._text(node)
        if tag == _NULL:
            return None
        # Plain scalars get these tags only in their YAML 1.2 forms (see _Loader); an
        # explicit `!!int`, `!!float` or `!!bool` must use those forms too.
        text = node.value
        if tag == _BOOL and _BOOL_CORE.fullmatch(text):
            return text.lower() == "true"
        if tag == _INT and _INT_CORE.fullmatch(text):
            try:
                if text.startswith(("0o", "0x")):
                    return int(text[2:], 8 if text[1] == "o" else 16)
                return int(text)
            except ValueError:  # Python refuses to convert more than 4300 digits
                raise SpecError(f"the number is too long ({len(text)} digits)", self.loc(node)) from None
        if tag == _FLOAT and _FLOAT_CORE.fullmatch(text):
            low = text.lower()
            if low.endswith(".inf"):
                return -math.inf if low.startswith("-") else math.inf
            return math.nan if low == ".nan" else float(text)
        kind = {_BOOL: "true or false", _INT: "an integer", _FLOAT: "a number"}[tag]
        raise SpecError(f"{text!r} is not {kind} (tagged {tag.replace(_TAG, '!!')})", self.loc(node))

    def _key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise SpecError("mapping keys must be plain strings", self.loc(node))
        if node.tag not in _SCALAR_TAGS:
            self._check_tag(node, _STR)
        # A key is the text written: `0x1F:` is '0x1F', `yes:` is 'yes', `null:` is 'null'.
        return self._text(node)

    def _mapping_entries(self, node: MappingNode) -> list[tuple[str, ScalarNode, Node]]:
        """The (key, key node, value node) entries of a mapping, with `<<` merge keys applied.

        As in the YAML merge-key spec and docker compose: keys written in the mapping
        override merged ones, and in `<<: [*a, *b]` the earlier mapping wins. A key written
        twice in the mapping itself is an error. Merged entries sit where `<<` is written.
        Cached per node, so aliases merged into aliases cost nothing extra.
        """
        cached = self._entries.get(id(node))
        if cached is not None:
            return cached
        self._merging.add(id(node))
        written: dict[str, ScalarNode] = {}
        merge_key: Node | None = None
        for key_node, _ in node.value:
            if _is_merge(key_node):
                if merge_key is not None:
                    raise SpecError(
                        f"duplicate merge key '<<' (first written at {self.loc(merge_key).line}:"
                        f"{self.loc(merge_key).col}); merge several mappings with <<: [*a, *b]",
                        self.loc(key_node),
                    )
                merge_key = key_node
                continue
            key = self._key(key_node)
            if key in written:
                first = self.loc(written[key])
                raise SpecError(
                    f"duplicate key {key!r} (first written at {first.line}:{first.col}); "
                    "YAML would silently keep only the last one",
                    self.loc(key_node),
                )
            written[key] = key_node
        entries: list[tuple[str, ScalarNode, Node]] = []
        taken = set(written)
        for key_node, value_node in node.value:
            if not _is_merge(key_node):
                entries.append((self._key(key_node), key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            # Errors point at the `<<` key: an alias's own position is lost in composing,
            # and the anchored node it stands for may be anywhere in the file.
            for source in sources:
                if not isinstance(source, MappingNode):
                    kind = "a list" if isinstance(source, SequenceNode) else "a single value"
                    raise SpecError(
                        "a merge key '<<' takes a mapping or a list of mappings, e.g. <<: *base "
                        f"or <<: [*a, *b]; here it is given {kind}",
                        self.loc(key_node),
                    )
                if id(source) in self._merging:
                    raise SpecError(
                        "this merge key '<<' merges a mapping that contains it", self.loc(key_node)
                    )
                for entry in self._mapping_entries(source):
                    if entry[0] not in taken:
                        taken.add(entry[0])
                        entries.append(entry)
        self._merging.discard(id(node))
        self._entries[id(node)] = entries
        return entries


def _is_merge(node: Node) -> bool:
    """A plain `<<` key (a quoted '<<' is an ordinary key)."""
    return isinstance(node, ScalarNode) and node.tag == _MERGE


def _too_deep_message() -> str:
    return f"lists and mappings are nested more than {_MAX_DEPTH} levels deep here; redtest refuses deeper files"


def _location_of(text: str, index: int, display: str) -> Location:
    """The 1-based line and column of character `index` of `text`."""
    line = text.count("\n", 0, index) + 1
    return Location(display, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _reader_error(exc: ReaderError, text: str, display: str) -> SpecError:
    """PyYAML names a refused character by its offset into the text; we name its line."""
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return SpecError(
        f"invalid YAML: character U+{code:04X} (a control or non-character code point) is not "
        f"allowed in a YAML file; remove it, or write it as the escape {escape} inside a "
        "double-quoted string",
        _location_of(text, exc.position, display),
    )


def _yaml_error(exc: yaml.YAMLError, display: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context == "while scanning a quoted scalar" and context_mark and mark and problem in (
        "found unexpected end of stream",
        "found unexpected document separator",
    ):
        # Where the string runs away is useful; where the file ends is not.
        found = "the end of the file" if "end of stream" in problem else "a document separator"
        return SpecError(
            f"invalid YAML: this quoted string is never closed (YAML reached {found} at "
            f"{mark.line + 1}:{mark.column + 1} looking for its closing quote)",
            Location(display, context_mark.line + 1, context_mark.column + 1),
        )
    text = f"invalid YAML: {problem}"
    if context:
        text += f" ({context})"
    if mark is None:
        return SpecError(text, Location(display, 1, 1))
    return SpecError(text, Location(display, mark.line + 1, mark.column + 1))


# A block-sequence item that YAML splits at ': ' although the user meant one expression:
# plain (not quoted, not flow), holding ': ', either after a '(' (`assert_eq(r, {"a": 1})`)
# or in an item of an `expect:` list (`r.data == {"a": 1}`; see _under_expect).
_SPLIT_ITEM = re.compile(r"( *)- +([^\s'\"{\[#&*!|>%@`].*?: .*?)\s*\Z")
# An `expect:` item that starts with a quoted string, a list or a dict literal and goes
# on (`- "a" in r.data`): YAML reads that as the whole item and fails at what follows.
_QUOTED_ITEM = re.compile(r"( *)- +(['\"{\[].*?)\s*\Z")
_OPENS = {"'": "string", '"': "string", "{": "mapping", "[": "list"}
_CALL_BEFORE_COLON = re.compile(r"[^:]*\(")
_EXPECT_KEY = re.compile(r" *(?:- +)?expect: *(?:#.*)?\Z")
_SPLIT_CANDIDATES = 4  # items tried, nearest first: each try re-parses the file


def quote_item(item: str) -> str:
    """`item` as a quoted YAML scalar, the form an expression with ': ' needs: in single
    quotes, or in double quotes when that needs no escapes (`"'a' in r.data"`)."""
    if "'" in item and '"' not in item and "\\" not in item:
        return '"' + item + '"'
    return "'" + item.replace("'", "''") + "'"


def _split_item(text: str, exc: yaml.YAMLError) -> tuple[int, int, str, bool] | None:
    """The unquoted expression item that made YAML fail, as (line, column, item, whether
    it starts with a quote or a bracket), if any.

    YAML reads `- assert_eq(r.data, {"a": 1})` as a mapping, and a quote after the ': '
    may then open a string that swallows the rest of the file; it reads the `"a"` of
    `- "a" in r.data` as the whole item. A candidate item is blamed only when quoting it
    makes the error go away or move past where it was.
    """
    problem = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if problem is None:
        return None
    lines = text.split("\n")
    last = min(problem.line, len(lines) - 1)
    first_guess = getattr(exc, "context_mark", None)
    order = list(range(last, -1, -1))
    if first_guess is not None and first_guess.line <= last:  # where a runaway string began
        order.remove(first_guess.line)
        order.insert(0, first_guess.line)
    tried = 0
    for number in order:
        match = _SPLIT_ITEM.match(lines[number])
        quoted = match is None
        if quoted:
            match = _QUOTED_ITEM.match(lines[number])
            if not match or not _under_expect(lines, number, len(match.group(1))):
                continue
            if first_guess is not None and (first_guess.line, first_guess.column) == (
                number, match.start(2)
            ):
                continue  # its own quote is never closed: that is the error to report
        item = match.group(2)
        if not quoted and not _CALL_BEFORE_COLON.match(item) and not _under_expect(
            lines, number, len(match.group(1))
        ):
            continue  # a plain mapping in a list (a step, say), as meant
        fixed = [*lines[:number], f"{match.group(1)}- {quote_item(item)}", *lines[number + 1 :]]
        try:
            for _ in yaml.parse("\n".join(fixed), Loader=yaml.SafeLoader):
                pass
        except yaml.YAMLError as again:
            moved = getattr(again, "problem_mark", None) or getattr(again, "context_mark", None)
            if moved is None or moved.line <= problem.line:
                tried += 1
                if tried >= _SPLIT_CANDIDATES:
                    return None
                continue
        return number + 1, match.start(2) + 1, item, quoted
    return None


def _under_expect(lines: list[str], number: int, indent: int) -> bool:
    """Whether the list item on line `number` (its '-' at `indent`) belongs to `expect:`."""
    for line in reversed(lines[:number]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(line) - len(line.lstrip(" ")) < indent or (
            len(line) - len(line.lstrip(" ")) == indent and not stripped.startswith("-")
        ):
            return bool(_EXPECT_KEY.match(line))
    return False


def _failure(exc: yaml.YAMLError) -> str:
    """What went wrong after YAML split an item, as the end of a sentence."""
    mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    if getattr(exc, "context", None) == "while scanning a quoted scalar" and context_mark:
        return (
            f"the quote at {context_mark.line + 1}:{context_mark.column + 1} opens a string "
            "that is never closed"
        )
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"fails at {mark.line + 1}:{mark.column + 1}: {problem}" if mark else f"fails: {problem}"


def _not_regular(mode: int) -> str | None:
    """What a path that is not a regular file is, for the error message."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def file_problem(path: Path, display: str, at: Location | None = None) -> SpecError | None:
    """Why `path` cannot be loaded as a YAML file (missing, a FIFO, a device...), or None.

    `at` is where an include names the file: the error is then reported there.
    """
    what = "included file" if at is not None else "file"
    loc = at or Location(display, 1, 1)
    try:
        kind = _not_regular(path.stat().st_mode)
    except FileNotFoundError:
        return SpecError(f"{what} not found: {display}", loc)
    except OSError as exc:
        return SpecError(f"cannot read {what} {display}: {exc.strerror or exc}", loc)
    if kind is None:
        return None
    # Reading a FIFO would block, and /dev/null is nothing anyone wrote.
    return SpecError(f"{what} {display} is {kind}, not a regular file; redtest reads YAML files", loc)


def load_document(path: Path, display: str | None = None) -> Document:
    """Load one YAML file safely; raises SpecError with file:line:col."""
    display = display or str(path)
    problem = file_problem(path, display)
    if problem is not None:
        raise problem
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read {display}: {exc.strerror or exc}", Location(display, 1, 1)) from None
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


def _compose(text: str, display: str) -> list[Node]:
    """Every document of `text` as a node tree; YAML problems become SpecErrors."""
    try:
        loader = _Loader(text)
    except ReaderError as exc:
        raise _reader_error(exc, text, display) from None
    nodes: list[Node] = []
    try:
        while loader.check_node():
            nodes.append(loader.get_node())
    except _TooDeep as exc:
        raise SpecError(_too_deep_message(), Location(display, exc.mark.line + 1, exc.mark.column + 1)) from None
    except yaml.YAMLError as exc:
        split = _split_item(text, exc)
        if split is None:
            raise _yaml_error(exc, display) from None
        line, column, item, quoted = split
        if quoted:
            what = _OPENS[item[0]]
            text = (
                f"invalid YAML: this item starts with {item[0]}, so YAML reads the {what} it "
                f"opens as the whole item, and then {_failure(exc)}; an expression that starts "
                f"with a {what} must be quoted as a whole: - {quote_item(item)}"
            )
        else:
            text = (
                f"invalid YAML: YAML reads the ': ' in this unquoted item as a mapping key, and "
                f"then {_failure(exc)}; an expression that holds ': ' (a dict literal or a "
                f"string, say) must be quoted, so quote the whole item: - {quote_item(item)}"
            )
        raise SpecError(text, Location(display, line, column)) from None
    finally:
        loader.dispose()
    return nodes


def parse_document(text: str, path: Path, display: str | None = None) -> Document:
    """Parse YAML text as one document; an empty file is an empty mapping."""
    display = display or str(path)
    builder = _Builder(display)
    nodes = _compose(text, display)
    if len(nodes) > 1:
        raise SpecError(
            "a redtest file holds one YAML document; found a second one after '---'",
            builder.loc(nodes[1]),
        )
    if not nodes or nodes[0] is None:
        builder.positions.values[()] = Location(display, 1, 1)
        return Document(path, {}, builder.positions, text)
    data = builder.build(nodes[0], ())
    return Document(path, data, builder.positions, text)
