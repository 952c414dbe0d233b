"""Unit tests for JWT decoding and claim checks (diagkit/formats/jwt.py) and the OAuth error table."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from diagkit.collectors.http import jwt_claims, oauth
from diagkit.formats import jwt, oauth_errors
from diagkit.probe import Report

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
T = int(NOW.timestamp())


def b64(data: object) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(claims: dict, header: dict | None = None, signature: bytes = b"not-a-real-signature") -> str:
    return ".".join([b64(header or {"alg": "RS256", "typ": "JWT", "kid": "k1"}), b64(claims), b64(signature)])


def ids(report: Report) -> list[str]:
    return [f.id for f in report.findings]


def check(claims: dict, header: dict | None = None, **kwargs) -> Report:
    report = Report()
    decoded = jwt.decode(make_jwt(claims, header))
    assert decoded is not None
    jwt_claims.check_claims(report, decoded, NOW, **kwargs)
    return report


def test_decode_reads_header_claims_and_signature_presence():
    token = make_jwt({"iss": "https://idp.test/", "exp": T + 60, "sub": "alice"})
    decoded = jwt.decode(token)
    assert decoded is not None and decoded.kind == "JWS"
    assert decoded.header["alg"] == "RS256"
    assert decoded.claims["sub"] == "alice"
    assert decoded.signature_present is True
    assert jwt.looks_like_jwt(token)
    unsigned = jwt.decode(make_jwt({"a": 1}, {"alg": "none"}).rsplit(".", 1)[0] + ".")
    assert unsigned is not None and unsigned.signature_present is False


def test_decode_reports_jwe_without_claims():
    token = ".".join([b64({"alg": "RSA-OAEP", "enc": "A256GCM"}), b64(b"key"), b64(b"iv"), b64(b"ct"), b64(b"tag")])
    decoded = jwt.decode(token)
    assert decoded is not None and decoded.encrypted and decoded.kind == "JWE"
    assert decoded.claims == {}
    report = Report()
    jwt_claims.check_claims(report, decoded, NOW)
    assert ids(report) == ["jwt.token.encrypted"]


@pytest.mark.parametrize("text", ["", "hello", "a.b.c", "eyJhbGciOiJSUzI1NiJ9", "abc.def", "eyJ!!.x.y",
                                  b64([1, 2]) + "." + b64({}) + ".", "Bearer " + make_jwt({"a": 1})])
def test_not_a_jwt(text):
    assert jwt.decode(text) is None
    assert not jwt.looks_like_jwt(text)


def test_non_json_payload_is_a_jws_without_claims():
    token = b64({"alg": "HS256"}) + "." + b64(b"plain bytes") + "." + b64(b"sig")
    decoded = jwt.decode(token)
    assert decoded is not None and decoded.claims == {}


def test_valid_token_adds_nothing():
    report = check({"iss": "https://idp.test/", "aud": ["api://orders", "x"], "exp": T + 3600, "nbf": T - 10,
                    "iat": T - 10, "scp": ["orders.read", "orders.write"]},
                   expect_issuer="https://idp.test/", expect_audience="api://orders", expect_scope="orders.read")
    assert ids(report) == []


def test_expired_and_leeway():
    assert ids(check({"exp": T - 3600})) == ["jwt.expired"]
    assert ids(check({"exp": T - 30})) == []  # within the 60 s leeway
    finding = check({"exp": T - 3600}).findings[0]
    assert finding.evidence["exp"] == "2026-03-01T11:00:00Z"
    assert finding.evidence["clock"] == "local"


def test_expired_by_the_server_clock_only():
    report = check({"exp": T + 120}, server_date=NOW + dt.timedelta(minutes=10))
    assert ids(report) == ["jwt.expired"]
    assert report.findings[0].evidence["clock"] == "server"


def test_not_yet_valid_by_nbf_or_iat():
    assert ids(check({"nbf": T + 600, "exp": T + 3600})) == ["jwt.not_yet_valid"]
    assert ids(check({"iat": T + 600, "exp": T + 3600})) == ["jwt.not_yet_valid"]
    assert ids(check({"nbf": T + 30})) == []


def test_issuer_mismatch_mentions_trailing_slash():
    report = check({"iss": "https://idp.test"}, expect_issuer="https://idp.test/")
    assert ids(report) == ["jwt.issuer.mismatch"]
    assert "trailing slash" in report.findings[0].detail
    assert report.findings[0].evidence == {"where": "bearer token", "expected": "https://idp.test/",
                                           "actual": "https://idp.test"}


def test_audience_mismatch_string_and_list():
    assert ids(check({"aud": "api://other"}, expect_audience="api://orders")) == ["jwt.audience.mismatch"]
    assert ids(check({"aud": ["a", "b"]}, expect_audience="c")) == ["jwt.audience.mismatch"]
    assert ids(check({}, expect_audience="c")) == ["jwt.audience.mismatch"]


@pytest.mark.parametrize("claims,missing", [
    ({"scope": "openid orders.read profile"}, ["orders.write"]),
    ({"scp": "orders.read"}, ["orders.write"]),
    ({}, ["orders.read", "orders.write"]),
])
def test_scope_missing(claims, missing):
    report = check(claims, expect_scope="orders.read orders.write")
    assert ids(report) == ["jwt.scope.missing"]
    assert report.findings[0].evidence["missing"] == missing


def test_alg_none():
    assert "jwt.alg.none" in ids(check({"exp": T + 60}, {"alg": "none"}))


@pytest.mark.parametrize("claims,is_id", [
    ({"aud": "client1", "azp": "client1", "nonce": "n"}, True),
    ({"aud": "client1", "at_hash": "h"}, True),
    ({"aud": "client1", "azp": "client1"}, True),
    ({"aud": "api", "azp": "client1", "scp": "read"}, False),
    ({"aud": "client1", "azp": "client1", "scope": "openid"}, False),
])
def test_id_token_used_as_access_token(claims, is_id):
    assert ("jwt.token.id_token" in ids(check({**claims, "exp": T + 60}))) is is_id


def test_safe_claims_redacts_personal_values():
    claims = {"iss": "i", "aud": "a", "exp": 1, "scp": "x", "sub": "123", "email": "a@b.c", "name": "Alice",
              "upn": "alice@corp", "oid": "0000", "tid": "t", "token_use": "access"}
    safe = jwt.safe_claims(claims)
    assert safe["iss"] == "i" and safe["tid"] == "t" and safe["token_use"] == "access"
    for key in ("sub", "email", "name", "upn", "oid"):
        assert safe[key] == "<redacted>"
    assert "a@b.c" not in json.dumps(safe)


def test_oauth_errors_describe_and_finding():
    cause, fix = oauth_errors.describe("invalid_grant")
    assert "authorization code" in cause and fix
    unknown_cause, _ = oauth_errors.describe("weird_thing")
    assert "weird_thing" in unknown_cause
    for code in ("invalid_request", "invalid_client", "unauthorized_client", "unsupported_grant_type",
                 "invalid_scope", "access_denied", "login_required", "consent_required",
                 "interaction_required", "invalid_request_uri", "authorization_pending"):
        assert oauth_errors.is_known(code), code
    report = Report()
    oauth.oauth_error_finding(report, "consent_required", "User bob@corp.example must consent", "callback",
                                     "https://idp.test/errors")
    finding = report.findings[0]
    assert finding.id == "oauth.error"
    assert finding.evidence["error"] == "consent_required"
    assert finding.evidence["error_description"] == "User <redacted-email> must consent"
    assert finding.refs == ["OpenID Connect Core 1.0 §3.1.2.6"]
