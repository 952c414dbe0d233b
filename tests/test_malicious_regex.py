"""Regex DoS: every pattern diagkit (outside redact/) applies to untrusted text, fed long adversarial
strings built from the characters it repeats. Each must finish in linear-ish time.

The quadratic ones found here (and fixed) were the e-mail maskers, scrub's URL-credential rule, the
certificate PEM finder, the checklist placeholder and the login-page detectors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

N = 100_000


def _cases() -> list[tuple[str, Callable[[], Any], list[str]]]:
    from diagkit import scrub
    from diagkit.casework import checklists, plan, templates
    from diagkit.collectors.http import response as http
    from diagkit.collectors.saml import response as saml_response
    from diagkit.formats import certs, jwt, oauth_errors, saml_xml

    attack_text = [
        "answers." * (N // 8), "a." * (N // 2), "a@" + "a." * (N // 2) + "@", "{{" * N, "{" * N,
        "<input" * (N // 6), "<title>" + "login " * (N // 6), "eyJ" + "." * N + "!", "a:" * N,
        "-----BEGIN CERTIFICATE-----" * (N // 27), "a://" * (N // 4) + "b:" * 100, "bearer " * (N // 7),
        "?a=" * (N // 3), "x" * N + "@", "%" * N, "SAMLResponse=" * (N // 13),
    ]
    return [
        ("scrub", lambda: scrub.scrub, attack_text),
        ("scrub_message", lambda: scrub.scrub_message, attack_text),
        ("saml_response email", lambda: saml_response._EMAIL_RE.sub, attack_text),
        ("oauth_errors email", lambda: (lambda t: oauth_errors._JWT.sub("", oauth_errors._EMAIL.sub("", t))),
         attack_text),
        ("checklist placeholder", lambda: templates.PLACEHOLDER.findall, attack_text),
        ("checklist email/host", lambda: (lambda t: (checklists._EMAIL.match(t), checklists._HOST.match(t))),
         attack_text),
        ("password input", lambda: http._PASSWORD_INPUT.search, attack_text),
        ("login title", lambda: http._TITLE.search, attack_text),
        ("saml form", lambda: http._SAML_FORM.search, attack_text),
        ("login path", lambda: http._LOGIN_PATH.search, attack_text),
        ("jwt shape", lambda: jwt._COMPACT.match, attack_text),
        ("saml param", lambda: saml_xml._PARAM_RE.search, attack_text),
        ("pem", lambda: (lambda t: certs._PEM_RE.search(t.encode())), attack_text),
        ("probe option", lambda: plan._OPTION_PART.match, attack_text),
    ]


CASES = _cases()


def _cpu(func: Callable[[str], Any], text: str) -> float:
    """The least CPU time (not wall-clock: other processes do not count) of three runs of func(text)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        try:
            func(text)
        except TypeError:
            func("", text)  # re.sub bound method: (repl, string)
        best = min(best, time.process_time() - t0)
    return best


@pytest.mark.parametrize("name,get,texts", CASES, ids=[c[0] for c in CASES])
def test_pattern_is_linear(name: str, get: Callable[[], Any], texts: list[str]) -> None:
    """A regex runs inside one C call, so its work is read as CPU time at two sizes: an eighth of each
    attack text, then all of it. Linear work grows 8x, quadratic 64x; the bound sits between, well clear
    of both (tiny runs are floored at 1 ms so that timer resolution cannot fake a ratio)."""
    func = get()
    for text in texts:
        small = max(_cpu(func, text[: len(text) // 8]), 0.001)
        large = _cpu(func, text)
        assert large <= 24 * small, (name, text[:40], small, large)


def test_fixed_patterns_still_match() -> None:
    from diagkit import scrub
    from diagkit.casework import templates
    from diagkit.collectors.http import response as http
    from diagkit.collectors.saml import response as saml_response
    from diagkit.formats import certs, oauth_errors

    assert scrub.scrub("see https://bob:hunter2@example.com/x") == "see https://<REDACTED>@example.com/x"
    assert saml_response._EMAIL_RE.sub("<E>", "user jane.doe@example.com failed") == "user <E> failed"
    assert oauth_errors._EMAIL.search("contact ops@example.org now")
    assert templates.PLACEHOLDER.findall("{{ answers.host | hostport }} and {{answers.x}}") == [
        " answers.host | hostport ", "answers.x"]
    assert http._PASSWORD_INPUT.search('<form><input name="p" type="password"></form>')
    title = http._TITLE.search("<html><title>Sign in to Acme</title>")
    assert title and http._LOGIN_TITLE_WORDS.search(title.group(1))
    pem = b"x-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----y"
    assert certs._PEM_RE.search(pem).group(1) == b"\nQUJD\n"
    assert certs._PEM_RE.search(b"-----BEGIN CERTIFICATE-----a-----BEGIN CERTIFICATE-----b-----END CERTIFICATE-----"
                                ).group(1) == b"b"


def test_http_probe_login_page_with_hostile_title(invoke, http_server) -> None:
    """A server answering 256 KiB of "<title>login login ..." must not stall the probe."""
    from tests.servers import Response

    body = "<!doctype html><html><title>" + "login " * 43_000
    srv = http_server({"/": Response(200, [("Content-Type", "text/html")], body)})
    result = invoke("probe", "http", srv.url("/"), "--json", "--timeout", "5")
    assert "Traceback" not in result.stderr
    ids = [f["id"] for f in json.loads(result.stdout)["findings"]]
    assert "probe.run.timeout" not in ids and "probe.run.crashed" not in ids, ids  # the title scan ended
    assert (result.exit_code, ids) == (0, ["http.request.ok"])  # 200 with a title that is not a login page


# The exit status each one ends with: 3 where the hop cannot be followed (http.connect.failed) or the
# challenge/OAuth error is reported, 4 where a port out of range leaves only the unexpected 302 to report.
@pytest.mark.parametrize("status,location,exit_code", [
    (302, "http://[::1", 3), (302, "http://h:99999/x", 4), (302, "http://h:abc/", 3), (307, "http://a b/", 3),
    (401, "http://[::1", 3), (302, "http://" + "a" * 300 + "/", 3),
    (302, "?error=invalid_request&error_uri=http://[::1", 3),
])
def test_http_probe_hostile_location_headers(invoke, http_server, status: int, location: str,
                                             exit_code: int) -> None:
    """A server's Location that is not a URL ends as a verdict, never `probe.run.crashed`."""

    from tests.servers import Response

    srv = http_server({"/": Response(status, [("Location", location),
                                              ("WWW-Authenticate", 'Bearer error="invalid_token"')], "")})
    result = invoke("probe", "http", srv.url("/"), "--json", "--timeout", "2")
    ids = [f["id"] for f in json.loads(result.stdout)["findings"]]
    assert "probe.run.crashed" not in ids and ids, ids
    assert result.exit_code == exit_code, (result.exit_code, ids)
