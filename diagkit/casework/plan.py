"""The run plan: which probe runs a collect makes, from `--probe` specs, the checklist and HAR evidence.

Nothing runs here. Option values are read with diagkit.probe.coerce_options, as `diagkit probe` reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.errors import InputError, UsageError

if TYPE_CHECKING:
    from diagkit.casework.checklists import Checklist, SkippedRun
    from diagkit.casework.evidence import InputFile

_OPTION_PART = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$", re.S)


@dataclass
class Run:
    """One probe run to do."""

    probe: str
    target: str
    options: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    source: str = "--probe"  # "checklist", "--probe" or "--har"


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
    from diagkit.casework import checklists

    planned, skipped = checklists.plan(checklist, answers)
    runs = [Run(p.probe, p.target, p.options, p.title, source="checklist") for p in planned]
    from diagkit.runner import shown_target

    notes = [f"{p.probe} {shown_target(p.target)}: option(s) {', '.join(p.dropped_options)} left out (no answer)"
             for p in planned if p.dropped_options]
    return runs, skipped, notes


def har_runs(checklist: Checklist | None, answers: Mapping[str, Any], files: Sequence[InputFile]) -> list[Run]:
    """One `har` run per HAR file, with the expectations the checklist's HAR evidence takes from the answers."""
    from diagkit.casework import checklists

    options = checklists.evidence_options(checklist, answers, "har")
    return [Run("har", f.path, dict(options), f"analysis of {os.path.basename(f.path)}", "--har")
            for f in files if f.is_har]
