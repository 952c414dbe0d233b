"""Evidence files (HAR recordings and attachments): read before anything runs, with a safe member name each;
a file that cannot be read or packed becomes an `evidence` result instead of stopping collect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from diagkit.errors import DiagkitError, InputError, read_input_bytes

if TYPE_CHECKING:
    from diagkit.findings import ProbeResult

MAX_EVIDENCE_BYTES = 200 * 1024 * 1024


@dataclass
class InputFile:
    """One evidence file as read, with its name under evidence/ in the packet."""

    path: str
    is_har: bool
    data: bytes = b""
    member: str = ""


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
