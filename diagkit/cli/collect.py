"""`diagkit collect`: ask (or read) the checklist's answers, run its probes, redact, write one signed packet."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from diagkit.cli.common import debug_option, dumps, key_values, read_terms, terms_options

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
@click.option("--ca-file", metavar="PEM",
              help="Also trust these CA certificates (a private CA or an inspecting proxy) in every network probe.")
@terms_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (results, readiness, packet).")
@click.option("-o", "--output", required=True, metavar="PACKET",
              help="Where to write the packet (e.g. packet.zip); '-' writes it to standard output.")
@debug_option
def collect(checklist_name: str | None, probe_specs: tuple[str, ...], har_files: tuple[str, ...],
            attachments: tuple[str, ...], case_id: str | None, answers_file: str | None,
            set_values: tuple[str, ...], sign_key: str | None, encrypt_to: tuple[str, ...], assume_yes: bool,
            timeout: float | None, ca_file: str | None, terms: tuple[str, ...], terms_file: str | None,
            as_json: bool, output: str) -> None:
    """Run a checklist's probes (and --probe runs), redact everything, and write one signed packet.

    Answers come from the terminal, --answers FILE or --set NAME=VALUE. A probe that cannot run is
    recorded as an `error` finding and the packet is still written; so is a HAR or attachment that
    cannot be read or redacted. Nothing leaves this computer: send the packet file to your support contact.
    """
    from diagkit.casework import answers as answer_sources
    from diagkit.casework import checklists, evidence, plan
    from diagkit.casework import collect as job
    from diagkit.findings import ExitStatus, exit_status

    if not (checklist_name or probe_specs or har_files or attachments):
        raise click.UsageError("nothing to collect: give --checklist NAME, --probe SPEC, --har FILE or --attach FILE")
    _check_output(output, as_json, inputs=[*har_files, *attachments, *([answers_file] if answers_file else [])])
    if ca_file:
        from diagkit.errors import read_input_bytes

        read_input_bytes(ca_file, "--ca-file", limit=10 * 1024 * 1024, stdin=False)  # missing: stop before any probe
    words = read_terms(terms, terms_file)  # a missing --terms file stops collect before anything runs
    debug = bool((click.get_current_context().find_root().obj or {}).get("debug"))
    interactive = is_interactive() and not assume_yes

    checklist = checklists.load(checklist_name) if checklist_name else None
    raw_file = answer_sources.read_answers_file(answers_file) if answers_file else {}
    answers, unknown = answer_sources.merge(checklist, raw_file, key_values(set_values, "--set"),
                                            f"answers file '{answers_file}'")
    if checklist is not None and unknown:
        raise click.UsageError(answer_sources.unknown_message(checklist, unknown))
    runs = [plan.parse_probe_spec(spec) for spec in probe_specs]  # bad specs stop here, before anything runs
    har_list, attach_list = list(har_files), list(attachments)
    if checklist is not None and interactive:
        _ask_questions(checklist, answers)
        _ask_evidence(checklist, har_list, attach_list)
    if interactive:
        words += _ask_terms()
    skipped: list[Any] = []
    if checklist is not None:
        answer_sources.add_defaults(checklist, answers)
        planned, skipped, notes = plan.checklist_runs(checklist, answers)
        runs = planned + runs
        for note in notes:
            _say(note)
        for skip in skipped:
            _say(skip.reason())
    files, file_problems = evidence.read_inputs(har_list, attach_list)
    for problem in file_problems:
        _say(f"warning: {problem.findings[0].detail}; the packet is written without it")
    from diagkit.packet.keys import pseudonym_key

    # Keyed by the signing key (checked here, before any probe runs): the same inputs, the same pseudonyms.
    redaction_key = pseudonym_key(sign_key)
    prepared = job.prepare(checklist=checklist, answers=answers, case_id=case_id, runs=runs, skipped=skipped,
                           files=files, timeout=timeout, progress=_say, debug=debug, redaction_key=redaction_key,
                           ca_file=ca_file, file_problems=file_problems, terms=words)
    _preview(prepared, output, encrypt_to)
    if interactive and not click.confirm("Write the packet?", default=True, err=True):
        _say("not written: nothing was saved")
        sys.exit(int(ExitStatus.ERROR))
    info = job.write_packet(prepared, output, sign_key=sign_key, encrypt_to=encrypt_to)

    if as_json:
        click.echo(dumps({
            "results": [r.to_dict() for r in prepared.results],
            "readiness": prepared.readiness,
            "packet": {"path": str(info.path), "packet_id": info.packet_id, "key_id": info.key_id,
                       "encrypted": info.encrypted, "members": info.members},
        }))
    else:
        _report(prepared, info, to_stderr=output == "-")
    sys.exit(int(exit_status(prepared.results)))


def _check_output(output: str, as_json: bool, inputs: list[str]) -> None:
    """Before anything runs: a packet path diagkit may write (never one of its inputs), and standard output
    only when it is free."""
    from diagkit.fsutil import STDOUT, check_output

    check_output(output, "packet", inputs=inputs)
    if output == STDOUT:
        if as_json:
            raise click.UsageError("-o - writes the packet to standard output; it cannot also take --json")
        if sys.stdout.isatty():
            raise click.UsageError("-o - would write a binary packet to the terminal; redirect it to a file "
                                   "(> packet.zip) or give a file name")


def _ask_questions(checklist: Any, answers: dict[str, Any]) -> None:
    from diagkit.casework import checklists

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
        label = f"{'*' if q.required else ' '} {q.prompt}{hint}"
        if q.type == "text" and not q.sensitive:
            value: Any = _ask_lines(label)
            if value:
                try:
                    answers[q.name] = checklists.check_answer(q, value)
                except ValueError as exc:
                    raise click.UsageError(f"answer '{q.name}' {exc}") from None
            continue

        def convert(value: str, question: Any = q) -> Any:
            if value in ("", None):
                return ""
            try:
                return checklists.check_answer(question, value)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from None

        default = "" if q.default in (None, "") else str(q.default).lower() if isinstance(q.default, bool) else str(q.default)
        value = click.prompt(label, default=default, show_default=bool(default), hide_input=q.sensitive,
                             value_proc=convert, err=True)
        if value not in ("", None):
            answers[q.name] = value


def _ask_terms() -> list[str]:
    """Words the customer wants hidden everywhere, beyond what diagkit finds by itself."""
    click.echo("\n" + click.style("Words to hide", bold=True), err=True)
    text = _ask_lines("  Your company, project or host names to hide in everything that is sent (Enter to skip)",
                      editor=False)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _ask_lines(label: str, editor: bool = True) -> str:
    """A multi-line answer: in $VISUAL/$EDITOR when one is set, else line by line until an empty line."""
    if editor and (os.environ.get("VISUAL") or os.environ.get("EDITOR")):
        click.echo(f"{label}\n  (opening your editor; save and close it to go on)", err=True)
        header = f"# {label.strip()}\n# Lines starting with # are left out. Save and close to go on.\n"
        text = click.edit(header, require_save=False) or ""
        return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()
    click.echo(f"{label}\n  (one or more lines; an empty line ends the answer)", err=True)
    lines: list[str] = []
    while True:
        line = click.prompt(" ", default="", show_default=False, prompt_suffix="", err=True)
        if not line.strip():
            return "\n".join(lines).strip()
        lines.append(line.rstrip())


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
    """What will be sent, as it will be sent: answers already redacted, and per evidence file what was replaced."""
    from diagkit.findings import Severity

    counts: dict[str, int] = {}
    for result in prepared.results:
        for finding in result.findings:
            counts[finding.severity.value] = counts.get(finding.severity.value, 0) + 1
    order = [s.value for s in sorted(Severity, key=lambda s: -s.rank)]
    tally = ", ".join(f"{counts[s]} {s}" for s in order if s in counts) or "none"
    lines = [f"packet preview ({'standard output' if output == '-' else output}):",
             f"  findings: {tally} from {len(prepared.results)} result(s)"]
    if prepared.case:
        lines.append("  answers, as they will be sent:")
        for name, value in prepared.case.items():
            text = str(value).splitlines() or [""]
            lines.append(f"    {name}: {text[0]}")
            lines.extend(f"    {' ' * len(name)}  {more}" for more in text[1:])
    else:
        lines.append("  answers: none")
    for item in prepared.evidence:
        kinds = prepared.redacted_kinds.get(item.name) or {}
        replaced = ", ".join(f"{n} {rule}" for rule, n in sorted(kinds.items(), key=lambda x: (-x[1], x[0])))
        lines.append(f"  {item.name}: {len(item.data)} bytes, {sum(kinds.values())} value(s) replaced"
                     + (f" ({replaced})" if replaced else ""))
    total = prepared.redaction.get("total", 0)
    lines.append(f"  redaction: {total} value(s) replaced in total; which original is behind each replacement "
                 f"is kept only on this computer")
    if not prepared.names_detected:
        lines.append("  note: people's names and postal addresses in free text are NOT detected without the "
                     "optional [ner] extra; check the answers and files above for them")
    lines.append("  " + readiness_line(prepared.readiness))
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


def _report(prepared: Any, info: Any, to_stderr: bool = False) -> None:
    """The outcome for the person who ran collect; on stderr when the packet itself went to stdout."""
    from diagkit.cli.render import render_result

    def say(text: str) -> None:
        click.echo(text, err=to_stderr)

    blocks = [render_result(r, facts=False) for r in prepared.results]
    if blocks:
        say("\n\n".join(blocks) + "\n")
    ready = prepared.readiness
    say(readiness_line(ready))
    for skip in ready.get("skipped_probes") or []:
        say(f"  {skip['reason']}")
    lock = " (encrypted)" if info.encrypted else ""
    if to_stderr:
        say(f"\nPacket written{lock} to standard output; it is signed by key {info.key_id}.")
        return
    say(f"\nPacket written{lock}: {info.path}")
    say(f"Attach {os.path.abspath(info.path)} to your support case; it is signed by key {info.key_id}.")
