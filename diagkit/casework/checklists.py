"""Checklists: the model, loading and validating the YAML (errors name the line), and checking answers.

A checklist says which questions to ask, which probes to run with parameters taken from the answers,
and which evidence to request; see docs/checklists.md. Parameters are filled by templates.py, which is
deliberately tiny; plan.py turns a checklist and its answers into runs, readiness.py says what is missing.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from diagkit import schemas
from diagkit.casework.templates import fill, placeholders, split_hostport
from diagkit.errors import ChecklistError, InputError
from diagkit.formats.urls import is_ip

EVIDENCE_PATTERNS = {
    "har": ("*.har",),
    "log": ("*.log", "*.txt", "*.json", "*.jsonl", "*.csv"),
    "file": ("*",),
}
_BUILTIN_DIR = "checklists_data"


@dataclass(frozen=True)
class Question:
    name: str
    prompt: str
    help: str = ""
    type: str = "string"
    example: Any = None
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False
    sensitive: bool = False


@dataclass(frozen=True)
class ProbeStep:
    probe: str
    target: str
    options: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""


@dataclass(frozen=True)
class EvidenceItem:
    name: str
    title: str
    kind: str = "file"
    patterns: tuple[str, ...] = ()
    required: bool = False
    instructions: str = ""
    # Options of the probe that analyses files given as this evidence (the har probe on --har files),
    # templated like a probe step's options.
    options: Mapping[str, Any] = field(default_factory=dict)

    def accepts(self, filename: str, from_har_option: bool) -> bool:
        """--har files count as HAR evidence; --attach files count where their name matches the patterns."""
        if from_har_option and self.kind == "har":
            return True
        patterns = self.patterns or EVIDENCE_PATTERNS[self.kind]
        base = os.path.basename(filename).lower()
        return any(fnmatch.fnmatch(base, p.lower()) for p in patterns)


@dataclass(frozen=True)
class Checklist:
    id: str
    title: str
    description: str
    questions: tuple[Question, ...] = ()
    probes: tuple[ProbeStep, ...] = ()
    evidence: tuple[EvidenceItem, ...] = ()
    recipient_key: str | None = None
    source: str = ""

    def question(self, name: str) -> Question | None:
        return next((q for q in self.questions if q.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "source": self.source,
            "recipient_key": self.recipient_key,
            "questions": [_drop_empty(vars(q) | {"choices": list(q.choices)}) for q in self.questions],
            "probes": [_drop_empty({"probe": p.probe, "target": p.target, "options": dict(p.options),
                                    "title": p.title}) for p in self.probes],
            "evidence": [_drop_empty(vars(e) | {"patterns": list(e.patterns)}) for e in self.evidence],
        }


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [], {}, ())}


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def format(self, source: str) -> str:
        return f"{source}:{self.line}: {self.message}" if self.line else f"{source}: {self.message}"


# ---------------------------------------------------------------- loading and validation


def _compose(text: str) -> tuple[Any, Any]:
    """(node, data): the node tree keeps line numbers for error messages; data is the plain value."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def _node_at(node: Any, path: Iterable[Any]) -> Any:
    """The YAML node at a JSON path, or the deepest one found on the way."""
    import yaml

    for step in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            child = node.value[step]
        if child is None:
            break
        node = child
    return node


def _line(node: Any, path: Iterable[Any]) -> int | None:
    found = _node_at(node, path)
    return found.start_mark.line + 1 if found is not None else None


def _key_line(node: Any, path: Iterable[Any], key: str) -> int | None:
    """The line of one key of the mapping at `path` (where an unknown key is written)."""
    import yaml

    mapping = _node_at(node, path)
    if isinstance(mapping, yaml.MappingNode):
        for k, _ in mapping.value:
            if k.value == key:
                return k.start_mark.line + 1
    return _line(node, path)


def _duplicate_keys(node: Any) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; in a checklist that is always a mistake."""
    import yaml

    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            if key.value in seen:
                problems.append(Problem(key.start_mark.line + 1, f"duplicate key '{key.value}'"))
            seen.add(key.value)
            problems.extend(_duplicate_keys(value))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems.extend(_duplicate_keys(item))
    return problems


def _path_text(path: Iterable[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "(top level)"


def validate_text(text: str, *, check_probes: bool = True) -> tuple[list[Problem], Any]:
    """All problems found in a checklist's text (each with its line), and the parsed data."""
    import jsonschema
    import yaml

    try:
        node, data = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        return [Problem(mark.line + 1 if mark else None, f"invalid YAML: {what}")], None
    except yaml.YAMLError as exc:
        return [Problem(None, f"invalid YAML: {' '.join(str(exc).split())}")], None
    if not isinstance(data, dict):
        return [Problem(_line(node, []) if node is not None else None, "a checklist must be a YAML mapping")], data

    problems = _duplicate_keys(node)
    validator = jsonschema.Draft202012Validator(schemas.load("checklist"))
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        message = error.message
        line = _line(node, path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            message = message.replace("Additional properties are not allowed", "unknown key(s)")
            extra = [k for k in error.instance if k not in (error.schema.get("properties") or {})]
            line = _key_line(node, path, extra[0]) if extra else line
        if len(message) > 200:
            message = message[:197] + "..."
        problems.append(Problem(line, f"{_path_text(path)}: {message}"))
    if problems:
        return sorted(problems, key=lambda p: p.line or 0), data
    problems.extend(_semantic_problems(data, node, check_probes))
    return sorted(problems, key=lambda p: p.line or 0), data


def _semantic_problems(data: dict[str, Any], node: Any, check_probes: bool) -> list[Problem]:
    """What a schema cannot say: unique names, choices, placeholders naming real questions, known probes."""
    problems: list[Problem] = []
    names: set[str] = set()
    for i, q in enumerate(data.get("questions") or []):
        where = ["questions", i]
        if q["name"] in names:
            problems.append(Problem(_line(node, [*where, "name"]), f"question '{q['name']}' is defined twice"))
        names.add(q["name"])
        qtype = q.get("type", "string")
        if qtype == "choice" and not q.get("choices"):
            problems.append(Problem(_line(node, where), f"question '{q['name']}' has type choice but no choices"))
        if q.get("choices") and qtype != "choice":
            problems.append(Problem(_line(node, [*where, "choices"]),
                                    f"question '{q['name']}' has choices but its type is {qtype}, not choice"))
        question = _question(q)
        for key in ("default", "example"):
            if key in q and q[key] not in (None, ""):
                try:
                    check_answer(question, q[key])
                except ValueError as exc:
                    problems.append(Problem(_line(node, [*where, key]), f"question '{q['name']}' {key}: {exc}"))
        if q.get("sensitive") and "default" in q:
            problems.append(Problem(_line(node, [*where, "default"]),
                                    f"question '{q['name']}' is sensitive and must not carry a default"))

    evidence_names: set[str] = set()
    for i, e in enumerate(data.get("evidence") or []):
        if e["name"] in evidence_names:
            problems.append(Problem(_line(node, ["evidence", i, "name"]), f"evidence '{e['name']}' is defined twice"))
        evidence_names.add(e["name"])

    installed: dict[str, Any] = {}
    if check_probes:
        from diagkit import plugins

        installed = dict(plugins.registered())
    problems.extend(_evidence_option_problems(data, node, names, installed if check_probes else None))
    for i, step in enumerate(data.get("probes") or []):
        where = ["probes", i]
        templates = [(["target"], step["target"])]
        for key, value in (step.get("options") or {}).items():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str):
                    templates.append((["options", key], v))
        for sub, template in templates:
            try:
                used = placeholders(template)
            except ValueError as exc:
                problems.append(Problem(_line(node, [*where, *sub]), str(exc)))
                continue
            for name in used:
                if name not in names:
                    problems.append(Problem(_line(node, [*where, *sub]),
                                            f"placeholder names an unknown question '{name}'"))
        if check_probes:
            problems.extend(_probe_problems(step, installed, _line(node, where)))
    return problems


def _evidence_option_problems(data: dict[str, Any], node: Any, names: set[str],
                               installed: dict[str, Any] | None) -> list[Problem]:
    """Evidence options: only on `har` items (the har probe reads those files), placeholders naming questions."""
    problems: list[Problem] = []
    for i, e in enumerate(data.get("evidence") or []):
        options = e.get("options") or {}
        where = ["evidence", i, "options"]
        if options and e.get("kind", "file") != "har":
            problems.append(Problem(_line(node, where), f"evidence '{e['name']}': options are only taken by "
                                                        "kind: har (they go to the har probe)"))
            continue
        for key, value in options.items():
            for v in value if isinstance(value, list) else [value]:
                try:
                    used = placeholders(v) if isinstance(v, str) else []
                except ValueError as exc:
                    problems.append(Problem(_line(node, [*where, key]), str(exc)))
                    continue
                problems.extend(Problem(_line(node, [*where, key]), f"placeholder names an unknown question '{n}'")
                                for n in used if n not in names)
        if options and installed is not None:
            problems.extend(_probe_problems({"probe": "har", "options": options}, installed, _line(node, where)))
    return problems


def evidence_options(checklist: Checklist | None, answers: Mapping[str, Any], kind: str = "har") -> dict[str, Any]:
    """Options for the probe run on files given as `kind` evidence, filled from the answers.

    As for a probe step's options, an option whose answer is missing (or empty) is left out, so the
    probe runs without that expectation rather than with an empty one.
    """
    options: dict[str, Any] = {}
    for item in checklist.evidence if checklist else ():
        if item.kind != kind:
            continue
        for key, value in item.options.items():
            values = value if isinstance(value, list) else [value]
            filled = [fill(v, answers) if isinstance(v, str) else (v, []) for v in values]
            if all(not gaps for _, gaps in filled):
                texts = [text for text, _ in filled]
                options.setdefault(key.replace("-", "_"), texts if isinstance(value, list) else texts[0])
    return options


def _probe_problems(step: dict[str, Any], installed: dict[str, Any], line: int | None) -> list[Problem]:
    from diagkit import plugins
    from diagkit.errors import PluginError

    name = step["probe"]
    if name not in installed:
        known = ", ".join(installed) or "none"
        return [Problem(line, f"unknown probe '{name}' (installed: {known})")]
    try:
        probe = plugins.get(name)
    except PluginError:
        return []  # a probe that fails to load is reported when it runs, not as a checklist mistake
    declared = {o.name for o in probe.options}
    return [Problem(line, f"probe '{name}' has no option '{key}' (it has: {', '.join(sorted(declared)) or 'none'})")
            for key in (step.get("options") or {}) if key.replace("-", "_") not in declared]


def parse(text: str, source: str, *, check_probes: bool = True) -> Checklist:
    """A valid Checklist, or ChecklistError naming the source, the line and the first problem."""
    problems, data = validate_text(text, check_probes=check_probes)
    if problems:
        more = f" (and {len(problems) - 1} more; run 'diagkit checklist validate')" if len(problems) > 1 else ""
        raise ChecklistError(f"checklist {problems[0].format(source)}{more}")
    return _build(data, source)


def _question(q: Mapping[str, Any]) -> Question:
    return Question(
        name=q["name"], prompt=q["prompt"].strip(), help=str(q.get("help") or "").strip(),
        type=q.get("type", "string"), example=q.get("example"), default=q.get("default"),
        choices=tuple(q.get("choices") or ()), required=bool(q.get("required", False)),
        sensitive=bool(q.get("sensitive", False)),
    )


def _build(data: dict[str, Any], source: str) -> Checklist:
    return Checklist(
        id=data["id"],
        title=data["title"].strip(),
        description=data["description"].strip(),
        questions=tuple(_question(q) for q in data.get("questions") or []),
        probes=tuple(ProbeStep(probe=p["probe"], target=p["target"], options=dict(p.get("options") or {}),
                               title=str(p.get("title") or "")) for p in data.get("probes") or []),
        evidence=tuple(EvidenceItem(name=e["name"], title=e["title"].strip(), kind=e.get("kind", "file"),
                                    patterns=tuple(e.get("patterns") or ()), required=bool(e.get("required", False)),
                                    instructions=str(e.get("instructions") or "").strip(),
                                    options=dict(e.get("options") or {}))
                       for e in data.get("evidence") or []),
        recipient_key=(data.get("recipient_key") or "").strip() or None,
        source=source,
    )


def _builtin_dir() -> Any:
    return resources.files("diagkit.casework").joinpath(_BUILTIN_DIR)


def builtin_names() -> list[str]:
    folder = _builtin_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_text(path: str) -> str:
    from diagkit.errors import read_input_bytes

    raw = read_input_bytes(path, "checklist", limit=1_000_000)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"checklist '{path}' is not UTF-8 text") from None


def load(name_or_path: str, *, check_probes: bool = True) -> Checklist:
    """A shipped checklist by id, or a checklist file by path (anything with a slash or .yaml/.yml)."""
    looks_like_path = os.sep in name_or_path or "/" in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if not looks_like_path:
        if name_or_path not in builtin_names():
            known = ", ".join(builtin_names()) or "none"
            raise ChecklistError(f"no checklist named '{name_or_path}' (shipped: {known})",
                                 hint="run 'diagkit checklist list', or give the path of a checklist file")
        text = _builtin_dir().joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
        return parse(text, f"checklists/{name_or_path}.yaml", check_probes=check_probes)
    return parse(read_text(name_or_path), name_or_path, check_probes=check_probes)


def load_all() -> list[Checklist]:
    return [load(name) for name in builtin_names()]


# ---------------------------------------------------------------- answers

_BOOL = {"yes": True, "y": True, "true": True, "1": True, "on": True,
         "no": False, "n": False, "false": False, "0": False, "off": False}
# Domain labels cannot contain the dot that separates them, so there is one way to match a string and the
# time is linear in its length (tests/test_malicious_regex.py), never a ReDoS.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$")
_HOST = re.compile(r"^(?=.{1,253}$)(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?)*\.?)$")


def check_answer(question: Question, value: Any) -> Any:
    """The answer normalised for its type; ValueError with a short reason (never echoing the value)."""
    kind = question.type
    if isinstance(value, bool) and kind != "bool":
        value = "yes" if value else "no"
    if isinstance(value, _dt.datetime | _dt.date) and kind != "datetime":
        value = value.isoformat()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        parsed = _BOOL.get(str(value).strip().lower())
        if parsed is None:
            raise ValueError("expected yes or no")
        return parsed
    if kind == "datetime":
        return _check_datetime(value)
    text = str(value).strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if kind == "string" and "\n" in text:
        raise ValueError("expected a single line")
    if kind == "url":
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError("is not a valid URL") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host name")
    elif kind == "email":
        if not _EMAIL.match(text):
            raise ValueError("expected an email address like name@example.com")
    elif kind == "choice":
        match = next((c for c in question.choices if c.lower() == text.lower()), None)
        if match is None:
            raise ValueError(f"expected one of: {', '.join(question.choices)}")
        return match
    elif kind in ("host", "hostport"):
        host, port = split_hostport(text)
        if not (_HOST.match(host) or is_ip(host)) or "://" in text:
            raise ValueError("expected a host name or IP address, without http://" if kind == "host"
                             else "expected HOST or HOST:PORT, without http://")
        if port is not None and (kind == "host" or not 0 < port < 65536):
            raise ValueError("expected a host name without a port" if kind == "host" else "port must be 1-65535")
    return text


def _check_datetime(value: Any) -> str:
    """ISO 8601; a time without an offset is taken as this machine's local time and given its offset."""
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, _dt.date):
        moment = _dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("expected a date and time like 2026-11-23 14:05 +01:00 (ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time zone of the person answering
    return moment.isoformat(timespec="minutes" if moment.second == 0 else "seconds")
