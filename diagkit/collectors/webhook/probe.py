"""`probe webhook`: one test delivery made the way webhook senders make it, and what the receiver's answer means.

Senders POST once, never follow redirects, give up after their timeout and count only a 2xx as
delivered (Standard Webhooks 1.0, "Operational considerations"); GitHub allows 10 s, Slack 3 s. The
delivery is signed per the chosen vendor scheme (webhook_schemes) when --secret is given. Connection,
DNS and TLS failures are judged by the HTTP probe's own exchange code (http.connect.failed). The
secret never appears in facts, findings or errors: only its key id (a SHA-256 prefix of the key).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from diagkit.collectors.http.exchange import (
    ConnectFailure,
    Exchange,
    report_connect_failure,
    response_facts,
    send,
)
from diagkit.collectors.http.request import is_secret_header, normalise_url, parse_headers, recorded_header
from diagkit.collectors.webhook import bodies as webhook_bodies
from diagkit.collectors.webhook import schemes as webhook_schemes
from diagkit.errors import InputError, read_input_bytes
from diagkit.formats.urls import is_loopback, masked_url, origin_parts
from diagkit.probe import Option, Probe, Report
from diagkit.scrub import scrub

if TYPE_CHECKING:
    from diagkit.context import Context

SECRET_LIMIT = 64 * 1024
# Vendors that publish how long they wait: an answer past half of it is slow even under a longer --timeout.
VENDOR_TIMEOUT_S = {"slack": 3.0, "github": 10.0}
BODY_LIMIT = 10 * 1024 * 1024
# A receiver's answer that blames the signature (framework and vendor-library messages), whatever the status.
_SIGNATURE_COMPLAINT = re.compile(
    r"(?i)(signature|hmac|signing secret|webhook secret|x-hub-signature|stripe-signature|"
    r"x-slack-signature|webhook-signature|timestamp (?:too old|outside|expired)|replay)")


def read_secret(value: str) -> str:
    """--secret VALUE or @FILE; a file's trailing newline is not part of the secret. Never echoed."""
    if value.startswith("@"):
        path = value[1:]
        raw = read_input_bytes(path, "secret file", limit=SECRET_LIMIT)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"secret file '{path}' is not UTF-8 text") from None
        text = text.strip()
        if not text or "\n" in text:
            raise InputError(f"secret file '{path}' is empty or holds more than one line")
        return text
    return value


def read_body(value: str) -> bytes:
    """--body @FILE (sent byte for byte) or an inline value."""
    if value.startswith("@"):
        return read_input_bytes(value[1:], "body file", limit=BODY_LIMIT)
    return value.encode("utf-8")


def recorded_body(value: str) -> str:
    """--body as results may record it: a file name is kept (replay reads the same file); inline text may
    hold anything, so it is not."""
    from diagkit.probe import SECRET

    return value if value.startswith("@") else SECRET


def content_type(body: bytes) -> str:
    if webhook_bodies.load_json(body, limit=BODY_LIMIT) is not None:
        return "application/json"
    if re.fullmatch(rb"[\w.~%+-]+=[\w.~%+*-]*(&[\w.~%+-]+=[\w.~%+*-]*)*", body.strip()):
        return "application/x-www-form-urlencoded"  # Slack's slash commands and interactivity
    return "text/plain; charset=utf-8" if _is_text(body) else "application/octet-stream"


def _is_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def excerpt(body: bytes, limit: int = 200) -> str:
    """The start of a receiver's answer, credentials masked and control/bidi characters made visible."""
    import unicodedata

    text = body[: limit * 4].decode("utf-8", "replace")
    text = " ".join(text.split())[:limit]
    shown = "".join(c if c.isprintable() and unicodedata.category(c) not in ("Cf", "Zl", "Zp")
                    else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)
    return scrub(shown)


def run(ctx: Context, report: Report, target: str, scheme: str = "standard", secret: str | None = None,
        body: str | None = None, header: tuple[str, ...] = (), ca_file: str | None = None,
        signature_header: str | None = None, slow_after: float | None = None) -> None:
    import httpx

    from diagkit import __version__

    url = normalise_url(target)
    name = (scheme or "standard").strip().lower()
    if name not in webhook_schemes.SCHEMES:
        raise InputError(f"--scheme '{scheme}' is not one of {', '.join(webhook_schemes.NAMES)}")
    chosen = webhook_schemes.SCHEMES[name]
    extra = parse_headers(header or ())
    plain_header = signature_header or webhook_schemes.PLAIN_HEADER
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", plain_header):
        raise InputError("--signature-header is not a header name")
    key = chosen.key(read_secret(secret)) if secret is not None else None

    timestamp = int(ctx.now().timestamp())
    msg_id = (str(uuid.uuid4()) if chosen.name == "github" else
              webhook_bodies.new_id("evt_" if chosen.name in ("stripe", "slack") else "msg_"))
    payload = read_body(body) if body is not None else webhook_bodies.sample_event(chosen.name, timestamp, msg_id)

    headers = [("Content-Type", content_type(payload))]
    headers += webhook_schemes.event_headers(chosen, timestamp, msg_id, __version__)
    signature_headers = webhook_schemes.sign(chosen, key, payload, timestamp, msg_id, plain_header) if key else []
    headers += signature_headers
    given = {n.lower() for n, _ in extra}
    headers = [(n, v) for n, v in headers if n.lower() not in given] + extra  # -H wins over diagkit's own

    report.facts["url"] = masked_url(url)
    report.facts["scheme"] = chosen.name
    report.facts["signed"] = key is not None
    if key is not None:
        report.facts["key_id"] = webhook_schemes.key_id(key)
    report.facts["request"] = {
        "method": "POST", "header_names": [n for n, _ in headers],
        "headers": {n: ("<redacted>" if is_secret_header(n) and not _is_signature(n, signature_headers) else v)
                    for n, v in headers},
        "body": _body_facts(payload, body is None),
        "timeout_s": ctx.timeout,
    }
    if url.lower().startswith("http://") and not is_loopback(url):
        report.add("webhook.endpoint.insecure", "The webhook endpoint is plain HTTP",
                   detail="Deliveries travel unencrypted, and many senders (Stripe in live mode, for one) "
                          "accept only https:// endpoints.", evidence={"url": masked_url(url)})

    try:
        client = ctx.http_client(verify=True, follow_redirects=False)  # senders never follow redirects
    except (ValueError, httpx.InvalidURL) as exc:
        raise InputError(f"proxy settings in the environment are not usable: {scrub(str(exc))}") from None
    with client:
        try:
            ex = send(client, ctx, "POST", url, headers, content=payload)
        except ConnectFailure as failure:
            if failure.timed_out:
                _timeout(report, url, ctx.timeout, None, failure)
            else:
                report_connect_failure(report, url, failure, "delivery")
            return
    report.facts["response"] = response_facts(ex)
    if ex.elapsed_ms > ctx.timeout * 1000:  # each read stayed under the timeout, the whole answer did not
        _timeout(report, url, ctx.timeout, ex.elapsed_ms)
        return
    _judge(report, ex, chosen, key is not None, payload)
    budget = min(ctx.timeout, VENDOR_TIMEOUT_S.get(chosen.name, ctx.timeout))
    threshold_ms = (slow_after if slow_after is not None else budget / 2) * 1000
    if ex.elapsed_ms > threshold_ms:
        report.add("webhook.slow", f"The receiver took {ex.elapsed_ms / 1000:.1f} s to answer",
                   detail=(f"That is more than {threshold_ms / 1000:g} s of the sender's {budget:g} s: under "
                           "load, deliveries will time out and be retried. Answer 2xx at once and do the work "
                           "afterwards (a queue). Slack allows 3 s, GitHub 10 s."),
                   evidence={"elapsed_ms": ex.elapsed_ms, "threshold_ms": int(threshold_ms),
                             "timeout_s": ctx.timeout})


def _is_signature(name: str, signature_headers: list[tuple[str, str]]) -> bool:
    # Signature values are MACs of this one test body, not the secret: the receiver's owner needs them.
    return any(name.lower() == n.lower() for n, _ in signature_headers)


def _body_facts(payload: bytes, generated: bool) -> dict[str, Any]:
    import hashlib

    facts: dict[str, Any] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
                             "generated_by_diagkit": generated, "json": webhook_bodies.load_json(payload) is not None}
    return facts


def _timeout(report: Report, url: str, timeout: float, elapsed_ms: int | None, failure: ConnectFailure | None = None) -> None:
    """Any timeout, connect or answer: a sender's delivery log says "timeout" for both, and both fail it."""
    if failure is not None and failure.layer != "http":
        what = (f"no connection was made within {timeout:g} s ({failure.reason}): a firewall or IP allow-list "
                "that drops the sender's packets, or a host that is down")
    elif elapsed_ms:
        what = f"the receiver accepted the delivery but took {elapsed_ms / 1000:.1f} s to answer"
    else:
        what = f"the receiver accepted the connection but did not answer within {timeout:g} s"
    report.add("webhook.timeout", f"No answer within the sender's {timeout:g} s timeout",
               detail=(f"At {masked_url(url)}, {what}. A sender counts this as a failed delivery and retries it "
                       "(often disabling the endpoint after repeated failures), even if the receiver processes "
                       "it later."),
               evidence={"timeout_s": timeout, "layer": failure.layer if failure else "http",
                         **({"elapsed_ms": elapsed_ms} if elapsed_ms else {})})


def _judge(report: Report, ex: Exchange, scheme: webhook_schemes.Scheme, signed: bool, payload: bytes) -> None:
    status = ex.status
    said = excerpt(ex.body) if ex.body else ""
    evidence: dict[str, Any] = {"status": status, **({"response_excerpt": said} if said else {})}
    if 200 <= status < 300:
        what = (f"with a {scheme.label} signature it accepted (or does not check)" if signed else "unsigned")
        report.add("webhook.delivered", f"POST answered {status} {ex.reason} in {ex.elapsed_ms} ms: delivered",
                   detail=f"The test delivery was sent {what}; a sender counts a 2xx as delivered.",
                   evidence={**evidence, "elapsed_ms": ex.elapsed_ms, "scheme": scheme.name})
        return
    if 300 <= status < 400:
        _redirect(report, ex, evidence)
        return
    complains = bool(said) and _SIGNATURE_COMPLAINT.search(said) is not None
    if status >= 400 and (complains or (signed and status in (401, 403))):
        sensitive = webhook_bodies.reserialisations(payload)
        detail = (f"The receiver answered {status} " + (f"saying \"{said[:120]}\"" if complains else "")
                  + (" to a delivery signed per the " + scheme.label + " scheme" if signed else
                     " although no signature was sent (give --secret and --scheme)") + ". ")
        if signed:
            detail += ("Check that the receiver holds the same secret (compare key ids), uses the " + scheme.label
                       + " scheme, and computes the HMAC over the raw request bytes"
                       + (": this body's bytes change when parsed and re-serialised, so a receiver that "
                          "verifies re-serialised JSON rejects it" if sensitive else "")
                       + ". Run `diagkit probe webhook-signature` on a request the receiver logged.")
        report.add("webhook.signature.rejected", f"The receiver rejected the signature ({status})", detail=detail,
                   evidence={**evidence, "scheme": scheme.name, "signed": signed,
                             **({"body_changes_when_reserialised": sensitive[:4]} if sensitive else {})})
        return
    if 400 <= status < 500:
        report.add("webhook.rejected", f"The receiver rejected the delivery: {status} {ex.reason}",
                   detail=_client_error_meaning(status), evidence=evidence)
        return
    if 500 <= status < 600:
        retry_after = ex.header("retry-after")
        report.add("webhook.server_error", f"The receiver failed: {status} {ex.reason}",
                   detail=("The receiver's own code or its gateway failed; the sender will retry with backoff "
                           "and may disable the endpoint. Look up this request in the receiver's log."
                           + (" 502/504 usually mean the application behind the gateway is down or too slow."
                              if status in (502, 504) else "")),
                   evidence={**evidence, **({"retry_after": retry_after} if retry_after else {})})
        return
    report.add("webhook.rejected", f"The receiver answered an unusable status {status}",
               detail="Only a 2xx counts as delivered.", evidence=evidence)


def _client_error_meaning(status: int) -> str:
    meaning = {
        400: "The receiver could not use the request (body format, content type, or a signature it could not parse).",
        401: "The receiver wants credentials: usually a signature (give --secret and --scheme), or a token.",
        403: "The receiver refuses this sender: a signature it does not accept, or an IP allow-list or WAF rule "
             "(senders publish the addresses they deliver from).",
        404: "Nothing is routed at this path: check the URL registered with the sender (path, trailing slash).",
        405: "The endpoint does not accept POST at this path: senders always POST.",
        410: "410 Gone tells a sender to disable the endpoint and stop sending to it.",
        413: "The body is larger than the receiver or its gateway accepts.",
        415: "The receiver does not accept this Content-Type.",
        429: "The receiver (or its gateway) rate-limits the sender: deliveries are delayed and retried.",
    }.get(status, "A 4xx is a failed delivery; the sender retries it and may disable the endpoint.")
    return meaning + " Only a 2xx counts as delivered."


def _redirect(report: Report, ex: Exchange, evidence: dict[str, Any]) -> None:
    location = ex.header("location")
    try:
        target = masked_url(urljoin(ex.url, location.strip())) if location else None
    except ValueError:
        target = "<invalid Location URL>"
    why = ""
    if target and target != "<invalid Location URL>":
        here, there = urlsplit(ex.url), urlsplit(target)
        if here.scheme == "http" and there.scheme == "https" and origin_parts(target)[1] == origin_parts(ex.url)[1]:
            why = " The endpoint redirects plain HTTP to HTTPS: register the https:// URL."
        elif origin_parts(target) == origin_parts(ex.url) and here.path.rstrip("/") == there.path.rstrip("/"):
            why = " Only the trailing slash differs: register the URL exactly as the receiver routes it."
    kept = " (307/308 would keep the POST, but senders do not follow it)" if ex.status in (307, 308) else ""
    report.add("webhook.redirect", f"The receiver answered {ex.status} redirecting to {target or '(no Location)'}",
               detail=(f"Webhook senders do not follow redirects{kept}: the delivery fails as a {ex.status}."
                       + why + " Register the final URL with the sender."),
               evidence={**evidence, "location": target})


probe = Probe(
    name="webhook",
    summary="Send one signed test delivery like a webhook sender (POST, no redirects, sender timeout) and judge it.",
    target="URL",
    run=run,
    options=(
        Option("scheme", "Signature scheme of the sender.", default="standard", choices=webhook_schemes.NAMES),
        Option("secret", "Signing secret in the vendor's own format (or @FILE). Never shown; its key id is.",
               metavar="VALUE|@FILE", secret=True),
        Option("body", "Body to send byte for byte (@FILE, or inline text) instead of diagkit's test event.",
               metavar="@FILE", secret=recorded_body),
        Option("header", "Extra request header 'Name: value' (repeatable; replaces diagkit's own of that name).",
               multiple=True, flags=("-H", "--header"), metavar="'NAME: VALUE'", secret=recorded_header),
        Option("ca_file", "Extra trusted CA certificates (PEM).", metavar="PEM"),
        Option("signature_header", f"Header for the hmac-sha256 scheme's hex signature [default: "
               f"{webhook_schemes.PLAIN_HEADER}].", metavar="NAME"),
        Option("slow_after", "Seconds after which an answer counts as slow [default: half the timeout].",
               type=float, metavar="S"),
    ),
    default_timeout=10.0,
    max_calls=2,  # one POST: connect and read may each take the timeout, never more
    check_target=normalise_url,
    example="diagkit probe webhook https://hooks.example.com/orders --scheme stripe --secret @whsec.txt",
    description=(
        "Send one test delivery to a webhook receiver the way senders do: a POST, signed per --scheme when "
        "--secret is given (Standard Webhooks whsec_ secrets, Stripe-Signature, GitHub X-Hub-Signature-256, "
        "Slack v0, plain HMAC-SHA256), redirects never followed, one timeout (--timeout, default 10 s). "
        "Reports a 2xx as delivered, and otherwise why a sender would count it as failed: a redirect (and "
        "where to), a rejected signature, another 4xx, a 5xx, a timeout or a slow answer. The secret is never "
        "shown; its key id (sha256 prefix) is."
    ),
)
