"""`probe webhook-signature`: does one delivered request (body file and headers) verify with this secret?

Offline: nothing is sent. The scheme comes from --scheme or from the signature header present. When
the signature does not match, it says whether it WOULD match a nearby reading (webhook_bodies.variants:
re-serialised JSON, a trailing newline, CRLF line ends; another vendor's scheme; the secret read another
way), which names the receiver's mistake instead of only "mismatch". The timestamp is checked against
--tolerance from the context's clock (or --at, when the request was received). The secret never leaves:
findings show its key id only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from typing import TYPE_CHECKING, Any

from diagkit.collectors.http.request import parse_headers, recorded_header
from diagkit.collectors.webhook import bodies as webhook_bodies
from diagkit.collectors.webhook import schemes as webhook_schemes
from diagkit.collectors.webhook.probe import BODY_LIMIT, read_secret
from diagkit.collectors.webhook.schemes import KEY_LABELS, SCHEMES, Parsed, Scheme, key_id, matches
from diagkit.errors import InputError, read_input_bytes
from diagkit.probe import Option, Probe, Report

if TYPE_CHECKING:
    from diagkit.context import Context

MAX_REPORTED = 5
_REQUEST_LINE = re.compile(r"^[A-Z]+ \S+ HTTP/\d")
_TIMESTAMP_HEADERS = ("webhook-timestamp", "svix-timestamp", "x-slack-request-timestamp")
_ID_HEADERS = ("webhook-id", "svix-id")


def run(ctx: Context, report: Report, target: str, header: tuple[str, ...] = (), secret: str | None = None,
        scheme: str | None = None, tolerance: float = webhook_schemes.DEFAULT_TOLERANCE_S, at: str | None = None,
        signature_header: str | None = None) -> None:
    from diagkit.context import parse_time

    if secret is None:
        raise InputError("--secret is required: the signing secret the receiver verifies with",
                         hint="--secret VALUE or --secret @FILE")
    body = read_input_bytes(target, "body file", limit=BODY_LIMIT)
    pairs = parse_headers(_header_lines(header or ()))
    lower: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in pairs:
        lower.setdefault(name.lower(), value)
        names.setdefault(name.lower(), name)
    secret_text = read_secret(secret).strip()
    if not secret_text:
        raise InputError("--secret is empty")
    scheme = _scheme_name(scheme)
    webhook_schemes.refuse_credentials(scheme or "sender's", secret_text)
    try:
        now = parse_time(at) if at else ctx.now()
    except ValueError:
        raise InputError(f"--at '{at}' is not an ISO 8601 time") from None
    if tolerance is None or tolerance < 0:
        raise InputError("--tolerance must be zero or more seconds")

    found = webhook_schemes.detect(lower, names, signature_header)
    report.facts["body"] = {"file": target, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                            "json": webhook_bodies.load_json(body) is not None}
    report.facts["header_names"] = [n for n, _ in pairs]
    report.facts["schemes_present"] = [p.scheme for p in found]
    parsed = next((p for p in found if p.scheme == scheme), None) if scheme else (found[0] if found else None)
    if parsed is None and scheme == "hmac-sha256" and "x-hub-signature-256" in lower:
        # GitHub's header is a plain HMAC-SHA256 of the body: asked for plainly, it is read plainly.
        parsed = webhook_schemes.parse(SCHEMES[scheme], lower, names, "x-hub-signature-256")
    if parsed is None:
        if not (scheme and _signed_otherwise(report, scheme, found, body, secret_text)):
            _missing(report, scheme, found)
        return
    chosen = SCHEMES[parsed.scheme]
    variants = webhook_schemes.key_variants(secret_text)
    vendor_key = _vendor_key(chosen, secret_text, variants)
    report.facts.update({
        "scheme": chosen.name, "scheme_detected": scheme is None, "signature_header": parsed.header,
        "signatures": parsed.raw_count, "key_id": key_id(vendor_key if vendor_key is not None else variants["text"]),
        **({"timestamp": _iso(parsed.timestamp)} if parsed.timestamp is not None else {}),
        **({"msg_id": parsed.msg_id} if parsed.msg_id else {}),
        "checked_at": _iso(int(now.timestamp())), "tolerance_s": tolerance,
    })
    if parsed.problem:
        report.add("webhook.signature.missing", f"The {chosen.label} signature cannot be checked: {parsed.problem}",
                   detail=(f"The request carries {parsed.header}, but {parsed.problem}; a receiver rejects it. "
                           "Copy the headers exactly as delivered."),
                   evidence={"scheme": chosen.name, "header": parsed.header, "problem": parsed.problem})
        return

    valid = vendor_key is not None and matches(
        chosen.mac(vendor_key, body, parsed.timestamp, parsed.msg_id, parsed.digest), parsed.signatures)
    stale = _check_time(report, parsed, now, tolerance, valid)
    if valid:
        # The HMAC and the timestamp are two checks: a stale but authentic request gets both findings.
        when = ("" if parsed.timestamp is None else
                f"; its timestamp is outside the {tolerance:g} s tolerance (see webhook.signature.timestamp)" if stale
                else f", and its timestamp is within {tolerance:g} s")
        report.add("webhook.signature.valid", f"The {chosen.label} signature matches the body and secret",
                   detail=(f"{parsed.header} verifies over the raw body ({len(body)} bytes) with key "
                           f"{report.facts['key_id']}{when}."),
                   evidence={"scheme": chosen.name, "header": parsed.header, "key_id": report.facts["key_id"],
                             **({"timestamp_ok": not stale} if parsed.timestamp is not None else {})})
        return
    _mismatch(report, chosen, parsed, body, secret_text, variants, vendor_key, lower)


def _header_lines(values: tuple[str, ...]) -> list[str]:
    """-H values; one may hold a block of lines as copied from a log, whose request line and HTTP/2
    pseudo-headers (:method, :path) are not headers and are skipped."""
    lines = []
    for value in values:
        block = value.splitlines()
        for line in block:
            if not line.strip() or len(block) > 1 and (line.startswith(":") or _REQUEST_LINE.match(line)):
                continue
            lines.append(line)
    return lines


def _scheme_name(scheme: str | None) -> str | None:
    """--scheme as given on the command line or by a checklist answer (any case; empty means detect)."""
    if not scheme or not scheme.strip():
        return None
    name = scheme.strip().lower()
    if name not in SCHEMES:
        raise InputError(f"--scheme '{scheme}' is not one of {', '.join(SCHEMES)}")
    return name


def _vendor_key(chosen: Scheme, secret: str, variants: dict[str, bytes]) -> bytes | None:
    """The key the vendor derives from the secret, or None when the secret is not in its format."""
    try:
        return chosen.key(secret)
    except InputError:
        return None if chosen.key_kind != "text" else variants["text"]


def _signed_otherwise(report: Report, scheme: str, found: list[Parsed], body: bytes, secret: str) -> bool:
    """--scheme names one scheme, but the request is validly signed per another one: say which."""
    for other in found:
        own = SCHEMES[other.scheme]
        key = _vendor_key(own, secret, webhook_schemes.key_variants(secret))
        if other.problem or key is None or not matches(
                own.mac(key, body, other.timestamp, other.msg_id, other.digest), other.signatures):
            continue
        wanted = SCHEMES[scheme]
        report.add("webhook.signature.mismatch",
                   f"No {wanted.label} signature, but the request is validly signed per the {own.label} scheme "
                   f"(--scheme {own.name})",
                   detail=(f"The request carries {other.header}, which matches this body and secret per the "
                           f"{own.label} scheme; a receiver set up for {wanted.label} looks for "
                           f"{', '.join(wanted.headers) or webhook_schemes.PLAIN_HEADER} and rejects it. Configure "
                           f"the receiver for the {own.label} scheme (or the sender for {wanted.label})."),
                   evidence={"scheme": wanted.name, "header": other.header, "key_id": key_id(key),
                             "would_match": [{"scheme": own.label, "scheme_id": own.name}]})
        return True
    return False


def _missing(report: Report, scheme: str | None, found: list[Parsed]) -> None:
    wanted = SCHEMES[scheme].label if scheme else "known"
    expected = ", ".join(h for s in ([SCHEMES[scheme]] if scheme else SCHEMES.values()) for h in s.headers) or \
        f"{webhook_schemes.PLAIN_HEADER} (or --signature-header)"
    others = [f"{p.header} ({SCHEMES[p.scheme].label})" for p in found]
    detail = (f"None of the given headers carries a {wanted} signature (expected {expected}). "
              + (f"The request does carry {', '.join(others)}: use --scheme {found[0].scheme}." if others else
                 "Either the sender does not sign (no secret configured for this endpoint), a proxy stripped the "
                 "header, or the headers were not copied: pass each with -H 'Name: value'."))
    report.add("webhook.signature.missing", f"No {wanted} signature header in the request", detail=detail,
               evidence={"expected": expected, "present": others})


def _check_time(report: Report, parsed: Parsed, now: _dt.datetime, tolerance: float, valid: bool) -> bool:
    if parsed.timestamp is None:
        return False
    age = int(now.timestamp()) - parsed.timestamp
    if abs(age) <= tolerance:
        return False
    when = f"{age} s old" if age > 0 else f"{-age} s in the future"
    report.add("webhook.signature.timestamp", f"The signature's timestamp is {when} (tolerance {tolerance:g} s)",
               detail=(("The HMAC itself matches; " if valid else "") + "receivers reject signatures outside the "
                       "tolerance to stop replays. Causes: the receiver's clock is wrong (check NTP), the request "
                       "was queued or replayed before verification, or it is checked long after delivery (give "
                       "--at with the time it was received)."),
               evidence={"timestamp": _iso(parsed.timestamp), "checked_at": _iso(int(now.timestamp())),
                         "age_s": age, "tolerance_s": tolerance, "signature_matches": valid})
    return True


def _mismatch(report: Report, chosen: Scheme, parsed: Parsed, body: bytes, secret: str,
              variants: dict[str, bytes], vendor_key: bytes | None, headers: dict[str, str]) -> None:
    timestamp = parsed.timestamp if parsed.timestamp is not None else next(
        (int(headers[h]) for h in _TIMESTAMP_HEADERS if headers.get(h, "").strip().isdigit()), None)
    msg_id = parsed.msg_id or next((headers[h].strip() for h in _ID_HEADERS if headers.get(h)), None)
    bodies = [(None, body), *webhook_bodies.variants(body)]
    found = _search(chosen, parsed, bodies, variants, timestamp, msg_id)
    key_shown = key_id(vendor_key if vendor_key is not None else variants["text"])
    evidence: dict[str, Any] = {"scheme": chosen.name, "header": parsed.header, "key_id": key_shown,
                                "tried": len(bodies) * len(SCHEMES) * len(variants)}
    if vendor_key is None:
        evidence["secret_format"] = f"not a {chosen.label} secret ({KEY_LABELS[chosen.key_kind]})"
    if not found:
        report.add("webhook.signature.mismatch", f"The {chosen.label} signature does not match this body and secret",
                   detail=("No nearby reading matches either (re-serialised JSON, trailing newline, CRLF line ends, "
                           "other schemes, the secret as text/base64/hex). Most likely the secret differs from the "
                           f"sender's (this one's key id is {key_shown}: compare it with the receiver's), or the "
                           "body was changed in a way not tried (a proxy, decompression, a charset conversion)."),
                   evidence=evidence)
        return
    first = found[0]
    evidence["would_match"] = [{k: v for k, v in m.items() if v} for m in found[:MAX_REPORTED]]
    changes = [c for c in (first["body"] and f"the body {first['body']}",
                           first["scheme"] and f"signed per the {first['scheme']} scheme",
                           first["secret"] and f"with {first['secret']}") if c]
    advice = []
    if first["body"]:
        advice.append("The signature covers other bytes than this body: whoever verifies (or logged the body) "
                      "worked on a parsed-and-rewritten or otherwise altered copy. Verify over the raw request "
                      "bytes exactly as received, before any JSON parsing or text handling")
    if first["scheme"]:
        advice.append(f"The sender signs per the {first['scheme']} scheme: configure the receiver for it")
    if first["secret"]:
        advice.append("Sender and receiver read the secret differently: Standard Webhooks base64-decodes what "
                      "follows whsec_, Stripe uses the whole whsec_ string as text")
    report.add("webhook.signature.mismatch", f"The signature does not match, but would match {changes[0]}"
               + (" " + " and ".join(changes[1:]) if len(changes) > 1 else ""),
               detail=f"It matches {'; '.join(changes)}. " + ". ".join(advice) + ".", evidence=evidence)


def _search(chosen: Scheme, parsed: Parsed, bodies: list[tuple[str | None, bytes]], keys: dict[str, bytes],
            timestamp: int | None, msg_id: str | None) -> list[dict[str, str | None]]:
    """Readings that match, fewest changes first: one change (body, scheme or secret), then two."""
    found: dict[int, list[dict[str, str | None]]] = {}
    for scheme in SCHEMES.values():
        for kind, key in keys.items():
            for label, candidate in bodies:
                changed = sum((label is not None, scheme.name != chosen.name, kind != scheme.key_kind))
                if changed == 0 and scheme.name == chosen.name:
                    continue  # the vendor's own reading: already checked
                mac = scheme.mac(key, candidate, timestamp, msg_id, parsed.digest)
                if matches(mac, parsed.signatures):
                    found.setdefault(changed, []).append({
                        "body": label,
                        "scheme": f"{scheme.label} (--scheme {scheme.name})" if scheme.name != chosen.name else None,
                        "secret": KEY_LABELS[kind] if kind != scheme.key_kind else None,
                    })
    return [m for level in sorted(found) for m in found[level]]


def _iso(timestamp: int) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


probe = Probe(
    name="webhook-signature",
    summary="Check offline whether a delivered webhook (body file + headers) verifies with a secret, and why not.",
    target="BODY_FILE",
    run=run,
    options=(
        Option("header", "A header of the delivered request, 'Name: value' (repeatable; a value may hold several "
               "lines of them).", multiple=True, flags=("-H", "--header"), metavar="'NAME: VALUE'",
               secret=recorded_header),
        Option("secret", "The signing secret the receiver verifies with (or @FILE). Never shown; its key id is.",
               metavar="VALUE|@FILE", secret=True),
        Option("scheme", "Signature scheme [default: detected from the headers].", choices=webhook_schemes.NAMES),
        Option("tolerance", "Seconds a signature's timestamp may be away from now (or --at).", type=float,
               default=webhook_schemes.DEFAULT_TOLERANCE_S, metavar="S"),
        Option("at", "When the request was received (ISO 8601) [default: now].", metavar="TIME"),
        Option("signature_header", "Header holding a plain hmac-sha256 signature [default: detected].",
               metavar="NAME"),
    ),
    default_timeout=10.0,
    max_calls=1,
    example=("diagkit probe webhook-signature body.json -H 'Stripe-Signature: t=1700000000,v1=5257a8...' "
             "--secret @whsec.txt"),
    description=(
        "Check one delivered webhook request offline: does BODY_FILE with the given headers verify with the "
        "secret (Standard Webhooks, Stripe, GitHub, Slack or plain HMAC-SHA256; detected from the headers "
        "unless --scheme is given)? If not, says whether it would match the body re-serialised (compact, "
        "key-sorted or indented JSON), with a trailing newline added or removed, with CRLF line ends, another "
        "scheme, or the secret read another way; and whether the timestamp is within --tolerance. The secret "
        "is never shown; its key id (sha256 prefix of the key) is."
    ),
    network=False,
)
