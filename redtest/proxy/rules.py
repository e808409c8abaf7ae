"""Rules compiled once per `set_rules`: globs become regexes, counters live beside them.

Matching runs inside the framing loop for every command, so the per-command work is
one dict lookup (command name -> candidate rules) in the common case.
"""

from __future__ import annotations

import fnmatch
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from redtest.proxy.keys import NEED_GETKEYS
from redtest.spec.model import DownEffect, Rule

__all__ = ["CompiledRule", "RuleSet", "NEED_KEYS"]

NEED_KEYS: Any = NEED_GETKEYS  # match() result: the keys must be fetched from the server first


def _glob(pattern: str, flags: int = 0) -> re.Pattern[bytes]:
    return re.compile(fnmatch.translate(pattern).encode("utf-8"), flags | re.S)


class CompiledRule:
    """One rule with its globs compiled and its modifier counters."""

    __slots__ = (
        "index",
        "rule",
        "effect",
        "cmd_re",
        "key_re",
        "client_re",
        "probability",
        "after",
        "times",
        "for_seconds",
        "seen",
        "applied",
        "is_down",
    )

    def __init__(self, index: int, rule: Rule) -> None:
        self.index = index
        self.rule = rule
        self.effect = rule.effect
        self.cmd_re = _glob(rule.command, re.I) if rule.command is not None else None
        self.key_re = _glob(rule.key) if rule.key is not None else None
        self.client_re = _glob(rule.client) if rule.client is not None else None
        self.probability = rule.probability
        self.after = rule.after
        self.times = rule.times
        self.for_seconds = rule.for_seconds
        self.seen = 0  # filter matches while active (for `after`)
        self.applied = 0  # times the effect was applied (= hits)
        self.is_down = isinstance(rule.effect, DownEffect)

    @property
    def connection_level(self) -> bool:
        """A `down` rule without command/key filters also refuses connections."""
        return self.is_down and self.cmd_re is None and self.key_re is None

    @property
    def counted(self) -> bool:
        """Whether `after`, `times` or `probability` pick which attempts fail."""
        return self.after > 0 or self.times is not None or self.probability < 1.0


class RuleSet:
    """An immutable list of compiled rules plus mutable counters; one per `set_rules` call."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        rng_seed: int | None = None,
        on_hit: Callable[[int, Rule], None] | None = None,
    ) -> None:
        self.rules = [CompiledRule(i, r) for i, r in enumerate(rules)]
        self.rng = random.Random(rng_seed)
        self.on_hit = on_hit
        self.started = time.monotonic()  # reset again when the loop applies the set
        self.needs_keys = any(r.key_re is not None for r in self.rules)
        self.down_rules = [r for r in self.rules if r.connection_level]
        self._candidates: dict[bytes, tuple[CompiledRule, ...]] = {}
        self._plans: dict[tuple[bytes, bytes], Any] = {}

    def restart_clock(self) -> None:
        """Start the `for` windows now (called when the loop switches the set on)."""
        self.started = time.monotonic()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def hit_counts(self) -> list[int]:
        return [r.applied for r in self.rules]

    def candidates(self, name: bytes) -> tuple[CompiledRule, ...]:
        """Rules whose command glob accepts `name` (cached per spelling of the name)."""
        found = self._candidates.get(name)
        if found is None:
            found = tuple(r for r in self.rules if r.cmd_re is None or r.cmd_re.match(name))
            if len(self._candidates) < 4096:  # bound the cache against random names
                self._candidates[name] = found
        return found

    def plan(self, name: bytes, client: bytes, table: Any) -> Any:
        """What a command called `name` from client `client` needs before it can be forwarded.

        True: no rule can match it. (slice, match): only key rules can, and the keys sit
        at fixed positions; a command none of whose keys `match` needs no decision (the
        rules' modifiers only count commands whose filters matched). None: decide fully.
        `table` is the proxy's KeyTable (None when no rule has a key glob).
        """
        cache_key = (name, client)
        plan = self._plans.get(cache_key, False)
        if plan is not False:
            return plan
        cands = [
            r for r in self.candidates(name) if r.client_re is None or r.client_re.match(client)
        ]
        if not cands:
            plan = True
        elif table is None or any(r.key_re is None for r in cands):
            plan = None
        else:
            sl = table.fixed_slice(name)
            if sl is None:
                plan = None
            else:
                union = b"|".join(b"(?:%s)" % r.key_re.pattern for r in cands)  # type: ignore[union-attr]
                plan = (sl, re.compile(union, re.S).match)
        if len(self._plans) < 4096:
            self._plans[cache_key] = plan
        return plan

    def _fires(self, r: CompiledRule) -> bool:
        """Apply the modifiers of a rule whose filters matched; count a hit when it fires."""
        if r.for_seconds is not None and time.monotonic() - self.started >= r.for_seconds:
            return False
        r.seen += 1
        if r.seen <= r.after:
            return False
        if r.times is not None and r.applied >= r.times:
            return False
        if r.probability < 1.0 and self.rng.random() >= r.probability:
            return False
        r.applied += 1
        if self.on_hit is not None:
            self.on_hit(r.index, r.rule)
        return True

    def match(
        self,
        argv: list[bytes],
        client: bytes,
        keys_of: Callable[[list[bytes]], Any],
        start: int = 0,
        keys: Any = None,
    ) -> CompiledRule | None | tuple[Any, int]:
        """The first rule from position `start` that fires for this command, or None.

        Returns (NEED_KEYS, position) when a key glob must be checked and only the server
        can list the keys; call again with `start=position` and `keys=` the server's answer.
        """
        for r in self.candidates(argv[0]):
            if r.index < start:
                continue
            client_re = r.client_re
            if client_re is not None and not client_re.match(client):
                continue
            key_re = r.key_re
            if key_re is not None:
                if keys is None:
                    keys = keys_of(argv)
                    if keys is NEED_KEYS:
                        return NEED_KEYS, r.index
                for k in keys:
                    if key_re.match(k):
                        break
                else:
                    continue  # also: a keyless command never matches a key rule
            if self._fires(r):
                return r
        return None

    def connection_refused(
        self, client: bytes = b"", *, switching_on: bool = False
    ) -> CompiledRule | None:
        """The `down` rule that refuses (or closes) a connection right now, if any.

        When the rule is switched on, open connections are closed only by a rule that
        fails every attempt: a counted one (`after`, `times`, `probability`) spends its
        counts on what clients try next (a command, a new connection), not on idle
        connections of a pool.
        """
        for r in self.down_rules:
            if switching_on and r.counted:
                continue
            if r.client_re is not None and not r.client_re.match(client):
                continue
            if self._fires(r):
                return r
        return None
