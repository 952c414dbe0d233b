"""`diagkit probe webhook` and `probe webhook-signature` through the CLI.

Deliveries go to real loopback receivers that verify each vendor's scheme with their own code below
(the hmac module, written from the vendors' documentation, not from diagkit's). Offline checks use the
vendors' published example vectors where they exist and vectors computed here otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from tests.cli_results import assert_one_error_line, find, ids, run_json
from tests.servers import Request, Response, server_context

STANDARD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
STRIPE_SECRET = "whsec_test7Yq3Nn0Kp2Lm5Rt8Vw1Xz4Bc6Df9Gh"
GITHUB_SECRET = "It's a Secret to Everybody"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PLAIN_SECRET = "plain-secret-4f1c2b9e7d"
SECRETS = {"standard": STANDARD_SECRET, "stripe": STRIPE_SECRET, "github": GITHUB_SECRET,
           "slack": SLACK_SECRET, "hmac-sha256": PLAIN_SECRET}


def _hex(key: bytes, content: bytes) -> str:
    return hmac.new(key, content, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- receivers: each vendor's check, done here


def verify_standard(req: Request, secret: str, body: bytes | None = None) -> bool:
    body = req.body if body is None else body
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{req.headers['webhook-id']}.{req.headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    sent = [s.split(",", 1)[1] for s in req.headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    fresh = abs(time.time() - int(req.headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, s) for s in sent)


def verify_stripe(req: Request, secret: str, body: bytes | None = None) -> bool:
    body = req.body if body is None else body
    parts = [p.split("=", 1) for p in req.headers.get("stripe-signature", "").split(",")]
    t = next(v for k, v in parts if k == "t")
    expected = _hex(secret.encode(), f"{t}.".encode() + body)  # Stripe: the whole whsec_ string is the key
    return abs(time.time() - int(t)) < 300 and any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


def verify_github(req: Request, secret: str, body: bytes | None = None) -> bool:
    body = req.body if body is None else body
    return hmac.compare_digest("sha256=" + _hex(secret.encode(), body), req.headers.get("x-hub-signature-256", ""))


def verify_slack(req: Request, secret: str, body: bytes | None = None) -> bool:
    body = req.body if body is None else body
    ts = req.headers["x-slack-request-timestamp"]
    expected = "v0=" + _hex(secret.encode(), b"v0:" + ts.encode() + b":" + body)
    return abs(time.time() - int(ts)) < 300 and hmac.compare_digest(expected, req.headers.get("x-slack-signature", ""))


def verify_plain(req: Request, secret: str, body: bytes | None = None) -> bool:
    body = req.body if body is None else body
    return hmac.compare_digest(_hex(secret.encode(), body), req.headers.get("x-signature", ""))


VERIFIERS = {"standard": verify_standard, "stripe": verify_stripe, "github": verify_github, "slack": verify_slack,
             "hmac-sha256": verify_plain}


def receiver(scheme: str, secret: str, reserialise: bool = False):
    """A receiver that answers 200 to a valid signature and 401 'invalid signature' otherwise.

    reserialise=True is the classic bug: it parses the JSON and verifies over json.dumps() of it.
    """
    def handle(req: Request) -> Response:
        body = json.dumps(json.loads(req.body)).encode() if reserialise else None
        try:
            ok = req.method == "POST" and VERIFIERS[scheme](req, secret, body)
        except (KeyError, StopIteration, ValueError):
            ok = False
        if ok:
            return Response(200, [("Content-Type", "application/json")], '{"received": true}')
        return Response(401, [("Content-Type", "text/plain")], "Webhook Error: invalid signature")
    return handle


def deliver(invoke, url, *args):
    result, doc = run_json(invoke, "probe", "webhook", url, *args, "--json")
    assert doc is not None, result.stderr
    return result, doc


def assert_no_secret(result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr


# ---------------------------------------------------------------- probe webhook: deliveries


@pytest.mark.parametrize("scheme", sorted(SECRETS))
def test_each_scheme_is_signed_as_the_vendor_documents(invoke, web, scheme):
    srv = web({"/hook": receiver(scheme, SECRETS[scheme])})
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", scheme, "--secret", SECRETS[scheme])
    assert result.exit_code == 0, doc["findings"]
    assert ids(doc) == {"webhook.delivered"}
    assert [r.method for r in srv.requests] == ["POST"]
    assert VERIFIERS[scheme](srv.requests[0], SECRETS[scheme])
    assert doc["facts"]["signed"] is True and doc["facts"]["key_id"].startswith("sha256:")
    assert doc["options"]["secret"] == "<redacted-secret>"  # recorded for replay, never the value
    assert_no_secret(result, SECRETS[scheme])


def test_secret_from_file_ignores_the_trailing_newline(invoke, web, tmp_path):
    path = tmp_path / "whsec.txt"
    path.write_text(STRIPE_SECRET + "\n")
    srv = web({"/hook": receiver("stripe", STRIPE_SECRET)})
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "stripe", "--secret", f"@{path}")
    assert result.exit_code == 0 and ids(doc) == {"webhook.delivered"}


def test_body_file_is_sent_byte_for_byte(invoke, web, tmp_path):
    raw = b'{"type":"order.created",\r\n "id": 7}\n'
    (tmp_path / "b.json").write_bytes(raw)
    srv = web({"/hook": receiver("github", GITHUB_SECRET)})
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "github", "--secret", GITHUB_SECRET,
                          "--body", f"@{tmp_path / 'b.json'}", "-H", "X-GitHub-Event: push")
    assert result.exit_code == 0
    assert srv.requests[0].body == raw
    assert srv.requests[0].headers["x-github-event"] == "push"
    assert srv.requests[0].headers["content-type"] == "application/json"


def test_a_307_is_a_failed_delivery_and_is_not_followed(invoke, web):
    srv = web({"/hook": Response(307, [("Location", "/v2/hook")]), "/v2/hook": receiver("standard", STANDARD_SECRET)})
    result, doc = deliver(invoke, srv.url("/hook"), "--secret", STANDARD_SECRET)
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.redirect"}
    redirect = find(doc, "webhook.redirect")
    assert redirect["severity"] == "fail"
    assert redirect["evidence"]["location"] == srv.url("/v2/hook")
    assert "/v2/hook" in redirect["title"] and "307" in redirect["title"]
    assert [r.route for r in srv.requests] == ["/hook"]


def test_a_301_to_https_says_to_register_the_https_url(invoke, web):
    srv = web({"/hook": Response(301, [("Location", "https://127.0.0.1/hook")])})
    result, doc = deliver(invoke, srv.url("/hook"))
    assert result.exit_code == 3
    assert "https://" in find(doc, "webhook.redirect")["detail"]


def test_a_receiver_with_another_secret_rejects_the_signature(invoke, web):
    srv = web({"/hook": receiver("stripe", "whsec_someOtherSecret123")})
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "stripe", "--secret", STRIPE_SECRET)
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.signature.rejected"}
    assert find(doc, "webhook.signature.rejected")["evidence"]["status"] == 401
    assert_no_secret(result, STRIPE_SECRET, "whsec_someOtherSecret123")


def test_a_400_saying_signature_is_a_signature_rejection(invoke, web):
    srv = web({"/hook": Response(400, [("Content-Type", "text/plain")], "No signatures found matching the expected "
                                 "signature for payload")})
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "stripe", "--secret", STRIPE_SECRET)
    assert result.exit_code == 3 and ids(doc) == {"webhook.signature.rejected"}


def test_a_receiver_that_verifies_reserialised_json_rejects_the_test_event(invoke, web):
    srv = web({"/hook": receiver("standard", STANDARD_SECRET, reserialise=True)})
    result, doc = deliver(invoke, srv.url("/hook"), "--secret", STANDARD_SECRET)
    assert result.exit_code == 3
    rejected = find(doc, "webhook.signature.rejected")
    assert rejected["evidence"]["body_changes_when_reserialised"]
    assert "re-serialised" in rejected["detail"]
    # The same delivery to a receiver that verifies the raw bytes is accepted: the body is not the problem.
    assert not verify_standard(srv.requests[0], STANDARD_SECRET, json.dumps(json.loads(srv.requests[0].body)).encode())
    assert verify_standard(srv.requests[0], STANDARD_SECRET)


def test_a_compact_body_also_fails_a_reserialising_receiver(invoke, web, tmp_path):
    (tmp_path / "b.json").write_bytes(b'{"type":"order.created","id":7}')
    srv = web({"/hook": receiver("github", GITHUB_SECRET, reserialise=True)})
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "github", "--secret", GITHUB_SECRET,
                          "--body", f"@{tmp_path / 'b.json'}")
    assert result.exit_code == 3 and ids(doc) == {"webhook.signature.rejected"}


def test_unsigned_delivery_to_a_verifying_receiver(invoke, web):
    srv = web({"/hook": receiver("github", GITHUB_SECRET)})
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "github")
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.signature.rejected"}
    assert "no signature was sent" in find(doc, "webhook.signature.rejected")["detail"]
    assert doc["facts"]["signed"] is False


def test_server_error(invoke, web):
    srv = web({"/hook": Response(503, [("Retry-After", "120")], "upstream down")})
    result, doc = deliver(invoke, srv.url("/hook"), "--secret", STANDARD_SECRET)
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.server_error"}
    assert find(doc, "webhook.server_error")["evidence"]["retry_after"] == "120"


def test_other_client_errors_are_rejections(invoke, web):
    srv = web({})
    result, doc = deliver(invoke, srv.url("/nowhere"), "--secret", STANDARD_SECRET)
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.rejected"}
    assert find(doc, "webhook.rejected")["evidence"]["status"] == 404


def test_slow_answer_is_a_warning(invoke, web):
    def slow(req: Request) -> Response:
        time.sleep(0.1)  # at least twice --slow-after: slow on any machine (a sleep is never shorter)
        return Response(204)

    srv = web({"/hook": slow})
    result, doc = deliver(invoke, srv.url("/hook"), "--slow-after", "0.05")
    assert result.exit_code == 4
    assert ids(doc) == {"webhook.delivered", "webhook.slow"}


def test_no_answer_within_the_timeout(invoke, web):
    import threading

    release = threading.Event()

    def stuck(req: Request) -> Response:
        release.wait(30)  # answers only once the probe has given up (or never, within the probe's life)
        return Response(200)

    srv = web({"/hook": stuck})
    try:
        result, doc = deliver(invoke, srv.url("/hook"), "--timeout", "0.2")
    finally:
        release.set()
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.timeout"}
    # The delivery reached the handler (the wait was for the answer, not the connection), exactly once.
    assert [(r.method, r.route) for r in srv.requests] == [("POST", "/hook")]


def test_silent_server_times_out(invoke, silent_server):
    srv = silent_server()
    result, doc = deliver(invoke, f"http://127.0.0.1:{srv.port}/hook", "--timeout", "0.2")
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.timeout"}
    assert srv.wait_closed() and srv.connections == 1 and srv.received[0].startswith(b"POST /hook HTTP/1.1\r\n")


def test_tls_handshake_that_never_completes_times_out(invoke, silent_server):
    srv = silent_server()
    result, doc = deliver(invoke, f"https://127.0.0.1:{srv.port}/hook", "--timeout", "0.2")
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.timeout"}
    assert find(doc, "webhook.timeout")["evidence"]["layer"] != "http"
    assert srv.wait_closed() and srv.connections == 1 and srv.received[0][:1] == b"\x16"  # a ClientHello only


def test_connection_refused_uses_the_http_probe_finding(invoke):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, doc = deliver(invoke, f"http://127.0.0.1:{port}/hook", "--timeout", "2")
    assert result.exit_code == 3
    assert ids(doc) == {"http.connect.failed"}
    assert find(doc, "http.connect.failed")["evidence"]["layer"] == "tcp"


def test_https_receiver_with_private_ca(invoke, http_server, ca, ca_file):
    srv = http_server({"/hook": receiver("slack", SLACK_SECRET)}, ssl_context=server_context(ca.issue_cert("127.0.0.1")))
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "slack", "--secret", SLACK_SECRET,
                          "--ca-file", ca_file)
    assert result.exit_code == 0 and ids(doc) == {"webhook.delivered"}
    result, doc = deliver(invoke, srv.url("/hook"), "--scheme", "slack", "--secret", SLACK_SECRET)
    assert result.exit_code == 3
    assert find(doc, "http.connect.failed")["evidence"]["layer"] == "tls"


@pytest.mark.parametrize("scheme, secret, message", [
    ("standard", "whsec_not base64!", "not a Standard Webhooks secret"),
    ("stripe", "sk_live_abcdef0123456789", "Stripe API key"),
    ("slack", "xoxb-1234-5678-abcdef", "Slack OAuth token"),
])
def test_a_secret_in_the_wrong_format_is_one_line_without_the_secret(invoke, scheme, secret, message):
    result, _ = run_json(invoke, "probe", "webhook", "http://127.0.0.1:9/hook", "--scheme", scheme,
                         "--secret", secret, "--json")
    assert_one_error_line(result, message)
    assert_no_secret(result, secret)


def test_a_url_that_can_never_work_is_a_usage_error(invoke):
    for url in ("ftp://example.test/hook", "http://127.0.0.1:99999/hook"):
        result = invoke("probe", "webhook", url, "--secret", STANDARD_SECRET)
        assert result.exit_code == 2 and "Traceback" not in result.stderr


def test_missing_secret_or_body_file(invoke, tmp_path):
    result, _ = run_json(invoke, "probe", "webhook", "http://127.0.0.1:9/", "--secret", f"@{tmp_path}/nope.txt")
    assert_one_error_line(result, "nope.txt")
    result, _ = run_json(invoke, "probe", "webhook", "http://127.0.0.1:9/", "--body", f"@{tmp_path}/nope.json")
    assert_one_error_line(result, "nope.json")


# ---------------------------------------------------------------- probe webhook-signature: offline


def check(invoke, tmp_path, body: bytes, headers: list[str], secret: str, *args: str, now: str | None = None):
    path = tmp_path / "body.bin"
    path.write_bytes(body)
    argv = ["probe", "webhook-signature", str(path), "--secret", secret, "--json", *args]
    for h in headers:
        argv += ["-H", h]
    result, doc = run_json(invoke, *argv, env={"DIAGKIT_NOW": now} if now else None)
    assert doc is not None, result.stderr
    assert_no_secret(result, secret)
    return result, doc


def iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SW_ID, SW_TS, SW_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SLACK_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
              b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
              b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
              b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")


def sw_headers(sig: str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") -> list[str]:
    return [f"webhook-id: {SW_ID}", f"webhook-timestamp: {SW_TS}", f"webhook-signature: {sig}"]


def test_standard_webhooks_published_vector(invoke, tmp_path):
    result, doc = check(invoke, tmp_path, SW_BODY, sw_headers(), SW_SECRET, now=iso(SW_TS + 10))
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}
    assert doc["facts"]["scheme"] == "standard" and doc["facts"]["scheme_detected"] is True


def test_github_published_vector(invoke, tmp_path):
    header = "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    result, doc = check(invoke, tmp_path, b"Hello, World!", [header], GITHUB_SECRET)
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}
    assert doc["facts"]["scheme"] == "github"


def test_slack_published_vector(invoke, tmp_path):
    headers = ["X-Slack-Request-Timestamp: 1531420618",
               "X-Slack-Signature: v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"]
    result, doc = check(invoke, tmp_path, SLACK_BODY, headers, SLACK_SECRET, now=iso(1531420618 + 60))
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}


def test_stripe_vector_computed_here(invoke, tmp_path):
    body = b'{\n  "id": "evt_1",\n  "object": "event"\n}'
    ts = 1700000000
    sig = _hex(STRIPE_SECRET.encode(), f"{ts}.".encode() + body)
    header = f"Stripe-Signature: t={ts},v1={sig},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    result, doc = check(invoke, tmp_path, body, [header], STRIPE_SECRET, now=iso(ts + 5))
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}
    assert doc["facts"]["scheme"] == "stripe"


def test_plain_hmac_in_a_header_that_names_a_signature(invoke, tmp_path):
    body = b'{"a":1}'
    result, doc = check(invoke, tmp_path, body, [f"X-Acme-Signature: sha256={_hex(PLAIN_SECRET.encode(), body)}"],
                        PLAIN_SECRET)
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}
    assert doc["facts"]["scheme"] == "hmac-sha256"


@pytest.mark.parametrize("signed, given, expect", [
    (b'{"b": 1, "a": [1, 2]}', b'{"b":1,"a":[1,2]}', "JSON with a space after"),
    (b'{"b":1,"a":[1,2]}', b'{"b": 1, "a": [1, 2]}', "compact JSON"),
    (b'{"a":[1,2],"b":1}', b'{"b": 1, "a": [1, 2]}', "key-sorted compact JSON"),
    (json.dumps({"b": 1, "a": [1, 2]}, indent=2).encode(), b'{"b":1,"a":[1,2]}', "indented by 2 spaces"),
    (b'{"b":1}\n', b'{"b":1}', "a trailing newline added"),
    (b'{"b":1}', b'{"b":1}\n', "the trailing newline removed"),
    (b"line one\r\nline two\r\n", b"line one\nline two\n", "LF line ends turned into CRLF"),
])
def test_mismatch_names_the_body_that_would_match(invoke, tmp_path, signed, given, expect):
    sig = _hex(GITHUB_SECRET.encode(), signed)
    result, doc = check(invoke, tmp_path, given, [f"X-Hub-Signature-256: sha256={sig}"], GITHUB_SECRET)
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.signature.mismatch"}
    mismatch = find(doc, "webhook.signature.mismatch")
    assert expect in mismatch["title"], mismatch["title"]
    assert mismatch["evidence"]["would_match"][0]["body"]


def test_mismatch_names_another_scheme(invoke, tmp_path):
    body = b'{"id":"evt_1"}'
    ts = 1700000000
    # The receiver expects Stripe's header, but the value was computed the Slack way (v0:ts:body).
    sig = _hex(STRIPE_SECRET.encode(), f"v0:{ts}:".encode() + body)
    result, doc = check(invoke, tmp_path, body, [f"Stripe-Signature: t={ts},v1={sig}"], STRIPE_SECRET,
                        now=iso(ts))
    assert result.exit_code == 3
    mismatch = find(doc, "webhook.signature.mismatch")
    assert "Slack" in mismatch["title"]


def test_mismatch_names_the_secret_read_as_text(invoke, tmp_path):
    # A Standard Webhooks header signed with the whole whsec_ string as the key (Stripe's reading).
    content = f"{SW_ID}.{SW_TS}.".encode() + SW_BODY
    sig = base64.b64encode(hmac.new(SW_SECRET.encode(), content, hashlib.sha256).digest()).decode()
    result, doc = check(invoke, tmp_path, SW_BODY, sw_headers("v1," + sig), SW_SECRET, now=iso(SW_TS))
    assert result.exit_code == 3
    assert "as text" in find(doc, "webhook.signature.mismatch")["title"]


def test_mismatch_with_nothing_nearby_says_so(invoke, tmp_path):
    result, doc = check(invoke, tmp_path, SW_BODY, sw_headers(), "whsec_" + base64.b64encode(b"x" * 32).decode(),
                        now=iso(SW_TS))
    assert result.exit_code == 3
    mismatch = find(doc, "webhook.signature.mismatch")
    assert "would_match" not in mismatch["evidence"]
    assert mismatch["evidence"]["key_id"].startswith("sha256:")


def test_timestamp_outside_tolerance(invoke, tmp_path):
    result, doc = check(invoke, tmp_path, SW_BODY, sw_headers(), SW_SECRET, now=iso(SW_TS + 3600))
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.signature.valid", "webhook.signature.timestamp"}  # authentic, but too old
    stamp = find(doc, "webhook.signature.timestamp")
    assert stamp["evidence"]["age_s"] == 3600 and stamp["evidence"]["signature_matches"] is True
    # The same request checked at the time it was received, or with a wider tolerance, is valid.
    result, doc = check(invoke, tmp_path, SW_BODY, sw_headers(), SW_SECRET, "--at", iso(SW_TS + 1),
                        now=iso(SW_TS + 3600))
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}
    result, doc = check(invoke, tmp_path, SW_BODY, sw_headers(), SW_SECRET, "--tolerance", "7200",
                        now=iso(SW_TS + 3600))
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}


def test_future_timestamp_and_wrong_signature_both_reported(invoke, tmp_path):
    result, doc = check(invoke, tmp_path, b"{}", sw_headers(), SW_SECRET, now=iso(SW_TS - 900))
    assert result.exit_code == 3
    assert ids(doc) == {"webhook.signature.mismatch", "webhook.signature.timestamp"}
    assert "in the future" in find(doc, "webhook.signature.timestamp")["title"]


def test_missing_signature(invoke, tmp_path):
    result, doc = check(invoke, tmp_path, b"{}", ["Content-Type: application/json"], GITHUB_SECRET)
    assert result.exit_code == 3 and ids(doc) == {"webhook.signature.missing"}


def test_scheme_given_but_the_request_is_signed_per_another(invoke, tmp_path):
    header = "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    result, doc = check(invoke, tmp_path, b"Hello, World!", [header], GITHUB_SECRET, "--scheme", "stripe")
    assert result.exit_code == 3 and ids(doc) == {"webhook.signature.mismatch"}
    assert "--scheme github" in find(doc, "webhook.signature.mismatch")["title"]
    # The same header with a signature that does not verify either: the Stripe signature is simply missing.
    result, doc = check(invoke, tmp_path, b"Hello, World?", [header], GITHUB_SECRET, "--scheme", "stripe")
    assert result.exit_code == 3 and ids(doc) == {"webhook.signature.missing"}
    assert "--scheme github" in find(doc, "webhook.signature.missing")["detail"]


def test_header_without_its_timestamp_is_missing(invoke, tmp_path):
    result, doc = check(invoke, tmp_path, b"{}", ["X-Slack-Signature: v0=" + "ab" * 32], SLACK_SECRET)
    assert result.exit_code == 3 and ids(doc) == {"webhook.signature.missing"}


def test_headers_pasted_as_one_block(invoke, tmp_path):
    result, doc = check(invoke, tmp_path, SW_BODY, ["\n".join(sw_headers())], SW_SECRET, now=iso(SW_TS))
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}


def test_offline_bad_input(invoke, tmp_path):
    result, _ = run_json(invoke, "probe", "webhook-signature", str(tmp_path / "none.json"), "--secret", "s")
    assert_one_error_line(result, "none.json")
    (tmp_path / "b.json").write_bytes(b"{}")
    result, _ = run_json(invoke, "probe", "webhook-signature", str(tmp_path / "b.json"), "-H", "webhook-id: 1")
    assert_one_error_line(result, "--secret is required")
    result, _ = run_json(invoke, "probe", "webhook-signature", str(tmp_path / "b.json"), "--secret", "s",
                         "-H", "no colon here")
    assert_one_error_line(result, "Name: value")


def test_delivery_and_offline_check_agree(invoke, web, tmp_path):
    """What `probe webhook` sends, `probe webhook-signature` accepts: one scheme module serves both."""
    srv = web({"/hook": Response(204)})
    for scheme, secret in SECRETS.items():
        srv.requests.clear()
        result, _ = deliver(invoke, srv.url("/hook"), "--scheme", scheme, "--secret", secret)
        assert result.exit_code == 0
        req = srv.requests[0]
        headers = [f"{k}: {v}" for k, v in req.headers.items()]
        result, doc = check(invoke, tmp_path, req.body, headers, secret)
        assert ids(doc) == {"webhook.signature.valid"}, (scheme, doc["findings"])
        assert doc["facts"]["scheme"] == scheme


# ---------------------------------------------------------------- the checklist uses both probes


def test_webhook_checklist_runs_both_probes_and_keeps_the_secret_out(invoke, http_server, ca, tmp_path,
                                                                     monkeypatch):
    import zipfile

    import yaml

    bundle = tmp_path / "trust.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # checklist probes take no --ca-file: trust it process-wide
    srv = http_server({"/hook": receiver("stripe", STRIPE_SECRET)},
                      ssl_context=server_context(ca.issue_cert("127.0.0.1")))
    body = b'{\n  "id": "evt_1",\n  "type": "invoice.paid"\n}'
    ts = int(time.time())
    (tmp_path / "delivery.json").write_bytes(b'{"id":"evt_1","type":"invoice.paid"}')  # as a receiver logged it
    headers = f"Content-Type: application/json\nStripe-Signature: t={ts},v1={_hex(STRIPE_SECRET.encode(), f'{ts}.'.encode() + body)}"
    answers = {"summary": "signature failures", "expected_result": "2xx", "actual_result": "400 from our receiver",
               "first_seen": "2026-11-23 09:40 +01:00", "impact": "all-events", "tenant": "acme",
               "webhook_url": srv.url("/hook"), "delivery_ids": "evt_1", "signing_scheme": "stripe",
               "signing_secret": STRIPE_SECRET, "delivery_body_file": str(tmp_path / "delivery.json"),
               "delivery_headers": headers}
    (tmp_path / "answers.yaml").write_text(yaml.safe_dump(answers))
    out = tmp_path / "p.zip"
    result = invoke("collect", "--checklist", "webhook-delivery-failure", "--answers", tmp_path / "answers.yaml",
                    "--yes", "--timeout", "5", "-o", out)
    assert out.exists(), result.stderr
    with zipfile.ZipFile(out) as zf:
        packet = {name: zf.read(name) for name in zf.namelist()}
    results = json.loads(packet["findings.json"])["results"]
    by_probe = {r["probe"]: {f["id"] for f in r["findings"]} for r in results}
    assert by_probe["webhook"] == {"webhook.delivered"}
    mismatch = by_probe["webhook-signature"]
    assert mismatch == {"webhook.signature.mismatch"}
    for data in packet.values():
        assert STRIPE_SECRET.encode() not in data


def test_plain_signature_is_found_beside_its_timestamp_header(invoke, tmp_path):
    body = b'{"a":1}'
    headers = ["X-Signature-Timestamp: 1700000000", f"X-Signature: {_hex(PLAIN_SECRET.encode(), body)}"]
    result, doc = check(invoke, tmp_path, body, headers, PLAIN_SECRET)
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}
    assert doc["facts"]["signature_header"] == "X-Signature"


def test_plain_scheme_reads_githubs_header(invoke, tmp_path):
    header = "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    result, doc = check(invoke, tmp_path, b"Hello, World!", [header], GITHUB_SECRET, "--scheme", "hmac-sha256")
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}


def test_scheme_from_a_checklist_answer_in_any_case(invoke, tmp_path):
    header = "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    result, doc = check(invoke, tmp_path, b"Hello, World!", [header], GITHUB_SECRET, "--scheme", "GitHub")
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}


def test_a_header_block_copied_from_a_log(invoke, tmp_path):
    block = "\n".join(["POST /hook HTTP/1.1", ":authority: hooks.example.com", *sw_headers(), ""])
    result, doc = check(invoke, tmp_path, SW_BODY, [block], SW_SECRET, now=iso(SW_TS))
    assert result.exit_code == 0 and ids(doc) == {"webhook.signature.valid"}
