"""Webhook bodies: the test event diagkit sends, and the altered copies a receiver may have verified instead.

A signature covers the exact bytes sent. Receivers that parse the JSON and serialise it again (or a proxy
or log that adds a newline or CRLF line ends) compute the HMAC over other bytes and reject a good delivery.
`variants()` lists those copies so the offline check can say which one the signature would match.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

UTF8_BOM = b"\xef\xbb\xbf"
_MAX_JSON = 1024 * 1024  # re-serialising a larger body (and HMAC-ing each form) costs more than it can tell


def load_json(body: bytes, limit: int = _MAX_JSON) -> Any:
    """The body as JSON (an object or array), or None (also when larger than `limit`)."""
    if len(body) > limit:
        return None
    text = body[len(UTF8_BOM):] if body.startswith(UTF8_BOM) else body
    if text.strip()[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." as deep as it likes
        return None


def _json_forms(data: Any) -> list[tuple[str, bytes]]:
    forms: list[tuple[str, bytes]] = []
    for sort in (False, True):
        sorted_label = "key-sorted " if sort else ""
        for ascii_only in (False, True):
            escaped = " with non-ASCII escaped (\\uXXXX)" if ascii_only else ""
            shapes = [
                (f"{sorted_label}compact JSON (no spaces, as JSON.stringify writes it){escaped}",
                 json.dumps(data, separators=(",", ":"), sort_keys=sort, ensure_ascii=ascii_only)),
                (f"{sorted_label}JSON with a space after ',' and ':' (Python's json.dumps default){escaped}",
                 json.dumps(data, sort_keys=sort, ensure_ascii=ascii_only)),
                (f"{sorted_label}JSON indented by 2 spaces{escaped}",
                 json.dumps(data, indent=2, sort_keys=sort, ensure_ascii=ascii_only)),
                (f"{sorted_label}JSON indented by 4 spaces{escaped}",
                 json.dumps(data, indent=4, sort_keys=sort, ensure_ascii=ascii_only)),
            ]
            forms.extend((label, text.encode("utf-8")) for label, text in shapes)
    return forms


def variants(body: bytes) -> list[tuple[str, bytes]]:
    """(what changed, bytes) for every plausible alteration of `body`, simplest first, none equal to it."""
    out: list[tuple[str, bytes]] = []
    if body.endswith(b"\r\n"):
        out.append(("the trailing CRLF removed", body[:-2]))
    if body.endswith(b"\n"):
        out.append(("the trailing newline removed", body[:-1]))
        out.append(("all trailing whitespace removed", body.rstrip()))
    else:
        out.append(("a trailing newline added", body + b"\n"))
        out.append(("a trailing CRLF added", body + b"\r\n"))
    if b"\r\n" in body:
        out.append(("CRLF line ends turned into LF", body.replace(b"\r\n", b"\n")))
    if b"\n" in body.replace(b"\r\n", b""):
        out.append(("LF line ends turned into CRLF", body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))
    if body.startswith(UTF8_BOM):
        out.append(("the UTF-8 byte order mark removed", body[len(UTF8_BOM):]))
    data = load_json(body)
    if data is not None:
        for label, form in _json_forms(data):
            out.append((f"re-serialised as {label}", form))
            out.append((f"re-serialised as {label}, with a trailing newline", form + b"\n"))
    seen = {body}
    unique = []
    for label, value in out:
        if value not in seen:
            seen.add(value)
            unique.append((label, value))
    return unique


def reserialisations(body: bytes) -> list[str]:
    """Which common re-serialisations change this body's bytes (so a receiver that re-serialises fails)."""
    data = load_json(body)
    if data is None:
        return []
    return [label for label, form in _json_forms(data) if form != body]


# ---------------------------------------------------------------- the test event diagkit sends

def _render(data: dict[str, Any]) -> bytes:
    """Indented JSON (as Stripe sends it) with '/' escaped in strings (as PHP's json_encode writes it).

    No common serialiser (Python, JavaScript, Go, Java, Ruby, PHP with its defaults) reproduces these
    bytes after parsing them, so a receiver that verifies over re-serialised JSON rejects this test just
    as it rejects real deliveries, instead of passing it by luck.
    """
    text = json.dumps(data, indent=2, ensure_ascii=True)
    return text.replace("/", "\\/").encode("ascii")


def sample_event(scheme: str, timestamp: int, msg_id: str) -> bytes:
    """A harmless test event shaped like the vendor's own, marked as coming from diagkit."""
    note = "Test delivery from diagkit/probe-webhook: safe to ignore"
    if scheme == "stripe":
        data: dict[str, Any] = {"id": msg_id, "object": "event", "api_version": "2024-06-20", "created": timestamp,
                                "type": "diagkit.test", "livemode": False,
                                "data": {"object": {"object": "diagkit_test", "note": note}}}
    elif scheme == "github":
        data = {"zen": "Keep it logically awesome.", "hook_id": 0, "hook": {"type": "Repository", "events": ["push"]},
                "sender": {"login": "diagkit"}, "note": note}
    elif scheme == "slack":
        data = {"token": "diagkit-test", "team_id": "T00000000", "type": "event_callback", "event_id": msg_id,
                "event_time": timestamp, "event": {"type": "app_mention", "text": note}}
    else:
        data = {"type": "diagkit.test", "timestamp": _iso(timestamp), "data": {"id": msg_id, "note": note}}
    return _render(data)


def new_id(prefix: str = "msg_") -> str:
    return prefix + secrets.token_hex(12)


def _iso(timestamp: int) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
