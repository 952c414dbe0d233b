"""The run plan: which probe runs a collect makes, from `--probe` specs, the checklist and HAR evidence.

Nothing runs here. Option values are read with diagkit.probe.coerce_options, as `diagkit probe` reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.casework.templates import fill
from diagkit.errors import InputError, UsageError

if TYPE_CHECKING:
    from diagkit.casework.checklists import Checklist
    from diagkit.casework.evidence import InputFile

_OPTION_PART = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$", re.S)


@dataclass
class Run:
    """One probe run to do."""

    probe: str
    target: str
    options: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    source: str = "--probe"  # "checklist", "--probe", "--har" or "packet"
    dropped_options: list[str] = field(default_factory=list)  # checklist options left out for want of answers


# How a customer reads a probe's name ("skipped the HTTP check"); a probe not listed shows its own name.
PROBE_LABELS = {"dns": "DNS", "tls": "TLS", "http": "HTTP", "oidc": "OpenID Connect", "har": "HAR",
                "saml-metadata": "SAML metadata", "saml-response": "SAML response", "webhook": "webhook",
                "webhook-signature": "webhook signature"}


@dataclass
class SkippedRun:
    """A checklist probe left out for want of answers. Said in the customer's words (the step's title and
    the questions' prompts), never as the template it was planned from."""

    probe: str
    missing: list[str]  # question names
    title: str = ""
    missing_prompts: list[str] = field(default_factory=list)

    def reason(self) -> str:
        check = f"the {PROBE_LABELS.get(self.probe, self.probe)} check"
        if self.title:
            check += f" ({self.title})"
        asked = "; ".join(f'"{p}"' for p in self.missing_prompts or self.missing)
        return f"skipped {check}: no answer to {asked}"

    def to_dict(self) -> dict[str, Any]:
        return {"probe": self.probe, "title": self.title, "missing_answers": self.missing, "reason": self.reason()}


def planned_runs(checklist: Checklist, answers: Mapping[str, Any]) -> tuple[list[Run], list[SkippedRun]]:
    """Probe runs with answers filled in. A run whose target lacks answers is skipped; an option whose
    answers are missing is left out (the probe then uses its default)."""
    runs: list[Run] = []
    skipped: list[SkippedRun] = []
    for step in checklist.probes:
        target, missing = fill(step.target, answers)
        if target is None:
            prompts = [q.prompt for name in missing if (q := checklist.question(name)) is not None]
            skipped.append(SkippedRun(step.probe, missing, step.title, prompts))
            continue
        options: dict[str, Any] = {}
        dropped: list[str] = []
        for key, value in step.options.items():
            name = key.replace("-", "_")
            values = value if isinstance(value, list) else [value]
            filled = []
            for v in values:
                text, gaps = fill(v, answers) if isinstance(v, str) else (v, [])
                if gaps:
                    break
                filled.append(text)
            else:
                options[name] = filled if isinstance(value, list) else filled[0]
                continue
            dropped.append(name)
        runs.append(Run(step.probe, target, options, step.title, "checklist", dropped))
    return runs, skipped


def parse_probe_spec(spec: str) -> Run:
    """`NAME=TARGET[;option=value]...`, e.g. `http=https://api.example.com/v1;method=POST;expect-scope=read`.

    `;` starts an option only when the word before `=` is one of the probe's options; in a URL target
    anything else (e.g. `;jsessionid=...`) stays part of the URL.
    """
    from diagkit import plugins
    from diagkit.probe import coerce_options

    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise UsageError(f"--probe '{_short(spec)}': expected NAME=TARGET",
                         hint="e.g. tls=api.example.com:443 or http=https://api.example.com/v1;method=POST")
    probe = plugins.get(name)
    declared = {o.name for o in probe.options}
    parts = rest.split(";")
    target = parts[0].strip()
    raw: dict[str, list[str]] = {}
    is_url = "://" in target
    for part in parts[1:]:
        match = _OPTION_PART.match(part.strip())
        key = match.group(1).replace("-", "_") if match else ""
        if match and key in declared:
            raw.setdefault(key, []).append(match.group(2) if match.group(2) is not None else "")
        elif is_url:
            target += ";" + part
        else:
            known = ", ".join(sorted(o.replace("_", "-") for o in declared)) or "none"
            raise UsageError(f"--probe '{_short(spec)}': the {name} probe has no option "
                             f"'{match.group(1) if match else part.strip()}' (options: {known})")
    if not target:
        raise UsageError(f"--probe '{_short(spec)}': the target is empty")
    if probe.check_target is not None:
        probe.check_target(target)
    options: dict[str, Any] = {}
    for key, values in raw.items():
        option = next(o for o in probe.options if o.name == key)
        options[key] = values if option.multiple else values[-1]
    try:
        coerced = coerce_options(probe, options, f"--probe '{_short(spec)}'")
    except InputError as exc:  # on the command line, a wrong option value is a usage error
        raise UsageError(exc.message, hint=exc.hint) from None
    return Run(name, target, coerced, source="--probe")


def _short(text: str, limit: int = 80) -> str:
    from diagkit.scrub import scrub

    text = scrub(text)  # a spec can carry a bearer token: never echo it
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checklist_runs(checklist: Checklist, answers: Mapping[str, Any]) -> tuple[list[Run], list[SkippedRun], list[str]]:
    """Runs from the checklist with answers filled in; skipped runs; notes about dropped options."""
    from diagkit.runner import shown_target

    runs, skipped = planned_runs(checklist, answers)
    notes = [f"{r.probe} {shown_target(r.target)}: option(s) {', '.join(r.dropped_options)} left out (no answer)"
             for r in runs if r.dropped_options]
    return runs, skipped, notes


def har_runs(checklist: Checklist | None, answers: Mapping[str, Any], files: Sequence[InputFile]) -> list[Run]:
    """One `har` run per HAR file, with the expectations the checklist's HAR evidence takes from the answers."""
    from diagkit.casework import checklists

    options = checklists.evidence_options(checklist, answers, "har")
    return [Run("har", f.path, dict(options), f"analysis of {os.path.basename(f.path)}", "--har")
            for f in files if f.is_har]
