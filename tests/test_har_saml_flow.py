"""`diagkit probe har` on SAML logins recorded by Chrome, Firefox and Safari: the state the flow carries.

Each HAR is generated here in the shape the browser exports (where cookies, form fields and several
Set-Cookie lines are kept) around a response signed in the test: InResponseTo vs the AuthnRequest ID,
RelayState length, the SP cookie lost on the ACS POST (SameSite), and the --expect-* checks. A healthy
control flow in each shape yields no `fail`.
"""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.cli_results import find, ids, run_json
from tests.fixtures.sso import builders as b

SP = "https://app.example.com"
IDP = "https://idp.example.net"
ACS = SP + "/saml/acs"
BROWSERS = ("chrome", "firefox", "safari")
CREATORS = {"chrome": {"name": "WebInspector", "version": "537.36"},
            "firefox": {"name": "Firefox", "version": "128.0"},
            "safari": {"name": "WebKit Web Inspector", "version": "1.0"}}


def authn_request(request_id: str = "_req1") -> str:
    return (f'<samlp:AuthnRequest xmlns:samlp="{b.SAMLP}" xmlns:saml="{b.SAML}" ID="{request_id}" Version="2.0" '
            f'IssueInstant="{b.NOW_ISO}" Destination="{IDP}/sso" AssertionConsumerServiceURL="{ACS}" '
            'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
            "<saml:Issuer>https://sp.test/</saml:Issuer></samlp:AuthnRequest>")


def redirect_value(xml: str) -> str:
    """HTTP-Redirect binding: raw DEFLATE, then base64 (SAML Bindings §3.4.4.1)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(deflater.compress(xml.encode()) + deflater.flush()).decode()


def signed_response(**kwargs: Any) -> str:
    return b.b64(b.response(b.signed_assertion(**kwargs)))


class Har:
    """Entries in one browser's export shape."""

    def __init__(self, browser: str) -> None:
        self.browser = browser
        self.entries: list[dict[str, Any]] = []
        self.second = 0

    def _headers(self, pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
        # Chrome records HTTP/2 names in lower case; Firefox and Safari keep the wire spelling.
        return [{"name": n.lower() if self.browser == "chrome" else n, "value": v} for n, v in pairs]

    def add(self, method: str, url: str, status: int, *, cookies: dict[str, str] | None = None,
            form: dict[str, str] | None = None, set_cookies: list[str] | None = None, location: str | None = None,
            origin: str | None = None, body: str = "", mime: str = "text/html") -> None:
        cookies = cookies or {}
        req_headers = [("Host", url.split("/")[2]), ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")]
        if self.browser != "safari":  # older Safari exports carry no Sec-Fetch-* headers
            req_headers.append(("Sec-Fetch-Mode", "navigate"))
        if cookies:
            req_headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items())))
        if origin:
            req_headers += [("Origin", origin), ("Referer", origin + "/")]
        request: dict[str, Any] = {"method": method, "url": url, "httpVersion": "HTTP/2", "headers": [],
                                   "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0}
        if self.browser != "safari":  # Safari leaves the cookies arrays empty; the headers carry them
            request["cookies"] = [{"name": k, "value": v} for k, v in cookies.items()]
        if form is not None:
            text = urlencode(form)
            req_headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            post: dict[str, Any] = {"mimeType": "application/x-www-form-urlencoded", "text": text}
            if self.browser == "chrome":  # Chrome keeps params percent-encoded as on the wire
                post["params"] = [{"name": k, "value": quote(v, safe="")} for k, v in form.items()]
            elif self.browser == "firefox":
                post["params"] = [{"name": k, "value": v} for k, v in form.items()]
            request["postData"] = post
            request["bodySize"] = len(text)
        request["headers"] = self._headers(req_headers)
        resp_pairs = [("Content-Type", mime)]
        if location:
            resp_pairs.append(("Location", location))
        set_cookies = set_cookies or []
        if set_cookies and self.browser == "firefox":
            resp_pairs.append(("Set-Cookie", "\n".join(set_cookies)))  # Firefox joins them in one header
        else:
            resp_pairs += [("Set-Cookie", c) for c in set_cookies]
        response: dict[str, Any] = {
            "status": status, "statusText": "", "httpVersion": "HTTP/2", "headers": self._headers(resp_pairs),
            "cookies": [], "content": {"size": len(body), "mimeType": mime, "text": body},
            "redirectURL": location or "", "headersSize": -1, "bodySize": len(body)}
        if self.browser == "chrome":
            for line in set_cookies:
                name, _, rest = line.partition("=")
                attrs = {a.split("=")[0].strip().lower(): a.partition("=")[2] for a in rest.split(";")[1:]}
                cookie = {"name": name, "value": rest.split(";")[0], "path": attrs.get("path", "/"),
                          "httpOnly": "httponly" in attrs, "secure": "secure" in attrs}
                if "samesite" in attrs:
                    cookie["sameSite"] = attrs["samesite"]
                response["cookies"].append(cookie)
        started = f"2030-01-01T00:00:{self.second:02d}.000Z"
        self.second += 1
        entry = {"startedDateTime": started, "time": 50, "request": request, "response": response,
                 "cache": {}, "timings": {"send": 1, "wait": 40, "receive": 9}}
        if self.browser == "chrome":
            entry["_resourceType"] = "document" if "html" in mime else "fetch"
        self.entries.append(entry)

    def write(self, path: Path) -> str:
        doc = {"log": {"version": "1.2", "creator": CREATORS[self.browser], "pages": [], "entries": self.entries}}
        path.write_text(json.dumps(doc))
        return str(path)


def login_flow(browser: str, *, samesite: str | None = "None", cookie_sent: bool = True, request_id: str = "_req1",
               relay: str = "r1", relay_back: str | None = None, binding: str = "redirect",
               acs_status: int = 302, acs_location: str = SP + "/app", response_b64: str | None = None) -> Har:
    """SP start page -> IdP (AuthnRequest) -> IdP login -> ACS POST (SAMLResponse) -> app."""
    har = Har(browser)
    attrs = "; Path=/; Secure; HttpOnly" + (f"; SameSite={samesite}" if samesite else "")
    request_xml = authn_request(request_id)
    if binding == "redirect":
        idp_url = f"{IDP}/sso?" + urlencode({"SAMLRequest": redirect_value(request_xml), "RelayState": relay})
        har.add("GET", SP + "/login", 302, location=idp_url, set_cookies=[f"sp_state=s3cr3tstate{attrs}"])
        har.add("GET", idp_url, 200)
    else:
        har.add("GET", SP + "/login", 200, set_cookies=[f"sp_state=s3cr3tstate{attrs}"],
                body="<form method=post action='https://idp.example.net/sso'>...</form>")
        har.add("POST", IDP + "/sso", 200, form={"SAMLRequest": b.b64(request_xml), "RelayState": relay},
                origin=SP)
    har.add("POST", IDP + "/login", 200, cookies={"idp_session": "x"}, form={"user": "u", "password": "p"},
            body="<form method=post action='https://app.example.com/saml/acs'>...</form>")
    form = {"SAMLResponse": response_b64 or signed_response(), "RelayState": relay if relay_back is None else relay_back}
    har.add("POST", ACS, acs_status, cookies={"sp_state": "s3cr3tstate"} if cookie_sent else {}, form=form,
            origin=IDP, location=acs_location if acs_status in (301, 302, 303) else None,
            set_cookies=["sp_session=logged-in; Path=/; Secure; HttpOnly; SameSite=Lax"] if acs_status < 400 else [],
            body="" if acs_status in (301, 302, 303) else "<html><body>Error: login state not found</body></html>")
    if acs_status in (301, 302, 303):
        har.add("GET", acs_location, 200, cookies={"sp_session": "logged-in"}, body="<html>dashboard</html>")
    return har


def probe(invoke, path: str, *args: str):
    return run_json(invoke, "probe", "har", path, "--json", *args)


def fails(doc: dict) -> set[str]:
    return ids(doc, "fail")


@pytest.mark.parametrize("browser", BROWSERS)
@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_healthy_flow_has_no_fail(invoke, tmp_path, browser, binding):
    path = login_flow(browser, binding=binding).write(tmp_path / "ok.har")
    result, doc = probe(invoke, path, "--expect-audience", "https://sp.test/", "--expect-destination",
                        "https://sp.test/acs", "--expect-issuer", "https://idp.test/")
    assert result.exit_code == 0, doc["findings"]
    assert "har.ok" in ids(doc)
    flow = doc["facts"]["saml_flow"]
    assert flow == {"authn_requests": 1, "responses": 1}
    assert doc["facts"]["expectations"]["saml_responses_checked"] == 1
    assert "s3cr3tstate" not in result.stdout


@pytest.mark.parametrize("browser", BROWSERS)
@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_inresponseto_mismatch(invoke, tmp_path, browser, binding):
    path = login_flow(browser, request_id="_req2", binding=binding, acs_status=400).write(tmp_path / "irt.har")
    result, doc = probe(invoke, path)
    assert result.exit_code == 3
    finding = find(doc, "har.saml.inresponseto_mismatch")
    assert finding["severity"] == "fail"
    assert finding["evidence"]["request_id"] == "_req2"
    assert finding["evidence"]["in_response_to"] == "_req1"
    assert "'_req2'" in finding["detail"] and "'_req1'" in finding["detail"]


def test_inresponseto_of_an_earlier_request_is_named(invoke, tmp_path):
    har = login_flow("chrome", request_id="_req1", acs_status=400)
    retry = login_flow("chrome", request_id="_req9", acs_status=400)
    har.entries = har.entries[:2] + retry.entries[:2] + retry.entries[2:]
    result, doc = probe(invoke, har.write(tmp_path / "tabs.har"))
    assert result.exit_code == 3
    finding = find(doc, "har.saml.inresponseto_mismatch")
    assert "earlier AuthnRequest" in finding["title"]


@pytest.mark.parametrize("browser", BROWSERS)
def test_relaystate_too_long_dropped_by_idp(invoke, tmp_path, browser):
    long_relay = SP + "/deep/link?" + "x" * 100  # 136 bytes
    path = login_flow(browser, relay=long_relay, relay_back="", acs_status=302,
                      acs_location=SP + "/error?code=relaystate").write(tmp_path / "relay.har")
    result, doc = probe(invoke, path)
    assert result.exit_code == 3
    finding = find(doc, "har.saml.relaystate_too_long")
    assert finding["severity"] == "fail"
    assert finding["evidence"]["bytes"] == len(long_relay) and finding["evidence"]["limit"] == 80
    assert "x" * 20 not in result.stdout  # the value itself is not shown


def test_relaystate_too_long_but_returned_and_accepted_is_a_warning(invoke, tmp_path):
    long_relay = "y" * 81
    result, doc = probe(invoke, login_flow("firefox", relay=long_relay).write(tmp_path / "relay-ok.har"))
    assert result.exit_code == 4
    assert find(doc, "har.saml.relaystate_too_long")["severity"] == "warn"


def test_relaystate_of_80_bytes_is_fine(invoke, tmp_path):
    result, doc = probe(invoke, login_flow("chrome", relay="z" * 80).write(tmp_path / "relay80.har"))
    assert result.exit_code == 0, doc["findings"]


@pytest.mark.parametrize("browser", BROWSERS)
@pytest.mark.parametrize("samesite, shown", [("Lax", "SameSite=Lax"), (None, "no SameSite attribute, so SameSite=Lax")])
def test_session_cookie_lost_on_acs_post(invoke, tmp_path, browser, samesite, shown):
    path = login_flow(browser, samesite=samesite, cookie_sent=False, acs_status=302,
                      acs_location=SP + "/login?error=state").write(tmp_path / "cookie.har")
    result, doc = probe(invoke, path)
    assert result.exit_code == 3
    finding = find(doc, "har.saml.session_cookie_lost")
    assert finding["severity"] == "fail"
    assert "sp_state" in finding["title"] and shown in finding["title"]
    cookie = finding["evidence"]["cookies"][0]
    assert cookie["name"] == "sp_state" and cookie["samesite"] == samesite
    assert finding["evidence"]["cross_site"] is True
    assert "s3cr3tstate" not in result.stdout


def test_session_cookie_lost_with_error_page(invoke, tmp_path):
    path = login_flow("safari", samesite="Strict", cookie_sent=False, acs_status=500).write(tmp_path / "c500.har")
    result, doc = probe(invoke, path)
    assert result.exit_code == 3
    assert "SameSite=Strict" in find(doc, "har.saml.session_cookie_lost")["title"]


def test_lost_cookie_when_login_still_succeeds_is_a_warning(invoke, tmp_path):
    path = login_flow("chrome", samesite="Lax", cookie_sent=False).write(tmp_path / "cookie-ok.har")
    result, doc = probe(invoke, path)
    assert result.exit_code == 4
    assert find(doc, "har.saml.session_cookie_lost")["severity"] == "warn"


@pytest.mark.parametrize("browser", BROWSERS)
def test_expectations_apply_to_the_response_in_the_har(invoke, tmp_path, browser):
    path = login_flow(browser).write(tmp_path / "expect.har")
    result, doc = probe(invoke, path, "--expect-audience", "https://other-sp.test/", "--expect-destination",
                        "https://sp.test/acs/", "--expect-issuer", "https://idp.other/")
    assert result.exit_code == 3
    assert {"saml.audience.mismatch", "saml.destination.mismatch", "saml.issuer.mismatch"} <= fails(doc)
    assert "entry 3" in find(doc, "saml.audience.mismatch")["title"]


def test_expectations_check_id_tokens_not_access_tokens(invoke, tmp_path):
    def jwt(claims: dict) -> str:
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
        return f"{enc({'alg': 'RS256', 'kid': 'k'})}.{enc(claims)}.c2ln"

    exp = 1893456000 + 3600  # 2030-01-01T01:00:00Z
    id_token = jwt({"iss": "https://login.other/", "aud": "client-1", "nonce": "n", "exp": exp, "iat": exp - 3600})
    access = jwt({"iss": "https://api-issuer/", "aud": "api://backend", "scope": "read", "exp": exp})
    har = Har("chrome")
    har.add("POST", IDP + "/token", 200, mime="application/json",
            body=json.dumps({"id_token": id_token, "access_token": access}))
    result, doc = probe(invoke, har.write(tmp_path / "oidc.har"), "--expect-issuer",
                        "https://idp.example.net/.well-known/openid-configuration", "--expect-audience", "client-1")
    assert result.exit_code == 3
    assert fails(doc) == {"jwt.issuer.mismatch"}
    assert "id_token" in find(doc, "jwt.issuer.mismatch")["evidence"]["where"]


def test_idp_initiated_response_skips_flow_checks(invoke, tmp_path):
    har = Har("firefox")
    har.add("POST", ACS, 302, form={"SAMLResponse": signed_response(), "RelayState": ""}, origin=IDP,
            location=SP + "/app")
    result, doc = probe(invoke, har.write(tmp_path / "idp-init.har"))
    assert result.exit_code == 0, doc["findings"]
    assert "IdP-initiated" in doc["facts"]["saml_flow"]["note"]


def test_export_without_any_cookies_makes_no_cookie_claim(invoke, tmp_path):
    har = login_flow("chrome", samesite="Lax", cookie_sent=False, acs_status=400)
    for entry in har.entries:  # what a sanitised export leaves: no Cookie header, no cookies array
        entry["request"]["headers"] = [h for h in entry["request"]["headers"] if h["name"].lower() != "cookie"]
        entry["request"]["cookies"] = []
    result, doc = probe(invoke, har.write(tmp_path / "sanitised.har"))
    assert "har.saml.session_cookie_lost" not in ids(doc)
    assert "exported without cookies" in doc["facts"]["saml_flow"]["cookies_note"]


def test_brokered_login_matches_each_response_to_its_own_sp(invoke, tmp_path):
    """SP -> Entra-like broker (AuthnRequest _req1) -> federated IdP (the broker's own AuthnRequest _reqB)
    -> broker (response to _reqB) -> SP (response to _req1): no mismatch, although _reqB came last."""
    broker_acs = "https://login.broker.test/login.srf"
    har = Har("chrome")
    idp_url = f"{IDP}/sso?" + urlencode({"SAMLRequest": redirect_value(authn_request("_req1")), "RelayState": "r"})
    har.add("GET", SP + "/login", 302, location=idp_url, set_cookies=["sp_state=1; Path=/; Secure; SameSite=None"])
    har.add("GET", idp_url, 200)
    broker_request = authn_request("_reqB").replace(ACS, broker_acs).replace("https://sp.test/", "urn:broker")
    har.add("POST", "https://adfs.corp.test/adfs/ls/", 200, form={"SAMLRequest": b.b64(broker_request)},
            origin=IDP)
    federated = b.assertion(audience="urn:broker", recipient=broker_acs).replace('"_req1"', '"_reqB"')
    response = b.response(b.sign(federated, *b.make_cert()).decode(), destination=broker_acs)
    har.add("POST", broker_acs, 200, form={"SAMLResponse": b.b64(response.replace('"_req1"', '"_reqB"'))},
            origin="https://adfs.corp.test", body="<form method=post action='https://app.example.com/saml/acs'>")
    har.add("POST", ACS, 302, cookies={"sp_state": "1"}, form={"SAMLResponse": signed_response(), "RelayState": "r"},
            origin=IDP, location=SP + "/app")
    result, doc = probe(invoke, har.write(tmp_path / "broker.har"))
    assert "har.saml.inresponseto_mismatch" not in ids(doc), doc["findings"]
    assert doc["facts"]["saml_flow"] == {"authn_requests": 2, "responses": 2}


def test_idp_initiated_long_relaystate_accepted_is_a_warning(invoke, tmp_path):
    har = Har("safari")
    har.add("POST", ACS, 302, form={"SAMLResponse": signed_response(), "RelayState": SP + "/x?" + "q" * 90},
            origin=IDP, location=SP + "/x")
    result, doc = probe(invoke, har.write(tmp_path / "idp-init-relay.har"))
    assert result.exit_code == 4
    assert find(doc, "har.saml.relaystate_too_long")["severity"] == "warn"


def test_same_site_lost_cookie_is_not_blamed_on_samesite(invoke, tmp_path):
    har = login_flow("firefox", samesite="Lax", cookie_sent=False, acs_status=400)
    for entry in har.entries:
        for header in entry["request"]["headers"]:
            if header["name"] in ("Origin", "Referer"):
                header["value"] = header["value"].replace("idp.example.net", "login.example.com")
    result, doc = probe(invoke, har.write(tmp_path / "same-site.har"))
    finding = find(doc, "har.saml.session_cookie_lost")
    assert finding["evidence"]["cross_site"] is False
    assert "SameSite does not explain it" in finding["detail"]


def test_idp_certificate_judges_the_responses_in_the_har(invoke, tmp_path):
    from cryptography.hazmat.primitives import hashes, serialization

    _old_key, old = b.make_cert("idp.test signing", key_n=0)  # what signed_response() signs with
    _new_key, new = b.make_cert("idp.test signing 2030", key_n=1)
    pem = tmp_path / "sp-trusts.pem"
    pem.write_bytes(new.public_bytes(serialization.Encoding.PEM))
    path = login_flow("firefox").write(tmp_path / "rotated.har")
    result, doc = probe(invoke, path, "--idp-cert", str(pem))
    assert result.exit_code == 3
    finding = find(doc, "saml.signature.untrusted_cert")
    assert finding["title"].startswith("SAMLResponse in HAR entry 3")
    assert finding["evidence"]["published_sha256"] == [new.fingerprint(hashes.SHA256()).hex(":").upper()]
    meta = tmp_path / "idp.xml"
    meta.write_text(b.idp_entity("https://idp.test/", key_descriptors=[b.key_descriptor(old)]))
    result, doc = probe(invoke, path, "--idp-metadata", str(meta))
    assert result.exit_code == 0, doc["findings"]


def test_acs_post_without_recorded_body_is_still_checked_for_cookies(invoke, tmp_path):
    har = login_flow("chrome", samesite=None, cookie_sent=False, acs_status=400)
    del har.entries[3]["request"]["postData"]  # Chrome sometimes drops a navigation's form body
    result, doc = probe(invoke, har.write(tmp_path / "nobody.har"))
    assert result.exit_code == 3
    finding = find(doc, "har.saml.session_cookie_lost")
    assert finding["evidence"]["cookies"][0]["samesite"] is None
    assert "no SameSite attribute" in finding["title"]


@pytest.mark.parametrize("browser", BROWSERS)
def test_redirect_folded_into_one_entry_still_gives_the_authnrequest(invoke, tmp_path, browser):
    """Some exports keep the SP's 302 but not the request it leads to (the IdP GET): the AuthnRequest and
    the state cookie of that redirect are read from the redirect itself."""
    har = login_flow(browser, samesite="Lax", cookie_sent=False, request_id="_req7", acs_status=400,
                     relay="w" * 90)
    del har.entries[1]  # the GET to the IdP with the SAMLRequest
    result, doc = probe(invoke, har.write(tmp_path / "folded.har"))
    assert result.exit_code == 3
    assert {"har.saml.session_cookie_lost", "har.saml.inresponseto_mismatch",
            "har.saml.relaystate_too_long"} <= ids(doc, "fail")
    assert find(doc, "har.saml.inresponseto_mismatch")["evidence"]["request_id"] == "_req7"
    assert find(doc, "har.saml.relaystate_too_long")["evidence"]["entries"] == [0, 2]


def test_provisional_headers_of_the_acs_post_make_no_cookie_claim(invoke, tmp_path):
    har = login_flow("chrome", samesite="Lax", cookie_sent=False, acs_status=400)
    acs = har.entries[3]["request"]
    acs["headers"] = [h for h in acs["headers"] if h["name"] in ("origin", "referer", "content-type")]
    result, doc = probe(invoke, har.write(tmp_path / "provisional.har"))
    assert "har.saml.session_cookie_lost" not in ids(doc)
    assert "provisional" in doc["facts"]["saml_flow"]["provisional_headers"]
