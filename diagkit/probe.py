"""The probe plugin interface: what a probe declares and what its run function receives.

A probe is a module-level `Probe` object registered under the `diagkit.probes` entry-point group
(built-ins included). Its options become `diagkit probe NAME` options automatically. Keep probe
modules light to import: load heavy libraries inside `run`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from diagkit import catalogue
from diagkit.errors import InputError
from diagkit.findings import Finding, Severity


@dataclass(frozen=True)
class Option:
    """One probe option. `name` is the Python keyword passed to run; the flag is --name-with-dashes."""

    name: str
    help: str
    # str, int, float, bool, or a function of one value that raises ValueError for a value it refuses;
    # `choices` (matched without regard to case) win over `type`. See convert_value.
    type: Any = str
    default: Any = None
    multiple: bool = False
    is_flag: bool = False
    flags: tuple[str, ...] = ()  # e.g. ("-H", "--header"); default is (--name,)
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    # How results record the value (findings.json keeps each run's options so `packet replay` can re-run it):
    # True: a credential, recorded only as given (SECRET); a function: maps one value to what may be
    # recorded (e.g. a header keeps its name and loses a secret value). False: recorded as given.
    secret: bool | Callable[[str], str] = False

    def cli_flags(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)


# ---------------------------------------------------------------- option values
# The one conversion of option values: `diagkit probe NAME --opt` (through cli/probe.py's OptionType) and
# checklists, `--probe` specs and replays (through coerce_options) read a value the same way and refuse one
# with the same words.

_BOOL_STATES = {"1": True, "0": False, "yes": True, "no": False, "true": True, "false": False, "on": True,
                "off": False, "t": True, "f": False, "y": True, "n": False, "": False}
_NUMBER_NAMES = {int: "integer", float: "float"}


def convert_value(option: Option, value: Any) -> Any:
    """One value of a valued option (not a flag), read by its `choices` or `type`.

    Raises ValueError whose message names the value, e.g. "'abc' is not a valid integer.".
    """
    if option.choices:
        normalised = {choice: str(choice).casefold() for choice in option.choices}
        wanted = str(value).casefold()
        for choice, text in normalised.items():
            if text == wanted:
                return choice
        shown = ", ".join(map(repr, normalised.values()))
        raise ValueError(f"{value!r} is not {shown}." if len(option.choices) == 1
                         else f"{value!r} is not one of {shown}.")
    kind = option.type
    if kind is None or kind is str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if kind in _NUMBER_NAMES:
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a valid {_NUMBER_NAMES[kind]}.") from None
    if kind is bool:
        state = value if isinstance(value, bool) else _BOOL_STATES.get(str(value).strip().lower())
        if state is None:
            raise ValueError(f"{value!r} is not a valid boolean. Recognized values: {', '.join(sorted(_BOOL_STATES))}")
        return state
    try:
        return kind(value)
    except ValueError as exc:
        raise ValueError(str(exc) or str(value)) from None


def coerce_options(probe: Probe, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Option values (from a checklist, a `--probe` spec or a packet) converted as `diagkit probe` converts
    them; a flag also takes yes/no, true/false, on/off, 1/0 or an empty value (yes).

    Raises InputError naming `where`, the option's flag and the value refused; an option the probe does
    not declare is refused by name.
    """
    declared = {o.name: o for o in probe.options}
    out: dict[str, Any] = {}
    for key, value in options.items():
        option = declared.get(key.replace("-", "_"))
        if option is None:
            known = ", ".join(sorted(declared)) or "none"
            raise InputError(f"{where}: the {probe.name} probe has no option '{key}' (options: {known})")
        flag = "--" + option.name.replace("_", "-")
        if option.is_flag:
            text = str(value).strip().lower()
            if isinstance(value, bool):
                out[option.name] = value
            elif text in ("", "1", "true", "yes", "on"):
                out[option.name] = True
            elif text in ("0", "false", "no", "off"):
                out[option.name] = False
            else:
                raise InputError(f"{where}: {flag} is a flag; give yes or no")
            continue
        values = value if isinstance(value, list | tuple) else [value]
        try:
            # a YAML true/false is the word the command line would give
            converted = [convert_value(option, str(v).lower() if isinstance(v, bool) else v) for v in values]
        except ValueError as exc:
            raise InputError(f"{where}: {flag}: Invalid value: {exc}") from None
        out[option.name] = tuple(converted) if option.multiple else converted[-1]
    return out


SECRET = "<redacted-secret>"
"""Stands for a secret option value in recorded options; the redactor leaves `<redacted-...>` alone."""


def recorded_options(probe: Probe, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of one run as results record them: declared options whose value differs from the
    default, as JSON values, with secret values replaced by SECRET. Never holds a secret."""
    recorded: dict[str, Any] = {}
    for option in probe.options:
        value = options.get(option.name)
        if value is None or value == option.default or (option.multiple and not value):
            continue
        if option.is_flag:
            if bool(value) != bool(option.default):
                recorded[option.name] = bool(value)
            continue
        values = list(value) if option.multiple and isinstance(value, list | tuple) else [value]
        shown: list[str | int | float]
        if option.secret is True:
            shown = [SECRET for _ in values]
        elif callable(option.secret):
            shown = [option.secret(str(v)) for v in values]
        else:
            # JSON values only; a non-finite float would make findings.json unwritable (no NaN in JSON)
            shown = [v if isinstance(v, str | int | bool) or (isinstance(v, float) and math.isfinite(v))
                     else str(v) for v in values]
        recorded[option.name] = shown if option.multiple else shown[0]
    return recorded


class Report:
    """What a run function fills in: findings (made from the catalogue) and observed facts."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.facts: dict[str, Any] = {}

    def add(
        self,
        finding_id: str,
        title: str | None = None,
        detail: str = "",
        evidence: dict[str, Any] | None = None,
        *,
        severity: Severity | str | None = None,
        remediation: str | None = None,
        refs: list[str] | None = None,
    ) -> Finding:
        finding = catalogue.make(
            finding_id, title, detail, evidence, severity=severity, remediation=remediation, refs=refs
        )
        self.findings.append(finding)
        return finding

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    def has(self, *severities: Severity) -> bool:
        return any(f.severity in severities for f in self.findings)

    def problems(self, since: int = 0) -> list[Finding]:
        """warn, fail and error findings, from the `since`-th on (a part of a run checks only its own)."""
        return [f for f in self.findings[since:] if f.severity not in (Severity.PASS, Severity.INFO)]


RunFunction = Callable[..., None]
"""run(ctx: Context, report: Report, target: str, **options) -> None"""


@dataclass(frozen=True)
class Probe:
    name: str
    summary: str
    target: str  # metavar shown in usage, e.g. "HOST[:PORT]"
    run: RunFunction
    options: tuple[Option, ...] = ()
    default_timeout: float = 10.0
    # How many sequential network calls a run may make; the runner's hard deadline is
    # default/--timeout times this, so a probe that loops can never hang the command.
    max_calls: int = 6
    example: str = ""
    description: str = ""
    network: bool = True
    # Finding ids a third-party probe adds, in catalogue.yaml's shape:
    # {"toy.word.shouting": {"severity": "warn", "title": ..., "meaning": ..., "remediation": ..., "refs": []}}.
    # Built-in probes keep theirs in diagkit/collectors/<family>/findings.yaml, beside the code.
    findings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Diagnosis rules a third-party probe adds, in diagkit/diagnosis/rules.yaml's shape (a list of rules);
    # they come after the built-in ones. Built-in probes keep theirs in that file.
    diagnosis: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Raises errors.UsageError for a target that can never work (e.g. port 99999), so `collect --probe`
    # says so before anything runs.
    check_target: Callable[[str], Any] | None = None
