"""Decoding (never verifying) JWTs and reading their claims; shared by the HTTP and HAR probes and the redactor.

Nothing here verifies a signature: diagnosis only needs to read what the token claims. Token values
and personal claims never leave this module except through `safe_claims`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

LEEWAY_S = 60  # common validator default for clock differences (e.g. Microsoft.IdentityModel uses 5 min)

_B64URL = r"[A-Za-z0-9_-]"
# A JOSE header is a JSON object, so its base64url starts with "eyJ" ('{"') or "ewo"/"ew0" (pretty-printed).
_COMPACT = re.compile(rf"^(?:eyJ|ew[0-9A-Za-z])[A-Za-z0-9_-]*(?:\.{_B64URL}*){{2}}(?:(?:\.{_B64URL}*){{2}})?$")

SAFE_CLAIMS = frozenset({
    "iss", "aud", "exp", "nbf", "iat", "scope", "scp", "azp", "client_id", "typ", "alg", "kid", "tid", "ver",
    "token_use",
})
REDACTED = "<redacted>"


@dataclass
class DecodedJWT:
    header: dict[str, Any]
    claims: dict[str, Any] = field(default_factory=dict)
    signature_present: bool = False
    kind: str = "JWS"  # "JWS" (three parts, readable claims) or "JWE" (five parts, encrypted claims)

    @property
    def encrypted(self) -> bool:
        return self.kind == "JWE"

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))


def _b64url_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    return json.loads(raw.decode("utf-8"))


def looks_like_jwt(text: str) -> bool:
    """Cheap shape test plus a decodable JOSE header; true for JWS and JWE compact forms."""
    if not isinstance(text, str) or len(text) < 10:
        return False
    return decode(text) is not None


def decode(token: str) -> DecodedJWT | None:
    """Header and claims of a compact JWS/JWT, or the header of a JWE; None for anything else."""
    if not isinstance(token, str):
        return None
    token = token.strip()
    if not _COMPACT.match(token):
        return None
    parts = token.split(".")
    try:
        header = _b64url_json(parts[0])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("alg", header.get("enc")), str):
        return None
    if len(parts) == 5:
        return DecodedJWT(header=header, claims={}, signature_present=False, kind="JWE")
    try:
        claims = _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        claims = None
    if not isinstance(claims, dict):
        # A JWS whose payload is not a JSON object is still a JWS, just not a JWT with claims.
        claims = {}
    return DecodedJWT(header=header, claims=claims, signature_present=bool(parts[2]), kind="JWS")


def safe_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """Claims fit to show: the diagnostic ones kept, every other value (sub, email, name...) replaced."""
    return {key: (value if key in SAFE_CLAIMS else REDACTED) for key, value in claims.items()}


def claim_time(value: Any) -> _dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return _dt.datetime.fromtimestamp(value, _dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso_time(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [str(a) for a in aud]
    return []


def scopes(claims: dict[str, Any]) -> list[str]:
    """Granted scopes from `scope` (space-separated string, RFC 8693/9068) or `scp` (string or list)."""
    found: list[str] = []
    for key in ("scope", "scp"):
        value = claims.get(key)
        if isinstance(value, str):
            found.extend(value.split())
        elif isinstance(value, list):
            found.extend(str(v) for v in value)
    return list(dict.fromkeys(found))


def is_id_token(decoded: DecodedJWT) -> bool:
    """OIDC ID token traits (nonce, at_hash/c_hash, aud == azp) without any scope, and not typed at+jwt."""
    claims = decoded.claims
    if str(decoded.header.get("typ", "")).lower() in ("at+jwt", "application/at+jwt"):
        return False
    if "scope" in claims or "scp" in claims:
        return False
    aud = audiences(claims)
    azp = claims.get("azp")
    traits = ("nonce" in claims, "at_hash" in claims, "c_hash" in claims,
              isinstance(azp, str) and aud == [azp])
    return any(traits)


def describe_times(claims: dict[str, Any]) -> dict[str, str]:
    """exp/nbf/iat as RFC 3339 strings, for facts."""
    out = {}
    for claim, name in (("exp", "expires_at"), ("nbf", "not_before"), ("iat", "issued_at")):
        moment = claim_time(claims.get(claim))
        if moment is not None:
            out[name] = iso_time(moment)
    return out
