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

from tests.conftest import require_corpus

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
    assert payload["sub"].startswith("<USER:") and payload["email"].startswith("<EMAIL:")
    assert json.loads(base64.urlsafe_b64decode(header_b64 + "==="))["kid"] == "key-1"
    before_auth = next(h["value"] for h in before["log"]["entries"][0]["request"]["headers"]
                       if h["name"] == "authorization")
    assert header_b64 == before_auth.split(" ")[1].split(".")[0]  # nothing in the header to hide: kept as written
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
    assert {"cookie", "jwt_signature", "authorization", "email", "oauth_code_or_state"} <= set(doc["by_rule"])
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


def test_an_archive_or_other_binary_input_is_refused_never_copied(invoke: Any, tmp_path: Path) -> None:
    """Read as Latin-1 text, a zipped HAR would pass through unread with the secrets inside it."""
    import zipfile

    archive = tmp_path / "session.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("session.har", json.dumps({"log": {"entries": [], "comment": f"password={EMAIL}"}}))
    result = invoke("redact", archive, "-o", tmp_path / "out.zip")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"diagkit: error[DK102]: '{archive}' is not text but a ZIP archive: diagkit "
                                     "redacts text files (HAR, JSON, YAML, XML, logs); nothing was written (hint: "
                                     "extract or decompress it and redact the files inside)")
    assert not (tmp_path / "out.zip").exists()
    blob = tmp_path / "dump.bin"
    blob.write_bytes(b"head\x00\x01" + EMAIL.encode())
    result = invoke("redact", blob, "-o", tmp_path / "out.bin")
    assert result.exit_code == 1 and "is not text but binary data" in result.stderr


def test_bodies_kept_in_files_beside_a_har_are_named_in_the_note(invoke: Any, tmp_path: Path) -> None:
    """Playwright's recordHar with content 'attach' keeps bodies in files next to the HAR: diagkit cannot read
    them from the HAR, so it says so rather than 'nothing needed redacting' alone."""
    har = {"log": {"version": "1.2", "creator": {"name": "Playwright", "version": "1.40"}, "entries": [{
        "startedDateTime": "2030-01-01T00:00:00.000Z", "time": 1,
        "request": {"method": "POST", "url": "https://app.example.test/login", "httpVersion": "HTTP/1.1",
                    "headers": [], "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 40,
                    "postData": {"mimeType": "application/x-www-form-urlencoded", "_file": "a1b2.dat"}},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                     "content": {"size": 10, "mimeType": "application/json", "_file": "c3d4.json"},
                     "redirectURL": "", "headersSize": -1, "bodySize": 10},
        "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}}]}}
    src, report = tmp_path / "pw.har", tmp_path / "report.json"
    src.write_text(json.dumps(har))
    result = invoke("redact", src, "-o", tmp_path / "out.har", "--report", report, "--no-ner")
    assert result.exit_code == 0
    note = ("bodies kept in files beside the HAR (Playwright's _file) were not read: redact each of those files "
            "too, or record the HAR with content embedded")
    assert f"nothing needed redacting; {note}" in result.stderr
    assert json.loads(report.read_text())["notes"][0] == note


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
    for big in (tmp_path / "big.json", tmp_path / "big.har"):  # an integer longer than Python reads
        big.write_text('{"log": {"entries": [], "n": ' + "7" * 5000 + "}}")
        result = invoke("redact", big)
        assert result.exit_code == 1 and "number too long" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


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


def test_xml_keeps_its_namespace_declarations_comments_and_attribute_order(invoke: Any, tmp_path: Path) -> None:
    """A prefix used only inside an attribute's value (xsi:type="xs:string") keeps its declaration where it was."""
    from lxml import etree

    src = tmp_path / "assertion.xml"
    src.write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                   '<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" '
                   'xmlns:xs="http://www.w3.org/2001/XMLSchema" Version="2.0" ID="id1">\n'
                   f"  <!-- issued for {EMAIL} -->\n"
                   f'  <saml2:Subject><saml2:NameID>{EMAIL}</saml2:NameID></saml2:Subject>\n'
                   '  <saml2:AttributeStatement><saml2:Attribute Name="department"><saml2:AttributeValue '
                   'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">Support'
                   '</saml2:AttributeValue></saml2:Attribute></saml2:AttributeStatement>\n</saml2:Assertion>\n')
    out = tmp_path / "out.xml"
    assert invoke("redact", src, "-o", out).exit_code == 0
    text = out.read_text()
    assert EMAIL not in text
    assert '<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ' \
           'xmlns:xs="http://www.w3.org/2001/XMLSchema" Version="2.0" ID="id1">' in text
    assert "<!-- issued for <EMAIL:" in text
    value = etree.fromstring(text.encode()).find(".//{urn:oasis:names:tc:SAML:2.0:assertion}AttributeValue")
    assert value.nsmap["xs"] == "http://www.w3.org/2001/XMLSchema" and value.text == "Support"


def test_a_password_in_a_url_keeps_its_pseudonym_and_hides_its_user(invoke: Any, tmp_path: Path) -> None:
    """The contract's one value, one pseudonym: a password in a connection URL gets the pseudonym it has
    elsewhere, and the URL's user beside it is hidden too (a password equal to its user shows no more than that)."""
    src = tmp_path / "app.env"
    src.write_text("DB_PASS=hunt3rX9pw\nDATABASE_URL=postgresql://app_rw:hunt3rX9pw@db.example.com:5432/app\n")
    out = tmp_path / "out.env"
    assert invoke("redact", src, "-o", out, "--no-ner").exit_code == 0
    first, second = out.read_text().splitlines()
    hex_ = re.fullmatch(r"DB_PASS=<PASSWORD:([0-9a-f]+)>", first).group(1)
    assert re.fullmatch(rf"DATABASE_URL=postgresql://<USER:[0-9a-f]+>:<SECRET:{hex_}>@db\.example\.com:5432/app",
                        second), second


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
    assert d["total"] == 4 and d["by_rule"]["email"] == 4
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


def test_har_probe_finds_the_same_problems_after_redaction(invoke: Any, har_file: Path, tmp_path: Path) -> None:
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


def test_corpus_invalid_hars_exit_1(invoke: Any) -> None:
    broken = require_corpus("har/mitmproxy-brokenfile.har")  # fails, not skips, when ../shared is there
    result = invoke("redact", broken, "-o", "-")
    assert result.exit_code == 1 and broken.name in result.stderr and "Traceback" not in result.stderr


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
    assert re.fullmatch(r"nic <MAC:[0-9a-f]+> up at 22:13:45", lines[1])  # a MAC address is personal
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
    assert re.fullmatch(r"<SAML:[0-9a-f]+>", facts["saml_response"])  # an undecodable blob fails closed
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


def test_polly_hex_chunk_bodies_are_read_as_the_bytes_they_spell(invoke: Any, tmp_path: Path) -> None:
    """Polly.JS records a body it kept as bytes as a JSON array of hex strings (the stream's chunks, gzip'd as the
    server sent it; a value may be cut between two chunks): redacted inside and written back as gzip in hex;
    an image it marked `_isBinary` becomes a placeholder; a JSON body that is a list of hashes stays as it is."""
    import gzip

    packed = gzip.compress(json.dumps({"email": EMAIL, "name": "Ana Lima", "id": 7}).encode(), mtime=0).hex()
    chunks = [packed[:40], packed[40:]]
    png = (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).hex()
    hashes = json.dumps(["9f86d081884c7d659a2feaa0c55ad015", "a3bf4f1b2b0b822cd15d6c15b0f00a08"])
    entries = [{"request": {"method": "GET", "url": f"https://api.example.test/{i}", "headers": []},
                "response": {"status": 200, "headers": [], "content": content}} for i, content in enumerate((
        {"mimeType": "application/json", "size": 60, "text": json.dumps(chunks)},
        {"mimeType": "image/png", "size": 1032, "_isBinary": True, "text": json.dumps([png])},
        {"mimeType": "application/json", "size": 72, "text": hashes}))]
    src, out = tmp_path / "polly.har", tmp_path / "out.har"
    src.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "Polly.JS"}, "entries": entries}}))
    result = invoke("redact", src, "-o", out, "--no-ner")
    assert result.exit_code == 0, result.stderr
    body, image, listed = (e["response"]["content"]["text"] for e in json.loads(out.read_text())["log"]["entries"])
    inner = json.loads(gzip.decompress(bytes.fromhex("".join(json.loads(body)))))
    assert inner["email"].startswith("<EMAIL:") and inner["name"].startswith("<PERSON:") and inner["id"] == 7
    assert re.fullmatch(r"<BINARY:1032 bytes sha256:[0-9a-f]{64}>", image)
    assert listed == hashes


def test_gzip_bombs_and_damaged_bodies_become_placeholders(invoke: Any, tmp_path: Path) -> None:
    """A body that inflates past the bound, or a damaged stream, is not read: it becomes a placeholder with
    its size and digest, and the rest of the HAR is written (contract: never refuse the whole file)."""
    src, out = tmp_path / "bomb.har", tmp_path / "out.har"
    for body, corrupt in ((b'{"a": "' + b"0" * (8 * 1024 * 1024) + b'"}', False),
                          (json.dumps({"user": EMAIL, "pad": "x" * 4000}).encode(), True)):
        src.write_text(json.dumps(_gzip_har(body, corrupt=corrupt)))
        result = invoke("redact", src, "-o", out, "--no-ner")
        assert result.exit_code == 0, result.stderr
        content = json.loads(out.read_text())["log"]["entries"][0]["response"]["content"]
        assert re.fullmatch(r"<BINARY:\d+ bytes sha256:[0-9a-f]{64}>", content["text"]) and "encoding" not in content
        assert EMAIL not in out.read_text() and EMAIL not in result.stderr


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

    bomb = base64.b64encode(_deflate_bomb(1024)).decode()  # ~1 MB that inflates to 1 GiB
    assert len(bomb) > 1_000_000
    src = tmp_path / "bomb.har"
    src.write_text(json.dumps(_bomb_har(bomb)))
    out = tmp_path / "bomb.redacted.har"
    # a child that runs diagkit and reports the grandchild's peak RSS: nothing else of the test run counts
    wrapper = ("import resource, subprocess, sys\n"
               "rc = subprocess.run(sys.argv[1:], capture_output=True).returncode\n"
               "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "diagkit", "redact", str(src),
                           "-o", str(out), "--no-ner"], capture_output=True, text=True, timeout=120)
    rc, peak_kib = map(int, proc.stdout.split())
    assert rc == 0, proc.stderr
    assert peak_kib * (1024 if sys.platform != "darwin" else 1) < 400 * 1024 * 1024, f"peak RSS {peak_kib} KiB"
    # the message could not be looked into, so it went as a whole: a pseudonym wherever it was
    text = out.read_text()
    assert bomb not in text and quote(bomb, safe="") not in text and bomb[:200] not in text
    doc = json.loads(text)
    entry = doc["log"]["entries"][0]
    assert re.search(r"SAMLRequest=%3CSAML%3A[0-9a-f]{10}%3E&RelayState=%3CCSRF", entry["response"]["redirectURL"])
    location = [h["value"] for h in entry["response"]["headers"] if h["name"] == "Location"]
    assert location[-1] == entry["response"]["redirectURL"]
    assert_no_planted(text)


# Secrets inside free text, anywhere in a line: (text, the values that must go, what must stay)
FREE_TEXT = [
    ("401 cookie: sid=SECRETsid0001", ["SECRETsid0001"], ["401 cookie: sid=<COOKIE:"]),
    ("got 401 with Cookie: sid=SECRETsid0002; theme=SECRETtheme03, then retried",
     ["SECRETsid0002", "SECRETtheme03"], ["; theme=<COOKIE:", ", then retried"]),
    ("server sent set-cookie: a=SECRETsetck04; Path=/; HttpOnly back", ["SECRETsetck04"],
     ["a=<COOKIE:", "Path=/; HttpOnly back"]),
    ("then Authorization: Bearer abc.SECRETbear05 was rejected", ["abc.SECRETbear05"],
     ["Authorization: Bearer <SECRET:", "was rejected"]),
    ("curl -H 'Authorization: Basic dXNlcjpTRUNSRVQ=' https://api.example.com/v1", ["dXNlcjpTRUNSRVQ="],
     ["Authorization: Basic <SECRET:", "https://api.example.com/v1"]),
    ('sent Proxy-Authorization: Digest username="bob", response="SECRETdigest06" ok', ["SECRETdigest06", "bob"],
     ['Digest username="<USER:', 'response="<SECRET:', " ok"]),
    ("request had api_key=SECRETapikey07 and x-api-key: SECRETxapikey08 set", ["SECRETapikey07", "SECRETxapikey08"],
     ["api_key=<KEY:", "x-api-key: <KEY:", " set"]),
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
    shown = result.stdout + result.stderr  # the preview prints the answer as it will be sent: redacted
    assert "401 cookie: sid=<COOKIE:" in shown
    assert not [secret for secret in secrets if secret in shown]


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
    assert {"cookie", "authorization", "name_value"} <= set(report["by_rule"])
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


def test_counts_without_locations_equal_counts_with_them() -> None:
    from diagkit.redact.engine import Redactor

    log = "\n".join(f"user u{i}@corp.example.com from 84.17.42.{i % 250} card 4111 1111 1111 1111" for i in range(200))
    counted, located = Redactor(b"k" * 32, ner=False, locations=False), Redactor(b"k" * 32, ner=False)
    assert counted.redact_text(log) == located.redact_text(log)
    assert counted.report.by_rule == located.report.by_rule and counted.report.total == 600
    assert not counted.report.by_location and len(located.report.by_location) == 600


def test_header_lines_in_a_long_text_are_redacted() -> None:
    from diagkit.redact.engine import Redactor

    log = "\n".join([f"2023-11-14T22:{i % 60:02d}:00Z INFO request {i} ok" for i in range(100)] +
                    ["X-Api-Key: k3y-s3cr3t-value", "Cookie: sid=abcdef123456; theme=dark",
                     "Authorization: Bearer abcdefghijklmnop"])
    out = Redactor(b"k" * 32, ner=False).redact_text(log)
    for secret in ("k3y-s3cr3t-value", "abcdef123456", "abcdefghijklmnop"):
        assert secret not in out
    assert "2023-11-14T22:00:00Z INFO request 0 ok" in out


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


@pytest.mark.parametrize("value,nonfinite", [
    ("NaN", True), ("-Infinity", True), ("[1,\n  Infinity]", True),
    ('"GNaNx/Infinity+"', False), ('"NaN"', False), ('{"note": "abcNaN", "n": 1.5}', False),
])
def test_json_non_finite_numbers_are_written_back_and_letters_in_strings_are_not_numbers(
        monkeypatch: pytest.MonkeyPatch, value: str, nonfinite: bool) -> None:
    """json.loads reads NaN and Infinity, which orjson would write as null: such a document is written by
    the standard library. The same letters inside a string (base64, minified JavaScript) are not numbers
    and must not send a whole HAR down that slower path."""
    from diagkit.redact import jsonout
    from diagkit.redact.engine import Redactor

    paths: list[bool] = []
    encode = jsonout.encode
    monkeypatch.setattr(jsonout, "encode", lambda obj, indent, nonfinite=False: paths.append(nonfinite) or
                        encode(obj, indent, nonfinite))
    text = f'{{"password": "hunter2-Secret", "a": {value}}}'
    out = Redactor(b"0" * 32, ner=False).redact_bytes(text.encode(), name="x.json").data.decode()
    assert paths == [nonfinite]
    assert "hunter2" not in out
    assert json.dumps(json.loads(out)["a"]) == json.dumps(json.loads(text)["a"])  # NaN, not null
