"""OIDC probe: fetch discovery (or RFC 8414 metadata), check required fields, issuer, HTTPS, algorithms and JWKS."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from diagkit.context import Context
from diagkit.findings import Severity
from diagkit.probe import Option, Probe, Report

OIDC_WELL_KNOWN = "/.well-known/openid-configuration"
OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
MAX_DOC_BYTES = 2 * 1024 * 1024
OIDC_REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
                 "subject_types_supported", "id_token_signing_alg_values_supported")
RFC8414_REQUIRED = ("issuer", "response_types_supported")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def discovery_candidates(target: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(expected issuer, [(label, url)...]) for an issuer or a full discovery URL."""
    parts = urlsplit(target)
    path = parts.path
    for label, suffix in (("openid-configuration", OIDC_WELL_KNOWN), ("oauth-authorization-server", OAUTH_WELL_KNOWN)):
        if path.endswith(suffix):  # OIDC Discovery §4: issuer + suffix
            issuer = urlunsplit((parts.scheme, parts.netloc, path[: -len(suffix)], "", ""))
            return issuer, [(label, target)]
        if path.startswith(suffix + "/") or path == suffix:  # RFC 8414 §3: suffix inserted before the path
            issuer = urlunsplit((parts.scheme, parts.netloc, path[len(suffix):], "", ""))
            return issuer, [(label, target)]
    base = path.rstrip("/")
    oidc = urlunsplit((parts.scheme, parts.netloc, base + OIDC_WELL_KNOWN, "", ""))
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, OAUTH_WELL_KNOWN + base, "", ""))
    candidates = [("openid-configuration", oidc), ("oauth-authorization-server", rfc8414)]
    if base:  # some servers publish RFC 8414 metadata appended like OIDC does
        candidates.append(("oauth-authorization-server", urlunsplit((parts.scheme, parts.netloc,
                                                                      base + OAUTH_WELL_KNOWN, "", ""))))
    return target, candidates


def get_json(client: Any, url: str) -> tuple[Any, dict[str, Any]]:
    """(document or None, attempt record). The record never holds the body."""
    import httpx

    from diagkit.scrub import scrub, scrub_url

    record: dict[str, Any] = {"url": scrub_url(url)}  # user:password@ or a signed query stay out of facts
    try:
        with client.stream("GET", url, headers={"Accept": "application/json"}) as resp:
            record["status"] = resp.status_code
            if str(resp.url) != url:
                record["final_url"] = scrub_url(str(resp.url))
            if resp.status_code != 200:
                record["error"] = f"HTTP {resp.status_code}"
                return None, record
            body = b""
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_DOC_BYTES:
                    record["error"] = f"larger than {MAX_DOC_BYTES} bytes"
                    return None, record
    # InvalidURL: a jwks_uri or redirect httpx cannot use; UnicodeError: a host label idna refuses.
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        text = scrub(str(exc))
        record["error"] = f"{type(exc).__name__}: {text}"
        if isinstance(exc, httpx.TimeoutException):
            record["timed_out"] = True
        if "CERTIFICATE_VERIFY_FAILED" in text:
            record["error"] += " (private CA? pass --ca-file)"
        return None, record
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        record["error"] = "not JSON"
        return None, record
    if not isinstance(doc, dict):
        record["error"] = "JSON but not an object"
        return None, record
    return doc, record


def _b64url_int_bits(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big").bit_length() if raw else None


def _check_jwks(ctx: Context, report: Report, client: Any, jwks_uri: str) -> int:
    from diagkit.formats import certs as certlib

    doc, record = get_json(client, jwks_uri)
    report.facts["jwks_fetch"] = record
    if doc is None or not isinstance(doc.get("keys"), list):
        why = record.get("error") or "no 'keys' array"
        report.add("oidc.jwks.unreachable", "The JWKS could not be fetched", detail=f"GET {jwks_uri}: {why}.",
                   evidence={"jwks_uri": jwks_uri, **{k: v for k, v in record.items() if k != "url"}},
                   severity=Severity.ERROR if record.get("timed_out") else None)
        return 0
    keys = doc["keys"]
    rows: list[dict[str, Any]] = []
    kids: dict[str, int] = {}
    now = ctx.now()
    for index, key in enumerate(keys):
        if not isinstance(key, dict):
            report.add("oidc.jwks.invalid_key", f"JWKS key #{index} is not a JSON object", evidence={"index": index})
            continue
        kid = key.get("kid")
        kty = key.get("kty")
        label = f"key #{index}" + (f" (kid {kid})" if kid else "")
        row: dict[str, Any] = {"kid": kid, "kty": kty, "alg": key.get("alg"), "use": key.get("use")}
        if kid is not None:
            kids[str(kid)] = kids.get(str(kid), 0) + 1
        private = [m for m in PRIVATE_MEMBERS if m in key]
        if kty == "oct" or private:
            # Names of the members only: the values are the secret.
            report.add("oidc.jwks.private_key", f"JWKS {label} publishes private key material",
                       detail=("a symmetric (kty oct) key" if kty == "oct" else "private members "
                               + ", ".join(private)) + " in a public JWKS: anyone can sign tokens with it.",
                       evidence={"kid": kid, "kty": kty, "private_members": private})
            row["private"] = True
        if kty == "RSA":
            bits = _b64url_int_bits(key.get("n"))
            if bits is None or not isinstance(key.get("e"), str):
                report.add("oidc.jwks.invalid_key", f"JWKS {label}: RSA key without valid n/e",
                           evidence={"kid": kid})
            else:
                row["bits"] = bits
                if bits < certlib.MIN_RSA_BITS:
                    report.add("oidc.jwks.weak_key", f"JWKS {label}: RSA key of {bits} bits",
                               evidence={"kid": kid, "bits": bits})
        elif kty == "EC":
            if not all(isinstance(key.get(m), str) for m in ("crv", "x", "y")):
                report.add("oidc.jwks.invalid_key", f"JWKS {label}: EC key without crv/x/y", evidence={"kid": kid})
            row["crv"] = key.get("crv")
        elif kty == "OKP":
            row["crv"] = key.get("crv")
        elif kty != "oct":
            report.add("oidc.jwks.invalid_key", f"JWKS {label}: missing or unknown kty {kty!r}",
                       evidence={"kid": kid, "kty": kty})
        x5c = key.get("x5c")
        if isinstance(x5c, list) and x5c:
            try:
                cert = certlib.load_certificate(str(x5c[0]))
            except certlib.CertificateError as exc:
                report.add("oidc.jwks.invalid_key", f"JWKS {label}: x5c[0] is {exc}", evidence={"kid": kid})
            else:
                info = certlib.describe(cert)
                row["x5c"] = {k: info[k] for k in ("subject", "not_after", "fingerprint_sha256")}
                for problem in certlib.assess(cert, now):
                    if problem.kind in ("expired", "not_yet_valid", "expires_soon"):
                        report.add("oidc.jwks.certificate_expired", f"JWKS {label}: x5c certificate {problem.message}",
                                   evidence={"kid": kid, "not_after": info["not_after"]},
                                   severity=Severity.INFO if problem.kind == "expires_soon" else None)
        rows.append(row)
    report.facts["jwks"] = rows
    dupes = sorted(k for k, n in kids.items() if n > 1)
    if dupes:
        report.add("oidc.jwks.duplicate_kid", f"JWKS key ids are not unique: {', '.join(dupes)}",
                   evidence={"kids": dupes})
    if not keys:
        report.add("oidc.jwks.unreachable", "The JWKS has no keys", detail=f"{jwks_uri} returned an empty keys array.",
                   evidence={"jwks_uri": jwks_uri})
    return len(keys)


def _issuer_note(expected: str, found: str) -> str:
    if expected.rstrip("/") == found.rstrip("/"):
        return " They differ only by a trailing slash, which still counts: issuers are compared exactly."
    if expected.lower() == found.lower():
        return " They differ only in letter case."
    if "://" not in found:
        return " The issuer has no scheme; it must be an https URL."
    return ""


def run(ctx: Context, report: Report, target: str, ca_file: str | None = None) -> None:
    del ca_file  # already in ctx (the CLI passes --ca-file to the Context)
    from diagkit.errors import InputError
    from diagkit.scrub import scrub_url

    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"'{scrub_url(target)}' is not an issuer URL (expected https://host[/path])")
    expected_issuer, candidates = discovery_candidates(target)
    attempts = []
    doc: dict[str, Any] | None = None
    via = url = ""  # both set, with doc, by the discovery attempt that succeeded
    with ctx.http_client(follow_redirects=True) as client:
        for label, candidate in candidates:
            doc, record = get_json(client, candidate)
            attempts.append(record)
            if doc is not None:
                via, url = label, candidate
                break
        report.facts["discovery_attempts"] = attempts
        if doc is None:
            last = "; ".join(f"{a['url']}: {a.get('error')}" for a in attempts)
            # Every attempt cut short by the timeout: the check could not run (an `error` finding).
            timed_out = all(a.get("timed_out") for a in attempts)
            report.add("oidc.discovery.unreachable", "No discovery document could be fetched", detail=last + ".",
                       evidence={"attempts": attempts}, severity=Severity.ERROR if timed_out else None)
            return
        report.facts.update({"discovery_url": scrub_url(url), "discovery_via": via})
        report.facts["issuer"] = doc.get("issuer")
        report.facts["endpoints"] = {k: v for k, v in doc.items()
                                     if isinstance(v, str) and (k.endswith("_endpoint") or k == "jwks_uri")}
        report.facts["id_token_signing_alg_values_supported"] = doc.get("id_token_signing_alg_values_supported")
        _check_document(report, doc, via, expected_issuer)
        keys = 0
        jwks_uri = doc.get("jwks_uri")
        if isinstance(jwks_uri, str) and jwks_uri:
            resolved = urljoin(url, jwks_uri)
            if resolved != jwks_uri:
                report.facts["jwks_uri_resolved"] = resolved
            keys = _check_jwks(ctx, report, client, resolved)
    if not report.problems():
        report.add("oidc.discovery.ok", f"Discovery via {via} and JWKS ({keys} key(s)) are valid",
                   detail=f"Fetched {scrub_url(url)}; issuer matches exactly; required fields present; endpoints HTTPS; "
                          f"JWKS keys public and well formed.")


def _check_document(report: Report, doc: dict[str, Any], via: str, expected_issuer: str | None) -> None:
    required = list(OIDC_REQUIRED if via == "openid-configuration" else RFC8414_REQUIRED)
    response_types = doc.get("response_types_supported")
    implicit_only = isinstance(response_types, list) and response_types and all(
        "code" not in str(rt).split() for rt in response_types)
    if implicit_only and "token_endpoint" in required:
        required.remove("token_endpoint")
    missing = [f for f in required if doc.get(f) in (None, "", [])]
    wrong_type: list[str] = [f for f in ("response_types_supported", "subject_types_supported",
                              "id_token_signing_alg_values_supported") if f in doc and not isinstance(doc[f], list)]
    if missing or wrong_type:
        spec = "OpenID Connect Discovery 1.0 §3" if via == "openid-configuration" else "RFC 8414 §2"
        detail = (f"Missing: {', '.join(missing)}. " if missing else "") + (
            f"Not a JSON array: {', '.join(wrong_type)}. " if wrong_type else "") + f"Required by {spec}."
        report.add("oidc.discovery.missing_field", f"Discovery lacks required field(s): {', '.join(missing + wrong_type)}",
                   detail=detail, evidence={"missing": missing, "wrong_type": wrong_type})
    issuer = doc.get("issuer")
    if isinstance(issuer, str) and expected_issuer is not None and issuer != expected_issuer:
        report.add("oidc.issuer.mismatch", "The discovery issuer does not match the URL it was fetched from",
                   detail=f"Expected '{expected_issuer}', discovery says '{issuer}'." + _issuer_note(expected_issuer, issuer),
                   evidence={"expected": expected_issuer, "issuer": issuer})
    insecure = sorted(k for k, v in _urls(doc) if v.lower().startswith("http://"))
    if insecure:
        report.add("oidc.endpoint.insecure", f"{len(insecure)} endpoint(s) use plain HTTP",
                   detail="; ".join(f"{k}: {v}" for k, v in _urls(doc) if k in insecure),
                   evidence={"fields": insecure})
    algs = doc.get("id_token_signing_alg_values_supported")
    if isinstance(algs, list) and via == "openid-configuration":
        if "RS256" not in algs:
            report.add("oidc.alg.rs256_missing", "RS256 is not offered for ID tokens",
                       detail=f"id_token_signing_alg_values_supported = {algs}; OIDC Core §15.1 requires RS256.",
                       evidence={"algorithms": algs})
        if "none" in algs:
            report.add("oidc.alg.none_offered", "The provider offers unsigned ID tokens (alg none)",
                       evidence={"algorithms": algs})


def _urls(doc: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for key, value in doc.items():
        if isinstance(value, str) and (key == "issuer" or key.endswith(("_endpoint", "_uri"))) and "://" in value:
            found.append((key, value))
        elif key == "mtls_endpoint_aliases" and isinstance(value, dict):
            found.extend((f"mtls_endpoint_aliases.{k}", v) for k, v in value.items() if isinstance(v, str))
    return found


probe = Probe(
    name="oidc",
    summary="Check an OpenID Connect issuer: discovery, issuer match, HTTPS endpoints and the JWKS.",
    target="ISSUER_OR_DISCOVERY_URL",
    run=run,
    options=(Option("ca_file", "Extra trusted CA certificates (PEM).", metavar="PEM"),),
    default_timeout=10.0,
    max_calls=4,
    example="diagkit probe oidc https://login.example.com/tenant/v2.0",
    description="Fetch OpenID Connect discovery from an issuer (issuer + /.well-known/openid-configuration, "
                "falling back to RFC 8414 /.well-known/oauth-authorization-server) or a full discovery URL; check "
                "the required fields, the issuer (exact, trailing slash included), HTTPS endpoints, RS256, and the "
                "JWKS (public keys only, unique kid, RSA >= 2048, x5c expiry).",
)
