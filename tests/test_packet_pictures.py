"""The SVG pictures of `packet show --html` as pure functions: exact geometry, marks, escaping, odd input."""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET

import pytest

from diagkit.findings import Finding, ProbeResult, Severity
from diagkit.packet.pictures import chain, har_data, sso, waterfall
from diagkit.packet.pictures.svg import shorten, ticks
from tests.test_har_saml_flow import login_flow

T0 = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.UTC)
SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    """Well-formed XML with an svg root: a browser can only draw what parses."""
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


def texts(svg: str) -> list[str]:
    """What each <text> shows (its hover <title> left out)."""
    return [(t.text or "") + "".join(c.tail or "" for c in t) for t in parsed(svg).iter(SVG + "text")]


# ---------------------------------------------------------------- helpers
def test_ticks_and_shorten() -> None:
    assert ticks(1000) == [0, 200, 400, 600, 800, 1000]
    assert ticks(0) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
    assert ticks(8218)[-1] == 10000
    assert shorten("https://api.example.com/a/very/long/path", 20) == "https://api.…ng/path"
    assert shorten("a\x1bb", 10) == "a\\x1bb"


# ---------------------------------------------------------------- waterfall
def _request(index: int, start: float, phases: dict[str, float], **kw) -> waterfall.Request:
    return waterfall.Request(index=index, label=kw.pop("label", f"GET https://h.test/{index}"), start_ms=start,
                             phases=phases, total_ms=kw.pop("total", sum(phases.values())),
                             status=kw.pop("status", 200), **kw)


def test_waterfall_places_each_phase_on_the_time_axis() -> None:
    svg = waterfall.waterfall_svg([_request(0, 0, {"dns": 100, "wait": 300}),
                                   _request(1, 400, {"wait": 600}, status=0, failed=True, error="net::ERR_FAILED",
                                            slow_phases={"wait"}, request_ids=["x-request-id: r-1"])])
    parsed(svg)
    # 1000 ms span -> axis 0..1000 over 620 px from x=340: 0.62 px per ms.
    assert '<rect x="340.0" y="56" width="62.0" height="12" fill="#26a69a">' in svg            # dns 0-100
    assert '<rect x="402.0" y="56" width="186.0" height="12" fill="#43a047">' in svg           # wait 100-400
    assert ('<rect x="588.0" y="76" width="372.0" height="12" fill="#43a047" stroke="#c62828" '
            'stroke-width="2">') in svg                                                         # slow wait 400-1000
    assert '<rect x="0" y="72" width="980" height="20" fill="#fdecea"/>' in svg                # failed: red row
    words = texts(svg)
    assert words[0] == "2 requests, 1 s from the first start to the last end"
    assert [w for w in words if w.endswith(" s") or w.endswith(" ms")][:6] == [
        "0 ms", "200 ms", "400 ms", "600 ms", "800 ms", "1 s"]
    assert "#1 ERR GET https://h.test/1" in words
    assert "600 ms slow: wait net::ERR_FAILED" in words
    assert "request id x-request-id: r-1" in svg  # on hover (<title>)


def test_waterfall_escapes_and_survives_junk() -> None:
    rows = [_request(0, math.nan, {"wait": -5, "dns": math.inf}, total=1e300, label="GET <script>x</script>\x1b[2J"),
            _request(1, -10, {}, total=-1)]
    svg = waterfall.waterfall_svg(rows)
    parsed(svg)
    assert "<script" not in svg and "&lt;script&gt;" in svg and "\\x1b[2J" in svg and "\x1b" not in svg
    assert "No requests in this recording." in texts(waterfall.waterfall_svg([]))
    many = waterfall.waterfall_svg([_request(i, i, {"wait": 1}) for i in range(250)], total_entries=900)
    assert texts(many)[0].endswith("(first 200 drawn)") and texts(many)[0].startswith("900 requests")


def test_requests_of_a_har_reads_phases_marks_and_ids() -> None:
    har = {"log": {"entries": [
        {"startedDateTime": "2026-11-23T09:00:00.000Z", "time": 50,
         "request": {"method": "get", "url": "https://a.test/x?token=SECRET&b=1"},
         "response": {"status": 200}, "timings": {"blocked": -1, "dns": 5, "connect": 30, "ssl": 20, "send": 1,
                                                  "wait": 4000, "receive": 4}},
        {"startedDateTime": "2026-11-23T09:00:01.500Z", "request": {"method": "POST", "url": "https://a.test/y"},
         "response": {"status": 0, "_error": "net::ERR_CONNECTION_RESET"}, "timings": {"wait": "junk"}},
        "not an entry",
    ]}}
    result = ProbeResult("har", "evidence/a.har", T0, 1, [
        Finding("har.request.failed", Severity.WARN, "failed", evidence={"first_entry": 1}),
        Finding("har.ok", Severity.PASS, "ok", evidence={"entry": 0})],
        facts={"request_ids": [{"i": 0, "ids": {"x-request-id": "abc"}}, "junk"]})
    rows = har_data.requests_of(har, result)
    assert [(r.index, r.label, r.start_ms, r.status, r.failed) for r in rows] == [
        (0, "GET https://a.test/x?token&b", 0.0, 200, False),
        (1, "POST https://a.test/y", 1500.0, 0, True),
        (2, "", 1500.0, 0, True)]
    assert rows[0].phases == {"dns": 5.0, "connect": 10.0, "ssl": 20.0, "send": 1.0, "wait": 4000.0, "receive": 4.0}
    assert rows[0].slow_phases == {"wait"} and rows[0].request_ids == ["x-request-id: abc"]
    assert rows[1].error == "net::ERR_CONNECTION_RESET" and rows[1].findings == [("warn", "har.request.failed", "failed")]
    assert rows[0].findings == []  # a pass finding marks nothing
    parsed(waterfall.waterfall_svg(rows))
    assert har_data.requests_of({"log": {"entries": "x"}}, result) == []
    assert har_data.requests_of([], result) == []


# ---------------------------------------------------------------- certificate chain
def _cert(subject: str, issuer: str, start: dt.datetime | None, end: dt.datetime | None, **kw) -> chain.Cert:
    return chain.Cert(subject=f"CN={subject},O=Test", issuer=f"CN={issuer},O=Test", not_before=start,
                      not_after=end, **kw)


@pytest.mark.parametrize(("start", "end", "expected"), [
    (T0 - dt.timedelta(days=100), T0 - dt.timedelta(days=3), ("fail", "expired 3 days before capture")),
    (T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=90), ("fail", "not yet valid at capture (starts in 2 days)")),
    (T0 - dt.timedelta(days=60), T0 + dt.timedelta(days=10), ("warn", "valid at capture, expires 10 days later")),
    (T0 - dt.timedelta(days=60), T0 + dt.timedelta(days=300), ("pass", "valid at capture (300 days left)")),
    (None, T0, ("info", "validity unknown")),
])
def test_certificate_validity_against_the_capture_time(start, end, expected) -> None:
    assert chain.status(_cert("a", "b", start, end), T0) == expected


def test_chain_picture_marks_order_and_missing_root() -> None:
    leaf = _cert("api.test", "Issuing CA", T0 - dt.timedelta(days=100), T0 - dt.timedelta(days=3))
    other = _cert("Unrelated CA", "Root CA", T0 - dt.timedelta(days=900), T0 + dt.timedelta(days=900))
    svg = chain.chain_svg([leaf, other], T0, trusted=False, host="api.test:443")
    words = texts(svg)
    assert words[0] == "Certificate chain presented by api.test:443: 2 certificates; the chain does not validate to a trusted root"
    assert ["#0 server (leaf)", "api.test", "issued by Issuing CA", "expired 3 days before capture"] == words[1:5]
    assert "issuer is NOT the next certificate (out of order or missing intermediate)" in words
    assert "root not sent: Root CA (clients must already trust it)" in words
    assert words.count("capture") == 2  # the capture time marked on each validity bar
    assert "The server sent no certificate." in texts(chain.chain_svg([], None))


def test_certs_of_tls_facts_tolerates_junk() -> None:
    assert chain.certs_of({}) is None and chain.certs_of({"chain": "x"}) is None
    certs = chain.certs_of({"chain": [{"subject": "CN=a", "issuer": "CN=b", "not_before": "2026-01-01T00:00:00Z",
                                       "not_after": "garbage", "self_signed": "yes", "key_type": "EC secp256r1",
                                       "key_size": 256, "sha256": "AB:CD"}, 7]})
    assert certs == [chain.Cert("CN=a", "CN=b", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None, "EC secp256r1 256",
                                "AB:CD"),
                     chain.Cert("?", "?", None, None)]
    parsed(chain.chain_svg(certs, T0))


# ---------------------------------------------------------------- SSO flow
def test_sso_of_a_saml_login_har(tmp_path) -> None:
    import json

    har = json.loads(open(login_flow("chrome", request_id="_req2", acs_status=400).write(tmp_path / "l.har")).read())
    result = ProbeResult("har", "evidence/l.har", T0, 1, [
        Finding("har.saml.inresponseto_mismatch", Severity.FAIL, "InResponseTo is not the request's ID",
                evidence={"request_entry": 1, "response_entry": 3}),
        Finding("har.response.client_error", Severity.WARN, "400 from POST", evidence={"first_entry": 3})],
        facts={"saml_messages": [{"i": 1, "message": "SAMLRequest", "type": "AuthnRequest"}]})
    lanes, hops, count = har_data.sso_of(har, result)
    assert [(lane.key, lane.role) for lane in lanes] == [
        (sso.BROWSER, "Browser"), ("app.example.com", "SP"), ("idp.example.net", "IdP")]
    assert count == 4
    assert [(h.index, h.lane, h.request, h.message, h.answer) for h in hops] == [
        (0, "app.example.com", "GET /login", "redirects to the IdP with a SAMLRequest", "302 to idp.example.net"),
        (1, "idp.example.net", "GET /sso?SAMLRequest&RelayState", "AuthnRequest (SAMLRequest, HTTP-Redirect)", "200"),
        (2, "idp.example.net", "POST /login", "", "200"),
        (3, "app.example.com", "POST /saml/acs", "Response (SAMLResponse, HTTP-POST)", "400")]
    assert [f[:2] for f in hops[3].findings] == [("fail", "har.saml.inresponseto_mismatch"),
                                                  ("warn", "har.response.client_error")]
    words = texts(sso.sso_svg(lanes, hops, total_hops=count))
    assert words[:4] == ["SSO flow: 4 hops", "Browser", "SP", "app.example.com"]
    assert "FAIL har.saml.inresponseto_mismatch (+1 more)" in words
    assert har_data.sso_of({"log": {"entries": [{"request": {"url": "https://a.test/"}}]}}, result) is None


def test_sso_of_an_oidc_code_flow() -> None:
    def entry(method: str, url: str, status: int, location: str = "", form: str = "") -> dict:
        req = {"method": method, "url": url}
        if form:
            req["postData"] = {"mimeType": "application/x-www-form-urlencoded", "text": form}
        return {"request": req, "response": {"status": status, "headers": [{"name": "Location", "value": location}]
                                             if location else []}}

    har = {"log": {"entries": [
        entry("GET", "https://rp.test/login", 302, "https://op.test/authorize?response_type=code&client_id=c"),
        entry("GET", "https://op.test/authorize?response_type=code&client_id=c&redirect_uri=x&state=s", 302,
              "https://rp.test/cb?code=abc&state=s"),
        entry("GET", "https://rp.test/cb?code=abc&state=s", 302),
        entry("POST", "https://op.test/token", 400, form="grant_type=authorization_code&code=abc"),
        entry("GET", "https://rp.test/cb?error=access_denied&state=s", 200),
    ]}}
    lanes, hops, _count = har_data.sso_of(har, ProbeResult("har", "h.har", T0, 1, []))
    assert [(lane.key, lane.role) for lane in lanes][1:] == [("rp.test", "SP"), ("op.test", "IdP")]
    assert [h.message for h in hops] == [
        "redirects to the IdP with an authorization request", "OIDC/OAuth authorization request",
        "authorization response (code)", "token request (authorization_code)", "OAuth error response (error)"]
    parsed(sso.sso_svg(lanes, hops))


def test_sso_picture_escapes_hosts_and_messages() -> None:
    svg = sso.sso_svg([sso.Lane(sso.BROWSER, "Browser"), sso.Lane("<b>evil</b>\u202e", "SP")],
                      [sso.Hop(0, "<b>evil</b>\u202e", "GET /<img src=x>", "m&m", 500, "500",
                               [("fail", "x.<y>", "t\x1b")])])
    parsed(svg)
    assert "<b>" not in svg and "<img" not in svg and "\u202e" not in svg and "\x1b" not in svg
    assert "&lt;b&gt;evil&lt;/b&gt;\\u202e" in svg and "m&amp;m" in svg
    assert "No SSO hops in this recording." in texts(sso.sso_svg([], []))
