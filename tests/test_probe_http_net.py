"""`diagkit probe http` on the paths between client and API: a real CONNECT forward proxy that answers
407, a TLS-intercepting chain, a local OIDC issuer with real signed tokens, IdP HTML error pages,
`Access-Control-Allow-Headers: *` and --no-follow. Every server is real and listens on 127.0.0.1.

Checked with independent clients first (see the report of this change):
- curl -x http://127.0.0.1:P https://127.0.0.1:S/ -> "CONNECT tunnel failed, response 407";
  curl -v shows `Proxy-Authenticate: Basic realm="corp-proxy"`.
- curl --cacert real-ca.pem against the intercepting server -> "unable to get local issuer certificate";
  openssl s_client -showcerts shows issuer O=Corp TLS Inspection.
- openssl dgst/pkeyutl -verify with the JWKS key (exported as PEM) accepts the good tokens and rejects
  the one signed by another key.
- curl shows the IdP pages' text ("Invalid parameter: redirect_uri", "AADSTS50011: ...").
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests import servers
from tests.servers import HTTPServer, Response, json_response, server_context
from tests.test_probe_http import ENV, T, b64, probe

PROXY_USER, PROXY_PASSWORD = "alice", "s3cret-proxy-pw"
CLAIMS = {"aud": "api://orders", "exp": T + 3600, "nbf": T - 60, "iat": T - 60, "scp": "orders.read",
          "sub": "user-4711"}


def ids(doc: dict[str, Any]) -> set[str]:
    return {f["id"] for f in doc["findings"]}


def finding(doc: dict[str, Any], finding_id: str) -> dict[str, Any]:
    found = [f for f in doc["findings"] if f["id"] == finding_id]
    assert found, f"{finding_id} not in {ids(doc)}"
    return found[0]


# ---------------------------------------------------------------- a real CONNECT forward proxy


class ConnectProxy(servers.TCPServer):
    """A forward proxy: CONNECT tunnels (RFC 9110 §9.3.6) for clients that send the right Basic
    Proxy-Authorization, 407 with `Proxy-Authenticate: Basic realm="corp-proxy"` for the others, also for
    absolute-form requests (plain http:// through the proxy)."""

    def __init__(self, credentials: tuple[str, str] | None = (PROXY_USER, PROXY_PASSWORD)) -> None:
        super().__init__()
        self.expected = ("Basic " + base64.b64encode(":".join(credentials).encode()).decode()) if credentials else None
        self.requests: list[tuple[str, str, bool]] = []  # (method, target, had Proxy-Authorization)

    def url(self, with_credentials: bool = False, password: str = PROXY_PASSWORD) -> str:
        auth = f"{PROXY_USER}:{password}@" if with_credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            self.requests.append((method, target, "proxy-authorization" in headers))
            if self.expected and headers.get("proxy-authorization") != self.expected:
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"corp-proxy\"\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pump = threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True)
            pump.start()
            self._pipe(conn, upstream)
            pump.join(10)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass



@pytest.fixture(scope="module")
def proxy() -> Iterator[ConnectProxy]:
    srv = ConnectProxy().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def real_ca() -> Any:
    import trustme

    return trustme.CA(organization_name="Example Real CA")


@pytest.fixture(scope="module")
def inspection_ca() -> Any:
    import trustme

    return trustme.CA(organization_name="Corp TLS Inspection")


@pytest.fixture(scope="module")
def api(real_ca: Any) -> Iterator[HTTPServer]:
    """The genuine HTTPS API, certificate from the real CA."""
    srv = HTTPServer({"/v1/me": json_response({"id": 1})}, server_context(real_ca.issue_cert("127.0.0.1"))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def intercepted(inspection_ca: Any) -> Iterator[HTTPServer]:
    """What the client meets behind a TLS-inspecting proxy: the same answer, a certificate minted by the
    inspection CA for the requested host."""
    srv = HTTPServer({"/v1/me": json_response({"id": 1})},
                     server_context(inspection_ca.issue_cert("127.0.0.1"))).start()
    yield srv
    srv.stop()


@pytest.fixture
def real_ca_file(real_ca: Any, tmp_path: Any) -> str:
    path = tmp_path / "real-ca.pem"
    real_ca.cert_pem.write_to_path(str(path))
    return str(path)


def assert_no_proxy_secret(result: Any) -> None:
    assert PROXY_PASSWORD not in result.stdout + result.stderr
    assert base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode() not in result.stdout


def test_407_on_connect_without_credentials(invoke, proxy, api, real_ca_file):
    result, doc = probe(invoke, api.url("/v1/me"), "--proxy", proxy.url(), "--ca-file", real_ca_file)
    assert result.exit_code == 3
    f = finding(doc, "http.proxy.auth_required")
    assert f["severity"] == "fail"
    assert f["evidence"]["stage"] == "CONNECT" and f["evidence"]["status"] == 407
    assert f["evidence"]["schemes"] == ["Basic"] and f["evidence"]["realm"] == "corp-proxy"
    assert f["evidence"]["credentials_sent"] is False
    assert "http.connect.failed" not in ids(doc)
    assert ("CONNECT", f"127.0.0.1:{api.port}", False) in proxy.requests


def test_407_on_connect_with_wrong_credentials(invoke, proxy, api, real_ca_file):
    result, doc = probe(invoke, api.url("/v1/me"), "--proxy", proxy.url(True, password="wrong-pw-123"),
                        "--ca-file", real_ca_file)
    assert result.exit_code == 3
    f = finding(doc, "http.proxy.auth_required")
    assert f["evidence"]["credentials_sent"] is True and "rejected" in f["detail"]
    assert "wrong-pw-123" not in result.stdout + result.stderr


def test_407_on_connect_from_https_proxy_environment(invoke, proxy, api, real_ca_file, monkeypatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    result, doc = probe(invoke, api.url("/v1/me"), "--ca-file", real_ca_file)
    assert result.exit_code == 3
    assert finding(doc, "http.proxy.auth_required")["evidence"]["stage"] == "CONNECT"
    assert doc["facts"]["proxy"]["source"] == "HTTPS_PROXY"


def test_407_for_a_plain_http_request_through_the_proxy(invoke, proxy):
    # http:// goes to the proxy in absolute form; its 407 is an ordinary response.
    result, doc = probe(invoke, "http://127.0.0.1:9/v1/me", "--proxy", proxy.url())
    assert result.exit_code == 3
    assert finding(doc, "http.proxy.auth_required")["evidence"]["status"] == 407


def test_healthy_through_the_proxy_with_credentials(invoke, proxy, api, real_ca_file):
    result, doc = probe(invoke, api.url("/v1/me"), "--proxy", proxy.url(True), "--ca-file", real_ca_file)
    assert result.exit_code == 0, doc["findings"]
    assert {"http.request.ok", "http.proxy.detected"} <= ids(doc)
    assert not [f for f in doc["findings"] if f["severity"] in ("fail", "warn", "error")]
    assert_no_proxy_secret(result)


# ---------------------------------------------------------------- an intercepted chain


def test_tls_failure_names_the_inspecting_issuer(invoke, intercepted, real_ca_file):
    result, doc = probe(invoke, intercepted.url("/v1/me"), "--ca-file", real_ca_file)
    assert result.exit_code == 3
    f = finding(doc, "http.connect.failed")
    assert f["evidence"]["layer"] == "tls"
    assert "Corp TLS Inspection" in f["title"] and "Corp TLS Inspection" in f["detail"]
    assert "O=Corp TLS Inspection" in f["evidence"]["certificate_issuer"]
    assert f["evidence"]["issuer_trusted"] is False and f["evidence"]["via_proxy"] is False
    assert "title_note" not in f["evidence"]


def test_tls_failure_through_the_proxy_names_the_issuer(invoke, proxy, intercepted, real_ca_file):
    result, doc = probe(invoke, intercepted.url("/v1/me"), "--proxy", proxy.url(True), "--ca-file", real_ca_file)
    assert result.exit_code == 3
    f = finding(doc, "http.connect.failed")
    assert "O=Corp TLS Inspection" in f["evidence"]["certificate_issuer"]
    assert f["evidence"]["via_proxy"] is True
    assert_no_proxy_secret(result)


def test_inspection_ca_given_as_ca_file_is_healthy(invoke, intercepted, inspection_ca, tmp_path):
    path = tmp_path / "corp.pem"
    inspection_ca.cert_pem.write_to_path(str(path))
    result, doc = probe(invoke, intercepted.url("/v1/me"), "--ca-file", str(path))
    assert result.exit_code == 0, doc["findings"]
    assert "http.request.ok" in ids(doc)


# ---------------------------------------------------------------- a local OIDC issuer with real keys


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _int(value: int, size: int | None = None) -> str:
    return _b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


class Keys:
    """Signing keys and the JWKS that publishes their public halves."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives import serialization

        rsa_pub = self.rsa.public_key().public_numbers()
        ec_pub = self.ec.public_key().public_numbers()
        raw_ed = self.ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": _int(rsa_pub.n), "e": _int(rsa_pub.e)},
            {"kty": "RSA", "kid": "rsa-pss", "use": "sig", "n": _int(rsa_pub.n), "e": _int(rsa_pub.e)},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256", "x": _int(ec_pub.x, 32), "y": _int(ec_pub.y, 32)},
            {"kty": "OKP", "kid": "ed-1", "use": "sig", "crv": "Ed25519", "x": _b64(raw_ed)},
        ]}

    def sign(self, claims: dict[str, Any], alg: str, kid: str | None, key: Any = None) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

        header = {"alg": alg, "typ": "at+jwt", **({"kid": kid} if kid else {})}
        signing_input = f"{b64(header)}.{b64(claims)}".encode()
        if alg == "RS256":
            sig = (key or self.rsa).sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            sig = (key or self.rsa).sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                                         hashes.SHA256())
        elif alg == "ES256":
            r, s = utils.decode_dss_signature((key or self.ec).sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = (key or self.ed).sign(signing_input)
        return f"{signing_input.decode()}.{_b64(sig)}"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def issuer(keys: Keys) -> Iterator[HTTPServer]:
    """An OIDC issuer: discovery at /.well-known/openid-configuration, JWKS at /jwks, and an API at /api."""
    srv = HTTPServer().start()
    base = srv.base_url
    srv.routes.update({
        "/.well-known/openid-configuration": json_response({
            "issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
            "jwks_uri": base + "/jwks", "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256", "EdDSA"]}),
        "/jwks": json_response(keys.jwks()),
        "/api": json_response({"ok": True}),
    })
    yield srv
    srv.stop()


def _token_probe(invoke: Any, issuer: HTTPServer, token: str, *extra: str) -> tuple[Any, dict[str, Any]]:
    result, doc = probe(invoke, issuer.url("/api"), "--bearer", token, "--expect-issuer", issuer.base_url, *extra)
    assert token not in result.stdout + result.stderr
    assert token.rsplit(".", 1)[1] not in result.stdout  # not even the signature
    return result, doc


@pytest.mark.parametrize(("alg", "kid"), [("RS256", "rsa-1"), ("PS256", "rsa-pss"), ("ES256", "ec-1"),
                                          ("EdDSA", "ed-1")])
def test_signature_valid(invoke, issuer, keys, alg, kid):
    token = keys.sign({**CLAIMS, "iss": issuer.base_url}, alg, kid)
    result, doc = _token_probe(invoke, issuer, token)
    assert result.exit_code == 0, doc["findings"]
    f = finding(doc, "jwt.signature.valid")
    assert f["severity"] == "pass" and f["evidence"]["verified_with"] == kid
    assert {"http.request.ok", "jwt.claims.ok", "jwt.signature.valid"} == ids(doc)
    assert doc["facts"]["issuer_keys"]["kids"] == ["rsa-1", "rsa-pss", "ec-1", "ed-1"]


def test_signature_valid_without_kid_tries_the_signing_keys(invoke, issuer, keys):
    token = keys.sign({**CLAIMS, "iss": issuer.base_url}, "ES256", None)
    result, doc = _token_probe(invoke, issuer, token)
    assert result.exit_code == 0
    assert finding(doc, "jwt.signature.valid")["evidence"]["verified_with"] == "ec-1"


def test_unknown_kid(invoke, issuer, keys):
    token = keys.sign({**CLAIMS, "iss": issuer.base_url}, "RS256", "rotated-2026-02")
    result, doc = _token_probe(invoke, issuer, token)
    assert result.exit_code == 3
    f = finding(doc, "jwt.kid.unknown")
    assert f["severity"] == "fail"
    assert f["evidence"]["kid"] == "rotated-2026-02"
    assert f["evidence"]["jwks_kids"] == ["rsa-1", "rsa-pss", "ec-1", "ed-1"]
    assert "rotated-2026-02" in f["title"]
    assert "jwt.signature.valid" not in ids(doc) and "jwt.signature.invalid" not in ids(doc)


def test_signature_by_another_key_is_invalid(invoke, issuer, keys):
    token = keys.sign({**CLAIMS, "iss": issuer.base_url}, "RS256", "rsa-1", key=keys.other_rsa)
    result, doc = _token_probe(invoke, issuer, token)
    assert result.exit_code == 3
    f = finding(doc, "jwt.signature.invalid")
    assert f["severity"] == "fail" and f["evidence"]["kid"] == "rsa-1"


def test_altered_payload_is_invalid(invoke, issuer, keys):
    head, _, sig = keys.sign({**CLAIMS, "iss": issuer.base_url}, "ES256", "ec-1").split(".")
    forged = f"{head}.{b64({**CLAIMS, 'iss': issuer.base_url, 'scp': 'orders.admin'})}.{sig}"
    result, doc = _token_probe(invoke, issuer, forged)
    assert result.exit_code == 3
    assert "jwt.signature.invalid" in ids(doc)


def test_key_type_that_cannot_verify_the_alg_is_invalid(invoke, issuer, keys):
    token = keys.sign({**CLAIMS, "iss": issuer.base_url}, "ES256", "rsa-1")  # an RSA key named for ES256
    result, doc = _token_probe(invoke, issuer, token)
    assert result.exit_code == 3
    assert "key 'rsa-1'" in finding(doc, "jwt.signature.invalid")["detail"]


def test_jwks_answering_an_error_is_an_error_finding(invoke, issuer, keys, http_server):
    broken = http_server({"/.well-known/openid-configuration": Response(500, [], "boom")})
    token = keys.sign({**CLAIMS, "iss": broken.base_url}, "RS256", "rsa-1")
    result, doc = probe(invoke, issuer.url("/api"), "--bearer", token, "--expect-issuer", broken.base_url)
    assert result.exit_code == 5
    assert finding(doc, "jwt.signature.unchecked")["severity"] == "error"


def test_token_of_another_issuer_is_only_an_issuer_mismatch(invoke, issuer, keys):
    token = keys.sign({**CLAIMS, "iss": "https://other-idp.test/"}, "RS256", "other-kid")
    result, doc = _token_probe(invoke, issuer, token)
    assert result.exit_code == 3
    assert [i for i in ids(doc) if i.startswith("jwt.")] == ["jwt.issuer.mismatch"]


def test_unit_verify_rejects_a_short_ec_signature(keys):
    from diagkit.collectors.http.jwt_verify import public_key, verify

    jwk = keys.jwks()["keys"][2]
    assert verify(b"a.b", b"\x01" * 10, public_key(jwk, "ES256"), "ES256") is False


# ---------------------------------------------------------------- IdP HTML error pages

KEYCLOAK_PAGE = """<!DOCTYPE html><html><head><title>Sign in to demo</title>
<link href="/resources/abc/login/keycloak/css/login.css" rel="stylesheet"></head>
<body><div id="kc-content"><div id="kc-error-message">
<p class="instruction">Invalid parameter: redirect_uri</p></div></div></body></html>"""

ENTRA_PAGE = """<!DOCTYPE html><html><head><title>Sign in to your account</title>
<script type="text/javascript">//<![CDATA[
$Config={"iErrorCode":50011,"strServiceExceptionMessage":"AADSTS50011: The redirect URI \\u0027https://app.example.com/cb\\u0027 specified in the request does not match the redirect URIs configured for the application \\u00270000-1111\\u0027.","correlationId":"c0ffee"};
//]]></script></head><body><div id="debugDetails">Request Id: 1234</div></body></html>"""

OKTA_PAGE = """<!DOCTYPE html><html><head><title>example - Error</title></head><body>
<div class="content"><h1>400 Bad Request</h1>
<p class="error-message">The 'redirect_uri' parameter must be a Login redirect URI in the client app settings:
https://example.okta.com/admin/app/oidc_client/instance/0oa1#tab-general</p></div></body></html>"""

ADFS_PAGE = """<!DOCTYPE html><html><head><title>Sign In</title></head><body>
<div id="errorArea"><span id="errorText">An error occurred. Contact your administrator for more information.</span>
<div id="errorDetails">Activity ID: 00000000-0000-0000-2d00-0080000000f5<br/>
Error details: MSIS9224: Received invalid OAuth authorization request. The received 'redirect_uri' parameter is
not a valid registered redirect URI for the client identifier: 'app-1'.</div></div></body></html>"""

GENERIC_PAGE = """<html><body><h2>Authorization failed</h2><p>Error Code: unauthorized_client</p>
<p>Description: The client is not allowed to use the authorization code grant.</p></body></html>"""

HTML = [("Content-Type", "text/html; charset=utf-8")]


@pytest.fixture(scope="module")
def idp() -> Iterator[HTTPServer]:
    srv = HTTPServer({
        "/realms/demo/protocol/openid-connect/auth": Response(400, HTML, KEYCLOAK_PAGE),
        "/common/oauth2/v2.0/authorize": Response(200, HTML, ENTRA_PAGE),
        "/oauth2/v1/authorize": Response(400, HTML, OKTA_PAGE),
        "/adfs/oauth2/authorize": Response(400, HTML, ADFS_PAGE),
        "/generic/authorize": Response(400, HTML, GENERIC_PAGE),
        "/o/oauth2/v2/auth": Response(400, HTML, "<html><head><title>Google</title></head><body><p>Access blocked: "
                                                 "This app's request is invalid</p><p>Error 400: redirect_uri_mismatch"
                                                 "</p></body></html>"),
        "/docs": Response(200, HTML, "<html><body><p>If you see Error Code: invalid_request, check the redirect."
                                     "</p></body></html>"),
    }).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize(("path", "code", "provider", "family"), [
    ("/realms/demo/protocol/openid-connect/auth", "invalid_request", "Keycloak", "invalid_request"),
    ("/common/oauth2/v2.0/authorize", "AADSTS50011", "Microsoft Entra ID", "invalid_request"),
    ("/oauth2/v1/authorize", "invalid_request", "Okta", "invalid_request"),
    ("/adfs/oauth2/authorize", "MSIS9224", "AD FS", "invalid_request"),
    ("/generic/authorize", "unauthorized_client", "the identity provider", "unauthorized_client"),
    ("/o/oauth2/v2/auth", "redirect_uri_mismatch", "Google", "invalid_request"),
])
def test_idp_error_pages_give_oauth_error(invoke, idp, path, code, provider, family):
    result, doc = probe(invoke, idp.url(path + "?client_id=app-1&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb"))
    assert result.exit_code == 3
    f = finding(doc, "oauth.error")
    assert f["evidence"]["error"] == code
    assert f["evidence"]["provider"] == provider and f["evidence"]["oauth_error"] == family
    assert code in f["title"]
    # The page is the answer: no generic 400, no "login page", no success.
    assert not {"http.response.client_error", "http.response.login_page", "http.request.ok"} & ids(doc)


def test_keycloak_page_names_the_parameter(invoke, idp):
    _, doc = probe(invoke, idp.url("/realms/demo/protocol/openid-connect/auth"))
    f = finding(doc, "oauth.error")
    assert f["evidence"]["parameter"] == "redirect_uri"
    assert f["evidence"]["error_description"] == "Invalid parameter: redirect_uri"
    assert "Valid Redirect URIs" in f["remediation"]


def test_entra_page_description_is_unescaped(invoke, idp):
    _, doc = probe(invoke, idp.url("/common/oauth2/v2.0/authorize"))
    f = finding(doc, "oauth.error")
    assert f["evidence"]["error_description"].startswith("The redirect URI 'https://app.example.com/cb' specified")


def test_hostile_page_is_read_in_one_pass():
    from diagkit.formats.idp_errors import page_error

    page = ("<html>" + "<script>" * 30000 + "<style" * 10000 + "AADSTS" * 5000).encode()
    assert page_error(page, "text/html", 400) is None


def test_a_page_that_merely_mentions_a_code_is_not_an_error(invoke, idp):
    result, doc = probe(invoke, idp.url("/docs"))
    assert result.exit_code == 0
    assert "oauth.error" not in ids(doc)


# ---------------------------------------------------------------- CORS: Allow-Headers *


def _cors(web: Any, allow_headers: str, extra: list[tuple[str, str]] | None = None) -> HTTPServer:
    pre = [("Access-Control-Allow-Origin", "https://app.test"), ("Access-Control-Allow-Methods", "GET"),
           ("Access-Control-Allow-Headers", allow_headers), *(extra or [])]
    return web({("OPTIONS", "/api"): Response(204, pre),
                ("GET", "/api"): json_response({"ok": 1}, headers=[("Access-Control-Allow-Origin", "https://app.test"),
                                                                  *(extra or [])])})


def _bearer(issuer_url: str = "https://idp.test/") -> str:
    return ".".join([b64({"alg": "RS256", "kid": "k"}), b64({**CLAIMS, "iss": issuer_url}), b64(b"sig")])


def test_wildcard_allow_headers_with_authorization_warns(invoke, http_server):
    srv = _cors(http_server, "*")
    result, doc = probe(invoke, srv.url("/api"), "--origin", "https://app.test", "--bearer", _bearer())
    assert result.exit_code == 4
    f = finding(doc, "http.cors.wildcard_headers")
    assert f["severity"] == "warn"
    assert "http.cors.preflight_failed" not in ids(doc)
    assert "Fetch standard" in f["detail"] and "Chrome" in f["detail"]


def test_explicit_authorization_does_not_warn(invoke, http_server):
    srv = _cors(http_server, "Authorization, *")
    result, doc = probe(invoke, srv.url("/api"), "--origin", "https://app.test", "--bearer", _bearer())
    assert result.exit_code == 0, doc["findings"]
    assert "http.cors.wildcard_headers" not in ids(doc)


def test_wildcard_with_cookies_is_not_a_wildcard(invoke, http_server):
    srv = _cors(http_server, "*", [("Access-Control-Allow-Credentials", "true")])
    result, doc = probe(invoke, srv.url("/api"), "--origin", "https://app.test", "--bearer", _bearer(),
                        "-H", "Cookie: session=abc123")
    assert result.exit_code == 3
    assert "http.cors.preflight_failed" in ids(doc)


# ---------------------------------------------------------------- --no-follow


def test_no_follow_reports_the_redirect_and_stops(invoke, http_server):
    target = http_server({"/final": json_response({"ok": 1})})
    srv = http_server({"/start": Response(302, [("Location", target.url("/final"))])})
    result, doc = probe(invoke, srv.url("/start"), "--no-follow", "--bearer", _bearer())
    assert result.exit_code == 0, doc["findings"]
    f = finding(doc, "http.redirect.not_followed")
    assert f["severity"] == "info" and f["evidence"]["location"] == target.url("/final")
    assert f["evidence"]["cross_origin"] is True and "drop Authorization" in f["detail"]
    assert target.requests == []
    assert doc["facts"]["response"]["status"] == 302
    assert "http.redirect.auth_dropped" not in ids(doc)


def test_without_no_follow_the_redirect_is_followed(invoke, http_server):
    target = http_server({"/final": json_response({"ok": 1})})
    srv = http_server({"/start": Response(302, [("Location", target.url("/final"))])})
    result, doc = probe(invoke, srv.url("/start"))
    assert result.exit_code == 0
    assert "http.request.ok" in ids(doc) and len(target.requests) == 1


def test_https_to_an_ip_address_of_a_server_that_needs_sni(invoke, ca, http_server):
    from tests.test_probe_tls_net import sni_context

    srv = http_server({"/": json_response({})}, ssl_context=sni_context(ca.issue_cert("localhost")))
    result, doc = probe(invoke, srv.url("/"))
    assert result.exit_code == 3
    f = finding(doc, "http.connect.failed")
    assert f["evidence"]["layer"] == "tls" and f["evidence"]["sni_sent"] is False
    assert "No SNI was sent" in f["detail"]


def test_bad_proxy_option_is_one_line_error(invoke):
    result = invoke("probe", "http", "https://127.0.0.1:9/", "--proxy", "ftp://x:1", env=ENV)
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "--proxy" in result.stderr


