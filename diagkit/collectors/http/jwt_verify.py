"""Checking a bearer token's signature against its issuer's published keys (`probe http --expect-issuer`).

The issuer's discovery document (OIDC Discovery §4, or RFC 8414 metadata) names its JWKS (RFC 7517);
the token's `kid` must be listed there, and the signature (RFC 7515 §5.2) must verify with that key.
Keys are built from the JWK members and signatures checked with `cryptography`'s public API only (RFC
7518 §3: RS*, PS*, ES*, and EdDSA per RFC 8037); no cryptography is done by hand. The token never
leaves this module: findings carry its kid, alg and the JWKS' kids, never its bytes.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

if TYPE_CHECKING:
    from diagkit.context import Context
    from diagkit.formats.jwt import DecodedJWT
    from diagkit.probe import Report

_HASHES = {"256": "SHA256", "384": "SHA384", "512": "SHA512"}
_EC_CURVES = {"ES256": ("P-256", "SECP256R1", 32), "ES384": ("P-384", "SECP384R1", 48),
              "ES512": ("P-521", "SECP521R1", 66), "ES256K": ("secp256k1", "SECP256K1", 32)}
REFS = ["RFC 7515 §5.2", "RFC 7517 §4.5", "RFC 7518 §3", "OpenID Connect Discovery 1.0 §3"]


class KeyProblem(ValueError):
    """The JWK cannot be used for this token's alg (wrong kty/crv, missing members)."""


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise KeyProblem("a member is not a base64url string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        raise KeyProblem("a member is not valid base64url") from None


def _int(value: Any) -> int:
    return int.from_bytes(_b64(value), "big")


def public_key(jwk: dict[str, Any], alg: str) -> Any:
    """A cryptography public key from a JWK (RFC 7518 §6, RFC 8037 §2), or x5c[0]'s key."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    kty = jwk.get("kty")
    family = alg[:2]
    if kty == "RSA" and family in ("RS", "PS"):
        if "n" in jwk and "e" in jwk:
            return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
    elif kty == "EC" and family == "ES":
        crv, curve_name, _ = _EC_CURVES.get(alg, (None, None, 0))
        if jwk.get("crv") != crv:
            raise KeyProblem(f"the key's curve is {jwk.get('crv')!r}, {alg} needs {crv}")
        curve = getattr(ec, curve_name or "")()
        try:
            return ec.EllipticCurvePublicNumbers(_int(jwk.get("x")), _int(jwk.get("y")), curve).public_key()
        except ValueError:
            raise KeyProblem("the point is not on the curve") from None
    elif kty == "OKP" and alg in ("EdDSA", "Ed25519", "Ed448"):
        crv = jwk.get("crv")
        loaders: dict[str, type[ed25519.Ed25519PublicKey] | type[ed448.Ed448PublicKey]] = {
            "Ed25519": ed25519.Ed25519PublicKey, "Ed448": ed448.Ed448PublicKey}
        loader = loaders.get(str(crv))
        if loader is None or (alg in ("Ed25519", "Ed448") and alg != crv):
            raise KeyProblem(f"the key's curve {crv!r} cannot verify {alg}")
        try:
            return loader.from_public_bytes(_b64(jwk.get("x")))
        except ValueError:
            raise KeyProblem("x is not a valid public key") from None
    else:
        raise KeyProblem(f"a {kty} key cannot verify {alg}")
    chain = jwk.get("x5c")
    if isinstance(chain, list) and chain:
        try:
            return x509.load_der_x509_certificate(base64.b64decode(chain[0])).public_key()
        except (ValueError, binascii.Error):
            pass
    raise KeyProblem("the key lacks its public members")


def verify(signing_input: bytes, signature: bytes, key: Any, alg: str) -> bool:
    """True when `signature` is valid for `signing_input` under `key` and `alg` (RFC 7518 §3.3-3.5, RFC 8037 §3.1)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa, utils

    try:
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, signing_input)
            return True
        digest = getattr(hashes, _HASHES.get(alg[-3:], ""), None)
        if digest is None:
            raise KeyProblem(f"unsupported alg {alg}")
        if isinstance(key, rsa.RSAPublicKey):
            pad = (padding.PKCS1v15() if alg.startswith("RS") else
                   padding.PSS(mgf=padding.MGF1(digest()), salt_length=digest().digest_size))
            key.verify(signature, signing_input, pad, digest())
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = _EC_CURVES[alg][2]
            if len(signature) != 2 * size:  # JWS carries R || S, each of the curve's size (RFC 7518 §3.4)
                return False
            der = utils.encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                             int.from_bytes(signature[size:], "big"))
            key.verify(der, signing_input, ec.ECDSA(digest()))
            return True
    except InvalidSignature:
        return False
    raise KeyProblem(f"a {type(key).__name__} cannot verify {alg}")


def fetch_jwks(ctx: Context, issuer: str, proxy: str | None) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """(the issuer's JWKS keys or None, what was fetched). Discovery first, then its jwks_uri."""
    from diagkit.collectors.oidc.probe import discovery_candidates, get_json
    from diagkit.scrub import scrub_url

    record: dict[str, Any] = {"issuer": issuer}
    _, candidates = discovery_candidates(issuer)
    client_options: dict[str, Any] = {"proxy": proxy} if proxy else {}
    with ctx.http_client(follow_redirects=True, **client_options) as client:
        attempts, doc, found_at = [], None, None
        for _, url in candidates:
            doc, attempt = get_json(client, url)
            attempts.append(attempt)
            if doc is not None:
                found_at = url
                break
        if doc is None:
            record["error"] = "no discovery document: " + "; ".join(f"{a['url']}: {a.get('error')}" for a in attempts)
            # No HTTP answer at all (name does not resolve, connection refused): the issuer is not reachable
            # from here, which says nothing about the token; a timeout or a broken answer is different.
            record["unreachable"] = all("status" not in a and not a.get("timed_out") for a in attempts)
            return None, record
        record["discovery_url"] = scrub_url(found_at or "")
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            record["error"] = "the discovery document has no jwks_uri"
            return None, record
        jwks_uri = urljoin(found_at or issuer, jwks_uri)
        record["jwks_uri"] = scrub_url(jwks_uri)
        jwks, attempt = get_json(client, jwks_uri)
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        record["error"] = f"the JWKS could not be read: {attempt.get('error') or 'no keys array'}"
        return None, record
    return [k for k in keys if isinstance(k, dict)], record


def check_signature(report: Report, ctx: Context, token: str, decoded: DecodedJWT, issuer: str,
                    proxy: str | None = None) -> None:
    """jwt.kid.unknown, jwt.signature.invalid or jwt.signature.valid (or jwt.signature.unchecked)."""
    alg, kid = decoded.alg, decoded.header.get("kid")
    base = {"alg": alg, **({"kid": kid} if kid is not None else {})}
    if alg.upper().startswith("HS") or alg.lower() == "none":
        report.add("jwt.signature.unchecked", f"The token's signature cannot be checked against a JWKS ({alg})",
                   detail="HS* tokens are signed with a shared secret that no JWKS publishes; alg none is unsigned.",
                   evidence=base, severity="info" if alg.upper().startswith("HS") else None, refs=REFS)
        return
    keys, record = fetch_jwks(ctx, issuer, proxy)
    report.facts["issuer_keys"] = {**record, **({"kids": [k.get("kid") for k in keys]} if keys is not None else {})}
    if keys is None:
        if record.pop("unreachable", False):
            # No HTTP answer at all (the name does not resolve, nothing listens): the issuer is not reachable
            # from this machine, which says nothing about the token. Recorded in facts and on the claims
            # finding, not as a finding of its own, so an offline check of claims stays a clean result.
            report.facts["issuer_keys"]["checked"] = False
            for finding in report.findings:
                if finding.id == "jwt.claims.ok":
                    finding.detail += f" The signature was not checked: {issuer} cannot be reached from here."
            return
        report.add("jwt.signature.unchecked", f"The token's signature could not be checked: {record['error']}",
                   detail=f"Fetching the keys of {issuer} failed, so the kid and signature were not verified.",
                   evidence={**base, **record}, refs=REFS)
        return
    kids = [k.get("kid") for k in keys]
    evidence = {**base, "jwks_uri": record["jwks_uri"], "jwks_kids": kids}
    if kid is not None and kid not in kids:
        report.add("jwt.kid.unknown", f"The token was signed with key '{kid}', which {issuer}'s JWKS does not list",
                   detail=(f"The JWKS at {record['jwks_uri']} lists {', '.join(map(str, kids)) or 'no keys'}. The token was "
                           "signed with a key the issuer does not (or no longer, or not yet) publish: a key rotated "
                           "before publication, a token from another issuer or environment, or a stale JWKS cache "
                           "on the issuer's side. Validators reject it."),
                   evidence=evidence, refs=REFS)
        return
    candidates = [k for k in keys if k.get("kid") == kid] if kid is not None else \
        [k for k in keys if k.get("use") in (None, "sig") and k.get("alg") in (None, alg)]
    head, _, rest = token.partition(".")
    payload, _, signature_text = rest.partition(".")
    signing_input = f"{head}.{payload}".encode("ascii")
    try:
        signature = _b64(signature_text)
    except KeyProblem:
        signature = b""
    problems = []
    for jwk in candidates:
        if jwk.get("alg") not in (None, alg):
            problems.append(f"key '{jwk.get('kid')}' is for {jwk.get('alg')}, the token says {alg}")
            continue
        try:
            ok = verify(signing_input, signature, public_key(jwk, alg), alg)
        except KeyProblem as exc:
            problems.append(f"key '{jwk.get('kid')}': {exc}")
            continue
        if ok:
            report.add("jwt.signature.valid", f"The token's signature verifies with {issuer}'s key '{jwk.get('kid')}'",
                       detail=f"{alg} signature checked against the JWKS at {record['jwks_uri']}.",
                       evidence={**evidence, "verified_with": jwk.get("kid")}, refs=REFS)
            return
        problems.append(f"key '{jwk.get('kid')}': the {alg} signature does not verify")
    why = "; ".join(problems) or (f"no key in the JWKS can verify {alg}" if kid is None else "no usable key")
    report.add("jwt.signature.invalid", f"The token's signature does not verify with {issuer}'s published keys",
               detail=(f"{why}. The token was altered, or signed by another key holder than the issuer "
                       f"(another tenant, environment or a forged token)"
                       + (" and it names no kid, so every signing key was tried" if kid is None else "") + "."),
               evidence={**evidence, "problems": problems}, refs=REFS)
