"""JSON Schema validation of loaded documents, each error mapped to file:line:col."""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from redtest.errors import SpecError
from redtest.spec.load import Document

SCHEMA_RESOURCE = "redtest.schema.json"


def schema_text() -> str:
    """The schema exactly as shipped (what `redtest schema` prints)."""
    return resources.files("redtest").joinpath("schemas", SCHEMA_RESOURCE).read_text("utf-8")


@cache
def schema() -> dict[str, Any]:
    return json.loads(schema_text())


@cache
def _validator() -> Any:
    # jsonschema is slow to import; only validation needs it.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def validate_document(doc: Document) -> list[SpecError]:
    """Every schema violation in `doc`, one SpecError per place, in file order."""
    errors: dict[tuple[str | int, ...], SpecError] = {}
    for error in _validator().iter_errors(doc.data):
        leaf = _deepest(error)
        path = tuple(leaf.absolute_path)
        if _is_name_error(leaf):
            # A bad key's error carries the mapping's path: tell two bad keys apart.
            path = (*path, "\0name", leaf.instance)
        if path in errors:
            continue
        errors[path] = _to_spec_error(doc, leaf)
    return sorted(errors.values(), key=lambda e: (e.location.line, e.location.col))  # type: ignore[union-attr]


def _deepest(error: Any) -> Any:
    """For oneOf/anyOf failures, the sub-error that got furthest into the data."""
    best = error
    while best.context:
        candidates = [e for e in best.context if e.validator not in ("not",)] or list(best.context)
        deeper = max(candidates, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        if len(deeper.absolute_path) < len(best.absolute_path):
            break
        best = deeper
    return best


def _is_name_error(error: Any) -> bool:
    """Whether `error` is about a mapping key (a `propertyNames` check), not a value."""
    return "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str)


def _describe_path(path: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    for item in path:
        parts.append(f"[{item}]" if isinstance(item, int) else (f".{item}" if parts else str(item)))
    return "".join(parts) or "the file"


def _allowed_keys(error: Any) -> list[str]:
    props = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    return sorted(props)


def _to_spec_error(doc: Document, error: Any) -> SpecError:
    path = tuple(error.absolute_path)
    where = _describe_path(path)
    pos = doc.positions
    validator = error.validator
    if validator == "additionalProperties" or validator == "unevaluatedProperties":
        allowed = _allowed_keys(error)
        extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
        extras = [k for k in extras if not any(re.search(p, k) for p in patterns)] or extras
        key = extras[0] if extras else "?"
        hint = difflib.get_close_matches(key, allowed, n=1)
        text = f"unknown key {key!r} in {where}"
        if hint:
            text += f" — did you mean {hint[0]!r}?"
        elif allowed:
            text += f"; allowed keys: {', '.join(allowed)}"
        return SpecError(text, pos.key_of((*path, key)))
    if validator == "required":
        missing = error.message.split(" is a required")[0]
        text = f"{where} is missing {missing}"
        if path and path[0] == "fault_scenarios" and missing == "'expect'":
            text += _NO_EXPECT
        return SpecError(text, pos.key_of(path))
    if validator == "minItems" and path[:1] == ("fault_scenarios",) and path[-1:] == ("expect",):
        return SpecError(f"{where} is empty{_NO_EXPECT}", pos.of(path))
    if validator == "propertyNames":
        return SpecError(f"invalid name in {where}: {error.message}", pos.of(path))
    if _is_name_error(error):
        # Point at the bad key itself, not at the mapping (whose first key is elsewhere).
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        text = f"{where}: {error.instance!r} is not a valid name"
        if description:
            text += f" ({description.rstrip('.')})"
        return SpecError(text, pos.key_of((*path, error.instance)))
    if validator == "type" and "expect" in path and isinstance(error.instance, dict):
        loc = pos.of(path)
        line = doc.line(loc.line).strip().removeprefix("-").strip().replace("'", "''")
        return SpecError(
            f"{where} must be an expression string, but YAML read it as a mapping because it "
            f"holds ': '; quote the whole item: - '{line}'",
            loc,
        )
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if validator == "type":
        expected = error.validator_value
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in (expected if isinstance(expected, list) else [expected]))
        text = f"{where} must be {wanted}, not {_describe_value(error.instance)}"
        if description:
            text += f" ({description.rstrip('.')})"
        text += _shorthand_hint(path, error.instance)
        return SpecError(text, pos.of(path))
    if validator in ("minProperties", "maxProperties") and isinstance(error.instance, dict):
        return SpecError(_one_key_message(error, where, error.instance), pos.of(path))
    text = f"{where}: {error.message}"
    if validator == "pattern":
        text = f"{where}: {error.instance!r} is not valid"
    if validator in ("type", "enum", "const", "pattern") and description:
        text += f" ({description.rstrip('.')})"
    location = pos.key_of(path) if validator in ("minProperties", "maxProperties") else pos.of(path)
    return SpecError(text, location)


# The field a rule written in shorthand (`- delay: 500ms`) most likely meant.
_EFFECT_FIELD = {"delay": "delay", "error": "message", "response": "value", "drop": "mode"}


def _shorthand_hint(path: tuple[Any, ...], value: Any) -> str:
    """For `rules: [- delay: 500ms]`: the form that works, `delay: {delay: 500ms}`."""
    if (len(path) != 5 or path[0] != "faults" or path[2] != "rules"
            or path[4] not in _EFFECT_FIELD or isinstance(value, (dict, list))):
        return ""
    effect = path[4]
    shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
    return f"; write {effect}: {{{_EFFECT_FIELD[effect]}: {shown}}}"


_NO_EXPECT = (
    ": a fault scenario is judged by its own expect only (SPEC §6), and with none it would "
    "pass whatever the faults do; say what must hold, e.g. - assert_false(r.ok)"
)

_TYPE_NAMES = {
    "object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


def _describe_value(value: Any) -> str:
    """A short description of a wrong value: its kind, and the value when it is short,
    written as in YAML (`true`, not Python's `True`; null is just null)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean {'true' if value else 'false'}"
    kinds = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}
    kind = kinds.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 40 and not isinstance(value, (dict, list)) else kind


def _one_key_message(error: Any, where: str, instance: dict[str, Any]) -> str:
    keys = ", ".join(repr(k) for k in instance) or "none"
    # Which object miscounts is told by the schema that counted, not by the data's path
    # (a scenario may well be named `rules` or `healthcheck`).
    description = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
    if description.startswith("One fault rule"):
        return f"{where}: a rule holds exactly one effect (error, response, delay, drop or down); found {keys}"
    if description.startswith("A healthcheck"):
        return (
            f"{where}: a healthcheck holds exactly one of tcp, redis or http, "
            f"plus an optional timeout; found {keys}"
        )
    return (
        f"{where}: a step holds exactly one call — SERVICE.INTERFACE.METHOD or sleep — "
        f"plus optional as/expect/allow_error/timeout; found {keys}"
    )


def check_documents(docs: list[Document], cache: dict[int, list[SpecError]] | None = None) -> None:
    """Raise SpecErrors for every schema violation in any of `docs`.

    `cache` (id of a document -> its errors) spares validating a file that several
    suites include more than once; the caller keeps the documents alive.
    """
    from redtest.errors import SpecErrors

    cache = cache if cache is not None else {}
    found: list[SpecError] = []
    for doc in docs:
        if id(doc) not in cache:
            cache[id(doc)] = validate_document(doc)
        found.extend(cache[id(doc)])
    if len(found) == 1:
        raise found[0]
    if found:
        raise SpecErrors(found)
