"""`packet show` through the CLI: the engineer's reading order (causes, findings by cause, readiness and
case, evidence) in the terminal, Markdown, JSON and HTML; plain-text-safe Markdown; odd but valid packets."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from diagkit import catalogue
from diagkit.findings import Cause, Finding, ProbeResult, Severity
from diagkit.packet.build import Evidence, build_packet
from diagkit.packet.keys import generate_keys

STARTED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TITLE = "Token for A & B <b>x</b> | [link](http://evil.test) &amp; `code`"


@pytest.fixture
def signer(tmp_path: Path) -> str:
    return generate_keys(tmp_path / "keys", comment="t")["signing"]["private_path"]


def results() -> list[ProbeResult]:
    return [
        ProbeResult("dns", "api.example.com", STARTED, 3, [catalogue.make("dns.answer.private")]),
        ProbeResult("http", "https://api.example.com/v1/orders", STARTED, 9, [
            catalogue.make("http.auth.invalid_token", title=TITLE),
            catalogue.make("jwt.expired", title="Bearer token expired", detail="exp is 2026-01-01\nlocal clock 2026-01-02"),
            Finding("http.tls.ok", Severity.PASS, "TLS fine")]),
    ]


def packet(tmp_path: Path, signer: str, **kwargs: Any) -> Path:
    path = tmp_path / "p.zip"
    build_packet(path, results=kwargs.pop("results", results()),
                 evidence=kwargs.pop("evidence", [Evidence("evidence/notes.txt", b"notes\n", "text/plain", "n")]),
                 case=kwargs.pop("case", {"case_id": "CS-9", "summary": "Login fails\nsince Monday | for all & <b>"}),
                 readiness={"ready": False, "score": 50}, checklist="api-auth", sign_key=signer,
                 created_at=STARTED, **kwargs)
    return path


def headings(text: str, pattern: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(pattern, line)]


TERMINAL = """\
  findings   2 fail, 1 warn, 1 pass
likely causes (worst first)
  1. FAIL  The access token has expired  [token-expired]
        next step: Get a new token (refresh it) and retry; if fresh tokens are rejected too, compare the API server's clock with the issuer's.
        findings: jwt.expired, http.auth.invalid_token
findings by cause (worst first)
  cause 1: The access token has expired
    FAIL  Bearer token expired  [jwt.expired]  http https://api.example.com/v1/orders
          exp is 2026-01-01
          local clock 2026-01-02
          fix: Get a fresh token; check the client caches tokens no longer than their lifetime.
    FAIL  Token for A & B <b>x</b> | [link](http://evil.test) &amp; `code`  [http.auth.invalid_token]  http https://api.example.com/v1/orders
          The token is expired, revoked, malformed or issued for another resource.
          fix: Get a fresh token from the right issuer for this API's audience.
  other findings
    WARN  The name resolves to a non-public address  [dns.answer.private]  dns api.example.com
          {dns_detail}
          fix: {dns_fix}
    PASS  TLS fine  [http.tls.ok]  http https://api.example.com/v1/orders
readiness
  Ready: no
  Score: 50%
case
  case_id: CS-9
  summary: Login fails
    since Monday | for all & <b>
evidence
  evidence/notes.txt  6 B  sha256:444e0fffbd825e9610ff5b199485707a0c895339ae80c15cc8a8aee41b106fda  (n)
"""

MARKDOWN = """\
- **Checklist:** api-auth
- **Findings:** 2 fail, 1 warn, 1 pass

### Likely causes (worst first)

1. 🔴 FAIL **The access token has expired**
   - Next step: Get a new token (refresh it) and retry; if fresh tokens are rejected too, compare the API server's clock with the issuer's.
   - Findings: `jwt.expired`, `http.auth.invalid_token`

### Findings by cause (worst first)

#### Cause 1: The access token has expired

| Severity | Finding | Id | Probe and target |
|---|---|---|---|
| 🔴 FAIL | Bearer token expired | `jwt.expired` | http https://api.example.com/v1/orders |
| 🔴 FAIL | Token for A & B \\<b>x\\</b> \\| \\[link\\](http://evil.test) \\&amp; \\`code\\` | `http.auth.invalid_token` | http https://api.example.com/v1/orders |

#### Other findings

| Severity | Finding | Id | Probe and target |
|---|---|---|---|
| 🟡 WARN | The name resolves to a non-public address | `dns.answer.private` | dns api.example.com |
| 🟢 PASS | TLS fine | `http.tls.ok` | http https://api.example.com/v1/orders |

#### What the findings say

- **Bearer token expired** (`jwt.expired`) Fix: Get a fresh token; check the client caches tokens no longer than their lifetime.

  ```text
  exp is 2026-01-01
  local clock 2026-01-02
  ```

- **Token for A & B \\<b>x\\</b> \\| \\[link\\](http://evil.test) \\&amp; \\`code\\`** (`http.auth.invalid_token`): The token is expired, revoked, malformed or issued for another resource. Fix: Get a fresh token from the right issuer for this API's audience.
- **The name resolves to a non-public address** (`dns.answer.private`): {dns_detail} Fix: {dns_fix}

### Readiness

| Item | Value |
|---|---|
| Ready | no |
| Score | 50% |

### Case

| Field | Value |
|---|---|
| case_id | CS-9 |

**summary:**

```text
Login fails
since Monday | for all & <b>
```

### Evidence

| File | Size | SHA-256 | Note |
|---|---|---|---|
| `evidence/notes.txt` | 6 B | `444e0fffbd825e96…` | n |
"""


def _dns() -> dict[str, str]:
    finding = catalogue.make("dns.answer.private")
    return {"dns_detail": finding.detail, "dns_fix": finding.remediation}


def test_terminal_leads_with_the_cause_and_its_next_step(invoke, tmp_path: Path, signer: str) -> None:
    result = invoke("packet", "show", packet(tmp_path, signer))
    assert result.exit_code == 3, result.stderr
    out = result.stdout
    lines = out.splitlines()
    assert lines[1].startswith("  signature  valid, signer ed25519:") and lines[3] == "  checklist  api-auth"
    # Causes first (what is wrong, what to do next), findings under their cause, then readiness, case, evidence;
    # a multi-line answer and a multi-line detail keep their lines.
    assert out[out.index("  findings   "):] == TERMINAL.format(**_dns())


def test_markdown_order_and_plain_text_safety(invoke, tmp_path: Path, signer: str) -> None:
    result = invoke("packet", "show", packet(tmp_path, signer), "--markdown")
    assert result.exit_code == 3, result.stderr
    md = result.stdout
    assert md[md.index("- **Checklist:**"):] == MARKDOWN.format(**_dns())
    # Plain-text safe: no entity was made (the packet's own "&amp;" is escaped and shown as written);
    # safe rendered: outside fenced blocks (which interpret nothing) no tag, link or table break survives.
    assert "&lt;" not in md and "&gt;" not in md and "&#" not in md
    outside = re.sub(r"^( *)```text\n.*?\n\1```$", "", md, flags=re.S | re.M)
    assert outside.count("```") == 0
    assert re.search(r"(?<!\\)<[A-Za-z/!?]", outside) is None
    assert re.search(r"(?<!\\)\[", outside) is None


def test_json_carries_causes_and_groups(invoke, tmp_path: Path, signer: str) -> None:
    doc = json.loads(invoke("packet", "show", packet(tmp_path, signer), "--json").stdout)
    assert [c["rule"] for c in doc["causes"]] == ["token-expired"]
    groups = doc["findings_by_cause"]
    assert [g["cause"] for g in groups] == [0, None]
    assert [f["id"] for f in groups[0]["findings"]] == ["jwt.expired", "http.auth.invalid_token"]
    assert [f["id"] for f in groups[1]["findings"]][0] == "dns.answer.private"
    assert doc["case"]["summary"] == "Login fails\nsince Monday | for all & <b>"


def test_html_order_and_escaping(invoke, tmp_path: Path, signer: str) -> None:
    page = tmp_path / "p.html"
    assert invoke("packet", "show", packet(tmp_path, signer), "--html", page).exit_code == 3
    text = page.read_text("utf-8")
    order = [text.index(s) for s in ('id="causes"', "The access token has expired", "Next step:", 'id="findings"',
                                     'id="readiness"', 'id="evidence"', "<details>")]
    assert order == sorted(order)
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">" in text
    assert "<script" not in text and "src=" not in text and "href=\"http" not in text
    assert "Token for A &amp; B &lt;b&gt;x&lt;/b&gt; | [link](http://evil.test) &amp;amp; `code`" in text
    assert '<td class="multi">Login fails\nsince Monday | for all &amp; &lt;b&gt;</td>' in text


def test_a_cause_the_packet_carries_is_shown(invoke, tmp_path: Path, signer: str) -> None:
    """A result's own diagnosis (a plugin's rule this diagkit lacks) is a cause too, with its findings."""
    own = ProbeResult("acme", "widget.test", STARTED, 1, [Finding("acme.widget.jammed", Severity.FAIL, "Jammed")],
                      diagnosis=[Cause("The widget is jammed\x1b[2J", Severity.FAIL, ["acme.widget.jammed"],
                                       "Unjam it", "acme-jam")])
    out = invoke("packet", "show", packet(tmp_path, signer, results=[own])).stdout
    assert "  1. FAIL  The widget is jammed\\x1b[2J  [acme-jam]\n        next step: Unjam it\n" in out
    assert "  cause 1: The widget is jammed\\x1b[2J\n    FAIL  Jammed  [acme.widget.jammed]" in out


def test_no_cause_still_says_what_to_do(invoke, tmp_path: Path, signer: str) -> None:
    only = [ProbeResult("dns", "api.example.com", STARTED, 3, [catalogue.make("dns.answer.private")])]
    out = invoke("packet", "show", packet(tmp_path, signer, results=only)).stdout
    lines = out.splitlines()
    at = lines.index("likely causes (worst first)")
    assert lines[at + 1] == "  no diagnosis rule ties these findings; the worst one:"
    assert lines[at + 2].startswith("  WARN  ") and lines[at + 2].endswith("[dns.answer.private]")
    assert lines[at + 3].startswith("        next step: ")


ODD_HAR = json.dumps({"log": {"version": "1.2", "entries": [
    {"startedDateTime": "not a date", "time": -1, "request": {"method": 5, "url": None}, "response": "x",
     "timings": {"wait": 1e308, "dns": "x", "connect": -1}},
    {"startedDateTime": "2026-01-01T00:00:00Z", "request": {"method": "POST", "url": "https://sp.test/acs",
                                                            "postData": {"params": [{"name": "SAMLResponse"}]}},
     "response": {"status": 999}, "timings": None},
    7,
]}}).encode()


@pytest.mark.parametrize("har", [ODD_HAR, b'{"log": {"entries": []}}', b"not json at all", b"\xff\xfe\x00"])
def test_odd_but_valid_packets_always_show(invoke, tmp_path: Path, signer: str, har: bytes) -> None:
    odd = [ProbeResult("har", "evidence/odd.har", STARTED, 1, [Finding("har.request.slow", Severity.WARN, "slow",
                                                                       evidence={"entry": "x", "phase": 5})],
                       facts={"request_ids": "x", "saml_messages": [None, {"i": "1"}], "timeline": 5}),
           ProbeResult("tls", "t.test:443", STARTED, 1, [], facts={"chain": [None, {"not_after": 5}], "trusted": "?"}),
           ProbeResult("tls", "u.test:443", STARTED, 1, [], facts={}),
           ProbeResult("har", "evidence/missing.har", STARTED, 1, [])]
    path = packet(tmp_path, signer, results=odd, evidence=[Evidence("evidence/odd.har", har, "application/json", "")],
                  case={})
    for mode in ((), ("--markdown",), ("--json",), ("--html", tmp_path / "odd.html")):
        result = invoke("packet", "show", path, *mode)
        assert result.exit_code == 4, (mode, result.stderr)
        assert result.stderr == ""
    page = (tmp_path / "odd.html").read_text("utf-8")
    figures = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    readable = har != b"not json at all" and har != b"\xff\xfe\x00"
    assert figures == ((["HAR waterfall: evidence/odd.har"] if readable else []) +
                       (["SSO flow: evidence/odd.har"] if har == ODD_HAR else []) + ["Certificate chain: t.test:443"])


def test_a_stale_wording_of_a_known_cause_is_not_repeated(invoke, tmp_path: Path, signer: str) -> None:
    stale = results()
    stale[1].diagnosis = [Cause("Token expired (older wording)", Severity.FAIL, ["jwt.expired"], "Refresh", "old")]
    doc = json.loads(invoke("packet", "show", packet(tmp_path, signer, results=stale), "--json").stdout)
    assert [c["rule"] for c in doc["causes"]] == ["token-expired"]
