"""`diagkit probe har`: HAR files built here, one per problem, run through the CLI; plus parser unit tests."""

from __future__ import annotations

import base64
import codecs
import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from diagkit.collectors.har import probe as har
from diagkit.formats import har as har_file
from diagkit.formats.urls import url_shape
from tests.cli_results import severities
from tests.fixtures import secret_har as sh

T0 = "2026-03-01T10:00:00.000Z"
DATE_OK = "Sun, 01 Mar 2026 10:00:00 GMT"
SECRET = "s3cr3t-VALUE-never-shown"


# ----------------------------------------------------------------------------------- HAR builder


def entry(url: str, status: int = 200, *, method: str = "GET", started: str = T0, req_headers: dict | None = None,
          resp_headers: dict | None = None, error: str | None = None, body: str | None = None,
          mime: str = "text/html", base64_body: bool = False, timings: dict | None = None,
          post_params: dict | None = None, location: str = "", resource_type: str | None = None) -> dict:
    rh = {"Date": DATE_OK, **(resp_headers or {})}
    if location:
        rh["Location"] = location
    content: dict[str, Any] = {"size": len(body or ""), "mimeType": mime}
    if body is not None:
        content["text"] = base64.b64encode(body.encode()).decode() if base64_body else body
        if base64_body:
            content["encoding"] = "base64"
    t = {"blocked": 1, "dns": -1, "connect": -1, "ssl": -1, "send": 1, "wait": 40, "receive": 2, **(timings or {})}
    e: dict[str, Any] = {
        "startedDateTime": started,
        "time": sum(v for v in t.values() if v > 0) - (t["ssl"] if t["ssl"] > 0 else 0),
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                    "headers": [{"name": k, "value": v} for k, v in (req_headers or {}).items()],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": -1},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1" if status else "",
                     "headers": [{"name": k, "value": v} for k, v in rh.items()] if status else [],
                     "cookies": [], "content": content, "redirectURL": location, "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": t,
    }
    if error is not None:
        e["response"]["_error"] = error
    if post_params is not None:
        e["request"]["postData"] = {"mimeType": "application/x-www-form-urlencoded",
                                    "params": [{"name": k, "value": v} for k, v in post_params.items()]}
    if resource_type:
        e["_resourceType"] = resource_type
    return e


def make_har(entries: list[dict]) -> dict:
    return {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
                    "pages": [{"id": "page_1", "title": "https://app.example.com/", "startedDateTime": T0}],
                    "entries": entries}}


@pytest.fixture
def write_har(tmp_path: Path):
    def _write(entries: list[dict] | dict, name: str = "session.har", *, raw: bytes | None = None) -> str:
        path = tmp_path / name
        if raw is not None:
            path.write_bytes(raw)
        else:
            doc = entries if isinstance(entries, dict) else make_har(entries)
            path.write_text(json.dumps(doc), encoding="utf-8")
        return str(path)

    return _write


def run_json(invoke, path: str, *args: str) -> tuple[Any, dict]:
    result = invoke("probe", "har", "--json", path, *args)
    return result, json.loads(result.stdout)


def ids(doc: dict) -> list[str]:
    return [f["id"] for f in doc["findings"]]


def find(doc: dict, fid: str) -> dict:
    return next(f for f in doc["findings"] if f["id"] == fid)


def jwt_token(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.c2lnbmF0dXJl"


# ----------------------------------------------------------------------------------- healthy and invalid


def test_healthy_har_passes_with_facts(invoke, write_har):
    path = write_har([
        entry("https://app.example.com/?q=hello", resp_headers={"X-Request-Id": "req-123"}),
        entry("https://api.example.com/v1/items?page=2&token=" + SECRET, mime="application/json",
              req_headers={"Origin": "https://app.example.com", "Sec-Fetch-Mode": "cors"},
              resp_headers={"Access-Control-Allow-Origin": "https://app.example.com", "traceparent":
                            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
              body='{"items": []}', started="2026-03-01T10:00:00.500Z"),
        entry("https://app.example.com/old", 301, location="https://app.example.com/new",
              started="2026-03-01T10:00:01.000Z"),
    ])
    result, doc = run_json(invoke, path)
    assert result.exit_code == 0, result.stdout
    assert {f["severity"] for f in doc["findings"]} <= {"pass", "info"}
    assert "har.ok" in ids(doc)
    facts = doc["facts"]
    assert facts["entries"] == 3 and facts["creator"] == "WebInspector 537.36"
    assert facts["timeline"][1] == {"i": 1, "t_ms": 500, "method": "GET",
                                    "url": "https://api.example.com/v1/items?page&token", "status": 200, "ms": 44}
    rids = {k for row in facts["request_ids"] for k in row["ids"]}
    assert rids == {"x-request-id", "traceparent"}
    assert SECRET not in result.stdout and "hello" not in result.stdout


def test_human_output_and_multiple_files(invoke, write_har):
    ok = write_har([entry("https://app.example.com/")], "ok.har")
    bad = write_har([entry("https://app.example.com/x", 500)], "bad.har")
    result = invoke("probe", "har", ok, bad)
    assert result.exit_code == 3
    assert "har.response.server_error" in result.stdout and "har.ok" in result.stdout
    result = invoke("probe", "har", "--json", ok, bad)
    doc = json.loads(result.stdout)
    assert [r["target"] for r in doc["results"]] == [ok, bad]


@pytest.mark.parametrize("raw, reason", [
    (b'{"log":\n[\n    2,1,3\n]\n"request:"}', "not valid JSON"),
    (b'{"log": {"version": "1.2"}}', "no log.entries"),
    (b'{"test_response": {"log": {"entries": []}}}', "no log.entries"),
    (json.dumps(entry("https://a.example/")).encode(), "single HAR entry"),
    (b"[1, 2]", "no log.entries"),
    (b"", "empty"),
])
def test_invalid_har_is_an_error_finding(invoke, write_har, raw, reason):
    path = write_har([], "broken.har", raw=raw)
    result, doc = run_json(invoke, path)
    assert result.exit_code == 5
    assert ids(doc) == ["har.invalid"]
    assert find(doc, "har.invalid")["severity"] == "error"
    assert reason in find(doc, "har.invalid")["detail"]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.har" in lines[0] and reason in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_file_is_one_line_exit_1(invoke, tmp_path):
    result = invoke("probe", "har", str(tmp_path / "nope.har"))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "nope.har" in result.stderr and "does not exist" in result.stderr


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_and_utf16_parse(invoke, write_har, encoding):
    text = json.dumps(make_har([entry("https://app.example.com/é")]), ensure_ascii=False)
    data = text.encode(encoding)
    assert data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or data[:3] == codecs.BOM_UTF8
    path = write_har([], "bom.har", raw=data)
    result, doc = run_json(invoke, path)
    assert result.exit_code == 0 and doc["facts"]["entries"] == 1


# ----------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("error, kind, severity", [
    ("net::ERR_NAME_NOT_RESOLVED", "dns", "fail"),
    ("net::ERR_CERT_DATE_INVALID", "tls", "fail"),
    ("net::ERR_CONNECTION_REFUSED", "connection", "fail"),
    ("net::ERR_BLOCKED_BY_CLIENT", "blocked_by_client", "fail"),
    ("net::ERR_INTERNET_DISCONNECTED", "network", "fail"),
    ("net::ERR_ABORTED", "aborted", "info"),
    (None, "no_response", "warn"),
])
def test_failed_requests_are_classified(invoke, write_har, error, kind, severity):
    path = write_har([entry("https://api.example.com/a?x=" + SECRET, 0, error=error),
                      entry("https://api.example.com/b", 0, error=error)])
    result, doc = run_json(invoke, path)
    finding = find(doc, "har.request.failed")
    assert finding["severity"] == severity
    assert finding["evidence"]["class"] == kind and finding["evidence"]["count"] == 2
    assert finding["evidence"]["urls"] == ["https://api.example.com/a?x", "https://api.example.com/b"]
    assert result.exit_code == {"fail": 3, "warn": 4, "info": 0}[severity]
    assert SECRET not in result.stdout


def test_http_errors_with_body_codes(invoke, write_har):
    problem = json.dumps({"type": "https://example.com/probs/out-of-credit", "title": "Out of credit",
                          "status": 503, "code": "BACKEND_DOWN"})
    path = write_har([
        entry("https://api.example.com/pay", 503, method="POST", body=problem, mime="application/problem+json",
              resp_headers={"x-amzn-RequestId": "amzn-42"}),
        entry("https://api.example.com/missing", 404, body='{"error": {"code": "NotFound", "message": "no"}}',
              mime="application/json", base64_body=True),
    ])
    result, doc = run_json(invoke, path)
    assert result.exit_code == 3
    server = find(doc, "har.response.server_error")
    assert server["evidence"]["body"]["code"] == "BACKEND_DOWN"
    assert server["evidence"]["body"]["title"] == "Out of credit"
    assert server["evidence"]["request_ids"] == ["x-amzn-requestid: amzn-42"]
    client = find(doc, "har.response.client_error")
    assert client["severity"] == "warn" and client["evidence"]["body"]["code"] == "NotFound"


def test_unauthorized_with_parsed_challenge(invoke, write_har):
    token = jwt_token({"iss": "https://idp.example.com", "exp": 1893456000})
    path = write_har([
        entry("https://api.example.com/me", 401, req_headers={"Authorization": f"Bearer {token}"},
              resp_headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token", '
                                                'error_description="The token expired"'}),
        entry("https://api.example.com/admin", 403),
        entry("https://api.example.com/nochallenge", 401),
    ])
    result, doc = run_json(invoke, path)
    assert result.exit_code == 3
    found = [f for f in doc["findings"] if f["id"] == "har.auth.unauthorized"]
    assert len(found) == 3
    challenge = found[0]["evidence"]["challenge"][0]
    assert challenge["scheme"] == "Bearer" and challenge["params"]["error"] == "invalid_token"
    assert 'error="invalid_token"' in found[0]["detail"]
    assert found[2]["evidence"]["challenge"] is None and "without a WWW-Authenticate" in found[2]["detail"]
    assert token not in result.stdout and "har.response.client_error" not in ids(doc)


def test_cors_blocked_fetch_and_failed_preflight(invoke, write_har):
    cors = {"Origin": "https://app.example.com", "Sec-Fetch-Mode": "cors"}
    path = write_har([
        entry("https://api.other.com/data", 0, error="net::ERR_FAILED", req_headers=cors),
        entry("https://api2.other.com/items", 0, method="OPTIONS", error="net::ERR_FAILED",
              req_headers={**cors, "Access-Control-Request-Method": "DELETE"}),
        entry("https://api3.other.com/x", 204, method="OPTIONS",
              req_headers={**cors, "Access-Control-Request-Method": "PUT",
                           "Access-Control-Request-Headers": "authorization"},
              resp_headers={"Access-Control-Allow-Origin": "https://app.example.com",
                            "Access-Control-Allow-Methods": "GET, PUT"}),
        entry("https://api4.other.com/y", 200, req_headers=cors, resource_type="fetch"),
        # a same-origin ERR_FAILED is a plain failure, not CORS
        entry("https://app.example.com/z", 0, error="net::ERR_FAILED", req_headers=cors),
    ])
    result, doc = run_json(invoke, path)
    assert result.exit_code == 3
    reasons = {f["evidence"]["url"]: f["evidence"]["reason"] for f in doc["findings"] if f["id"] == "har.cors.blocked"}
    assert set(reasons) == {"https://api.other.com/data", "https://api2.other.com/items",
                            "https://api3.other.com/x", "https://api4.other.com/y"}
    assert "preflight" in reasons["https://api2.other.com/items"]
    assert "authorization" in reasons["https://api3.other.com/x"]
    assert "Access-Control-Allow-Origin" in reasons["https://api4.other.com/y"]
    assert find(doc, "har.request.failed")["evidence"]["class"] == "failed"


def _sso_round(second: int, rnd: int) -> list[dict]:
    base = f"2026-03-01T10:00:{second:02d}"
    return [
        entry("https://sp.example.com/app", 302, started=f"{base}.000Z",
              location=f"https://idp.example.com/sso?SAMLRequest=abc{rnd}&RelayState=r{rnd}"),
        entry(f"https://idp.example.com/sso?SAMLRequest=abc{rnd}&RelayState=r{rnd}", 200, started=f"{base}.100Z"),
        entry("https://sp.example.com/acs", 302, method="POST", started=f"{base}.200Z",
              location="https://sp.example.com/app"),
    ]


def test_redirect_loop_sp_idp_sp_and_insecure_hop(invoke, write_har):
    entries = [e for rnd in range(4) for e in _sso_round(rnd, rnd)]
    entries.append(entry("https://www.example.com/", 301, location="http://www.example.com/home",
                         started="2026-03-01T10:00:09.000Z"))
    result, doc = run_json(invoke, write_har(entries))
    assert result.exit_code == 3
    loop = find(doc, "har.redirect.loop")
    hops = {(h["from"], h["to"]) for h in loop["evidence"]["hops"]}
    assert ("https://sp.example.com/app", "https://idp.example.com/sso") in hops
    assert loop["evidence"]["repeats"] >= 3
    insecure = find(doc, "har.redirect.insecure")
    assert insecure["evidence"]["to"] == "http://www.example.com/home"


def test_same_redirect_on_separate_page_loads_is_not_a_loop(invoke, write_har):
    entries = []
    for minute in range(4):
        entries.append(entry("https://cdn.example.com/pixel", 302, started=f"2026-03-01T10:0{minute}:00.000Z",
                             location="https://sync.example.com/p"))
        entries.append(entry("https://app.example.com/", 302, started=f"2026-03-01T10:0{minute}:01.000Z",
                             location="https://cdn.example.com/pixel"))
    result, doc = run_json(invoke, write_har(entries))
    assert "har.redirect.loop" not in ids(doc) and result.exit_code == 0


def test_too_many_redirects_error_is_a_loop(invoke, write_har):
    result, doc = run_json(invoke, write_har([entry("https://a.example.com/", 0,
                                                    error="net::ERR_TOO_MANY_REDIRECTS")]))
    assert "har.redirect.loop" in ids(doc) and find(doc, "har.request.failed")["evidence"]["class"] == "redirect_loop"


def test_slow_requests_name_the_dominant_phase(invoke, write_har):
    path = write_har([
        entry("https://api.example.com/slow-server", timings={"wait": 2500}),
        # ssl is inside connect: 4000 connect of which 3500 ssl -> ssl dominates, not counted twice
        entry("https://api.example.com/slow-tls", timings={"connect": 4000, "ssl": 3500, "wait": 100}),
        entry("https://api.example.com/fast", timings={"dns": -1, "wait": 100}),
        entry("wss://api.example.com/socket", 101, timings={"receive": 60000}),
    ])
    result, doc = run_json(invoke, path)
    assert result.exit_code == 4
    slow = {f["evidence"]["url"]: f["evidence"] for f in doc["findings"] if f["id"] == "har.request.slow"}
    assert set(slow) == {"https://api.example.com/slow-server", "https://api.example.com/slow-tls"}
    assert slow["https://api.example.com/slow-server"]["phase"] == "wait"
    assert slow["https://api.example.com/slow-server"]["phase_ms"] == 2500
    tls = slow["https://api.example.com/slow-tls"]
    assert tls["phase"] == "ssl" and tls["phase_ms"] == 3500 and tls["timings_ms"]["connect"] == 500
    assert "dns" not in tls["timings_ms"]


def test_slow_threshold_option(invoke, write_har):
    path = write_har([entry("https://api.example.com/x", timings={"wait": 900})])
    result, doc = run_json(invoke, path, "--slow-ms", "500")
    assert find(doc, "har.request.slow")["evidence"]["phase"] == "wait"


def test_clock_skew_uses_median_and_ignores_cached(invoke, write_har):
    behind = "Sun, 01 Mar 2026 09:50:00 GMT"  # client 10 min ahead
    entries = [entry(f"https://{h}.example.com/{i}", resp_headers={"Date": behind})
               for i, h in enumerate(["a", "b", "a", "b", "c"])]
    entries.append(entry("https://cache.example.com/old", resp_headers={"Date": "Sat, 01 Jan 2022 00:00:00 GMT"}))
    result, doc = run_json(invoke, write_har(entries))
    assert result.exit_code == 4
    skew = find(doc, "har.clock.skew")
    assert skew["evidence"]["median_skew_s"] == 600 and skew["evidence"]["client"] == "ahead of server"
    # A few stale cached copies (one host, Age-less) do not make a skew
    entries = [entry(f"https://a.example.com/{i}") for i in range(3)]
    entries += [entry(f"https://cdn.example.com/{i}", resp_headers={"Date": "Sat, 01 Jan 2022 00:00:00 GMT"})
                for i in range(4)]
    entries.append(entry("https://cdn2.example.com/x", resp_headers={"Date": "Sun, 01 Mar 2026 09:00:00 GMT",
                                                                    "Age": "3600"}))
    result, doc = run_json(invoke, write_har(entries, "cached.har"))
    assert "har.clock.skew" not in ids(doc) and result.exit_code == 0


# ----------------------------------------------------------------------------------- OAuth / JWT / SAML in the flow


def test_oauth_errors_in_redirects_and_token_responses(invoke, write_har):
    path = write_har([
        entry("https://idp.example.com/authorize?client_id=c&state=s1", 302,
              location="https://app.example.com/cb#error=access_denied&error_description=User+cancelled&state=s1"),
        entry("https://idp.example.com/token", 400, method="POST", mime="application/json",
              body=json.dumps({"error": "invalid_grant", "error_description": "AADSTS70008: code expired"})),
        entry("https://app.example.com/search?error=1"),  # not OAuth
    ])
    result, doc = run_json(invoke, path)
    errors = {f["evidence"]["error"]: f for f in doc["findings"] if f["id"] == "oauth.error"}
    assert set(errors) == {"access_denied", "invalid_grant"}
    assert "cancelled" in errors["access_denied"]["evidence"]["error_description"]
    assert result.exit_code == 3


def test_jwt_checked_at_the_entry_time(invoke, write_har):
    # exp 10:05 on the HAR's day: valid at 10:00, expired at 10:30 (the clock of the run does not matter)
    token = jwt_token({"iss": "https://idp.example.com", "aud": "api", "exp": 1772359500, "iat": 1772355600})
    fresh = entry("https://api.example.com/a", req_headers={"Authorization": f"Bearer {token}"})
    result, doc = run_json(invoke, write_har([fresh]))
    assert "jwt.expired" not in ids(doc) and result.exit_code == 0
    late = entry("https://api.example.com/b", req_headers={"Authorization": f"Bearer {token}"},
                 started="2026-03-01T10:30:00.000Z", resp_headers={"Date": "Sun, 01 Mar 2026 10:30:00 GMT"})
    result, doc = run_json(invoke, write_har([fresh, late], "late.har"), )
    assert "jwt.expired" in ids(doc) and result.exit_code == 3
    assert token not in result.stdout and token.split(".")[1] not in result.stdout


def _saml_response(not_on_or_after: str) -> str:
    xml = f"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
 xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2026-03-01T09:00:00Z"
 Destination="https://sp.example.com/acs">
 <saml:Issuer>https://idp.example.com</saml:Issuer>
 <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
 <saml:Assertion ID="_a1" Version="2.0" IssueInstant="2026-03-01T09:00:00Z">
  <saml:Issuer>https://idp.example.com</saml:Issuer>
  <saml:Subject><saml:NameID>{SECRET}@example.com</saml:NameID></saml:Subject>
  <saml:Conditions NotBefore="2026-03-01T08:59:00Z" NotOnOrAfter="{not_on_or_after}">
   <saml:AudienceRestriction><saml:Audience>https://sp.example.com</saml:Audience></saml:AudienceRestriction>
  </saml:Conditions>
 </saml:Assertion>
</samlp:Response>"""
    return base64.b64encode(xml.encode()).decode()


def test_saml_messages_found_and_checked(invoke, write_har):
    authn = b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_q" Version="2.0"/>'
    deflated = zlib.compress(authn)[2:-4]
    from urllib.parse import quote

    redirect_value = quote(base64.b64encode(deflated).decode(), safe="")
    path = write_har([
        entry(f"https://idp.example.com/sso?SAMLRequest={redirect_value}&RelayState=x"),
        entry("https://sp.example.com/acs", 302, method="POST", location="https://sp.example.com/app",
              post_params={"SAMLResponse": _saml_response("2026-03-01T09:05:00Z"), "RelayState": "x"}),
        entry("https://sp.example.com/acs2", 200, method="POST", post_params={"SAMLResponse": "not saml!"}),
    ])
    result, doc = run_json(invoke, path)
    messages = doc["facts"]["saml_messages"]
    assert [(m["message"], m["binding"], m["decoded"]) for m in messages] == [
        ("SAMLRequest", "HTTP-Redirect", True), ("SAMLResponse", "HTTP-POST", True),
        ("SAMLResponse", "HTTP-POST", False)]
    assert "saml.assertion.expired" in ids(doc)  # judged at the entry's time, 10:00 > 09:05
    assert "har.saml.unreadable" in ids(doc)
    assert SECRET not in result.stdout and result.exit_code == 3


# ----------------------------------------------------------------------------------- streaming (big files)


def test_streamed_and_loaded_give_the_same_result(invoke, write_har, monkeypatch):
    path = write_har([entry("https://api.example.com/x", 500), entry("https://a.example.com/", 0,
                                                                     error="net::ERR_NAME_NOT_RESOLVED")])
    _, loaded = run_json(invoke, path)
    monkeypatch.setattr(har_file, "STREAM_THRESHOLD", 0)
    _, streamed = run_json(invoke, path)
    assert streamed["facts"]["streamed"] is True and loaded["facts"]["streamed"] is False
    assert ids(streamed) == ids(loaded)
    assert streamed["facts"]["timeline"] == loaded["facts"]["timeline"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_streaming_tolerates_boms(write_har, encoding):
    data = json.dumps(make_har([entry("https://a.example.com/é")]), ensure_ascii=False).encode(encoding)
    source = har_file.open_har(write_har([], "b.har", raw=data), stream_threshold=0)
    assert source.streamed and source.meta["creator"]["name"] == "WebInspector"
    assert [e["request"]["url"] for e in source.entries()] == ["https://a.example.com/é"]


def test_streamed_file_broken_half_way(invoke, write_har, monkeypatch):
    text = json.dumps(make_har([entry("https://api.example.com/x", 500)] * 3))
    path = write_har([], "cut.har", raw=text[: len(text) - 200].encode())
    monkeypatch.setattr(har_file, "STREAM_THRESHOLD", 0)
    result, doc = run_json(invoke, path)
    assert result.exit_code == 5 or result.exit_code == 3
    invalid = find(doc, "har.invalid")
    assert "not valid JSON" in invalid["detail"] and invalid["evidence"]["entries_read"] >= 1
    assert "har.response.server_error" in ids(doc)


def test_streamed_structure_errors(write_har):
    bare = write_har([], "bare.har", raw=json.dumps(entry("https://a.example/")).encode())
    with pytest.raises(har_file.InputFormatError, match="single HAR entry"):
        har_file.open_har(bare, stream_threshold=0)
    junk = write_har([], "junk.har", raw=b'{"log": [2,1,3] "x"}')
    with pytest.raises(har_file.InputFormatError, match="not valid JSON"):
        har_file.open_har(junk, stream_threshold=0)


def test_timeline_is_capped(invoke, write_har):
    entries = [entry(f"https://a.example.com/{i}") for i in range(30)]
    result, doc = run_json(invoke, write_har(entries), "--timeline-limit", "10")
    assert len(doc["facts"]["timeline"]) == 10 and doc["facts"]["timeline_truncated"] is True
    assert "10 of 30" in doc["facts"]["timeline_note"]


# ----------------------------------------------------------------------------------- unit tests


def test_safe_url_keeps_only_names():
    assert url_shape("https://u:p@Host.example.com:8443/a/b?code=xyz&state=1&code=2#access_token=t&x=y") == \
        "https://host.example.com:8443/a/b?code&state#access_token&x"
    assert url_shape("not a url") == "not a url"
    assert url_shape(None) == ""


def test_phases_ignore_minus_one_and_take_ssl_out_of_connect():
    assert har_file.phases({"dns": -1, "connect": 300, "ssl": 200, "wait": 10, "send": "x"}) == \
        {"connect": 100, "ssl": 200, "wait": 10}
    # mitmproxy: ssl larger than connect means it is not included
    assert har_file.phases({"connect": 300, "ssl": 350})["connect"] == 300


def test_response_text_decodes_base64_gzip_and_tolerates_corruption():
    body = gzip.compress(b'{"error": "x"}')
    e = {"response": {"headers": [{"name": "Content-Encoding", "value": "gzip"}],
                      "content": {"text": base64.b64encode(body).decode(), "encoding": "base64"}}}
    assert har_file.response_text(e) == '{"error": "x"}'
    e["response"]["content"]["text"] = base64.b64encode(b"\x1f\x8bnot gzip").decode()
    assert har_file.response_bytes(e) == b"\x1f\x8bnot gzip"
    e["response"]["content"]["text"] = "%%%"
    assert har_file.response_text(e) in (None, "")
    assert har_file.response_text({"response": {}}) is None


def test_header_and_param_helpers():
    req = {"url": "https://a.example/p?x=1&y=2", "headers": [{"name": "Content-Type", "value": "a"},
                                                             {"name": "content-type", "value": "b"}],
           "postData": {"mimeType": "application/x-www-form-urlencoded", "text": "SAMLResponse=abc&RelayState=r"}}
    assert har_file.header(req, "CONTENT-TYPE") == "a" and har_file.headers(req, "content-type") == ["a", "b"]
    assert har_file.query_params(req) == [("x", "1"), ("y", "2")]
    assert har_file.form_params(req) == [("SAMLResponse", "abc"), ("RelayState", "r")]
    assert har_file.fragment_params("https://a/cb#id_token=t&state=s") == [("id_token", "t"), ("state", "s")]


def test_load_har_errors(tmp_path):
    with pytest.raises(har_file.InputNotFound):
        har_file.load_har(str(tmp_path / "missing.har"))
    bad = tmp_path / "bad.har"
    bad.write_text('{"log": {"entries": [}', encoding="utf-8")
    with pytest.raises(har_file.InputFormatError, match=r"bad.har.*line 1 column"):
        har_file.load_har(str(bad))
    assert list(har_file.iter_entries({"log": {"entries": [None, {"a": 1}, "x"]}})) == [{"a": 1}]


def test_classify_error():
    assert har.classify_error("net::ERR_CERT_AUTHORITY_INVALID")[0] == "tls"
    assert har.classify_error("Multiple exceptions: [Errno 60] Connect call failed")[0] == "connection"
    assert har.classify_error("something odd")[0] == "other"
    assert har.classify_error(None)[0] == "no_response"


# ---------------------------------------------------------------- empty recordings, OAuth challenges inside a flow


def test_har_without_entries_is_an_error_not_a_pass(invoke: Any, tmp_path: Path) -> None:
    """An empty recording used to report `har.ok` "No problems found in 0 HAR entries" and exit 0."""
    empty = tmp_path / "empty-log.har"
    empty.write_text(json.dumps(sh.har_doc([])))
    junk = tmp_path / "junk-entries.har"
    junk.write_text(json.dumps(sh.har_doc([5, "x", None])))
    for path in (empty, junk):
        result = invoke("probe", "har", path, "--json")
        assert result.exit_code == 5, result.stdout
        assert severities(result) == {"har.entries.empty": "error"}
        assert path.name in result.stderr
    both = invoke("probe", "har", empty, sh.secret_har(tmp_path), "--json")
    assert both.exit_code == 5 and [r["probe"] for r in json.loads(both.stdout)["results"]] == ["har", "har"]


def test_har_bearer_challenge_errors_use_the_http_probe_ids(invoke: Any, tmp_path: Path) -> None:
    """CONTRACT.md: OAuth problems inside a HAR flow carry the HTTP probe's ids, next to har.auth.unauthorized."""
    def challenged(url: str, status: int, value: str) -> dict[str, Any]:
        item = sh.entry(url, status)
        item["response"]["headers"] = [{"name": "WWW-Authenticate", "value": value}]
        return item

    har = tmp_path / "api.har"
    har.write_text(json.dumps(sh.har_doc([
        challenged("https://api.example.com/v1/me", 401, 'Bearer realm="api", error="invalid_token", '
                                                         'error_description="The access token expired"'),
        challenged("https://api.example.com/v1/orders", 403, 'Bearer error="insufficient_scope", scope="orders.write"'),
        challenged("https://api.example.com/v1/plain", 401, 'Bearer realm="api"'),
    ])))
    result = invoke("probe", "har", har, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for finding in doc["findings"]:
        by_id.setdefault(finding["id"], []).append(finding)
    assert len(by_id["har.auth.unauthorized"]) == 3
    assert [f["evidence"]["url"] for f in by_id["http.auth.invalid_token"]] == ["https://api.example.com/v1/me"]
    assert by_id["http.auth.insufficient_scope"][0]["evidence"]["scope"] == "orders.write"
    assert all(f["severity"] == "fail" for f in by_id["http.auth.invalid_token"] + by_id["http.auth.insufficient_scope"])
