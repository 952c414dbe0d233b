"""The main job: planned runs and evidence -> probe runs -> redaction -> one signed packet.

`collect` is the only place that wires probes, the redactor and the packet builder together (DESIGN.md).
The CLI (diagkit/cli/collect.py) does the talking: prompts, progress, preview and confirmation.
Nothing is written until `write_packet`, which writes atomically: an error or Ctrl-C before or during
it leaves no packet behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.casework.evidence import InputFile, evidence_problem
from diagkit.casework.plan import Run, har_runs
from diagkit.casework.redaction import Redaction
from diagkit.casework.runs import MAX_WORKERS, Progress, environment_facts, run_all
from diagkit.errors import DiagkitError, InputError

if TYPE_CHECKING:
    from diagkit.casework.checklists import Checklist
    from diagkit.casework.plan import SkippedRun
    from diagkit.findings import ProbeResult
    from diagkit.packet.build import Evidence, PacketInfo


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
    """Run every planned run and the HAR analyses, then redact results, answers, environment and evidence.

    Writes nothing: the caller shows the result (a preview) before `write_packet`."""
    from diagkit.casework import readiness
    from diagkit.packet.build import Evidence, guess_media_type

    all_runs = list(runs) + har_runs(checklist, answers, files)
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
    ready = readiness.readiness(checklist, answers, [(f.path, f.is_har) for f in packed], list(skipped))
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
