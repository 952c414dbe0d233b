"""The packet layout: member names, schema version, in-toto/DSSE constants, limits and canonical JSON.

Everything that both the builder and the verifier must agree on lives here, so the two cannot drift.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

SCHEMA_VERSION = 1
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = f"https://diagkit.dev/escalation-packet/v{SCHEMA_VERSION}"
PAYLOAD_TYPE = "application/vnd.in-toto+json"

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FINDINGS = "findings.json"
SUMMARY = "summary.md"
CASE = "case.yaml"
SIGNER = "signer.pub"
EVIDENCE_DIR = "evidence/"

# Fixed metadata so the same inputs give the same ZIP members (CONTRACT.md: reproducible).
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_MODE = 0o100644  # regular file, rw-r--r--

# Limits a verifier enforces while reading, never trusting the sizes written in ZIP headers.
MAX_PACKET_BYTES = 1 << 30          # the packet file itself (1 GiB)
MAX_MEMBERS = 10_000
MAX_TOTAL_UNCOMPRESSED = 1 << 30    # sum of all members once inflated (1 GiB)
MAX_RATIO = 200                     # per member: inflated / compressed
RATIO_GRACE = 1 << 20               # a member smaller than 1 MiB inflated is never a bomb
MAX_MANIFEST_BYTES = 16 << 20
MAX_SIGNATURE_BYTES = MAX_MANIFEST_BYTES * 4 // 3 + 64 * 1024  # the base64 manifest plus a few signatures
MAX_RECIPIENTS = 16
MAX_SIGNATURES = 8                  # DSSE signatures considered; an envelope with more is refused


def no_floats(value: Any, where: str = "value") -> Any:
    """A copy of `value` safe for signed JSON: floats become decimal strings, other types are refused.

    Floats have no single canonical text form across JSON implementations, so a signed manifest never
    carries one (in-toto/DSSE practice).
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        # Beyond 2**53 - 1 a JSON number is read differently by different parsers (RFC 8785, I-JSON).
        return value if abs(value) <= 2**53 - 1 else str(value)
    if isinstance(value, str):
        # A lone surrogate (e.g. an undecodable byte in argv) has no UTF-8 form.
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: non-finite number cannot be signed")
        return repr(value)
    if isinstance(value, dict):
        return {no_floats(str(k)): no_floats(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_floats(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return str(value)


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook for every JSON diagkit reads from a packet: a key twice is an error."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(f"duplicate key {key[:40]!r}")
        seen[key] = value
    return seen


def loads_strict(data: bytes | str) -> Any:
    """json.loads for signed documents: a key given twice is an error, never first- or last-wins.

    Parsers disagree on which duplicate wins, so a signer's view and a verifier's view of the same
    signed bytes could differ (e.g. two "subject" lists). RecursionError is raised as ValueError.
    """
    try:
        return json.loads(data, object_pairs_hook=refuse_duplicate_keys)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def pretty_json(document: Any) -> bytes:
    """Readable, deterministic JSON for members people open (findings.json): sorted keys, 2-space indent."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


# Slash look-alikes that Unicode normalisation leaves alone (division, fraction, set-minus, big solidus...).
_SLASH_LOOKALIKES = frozenset("\u2215\u2044\u2216\u29f8\u29f9\u244a\u27cb\u27cd\u3033\u30fb")
# Control, format (bidi overrides such as U+202E) and line/paragraph separator characters.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


# Names Windows gives to devices, in any folder and with any extension ("CON.txt" opens the console).
_WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"}
                             | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"})
# Characters a Windows file name cannot hold (":" also starts an NTFS stream, and macOS Finder shows "/").
_WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255


def fold_name(name: str) -> str:
    """The form under which two names are one file on a case-insensitive Windows or macOS volume.

    Upper-casing first makes dotless ı and I (and ſ and S) meet, which casefold alone does not;
    full casefold then joins ß/ss, Σ/σ/ς and the rest.
    """
    return unicodedata.normalize("NFKC", name.upper().casefold())


def windows_safe_name(name: str) -> str:
    """`name` with what only Windows or macOS cannot hold replaced: forbidden characters become `_`,
    a trailing dot or space in a component becomes `_`, a device name gets a `_` after its stem
    (`CON.har` -> `CON_.har`). Traversal and control characters are left for unsafe_name_reason."""
    parts = []
    for part in name.split("/"):
        part = "".join("_" if c in _WINDOWS_FORBIDDEN else c for c in part)
        if part not in ("", ".", "..") and part.endswith((".", " ")):
            part = part.rstrip(". ") + "_"
        stem, dot, rest = part.partition(".")
        if stem.rstrip(" ").upper() in _WINDOWS_DEVICES:
            part = f"{stem}_{dot}{rest}"
        parts.append(part)
    return "/".join(parts)


def unsafe_name_reason(name: str) -> str | None:
    """Why a member name could escape an extraction folder, be unusable on Windows or macOS, or confuse
    a reader; None if it is safe."""
    if not name:
        return "empty name"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"name longer than {MAX_NAME_BYTES} bytes"
    if "\\" in name:
        return "backslash in name"
    if "\x00" in name or any(ord(c) < 32 or unicodedata.category(c) in _INVISIBLE for c in name):
        return "control character in name"
    if any(c in _SLASH_LOOKALIKES for c in name):
        return "look-alike slash in name"
    if unicodedata.normalize("NFKC", name) != name:
        # e.g. "\uff0e\uff0e/" (fullwidth dots) or "\u2215" (division slash): a folder that normalises
        # names (macOS, some archivers) or a person reading the listing would see "../" or "/".
        return "look-alike (non-normalised) Unicode characters in name"
    if name.startswith("/"):
        return "absolute path"
    if len(name) >= 2 and name[1] == ":" and name[0].isalpha():
        return "drive letter"
    parts = name.split("/")
    if any(p == ".." for p in parts):
        return "'..' component"
    if any(p in ("", ".") for p in parts):
        return "empty or '.' component"
    bad_char = next((c for c in name if c in _WINDOWS_FORBIDDEN), None)
    if bad_char:
        return f"character {bad_char!r} is not allowed in Windows file names"
    for part in parts:
        if part.endswith((".", " ")):
            return "trailing dot or space in a name component (Windows drops it)"
        if part.split(".")[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
            return f"reserved Windows device name {part.split('.')[0].rstrip(' ').upper()!r}"
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return f"name component longer than {MAX_COMPONENT_BYTES} bytes"
    return None

# A value the packet's redaction replaced: redactor pseudonyms (<IP:3f9a1c>, <redacted...>, as in
# diagkit.redact.pseudonym) and scrub's masks (<REDACTED>, <REDACTED-JWT>, inline values).
REPLACED = re.compile(r"<(?:[A-Z][A-Z_]*:[0-9a-f]{6,16}|redacted(?:-[a-z]{1,16})?|REDACTED(?:-JWT)?)>|^<inline value")
# Finding ids that say "the target could not be reached": from here that means the check could not run.
UNREACHED = re.compile(r"\.(?:connect\.failed|unreachable)$")
