"""`${...}` templates in commands, env, workdir and paths (SPEC §8).

`${SERVICE.INTERFACE.host|port|addr|url}` — where the application should connect
(the proxy for Redis interfaces); `${self.INTERFACE.port}` — a free port the
application must listen on; `${env.NAME}` — an environment variable. `$$` is a
literal dollar sign.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redtest.spec.model import Service

ATTRIBUTES = ("host", "port", "addr", "url")
_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SERVICE_REF = re.compile(rf"^({_NAME})\.({_NAME})\.({_NAME})$")
_ENV_REF = re.compile(r"^env\.([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class Ref:
    """One parsed `${...}` reference."""

    text: str  # as written, without ${ }
    service: str | None = None  # "self" for the service's own interfaces
    interface: str | None = None
    attribute: str | None = None
    env: str | None = None


def parse(template: str) -> list[Ref]:
    """The references in `template`; raises ValueError on a malformed one."""
    refs = []
    for match in _TOKEN.finditer(template):
        if match.group(0) == "$$":
            continue
        refs.append(parse_ref(match.group(1).strip()))
    rest = _TOKEN.sub("", template)
    if "${" in rest:
        raise ValueError(f"unterminated template in {template!r} (a '${{' without its '}}')")
    return refs


def parse_ref(text: str) -> Ref:
    env = _ENV_REF.match(text)
    if env:
        return Ref(text, env=env.group(1))
    svc = _SERVICE_REF.match(text)
    if svc is None:
        raise ValueError(
            f"bad template ${{{text}}}: write ${{SERVICE.INTERFACE.host|port|addr|url}}, "
            "${self.INTERFACE.port} or ${env.NAME}"
        )
    service, interface, attribute = svc.groups()
    if attribute not in ATTRIBUTES:
        raise ValueError(
            f"bad template ${{{text}}}: unknown attribute {attribute!r} "
            f"(use one of {', '.join(ATTRIBUTES)})"
        )
    return Ref(text, service=service, interface=interface, attribute=attribute)


def expand(template: str, resolve: Callable[[Ref], str]) -> str:
    """Replace every reference with `resolve(ref)`; `$$` becomes `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return resolve(parse_ref(match.group(1).strip()))

    return _TOKEN.sub(replace, template)


def service_refs(svc: Service) -> list[Ref]:
    """Every reference in a service's templated fields: command, env values, workdir,
    healthcheck target and interface paths (bad ones skipped: validation reports them)."""
    texts = [*(svc.command or ()), *svc.env.values(), svc.workdir or ""]
    if svc.healthcheck is not None:
        texts.append(svc.healthcheck.target)
    texts += [i.path for i in svc.interfaces.values() if i.path]
    refs: list[Ref] = []
    for text in texts:
        try:
            refs += parse(text)
        except ValueError:
            continue
    return refs
