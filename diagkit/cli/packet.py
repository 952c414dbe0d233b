"""`diagkit packet build|verify|show|extract`: escalation packets from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from diagkit.cli.common import debug_option, dumps, key_values

_identity = click.option("--identity", type=click.Path(dir_okay=False), default=None, metavar="KEY",
                         help="Your encryption.key, to open an encrypted packet.")
_trusted = click.option("--trusted-key", "trusted_keys", multiple=True, metavar="PUBKEY",
                        help="Signer public key (PEM .pub file or key line) to require; repeatable. "
                             "Replaces the trusted_keys file in the config folder for this run.")


@click.group(epilog="Example:\n\n\b\n  diagkit packet build --results tls.json --case-field case=CS-1234 -o case.zip\n"
                    "  diagkit packet verify case.zip --trusted-key customer-signing.pub")
def packet() -> None:
    """Build, verify, show, extract, replay and diff signed escalation packets."""


def _load_results(paths: tuple[str, ...]) -> list[Any]:
    from diagkit.errors import InputFormatError, read_input_bytes
    from diagkit.findings import parse_results_document

    results = []
    for path in paths:
        data = read_input_bytes(path, "results file", limit=256 << 20)
        try:
            results += parse_results_document(json.loads(data))
        except RecursionError:
            raise InputFormatError(f"results file '{path}' is not diagkit --json output (nested too deeply)") from None
        except (ValueError, KeyError, TypeError) as exc:
            reason = "not JSON" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) else str(exc).splitlines()[0]
            raise InputFormatError(f"results file '{path}' is not diagkit --json output ({reason})") from None
    return results


def _redacted_attachments(paths: tuple[str, ...], key: bytes | None = None) -> tuple[list[Any], dict[str, Any] | None]:
    """Attachments go through the redaction engine, never raw; no engine means no attachments."""
    from diagkit.errors import RedactionError, read_input_bytes
    from diagkit.packet.build import Evidence, guess_media_type

    if not paths:
        return [], None
    try:
        from diagkit.redact.engine import Redactor
    except ImportError:
        raise RedactionError("--attach needs the redaction engine (diagkit.redact), which is not available "
                             "in this installation; nothing was written") from None
    redactor = Redactor(key)
    evidence, summary = [], {}
    for path in paths:
        data = read_input_bytes(path, "attachment", limit=512 << 20)
        name = Path(path).name
        result = redactor.redact_bytes(data, name=name, fmt="auto")
        report = result.report.to_dict() if hasattr(result.report, "to_dict") else {}
        replaced = _replaced_count(report)
        note = f"redacted {result.format}" + (f" ({replaced} values replaced)" if replaced is not None else "")
        evidence.append(Evidence(name=name, data=result.data, media_type=guess_media_type(name), note=note))
        summary[f"evidence/{name}"] = report
    total = sum(r.get("total", 0) for r in summary.values() if isinstance(r.get("total"), int))
    return evidence, {"total": total, "files": summary}


def _replaced_count(report: dict[str, Any]) -> int | None:
    for key in ("total", "replaced", "count", "redactions"):
        if isinstance(report.get(key), int):
            return report[key]
    return None


@packet.command("build", epilog="Example:\n\n\b\n  diagkit probe tls api.example.com --json > tls.json\n"
                                "  diagkit packet build --results tls.json --attach session.har "
                                "--case-field case=CS-1234 -o case-1234.zip")
@click.option("--results", "results_files", multiple=True, metavar="FILE",
              help="Saved `--json` probe output (a result or {\"results\": [...]}); repeatable.")
@click.option("--attach", "attachments", multiple=True, metavar="FILE",
              help="A file to include as evidence, redacted first; repeatable.")
@click.option("--case-field", "case_fields", multiple=True, metavar="KEY=VALUE", help="An escalation field; repeatable.")
@click.option("--sign-key", type=click.Path(dir_okay=False), default=None, metavar="KEY",
              help="Ed25519 signing.key [default: the one in the config folder, created on first use].")
@click.option("--encrypt-to", multiple=True, metavar="PUBKEY",
              help="Recipient encryption.pub to encrypt the packet to; repeatable (at most 16).")
@click.option("-o", "--output", required=True, metavar="PACKET",
              help="Where to write the packet; '-' writes it to standard output.")
@debug_option
def build(results_files: tuple[str, ...], attachments: tuple[str, ...], case_fields: tuple[str, ...],
          sign_key: str | None, encrypt_to: tuple[str, ...], output: str) -> None:
    """Make a signed packet from saved probe results and (redacted) files."""
    from diagkit.config import config_dir
    from diagkit.fsutil import STDOUT, check_output
    from diagkit.packet.build import build_packet
    from diagkit.packet.keys import SIGNING_KEY, pseudonym_key

    check_output(output, "packet")
    case = key_values(case_fields, "--case-field")
    results = _load_results(results_files)
    default_key = config_dir() / SIGNING_KEY
    had_default_key = default_key.exists()
    # Pseudonyms keyed by the signing key: the same inputs give the same evidence bytes.
    evidence, redaction = _redacted_attachments(attachments, pseudonym_key(sign_key) if attachments else None)
    info = build_packet(output, results=results, evidence=evidence, case=case, redaction_summary=redaction,
                        sign_key=sign_key, encrypt_to=list(encrypt_to))
    if sign_key is None and not had_default_key and default_key.exists():
        click.echo(f"diagkit: created a signing key at {default_key} (tell whoever verifies your packets "
                   f"its key id, {info.key_id})", err=True)
    state = "signed and encrypted" if info.encrypted else "signed"
    click.echo(f"wrote {info.path} ({len(info.members)} members, {state} by {info.key_id}, packet id {info.packet_id})",
               err=output == STDOUT)  # the packet itself is on stdout


@packet.command("verify", epilog="Example:\n\n  diagkit packet verify case-1234.zip --trusted-key customer-signing.pub")
@click.argument("packet_path", metavar="PACKET")
@_trusted
@_identity
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document describing the verified packet.")
@debug_option
def verify(packet_path: str, trusted_keys: tuple[str, ...], identity: str | None, as_json: bool) -> None:
    """Check the signature and every member; exit 0 only when all is well, 1 otherwise."""
    from diagkit.packet.verify import verify_packet
    from diagkit.visible import visible

    vp = verify_packet(packet_path, trusted_keys=trusted_keys, identity=identity)
    shown = visible(packet_path)  # the packet's fields are checked (UUID, timestamp); its path is not
    if as_json:
        click.echo(dumps({"valid": True, "path": packet_path, "packet_id": vp.packet_id,
                          "signer": {"key_id": vp.signer.key_id, "pinned": vp.pinned, "trusted_by": vp.trusted_by},
                          "encrypted": vp.encrypted, "encrypted_to": vp.recipients,
                          "members": len(vp.members)}))
        return
    click.echo(f"verified {shown}: signature valid, {len(vp.members) - 2} members match the manifest")
    click.echo(f"  signer    {vp.signer.key_id}  ({vp.signer_status()})")
    if not vp.pinned:
        click.echo("            compare this key id with the sender, or pass --trusted-key to require it")
    click.echo(f"  packet    {vp.packet_id}, created {vp.predicate.get('created_at', '?')}")
    if vp.encrypted:
        click.echo(f"  encrypted to {', '.join(vp.recipients)}")


@packet.command("show", epilog="Example:\n\n  diagkit packet show case-1234.zip --markdown | pbcopy\n\n"
                               "  diagkit packet show case-1234.zip --html report.html")
@click.argument("packet_path", metavar="PACKET")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--markdown", is_flag=True, help="Print Markdown ready to paste into a ticket.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write one self-contained HTML page.")
@_trusted
@_identity
@debug_option
def show(packet_path: str, as_json: bool, markdown: bool, html_file: str | None, trusted_keys: tuple[str, ...],
         identity: str | None) -> None:
    """Verify, then show the case, findings (worst first), readiness and evidence.

    Exit status follows the packet's findings (0, 3 fail, 4 warn, 5 error) once it verifies; 1 for a bad packet.
    """
    from diagkit.findings import exit_status
    from diagkit.fsutil import STDOUT, check_output, write_atomic
    from diagkit.packet import show as render
    from diagkit.packet import show_html, show_markdown
    from diagkit.packet.verify import verify_packet

    if sum(bool(x) for x in (as_json, markdown, html_file)) > 1:
        raise click.UsageError("choose one of --json, --markdown and --html")
    if html_file:
        check_output(html_file, "--html")
    vp = verify_packet(packet_path, trusted_keys=trusted_keys, identity=identity)
    view = render.view_of(vp)
    if as_json:
        click.echo(dumps(render.to_json(view, packet_path)))
    elif markdown:
        click.echo(show_markdown.render(view), nl=False)
    elif html_file:
        write_atomic(html_file, show_html.render(view, packet_path))
        if html_file != STDOUT:
            click.echo(f"wrote {html_file}")
    else:
        from diagkit.cli.packet_view import render_packet

        click.echo(render_packet(view, packet_path))
    sys.exit(int(exit_status(view.results)))


@packet.command("extract", epilog="Example:\n\n  diagkit packet extract case-1234.zip ./case-1234")
@click.argument("packet_path", metavar="PACKET")
@click.argument("directory", metavar="DIR")
@click.option("--force", is_flag=True, help="Overwrite files that already exist in DIR.")
@_trusted
@_identity
@debug_option
def extract(packet_path: str, directory: str, force: bool, trusted_keys: tuple[str, ...], identity: str | None) -> None:
    """Verify, then write every member under DIR (never outside it). Nothing is written if verification fails."""
    from diagkit.packet.verify import extract_packet, verify_packet
    from diagkit.visible import visible

    vp = verify_packet(packet_path, trusted_keys=trusted_keys, identity=identity)
    written = extract_packet(vp, directory, force=force)
    click.echo(f"extracted {len(written)} files to {visible(directory)} (signer {vp.signer.key_id}, {vp.signer_status()})")


@packet.command("replay", epilog="Example:\n\n\b\n  diagkit packet replay case-1234.zip -o here.json\n"
                                 "  diagkit packet diff case-1234.zip here.json")
@click.argument("packet_path", metavar="PACKET")
@click.option("--json", "as_json", is_flag=True, help='Print the results document {"results": [...]}.')
@click.option("-o", "--output", default=None, metavar="RESULTS.json",
              help="Also write the results document to this file ('-' for standard output).")
@click.option("--timeout", type=click.FloatRange(min=0.01), default=None,
              help="Seconds each network operation may take [default: each probe's own].")
@click.option("--ca-file", type=click.Path(dir_okay=False), default=None, metavar="PEM",
              help="Extra trusted CA certificates (PEM) for every probe that takes one, instead of the customer's.")
@click.option("--secret", "secrets", multiple=True, metavar="OPTION=VALUE",
              help="A secret the packet does not hold, for runs that used it, e.g. bearer=@token.txt or "
                   "'header=Authorization: Basic ...'; repeatable.")
@_trusted
@_identity
@debug_option
def replay(packet_path: str, as_json: bool, output: str | None, timeout: float | None, ca_file: str | None,
           secrets: tuple[str, ...], trusted_keys: tuple[str, ...], identity: str | None) -> None:
    """Verify, then run the packet's network probes again from here with the same targets and options.

    File probes (har) are not re-run. Exit status follows the new findings (0, 3, 4, 5); 1 for a bad packet.
    """
    from diagkit.casework.replay import replay_packet
    from diagkit.findings import exit_status
    from diagkit.fsutil import check_output

    given: dict[str, list[str]] = {}
    for item in secrets:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter("expected OPTION=VALUE, e.g. bearer=@token.txt", param_hint="--secret")
        given.setdefault(name.strip(), []).append(value)
    if output is not None:
        check_output(output, "-o", inputs=[packet_path])
    document, results, notes = replay_packet(packet_path, trusted_keys=trusted_keys, identity=identity,
                                             timeout=timeout, ca_file=ca_file, secrets=given,
                                             progress=lambda line: click.echo(line, err=True))
    for note in notes:
        click.echo(f"diagkit: {note}", err=True)
    if output not in (None, "-"):
        from diagkit.fsutil import write_atomic

        write_atomic(output, dumps(document) + "\n")
        click.echo(f"wrote {output}", err=True)
    if as_json or output == "-":
        click.echo(dumps(document))
    else:
        from diagkit.cli.render import render_results

        click.echo(render_results(results) if results else "nothing replayed")
    sys.exit(int(exit_status(results)))


@packet.command("diff", epilog="Example:\n\n\b\n  diagkit packet replay case-1234.zip -o here.json\n"
                               "  diagkit packet diff case-1234.zip here.json --markdown")
@click.argument("a_path", metavar="A")
@click.argument("b_path", metavar="B")
@click.option("--json", "as_json", is_flag=True, help='Print {"same": ..., "differences": [...]}.')
@click.option("--markdown", is_flag=True, help="Print Markdown ready to paste into a ticket.")
@_trusted
@_identity
@debug_option
def diff(a_path: str, b_path: str, as_json: bool, markdown: bool, trusted_keys: tuple[str, ...],
         identity: str | None) -> None:
    """Compare two packets or saved results: findings, severities and facts that differ, and what that means.

    Packets are verified first. Exit 0 when nothing differs, 4 when something does, 1 when they cannot be compared.
    """
    from diagkit.packet import diff as d

    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    (a, a_note), (b, b_note) = (d.load(p, trusted_keys=trusted_keys, identity=identity) for p in (a_path, b_path))
    comparison = d.compare(a, b, (a_path, b_path))
    click.echo(f"A = {a_note}\nB = {b_note}", err=True)
    if as_json:
        click.echo(dumps(comparison.to_json()))
    elif markdown:
        click.echo(d.render_markdown(comparison, a_path, b_path), nl=False)
    else:
        click.echo(d.render_terminal(comparison, a_path, b_path))
    sys.exit(0 if comparison.same else 4)
