"""An adversarial corpus for the redactor: captures and files built from the formats' specifications
(HAR 1.2 as Chrome, Firefox and Safari write it, SAML 2.0 POST binding, OIDC form_post, k8s, docker,
.NET config, .env, shell history, support logs), each with planted fake values.

Every case says which planted values must NOT be readable in the output (`secrets`) and which values
an engineer needs and that MUST still be there (`keep`). tests/leakcheck.py does the searching.
"""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse
import zlib
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    data: bytes
    secrets: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def b64url(data: str | bytes) -> str:
    return base64.urlsafe_b64encode(data.encode() if isinstance(data, str) else data).rstrip(b"=").decode()


def jwt(claims: dict, header: dict | None = None) -> str:
    head = header or {"alg": "RS256", "kid": "kid-7QfZ", "typ": "JWT"}
    return f"{b64url(json.dumps(head))}.{b64url(json.dumps(claims))}.{b64url(bytes(range(40, 104)))}"


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# ---------------------------------------------------------------- planted values (all fake)

EMAIL = "marguerite.fennimore@corp-example.test"
EMAIL2 = "theo.quartermain@corp-example.test"
IDN_EMAIL = "jürgen.weiß@bücher-example.test"
GIVEN, FAMILY = "Marguerite", "Fennimore"  # rare names: found through the SAML/JWT claims they come in
OTHER_PERSON = "Robert Miller"  # only ever in prose: found by the NER model
PHONE_E164 = "+447911123456"
PHONE_US = "(415) 555-0173"
EMPLOYEE_NO = "EMP-88231907"
SESSION_INDEX = "_be9967abd904ddcae3c0eb4189adbe3f71e327cf93"
PASSWORD = "Tr0ub4dor&3-horse"
DB_PASS = "Zq9!mPass-db-4471"
SMTP_PASS = "Smtp$ecret-9931"
CLIENT_SECRET = "cs_9f8Kq2LmN7pR4tVx1Zb6"
AUTH_CODE = "SplxlOBeZQQYbYS6WxSbIA"
STATE = "af0ifjsldkj-Xq81"
NONCE = "n-0S6_WzA2Mj-77"
CSRF = "k3J9d8Fh2LmQ0pRs7TuVw1XyZ"
CSRF_META = "Mx7Rt2Qp9Lk4Jh6Gf3Ds8Az1"
SSWS = "00Qm7xYzT3Lk9WvBnR2pHs5Df8Gj1Kc4"
SPLUNK = "b0b7c8d2-1a2b-4c3d-9e8f-7a6b5c4d3e2f"
SAS_SIG = "Xk9L2mN8pQ4rS7tV1wY3zA6bC0dE5fG8hJ2kL4mN6p0%3D"
SLACK_HOOK_SECRET = "XxYyZz0123456789AbCdEfGh"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SB_KEY = "Xq3Rk8Lp2Mn7Vt4Wz9Ys1Bh6Jd0Fg5Cu2Ea8="
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SIG = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
DIGEST_RESPONSE = "6629fae49393a05397450978507c4ef1"
DIGEST_NONCE = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
GOOG_SIG = "3b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c"
REFRESH = "rt.8Hq2Xk9LmN4pR7sT1vW3yZ6bC0dE5fG"
SESSION_STATE = "9b2c4e1f-session-state-7d8a.Q1w2E3r4"
COOKIE_SID = "s%3AJ8k2Lm9Qp4Rt7Vw1Xy3Zb6Cd0Ef5Gh"
GOOGLE_API_KEY = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
GH_TOKEN = "ghp_1A2b3C4d5E6f7G8h9I0jK1lM2nO3pQ4rS5tU"
DOCKER_PASS = "d0ck3r-Hub-P4ss!"
MYSQL_PASS = "MyS3cr3tSql"
REDIS_PASS = "r3d1s-Requ1re-P4ss"
CURL_PASS = "CurlP4ss-778"
PG_PASS = "pgPass-5512x"
CARD = "4111 1111 1111 1111"
CVC = "737"
IBAN = "GB82WEST12345698765432"
DOB = "1984-03-17"
MAC = "3C:22:FB:7A:19:E4"
CLIENT_IP = "198.51.100.7"
FORWARDED_IP = "203.0.113.45"
ADDRESS = "742 Evergreen Terrace"
JWE = ".".join([b64url('{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"enc-1"}'), b64url(bytes(range(7, 71))),
                b64url(bytes(range(1, 13))), b64url(bytes(range(90, 154))), b64url(bytes(range(3, 19)))])
K8S_SECRET_PASS = "k8s-Secret-Pa55-Value"
PASSCODE = "774411"
PRIVATE_KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
PEM = f"-----BEGIN PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\nMIIEpAIBAAKCAQEA0ZPr5x\n-----END PRIVATE KEY-----\n"

# what engineers need
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CORRELATION = "0f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f"
SERVER_IP = "93.184.215.14"
ISSUER = "https://login.idp-example.test/oauth2/default"
AUDIENCE = "api://diag-audience-42"
ROLE_ARN = "arn:aws:iam::123456789012:role/SupportEngineer"


def access_token() -> str:
    return jwt({"iss": ISSUER, "aud": AUDIENCE, "exp": 1893456000, "iat": 1893452400, "nbf": 1893452400,
                "scope": "openid profile orders.read", "sub": "00u1a2b3c4d5e6f7g8h9", "email": EMAIL,
                "name": f"{GIVEN} {FAMILY}", "https://corp-example.test/claims/employee": EMPLOYEE_NO})


def saml_response() -> str:
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_resp1" Version="2.0" IssueInstant="2030-01-01T00:00:00Z" Destination="https://sp.app-example.test/saml/acs" InResponseTo="_req1">
  <saml:Issuer>https://idp.corp-example.test/adfs/services/trust</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  <saml:Assertion ID="_assert1" Version="2.0" IssueInstant="2030-01-01T00:00:00Z">
    <saml:Issuer>https://idp.corp-example.test/adfs/services/trust</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{EMAIL}</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData Address="{CLIENT_IP}" NotOnOrAfter="2030-01-01T00:05:00Z" Recipient="https://sp.app-example.test/saml/acs"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="2030-01-01T00:00:00Z" NotOnOrAfter="2030-01-01T01:00:00Z">
      <saml:AudienceRestriction><saml:Audience>urn:amazon:webservices</saml:Audience></saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="2030-01-01T00:00:00Z" SessionIndex="{SESSION_INDEX}"/>
    <saml:AttributeStatement>
      <saml:Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"><saml:AttributeValue>{GIVEN}</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"><saml:AttributeValue>{FAMILY}</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="mobilePhone"><saml:AttributeValue>{PHONE_E164}</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="employeeNumber"><saml:AttributeValue>{EMPLOYEE_NO}</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>{ROLE_ARN},arn:aws:iam::123456789012:saml-provider/CorpIdP</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/SessionDuration"><saml:AttributeValue>28800</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="department"><saml:AttributeValue>Platform Reliability</saml:AttributeValue></saml:Attribute>
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>"""
    return b64(xml)


def idp_autopost_page() -> str:
    return f"""<!DOCTYPE html><html><head><title>Working...</title>
<meta name="csrf-token" content="{CSRF_META}"></head>
<body onload="document.forms[0].submit()">
<form method="POST" name="hiddenform" action="https://sp.app-example.test/saml/acs">
<input type="hidden" name="SAMLResponse" value="{saml_response()}" />
<input type="hidden" name="RelayState" value="/dashboard?tab=orders" />
<input type="hidden" name="__RequestVerificationToken" value="{CSRF}" />
<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit" /></noscript>
</form></body></html>"""


def form_post_page() -> str:
    return f"""<html><head><title>Submit This Form</title></head>
<body onload="javascript:document.forms[0].submit()">
<form method="post" action="https://app.app-example.test/signin-oidc">
<input type="hidden" name="code" value="{AUTH_CODE}"/>
<input type="hidden" name="state" value="{STATE}"/>
<input type="hidden" name="session_state" value="{SESSION_STATE}"/>
</form></body></html>"""


def _entry(method: str, url: str, status: int, *, req_headers=(), resp_headers=(), query=None, post=None,
           content=None, extra=None, shape="chrome") -> dict:
    parsed = urllib.parse.urlsplit(url)
    headers = [{"name": n, "value": v} for n, v in req_headers]
    if shape == "chrome":
        path = parsed.path + ("?" + parsed.query if parsed.query else "")
        headers = [{"name": ":authority", "value": parsed.netloc}, {"name": ":method", "value": method},
                   {"name": ":path", "value": path}, {"name": ":scheme", "value": "https"}] + headers
    if query is None:
        query = [{"name": k, "value": v} for k, v in urllib.parse.parse_qsl(parsed.query)]
        if shape == "firefox":  # Firefox keeps the query values as they were sent: percent-encoded
            query = [{"name": k, "value": q(v)} for k, v in urllib.parse.parse_qsl(parsed.query)]
    entry = {
        "startedDateTime": "2030-01-01T00:00:00.000Z", "time": 123.4,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/2" if shape == "chrome" else "HTTP/1.1",
                    "headers": headers, "queryString": query, "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "OK" if status == 200 else "", "httpVersion": "HTTP/2",
                     "headers": [{"name": n, "value": v} for n, v in resp_headers], "cookies": [],
                     "content": content or {"size": 0, "mimeType": "text/plain", "text": ""},
                     "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"blocked": 1.5, "dns": -1, "connect": -1, "send": 0.2, "wait": 98.7,
                                 "receive": 3.1, "ssl": -1},
    }
    if post is not None:
        entry["request"]["postData"] = post
    if shape == "chrome":
        entry.update({"_initiator": {"type": "other"}, "_priority": "VeryHigh", "_resourceType": "document",
                      "serverIPAddress": SERVER_IP, "connection": "443"})
    elif shape == "firefox":
        entry.update({"serverIPAddress": SERVER_IP, "connection": "443", "pageref": "page_1"})
    else:  # safari
        entry.update({"pageref": "page_0", "_fetchType": "Network Load"})
    entry.update(extra or {})
    return entry


def _har(entries: list, creator: str, title: str) -> bytes:
    doc = {"log": {"version": "1.2", "creator": {"name": creator, "version": "1.0"},
                   "pages": [{"startedDateTime": "2030-01-01T00:00:00.000Z", "id": "page_1", "title": title,
                              "pageTimings": {"onContentLoad": 200.1, "onLoad": 350.2}}],
                   "entries": entries}}
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()


def chrome_sso_har() -> Case:
    authorize = (f"https://login.idp-example.test/oauth2/default/v1/authorize?client_id=0oa5diagkit&response_type=code"
                 f"&scope=openid%20profile&redirect_uri={q('https://app.app-example.test/callback')}"
                 f"&state={STATE}&nonce={NONCE}&login_hint={q(EMAIL)}")
    grpc = b"\x00\x00\x00\x00\x2a\x0a\x26" + EMAIL2.encode() + b"\x10\x01\xff\xfe"
    readable = json.dumps({"owner": EMAIL2, "status": "ok", "trace_id": TRACE_ID}).encode()
    entries = [
        _entry("GET", authorize, 302, resp_headers=[
            ("location", f"https://app.app-example.test/callback?code={AUTH_CODE}&state={STATE}"),
            ("x-correlation-id", CORRELATION)]),
        _entry("GET", "https://idp.corp-example.test/adfs/ls/?SAMLRequest=fVJNj9owEL3zK6zcgwL", 200,
               content={"size": 5000, "mimeType": "text/html", "text": idp_autopost_page()}),
        _entry("POST", "https://sp.app-example.test/saml/acs", 302,
               req_headers=[("content-type", "application/x-www-form-urlencoded"),
                            ("cookie", f"connect.sid={COOKIE_SID}; theme=dark")],
               post={"mimeType": "application/x-www-form-urlencoded",
                     "text": f"SAMLResponse={q(saml_response())}&RelayState=%2Fdashboard",
                     "params": [{"name": "SAMLResponse", "value": q(saml_response())},
                                {"name": "RelayState", "value": "%2Fdashboard"}]},
               resp_headers=[("set-cookie", f"connect.sid={COOKIE_SID}; Path=/; HttpOnly; Secure"),
                             ("location", "/dashboard")]),
        _entry("GET", "https://login.idp-example.test/oauth2/default/v1/authorize?response_mode=form_post", 200,
               content={"size": 900, "mimeType": "text/html", "text": form_post_page()}),
        _entry("POST", "https://login.idp-example.test/oauth2/default/v1/token", 200,
               post={"mimeType": "application/x-www-form-urlencoded",
                     "text": f"grant_type=authorization_code&code={AUTH_CODE}&client_id=0oa5diagkit"
                             f"&client_secret={CLIENT_SECRET}&redirect_uri=https%3A%2F%2Fapp.app-example.test%2Fcallback"},
               content={"size": 300, "mimeType": "application/json",
                        "text": json.dumps({"token_type": "Bearer", "expires_in": 3600, "access_token": access_token(),
                                            "refresh_token": REFRESH, "id_token": access_token(),
                                            "scope": "openid profile"})}),
        _entry("GET", "https://api.app-example.test/v2/orders/ORD-20300101-5531?state=active", 200,
               req_headers=[("authorization", f"Bearer {access_token()}"), ("traceparent",
                            f"00-{TRACE_ID}-00f067aa0ba902b7-01"), ("x-forwarded-for", f"{FORWARDED_IP}, 10.0.0.3")],
               content={"size": 200, "mimeType": "application/json",
                        "text": json.dumps({"order": "ORD-20300101-5531", "order_number": "771234567890",
                                            "status": "shipped", "note": f"call {PHONE_US} about delivery",
                                            "ship_to": {"name": f"{GIVEN} {FAMILY}", "street": ADDRESS}})}),
        _entry("GET", "https://login.microsoftonline.test/error?code=70008", 400, content={
            "size": 100, "mimeType": "application/json",
            "text": json.dumps({"error": "invalid_grant", "error_codes": [70008],
                                "error_description": "AADSTS70008: The provided authorization code or refresh "
                                                     "token has expired due to inactivity.",
                                "trace_id": CORRELATION, "correlation_id": CORRELATION})}),
        _entry("POST", "https://grpc.app-example.test/orders.v1.Orders/Get", 200,
               req_headers=[("content-type", "application/grpc-web+proto")],
               content={"size": len(grpc), "mimeType": "application/grpc-web+proto", "text": b64(grpc),
                        "encoding": "base64"}),
        _entry("GET", "https://files.app-example.test/export", 200,
               content={"size": len(readable), "mimeType": "application/octet-stream", "text": b64(readable),
                        "encoding": "base64"}),
        _entry("GET", "wss://ws.app-example.test/socket", 101, extra={"_resourceType": "websocket",
               "_webSocketMessages": [
                   {"type": "send", "time": 1.0, "opcode": 1,
                    "data": json.dumps({"auth": {"token": GH_TOKEN}, "user": EMAIL2})},
                   {"type": "receive", "time": 1.1, "opcode": 1,
                    "data": json.dumps({"event": "hello", "contact": f"{GIVEN} {FAMILY}", "trace_id": TRACE_ID})},
                   {"type": "receive", "time": 1.2, "opcode": 2, "data": b64(b"\x08\x96\x01" + EMAIL.encode())}]}),
    ]
    secrets = [EMAIL, EMAIL2, STATE, NONCE, AUTH_CODE, CSRF, CSRF_META, SESSION_INDEX, PHONE_E164, EMPLOYEE_NO,
               GIVEN, FAMILY, CLIENT_IP, SESSION_STATE, CLIENT_SECRET, REFRESH, COOKIE_SID, FORWARDED_IP, PHONE_US,
               ADDRESS, GH_TOKEN, "00u1a2b3c4d5e6f7g8h9"]
    keep = [ISSUER, AUDIENCE, "orders.read", "kid-7QfZ", "RS256", "1893456000", ROLE_ARN, "28800",
            "Platform Reliability", TRACE_ID, CORRELATION, SERVER_IP, "70008", "state=active",
            "https://idp.corp-example.test/adfs/services/trust", "invalid_grant", "ORD-20300101-5531",
            "771234567890", "x-correlation-id", "traceparent", "connect.sid", "/v2/orders/", "RelayState"]
    return Case("chrome-sso.har", _har(entries, "WebInspector", f"Profile of {GIVEN} {FAMILY}"), secrets, keep)


def firefox_api_har() -> Case:
    implicit = (f"https://app.app-example.test/callback#access_token={access_token()}&token_type=Bearer"
                f"&state={STATE}&session_state={q(SESSION_STATE)}")
    entries = [
        _entry("GET", f"https://api.app-example.test/v1/lookup?email={q(EMAIL)}&to={q(PHONE_E164)}&page=2", 200,
               shape="firefox", req_headers=[("Authorization", f"SSWS {SSWS}"), ("X-Request-ID", CORRELATION)]),
        _entry("GET", "https://splunk.app-example.test:8089/services/search", 200, shape="firefox",
               req_headers=[("Authorization", f"Splunk {SPLUNK}")]),
        _entry("GET", "https://legacy.app-example.test/dir/index.html", 200, shape="firefox",
               req_headers=[("Authorization", f'Digest username="{EMAIL2}", realm="legacy@app-example.test", '
                                              f'nonce="{DIGEST_NONCE}", uri="/dir/index.html", qop=auth, '
                                              f'nc=00000001, cnonce="0a4f113b", response="{DIGEST_RESPONSE}", '
                                              f'opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=SHA-256')]),
        _entry("GET", "https://bucket.s3.amazonaws.test/report.csv", 200, shape="firefox",
               req_headers=[("Authorization", f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/20300101/us-east-1/s3/"
                                              f"aws4_request, SignedHeaders=host;range;x-amz-date, Signature={AWS_SIG}")]),
        _entry("GET", f"https://storage.googleapis.test/b/o.pdf?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature="
                      f"{GOOG_SIG}&X-Goog-Expires=900", 200, shape="firefox"),
        _entry("GET", f"https://acct.blob.core.windows.test/c/f.txt?sv=2021-08-06&se=2030-01-02&sr=b&sp=r&sig={SAS_SIG}",
               200, shape="firefox", req_headers=[("Authorization", f"SharedAccessSignature sr=x&sig={SAS_SIG}&se=1")]),
        _entry("POST", f"https://hooks.slack.test/services/T0123ABCD/B0456EFGH/{SLACK_HOOK_SECRET}", 200,
               shape="firefox", post={"mimeType": "application/json", "text": json.dumps({"text": "deploy done"})}),
        _entry("GET", implicit, 200, shape="firefox",
               req_headers=[("Referer", f"https://login.idp-example.test/authorize?login_hint={q(EMAIL)}"),
                            ("Cookie", f"sid={COOKIE_SID}; lang=en")]),
        _entry("POST", "https://login.idp-example.test/api/v1/authn", 200, shape="firefox",
               post={"mimeType": "application/x-www-form-urlencoded",
                     "text": f"username={q(EMAIL)}&pass={q(PASSWORD)}&passcode={PASSCODE}",
                     "params": [{"name": "username", "value": q(EMAIL)}, {"name": "pass", "value": q(PASSWORD)},
                                {"name": "passcode", "value": PASSCODE}]},
               content={"size": 50, "mimeType": "application/json",
                        "text": json.dumps({"status": "MFA_REQUIRED", "stateToken": "00abcStateTok9xYz8Qw",
                                            "_embedded": {"user": {"profile": {"login": EMAIL, "firstName": GIVEN,
                                                                                "lastName": FAMILY}}}})}),
        _entry("GET", f"https://maps.googleapis.test/maps/api/geocode/json?key={GOOGLE_API_KEY}&address=x", 200,
               shape="firefox"),
        _entry("POST", "https://api.app-example.test/graphql", 200, shape="firefox",
               post={"mimeType": "application/json",
                     "text": json.dumps({"query": "mutation Login($p: String!) { login(password: $p) { ok } }",
                                         "variables": {"email": EMAIL, "p": PASSWORD}})},
               content={"size": 60, "mimeType": "application/json",
                        "text": json.dumps({"data": {"viewer": {"apiToken": JWE, "dob": DOB}}})}),
    ]
    secrets = [EMAIL, EMAIL2, PHONE_E164, SSWS, SPLUNK, DIGEST_RESPONSE, DIGEST_NONCE, AWS_KEY_ID, AWS_SIG,
               GOOG_SIG, SAS_SIG.replace("%3D", ""), SLACK_HOOK_SECRET, STATE, SESSION_STATE, COOKIE_SID, PASSWORD,
               PASSCODE, "00abcStateTok9xYz8Qw", GIVEN, FAMILY, GOOGLE_API_KEY, JWE.split(".")[1], DOB]
    keep = ['realm="legacy@app-example.test"', "qop=auth", 'uri="/dir/index.html"', "algorithm=SHA-256",
            "AWS4-HMAC-SHA256", "20300101/us-east-1/s3/aws4_request", "SignedHeaders=host;range;x-amz-date",
            "SSWS", "Splunk", "Digest", "GOOG4-RSA-SHA256", "X-Goog-Expires", "MFA_REQUIRED", "T0123ABCD",
            "hooks.slack.test/services/", ISSUER, "page", CORRELATION, SERVER_IP, "deploy done"]
    return Case("firefox-api.har", _har(entries, "Firefox", "API console"), secrets, keep)


def safari_har() -> Case:
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"card_cvc\"\r\n\r\n{CVC}\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"new_password\"\r\n\r\n{PASSWORD}\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"card_number\"\r\n\r\n{CARD}\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nplease hurry\r\n"
                 f"--{boundary}--\r\n")
    settings = {"settings": [{"name": "SMTP_PASS", "value": SMTP_PASS}, {"name": "timeout", "value": "30"},
                             {"key": "AccountKey", "value": ACCOUNT_KEY}],
                "device": {"mac": MAC, "src_ip": CLIENT_IP},
                "Notes": f"Customer {OTHER_PERSON} lives at {ADDRESS}, Springfield; born {DOB}."}
    entries = [
        _entry("POST", "https://shop.app-example.test/checkout", 200, shape="safari",
               req_headers=[("Content-Type", f"multipart/form-data; boundary={boundary}")],
               post={"mimeType": f"multipart/form-data; boundary={boundary}", "text": multipart}),
        _entry("PUT", "https://admin.app-example.test/api/settings", 200, shape="safari",
               post={"mimeType": "application/json", "text": json.dumps(settings)},
               content={"size": 10, "mimeType": "text/event-stream",
                        "text": f"event: update\ndata: {json.dumps({'user': EMAIL, 'code': 'E1042'})}\n\n"}),
        _entry("GET", "https://app.app-example.test/account", 200, shape="safari",
               content={"size": 100, "mimeType": "text/html",
                        "text": f"<html><head><meta name=\"_csrf\" content=\"{CSRF_META}\"></head><body>"
                                f"<p>Signed in as {EMAIL.replace('@', '&#64;')}</p>"
                                f"<form action=\"/account\"><input type=\"hidden\" name=\"authenticity_token\" "
                                f"value=\"{CSRF}\"><input name=\"phone\" value=\"{PHONE_US}\"></form>"
                                f"<script>window.__CONFIG__ = {{\"apiKey\": \"{GOOGLE_API_KEY}\", "
                                f"\"idp\": \"{ISSUER}\"}};</script></body></html>"}),
    ]
    secrets = [CVC + "\r", PASSWORD, CARD, SMTP_PASS, ACCOUNT_KEY, MAC, CLIENT_IP, "Robert", "Miller", ADDRESS, DOB,
               EMAIL, CSRF_META, CSRF, PHONE_US, GOOGLE_API_KEY]
    keep = ["timeout", "please hurry", "E1042", "comment", ISSUER, "SMTP_PASS", "AccountKey", "card_cvc"]
    return Case("safari-shop.har", _har(entries, "WebKit Web Inspector", "Checkout"), secrets, keep)


def config_files() -> list[Case]:
    service_account = {"type": "service_account", "project_id": "diag-project-31337", "private_key_id":
                       "3f1e2d4c5b6a79880716253443f2e1d0c9b8a7f6", "private_key": PEM,
                       "client_email": "robot@diag-project-31337.iam.gserviceaccount.test", "client_id": "1122334455",
                       "token_uri": "https://oauth2.googleapis.test/token"}
    docker = {"auths": {"registry.app-example.test": {"auth": b64(f"deployer:{DOCKER_PASS}")}},
              "credsStore": "desktop"}
    k8s = f"""apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
  namespace: payments
type: Opaque
data:
  username: {b64('payments_app')}
  password: {b64(K8S_SECRET_PASS)}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  template:
    spec:
      containers:
      - name: api
        image: registry.app-example.test/payments:1.4.2
        env:
        - name: DB_PASS
          value: "{DB_PASS}"
        - name: LOG_LEVEL
          value: debug
        - name: STRIPE_KEY
          value: sk_live_51Hx0aB2cD3eF4gH5iJ6kL7mN8
"""
    webconfig = f"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <appSettings>
    <add key="SmtpPassword" value="{SMTP_PASS}" />
    <add key="SmtpHost" value="smtp.app-example.test" />
  </appSettings>
  <connectionStrings>
    <add name="Main" connectionString="Server=db.app-example.test;Database=Orders;User Id=sa;Password={DB_PASS};" providerName="System.Data.SqlClient" />
    <add name="Storage" connectionString="DefaultEndpointsProtocol=https;AccountName=diagacct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net" />
  </connectionStrings>
  <ldap><bindUser>svc_ldap</bindUser><password>{PG_PASS}</password></ldap>
</configuration>
"""
    env = f"""# app settings
DATABASE_URL=postgres://app:{PG_PASS}@db.app-example.test:5432/orders
DB_PASS={DB_PASS}
SERVICEBUS=Endpoint=sb://diag.servicebus.windows.test/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={SB_KEY}
AZURE_STORAGE=DefaultEndpointsProtocol=https;AccountName=diagacct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net
GITHUB_TOKEN={GH_TOKEN}
LOG_LEVEL=info
ADMIN_EMAIL={IDN_EMAIL}
"""
    return [
        Case("service-account.json", json.dumps(service_account, indent=2).encode(),
             [PRIVATE_KEY_BODY, "3f1e2d4c5b6a79880716253443f2e1d0c9b8a7f6"],
             ["service_account", "diag-project-31337", "https://oauth2.googleapis.test/token", "client_email"]),
        Case("docker-config.json", json.dumps(docker).encode(), [DOCKER_PASS], ["registry.app-example.test", "desktop"]),
        Case("k8s.yaml", k8s.encode(), [K8S_SECRET_PASS, DB_PASS, "sk_live_51Hx0aB2cD3eF4gH5iJ6kL7mN8"],
             ["db-credentials", "payments:1.4.2", "LOG_LEVEL", "debug", "DB_PASS", "Opaque"]),
        Case("web.config.xml", webconfig.encode(), [SMTP_PASS, DB_PASS, ACCOUNT_KEY, PG_PASS],
             ["smtp.app-example.test", "SmtpPassword", "Server=db.app-example.test", "AccountName=diagacct",
              "EndpointSuffix=core.windows.net", "System.Data.SqlClient"]),
        Case("app.env", env.encode(), [PG_PASS, DB_PASS, SB_KEY, ACCOUNT_KEY, GH_TOKEN, IDN_EMAIL],
             ["db.app-example.test:5432", "SharedAccessKeyName=RootManageSharedAccessKey", "LOG_LEVEL=info",
              "AccountName=diagacct", "sb://diag.servicebus.windows.test/"]),
    ]


def console_and_logs() -> list[Case]:
    shell = f"""$ curl -u admin:{CURL_PASS} https://api.app-example.test/health
$ docker login -u deployer -p {DOCKER_PASS} registry.app-example.test
$ mysql -h db.app-example.test -u root -p{MYSQL_PASS} orders
$ redis-server --port 6380 --requirepass {REDIS_PASS}
$ psql "postgresql://app:{PG_PASS}@db.app-example.test/orders"
$ ./deploy.sh --password {PASSWORD} --region eu-west-1
$ docker run -p 8080:80 nginx
"""
    log = f"""2030-01-01T00:00:01Z INFO request_id={CORRELATION} user={EMAIL} logged in from {CLIENT_IP}
2030-01-01T00:00:02Z WARN token validation failed for client 0oa5diagkit: signature expired (code 70008)
2030-01-01T00:00:03Z ERROR Access denied for user 'app'@'10.0.0.5' (using password: YES)
2030-01-01T00:00:04Z INFO sms sent to={PHONE_E164} status=queued order=771234567890
2030-01-01T00:00:05Z INFO firewall src_ip:{FORWARDED_IP} dst_ip:{SERVER_IP} action=allow
2030-01-01T00:00:06Z INFO device {MAC} registered; contact {IDN_EMAIL}
2030-01-01T00:00:07Z INFO payment card={CARD} iban={IBAN} dob={DOB}
2030-01-01T00:00:08Z DEBUG Authorization: Bearer {access_token()}
2030-01-01T00:00:09Z INFO connected to {SERVER_IP}:443 in 12 ms trace={TRACE_ID}
2030-01-01T00:00:10Z INFO password reset requested, new password: {PASSWORD}
2030-01-01T00:00:11Z INFO user phone {PHONE_US}; shipping to {ADDRESS}, Springfield
2030-01-01T00:00:12Z INFO api_key={GOOGLE_API_KEY} webhook=https://hooks.slack.test/services/T0123ABCD/B0456EFGH/{SLACK_HOOK_SECRET}
"""
    return [
        Case("shell-history.txt", shell.encode(), [CURL_PASS, DOCKER_PASS, MYSQL_PASS, REDIS_PASS, PG_PASS, PASSWORD],
             ["curl -u", "docker login", "mysql -h db.app-example.test", "--requirepass", "-p 8080:80",
              "--region eu-west-1", "redis-server --port 6380"]),
        Case("support.log", log.encode(), [EMAIL, CLIENT_IP, PHONE_E164, FORWARDED_IP, MAC, IDN_EMAIL, CARD, IBAN,
                                           DOB, PASSWORD, PHONE_US, ADDRESS, GOOGLE_API_KEY, SLACK_HOOK_SECRET,
                                           "00u1a2b3c4d5e6f7g8h9"],
         [CORRELATION, "token validation failed", "(using password: YES)", "code 70008", "771234567890",
          f"connected to {SERVER_IP}:443", TRACE_ID, f"dst_ip:{SERVER_IP}", "status=queued", ISSUER]),
    ]


TF_RESULT = "q8#Lm2!xR9vTkw"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Kp2Lm"
AWS_SECRET2 = "Qz7Lm2Np9Rt4Vw8Xy1Bc5Df0Gh3Jk6Ls+Mn"
KC_SESSION = "25e60089-3e4f-4c1a-9b7d-aa11bb22cc33"
KC_CODE_ID = "7c1e5a2b-9d3f-4e8a-b6c4-d2e0f1a3b5c7"
VALIDATION_KEY = "3F1D59A8B7C6D5E4F3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B3C2D1E0"
DECRYPTION_KEY = "5A71E4B3C2D1E0F9A8B7C6D5E4F3A2B1C0D9E8F7A6B5C4D3"
JWT_SIGNING_KEY = "dwc8aqu8Xk29LmQp77ZtRv41"
CF_COOKIE = "d4ce68aa11bb22cc33dd44ee55ff667781234567"
CDP_SID = "da0f64aa11bb22cc33dd44ee55ff66778"
CUSTOMER = "Hallyana Bragante"
CPF = "111.444.777-35"
BINARY_SECRET = "23crxceptr4c2xfeptr4c"


FLOW_CTX = "rQQIARAAhZK9TwNBEMV3kYKCCIUEJRISBc2R3bvbvd2d0kTEkl4cjJE1kS7"
FLOW_TOKEN = "AQABAAEAAAD--DLA3VO7QrddgJg7WevrAgMBAAIA9P1x2fvA1vc14jmZ"
CANARY = "PAQABAQIAAAD9vc14jmZCFFs3MJhxDAOKLHLQd3JSGTd"
RAPT = "AEjHL4PLrb3P59evCpsV2CuN72Bd_-Yede4h6ddUHg5g"


def sign_in_flow_har() -> Case:
    """An Entra-style password sign-in and a Google-style consent: the flow's opaque values travel under names
    no list holds (ctx, flowToken, canary, rapt), beside a public client id and a PKCE challenge."""
    login = "https://login.idp-example.test/common/login"
    form = (f"login={q(EMAIL)}&passwd={q(PASSWORD)}&ctx={FLOW_CTX}&flowToken={FLOW_TOKEN}&canary={q(CANARY)}"
            f"&hpgrequestid={CORRELATION}&i19=1234")
    params = [{"name": k, "value": v} for k, v in urllib.parse.parse_qsl(form)]
    consent = (f"https://accounts.idp-example.test/signin/oauth/consent?authuser=0&client_id=0oa5Diagkit7App9Client"
               f"&code_challenge=NGJXwmQ2k9Lp0Zr8TqAEjHL4MxNGJXwmQ2k9Lp0Zr8Tq&rapt={RAPT}&hl=en-GB")
    entries = [_entry("POST", login, 200, post={"mimeType": "application/x-www-form-urlencoded", "text": form,
                                                "params": params}),
               _entry("GET", consent, 200)]
    return Case("sign-in-flow.har", _har(entries, "WebInspector", "Sign in"),
                [EMAIL, PASSWORD, FLOW_CTX, FLOW_TOKEN, CANARY, RAPT],
                [CORRELATION, "0oa5Diagkit7App9Client", "NGJXwmQ2k9Lp0Zr8TqAEjHL4MxNGJXwmQ2k9Lp0Zr8Tq", "i19=1234",
                 "hl=en-GB", "/common/login"])


def pastes_and_browser_logs() -> list[Case]:
    """What customers paste and what browsers log besides HAR: an AWS credentials file (no extension, INI),
    a Keycloak event log line with escaped quotes, a SAMLResponse posted with line breaks, .NET machine keys,
    appsettings, a Chrome DevTools Protocol log, a customer record, YAML with a !!binary secret."""
    credentials = f"""[default]
aws_access_key_id = {AWS_KEY_ID}
aws_secret_access_key = {AWS_SECRET}
region = eu-west-1

[profile support]
aws_secret_access_key: {AWS_SECRET2}
output = json
"""
    keycloak = (f'2030-01-01 10:00:01,123 WARN  [org.keycloak.events] (executor-thread-1) type=LOGIN_ERROR, '
                f'realmId=acme, clientId=portal, userId=null, ipAddress={CLIENT_IP}, error=invalid_user_credentials, '
                f'auth_method=openid-connect, code_id=\\"{KC_CODE_ID}\\", username=\\"{EMAIL}\\", '
                f'sessionId=\\"{KC_SESSION}\\", redirect_uri=https://portal.app-example.test/cb\n')
    wrapped = saml_response()
    saml_post = "SAMLResponse as the IdP posted it:\n" + "\n".join(wrapped[i:i + 76] for i in range(0, len(wrapped), 76)) + "\n"
    machine_key = f"""<?xml version="1.0"?>
<configuration>
  <system.web>
    <machineKey validationKey="{VALIDATION_KEY}" decryptionKey="{DECRYPTION_KEY}" validation="HMACSHA256" decryption="AES" />
  </system.web>
</configuration>
"""
    appsettings = {"Jwt": {"Key": JWT_SIGNING_KEY, "Issuer": ISSUER, "Audience": AUDIENCE},
                   "Logging": {"LogLevel": {"Default": "Information"}}}
    cdp = [{"method": "Network.responseReceivedExtraInfo", "params": {
        "requestId": "1000.42", "statusCode": 101, "headersText": "HTTP/1.1 101 Switching Protocols\r\n",
        "blockedCookies": [{"blockedReasons": ["SameSiteUnspecifiedTreatedAsLax"],
                            "cookieLine": f"__cfduid={CF_COOKIE}; expires=Fri, 28-Aug-30 09:00:00 GMT; path=/; HttpOnly"}]}},
           {"method": "Network.requestWillBeSentExtraInfo", "params": {
               "requestId": "1000.43", "associatedCookies": [{"blockedReasons": [], "cookie": {
                   "name": "app_sid", "value": CDP_SID, "domain": "app-example.test", "path": "/"}}],
               "headers": {"sec-fetch-user": "?1", "sec-ch-ua": '"Not=A?Brand";v="99.0.0.0", "Chromium";v="120.0.6099.109"',
                           "x-varnish": "531183735 70674845"}}}]
    customer = {"customer": {"name": CUSTOMER, "email": EMAIL2, "document": CPF, "age": 41},
                "repository": {"name": "Hello-World", "full_name": "octo-org/Hello-World",
                               "ssh_url": "git@github.com:octo-org/Hello-World.git"}}
    yaml_text = f"""app:
  binary_secret: !!binary {b64(BINARY_SECRET)}
  log_level: info
"""
    return [
        Case("credentials", credentials.encode(), [AWS_SECRET, AWS_SECRET2],
             ["[default]", "region = eu-west-1", "aws_access_key_id", "[profile support]", "output = json"]),
        Case("keycloak-events.log", keycloak.encode(), [KC_SESSION, EMAIL, CLIENT_IP],
             ["type=LOGIN_ERROR", "error=invalid_user_credentials", "realmId=acme", "clientId=portal", KC_CODE_ID]),
        Case("saml-post.txt", saml_post.encode(), [EMAIL, SESSION_INDEX, GIVEN, FAMILY, EMPLOYEE_NO],
             ["SAMLResponse as the IdP posted it:", "https://idp.corp-example.test/adfs/services/trust", ROLE_ARN]),
        Case("web.config", machine_key.encode(), [VALIDATION_KEY, DECRYPTION_KEY], ["HMACSHA256", "machineKey"]),
        Case("appsettings.json", json.dumps(appsettings, indent=2).encode(), [JWT_SIGNING_KEY],
             [ISSUER, AUDIENCE, "Information"]),
        Case("devtools-protocol.json", json.dumps(cdp, separators=(",", ":")).encode(), [CF_COOKIE, CDP_SID],
             ["Switching Protocols", "__cfduid", "app_sid", "expires=Fri, 28-Aug-30", '"sec-fetch-user":"?1"',
              'v=\\"99.0.0.0\\"', "531183735 70674845"]),
        Case("customer.json", json.dumps(customer, separators=(",", ":")).encode(), [CUSTOMER, EMAIL2, CPF],
             ["Hello-World", "octo-org/Hello-World", "git@github.com:octo-org/Hello-World.git", '"age":41']),
        Case("settings.yaml", yaml_text.encode(), [BINARY_SECRET], ["log_level: info", "binary_secret"]),
        Case("terraform.tfstate", json.dumps({"version": 4, "terraform_version": "1.5.7", "resources": [
            {"mode": "managed", "type": "random_password", "name": "db", "instances": [
                {"schema_version": 3, "attributes": {"id": "none", "length": 20, "result": TF_RESULT},
                 "sensitive_attributes": [[{"type": "get_attr", "value": "result"}]]}]},
            {"mode": "managed", "type": "aws_db_instance", "name": "main", "instances": [
                {"attributes": {"address": "db.app-example.test", "username": "app", "password": DB_PASS,
                                "engine_version": "15.4"}, "sensitive_attributes": []}]}]}, indent=2).encode(),
             [TF_RESULT, DB_PASS], ["random_password", "db.app-example.test", "15.4", '"length": 20']),
        Case("application.properties",
             f"spring.datasource.url=jdbc:postgresql://db.app-example.test:5432/app?user=app&password={PG_PASS}\n"
             f"server.servlet.context-path=/api\n".encode(), [PG_PASS],
             ["spring.datasource.url=jdbc:postgresql://db.app-example.test:5432/app?user=", "context-path=/api"]),
    ]


BASIC_PASS = "Pl4inText-Basic-77"
GH_CODE = "248bb1f0c3d9e7a6b5c4"
GH_STATE = "6d154f2a9b8c7d6e5f4a3b2c1d0e9f8a"
GOOGLE_CODE = "4/0AfteXvtM-2XB5q-cTe-l-oYTkkRg-3QZf8V44cEvrRvCpPR9gSXhn76dF"
NAMEID = "4a723102-93f8-4c3b-9e0c-8504ae0a4b6e"
SAML_USERNAME = "jsargentine"
JWK_K = "BzP7aHq2Lm9Xk2Zt4Rv8Wq1Ys5"


def issue_thread_pastes() -> list[Case]:
    """What people paste into issue threads when sign-in fails: a framework's callback log, an OAuth exchange
    with prose around it, an error sentence, curl -v, an application's JSON log, a token's claims, a JWKS, and
    a SAML assertion pasted without its namespace declarations (not well-formed XML)."""
    paste = f"""[GET] /api/auth/callback/github?code={GH_CODE}&state={GH_STATE}
2030-01-01T00:00:00.000Z error [next-auth][error][OAUTH_CALLBACK_ERROR]

Google answered my POST with:
{{
    "code": "{GOOGLE_CODE}",
    "scope": "email profile openid",
    "prompt": "consent"
}}
Error retrieving access token: {{"error": "redirect_uri_mismatch"}}
AADSTS7000215: Invalid client secret is provided.
(invalid_credentials: OAuth2::Error)
127.0.0.1 - - [token e7a82026] "GET /api/sysin HTTP/1.1" 400 110
$ curl -sv {SERVER_IP}:8090/languages/bash/latest
*   Trying {SERVER_IP}...
* Connected to {SERVER_IP} ({SERVER_IP}) port 8090 (#0)
"""
    app_log = json.dumps({"reqId": "SdrYxuR8uVQ11IKq8rph", "remoteAddr": CLIENT_IP, "url": "/apps/oidc/token",
                          "version": "29.0.4.1", "message": "Token is not valid"}, separators=(",", ":"))
    claims = json.dumps({"sub": NAMEID, "email": EMAIL, "email_verified": "False", "iss": ISSUER}, indent=2)
    jwks = json.dumps({"keys": [{"alg": "HS256", "kty": "oct", "kid": "hmac-1", "k": JWK_K},
                                {"kty": "RSA", "kid": "rsa-1", "e": "AQAB", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmb",
                                 "d": "X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN"}]})
    fragment = f"""<saml2:Subject>
    <saml2:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">
        {NAMEID}
    </saml2:NameID>
</saml2:Subject>
<saml:Attribute Name="http://schemas.auth0.com/username" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
    <saml:AttributeValue xsi:type="xs:string">{SAML_USERNAME}</saml:AttributeValue>
</saml:Attribute>
<saml:Attribute Name="http://schemas.auth0.com/identities/default/connection">
    <saml:AttributeValue xsi:type="xs:string">Username-Password-Authentication</saml:AttributeValue>
</saml:Attribute>
"""
    return [
        Case("issue-paste.txt", paste.encode(), [GH_CODE, GH_STATE, GOOGLE_CODE, "e7a82026"],
             ["/api/auth/callback/github?code=", "Invalid client secret is provided.", "OAuth2::Error",
              '] "GET /api/sysin HTTP/1.1" 400', f"{SERVER_IP}:8090/languages", f"Trying {SERVER_IP}",
              f"Connected to {SERVER_IP} ({SERVER_IP}) port 8090", "redirect_uri_mismatch"]),
        Case("ops-console.txt", (f"GET /health HTTP/1.1\nAuthorization: Basic deployer:{BASIC_PASS}\n\n"
                                 f"DATABASE_URL=postgresql://postgres:postgres@db.app-example.test:5432/app\n"
                                 f"DATABASE_USER: postgres\nUSER: root\n$ docker run -u 501:20 registry.app-example.test/api\n").encode(),
             [BASIC_PASS, "postgres:postgres"],
             ["DATABASE_USER: postgres", "USER: root", "-u 501:20", "@db.app-example.test:5432/app"]),
        Case("nextcloud.log", app_log.encode(), [CLIENT_IP], ["SdrYxuR8uVQ11IKq8rph", '"version":"29.0.4.1"',
                                                              "/apps/oidc/token"]),
        Case("id-token-claims.json", claims.encode(), [NAMEID, EMAIL], ['"email_verified": "False"', ISSUER]),
        Case("id-token-paste.txt", (f'decoded id_token:\n{{\n  aud: "{AUDIENCE}",\n  iss: "{ISSUER}",\n  name: "{GIVEN} {FAMILY}",\n'
                                    f'  given_name: "{GIVEN}",\n  upn: "{EMAIL}"\n}}\n').encode(),
             [GIVEN, FAMILY, EMAIL], [AUDIENCE, ISSUER, "decoded id_token:"]),
        Case("jwks.json", jwks.encode(), [JWK_K, "X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN"],
             ["hmac-1", "rsa-1", "0vx7agoebGcQSuuPiLJXZptN9nndrQmb", "AQAB"]),
        Case("assertion-fragment.xml", fragment.encode(), [NAMEID, SAML_USERNAME],
             ["Username-Password-Authentication", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"]),
    ]


# planted in exports_and_dumps (all fake)
EXPORT_EMAIL = "odalys.brightwater@corp-example.test"
EXPORT_GIVEN, EXPORT_FAMILY = "Odalys", "Brightwater"
EXPORT_IP = "203.0.113.58"
WIN_USER = "obrightwater"
EVENT_IP = "198.51.100.91"
ACTUATOR_PASS = "Act-9pLq2vRw7Tz"
DEBUG_SESSION = "d0bfff00b5ebfe203a409ff5d023de10"
DEBUG_PW = "Php-Auth-7Kq2Lm9"
TWICE_USER_ID = "4e2fbbbc-289d-435e-9fe7-4f1719226bb0"
TWICE_SESSION = "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
SPRING_CODE = "aab01a92877ae6322b8bf3c381b9c6f2"
SPRING_SECRET = "b98fe2e6d9214674ab25e82c5065c9aa"
SSH_USER = "tquillon"
ECHOED_COOKIE = "Zk2fPq9LmX3vB7nR1tY"
HAND_CUT_FPC = "AkFAKEfpc1234567890abcdefghijkl"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYdiagKEY"
ARN_USER = "odalys.b"
LINES_IP = "192.0.2.144"
OKTA_LOGIN = "obright"
AUTHN_HEX = "a3bc91f0e4d25b7c8a9e0f1d2c3b4a5968778695a4b3c2d1"
SIGN_HEX = "5f4dcc3b5aa765d61d8327deb882cf99"
JSESS = "i1jpnucidu4o1emq4r71pzt90"
ECHO_IP = "198.51.100.203"
POLLY_EMAIL = "marisol.quenby@customer-corp.test"
POLLY_PHONE = "+44 7700 900417"
BOTO_SIG = "007baf23ae7a28b98f1c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607182"
PREFS_COOKIE = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5"
GQL_PASS = "Gql-7Kq2Lm9Xp"
CAS_USER = "odalys.bw"
WS_COOKIE = "Zx9fakeCookieVal0004"
FTP_PASS = "Tr0ub4dorFake"
WS_CLIENT = "10.9.8.7"
BARE_CODE, BARE_STATE = "Sp1xFakeOauthCode77", "Xy9FakeState42"
PADDED_JWT_EMAIL = "padded.jwt@corp-example.test"
TRACE_TOKEN, TRACE_BEARER = "FAKEtok3nXYZ987qq", "FAKEbear3rABCDEF12"


def _hex_dump(data: bytes) -> str:
    """curl --trace's rows: offset, 16 bytes in hex, the same bytes as text."""
    return "\n".join(f"{at:04x}: " + "".join(f"{b:02x} " for b in data[at:at + 16]).ljust(48)
                     + "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in data[at:at + 16])
                     for at in range(0, len(data), 16))
SESSION_RECORD_IP = "198.51.100.77"


def exports_and_dumps() -> list[Case]:
    """Files support gets besides captures, as public issue threads and fixtures show them: a sign-in log exported
    as CSV, Windows security events, an Okta event, Spring's /actuator/env, a debug page's settings table, request
    and authentication logs, JSON Lines named .json, an API capture with its own names for credentials, and a
    Polly.JS recording (a gzip'd body kept as hex chunks, a value cut between two)."""
    polly = gzip.compress(json.dumps({"id": 7, "contact": {"email": POLLY_EMAIL, "phone": POLLY_PHONE}}).encode(),
                          mtime=0).hex()
    csv_text = ("TimeGenerated,CorrelationId,UserPrincipalName,UserDisplayName,IPAddress,AppDisplayName,ResultType,"
                "ResultDescription\r\n"
                f"2030-01-01T00:00:00Z,{CORRELATION},{EXPORT_EMAIL},{EXPORT_GIVEN} {EXPORT_FAMILY},{EXPORT_IP},"
                "Azure Portal,50140,\"This error occurred due to 'Keep me signed in' interrupt.\"\r\n")
    events = ('<?xml version="1.0" encoding="utf-8"?>\n<Events>\n<Event><System><EventID>4625</EventID></System>'
              '<EventData><Data Name="SubjectUserSid">S-1-5-18</Data>'
              f'<Data Name="TargetUserName">{WIN_USER}</Data><Data Name="IpAddress">::ffff:{EVENT_IP}</Data>'
              '<Data Name="LogonType">3</Data></EventData></Event>\n</Events>\n')
    okta = json.dumps({"eventType": "user.authentication.sso", "outcome": {"result": "FAILURE"},
                       "target": [{"alternateId": OKTA_LOGIN, "displayName": f"{EXPORT_GIVEN} {EXPORT_FAMILY}",
                                   "type": "AppUser"},
                                  {"alternateId": "salesforce_prod", "displayName": "Salesforce Production",
                                   "type": "AppInstance"}]})
    actuator = json.dumps({"propertySources": [{"name": "applicationConfig: [classpath:/application.yml]",
                                                "properties": {"spring.datasource.password": {
                                                    "value": ACTUATOR_PASS, "origin": "application.yml - 5:15"},
                                                    "server.port": {"value": 8080}}}]})
    page = ("<html><body><table>"
            f"<tr><td>session id</td><td>&quot;{DEBUG_SESSION}&quot;</td></tr>"
            f"<tr><td class=\"e\">PHP_AUTH_PW </td><td class=\"v\">{DEBUG_PW} </td></tr>"
            "<tr><td>Server API</td><td>FPM/FastCGI</td></tr></table></body></html>\n")
    log = (f"GET /cb?email={q(EXPORT_EMAIL)} HTTP/1.1\n"
           f'sample: "{{\\"message\\":\\"userId=\\\\\\"{TWICE_USER_ID}\\\\\\", sessionId=\\\\\\"{TWICE_SESSION}\\\\\\"\\"}}"\n'
           f"DEBUG : Encoding and sending form: {{grant_type=[authorization_code], code=[{SPRING_CODE}], "
           f"client_secret=[{SPRING_SECRET}]}}\n"
           f"sshd[24200]: Failed password for invalid user {SSH_USER} from {EXPORT_IP} port 38780 ssh2\n"
           '    "user": {\n'
           f'* Added cookie sid="{ECHOED_COOKIE}" for domain app-example.test, path /, expire 0\n'
           f"GET /collect?v=1&utmcc={ECHOED_COOKIE} HTTP/1.1\n"
           f"Cookie: esctx=AQABAAAAAAD--<REDACTED>; fpc={HAND_CUT_FPC}\n"
           f"$ aws configure set aws_secret_access_key {AWS_SECRET}\n"
           "$ kubectl get secret app-creds -o yaml\n"
           "  access_key     ****************B4XB shared-credentials-file\n"
           f'    "Arn": "arn:aws:iam::123456789012:user/{ARN_USER}"\n')
    lines = "\n".join(json.dumps({"clientIP": LINES_IP, "requestUri": f"/page/{i}", "httpStatus": 200}) for i in range(2))
    body = '{\n  "args": {}, \n  "origin": "' + ECHO_IP + '", \n  "url": "https://httpbin.example.test/post"\n}\n'
    entries = [
        _entry("GET", f"https://api.app-example.test/v1/list?page=2&sign={SIGN_HEX}", 200,
               resp_headers=[("Authentication", AUTHN_HEX)],
               content={"size": len(body), "mimeType": "application/json", "text": body}),
        _entry("GET", f"https://idp.app-example.test/idp/profile/SAML2/POST/SSO;jsessionid={JSESS}?execution=e1s1", 200),
    ]
    return [
        Case("signin-export.csv", csv_text.encode(), [EXPORT_EMAIL, EXPORT_GIVEN, EXPORT_FAMILY, EXPORT_IP],
             ["TimeGenerated,CorrelationId,UserPrincipalName,UserDisplayName,IPAddress", CORRELATION, "Azure Portal",
              "50140", "'Keep me signed in' interrupt"]),
        Case("security-events.xml", events.encode(), [WIN_USER, EVENT_IP],
             ['<Data Name="TargetUserName">', "S-1-5-18", "<EventID>4625</EventID>", '<Data Name="LogonType">3']),
        Case("okta-event.json", okta.encode(), [OKTA_LOGIN, EXPORT_GIVEN, EXPORT_FAMILY],
             ["Salesforce Production", "salesforce_prod", "FAILURE", "user.authentication.sso"]),
        Case("actuator-env.json", actuator.encode(), [ACTUATOR_PASS],
             ["spring.datasource.password", "applicationConfig: [classpath:/application.yml]", "8080"]),
        Case("debug-page.html", page.encode(), [DEBUG_SESSION, DEBUG_PW], ["Server API", "FPM/FastCGI", "PHP_AUTH_PW"]),
        Case("auth-and-requests.log", log.encode(),
             [EXPORT_EMAIL, TWICE_USER_ID, TWICE_SESSION, SPRING_CODE, SPRING_SECRET, SSH_USER, EXPORT_IP,
              ECHOED_COOKIE, HAND_CUT_FPC, AWS_SECRET, ARN_USER],
             ["GET /cb?email=", "grant_type=[authorization_code]", '"user": {', "kubectl get secret app-creds",
              "****************B4XB", "Failed password for invalid user", "arn:aws:iam::123456789012:user/",
              "aws configure set aws_secret_access_key", "utmcc="]),
        Case("access-lines.json", lines.encode(), [LINES_IP], ['"requestUri": "/page/1"', '"httpStatus": 200']),
        Case("mail-and-sdk.txt", (f"Message-ID: <CAH1x2y3z4@mail.app-example.test>\nFrom: Odalys <{EXPORT_EMAIL}>\n"
                                  "DEBUG botocore.auth StringToSign:\nAWS4-HMAC-SHA256\n"
                                  f"DEBUG botocore.auth Signature:\n{BOTO_SIG}\n"
                                  f'Cookie: theme=dark; prefs="{PREFS_COOKIE}"\n').encode(),
             [EXPORT_EMAIL, BOTO_SIG, PREFS_COOKIE],
             ["Message-ID: <CAH1x2y3z4@mail.app-example.test>", "AWS4-HMAC-SHA256", 'prefs="', "Signature:"]),
        Case("reply-headers.txt", b"In-Reply-To: <20301026.k2x@lists.app-example.test>\n", [],
             ["In-Reply-To: <20301026.k2x@lists.app-example.test>"]),  # a mail's id alone: no email, nothing refused
        Case("graphql-okta.json", json.dumps({
            "query": "mutation Login($password: String!) { login(password: $password) { token } }",
            "variables": {"password": GQL_PASS}, "issuer": "http://www.okta.com/exk1fcia6d6EMsf331d8"}).encode(),
             [GQL_PASS], ["$password: String!", "login(password: $password)", "exk1fcia6d6EMsf331d8"]),
        Case("cas-audit.log", (f"Supplied credentials: [UsernamePasswordCredential(username={CAS_USER}, source=null)]"
                               f"|AUTHENTICATION_FAILED|{CAS_USER}|{EXPORT_IP}\n"
                               "Cookie: brcap=0; lang=en; flight-msaoauth2=true\n").encode(),
             [CAS_USER, EXPORT_IP], ["AUTHENTICATION_FAILED", "brcap=0; lang=en; flight-msaoauth2=true"]),
        Case("events-with-records.json", json.dumps({
            "session": json.dumps({"uuid": "JCMNBI2AD5EDRLHKAHCJTU7ZKI", "ip": SESSION_RECORD_IP}),
            "spring.datasource.username": {"value": "******"}, "UserDisplayName": "{PII Removed}",
            "PHP_AUTH_USER": "no value"}).encode(),
             [SESSION_RECORD_IP], ["JCMNBI2AD5EDRLHKAHCJTU7ZKI", "******", "{PII Removed}", "no value"]),
        Case("capture-as-text.txt", (f"#8 4.2 {WS_CLIENT} → 10.9.8.6 FTP 70 Request: USER odalysb\n"
                                     f"#9 4.3 {WS_CLIENT} → 10.9.8.6 FTP 81 Request: PASS {FTP_PASS}\n"
                                     f"        Cookie pair: _app_sess={WS_COOKIE}\\r\\n\n"
                                     f"> GET /?code={BARE_CODE}&state={BARE_STATE} HTTP/1.1\n").encode(),
             [WS_CLIENT, FTP_PASS, WS_COOKIE, BARE_CODE, BARE_STATE],
             ["FTP 70 Request: USER", "Cookie pair: _app_sess=", "\\r\\n", "> GET /?code="]),
        Case("curl-trace.txt", ("== Info: Connected to api.app-example.test port 443\n=> Send header, 120 bytes\n"
                                + _hex_dump(f"GET /a?access_token={TRACE_TOKEN} HTTP/1.1\r\nHost: api.app-example.test\r\n"
                                            f"Authorization: Bearer {TRACE_BEARER}\r\n\r\n".encode())
                                + "\n<= Recv header, 17 bytes (0x11)\n" + _hex_dump(b"HTTP/1.1 200 OK\r\n") + "\n").encode(),
             [TRACE_TOKEN, TRACE_BEARER], ["=> Send header", "HTTP/1.1 200 OK"]),
        Case("netlog.json", json.dumps({
            "constants": {"logEventTypes": {"HTTP2_SESSION": 244}, "netError": {"ERR_PKCS12_IMPORT_BAD_PASSWORD": -701}},
            "events": [{"params": {"headers": ["Cookie: [342 bytes were stripped]"],
                                   "x-jwt-assertion": b64(json.dumps({"alg": "RS256"})) + "." +
                                   b64(json.dumps({"sub": PADDED_JWT_EMAIL})) + "." + b64(bytes(range(60, 110)))}}]}).encode(),
             [PADDED_JWT_EMAIL], ["HTTP2_SESSION", "244", "ERR_PKCS12_IMPORT_BAD_PASSWORD", "-701",
                                  "Cookie: [342 bytes were stripped]"]),
        Case("own-names.har", _har(entries, "WebInspector", "API"), [AUTHN_HEX, SIGN_HEX, JSESS, ECHO_IP],
             ["SSO;jsessionid=", "Authentication", "page=2", '\\"args\\": {}, \\n']),
        Case("polly-recording.har", _har([_entry(
            "GET", "https://api.app-example.test/users/7", 200, shape="safari",
            resp_headers=[("content-encoding", "gzip"), ("x-served-by", "cache-lhr7321")],
            content={"mimeType": "application/json; charset=utf-8", "size": 96, "text": json.dumps(
                [polly[:60], polly[60:]])})], "Polly.JS", "users"),
             [POLLY_EMAIL, POLLY_PHONE], ["cache-lhr7321", "Polly.JS", "users/7"]),
    ]


def corpus() -> list[Case]:
    return [chrome_sso_har(), firefox_api_har(), safari_har(), *config_files(), *console_and_logs(),
            sign_in_flow_har(), *pastes_and_browser_logs(), *issue_thread_pastes(), *exports_and_dumps()]


def deflated(text: str) -> str:
    """SAML HTTP-Redirect binding: raw DEFLATE, then base64."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return b64(comp.compress(text.encode()) + comp.flush())
