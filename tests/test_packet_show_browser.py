"""`packet show --html` rendered by a real browser: Debian's chromium driven by Playwright for Python.

Two packets: the README's example (slow-page-load over examples/slow-page.har: the waterfall) and one with
a tls probe against a trustme server behind an intermediate plus a SAML login HAR (all three pictures).
Each page must load with no console message of level error, no request but the page itself, and every
SVG picture laid out with a non-zero size. The full-page screenshots are kept in test-artifacts/ (git-ignored).
Without chromium the test fails; DIAGKIT_NO_BROWSER=1 skips it on purpose (a machine that cannot run one).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.test_har_saml_flow import login_flow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(os.environ.get("DIAGKIT_NO_BROWSER") == "1", reason="DIAGKIT_NO_BROWSER=1")


def render_in_browser(page_path: Path, shot: Path) -> dict[str, Any]:
    """Open the page; what the browser saw: console errors, requests, each svg's box, the screenshot."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (or DIAGKIT_NO_BROWSER=1)"
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"errors": [], "requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(page_path.as_uri())
            seen["svgs"] = [(el.evaluate("e => e.closest('figure').querySelector('figcaption').textContent"),
                             el.bounding_box()) for el in page.query_selector_all("figure svg")]
            seen["first_screen"] = page.evaluate("() => document.body.innerText.slice(0, 600)")
            seen["scroll_width"] = page.evaluate("() => document.documentElement.scrollWidth")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
    return seen


def assert_clean(seen: dict[str, Any], page_path: Path, captions: list[str]) -> None:
    assert seen["errors"] == []
    assert seen["requests"] == [page_path.as_uri()]
    assert [c for c, _ in seen["svgs"]] == captions
    for caption, box in seen["svgs"]:
        assert box is not None and box["width"] > 0 and box["height"] > 0, caption
    assert seen["scroll_width"] <= 1280  # nothing overflows the page sideways


def test_readme_example_packet_in_chromium(invoke, tmp_path: Path) -> None:
    packet, page = tmp_path / "packet.zip", tmp_path / "out.html"
    result = invoke("collect", "--checklist", "slow-page-load", "--har", ROOT / "examples/slow-page.har", "--yes",
                    "-o", packet)
    assert result.exit_code == 3, result.stderr
    assert invoke("packet", "show", packet, "--html", page).exit_code == 3
    seen = render_in_browser(page, tmp_path / "readme-example.png")
    assert_clean(seen, page, ["HAR waterfall: evidence/slow-page.har"])
    first = seen["first_screen"]
    assert first.index("Likely causes") < first.index("The access token has expired") < first.index("Next step")


def test_tls_and_saml_packet_in_chromium(invoke, tmp_path: Path, ca: Any, tls_server: Any) -> None:
    intermediate = ca.create_child_ca()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    server = tls_server(intermediate.issue_cert("127.0.0.1", not_after=soon))
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    # A long unbroken name: the target must wrap in the page, never widen it.
    long_name = "login-" + "x" * 120 + ".har"
    har = login_flow("chrome", request_id="_req2", acs_status=400).write(tmp_path / long_name)
    packet, page = tmp_path / "sso.zip", tmp_path / "sso.html"
    result = invoke("collect", "--probe", f"tls=127.0.0.1:{server.port}", "--ca-file", ca_pem, "--har", har,
                    "--yes", "-o", packet)
    assert result.exit_code == 3, result.stderr  # the InResponseTo mismatch
    assert invoke("packet", "show", packet, "--html", page).exit_code == 3
    text = page.read_text("utf-8")
    assert "har.saml.inresponseto_mismatch" in text
    assert re.search(r"valid at capture, expires (9|10) days later", text)  # seconds cut either way
    seen = render_in_browser(page, tmp_path / "tls-saml.png")
    assert_clean(seen, page, [f"Certificate chain: 127.0.0.1:{server.port}", f"HAR waterfall: evidence/{long_name}",
                              f"SSO flow: evidence/{long_name}"])
