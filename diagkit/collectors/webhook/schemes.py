"""Webhook signature schemes as each vendor documents them: the secret's format, what is signed, the headers.

One `Scheme` per vendor, used both to sign a test delivery (probe webhook) and to check a delivered
request offline (probe webhook-signature), so that what diagkit sends is exactly what it accepts:
- standard: Standard Webhooks 1.0 (https://www.standardwebhooks.com/): `whsec_` + base64 secret, decoded;
  signs `msg_id.timestamp.body`; `webhook-signature: v1,<base64>` (space-separated list). Svix's
  `svix-*` header names are the same scheme.
- stripe: the whole `whsec_...` string is the HMAC key (not decoded); signs `timestamp.body`;
  `Stripe-Signature: t=<ts>,v1=<hex>`.
- github: the secret as text; signs the body; `X-Hub-Signature-256: sha256=<hex>` (and legacy SHA-1
  `X-Hub-Signature: sha1=<hex>`).
- slack: the signing secret as text; signs `v0:timestamp:body`; `X-Slack-Signature: v0=<hex>` with
  `X-Slack-Request-Timestamp`.
- hmac-sha256: the secret as text; signs the body; hex in `X-Signature` (or a header the user names).
Secrets are held as bytes only here and never leave: callers show `key_id()` at most.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from diagkit.errors import InputError

DEFAULT_TOLERANCE_S = 300  # Stripe, Slack and the Standard Webhooks libraries all allow five minutes
PLAIN_HEADER = "X-Signature"
# Header names that carry a bare HMAC in the wild (plain scheme), looked for when none is named; the
# timestamps, ids and key names that often sit beside them are not signatures.
_PLAIN_NAMES = re.compile(r"(?i)^(x-[a-z0-9-]*)?(signature|hmac)[a-z0-9-]*$|^x-[a-z0-9-]*-(signature|hmac)[a-z0-9-]*$")
_NOT_A_SIGNATURE = re.compile(r"time|nonce|-id$|version|alg|input|key")


def key_id(key: bytes) -> str:
    """A fingerprint of the key bytes as used (`printf %s SECRET | sha256sum` for a text secret): never the key."""
    return "sha256:" + hashlib.sha256(key).hexdigest()[:8]


def _text(secret: str) -> bytes:
    return secret.encode("utf-8")


def _whsec_base64(secret: str) -> bytes | None:
    """Standard Webhooks: strip `whsec_`, base64-decode (padding optional, as the reference libraries allow)."""
    text = secret[6:] if secret.startswith("whsec_") else secret
    text = text.strip()
    if not text or not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", text):
        return None
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def key_variants(secret: str) -> dict[str, bytes]:
    """Every reading of the secret a sender or receiver might use, by label (for 'would match if...')."""
    variants = {"text": _text(secret)}
    decoded = _whsec_base64(secret)
    if decoded is not None:
        variants["base64"] = decoded
    if re.fullmatch(r"(?:[0-9a-fA-F]{2}){8,}", secret):
        variants["hex"] = bytes.fromhex(secret)
    return variants


KEY_LABELS = {
    "text": "the secret used as text (its UTF-8 bytes, `whsec_` prefix included)",
    "base64": "the secret base64-decoded (after any `whsec_` prefix), as Standard Webhooks does",
    "hex": "the secret hex-decoded to bytes",
}


@dataclass(frozen=True)
class Parsed:
    """What a delivered request's headers say for one scheme."""

    scheme: str
    header: str  # the header that carries the signature, as named in the request
    signatures: tuple[bytes, ...]  # decoded signature values for this scheme's version (v1 / v0 / sha256)
    raw_count: int  # how many signature values the header held, any version
    timestamp: int | None = None
    msg_id: str | None = None
    problem: str | None = None  # why the header is unusable (malformed), if it is
    digest: str = "sha256"  # GitHub's legacy X-Hub-Signature is SHA-1


@dataclass(frozen=True)
class Scheme:
    name: str
    label: str
    ref: str
    key_kind: str  # which key_variants() entry the vendor uses
    content: Callable[[bytes, int | None, str | None], bytes | None]  # None when a needed field is missing
    digest: str = "sha256"
    headers: tuple[str, ...] = ()  # lower-case header names that identify the scheme

    def key(self, secret: str) -> bytes:
        """The HMAC key the vendor derives from the secret; InputError (never echoing it) when unusable."""
        secret = secret.strip()
        if not secret:
            raise InputError("--secret is empty")
        refuse_credentials(self.name, secret)
        if self.key_kind == "base64":
            if secret.startswith(("whsk_", "whpk_")):
                raise InputError("--secret is a Standard Webhooks asymmetric (ed25519, v1a) key; only the "
                                 "symmetric `whsec_` HMAC scheme (v1) is supported")
            key = _whsec_base64(secret)
            if key is None:
                raise InputError("--secret is not a Standard Webhooks secret (`whsec_` followed by base64)",
                                 hint="copy the endpoint's signing secret as shown by the sender")
            return key
        return _text(secret)

    def mac(self, key: bytes, body: bytes, timestamp: int | None, msg_id: str | None,
            digest: str | None = None) -> bytes | None:
        content = self.content(body, timestamp, msg_id)
        if content is None:
            return None
        return hmac.new(key, content, digest or self.digest).digest()


def refuse_credentials(scheme: str, secret: str) -> None:
    """A vendor's API key or bot token pasted instead of the webhook signing secret: a common mistake."""
    kind = None
    if re.match(r"(sk|rk|pk)_(live|test)_", secret):
        kind = "a Stripe API key, not a webhook endpoint signing secret (whsec_...)"
    elif re.match(r"xox[abposr]-", secret):
        kind = "a Slack OAuth token, not the app's signing secret (Basic Information > App Credentials)"
    elif re.match(r"(ghp|gho|ghs|ghu|github_pat)_", secret):
        kind = "a GitHub access token, not the webhook's secret"
    if kind:
        raise InputError(f"--secret looks like {kind}", hint=f"use the signing secret of the {scheme} webhook")


def _valid_field(value: str | None) -> bool:
    # Standard Webhooks: id and timestamp must not contain '.', or the signed content becomes ambiguous.
    return value is not None and "." not in value


SCHEMES: dict[str, Scheme] = {
    "standard": Scheme(
        "standard", "Standard Webhooks", "Standard Webhooks 1.0, Signature scheme (https://www.standardwebhooks.com/)",
        "base64",
        lambda b, t, i: f"{i}.{t}.".encode() + b if t is not None and _valid_field(i) else None,
        headers=("webhook-signature", "svix-signature")),
    "stripe": Scheme(
        "stripe", "Stripe", "Stripe docs, Check the webhook signatures (https://docs.stripe.com/webhooks#verify-manually)",
        "text", lambda b, t, i: f"{t}.".encode() + b if t is not None else None,
        headers=("stripe-signature",)),
    "github": Scheme(
        "github", "GitHub", "GitHub docs, Validating webhook deliveries "
        "(https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries)",
        "text", lambda b, t, i: b, headers=("x-hub-signature-256", "x-hub-signature")),
    "slack": Scheme(
        "slack", "Slack", "Slack docs, Verifying requests from Slack "
        "(https://api.slack.com/authentication/verifying-requests-from-slack)",
        "text", lambda b, t, i: f"v0:{t}:".encode() + b if t is not None else None,
        headers=("x-slack-signature",)),
    "hmac-sha256": Scheme(
        "hmac-sha256", "plain HMAC-SHA256", "RFC 2104 (HMAC) with SHA-256 over the raw body", "text",
        lambda b, t, i: b),
}
NAMES = tuple(SCHEMES)


# ---------------------------------------------------------------- signing (a sender's headers)

def sign(scheme: Scheme, key: bytes, body: bytes, timestamp: int, msg_id: str,
         plain_header: str = PLAIN_HEADER) -> list[tuple[str, str]]:
    """The signature headers the vendor sends with this body (timestamp/id headers come from event_headers)."""
    mac = scheme.mac(key, body, timestamp, msg_id)
    assert mac is not None  # every field a scheme needs is given here
    if scheme.name == "standard":
        return [("webhook-signature", "v1," + base64.b64encode(mac).decode())]
    if scheme.name == "stripe":
        return [("Stripe-Signature", f"t={timestamp},v1={mac.hex()}")]
    if scheme.name == "github":
        sha1 = scheme.mac(key, body, timestamp, msg_id, digest="sha1") or b""
        return [("X-Hub-Signature", "sha1=" + sha1.hex()), ("X-Hub-Signature-256", "sha256=" + mac.hex())]
    if scheme.name == "slack":
        return [("X-Slack-Signature", "v0=" + mac.hex())]
    return [(plain_header, mac.hex())]


def event_headers(scheme: Scheme, timestamp: int, msg_id: str, version: str) -> list[tuple[str, str]]:
    """The non-secret headers a vendor's delivery carries (ids, timestamps, event name, User-Agent)."""
    if scheme.name == "standard":
        return [("webhook-id", msg_id), ("webhook-timestamp", str(timestamp)),
                ("User-Agent", f"diagkit-webhook/{version}")]
    if scheme.name == "stripe":
        return [("User-Agent", f"Stripe/1.0 (+https://stripe.com/docs/webhooks) diagkit/{version}")]
    if scheme.name == "github":
        return [("X-GitHub-Event", "ping"), ("X-GitHub-Delivery", msg_id),
                ("User-Agent", f"GitHub-Hookshot/diagkit-{version}")]
    if scheme.name == "slack":
        return [("X-Slack-Request-Timestamp", str(timestamp)),
                ("User-Agent", f"Slackbot 1.0 (+https://api.slack.com/robots) diagkit/{version}")]
    return [("User-Agent", f"diagkit-webhook/{version}")]


# ---------------------------------------------------------------- reading a delivered request

def _decode_sig(value: str, prefer: str) -> bytes | None:
    """A hex or base64 signature value as bytes; None when it is neither."""
    value = value.strip()
    if prefer == "hex" and re.fullmatch(r"(?:[0-9a-fA-F]{2})+", value):
        return bytes.fromhex(value)
    if re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", value):
        try:
            return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4),
                                    validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _int(value: str | None) -> int | None:
    if value is None or not re.fullmatch(r"\s*\d{1,12}\s*", value):
        return None
    return int(value)


def parse(scheme: Scheme, headers: Mapping[str, str], names: Mapping[str, str],
          plain_header: str | None = None) -> Parsed | None:
    """The scheme's signature from `headers` (lower-case name -> value; `names` maps back to the request's
    spelling); None when the request carries no header of this scheme."""
    if scheme.name == "standard":
        prefix = "webhook" if "webhook-signature" in headers else "svix" if "svix-signature" in headers else None
        if prefix is None:
            return None
        header = f"{prefix}-signature"
        parts = headers[header].split()
        sigs = tuple(s for s in (_decode_sig(p.split(",", 1)[1], "base64") for p in parts
                                 if p.startswith("v1,")) if s is not None)
        ts, msg_id = _int(headers.get(f"{prefix}-timestamp")), headers.get(f"{prefix}-id")
        problem = (None if sigs and ts is not None and msg_id else
                   f"{names[header]} holds no v1 signature" if not sigs else
                   f"{prefix}-timestamp is missing or not a Unix time" if ts is None else f"{prefix}-id is missing")
        return Parsed("standard", names[header], sigs, len(parts), ts, msg_id and msg_id.strip(), problem)
    if scheme.name == "stripe":
        if "stripe-signature" not in headers:
            return None
        items = [p.strip().partition("=") for p in headers["stripe-signature"].split(",")]
        ts = _int(next((v for k, _, v in items if k == "t"), None))
        sigs = tuple(s for s in (_decode_sig(v, "hex") for k, _, v in items if k == "v1") if s is not None)
        problem = None if sigs and ts is not None else (
            "Stripe-Signature holds no v1 signature" if not sigs else "Stripe-Signature has no t= timestamp")
        return Parsed("stripe", names["stripe-signature"], sigs, sum(k.startswith("v") for k, _, _ in items), ts,
                      None, problem)
    if scheme.name == "slack":
        if "x-slack-signature" not in headers:
            return None
        value = headers["x-slack-signature"].strip()
        sig = _decode_sig(value[3:], "hex") if value.startswith("v0=") else None
        ts = _int(headers.get("x-slack-request-timestamp"))
        problem = None if sig and ts is not None else (
            "X-Slack-Signature is not v0=<hex>" if not sig else "X-Slack-Request-Timestamp is missing")
        return Parsed("slack", names["x-slack-signature"], (sig,) if sig else (), 1, ts, None, problem)
    if scheme.name == "github":
        for name, algo in (("x-hub-signature-256", "sha256"), ("x-hub-signature", "sha1")):
            if name in headers:
                value = headers[name].strip()
                sig = _decode_sig(value[len(algo) + 1:], "hex") if value.startswith(algo + "=") else None
                problem = None if sig else f"{names[name]} is not {algo}=<hex>"
                return Parsed("github", names[name], (sig,) if sig else (), 1, None, None, problem, algo)
        return None
    chosen = (plain_header or "").lower() or _plain_header(headers)
    if not chosen or chosen not in headers:
        return None
    value = headers[chosen].strip()
    value = value.split("=", 1)[1] if re.match(r"(?i)sha256=", value) else value
    sig = _decode_sig(value, "hex")
    return Parsed("hmac-sha256", names.get(chosen, chosen), (sig,) if sig else (), 1, None, None,
                  None if sig else f"{names.get(chosen, chosen)} holds neither hex nor base64")


def _plain_header(headers: Mapping[str, str]) -> str | None:
    """The header most likely to hold a bare HMAC-SHA256: a signature-like name, not a vendor's, not a
    timestamp or id beside it, preferring one whose value decodes to 32 bytes."""
    vendor = {n for s in SCHEMES.values() for n in s.headers}
    names = [n for n in headers if _PLAIN_NAMES.match(n) and n not in vendor and not _NOT_A_SIGNATURE.search(n)]
    for name in names:
        value = re.sub(r"(?i)^sha256=", "", headers[name].strip())
        sig = _decode_sig(value, "hex")
        if sig is not None and len(sig) == 32:
            return name
    return names[0] if names else None


def detect(headers: Mapping[str, str], names: Mapping[str, str], plain_header: str | None = None) -> list[Parsed]:
    """Every scheme whose signature header the request carries, most specific first."""
    found = []
    for scheme in SCHEMES.values():
        parsed = parse(scheme, headers, names, plain_header)
        if parsed is not None:
            found.append(parsed)
    return found


def matches(mac: bytes | None, signatures: tuple[bytes, ...]) -> bool:
    """Constant-time comparison against every signature given (rotation sends several)."""
    return mac is not None and any(hmac.compare_digest(mac, s) for s in signatures)
