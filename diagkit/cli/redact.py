"""`diagkit redact`: write a redacted copy of a HAR, JSON, YAML, XML (SAML) or text file."""

from __future__ import annotations

import os
import sys

import click

from diagkit.cli.common import debug_option, read_terms, terms_options

EXAMPLE = """Examples:

\b
  diagkit redact session.har                      # writes session.redacted.har
  diagkit redact session.har -o - --report r.json  # to stdout, report beside
  diagkit redact a.har --key-file case.key --map case-map.json
"""


def default_output(path: str) -> str:
    base, ext = os.path.splitext(path)
    return f"{base}.redacted{ext}"


def load_key(path: str) -> bytes:
    """Read (or create, mode 0600) the HMAC key shared by several runs of one case."""
    from diagkit.errors import KeyFileError
    from diagkit.fsutil import write_atomic

    if not os.path.exists(path):
        key = os.urandom(32)
        write_atomic(path, key.hex() + "\n", mode=0o600)
        return key
    try:
        with open(path, "rb") as handle:
            raw = handle.read(4096).strip()
    except OSError as exc:
        raise KeyFileError(f"key file '{path}' cannot be read: {exc.strerror or exc}") from None
    try:
        key = bytes.fromhex(raw.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        key = raw
    if len(key) < 16:
        raise KeyFileError(f"key file '{path}' is too short (needs at least 16 bytes or 32 hex digits)")
    return key


def _check_outputs(input_path: str, outputs: dict[str, str | None]) -> None:
    """Every output checked before anything is written: a bad --report must not leave a lone output behind."""
    from diagkit.errors import InputError
    from diagkit.fsutil import check_output

    seen: dict[str, str] = {}
    for what, path in outputs.items():
        if not path or path == "-":
            continue
        check_output(path, what, inputs=[input_path])
        key = os.path.abspath(path)
        if key in seen:
            raise InputError(f"{what} and {seen[key]} are the same file '{path}'")
        seen[key] = what


@click.command("redact", epilog=EXAMPLE)
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", metavar="OUTPUT",
              help="Where to write the redacted copy ('-' for stdout), in UTF-8 whatever the input's encoding. "
                   "Default: INPUT with .redacted before the extension.")
@click.option("--format", "fmt", type=click.Choice(["auto", "har", "json", "yaml", "text", "xml"]), default="auto",
              show_default=True, help="Input format; auto uses the extension, then the content.")
@click.option("--report", "report_path", metavar="REPORT.json",
              help="Write what was redacted (rules, locations, counts; never values).")
@click.option("--map", "map_path", metavar="MAP.json",
              help="Write pseudonym -> original (mode 0600). For the person who ran it; never share it.")
@click.option("--key-file", metavar="FILE",
              help="HMAC key file: the same key gives the same pseudonyms across files of one case "
                   "(created, mode 0600, when missing).")
@terms_options
@click.option("--no-ner", is_flag=True, help="Do not use the optional NER model for names and places.")
@debug_option
def redact(input_path: str, output: str | None, fmt: str, report_path: str | None, map_path: str | None,
           key_file: str | None, terms: tuple[str, ...], terms_file: str | None, no_ner: bool) -> None:
    """Write a redacted copy of INPUT: secrets and personal data become stable pseudonyms.

    The copy keeps its format (a HAR stays a valid HAR with the same entries, statuses and timings).
    Input may be UTF-8 (with or without a BOM) or UTF-16/32 (with or without a BOM); the copy is
    written in UTF-8 (an XML declaration says so).
    If anything that looks like a secret survives and cannot be redacted, nothing is written and the
    command exits 1 naming where.
    """
    from diagkit.fsutil import atomic_files
    from diagkit.redact import jsonout
    from diagkit.redact.engine import Redactor

    out_path = output or (default_output(input_path) if input_path != "-" else "-")
    _check_outputs(input_path, {"output": out_path, "--report": report_path, "--map": map_path})
    key = load_key(key_file) if key_file else None
    words = read_terms(terms, terms_file)
    redactor = Redactor(key, ner=False if no_ner else None, terms=words, locations=bool(report_path))
    result = redactor.redact_file(input_path, name=input_path if input_path != "-" else "<stdin>", fmt=fmt)
    # All outputs are opened (temporary files created) before any is written and renamed only when all
    # are complete: an unwritable --map folder or a Ctrl-C leaves no redacted copy without its report.
    with atomic_files() as open_output:
        report_handle = open_output(report_path) if report_path else None
        map_handle = open_output(map_path, mode=0o600) if map_path else None
        if out_path == "-":
            result.write_to(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:  # streamed: a big HAR is never held as one string
            result.write_to(open_output(out_path))
        if report_handle is not None:
            document = {"input": input_path, "output": out_path, "format": result.format, **result.report.to_dict()}
            report_handle.write(jsonout.encode(document, indent=True) + b"\n")
        if map_handle is not None:
            map_handle.write(jsonout.encode(redactor.mapping, indent=True) + b"\n")
    click.echo(f"redacted {result.format}: {result.report.summary()}", err=True)
    if out_path != "-":
        click.echo(f"wrote {out_path}", err=out_path == "-")
