"""The diagnosis rule table: rules as data (rules.yaml, plus rules probe plugins declare), checked on load.

A rule names the finding ids it needs, optional conditions on their evidence or the result's facts, the
cause it stands for (severity, one next step) and samples that prove it. The table's order is the
order of precedence: a more specific rule comes before a generic one (see engine.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from diagkit.findings import Severity

_RULE_KEYS = {"id", "cause", "severity", "next_step", "all", "any", "also", "unless", "where", "samples"}
_WHERE_KEYS = {"in", "key", "matches", "as"}


@dataclass(frozen=True)
class Condition:
    """A regex that some string value must match: in the matched findings' evidence, title and detail
    (`in: evidence`, the default) or in the result's facts (`in: facts`); `key` narrows it to one or more
    dotted paths (lists are walked). `as` names what matched for the cause text, e.g. `{issuer}`: the whole
    value under a `key`, else the regex's match."""

    source: str
    keys: tuple[str, ...]
    pattern: re.Pattern[str]
    name: str


@dataclass(frozen=True)
class Rule:
    id: str
    cause: str
    severity: Severity
    next_step: str
    all: tuple[tuple[str, ...], ...] = ()  # every item must be present; an item is an id or a list of alternatives
    any: tuple[str, ...] = ()  # at least one of these must be present (when given)
    also: tuple[str, ...] = ()  # tied to the cause when present, never needed
    unless: tuple[str, ...] = ()  # the rule does not apply when one of these is present
    where: tuple[Condition, ...] = ()
    samples: Mapping[str, Any] | None = None

    def required(self) -> tuple[str, ...]:
        """The ids (or globs) of `all` and `any`: the evidence the rule stands on."""
        return (*(i for item in self.all for i in item), *self.any)

    def ids(self) -> tuple[str, ...]:
        """Every id (or glob) the rule names, in the order the cause lists them: most telling first."""
        return (*self.required(), *self.also)


def _ids(spec: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = spec.get(key) or ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: '{key}' must be a list of finding ids")
    return tuple(str(v) for v in value)


def _groups(spec: Mapping[str, Any], where: str) -> tuple[tuple[str, ...], ...]:
    value = spec.get("all") or ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: 'all' must be a list of finding ids (or of lists of alternatives)")
    return tuple((str(item),) if isinstance(item, str) else _ids({"all": item}, "all", where) for item in value)


def _condition(spec: Any, where: str) -> Condition:
    if not isinstance(spec, Mapping) or "matches" not in spec or set(spec) - _WHERE_KEYS:
        raise ValueError(f"{where}: a 'where' item is {{in, key, matches, as}} with 'matches' required")
    source = str(spec.get("in", "evidence"))
    if source not in ("evidence", "facts"):
        raise ValueError(f"{where}: 'in' is evidence or facts, not {source!r}")
    try:
        pattern = re.compile(str(spec["matches"]))
    except re.error as exc:
        raise ValueError(f"{where}: bad regex {spec['matches']!r}: {exc}") from None
    keys = spec.get("key") or ()
    keys = (keys,) if isinstance(keys, str) else tuple(str(k) for k in keys)
    return Condition(source, keys, pattern, str(spec.get("as", "")))


def parse_rule(spec: Mapping[str, Any], source: str = "rules.yaml") -> Rule:
    """One rule from its data form; a malformed rule is a ValueError naming it (never silently skipped)."""
    where = f"{source}: rule {spec.get('id', '?')!r}"
    unknown = set(spec) - _RULE_KEYS
    missing = {"id", "cause", "severity", "next_step"} - set(spec)
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}" if unknown else f"{where}: missing {sorted(missing)}")
    rule = Rule(
        id=str(spec["id"]), cause=str(spec["cause"]).strip(), severity=Severity.parse(spec["severity"]),
        next_step=str(spec["next_step"]).strip(),
        all=_groups(spec, where), any=_ids(spec, "any", where), also=_ids(spec, "also", where),
        unless=_ids(spec, "unless", where),
        where=tuple(_condition(c, where) for c in spec.get("where") or ()),
        samples=spec.get("samples"),
    )
    if not rule.all and not rule.any:
        raise ValueError(f"{where}: needs 'all' or 'any' (a rule with no required id would match everything)")
    return rule


@functools.cache
def _builtin() -> tuple[Rule, ...]:
    import yaml

    text = resources.files("diagkit.diagnosis").joinpath("rules.yaml").read_text(encoding="utf-8")
    return tuple(parse_rule(spec) for spec in yaml.safe_load(text) or ())


_registered: list[Rule] = []


def register(source: str, specs: Sequence[Mapping[str, Any]]) -> None:
    """Add a plugin's rules after the built-in ones (a plugin's causes never outrank diagkit's own)."""
    known = {r.id: r for r in table()}
    for spec in specs:
        rule = parse_rule(spec, source)
        if rule.id in known:
            if known[rule.id] == rule:
                continue  # the same plugin loaded again: nothing new
            raise ValueError(f"{source}: diagnosis rule {rule.id!r} is already defined")
        known[rule.id] = rule
        _registered.append(rule)


def table() -> tuple[Rule, ...]:
    """Every rule in order of precedence: built-in first (file order), then plugins' in load order."""
    return _builtin() + tuple(_registered)
