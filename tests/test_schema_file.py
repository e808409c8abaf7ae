"""The shipped JSON Schema (redtest/schemas/redtest.schema.json): well-formed, documented,
accepting every construct of the format and rejecting each kind of mistake on its own."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SCHEMA = ROOT / "redtest" / "schemas" / "redtest.schema.json"
ROOT_SCHEMA = ROOT / "schemas" / "redtest.schema.json"

SCHEMA: dict[str, Any] = json.loads(PACKAGE_SCHEMA.read_text("utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# Keywords whose value is a map of name -> subschema.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
# Keywords whose value is one subschema.
_SCHEMA_ONE = (
    "items",
    "additionalProperties",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
)
# Keywords whose value is a list of subschemas.
_SCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")


def _walk(schema: Any, path: str = "#"):
    """Yield (path, subschema, keyword that holds it) for every subschema."""
    if not isinstance(schema, dict):
        return
    for keyword in _SCHEMA_MAPS:
        for name, sub in schema.get(keyword, {}).items():
            sub_path = f"{path}/{keyword}/{name}"
            yield sub_path, sub, keyword
            yield from _walk(sub, sub_path)
    for keyword in _SCHEMA_ONE:
        if keyword in schema:
            sub_path = f"{path}/{keyword}"
            yield sub_path, schema[keyword], keyword
            yield from _walk(schema[keyword], sub_path)
    for keyword in _SCHEMA_LIST:
        for index, sub in enumerate(schema.get(keyword, [])):
            sub_path = f"{path}/{keyword}/{index}"
            yield sub_path, sub, keyword
            yield from _walk(sub, sub_path)


def _resolve(pointer: str) -> Any:
    node: Any = SCHEMA
    for part in pointer.lstrip("#/").split("/"):
        node = node[part]
    return node


# ---------------------------------------------------------------- the file itself


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    # and against the metaschema fetched from the validator's own registry
    meta = jsonschema.Draft202012Validator.META_SCHEMA
    jsonschema.Draft202012Validator(meta).validate(SCHEMA)


def test_schema_identity() -> None:
    assert SCHEMA["$id"] == "https://redtest.dev/schemas/redtest.schema.json"
    assert SCHEMA["title"]
    assert SCHEMA["description"]
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["required"] == ["version"]


def test_file_is_pretty_printed_json_with_trailing_newline() -> None:
    text = PACKAGE_SCHEMA.read_text("utf-8")
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def test_every_property_has_a_description() -> None:
    missing = [
        path
        for path, sub, keyword in _walk(SCHEMA)
        if keyword in ("properties", "patternProperties", "$defs")
        and not (isinstance(sub, dict) and sub.get("description"))
    ]
    assert missing == []


def test_every_map_value_and_item_schema_has_a_description() -> None:
    missing = [
        path
        for path, sub, keyword in _walk(SCHEMA)
        if keyword in ("items", "additionalProperties", "propertyNames", "anyOf")
        and isinstance(sub, dict)
        and not sub.get("description")
    ]
    assert missing == []


def test_every_ref_resolves() -> None:
    refs = [sub["$ref"] for _, sub, _ in _walk(SCHEMA) if isinstance(sub, dict) and "$ref" in sub]
    assert refs
    for ref in refs:
        assert ref.startswith("#/$defs/")
        assert isinstance(_resolve(ref), dict), ref


def test_every_def_is_used() -> None:
    text = PACKAGE_SCHEMA.read_text("utf-8")
    unused = [name for name in SCHEMA["$defs"] if f'"#/$defs/{name}"' not in text]
    assert unused == []


def test_defaults_and_examples_are_valid_for_their_schemas() -> None:
    checked = 0
    for path, sub, _ in _walk(SCHEMA):
        if not isinstance(sub, dict):
            continue
        target = dict(sub)
        if "$ref" in target:  # validate against the referenced definition too
            target = {"allOf": [_resolve(target.pop("$ref")), target]}
        target = {**target, "$defs": SCHEMA["$defs"]}
        values = ([sub["default"]] if "default" in sub else []) + list(sub.get("examples", []))
        for value in values:
            errors = list(jsonschema.Draft202012Validator(target).iter_errors(value))
            assert errors == [], f"{path}: {value!r}: {errors[0].message}"
            checked += 1
    assert checked > 30


def test_documented_defaults() -> None:
    defs = SCHEMA["$defs"]
    assert defs["errorEffect"]["properties"]["message"]["default"] == "ERR injected fault"
    assert defs["responseEffect"]["properties"]["value"]["default"] is None
    assert defs["dropEffect"]["properties"]["mode"]["default"] == "close"
    assert defs["service"]["properties"]["runtime"]["default"] == "auto"
    assert defs["service"]["properties"]["timeout"]["default"] == "5s"
    assert defs["service"]["properties"]["reuse"]["default"] is False
    assert defs["healthcheck"]["properties"]["timeout"]["default"] == "10s"
    assert defs["step"]["properties"]["allow_error"]["default"] is False
    rule_props = defs["errorEffect"]["properties"]
    assert rule_props["probability"]["default"] == 1
    assert rule_props["after"]["default"] == 0


def test_root_symlink_points_at_the_package_file() -> None:
    assert ROOT_SCHEMA.is_symlink()
    assert str(ROOT_SCHEMA.readlink()) == "../redtest/schemas/redtest.schema.json"
    assert ROOT_SCHEMA.resolve() == PACKAGE_SCHEMA.resolve()
    assert ROOT_SCHEMA.read_bytes() == PACKAGE_SCHEMA.read_bytes()


# ---------------------------------------------------------------- valid documents

SPEC_SERVICES = {
    "version": 1,
    "services": {
        "cache": {
            "image": "redis:7",
            "interfaces": {"main": {"protocol": "redis", "port": 6379}},
            "healthcheck": {"tcp": "localhost:6379", "timeout": "10s"},
            "reuse": True,
            "seed": "seed_redis",
            "runtime": "auto",
        }
    },
}

SPEC_SEEDS = {
    "version": 1,
    "seeds": {
        "seed_redis": [
            {"cache.main.command": {"cmd": "FLUSHALL"}},
            {"cache.main.set": {"key": "config:max_retries", "value": "3"}},
            {"cache.main.set": {"key": "config:timeout_ms", "value": "5000"}},
        ]
    },
}

SPEC_FAULTS = {
    "version": 1,
    "faults": {
        "set_fails": {
            "target": "cache.main",
            "rules": [{"error": {"command": "SET", "message": "READONLY"}}],
        },
        "key_error": {
            "target": "cache.main",
            "rules": [{"error": {"key": "order:*", "message": "WRONGTYPE"}}],
        },
        "slow_reads": {
            "target": "cache.main",
            "rules": [{"delay": {"command": "GET", "delay": "500ms"}}],
        },
        "drop_writes": {"target": "cache.main", "rules": [{"drop": {"command": "SET"}}]},
        "redis_down": {"target": "cache.main", "rules": [{"down": {}}]},
    },
}

SPEC_SCENARIOS = {
    "version": 1,
    "scenarios": {
        "counter_increments": {
            "description": 'INCR turns "0" into "1"',
            "tags": ["smoke"],
            "steps": [
                {"cache.main.set": {"key": "counter", "value": "0"}},
                {"cache.main.incr": {"key": "counter"}},
                {"cache.main.get": {"key": "counter"}, "as": "r"},
            ],
            "expect": ['assert_eq(r.data["value"], "1")'],
        }
    },
    "fault_scenarios": {
        "incr_when_writes_fail": {
            "scenario": "counter_increments",
            "faults": ["set_fails"],
            "expect": [
                "assert_false(steps[0].ok)",
                'assert_eq(cache.main.get(key="counter").data["value"], None)',
            ],
        }
    },
}

SPEC_APP = {
    "version": 1,
    "services": {
        "app": {
            "command": ["python", "app.py"],
            "env": {"REDIS_URL": "${cache.main.url}", "PORT": "${self.api.port}"},
            "interfaces": {"api": {"protocol": "http", "port": 8080}},
            "healthcheck": {"http": "/health", "timeout": "10s"},
            "depends_on": ["cache"],
        },
        "db": {"interfaces": {"main": {"protocol": "sqlite", "path": "data/app.db"}}},
    },
}

SPEC_SEED_TRANSLATED = {
    "version": 1,
    "scenarios": {
        "hash_roundtrip": {
            "steps": [
                {"cache.main.command": {"cmd": "EXPIRE", "args": ["user:1", "3600"]}},
                {
                    "cache.main.command": {
                        "cmd": "HSET",
                        "args": ["user:1", "name", "alice", "email", "alice@example.com"],
                    }
                },
                {
                    "cache.main.command": {"cmd": "HGETALL", "args": ["user:1"]},
                    "as": "resp",
                    "expect": [
                        'assert_eq(r.data, {"name": "alice", "email": "alice@example.com"})'
                    ],
                },
            ]
        },
        "create_order": {
            "steps": [{"app.api.post": {"path": "/orders", "json": {"item": "book"}}}]
        },
    },
    "fault_scenarios": {
        "no_stale_cache": {
            "scenario": "create_order",
            "faults": "redis_down",
            "expect": [
                "assert_true(r.status >= 500)",
                'assert_eq(len(cache.main.keys(pattern="order:*").data), 0, "no cached order data after Redis failure")',
            ],
        }
    },
}

EVERYTHING = {
    "version": 1,
    "description": "every construct at once",
    "include": ["common/services.yaml", "../shared/faults.yml"],
    "x-defaults": {"anything": [1, "two", {"three": None}]},
    "x-": None,
    "services": {
        "cache": {
            "description": "the cache",
            "image": "redis:7-alpine",
            "interfaces": {
                "main": {"protocol": "redis", "port": 6379, "description": "primary"},
                "replica": {"protocol": "redis"},
            },
            "healthcheck": {"redis": "ping", "timeout": 5000},
            "reuse": False,
            "seed": [{"cache.main.command": {"cmd": "FLUSHALL", "args": []}}, {"sleep": 10}],
            "runtime": "embedded",
            "timeout": "1.5s",
        },
        "local_cache": {"interfaces": {"main": {"protocol": "redis"}}, "runtime": "local"},
        "docker_cache": {
            "interfaces": {"main": {"protocol": "redis"}},
            "runtime": "docker",
            "timeout": 250,
        },
        "app_1": {
            "description": "the application",
            "command": ["python", "-m", "app", "--port", "${self.api.port}"],
            "env": {"DEBUG": True, "WORKERS": 2, "RATIO": 0.5, "HOME_DIR": "${env.HOME}"},
            "workdir": "${env.PWD}/app",
            "interfaces": {"api": {"protocol": "http", "port": 65535, "path": "/api"}},
            "healthcheck": {"tcp": "localhost:${self.api.port}"},
            "depends_on": ["cache", "db"],
        },
        "web": {"image": "nginx:1", "interfaces": {"http": {"protocol": "http", "port": 80}}},
        "db": {"interfaces": {"main": {"protocol": "sqlite", "path": "data/app.db"}}},
        "_empty": {},
    },
    "seeds": {
        "seed.v1-base": [
            {"cache.main.ping": None},
            {"cache.main.ping": {}},
            {"db.main.exec": {"sql": "INSERT INTO t VALUES (?, ?)", "params": [1, None]}},
            {"cache.main.set": {"key": "n", "value": 3}},
            {"cache.main.set": {"key": "f", "value": 2.5, "extra": {"nested": [True, False]}}},
        ]
    },
    "faults": {
        "all-kinds": {
            "description": "one rule of each kind",
            "target": "cache.main",
            "rules": [
                {
                    "error": {
                        "command": "H*",
                        "key": "user:*",
                        "message": "OOM command not allowed",
                        "probability": 0.5,
                        "after": 0,
                        "times": 1,
                        "for": "2s",
                        "client": "worker-*",
                        "description": "intermittent OOM",
                    }
                },
                {"error": {}},
                {"response": {"command": "GET", "value": None}},
                {"response": {"value": "stale", "probability": 1}},
                {"response": {"value": -1, "probability": 0}},
                {"response": {}},
                {"delay": {"delay": 500}},
                {"delay": {"delay": " 1 m ", "command": "*", "after": 3, "times": 2, "for": 0}},
                {"delay": {"delay": "1h", "description": "very slow"}},
                {"drop": {"mode": "close"}},
                {"drop": {"mode": "blackhole", "command": "BLPOP"}},
                {"drop": {"mode": "lose_reply", "key": "k", "client": "c"}},
                {"drop": None},
                {"drop": {}},
                {"down": None},
                {"down": {"for": "2s", "description": "transient outage"}},
            ],
        }
    },
    "scenarios": {
        "every_step_kind": {
            "description": "all step keys",
            "tags": ["smoke", "slow"],
            "steps": [
                {
                    "cache.main.get": {"key": "x"},
                    "as": "first",
                    "expect": ["r.ok"],
                    "allow_error": True,
                    "timeout": "200ms",
                    "description": "read",
                },
                {"sleep": "200ms", "as": "nap", "expect": ["r.ok"], "description": "wait"},
                {"sleep": 0},
                {"sleep": 1.5},
                {
                    "app_1.api.request": {
                        "method": "PATCH",
                        "path": "/x",
                        "headers": {"A": "b"},
                        "body": "raw",
                    }
                },
                {"db.main.query": {"sql": "SELECT 1"}, "allow_error": False},
                {"A._.B": None},
            ],
            "expect": [],
        },
        "minimal": {"steps": [{"sleep": "1s"}]},
    },
    "fault_scenarios": {
        "every_step_kind.under-faults": {
            "description": "with faults",
            "tags": ["faults"],
            "scenario": "every_step_kind",
            "faults": ["all-kinds", "set_fails"],
            "expect": ["assert_true(True)"],
        },
        "single": {"scenario": "minimal", "faults": "all-kinds", "expect": ["not r.ok"]},
    },
}

VALID = {
    "minimal": {"version": 1},
    "library": {"version": 1, "include": [], "services": {}, "seeds": {}, "faults": {}},
    "spec_services": SPEC_SERVICES,
    "spec_seeds": SPEC_SEEDS,
    "spec_faults": SPEC_FAULTS,
    "spec_scenarios": SPEC_SCENARIOS,
    "spec_app": SPEC_APP,
    "spec_seed_translated": SPEC_SEED_TRANSLATED,
    "everything": EVERYTHING,
}


@pytest.mark.parametrize("doc", list(VALID.values()), ids=list(VALID))
def test_valid_documents_pass(doc: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert errors == []


@pytest.mark.parametrize(
    "duration",
    ["250ms", "2s", "1.5s", "1m", "1h", "100", " 5 s ", "0", "0.5ms", 0, 500, 1.25],
)
def test_valid_durations(duration: object) -> None:
    doc = {"version": 1, "scenarios": {"s": {"steps": [{"sleep": duration}]}}}
    assert list(VALIDATOR.iter_errors(doc)) == []


@pytest.mark.parametrize(
    "duration",
    ["", "fast", "-1s", "1.s", ".5s", "1 sec", "1d", "2S", "1e3", -1, True, None, [], {}],
)
def test_invalid_durations(duration: object) -> None:
    doc = {"version": 1, "scenarios": {"s": {"steps": [{"sleep": duration}]}}}
    errors = list(VALIDATOR.iter_errors(doc))
    assert errors
    assert all(list(e.absolute_path) == ["scenarios", "s", "steps", 0, "sleep"] for e in errors)


def _is_name_error(error: jsonschema.ValidationError, where: tuple[str, ...]) -> bool:
    """A name that breaks the pattern of its map's propertyNames, reported at the map."""
    return (
        tuple(error.absolute_path) == where
        and error.validator == "pattern"
        and "propertyNames" in error.absolute_schema_path
    )


@pytest.mark.parametrize("name", ["a", "_a", "A1_b", "a.b", "a-b", "seed.v1-base"])
def test_valid_test_names(name: str) -> None:
    doc = {"version": 1, "scenarios": {name: {"steps": [{"sleep": 1}]}}}
    assert list(VALIDATOR.iter_errors(doc)) == []


_ONE_OF_EACH: dict[str, Any] = {
    "seeds": [{"sleep": 1}],
    "faults": {"target": "c.m", "rules": [{"down": None}]},
    "scenarios": {"steps": [{"sleep": 1}]},
    "fault_scenarios": {"scenario": "s", "faults": "f", "expect": ["not r.ok"]},
}


@pytest.mark.parametrize("name", ["", "1a", "-a", ".a", "a b", "a/b", "a:b", "é"])
def test_invalid_test_names(name: str) -> None:
    for section, value in _ONE_OF_EACH.items():
        doc = {"version": 1, section: {name: value}}
        assert VALIDATOR.is_valid({"version": 1, section: {"ok": value}})
        errors = list(VALIDATOR.iter_errors(doc))
        assert errors, (section, name)
        assert all(_is_name_error(e, (section,)) for e in errors), (section, name)


@pytest.mark.parametrize("name", ["a.b", "a-b", "1a", "", "a b"])
def test_invalid_service_and_interface_names(name: str) -> None:
    doc = {"version": 1, "services": {name: {}}}
    (error,) = VALIDATOR.iter_errors(doc)
    assert _is_name_error(error, ("services",))
    doc = {"version": 1, "services": {"s": {"interfaces": {name: {"protocol": "redis"}}}}}
    (error,) = VALIDATOR.iter_errors(doc)
    assert _is_name_error(error, ("services", "s", "interfaces"))


# ---------------------------------------------------------------- invalid documents
#
# Each case changes one thing in BASE (a valid document) and names the path where the
# error must be reported; every error of the case must be at or under that path, so
# the document fails for that one reason.

BASE: dict[str, Any] = {
    "version": 1,
    "services": {
        "cache": {
            "interfaces": {"main": {"protocol": "redis", "port": 6379}},
            "healthcheck": {"tcp": "localhost:6379", "timeout": "10s"},
            "seed": "seed_redis",
        },
        "app": {
            "command": ["python", "app.py"],
            "env": {"REDIS_URL": "${cache.main.url}"},
            "interfaces": {"api": {"protocol": "http", "port": 8080}},
            "healthcheck": {"http": "/health"},
            "depends_on": ["cache"],
        },
    },
    "seeds": {"seed_redis": [{"cache.main.command": {"cmd": "FLUSHALL"}}]},
    "faults": {
        "f": {
            "target": "cache.main",
            "rules": [
                {"error": {"command": "SET", "message": "READONLY"}},
                {"response": {"value": None}},
                {"delay": {"delay": "500ms"}},
                {"drop": {"mode": "close"}},
                {"down": {}},
            ],
        }
    },
    "scenarios": {
        "s": {
            "tags": ["smoke"],
            "steps": [
                {"cache.main.get": {"key": "k"}, "as": "r", "expect": ["r.ok"]},
                {"sleep": "1s"},
            ],
            "expect": ["r.ok"],
        }
    },
    "fault_scenarios": {"fs": {"scenario": "s", "faults": ["f"], "expect": ["True"]}},
}

_DELETE = object()


def _changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


SVC = ("services", "cache")
APP = ("services", "app")
IFACE = ("services", "cache", "interfaces", "main")
HC = ("services", "cache", "healthcheck")
FAULT = ("faults", "f")
RULES = ("faults", "f", "rules")
SCEN = ("scenarios", "s")
STEP = ("scenarios", "s", "steps", 0)
FS = ("fault_scenarios", "fs")

# id: (path to change, new value or _DELETE, path where the error is reported)
INVALID: dict[str, tuple[tuple[Any, ...], Any, tuple[Any, ...]]] = {
    # top level
    "version missing": (("version",), _DELETE, ()),
    "version 2": (("version",), 2, ("version",)),
    "version string": (("version",), "1", ("version",)),
    "unknown top-level key": (("service",), {}, ()),
    "x prefix needs dash": (("xdefaults",), {}, ()),
    "include not a list": (("include",), "common.yaml", ("include",)),
    "include item not a string": (("include",), [1], ("include", 0)),
    "description not a string": (("description",), ["a"], ("description",)),
    "services not a map": (("services",), [], ("services",)),
    "seeds not a map": (("seeds",), [], ("seeds",)),
    "faults not a map": (("faults",), None, ("faults",)),
    "scenarios not a map": (("scenarios",), "s", ("scenarios",)),
    "fault_scenarios not a map": (("fault_scenarios",), 1, ("fault_scenarios",)),
    # services
    "service not a map": (SVC, "redis", SVC),
    "unknown service key": ((*SVC, "ports"), [6379], SVC),
    "image not a string": ((*SVC, "image"), 7, (*SVC, "image")),
    "command a string": ((*APP, "command"), "python app.py", (*APP, "command")),
    "command empty": ((*APP, "command"), [], (*APP, "command")),
    "command item a number": ((*APP, "command"), ["python", 8080], (*APP, "command", 1)),
    "env a list": ((*APP, "env"), ["A=1"], (*APP, "env")),
    "env value a list": ((*APP, "env", "A"), ["x"], (*APP, "env", "A")),
    "env value null": ((*APP, "env", "A"), None, (*APP, "env", "A")),
    "env name with =": ((*APP, "env", "A=B"), "x", (*APP, "env")),
    "env name empty": ((*APP, "env", ""), "x", (*APP, "env")),
    "workdir not a string": ((*APP, "workdir"), 1, (*APP, "workdir")),
    "interfaces a list": ((*SVC, "interfaces"), [{"protocol": "redis"}], (*SVC, "interfaces")),
    "depends_on a string": ((*APP, "depends_on"), "cache", (*APP, "depends_on")),
    "depends_on duplicate": ((*APP, "depends_on"), ["cache", "cache"], (*APP, "depends_on")),
    "depends_on bad name": ((*APP, "depends_on"), ["cache.main"], (*APP, "depends_on", 0)),
    "reuse a string": ((*SVC, "reuse"), "yes", (*SVC, "reuse")),
    "seed a number": ((*SVC, "seed"), 1, (*SVC, "seed")),
    "seed bad name": ((*SVC, "seed"), "seed redis", (*SVC, "seed")),
    "seed empty list": ((*SVC, "seed"), [], (*SVC, "seed")),
    "seed bad inline step": ((*SVC, "seed"), [{"flushall": None}], (*SVC, "seed")),
    "runtime unknown": ((*SVC, "runtime"), "podman", (*SVC, "runtime")),
    "service timeout bad": ((*SVC, "timeout"), "soon", (*SVC, "timeout")),
    # interfaces
    "interface not a map": (IFACE, "redis", IFACE),
    "protocol missing": ((*IFACE, "protocol"), _DELETE, IFACE),
    "protocol unknown": ((*IFACE, "protocol"), "memcached", (*IFACE, "protocol")),
    "port zero": ((*IFACE, "port"), 0, (*IFACE, "port")),
    "port too big": ((*IFACE, "port"), 65536, (*IFACE, "port")),
    "port a string": ((*IFACE, "port"), "6379", (*IFACE, "port")),
    "port a float": ((*IFACE, "port"), 6379.5, (*IFACE, "port")),
    "path not a string": ((*IFACE, "path"), 1, (*IFACE, "path")),
    "unknown interface key": ((*IFACE, "host"), "localhost", IFACE),
    "sqlite without path": (
        ("services", "db"),
        {"interfaces": {"main": {"protocol": "sqlite"}}},
        ("services", "db", "interfaces", "main"),
    ),
    # healthcheck
    "healthcheck empty": (HC, {}, HC),
    "healthcheck only timeout": (HC, {"timeout": "1s"}, HC),
    "healthcheck two kinds": ((*HC, "redis"), "ping", HC),
    "healthcheck three kinds": (HC, {"tcp": "h:1", "redis": "ping", "http": "/"}, HC),
    "healthcheck unknown key": ((*HC, "retries"), 3, HC),
    "healthcheck redis not ping": (HC, {"redis": "PONG"}, (*HC, "redis")),
    "healthcheck tcp without port": (HC, {"tcp": "localhost"}, (*HC, "tcp")),
    "healthcheck tcp not a string": (HC, {"tcp": 6379}, (*HC, "tcp")),
    "healthcheck http relative": (HC, {"http": "health"}, (*HC, "http")),
    "healthcheck timeout bad": ((*HC, "timeout"), "10 seconds", (*HC, "timeout")),
    "healthcheck interval (not an option)": ((*HC, "interval"), "1s", HC),
    "healthcheck a string": (HC, "redis", HC),
    # seeds and steps
    "seed not a list": (
        ("seeds", "seed_redis"),
        {"cache.main.ping": None},
        ("seeds", "seed_redis"),
    ),
    "seed empty": (("seeds", "seed_redis"), [], ("seeds", "seed_redis")),
    "steps missing": ((*SCEN, "steps"), _DELETE, SCEN),
    "steps empty": ((*SCEN, "steps"), [], (*SCEN, "steps")),
    "steps not a list": ((*SCEN, "steps"), {"cache.main.ping": None}, (*SCEN, "steps")),
    "step a string": (STEP, "cache.main.ping", STEP),
    "step empty": (STEP, {}, STEP),
    "step without a call": (STEP, {"as": "r", "expect": ["r.ok"]}, STEP),
    "two call keys": ((*STEP, "cache.main.set"), {"key": "k", "value": "v"}, STEP),
    "call and sleep": ((*STEP, "sleep"), "1s", STEP),
    "two calls with every option": (
        STEP,
        {
            "cache.main.get": {"key": "a"},
            "cache.main.del": {"key": "a"},
            "as": "r",
            "expect": [],
            "allow_error": True,
            "timeout": "1s",
            "description": "d",
        },
        STEP,
    ),
    "call key with two parts": (STEP, {"cache.get": {"key": "k"}}, STEP),
    "call key with four parts": (STEP, {"cache.main.get.x": {"key": "k"}}, STEP),
    "call key with digit in method": (STEP, {"cache.main.get2": {"key": "k"}}, STEP),
    "call key with dash in service": (STEP, {"my-cache.main.get": {"key": "k"}}, STEP),
    "unknown step key": ((*STEP, "name"), "x", STEP),
    "call args a list": ((*STEP, "cache.main.get"), ["k"], (*STEP, "cache.main.get")),
    "call args a string": ((*STEP, "cache.main.get"), "k", (*STEP, "cache.main.get")),
    "as with a dash": ((*STEP, "as"), "my-r", (*STEP, "as")),
    "as a number": ((*STEP, "as"), 1, (*STEP, "as")),
    "step expect a string": ((*STEP, "expect"), "r.ok", (*STEP, "expect")),
    "step expect item a map": (
        (*STEP, "expect"),
        [{"assert_eq(r.data, {'a'": "1})"}],
        (*STEP, "expect", 0),
    ),
    "allow_error a string": ((*STEP, "allow_error"), "yes", (*STEP, "allow_error")),
    "step timeout bad": ((*STEP, "timeout"), "1x", (*STEP, "timeout")),
    "step description a list": ((*STEP, "description"), ["x"], (*STEP, "description")),
    "sleep bad": (
        ("scenarios", "s", "steps", 1, "sleep"),
        "a while",
        ("scenarios", "s", "steps", 1, "sleep"),
    ),
    "sleep null": (
        ("scenarios", "s", "steps", 1, "sleep"),
        None,
        ("scenarios", "s", "steps", 1, "sleep"),
    ),
    # faults
    "fault not a map": (FAULT, [], FAULT),
    "target missing": ((*FAULT, "target"), _DELETE, FAULT),
    "target one part": ((*FAULT, "target"), "cache", (*FAULT, "target")),
    "target three parts": ((*FAULT, "target"), "cache.main.get", (*FAULT, "target")),
    "rules missing": ((*FAULT, "rules"), _DELETE, FAULT),
    "rules empty": ((*FAULT, "rules"), [], (*FAULT, "rules")),
    "rules a map": ((*FAULT, "rules"), {"error": {}}, (*FAULT, "rules")),
    "unknown fault key": ((*FAULT, "scope"), "all", FAULT),
    "rule empty": ((*RULES, 0), {}, (*RULES, 0)),
    "rule a string": ((*RULES, 0), "down", (*RULES, 0)),
    "two effect keys": ((*RULES, 0, "delay"), {"delay": "1s"}, (*RULES, 0)),
    "unknown effect": ((*RULES, 0), {"timeout": {}}, (*RULES, 0)),
    "modifier at rule level": ((*RULES, 0, "probability"), 0.5, (*RULES, 0)),
    "unknown key in error": ((*RULES, 0, "error", "reply"), "x", (*RULES, 0, "error")),
    "error null": ((*RULES, 0), {"error": None}, (*RULES, 0, "error")),
    "error message a number": ((*RULES, 0, "error", "message"), 1, (*RULES, 0, "error", "message")),
    "error message empty": ((*RULES, 0, "error", "message"), "", (*RULES, 0, "error", "message")),
    "command glob empty": ((*RULES, 0, "error", "command"), "", (*RULES, 0, "error", "command")),
    "command a list": (
        (*RULES, 0, "error", "command"),
        ["SET", "GET"],
        (*RULES, 0, "error", "command"),
    ),
    "key a number": ((*RULES, 0, "error", "key"), 1, (*RULES, 0, "error", "key")),
    "client a number": ((*RULES, 0, "error", "client"), 1, (*RULES, 0, "error", "client")),
    "probability above 1": (
        (*RULES, 0, "error", "probability"),
        1.5,
        (*RULES, 0, "error", "probability"),
    ),
    "probability negative": (
        (*RULES, 0, "error", "probability"),
        -0.1,
        (*RULES, 0, "error", "probability"),
    ),
    "probability a string": (
        (*RULES, 0, "error", "probability"),
        "50%",
        (*RULES, 0, "error", "probability"),
    ),
    "after negative": ((*RULES, 0, "error", "after"), -1, (*RULES, 0, "error", "after")),
    "after a float": ((*RULES, 0, "error", "after"), 1.5, (*RULES, 0, "error", "after")),
    "times zero": ((*RULES, 0, "error", "times"), 0, (*RULES, 0, "error", "times")),
    "for bad": ((*RULES, 0, "error", "for"), "forever", (*RULES, 0, "error", "for")),
    "response value a float": (
        (*RULES, 1, "response", "value"),
        1.5,
        (*RULES, 1, "response", "value"),
    ),
    "response value a list": (
        (*RULES, 1, "response", "value"),
        ["a"],
        (*RULES, 1, "response", "value"),
    ),
    "response value a bool": (
        (*RULES, 1, "response", "value"),
        True,
        (*RULES, 1, "response", "value"),
    ),
    "response message": ((*RULES, 1, "response", "message"), "x", (*RULES, 1, "response")),
    "response null": ((*RULES, 1), {"response": None}, (*RULES, 1, "response")),
    "delay without delay": ((*RULES, 2), {"delay": {"command": "GET"}}, (*RULES, 2, "delay")),
    "delay null": ((*RULES, 2), {"delay": None}, (*RULES, 2, "delay")),
    "delay a duration": ((*RULES, 2), {"delay": "500ms"}, (*RULES, 2, "delay")),
    "delay value bad": ((*RULES, 2, "delay", "delay"), "slow", (*RULES, 2, "delay", "delay")),
    "delay with mode": ((*RULES, 2, "delay", "mode"), "close", (*RULES, 2, "delay")),
    "drop mode unknown": ((*RULES, 3, "drop", "mode"), "reset", (*RULES, 3, "drop", "mode")),
    "drop with message": ((*RULES, 3, "drop", "message"), "x", (*RULES, 3, "drop")),
    "drop a string": ((*RULES, 3), {"drop": "close"}, (*RULES, 3, "drop")),
    "down with command": ((*RULES, 4, "down", "command"), "SET", (*RULES, 4, "down")),
    "down with key": ((*RULES, 4, "down", "key"), "order:*", (*RULES, 4, "down")),
    "down with bad times": ((*RULES, 4, "down", "times"), 0, (*RULES, 4, "down", "times")),
    "down a bool": ((*RULES, 4), {"down": True}, (*RULES, 4, "down")),
    "down for bad": ((*RULES, 4, "down", "for"), "2 seconds", (*RULES, 4, "down", "for")),
    # scenarios
    "scenario not a map": (SCEN, [], SCEN),
    "unknown scenario key": ((*SCEN, "faults"), ["f"], SCEN),
    "tags a string": ((*SCEN, "tags"), "smoke", (*SCEN, "tags")),
    "tags duplicate": ((*SCEN, "tags"), ["a", "a"], (*SCEN, "tags")),
    "tag a number": ((*SCEN, "tags"), [1], (*SCEN, "tags", 0)),
    "expect a string": ((*SCEN, "expect"), "r.ok", (*SCEN, "expect")),
    "expect item a number": ((*SCEN, "expect"), [1], (*SCEN, "expect", 0)),
    "expect item empty": ((*SCEN, "expect"), [""], (*SCEN, "expect", 0)),
    # fault scenarios
    "fault scenario not a map": (FS, "s", FS),
    "scenario missing": ((*FS, "scenario"), _DELETE, FS),
    "faults missing": ((*FS, "faults"), _DELETE, FS),
    "faults empty": ((*FS, "faults"), [], (*FS, "faults")),
    "faults bad name": ((*FS, "faults"), "f g", (*FS, "faults")),
    "faults item bad name": ((*FS, "faults"), ["f", "1g"], (*FS, "faults")),
    "faults duplicate": ((*FS, "faults"), ["f", "f"], (*FS, "faults")),
    "faults a map": ((*FS, "faults"), {"f": None}, (*FS, "faults")),
    "scenario a list": ((*FS, "scenario"), ["s"], (*FS, "scenario")),
    "scenario bad name": ((*FS, "scenario"), "my scenario", (*FS, "scenario")),
    "unknown fault scenario key": ((*FS, "steps"), [{"sleep": 1}], FS),
    "fault scenario tags a string": ((*FS, "tags"), "x", (*FS, "tags")),
    "fault scenario expect a map": ((*FS, "expect"), {"a": "b"}, (*FS, "expect")),
}


def test_base_document_is_valid() -> None:
    assert list(VALIDATOR.iter_errors(BASE)) == []


@pytest.mark.parametrize("case", list(INVALID.values()), ids=list(INVALID))
def test_invalid_documents_fail_for_one_reason(case: tuple[Any, Any, tuple[Any, ...]]) -> None:
    path, value, where = case
    doc = _changed(path, value)
    errors = list(VALIDATOR.iter_errors(doc))
    assert errors, "expected the document to be rejected"
    for error in errors:
        assert tuple(error.absolute_path)[: len(where)] == where, (
            f"error elsewhere: {list(error.absolute_path)}: {error.message}"
        )


def test_step_count_errors_explain_themselves() -> None:
    """Too many / too few call keys yield min/maxProperties errors whose schema says why."""
    for step in (
        {"cache.main.get": {"key": "a"}, "cache.main.set": {"key": "a", "value": "b"}, "as": "x"},
        {"as": "x", "allow_error": True},
    ):
        doc = {"version": 1, "scenarios": {"s": {"steps": [step]}}}
        (error,) = VALIDATOR.iter_errors(doc)
        assert error.validator in ("minProperties", "maxProperties")
        assert "exactly one call" in error.schema["description"]
    doc = {
        "version": 1,
        "services": {"c": {"healthcheck": {"tcp": "h:1", "http": "/", "timeout": 1}}},
    }
    (error,) = VALIDATOR.iter_errors(doc)
    assert error.validator == "maxProperties"
    assert "exactly one of `tcp`, `redis` or `http`" in error.schema["description"]


def test_rule_with_two_effects_is_one_readable_error() -> None:
    doc = {"version": 1, "faults": {"f": {"target": "c.m", "rules": [{"error": {}, "drop": {}}]}}}
    (error,) = VALIDATOR.iter_errors(doc)
    assert error.validator == "maxProperties"
    assert "exactly one of `error`" in error.schema["description"]


def test_every_optional_step_key_combination_counts_correctly() -> None:
    """The step's nested if/then counts each optional key: with any subset of them, one
    call passes, two calls and zero calls fail."""
    options = {"as": "r", "expect": [], "allow_error": True, "timeout": "1s", "description": "d"}
    names = list(options)
    for mask in range(1 << len(names)):
        extra = {name: options[name] for i, name in enumerate(names) if mask >> i & 1}
        one = {"version": 1, "seeds": {"s": [{"c.m.ping": None, **extra}]}}
        two = {"version": 1, "seeds": {"s": [{"c.m.ping": None, "sleep": 1, **extra}]}}
        none = {"version": 1, "seeds": {"s": [dict(extra)]}}
        assert VALIDATOR.is_valid(one), extra
        assert not VALIDATOR.is_valid(two), extra
        assert not VALIDATOR.is_valid(none), extra


def test_schema_describes_every_model_field() -> None:
    """Keys the model builder reads exist in the schema (guards against a rename on one side)."""
    defs = SCHEMA["$defs"]
    assert set(defs["service"]["properties"]) == {
        "description", "image", "command", "env", "workdir", "interfaces", "healthcheck",
        "depends_on", "reuse", "seed", "runtime", "timeout",
    }  # fmt: skip
    assert set(defs["interface"]["properties"]) == {"protocol", "port", "path", "description"}
    assert set(defs["healthcheck"]["properties"]) == {"tcp", "redis", "http", "timeout"}
    assert set(defs["rule"]["properties"]) == {"error", "response", "delay", "drop", "down"}
    assert set(defs["step"]["properties"]) == {
        "sleep", "as", "expect", "allow_error", "timeout", "description",
    }  # fmt: skip
    common = {"command", "key", "probability", "after", "times", "for", "client", "description"}
    assert set(defs["errorEffect"]["properties"]) == common | {"message"}
    assert set(defs["responseEffect"]["properties"]) == common | {"value"}
    assert set(defs["delayEffect"]["properties"]) == common | {"delay"}
    assert set(defs["dropEffect"]["properties"]) == common | {"mode"}
    # SPEC §4: every rule takes the modifiers; `down` has no command/key filter
    assert set(defs["downEffect"]["properties"]) == common - {"command", "key"}
    assert set(defs["scenario"]["properties"]) == {"description", "tags", "steps", "expect"}
    assert set(defs["faultScenario"]["properties"]) == {
        "description", "tags", "scenario", "faults", "expect",
    }  # fmt: skip


def test_every_healthcheck_option_combination_counts_correctly() -> None:
    options = {"timeout": "1s"}
    kinds = {"tcp": "localhost:6379", "redis": "ping", "http": "/health"}
    for mask in range(1 << len(options)):
        extra = {name: value for i, (name, value) in enumerate(options.items()) if mask >> i & 1}
        for kind, target in kinds.items():
            one = {"version": 1, "services": {"c": {"healthcheck": {kind: target, **extra}}}}
            assert VALIDATOR.is_valid(one), (kind, extra)
            for other, other_target in kinds.items():
                if other != kind:
                    two = {kind: target, other: other_target, **extra}
                    doc = {"version": 1, "services": {"c": {"healthcheck": two}}}
                    assert not VALIDATOR.is_valid(doc), two
        none = {"version": 1, "services": {"c": {"healthcheck": dict(extra)}}}
        assert not VALIDATOR.is_valid(none), extra
