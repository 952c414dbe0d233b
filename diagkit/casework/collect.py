"""The main job: checklist and answers -> probe runs (concurrent, bounded) -> redaction -> one signed packet.

`collect` is the only place that wires probes, the redactor and the packet builder together (DESIGN.md).
The CLI (diagkit/cli/collect.py) does the talking: prompts, progress, preview and confirmation.
Nothing is written until `write_packet`, which writes atomically: an error or Ctrl-C before or during
it leaves no packet behind.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.errors import DiagkitError, InputError, PluginError, UsageError, read_input_bytes

if TYPE_CHECKING:
    from diagkit.casework.checklists import Checklist, SkippedRun
    from diagkit.findings import ProbeResult
    from diagkit.packet.build import Evidence, PacketInfo

MAX_EVIDENCE_BYTES = 200 * 1024 * 1024
MAX_WORKERS = 8
_OPTION_PART = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$", re.S)

Progress = Callable[[str], None]


@dataclass
class Run:
    """One probe run to do."""

    probe: str
    target: str
    options: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    source: str = "--probe"  # "checklist", "--probe" or "--har"


# ---------------------------------------------------------------- probe specs and options


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


# ---------------------------------------------------------------- running


def _error_result(run: Run, finding_id: str, detail: str) -> ProbeResult:
    from diagkit import catalogue
    from diagkit.findings import ProbeResult, utc_now
    from diagkit.runner import shown_target

    return ProbeResult(probe=run.probe, target=shown_target(run.target), started_at=utc_now(), duration_ms=0,
                       findings=[catalogue.make(finding_id, detail=detail)])


def run_one(run: Run, timeout: float | None, debug: bool = False, ca_file: str | None = None) -> ProbeResult:
    """Never raises for the probe's own problems: those become `error` findings, so the packet is still written.

    `ca_file` (collect --ca-file) goes to every probe that takes --ca-file, unless the run names its own."""
    from diagkit import plugins
    from diagkit.context import Context
    from diagkit.probe import coerce_options
    from diagkit.runner import run_probe
    from diagkit.scrub import scrub

    try:
        probe = plugins.get(run.probe)
    except PluginError as exc:
        return _error_result(run, "probe.run.crashed", exc.message)
    given = dict(run.options)
    if ca_file and "ca_file" not in given and any(o.name == "ca_file" for o in probe.options):
        given["ca_file"] = ca_file
    try:
        options = coerce_options(probe, given, f"{run.source} {run.probe}")
    except InputError as exc:
        return _error_result(run, "probe.input.missing", exc.message)
    ctx = Context(timeout=timeout or probe.default_timeout, ca_file=options.get("ca_file"), debug=debug,
                  extra={"record_input_errors": True})
    try:
        return run_probe(probe, run.target, options, ctx)
    except DiagkitError as exc:  # e.g. a bad --ca-file raised while building the context
        return _error_result(run, "probe.input.missing", exc.message)
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, never a lost packet
        return _error_result(run, "probe.run.crashed", scrub(f"{type(exc).__name__}: {exc}"))


def run_all(runs: Sequence[Run], timeout: float | None, progress: Progress, debug: bool = False,
            ca_file: str | None = None) -> list[ProbeResult]:
    """Runs concurrently in a thread pool; each run is bounded by the runner's deadline. Results keep the
    order of `runs` so the packet's findings are in a stable order."""
    if not runs:
        return []
    results: list[ProbeResult | None] = [None] * len(runs)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(runs)),
                                                 thread_name_prefix="collect")
    try:
        futures = {pool.submit(run_one, run, timeout, debug, ca_file): i for i, run in enumerate(runs)}
        done = 0
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            result = future.result()
            results[index] = result
            done += 1
            # result.target already went through runner.shown_target (secrets masked, paths kept)
            progress(f"[{done}/{len(runs)}] {result.probe} {result.target}: "
                     f"{result.worst.value} ({result.duration_ms} ms)")
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [r for r in results if r is not None]


# ---------------------------------------------------------------- environment


def environment_facts(runs: Sequence[Run], timeout: float | None) -> tuple[dict[str, Any], ProbeResult | None]:
    """Environment facts, plus an `environment` result when the clock offset could be measured."""
    from diagkit import catalogue
    from diagkit.casework import environment
    from diagkit.findings import ProbeResult, utc_now

    facts = environment.gather([r.probe for r in runs])
    clock = None
    urls = [u for u in dict.fromkeys(environment.clock_probe_url(r.probe, r.target) for r in runs) if u]
    for url in urls[:2]:  # two tries at most: an unreachable target must not add many timeouts
        clock = environment.clock_offset(url, min(timeout or 5.0, 5.0))
        if clock:
            break
    if clock is None:
        facts["clock"] = {"measured": False}
        return facts, None
    facts["clock"] = {"measured": True, **clock}
    offset = clock["offset_s"]
    side = "ahead of" if offset > 0 else "behind"
    evidence = {"local_minus_server_s": offset, "source": clock["source"], "resolution_s": 1}
    if abs(offset) > environment.CLOCK_SKEW_LIMIT_S:
        finding = catalogue.make("env.clock.skewed", f"This computer's clock is {abs(offset)} s {side} the server's",
                                 evidence=evidence)
    else:
        finding = catalogue.make("env.clock.ok", f"This computer's clock is within {max(abs(offset), 1)} s "
                                 f"of the server's", evidence=evidence)
    result = ProbeResult(probe="environment", target="this computer", started_at=utc_now(), duration_ms=0,
                         findings=[finding], facts={"clock": facts["clock"], "timezone": facts["timezone"]})
    return facts, result


# ---------------------------------------------------------------- redaction


class Redaction:
    """One Redactor for the whole packet, so a value gets the same pseudonym in every member."""

    def __init__(self, key: bytes | None = None, terms: Sequence[str] = ()) -> None:
        from diagkit.redact.engine import Redactor

        self.redactor = Redactor(key=key, terms=list(terms))
        self.per_member: dict[str, int] = {}
        self.kinds: dict[str, dict[str, int]] = {}  # member -> {rule: count}, for the preview

    def _count(self) -> int:
        return int(self.redactor.report.total)

    def _track(self, member: str, before: int) -> None:
        self.per_member[member] = self.per_member.get(member, 0) + self._count() - before

    def results(self, results: Sequence[ProbeResult]) -> list[ProbeResult]:
        from diagkit import catalogue, diagnosis
        from diagkit.findings import ProbeResult

        before = self._count()
        servers = server_addresses(results)
        entries = catalogue.load()
        templates = {rule.id: rule.cause for rule in diagnosis.table()}
        redacted = []
        for result in results:
            doc = self.redactor.redact_obj(result.to_dict())
            # Addresses of the servers the probes asked or reached are what an engineer compares (split
            # DNS, a VPN), not personal data: they are put back. A client's own address is not among them.
            restore = {p: o for p, o in self.redactor.mapping.items() if o in servers}
            if restore:
                doc = _put_back(doc, restore)
            # Ids, severities, refs and the catalogue's and diagnosis rules' own wording are diagkit's text,
            # never user data; redacting them only mangled them (a section number such as "RFC 5280
            # §4.1.2.5" looks like an IP address, "SNI" like a person's name). Text filled in from what a
            # probe saw stays redacted.
            for original, finding in zip(result.findings, doc["findings"], strict=True):
                finding.update(id=original.id, severity=original.severity.value, refs=list(original.refs))
                entry = entries.get(original.id)
                if entry is not None and original.remediation == entry.remediation:
                    finding["remediation"] = original.remediation
            for original_cause, cause in zip(result.diagnosis, doc.get("diagnosis") or [], strict=True):
                cause.update(severity=original_cause.severity.value, findings=list(original_cause.findings),
                             rule=original_cause.rule, next_step=original_cause.next_step)
                if "{" not in templates.get(original_cause.rule, "{"):
                    cause["cause"] = original_cause.cause
            doc.update(probe=result.probe, diagkit_version=result.diagkit_version)
            redacted.append(ProbeResult.from_dict(doc))
        self._track("findings.json", before)
        return redacted

    def obj(self, value: Any, member: str) -> Any:
        before = self._count()
        out = self.redactor.redact_obj(value)
        self._track(member, before)
        return out

    def answer(self, value: Any, sensitive: bool) -> Any:
        """Sensitive answers never appear, whatever they look like; others lose what looks personal or secret."""
        before = self._count()
        if sensitive:
            out: Any = self.pseudonym(str(value))
        elif isinstance(value, str):
            out = self.redactor.redact_text(value)
        else:
            out = value
        self._track("case.yaml", before)
        return out

    def pseudonym(self, value: str) -> str:
        """Same key as the redactor, so the pseudonym matches wherever else the redactor meets the value."""
        from diagkit.redact.pseudonym import Pseudonymizer

        self.redactor.report.add("sensitive_answer", "case.yaml")
        return Pseudonymizer(self.redactor.key)("SECRET", value)

    def file(self, data: bytes, name: str, fmt: str) -> tuple[bytes, str, int]:
        before = self._count()
        result = self.redactor.redact_bytes(data, name=name, fmt=fmt)
        self._track("evidence/" + name, before)
        self.kinds["evidence/" + name] = dict(result.report.by_rule)
        return result.data, result.format, self.per_member["evidence/" + name]

    def forget(self, member: str) -> None:
        """A member that was not packed after all is not counted in the packet's summary."""
        self.per_member.pop(member, None)
        self.kinds.pop(member, None)

    def summary(self) -> dict[str, Any]:
        summary = dict(self.redactor.report.to_dict())
        summary["by_member"] = dict(sorted(self.per_member.items()))
        return summary


def server_addresses(results: Sequence[ProbeResult]) -> set[str]:
    """IP addresses that name servers in these results: every address a DNS probe recorded (answers,
    resolvers, the OS lookup) and every target given as an IP address."""
    import ipaddress

    from diagkit.diagnosis import host_of

    def address(text: str) -> str | None:
        host = host_of(text)  # URL, HOST:PORT, [v6]:port or a bare address
        try:
            return str(ipaddress.ip_address(host)) if host else None
        except ValueError:
            return None

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from strings(item)

    found: set[str] = set()
    for result in results:
        texts = [result.target]
        if result.probe == "dns":
            texts += list(strings(result.facts)) + list(strings(result.options or {}))
        found.update(a for a in map(address, texts) if a)
    return found


def _put_back(value: Any, originals: Mapping[str, str]) -> Any:
    """`value` with each pseudonym in `originals` replaced by its original, in every string."""
    if isinstance(value, str):
        for pseudonym, original in originals.items():
            value = value.replace(pseudonym, original)
        return value
    if isinstance(value, dict):
        return {k: _put_back(v, originals) for k, v in value.items()}
    if isinstance(value, list):
        return [_put_back(v, originals) for v in value]
    return value


# ---------------------------------------------------------------- the job


@dataclass
class InputFile:
    path: str
    is_har: bool
    data: bytes = b""
    member: str = ""


@dataclass
class Prepared:
    """Everything that goes into the packet, already redacted."""

    results: list[ProbeResult]
    evidence: list[Evidence]
    case: dict[str, Any]
    checklist: str | None
    readiness: dict[str, Any]
    environment: dict[str, Any]
    redaction: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    recipient_key: str | None = None
    redacted_kinds: dict[str, dict[str, int]] = field(default_factory=dict)  # member -> {rule: count}
    names_detected: bool = False  # the [ner] model ran: people's names and places were looked for


def read_inputs(har_files: Sequence[str], attachments: Sequence[str]) -> tuple[list[InputFile], list[ProbeResult]]:
    """Read every evidence file before anything runs. A file that is missing, unreadable, too large or
    binary becomes a `collect.evidence.unreadable` result instead: the customer's other work is kept."""
    files: list[InputFile] = []
    problems: list[ProbeResult] = []
    used: set[str] = set()
    for path, is_har in [*((p, True) for p in har_files), *((p, False) for p in attachments)]:
        what = "HAR file" if is_har else "attachment"
        try:
            data = read_input_bytes(path, what, limit=MAX_EVIDENCE_BYTES, stdin=False)
            if _looks_binary(data):
                raise InputError(f"{what} '{path}' is a binary file; diagkit packs only files it can redact "
                                 f"(text, logs, JSON, HAR, XML, YAML)",
                                 hint="send images or archives to your support contact separately")
        except DiagkitError as exc:
            problems.append(evidence_problem("collect.evidence.unreadable", os.path.basename(path), exc))
            continue
        files.append(InputFile(path, is_har, data, _member_name(path, used)))
    return files, problems


def evidence_problem(finding_id: str, name: str, exc: DiagkitError) -> ProbeResult:
    """An `evidence` result for one file that could not be packed; the message names the file, never its content."""
    from diagkit import catalogue
    from diagkit.findings import ProbeResult, utc_now

    detail = exc.message + (f" ({exc.hint})" if exc.hint else "")
    return ProbeResult(probe="evidence", target=name, started_at=utc_now(), duration_ms=0,
                       findings=[catalogue.make(finding_id, detail=detail, evidence={"file": name, "ref": exc.ref})])


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False  # UTF-16 text has NULs but is text
    return b"\x00" in head


def _member_name(path: str, used: set[str]) -> str:
    """A safe, unique file name under evidence/: the base name, made unique with -2, -3..."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(path)).lstrip(".") or "file"
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    name, n = base, 1
    while name.casefold() in used:
        n += 1
        name = f"{stem}-{n}.{ext}" if dot else f"{stem}-{n}"
    used.add(name.casefold())
    return name


def prepare(
    *,
    checklist: Checklist | None,
    answers: Mapping[str, Any],
    case_id: str | None,
    runs: Sequence[Run],
    skipped: Sequence[SkippedRun],
    files: Sequence[InputFile],
    timeout: float | None,
    progress: Progress,
    debug: bool = False,
    redaction_key: bytes | None = None,
    ca_file: str | None = None,
    file_problems: Sequence[ProbeResult] = (),
    terms: Sequence[str] = (),
) -> Prepared:
    from diagkit.casework import checklists
    from diagkit.packet.build import Evidence, guess_media_type

    # The checklist says which answers are the HAR analysis's expectations (evidence options).
    har_options = checklists.evidence_options(checklist, answers, "har")
    all_runs = list(runs) + [Run("har", f.path, dict(har_options), f"analysis of {os.path.basename(f.path)}", "--har")
                             for f in files if f.is_har]
    if all_runs:
        progress(f"running {len(all_runs)} probe(s), at most {MAX_WORKERS} at a time...")
    results = run_all(all_runs, timeout, progress, debug, ca_file)
    members = {f.path: "evidence/" + f.member for f in files if f.is_har}
    for run, result in zip(all_runs, results, strict=True):
        if run.source == "--har":
            result.target = members[run.target]  # the packet names its own member, not a local path
    environment, env_result = environment_facts(all_runs, timeout)
    if env_result is not None:
        results.append(env_result)
    from diagkit.diagnosis import apply

    apply(results)  # one cause across probes of the same host (an expired certificate seen by tls and http)

    progress("redacting...")
    redaction = Redaction(redaction_key, terms)
    evidence: list[Evidence] = []
    packed: list[InputFile] = []
    results.extend(file_problems)
    for item in files:
        try:
            data, fmt, count = redaction.file(item.data, item.member, "har" if item.is_har else "auto")
        except (DiagkitError, RecursionError) as exc:
            # A file that cannot be redacted never leaves this computer; the rest of the packet still does.
            problem = exc if isinstance(exc, DiagkitError) else InputError(f"'{item.path}' is nested too deeply")
            results.append(evidence_problem("collect.evidence.not_redacted", item.member, problem))
            redaction.forget("evidence/" + item.member)
            continue
        media = "application/har+json" if item.is_har else guess_media_type(item.member)
        evidence.append(Evidence(name="evidence/" + item.member, data=data, media_type=media,
                                 note=f"redacted {fmt} ({count} value{'s' if count != 1 else ''} replaced)"))
        packed.append(item)
    redacted_results = redaction.results(results)
    case: dict[str, Any] = {}
    if case_id:
        case["case_id"] = redaction.answer(case_id, sensitive=False)
    for name, value in answers.items():
        question = checklist.question(name) if checklist else None
        case[name] = redaction.answer(value, sensitive=bool(question and question.sensitive))
    environment = redaction.obj(environment, "manifest.json")
    ready = checklists.readiness(checklist, answers, [(f.path, f.is_har) for f in packed], list(skipped))
    return Prepared(
        results=redacted_results,
        evidence=evidence,
        case=case,
        checklist=checklist.id if checklist else None,
        readiness=ready,
        environment=environment,
        redaction=redaction.summary(),
        recipient_key=checklist.recipient_key if checklist else None,
        redacted_kinds=dict(redaction.kinds),
        names_detected=redaction.redactor.names_detected,
    )


def write_packet(prepared: Prepared, out: str, *, sign_key: str | None, encrypt_to: Sequence[str]) -> PacketInfo:
    """Sign (and encrypt) and write atomically. The checklist's vendor key is used when no --encrypt-to is given."""
    from diagkit.packet.build import build_packet

    with tempfile.TemporaryDirectory(prefix="diagkit-collect-") as tmp:
        recipients = list(encrypt_to)
        if not recipients and prepared.recipient_key:
            key_path = os.path.join(tmp, "recipient.pub")
            with open(key_path, "w", encoding="utf-8") as handle:
                handle.write(prepared.recipient_key + "\n")
            recipients = [key_path]
        return build_packet(
            out,
            results=prepared.results,
            evidence=prepared.evidence,
            case=prepared.case,
            checklist=prepared.checklist,
            readiness=prepared.readiness,
            environment=prepared.environment,
            redaction_summary=prepared.redaction,
            sign_key=sign_key,
            encrypt_to=recipients,
        )
