"""Planted secrets never reach a terminal, a log, an exception or a packet: tokens in URL queries and
userinfo, headers, cookies, a proxy URL, SAML NameIDs, JWT claims and checklist answers, while the
command fails in as many ways as it can (refused, timeout, malformed input, internal error, --debug)."""

from __future__ import annotations

import base64
import json
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.sso import builders
from tests.servers import Response

SECRET = "PLANTEDs3cr3tV4lue9q"


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


JWT = (_b64url({"alg": "RS256", "kid": "k"}) + "." +
       _b64url({"sub": SECRET, "email": f"{SECRET}@example.com", "iss": "https://idp.example", "aud": "api",
                "exp": 1, "name": SECRET}) + ".c2lnbmF0dXJl")


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean(result: Any, debug: bool = False) -> None:
    text = result.stdout + result.stderr
    assert SECRET not in text, text
    if not debug:
        assert "Traceback" not in text  # tracebacks only when asked


def _targets(http_server, silent_server) -> dict[str, list[str]]:
    srv = http_server({"/api": Response(401, [("WWW-Authenticate", 'Bearer error="invalid_token"')], "{}")})
    silent = silent_server()
    refused = _refused_port()
    return {
        "query_token_401": ["probe", "http", srv.url(f"/api?access_token={SECRET}")],
        "userinfo_refused": ["probe", "http", f"http://user:{SECRET}@127.0.0.1:{refused}/x"],
        "query_timeout": ["probe", "http", f"http://127.0.0.1:{silent.port}/x?code={SECRET}", "--timeout", "0.3"],
        "bearer": ["probe", "http", srv.url("/api"), "--bearer", SECRET],
        "bearer_jwt": ["probe", "http", srv.url("/api"), "--bearer", JWT, "--expect-audience", "other"],
        "cookie_header": ["probe", "http", srv.url("/api"), "-H", f"Cookie: sid={SECRET}"],
        "basic_header": ["probe", "http", srv.url("/api"), "-H", f"Authorization: Basic {SECRET}"],
        "bad_ipv6_url": ["probe", "http", f"http://[::1/x?token={SECRET}"],
        "bad_port_url": ["probe", "http", f"http://h:99999/x?token={SECRET}"],
        "not_http": ["probe", "http", f"ftp://h/x?token={SECRET}"],
        "metadata_query_refused": ["probe", "saml-metadata", f"http://127.0.0.1:{refused}/md?sig={SECRET}"],
        "metadata_userinfo_timeout": ["probe", "saml-metadata", f"http://u:{SECRET}@127.0.0.1:{silent.port}/md",
                                      "--timeout", "0.3"],
        "metadata_404": ["probe", "saml-metadata", srv.url(f"/missing?sig={SECRET}")],
        "oidc_userinfo": ["probe", "oidc", f"http://u:{SECRET}@127.0.0.1:{refused}/"],
        "oidc_query": ["probe", "oidc", f"http://127.0.0.1:{refused}/?x={SECRET}"],
        "saml_inline_value": ["probe", "saml-response", f"SAMLResponse={SECRET}&RelayState={SECRET}"],
        "saml_nameid": ["probe", "saml-response",
                        builders.b64(builders.response(builders.assertion(name_id=SECRET,
                                                                          attributes={"uid": SECRET})))],
    }


CASES = ["query_token_401", "userinfo_refused", "query_timeout", "bearer", "bearer_jwt", "cookie_header",
         "basic_header", "bad_ipv6_url", "bad_port_url", "not_http", "metadata_query_refused",
         "metadata_userinfo_timeout", "metadata_404", "oidc_userinfo", "oidc_query", "saml_inline_value",
         "saml_nameid"]


@pytest.mark.parametrize("mode", ["human", "json+debug"])
@pytest.mark.parametrize("case", CASES)
def test_probe_failures_never_echo_secrets(invoke, http_server, silent_server, case: str, mode: str) -> None:
    args = _targets(http_server, silent_server)[case]
    as_json = debug = mode == "json+debug"
    result = invoke(*(["--debug"] if debug else []), *args, *(["--json"] if as_json else []))
    # A URL that can never work is a usage error (2); a check cut short by its timeout could not run (5);
    # every other case ends with a fail verdict (3).
    expected = (2 if case in ("bad_ipv6_url", "bad_port_url", "not_http")
                else 5 if case in ("metadata_userinfo_timeout", "query_timeout") else 3)
    assert result.exit_code == expected, (result.exit_code, result.stdout, result.stderr)
    _clean(result, debug)
    if as_json and result.exit_code not in (1, 2):  # a refused input prints no document
        assert json.loads(result.stdout)["target"]


def test_proxy_credentials_in_environment(invoke) -> None:
    port = _refused_port()
    proxy = f"http://user:{SECRET}@127.0.0.1:{port}"
    env = {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "NO_PROXY": ""}
    for args in (["probe", "http", "http://api.example.invalid/x"], ["probe", "http", "https://api.example.invalid/x"],
                 ["probe", "oidc", "https://idp.example.invalid"],
                 ["probe", "saml-metadata", "https://idp.example.invalid/md"]):
        for extra in ([], ["--json"]):
            result = invoke(*args, *extra, "--timeout", "2", env=env)
            # the proxy refuses the connection: a fail verdict for every probe
            assert result.exit_code == 3, (args, result.stdout, result.stderr)
            _clean(result)
    result = invoke("probe", "http", "http://api.example.invalid/x", "--json", env=env)
    facts = json.dumps(json.loads(result.stdout)["facts"])
    assert "127.0.0.1" in facts  # the proxy is shown as evidence, without its password


def test_internal_error_with_debug_scrubs_the_traceback(invoke, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    from diagkit.packet import verify

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"failed for https://u:{SECRET}@h.example/?access_token={SECRET} with Bearer {SECRET}")

    monkeypatch.setattr(verify, "verify_packet", boom)
    packet = tmp_path / "p.zip"
    packet.write_bytes(b"PK")
    for debug in ([], ["--debug"]):
        result = invoke(*debug, "packet", "verify", packet)
        assert result.exit_code == 1
        assert "DK999" in result.stderr and "RuntimeError" in result.stderr
        assert SECRET not in result.stderr
    # The --debug traceback keeps its file locations whole (scrubbing must not eat the paths).
    assert 'test_malicious_secrets.py", line' in result.stderr


def test_har_probe_with_secrets_and_broken_parts(invoke, tmp_path: Path) -> None:
    entries = [
        {"startedDateTime": "2026-03-01T10:00:00Z", "time": 5,
         "request": {"method": "GET", "url": f"https://api.example.com/v1?access_token={SECRET}",
                     "headers": [{"name": "Authorization", "value": f"Bearer {JWT}"},
                                 {"name": "Cookie", "value": f"sid={SECRET}"}]},
         "response": {"status": 401, "headers": [{"name": "WWW-Authenticate", "value": 'Bearer error="invalid_token"'},
                                                 {"name": "Location", "value": f"https://x/?code={SECRET}"}],
                      "content": {"mimeType": "application/json",
                                  "text": json.dumps({"error": "invalid_token", "user": f"{SECRET}@example.com",
                                                      "error_description": f"token {JWT} expired"})}},
         "timings": {"wait": float("inf")}},
        {"startedDateTime": "bad", "request": {"method": "POST", "url": "https://sp.example/acs",
                                               "postData": {"params": [{"name": "SAMLResponse", "value": builders.b64(
                                                   builders.response(builders.assertion(name_id=SECRET)))}]}},
         "response": {"status": 0, "_error": f"net::ERR_FAILED https://u:{SECRET}@x/"}},
    ]
    path = tmp_path / "s.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"},
                                        "entries": entries}}, allow_nan=True))
    for extra in ([], ["--json"]):
        result = invoke("probe", "har", path, *extra)
        assert result.exit_code == 3
        _clean(result)


def test_collect_with_secret_answers_and_failing_probes(invoke, tmp_path: Path) -> None:
    from diagkit.packet.keys import generate_keys

    keys = generate_keys(tmp_path / "k", comment="t")
    port = _refused_port()
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        f'summary: "fails with password={SECRET}"\n'
        f"steps_to_reproduce: \"curl -H 'Authorization: Bearer {SECRET}' http://127.0.0.1:{port}/v2\"\n"
        'expected_result: "200"\nactual_result: "401"\nfirst_seen: "2026-11-20 10:00 +00:00"\n'
        "impact: one-integration\ntenant: acme\nrequest_ids: r-1\n"
        f'api_url: "http://user:{SECRET}@127.0.0.1:{port}/v2/orders?api_key={SECRET}"\n'
        f'issuer: "http://127.0.0.1:{port}/oauth2"\naccess_token: "{JWT}"\n')
    out = tmp_path / "c.zip"
    for debug in ([], ["--debug"]):
        result = invoke(*debug, "collect", "--checklist", "api-auth-failure", "--answers", answers, "--yes",
                        "--timeout", "1", "--sign-key", keys["signing"]["private_path"], "-o", out)
        assert result.exit_code == 3, result.stderr  # a fail verdict; the packet is written either way
        _clean(result, bool(debug))
        with zipfile.ZipFile(out) as archive:
            for info in archive.infolist():
                assert SECRET.encode() not in archive.read(info), info.filename
                assert b"eyJ" not in archive.read(info) or info.filename == "manifest.sig", info.filename


def test_runner_masks_inline_targets() -> None:
    from diagkit.runner import shown_target

    assert shown_target(f"https://u:{SECRET}@h/x?token={SECRET}") == "https://<REDACTED>@h/x?token=<REDACTED>"
    assert shown_target("PHNhbWxwOlJlc3BvbnNlIHhtbG5zOnNhbWxwPSJ1cm46b2FzaXM6bmFtZXM6dGM6U0FNTDoyLjA6cHJvdG9jb2wiPg==") \
        .startswith("<inline value, 92 chars, sha256 ")
    assert shown_target("api.example.com:443") == "api.example.com:443"
