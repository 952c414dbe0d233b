"""`diagkit collect`: ask (or read) the checklist's answers, run its probes, redact, write one signed packet."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from diagkit.cli.common import debug_option, dumps, key_values

EPILOG = """Examples:

\b
  diagkit collect --checklist slow-page-load --har slow.har -o packet.zip
  diagkit collect --checklist api-auth-failure --answers answers.yaml --yes -o packet.zip
  diagkit collect --probe tls=api.example.com:443 --probe dns=api.example.com --case 12345 -o packet.zip
  diagkit collect --probe 'http=https://api.example.com/v1/orders;method=POST;expect-scope=orders.write' -o p.zip

\b
--probe NAME=TARGET[;OPTION=VALUE]... runs one probe; options are the probe's own
(see 'diagkit probe NAME --help'), e.g. tls=host:443;servername=api.example.com.
On a terminal, collect asks the checklist's questions and confirms before writing;
with --yes, or without a terminal on stdin, it never asks.
Exit status: 0/3/4/5 by the worst finding once the packet is written, 1 if no packet was written."""


def is_interactive() -> bool:
    """Questions and confirmation only with a person at a terminal (tests replace this)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _say(message: str) -> None:
    click.echo(f"diagkit: {message}", err=True)


@click.command(epilog=EPILOG)
@click.option("--checklist", "checklist_name", metavar="NAME",
              help="A shipped checklist (see 'diagkit checklist list') or a checklist file.")
@click.option("--probe", "probe_specs", multiple=True, metavar="SPEC", help="Also run NAME=TARGET[;OPTION=VALUE...].")
@click.option("--har", "har_files", multiple=True, metavar="FILE", help="A HAR recording: analysed, redacted, packed.")
@click.option("--attach", "attachments", multiple=True, metavar="FILE", help="Another file to redact and pack.")
@click.option("--case", "case_id", metavar="ID", help="Your support case / ticket id.")
@click.option("--answers", "answers_file", metavar="FILE", help="Answers to the checklist's questions (YAML name: value).")
@click.option("--set", "set_values", multiple=True, metavar="NAME=VALUE", help="One answer; wins over --answers.")
@click.option("--sign-key", metavar="KEY", help="Ed25519 signing key [default: your diagkit key, created on first use].")
@click.option("--encrypt-to", multiple=True, metavar="PUBKEY",
              help="Encrypt to this X25519 public key file [default: the checklist's vendor key, if it has one].")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Ask nothing: no questions, no confirmation.")
@click.option("--timeout", type=click.FloatRange(min=0.01), default=None, metavar="S",
              help="Seconds each network operation may take [default: each probe's own].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (results, readiness, packet).")
@click.option("-o", "--output", required=True, metavar="PACKET", help="Where to write the packet (e.g. packet.zip).")
@debug_option
def collect(checklist_name: str | None, probe_specs: tuple[str, ...], har_files: tuple[str, ...],
            attachments: tuple[str, ...], case_id: str | None, answers_file: str | None,
            set_values: tuple[str, ...], sign_key: str | None, encrypt_to: tuple[str, ...], assume_yes: bool,
            timeout: float | None, as_json: bool, output: str) -> None:
    """Run a checklist's probes (and --probe runs), redact everything, and write one signed packet.

    Answers come from the terminal, --answers FILE or --set NAME=VALUE. A probe that cannot run is
    recorded as an `error` finding and the packet is still written. Nothing leaves this computer:
    send the packet file to your support contact.
    """
    from diagkit import checklists
    from diagkit import collect as job
    from diagkit.errors import InputError
    from diagkit.findings import exit_status

    if not (checklist_name or probe_specs or har_files or attachments):
        raise click.UsageError("nothing to collect: give --checklist NAME, --probe SPEC, --har FILE or --attach FILE")
    _check_output(output)
    debug = bool((click.get_current_context().find_root().obj or {}).get("debug"))
    interactive = is_interactive() and not assume_yes

    checklist = checklists.load(checklist_name) if checklist_name else None
    raw_file = checklists.read_answers_file(answers_file) if answers_file else {}
    raw_set = key_values(set_values, "--set")
    if checklist is not None:
        answers, unknown = checklists.normalise_answers(checklist, raw_file, f"answers file '{answers_file}'")
        from_set, unknown_set = checklists.normalise_answers(checklist, raw_set, "--set")
        answers.update(from_set)
        for name in unknown + unknown_set:
            _say(f"warning: '{name}' is not a question of checklist '{checklist.id}'; ignored "
                 f"(see 'diagkit checklist show {checklist.id}')")
    else:
        # Without a checklist, answers are free-form case fields.
        answers = {k: str(v) for k, v in {**raw_file, **raw_set}.items() if v not in (None, "")}
    runs = [job.parse_probe_spec(spec) for spec in probe_specs]  # bad specs stop here, before anything runs
    har_list, attach_list = list(har_files), list(attachments)
    if checklist is not None and interactive:
        _ask_questions(checklist, answers)
        _ask_evidence(checklist, har_list, attach_list)
    if checklist is not None:
        for q in checklist.questions:
            if q.name not in answers and q.default not in (None, ""):
                answers[q.name] = checklists.check_answer(q, q.default)
    skipped: list[Any] = []
    if checklist is not None:
        from diagkit.runner import shown_target

        planned, skipped, notes = job.checklist_runs(checklist, answers)
        runs = planned + runs
        for note in notes:
            _say(note)
        for skip in skipped:
            _say(f"skipped {skip.probe} {shown_target(skip.target)}: no answer for {', '.join(skip.missing)}")
    files = job.read_inputs(har_list, attach_list)
    from diagkit.packet.keys import pseudonym_key

    # Keyed by the signing key (checked here, before any probe runs): the same inputs, the same pseudonyms.
    redaction_key = pseudonym_key(sign_key)
    prepared = job.prepare(checklist=checklist, answers=answers, case_id=case_id, runs=runs, skipped=skipped,
                           files=files, timeout=timeout, progress=_say, debug=debug, redaction_key=redaction_key)
    _preview(prepared, output, encrypt_to)
    if interactive:
        click.confirm("Write the packet?", default=True, abort=True, err=True)
    try:
        info = job.write_packet(prepared, output, sign_key=sign_key, encrypt_to=encrypt_to)
    except InputError:
        raise

    if as_json:
        click.echo(dumps({
            "results": [r.to_dict() for r in prepared.results],
            "readiness": prepared.readiness,
            "packet": {"path": str(info.path), "packet_id": info.packet_id, "key_id": info.key_id,
                       "encrypted": info.encrypted, "members": info.members},
        }))
    else:
        _report(prepared, info)
    sys.exit(int(exit_status(prepared.results)))


def _check_output(output: str) -> None:
    from diagkit.errors import InputError

    folder = os.path.dirname(os.path.abspath(output))
    if os.path.isdir(output):
        raise InputError(f"output '{output}' is a directory; give a file name such as packet.zip")
    if not os.path.isdir(folder):
        raise InputError(f"cannot write '{output}': folder '{folder}' does not exist")


def _ask_questions(checklist: Any, answers: dict[str, Any]) -> None:
    from diagkit import checklists

    click.echo(click.style(checklist.title, bold=True), err=True)
    click.echo("Answer what you can; press Enter to skip. * = needed for the escalation to be ready.\n", err=True)
    for q in checklist.questions:
        if q.name in answers:
            continue
        if q.help:
            click.echo(click.style(f"  {q.help}", dim=True), err=True)
        hint = f" (e.g. {q.example})" if q.example not in (None, "") and q.type != "choice" else ""
        if q.choices:
            hint = f" [{'/'.join(q.choices)}]"

        def convert(value: str, question: Any = q) -> Any:
            if value in ("", None):
                return ""
            try:
                return checklists.check_answer(question, value)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None

        default = "" if q.default in (None, "") else str(q.default).lower() if isinstance(q.default, bool) else str(q.default)
        value = click.prompt(f"{'*' if q.required else ' '} {q.prompt}{hint}", default=default,
                             show_default=bool(default), hide_input=q.sensitive, value_proc=convert, err=True)
        if value not in ("", None):
            answers[q.name] = value


def _ask_evidence(checklist: Any, har_files: list[str], attachments: list[str]) -> None:
    given = [(p, True) for p in har_files] + [(p, False) for p in attachments]
    for item in checklist.evidence:
        if any(item.accepts(p, har) for p, har in given):
            continue
        click.echo("\n" + click.style(f"{'*' if item.required else ' '} Evidence: {item.title}", bold=True), err=True)
        if item.instructions:
            click.echo("\n".join("  " + line for line in item.instructions.splitlines()), err=True)
        while True:
            path = click.prompt("  Path to the file (Enter to skip)", default="", show_default=False, err=True).strip()
            if not path:
                break
            path = os.path.expanduser(path.strip("'\""))
            if os.path.isfile(path):
                (har_files if item.kind == "har" else attachments).append(path)
                given.append((path, item.kind == "har"))
                break
            click.echo(f"  '{path}' is not a file; try again or press Enter to skip.", err=True)


def _preview(prepared: Any, output: str, encrypt_to: tuple[str, ...]) -> None:
    from diagkit.findings import Severity

    counts: dict[str, int] = {}
    for result in prepared.results:
        for finding in result.findings:
            counts[finding.severity.value] = counts.get(finding.severity.value, 0) + 1
    order = [s.value for s in sorted(Severity, key=lambda s: -s.rank)]
    tally = ", ".join(f"{counts[s]} {s}" for s in order if s in counts) or "none"
    ready = prepared.readiness
    lines = [f"packet preview ({output}):",
             f"  findings: {tally} from {len(prepared.results)} result(s)",
             f"  case fields: {', '.join(prepared.case) or 'none'}"]
    for item in prepared.evidence:
        lines.append(f"  {item.name}: {len(item.data)} bytes, {item.note}")
    total = prepared.redaction.get("total", 0)
    lines.append(f"  redaction: {total} value(s) replaced in total; the mapping stays on this computer")
    lines.append("  " + readiness_line(ready))
    if encrypt_to or prepared.recipient_key:
        lines.append("  encrypted to: " + (", ".join(encrypt_to) or "the checklist's vendor key"))
    click.echo("\n".join(lines), err=True)


def readiness_line(ready: dict[str, Any]) -> str:
    if ready.get("ready"):
        return f"readiness: READY ({ready.get('score', 100)}%)"
    parts = []
    if ready.get("missing_answers"):
        parts.append("answers: " + ", ".join(m["name"] for m in ready["missing_answers"]))
    if ready.get("missing_evidence"):
        parts.append("evidence: " + ", ".join(m["name"] for m in ready["missing_evidence"]))
    return f"readiness: NOT READY ({ready.get('score', 0)}%), missing {'; '.join(parts)}"


def _report(prepared: Any, info: Any) -> None:
    from diagkit.render import render_result

    blocks = [render_result(r, facts=False) for r in prepared.results]
    if blocks:
        click.echo("\n\n".join(blocks) + "\n")
    ready = prepared.readiness
    click.echo(readiness_line(ready))
    for skip in ready.get("skipped_probes") or []:
        click.echo(f"  skipped: {skip['probe']} {skip['target']} (no answer for {', '.join(skip['missing_answers'])})")
    lock = " (encrypted)" if info.encrypted else ""
    click.echo(f"\nPacket written{lock}: {info.path}")
    click.echo(f"Attach {os.path.abspath(info.path)} to your support case; it is signed by key {info.key_id}.")
