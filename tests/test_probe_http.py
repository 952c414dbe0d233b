"""`diagkit probe http` through the CLI against real loopback HTTP(S) servers, one per auth scenario."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import subprocess
import sys

import pytest

from tests.servers import Response, json_response, server_context

PINNED = "2026-03-01T12:00:00Z"
T = int(dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC).timestamp())
ENV = {"DIAGKIT_NOW": PINNED}
SECRET_SIG = b"planted-signature-0123456789-SECRET"


def b64(data: object) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(claims: dict, header: dict | None = None) -> str:
    return ".".join([b64(header or {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}), b64(claims), b64(SECRET_SIG)])


GOOD_CLAIMS = {"iss": "https://idp.test/", "aud": "api://orders", "exp": T + 3600, "nbf": T - 60, "iat": T - 60,
               "scp": "orders.read orders.write", "sub": "user-4711", "email": "alice@example.com"}
GOOD = make_jwt(GOOD_CLAIMS)


def probe(invoke, *args: str, env: dict[str, str] | None = None) -> tuple[object, dict]:
    result = invoke("probe", "http", *args, "--json", env={**ENV, **(env or {})})
    assert result.stdout.strip(), result.stderr
    return result, json.loads(result.stdout)


def ids(doc: dict) -> list[str]:
    return [f["id"] for f in doc["findings"]]


def finding(doc: dict, finding_id: str) -> dict:
    matches = [f for f in doc["findings"] if f["id"] == finding_id]
    assert matches, f"{finding_id} not in {ids(doc)}"
    return matches[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- healthy path and output shape


def test_healthy_request_exits_0_with_contract_json_shape(invoke, web):
    srv = web({"/v1/me": json_response({"id": 1}, headers=[("X-Request-Id", "req-42")])})
    result, doc = probe(invoke, srv.url("/v1/me"), "--bearer", GOOD, "--expect-issuer", "https://idp.test/",
                        "--expect-audience", "api://orders", "--expect-scope", "orders.read")
    assert result.exit_code == 0, doc
    assert set(doc) - {"options", "diagnosis"} == {"diagkit_version", "probe", "target", "started_at", "duration_ms", "findings", "facts"}
    assert doc["probe"] == "http" and doc["target"] == srv.url("/v1/me")
    assert doc["started_at"] == PINNED
    assert isinstance(doc["duration_ms"], int)
    for f in doc["findings"]:
        assert set(f) == {"id", "severity", "title", "detail", "evidence", "remediation", "refs"}
        assert f["severity"] in {"pass", "info", "warn", "fail", "error"}
    assert sorted(ids(doc)) == ["http.request.ok", "jwt.claims.ok"]
    assert {f["severity"] for f in doc["findings"]} == {"pass"}
    facts = doc["facts"]
    assert facts["response"]["status"] == 200
    assert facts["response"]["headers"]["x-request-id"] == "req-42"
    assert facts["token"]["claims"]["aud"] == "api://orders"
    assert facts["token"]["claims"]["sub"] == "<redacted>" and facts["token"]["claims"]["email"] == "<redacted>"
    assert facts["request"]["credentials"] == ["Authorization: Bearer <redacted>"]
    # The request really carried the token the customer's integration would send.
    assert srv.requests[0].headers["authorization"] == f"Bearer {GOOD}"


def test_human_output_and_header_form_of_the_token(invoke, web):
    srv = web({"/": json_response({"ok": True})})
    result = invoke("probe", "http", srv.url("/"), "-H", f"Authorization: Bearer {GOOD}", "-H", "Accept: application/json",
                    env=ENV)
    assert result.exit_code == 0
    assert "[http.request.ok]" in result.stdout and "[jwt.claims.ok]" in result.stdout
    assert srv.requests[0].headers["accept"] == "application/json"
    assert GOOD not in result.stdout + result.stderr


def test_pinned_clock_is_not_confused_by_the_real_server_date(invoke, web):
    """DIAGKIT_NOW is far from the server's real Date header: the token is judged on the pinned clock."""
    srv = web({"/": json_response({})})
    result, doc = probe(invoke, srv.url("/"), "--bearer", GOOD)
    assert result.exit_code == 0, ids(doc)
    assert "http.clock.skew" not in ids(doc)


# ---------------------------------------------------------------- connection failures


def test_connection_refused(invoke):
    result, doc = probe(invoke, f"http://127.0.0.1:{free_port()}/api")
    assert result.exit_code == 3
    f = finding(doc, "http.connect.failed")
    assert f["evidence"]["layer"] == "tcp"
    assert "refused" in f["evidence"]["reason"]
    assert f["severity"] == "fail"  # a refused connection is an answer about the endpoint, not a timeout


def test_silent_server_ends_within_timeout(invoke, silent_server):
    srv = silent_server()
    result, doc = probe(invoke, f"http://127.0.0.1:{srv.port}/", "--timeout", "0.2")
    assert result.exit_code == 5  # a timeout: the check could not run (CONTRACT.md `error`)
    assert finding(doc, "http.connect.failed")["evidence"]["layer"] == "http"
    # The request went out whole and the client, not the server, ended the wait.
    assert srv.wait_closed()  # seen end of stream: everything sent before it was read
    assert srv.connections == 1 and srv.received[0].startswith(b"GET / HTTP/1.1\r\n")


def test_untrusted_tls_then_trusted_with_ca_file(invoke, http_server, ca, ca_file):
    srv = http_server({"/": json_response({"ok": 1})}, ssl_context=server_context(ca.issue_cert("127.0.0.1")))
    result, doc = probe(invoke, srv.url("/"))
    assert result.exit_code == 3
    f = finding(doc, "http.connect.failed")
    assert f["evidence"]["layer"] == "tls"
    assert "certificate" in f["evidence"]["reason"]
    result, doc = probe(invoke, srv.url("/"), "--ca-file", ca_file)
    assert result.exit_code == 0, ids(doc)
    assert ids(doc) == ["http.request.ok"]


# ---------------------------------------------------------------- 401 / 403 / 407


def test_401_without_challenge(invoke, web):
    srv = web({"/": Response(401, [("Content-Type", "text/plain")], "nope")})
    result, doc = probe(invoke, srv.url("/"), "--bearer", GOOD)
    assert result.exit_code == 4
    assert ids(doc) == ["http.auth.challenge_missing", "jwt.claims.ok"]


def test_invalid_token_challenge(invoke, web):
    expired = make_jwt({**GOOD_CLAIMS, "exp": T - 7200})
    challenge = 'Bearer realm="orders", error="invalid_token", error_description="The access token expired"'
    srv = web({"/": Response(401, [("WWW-Authenticate", challenge)])})
    result, doc = probe(invoke, srv.url("/"), "--bearer", expired)
    assert result.exit_code == 3
    f = finding(doc, "http.auth.invalid_token")
    assert f["evidence"]["error"] == "invalid_token"
    assert f["evidence"]["error_description"] == "The access token expired"
    assert finding(doc, "jwt.expired")["evidence"]["exp"] == "2026-03-01T10:00:00Z"
    assert doc["facts"]["challenges"][0]["params"]["realm"] == "orders"


def test_insufficient_scope_names_the_scope(invoke, web):
    token = make_jwt({**GOOD_CLAIMS, "scp": "orders.read"})
    challenge = 'Bearer realm="orders", error="insufficient_scope", scope="orders.read orders.admin"'
    srv = web({"/": Response(403, [("WWW-Authenticate", challenge)])})
    result, doc = probe(invoke, srv.url("/"), "--bearer", token, "--method", "DELETE")
    assert result.exit_code == 3
    f = finding(doc, "http.auth.insufficient_scope")
    assert f["evidence"]["scope"] == "orders.read orders.admin"
    assert f["evidence"]["missing"] == ["orders.admin"]
    assert srv.requests[0].method == "DELETE"


def test_credentials_not_received(invoke, web):
    srv = web({"/": Response(401, [("WWW-Authenticate", 'Bearer realm="api"')])})
    result, doc = probe(invoke, srv.url("/"), "--bearer", "opaque-token-value-123")
    assert result.exit_code == 3
    assert "http.auth.credentials_not_received" in ids(doc)
    assert doc["facts"]["token"] == {"format": "opaque", "length": len("opaque-token-value-123")}


def test_401_without_credentials_and_scheme_mismatch(invoke, web):
    srv = web({"/": Response(401, [("WWW-Authenticate", 'Basic realm="legacy", Negotiate')])})
    _, doc = probe(invoke, srv.url("/"))
    assert ids(doc) == ["http.auth.required"]
    assert finding(doc, "http.auth.required")["evidence"]["schemes"] == ["Basic", "Negotiate"]
    _, doc = probe(invoke, srv.url("/"), "--bearer", GOOD)
    assert "http.auth.scheme_mismatch" in ids(doc)


def test_plain_403(invoke, web):
    srv = web({"/": json_response({"message": "forbidden"}, 403)})
    result, doc = probe(invoke, srv.url("/"), "--bearer", GOOD)
    assert result.exit_code == 3
    assert "http.auth.forbidden" in ids(doc)


def test_proxy_from_environment_answers_407(invoke, web):
    proxy = web({"/orders": Response(407, [("Proxy-Authenticate", 'Basic realm="corp-proxy"')])})
    env = {"HTTP_PROXY": proxy.base_url, "http_proxy": proxy.base_url, "NO_PROXY": "", "no_proxy": ""}
    result, doc = probe(invoke, "http://api.example.test/orders", env=env)
    assert result.exit_code == 3
    f = finding(doc, "http.proxy.auth_required")
    assert f["evidence"]["schemes"] == ["Basic"] and f["evidence"]["realm"] == "corp-proxy"
    assert finding(doc, "http.proxy.detected")["evidence"]["proxy"] == proxy.base_url
    assert proxy.requests[0].path == "http://api.example.test/orders"  # absolute-form: it went via the proxy


def test_via_header_is_reported_as_info(invoke, web):
    srv = web({"/": json_response({}, headers=[("Via", "1.1 gateway.corp")])})
    result, doc = probe(invoke, srv.url("/"))
    assert result.exit_code == 0
    assert finding(doc, "http.proxy.detected")["evidence"]["via"] == ["1.1 gateway.corp"]


def test_server_error(invoke, web):
    srv = web({"/": json_response({"oops": 1}, 502, headers=[("X-Request-Id", "r-9")])})
    result, doc = probe(invoke, srv.url("/"))
    assert result.exit_code == 3
    assert finding(doc, "http.response.server_error")["evidence"] == {"status": 502, "x-request-id": "r-9"}


# ---------------------------------------------------------------- redirects


def test_cross_origin_redirect_drops_authorization(invoke, web):
    api = web({"/v1/me": Response(401, [("WWW-Authenticate", 'Bearer realm="api"')])})
    front = web({"/v1/me": Response(301, [("Location", api.url("/v1/me"))])})
    result, doc = probe(invoke, front.url("/v1/me"), "--bearer", GOOD)
    assert result.exit_code == 3
    f = finding(doc, "http.redirect.auth_dropped")
    assert f["evidence"]["to"] == api.url("/v1/me")
    assert "http.auth.credentials_not_received" in ids(doc)
    assert front.requests[0].headers["authorization"] == f"Bearer {GOOD}"
    assert "authorization" not in api.requests[0].headers
    assert doc["facts"]["redirects"][0]["cross_origin"] is True


def test_same_origin_redirect_keeps_authorization(invoke, web):
    srv = web({"/v1/me": Response(308, [("Location", "/v1/me/")]), "/v1/me/": json_response({})})
    result, doc = probe(invoke, srv.url("/v1/me"), "--bearer", GOOD)
    assert result.exit_code == 0, ids(doc)
    assert "http.redirect.auth_dropped" not in ids(doc)
    assert srv.requests[1].headers["authorization"] == f"Bearer {GOOD}"


def test_https_to_http_downgrade(invoke, http_server, ca, ca_file):
    plain = http_server({"/x": json_response({})})
    secure = http_server({"/x": Response(302, [("Location", plain.url("/x"))])},
                         ssl_context=server_context(ca.issue_cert("127.0.0.1")))
    result, doc = probe(invoke, secure.url("/x"), "--ca-file", ca_file, "--bearer", GOOD)
    assert result.exit_code == 3
    assert {"http.redirect.downgrade", "http.redirect.auth_dropped"} <= set(ids(doc))


def test_redirect_loop(invoke, web):
    srv = web({"/a": Response(302, [("Location", "/b")]), "/b": Response(302, [("Location", "/a")])})
    result, doc = probe(invoke, srv.url("/a"))
    assert result.exit_code == 3
    assert "http.redirect.too_many" in ids(doc)
    assert len(srv.requests) == 2


# ---------------------------------------------------------------- OAuth errors and login pages


def test_oauth_error_json_body(invoke, web):
    body = {"error": "invalid_grant", "error_description": "AADSTS70008: The provided authorization code expired."}
    srv = web({("POST", "/token"): json_response(body, 400)})
    result, doc = probe(invoke, srv.url("/token"), "--method", "POST")
    assert result.exit_code == 3
    f = finding(doc, "oauth.error")
    assert f["evidence"]["error"] == "invalid_grant"
    assert "AADSTS70008" in f["evidence"]["error_description"]
    assert "authorization code" in f["detail"]


def test_oauth_error_in_redirect_location(invoke, web):
    app = web({"/callback": Response(200, [("Content-Type", "text/html")], "<p>done</p>")})
    location = app.url("/callback?error=access_denied&error_description=User+declined&state=s3cr3t-state")
    idp = web({"/authorize": Response(302, [("Location", location)])})
    result, doc = probe(invoke, idp.url("/authorize"))
    assert result.exit_code == 3
    f = finding(doc, "oauth.error")
    assert f["evidence"]["error"] == "access_denied"
    assert f["evidence"]["error_description"] == "User declined"
    assert "s3cr3t-state" not in result.stdout


def test_login_page_instead_of_json(invoke, web):
    login = ('<!DOCTYPE html><html><head><title>Sign in to Contoso</title></head><body>'
             '<form method="post"><input name="user"><input type="password" name="pw"></form></body></html>')
    idp = web({"/adfs/ls": Response(200, [("Content-Type", "text/html; charset=utf-8")], login)})
    api = web({"/v1/orders": Response(302, [("Location", idp.url("/adfs/ls?SAMLRequest=abc"))])})
    result, doc = probe(invoke, api.url("/v1/orders"), "-H", "Accept: application/json")
    assert result.exit_code == 3
    f = finding(doc, "http.response.login_page")
    assert any("password" in r for r in f["evidence"]["reasons"])
    assert "http.request.ok" not in ids(doc)


# ---------------------------------------------------------------- CORS preflight


def _cors_server(web, preflight: Response):
    return web({("OPTIONS", "/api"): preflight,
                        ("GET", "/api"): json_response({}, headers=[("Access-Control-Allow-Origin", "https://app.test")]),
                        ("PUT", "/api"): json_response({}, headers=[("Access-Control-Allow-Origin", "https://app.test")])})


OK_PREFLIGHT = [("Access-Control-Allow-Origin", "https://app.test"), ("Access-Control-Allow-Methods", "GET, PUT"),
                ("Access-Control-Allow-Headers", "Authorization, Content-Type")]


def test_cors_preflight_ok(invoke, web):
    srv = _cors_server(web, Response(204, OK_PREFLIGHT))
    result, doc = probe(invoke, srv.url("/api"), "--origin", "https://app.test", "--bearer", GOOD, "--method", "PUT")
    assert result.exit_code == 0, ids(doc)
    assert "http.cors.preflight_ok" in ids(doc)
    pre = srv.requests[0]
    assert pre.method == "OPTIONS"
    assert pre.headers["origin"] == "https://app.test"
    assert pre.headers["access-control-request-method"] == "PUT"
    assert pre.headers["access-control-request-headers"] == "authorization"
    assert "authorization" not in pre.headers  # preflights never carry credentials


@pytest.mark.parametrize("headers,status,reason", [
    ([("Access-Control-Allow-Origin", "https://other.test"), *OK_PREFLIGHT[1:]], 204, "origin https://app.test not allowed"),
    ([OK_PREFLIGHT[0], ("Access-Control-Allow-Methods", "GET, POST"), OK_PREFLIGHT[2]], 204, "method PUT not allowed"),
    ([*OK_PREFLIGHT[:2], ("Access-Control-Allow-Headers", "content-type")], 204, "authorization not in"),
    ([("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true"), *OK_PREFLIGHT[1:]], 204,
     "cannot be used with credentials"),
    (OK_PREFLIGHT, 405, "the preflight answered 405"),
])
def test_cors_preflight_failures(invoke, web, headers, status, reason):
    srv = _cors_server(web, Response(status, headers))
    result, doc = probe(invoke, srv.url("/api"), "--origin", "https://app.test", "--bearer", GOOD, "--method", "PUT")
    assert result.exit_code == 3
    f = finding(doc, "http.cors.preflight_failed")
    assert any(reason in r for r in f["evidence"]["reasons"]), f["evidence"]["reasons"]
    assert reason in f["title"] or len(f["evidence"]["reasons"]) > 1


def test_actual_response_without_cors_headers(invoke, web):
    srv = web({("OPTIONS", "/api"): Response(204, OK_PREFLIGHT),
                       ("GET", "/api"): Response(401, [("WWW-Authenticate", 'Bearer error="invalid_token"')])})
    result, doc = probe(invoke, srv.url("/api"), "--origin", "https://app.test", "--bearer", GOOD)
    assert result.exit_code == 3
    assert {"http.cors.preflight_ok", "http.cors.response_blocked", "http.auth.invalid_token"} <= set(ids(doc))
    assert srv.requests[1].headers["origin"] == "https://app.test"


# ---------------------------------------------------------------- JWT diagnosis through the CLI


@pytest.mark.parametrize("claims,options,expected", [
    ({**GOOD_CLAIMS, "exp": T - 3600}, [], "jwt.expired"),
    ({**GOOD_CLAIMS, "nbf": T + 3600}, [], "jwt.not_yet_valid"),
    (GOOD_CLAIMS, ["--expect-audience", "api://billing"], "jwt.audience.mismatch"),
    (GOOD_CLAIMS, ["--expect-issuer", "https://idp.test/v2.0"], "jwt.issuer.mismatch"),
    (GOOD_CLAIMS, ["--expect-scope", "orders.admin"], "jwt.scope.missing"),
])
def test_jwt_claim_problems(invoke, web, claims, options, expected):
    srv = web({"/": json_response({})})
    result, doc = probe(invoke, srv.url("/"), "--bearer", make_jwt(claims), *options)
    assert result.exit_code == 3
    assert [i for i in ids(doc) if i.startswith("jwt.")] == [expected]
    assert "http.request.ok" in ids(doc)


def test_alg_none_and_id_token(invoke, web):
    srv = web({"/": json_response({})})
    id_token = make_jwt({"iss": "https://idp.test/", "aud": "spa-client", "azp": "spa-client", "nonce": "n-1",
                         "exp": T + 600, "sub": "alice"}, {"alg": "none", "typ": "JWT"})
    _, doc = probe(invoke, srv.url("/"), "--bearer", id_token)
    assert {"jwt.alg.none", "jwt.token.id_token"} <= set(ids(doc))


def test_expectations_on_an_opaque_token_are_an_error_not_a_pass(invoke, web):
    srv = web({"/": json_response({})})
    result, doc = probe(invoke, srv.url("/"), "--bearer", "opaque-abc", "--expect-audience", "api://orders")
    assert result.exit_code == 5
    assert finding(doc, "jwt.token.unreadable")["severity"] == "error"
    assert "could not be checked" in result.stderr


# ---------------------------------------------------------------- secrets never leak; bad input


def test_token_never_appears_in_any_output(invoke, web):
    srv = web({"/": Response(401, [("WWW-Authenticate", 'Bearer error="invalid_token"')]),
                       "/ok": json_response({})})
    planted = make_jwt({**GOOD_CLAIMS, "exp": T - 600})
    signature = b64(SECRET_SIG)
    for args in (["--bearer", planted], ["-H", f"Authorization: Bearer {planted}"],
                 ["-H", "X-Api-Key: k3y-SECRET-value", "-H", "Cookie: sid=c00kie-SECRET"]):
        for path in ("/", "/ok"):
            for fmt in ([], ["--json"]):
                result = invoke("--debug", "probe", "http", srv.url(path), *args, *fmt, env=ENV)
                out = result.stdout + result.stderr
                # The planted token is expired and "/" answers 401: both fail (3); the API key on /ok passes.
                expected = 3 if path == "/" or any(planted in a for a in args) else 0
                assert result.exit_code == expected, (args, path, out)
                for secret in (planted, signature, "k3y-SECRET-value", "c00kie-SECRET", "alice@example.com"):
                    assert secret not in out


def test_token_absent_from_subprocess_debug_output(web):
    srv = web({"/": json_response({})})
    planted = make_jwt({**GOOD_CLAIMS, "exp": T - 600})
    proc = subprocess.run([sys.executable, "-m", "diagkit", "--debug", "probe", "http", srv.url("/"), "--bearer",
                           planted], capture_output=True, text=True, timeout=60, env={**_base_env(), **ENV})
    assert proc.returncode == 3, proc.stderr
    assert "[jwt.expired]" in proc.stdout
    assert planted not in proc.stdout + proc.stderr
    assert b64(SECRET_SIG) not in proc.stdout + proc.stderr


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def test_bad_header_is_one_line_error_without_echo(invoke):
    result = invoke("probe", "http", "http://127.0.0.1:9/", "-H", "Authorization Bearer sekrit-token-xyz")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "-H/--header #1" in lines[0]
    assert "sekrit-token-xyz" not in result.stderr


def test_a_url_that_can_never_work_is_a_usage_error(invoke):
    for url, needle in (("ftp://example.test/x", "not an http(s) URL"),
                        ("http://127.0.0.1:99999/", "Port out of range")):
        result = invoke("probe", "http", url)
        assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args,needle", [
    (["http://127.0.0.1:9/", "--bearer", ""], "--bearer"),
    (["http://127.0.0.1:9/", "--bearer", "@/nonexistent/token.txt"], "does not exist"),
    (["http://127.0.0.1:9/", "--origin", "app.test/path"], "--origin"),
    (["http://127.0.0.1:9/", "--ca-file", "/nonexistent/ca.pem"], "does not exist"),
])
def test_bad_input_exits_1(invoke, args, needle):
    result = invoke("probe", "http", *args)
    assert result.exit_code == 1
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_bearer_from_file(invoke, web, tmp_path):
    path = tmp_path / "token.txt"
    path.write_text(f"Bearer {GOOD}\n")
    srv = web({"/": json_response({})})
    result, doc = probe(invoke, srv.url("/"), "--bearer", f"@{path}")
    assert result.exit_code == 0
    assert srv.requests[0].headers["authorization"] == f"Bearer {GOOD}"
