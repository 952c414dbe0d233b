"""The packet layout: member names, schema version, in-toto/DSSE constants, limits and canonical JSON.

Everything that both the builder and the verifier must agree on lives here, so the two cannot drift.
"""

from __future__ import annotations

import json
import math
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


def no_floats(value: Any, where: str = "value") -> Any:
    """A copy of `value` safe for signed JSON: floats become decimal strings, other types are refused.

    Floats have no single canonical text form across JSON implementations, so a signed manifest never
    carries one (in-toto/DSSE practice).
    """
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: non-finite number cannot be signed")
        return repr(value)
    if isinstance(value, dict):
        return {str(k): no_floats(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [no_floats(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return str(value)


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
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
        return json.loads(data, object_pairs_hook=_refuse_duplicates)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def canonical_json(document: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


# Slash look-alikes that Unicode normalisation leaves alone (division, fraction, set-minus, big solidus...).
_SLASH_LOOKALIKES = frozenset("\u2215\u2044\u2216\u29f8\u29f9\u244a\u27cb\u27cd\u3033\u30fb")
# Control, format (bidi overrides such as U+202E) and line/paragraph separator characters.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def unsafe_name_reason(name: str) -> str | None:
    """Why a member name could escape an extraction folder or confuse a reader, or None if it is safe."""
    if not name:
        return "empty name"
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
    return None
