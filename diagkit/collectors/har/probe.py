"""HAR probe: reads a browser/proxy HAR export and reports what went wrong in the recorded session.

One pass over the entries (streamed for big files) feeds small accumulators; findings are made at the
end so repeated failures become one finding with a count. Evidence and facts carry URLs reduced to
origin + path + query parameter NAMES, never cookie, token, query or body values.

This module holds the pass itself, failed requests, HTTP and auth errors, CORS blocks and the facts; the
other checks live beside it: flow (SAML/OAuth/JWT in the flow), saml and cookies (SAML login state),
redirects, timing (slow requests, clock skew), cors, errors (error classes and bodies) and values (shared
helpers). The HAR itself is read by diagkit.formats.har.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from typing import Any

from diagkit.collectors.har.cors import cross_origin, is_cors_mode, preflight_problem
from diagkit.collectors.har.errors import body_error, classify_error
from diagkit.collectors.har.flow import FlowChecks
from diagkit.collectors.har.redirects import RedirectLoops
from diagkit.collectors.har.timing import ClockSkew, SlowRequests
from diagkit.collectors.har.values import Group, short
from diagkit.context import Context
from diagkit.formats import har as hf
from diagkit.formats.har import number, parse_har_time, phases
from diagkit.formats.urls import hostname, origin_of, url_shape
from diagkit.probe import Option, Probe, Report

TIMELINE_LIMIT = 200
REQUEST_ID_LIMIT = 100

REQUEST_ID_HEADERS = (
    "x-request-id", "x-correlation-id", "correlation-id", "x-correlationid", "request-id", "x-ms-request-id",
    "x-ms-correlation-request-id", "client-request-id", "x-ms-client-request-id", "traceparent", "cf-ray",
    "x-amzn-trace-id", "x-amzn-requestid", "x-amz-request-id", "x-amz-cf-id", "x-b3-traceid",
    "x-cloud-trace-context", "x-trace-id", "x-datadog-trace-id", "x-github-request-id", "x-vercel-id",
    "x-served-by", "x-edge-request-id", "x-okta-request-id", "x-auth0-requestid", "x-transaction-id",
    "x-fastly-request-id", "fly-request-id", "x-azure-ref", "apigw-requestid",
)

_REDIRECTS = {301, 302, 303, 307, 308}


class Analysis:
    """Accumulates what one pass over the entries saw; `finish` turns it into findings and facts."""

    def __init__(self, ctx: Context, report: Report, *, slow_ms: float, slow_wait_ms: float,
                 max_skew_s: float, timeline_limit: int, expect: dict[str, str | None] | None = None) -> None:
        self.ctx, self.report = ctx, report
        self.timeline_limit = timeline_limit
        self.count = 0
        self.t0: _dt.datetime | None = None
        self.last_end: _dt.datetime | None = None
        self.timeline: list[dict[str, Any]] = []
        self.status_classes: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()
        self.hosts: set[str] = set()
        self.failed: dict[tuple[str, str, str], Group] = {}
        self.http_errors: dict[tuple[int, str, str], Group] = {}
        self.auth: dict[tuple[int, str], Group] = {}
        self.cors: dict[tuple[str, str], Group] = {}
        self.request_ids: list[dict[str, Any]] = []
        self.request_ids_total = 0
        self.skipped: set[str] = set()
        self.slow = SlowRequests(slow_ms, slow_wait_ms)
        self.skew = ClockSkew(max_skew_s)
        self.redirects = RedirectLoops()
        self.flow = FlowChecks(ctx, report, self.skipped, expect)

    # ------------------------------------------------------------------ per entry

    def entry(self, index: int, entry: dict) -> None:
        self.count += 1
        req, resp = hf.request_of(entry), hf.response_of(entry)
        url = str(req.get("url") or "")
        shown = url_shape(url)
        method = str(req.get("method") or "").upper()
        status = hf.status_of(entry)
        started = parse_har_time(entry.get("startedDateTime") or req.get("startedDateTime"))
        ph = phases(entry.get("timings"))
        total = number(entry.get("time"))
        if total is None:
            total = sum(ph.values()) if ph else None
        if started is not None:
            if self.t0 is None:
                self.t0 = started
            try:
                end = started + _dt.timedelta(milliseconds=total or 0)
            except OverflowError:  # a start near year 9999 in a crafted file
                end = started
            if self.last_end is None or end > self.last_end:
                self.last_end = end
        if method:
            self.methods[method] += 1
        host = hostname(url)
        if host:
            self.hosts.add(host)
        error = resp.get("_error") or entry.get("_error") or resp.get("_errorText")
        error = str(error) if error else None
        self.status_classes["failed" if status == 0 else f"{status // 100}xx"] += 1

        if len(self.timeline) < self.timeline_limit:
            offset = int((started - self.t0).total_seconds() * 1000) if started and self.t0 else None
            row: dict[str, Any] = {"i": index, "t_ms": offset, "method": method, "url": shown, "status": status,
                                   "ms": round(total) if total is not None else None}
            if status == 0 and error:
                row["error"] = short(error, 60)
            self.timeline.append(row)

        ids = self._request_ids(index, req, resp, shown, status)
        if status == 0:
            self._failed(index, req, resp, url, shown, method, error, ids)
        else:
            self._response(index, entry, req, resp, url, shown, method, status, ids, started)
        self.slow.note(index, entry, shown, method, status, total, ph)
        self.skew.note(entry, resp, url, status, started)
        self.flow.entry(index, req, resp, url, shown, status, started)

    def _request_ids(self, index: int, req: dict, resp: dict, shown: str, status: int) -> list[str]:
        found: list[str] = []
        for part in (resp, req):
            hmap = hf.header_map(part)
            for name in REQUEST_ID_HEADERS:
                value = hmap.get(name)
                if value and len(value) <= 200 and f"{name}: {value}" not in found:
                    found.append(f"{name}: {value}")
        if not found:
            return []
        self.request_ids_total += 1
        row = {"i": index, "status": status, "url": shown,
               "ids": {k: v for k, _, v in (f.partition(": ") for f in found)}}
        problem = status == 0 or status >= 400
        if len(self.request_ids) < REQUEST_ID_LIMIT:
            self.request_ids.append(row)
        elif problem:
            # Keep the ids of failing requests: they are what an escalation needs most.
            for pos, old in enumerate(self.request_ids):
                if not (old["status"] == 0 or old["status"] >= 400):
                    self.request_ids[pos] = row
                    break
        return found

    def _failed(self, index: int, req: dict, resp: dict, url: str, shown: str, method: str,
                error: str | None, ids: list[str]) -> None:
        kind, explanation = classify_error(error)
        page = cross_origin(req, url)
        if kind == "failed" and page and is_cors_mode(req, ""):
            reason = ("the CORS preflight (OPTIONS) failed" if method == "OPTIONS"
                      else "the browser got no usable response for a cross-origin request (net::ERR_FAILED)")
            self._cors(index, shown, page, method, reason, ids)
            return
        key = (kind, short(error or "", 120), origin_of(url) or "")
        group = self.failed.setdefault(key, Group(evidence={"class": kind, "explanation": explanation}))
        group.note(index, shown, ids)

    def _cors(self, index: int, shown: str, page: str, method: str, reason: str, ids: list[str]) -> None:
        group = self.cors.setdefault((shown, reason), Group(evidence={"page_origin": page, "method": method}))
        group.note(index, shown, ids)

    def _response(self, index: int, entry: dict, req: dict, resp: dict, url: str, shown: str, method: str,
                  status: int, ids: list[str], started: _dt.datetime | None) -> None:
        rtype = str(entry.get("_resourceType") or "").lower()
        page = cross_origin(req, url)
        upgrade = status == 101 or (hf.header(req, "upgrade") or "").lower() == "websocket"
        if upgrade:
            pass  # WebSocket handshakes are not subject to CORS
        elif page and method == "OPTIONS" and hf.header(req, "access-control-request-method"):
            reason = preflight_problem(req, resp, page, status)
            if reason:
                self._cors(index, shown, page, method, reason, ids)
        elif page and is_cors_mode(req, rtype) and rtype != "document":
            allowed = hf.header(resp, "access-control-allow-origin")
            if allowed is None and status != 304:
                self._cors(index, shown, page, method,
                           "the cross-origin response has no Access-Control-Allow-Origin header", ids)
            elif allowed is not None and allowed.strip() not in ("*", page) and status != 304:
                self._cors(index, shown, page, method,
                           "Access-Control-Allow-Origin names a different origin than the page's", ids)

        if status in _REDIRECTS:
            target = self.redirects.note(index, resp, url, shown, started)
            if target is not None:
                self.flow.oauth_in_url(target, f"redirect Location of HAR entry {index}")
        if status in (401, 403, 407):
            self._unauthorized(index, entry, resp, shown, method, status, ids)
        elif status >= 400:
            key = (status, method, shown)
            group = self.http_errors.get(key)
            if group is None:
                group = self.http_errors[key] = Group(evidence={"status": status, "method": method, "url": shown})
                details = body_error(hf.response_text(entry, limit=200_000))
                if details:
                    group.evidence["body"] = details
                ctype = hf.mime_type(entry)
                if ctype:
                    group.evidence["content_type"] = ctype
            group.note(index, shown, ids)

    def _unauthorized(self, index: int, entry: dict, resp: dict, shown: str, method: str, status: int,
                      ids: list[str]) -> None:
        key = (status, shown)
        group = self.auth.get(key)
        if group is None:
            name = "proxy-authenticate" if status == 407 else "www-authenticate"
            values = hf.headers(resp, name)
            evidence: dict[str, Any] = {"status": status, "method": method, "url": shown}
            challenges = self._challenges(values)
            if challenges:
                evidence["challenge"] = challenges
            elif status in (401, 407):
                evidence["challenge"] = None
            details = body_error(hf.response_text(entry, limit=200_000))
            if details:
                evidence["body"] = details
            group = self.auth[key] = Group(evidence=evidence)
        group.note(index, shown, ids)

    def _challenges(self, values: list[str]) -> list[dict[str, Any]]:
        if not values:
            return []
        from diagkit.formats import www_authenticate
        out = []
        for challenge in www_authenticate.parse_all(values):
            item = challenge.safe_dict()
            params = item.get("params")
            item["params"] = {k: short(v, 200) for k, v in (params.items() if isinstance(params, dict) else ())}
            out.append(item)
        return out[:5]

    # ------------------------------------------------------------------ findings

    def finish(self) -> None:
        r = self.report
        for (kind, error, origin), g in self.failed.items():
            sev = "info" if kind == "aborted" else "warn" if kind == "no_response" else None
            label = error or "no response"
            r.add("har.request.failed",
                  f"{g.count} request{'s' if g.count > 1 else ''} to {origin or 'a URL'} failed: {label}",
                  detail=g.evidence["explanation"],
                  evidence={"error": error or None, "class": kind, "count": g.count, "first_entry": g.first,
                            "urls": g.urls, **({"request_ids": g.request_ids} if g.request_ids else {})},
                  severity=sev)
        for (shown, reason), g in self.cors.items():
            r.add("har.cors.blocked", f"Cross-origin request to {shown} blocked: {reason}",
                  detail=f"The page at {g.evidence['page_origin']} called {shown}; {reason}.",
                  evidence={**g.evidence, "url": shown, "reason": reason, "count": g.count, "first_entry": g.first})
        for (status, _shown), g in self.auth.items():
            challenge = g.evidence.get("challenge")
            if challenge:
                parts = []
                for c in challenge:
                    params = c.get("params") or {}
                    bits = [f'{k}="{params[k]}"' for k in ("error", "error_description", "scope", "realm")
                            if params.get(k)]
                    parts.append(f"{c.get('scheme')} {', '.join(bits)}".strip())
                detail = "Challenge: " + "; ".join(parts)
            elif status in (401, 407):
                detail = (f"{status} without a {'Proxy' if status == 407 else 'WWW'}-Authenticate challenge "
                          "(RFC 9110 requires one), so the client cannot tell how to authenticate.")
            else:
                detail = "403: the credentials were accepted but do not grant access (permission, scope or policy)."
            r.add("har.auth.unauthorized", f"{status} from {g.evidence['method']} {g.evidence['url']}"
                  + (f" ({g.count} times)" if g.count > 1 else ""), detail=detail,
                  evidence={**g.evidence, "count": g.count, "first_entry": g.first,
                            **({"request_ids": g.request_ids} if g.request_ids else {})})
            self.flow.bearer_error(status, g, challenge or [])
        for (status, _m, _u), g in self.http_errors.items():
            fid = "har.response.server_error" if status >= 500 else "har.response.client_error"
            body = g.evidence.get("body") or {}
            code = body.get("error") or body.get("code") or body.get("error_code") or body.get("errorCode")
            r.add(fid, f"{status} from {g.evidence['method']} {g.evidence['url']}"
                  + (f" ({g.count} times)" if g.count > 1 else ""),
                  detail=(f"Error code in the body: {code}." if code else ""),
                  evidence={**g.evidence, "count": g.count, "first_entry": g.first,
                            **({"request_ids": g.request_ids} if g.request_ids else {})})
        too_many = [g for (kind, _e, _o), g in self.failed.items() if kind == "redirect_loop"]
        self.redirects.finish(self.report, too_many)
        self.slow.finish(self.report)
        self.skew.finish(self.report)
        self.flow.finish()

    def facts(self, source: hf.HarSource) -> dict[str, Any]:
        meta = source.meta
        raw = meta.get("creator")
        creator = raw if isinstance(raw, dict) else {}
        facts: dict[str, Any] = {
            "har_version": meta.get("version"),
            "creator": " ".join(str(creator.get(k)) for k in ("name", "version") if creator.get(k)) or None,
            "size_bytes": source.size,
            "streamed": source.streamed,
            "entries": self.count,
            "pages": len(meta["pages"]) if isinstance(meta.get("pages"), list) else 0,
            "started": self.t0.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if self.t0 else None,
            "span_ms": int((self.last_end - self.t0).total_seconds() * 1000) if self.t0 and self.last_end else None,
            "counts": {"status": dict(sorted(self.status_classes.items())), "methods": dict(self.methods.most_common()),
                       "hosts": len(self.hosts), "slow": self.slow.count},
            "request_ids": self.request_ids,
        }
        if self.request_ids_total > len(self.request_ids):
            facts["request_ids_note"] = (f"{self.request_ids_total} entries carry request ids; "
                                         f"{len(self.request_ids)} listed, failing requests first")
        if self.flow.saml:
            facts["saml_messages"] = self.flow.saml[:50]
        facts["timeline"] = self.timeline
        if self.count > len(self.timeline):
            facts["timeline_truncated"] = True
            facts["timeline_note"] = f"first {len(self.timeline)} of {self.count} entries shown"
        if self.skipped:
            facts["checks_skipped"] = sorted(self.skipped)
        return facts


def run(ctx: Context, report: Report, target: str, slow_ms: int = 3000, slow_wait_ms: int = 2000,
        max_skew: int = 300, timeline_limit: int = TIMELINE_LIMIT, expect_audience: str | None = None,
        expect_issuer: str | None = None, expect_destination: str | None = None, idp_metadata: str | None = None,
        idp_cert: str | None = None, ca_file: str | None = None) -> None:
    del ca_file  # already in ctx (the CLI passes --ca-file to the Context)
    from diagkit.collectors.saml import trust as saml_trust
    from diagkit.errors import InputFormatError

    try:
        source = hf.open_har(target)
    except InputFormatError as exc:
        report.add("har.invalid", detail=exc.message,
                   evidence={"file": target})
        return
    expect = {"audience": expect_audience, "issuer": expect_issuer, "destination": expect_destination}
    # The IdP's signing certificates, when given, judge every SAMLResponse's signature (saml_trust).
    anchors = saml_trust.load(ctx, report, idp_metadata, idp_cert)
    analysis = Analysis(ctx, report, slow_ms=slow_ms, slow_wait_ms=slow_wait_ms, max_skew_s=max_skew,
                        timeline_limit=max(0, timeline_limit), expect=expect)
    analysis.flow.anchors = anchors
    try:
        for index, entry in enumerate(source.entries()):
            analysis.entry(index, entry)
    except InputFormatError as exc:
        # A big file broken half-way: keep what the entries before the break showed.
        report.add("har.invalid", detail=exc.message,
                   evidence={"file": target, "entries_read": analysis.count})
    analysis.finish()
    report.facts.update(analysis.facts(source))
    if analysis.count == 0 and not any(f.id == "har.invalid" for f in report.findings):
        # Nothing was checked: never let an empty recording read as "no problems" (CONTRACT.md `error`).
        report.add("har.entries.empty", f"HAR file '{target}' holds no requests",
                   evidence={"file": target, "entries": 0})
        return
    if not report.problems():
        report.add("har.ok", f"No problems found in {analysis.count} HAR entries",
                   detail="Checked failed requests, HTTP errors, auth challenges, CORS, redirects, timings, "
                          "clock skew, and SAML/OAuth/JWT material in the flow.")


probe = Probe(
    name="har",
    summary="Analyse a HAR file: failed requests, HTTP/auth/CORS errors, redirect loops, slow calls, SSO problems.",
    target="FILE",
    run=run,
    options=(
        Option("slow_ms", "A request whose total time reaches this is slow.", type=int, default=3000, metavar="MS"),
        Option("slow_wait_ms", "A request waiting this long for the first byte is slow.", type=int, default=2000,
               metavar="MS"),
        Option("max_skew", "Allowed difference between the client clock and the servers' Date headers.",
               type=int, default=300, metavar="SECONDS"),
        Option("timeline_limit", "How many entries the timeline in the facts lists.", type=int,
               default=TIMELINE_LIMIT, metavar="N"),
        Option("expect_audience", "The SP entityID (SAML Audience) or OIDC client id (ID token aud) expected.",
               metavar="A"),
        Option("expect_issuer", "The IdP entityID (SAML Issuer) or OIDC issuer (ID token iss) expected.",
               metavar="I"),
        Option("expect_destination", "The SP's ACS URL: each SAMLResponse's Destination/Recipient must equal it.",
               metavar="URL"),
        Option("idp_metadata", "The IdP's metadata (URL or file): SAMLResponse signatures must verify with a "
               "signing certificate it publishes.", metavar="URL|FILE"),
        Option("idp_cert", "The IdP signing certificate(s) the SP trusts (PEM/DER file).", metavar="PEM"),
        Option("ca_file", "Extra trusted CA certificates (PEM) for an https --idp-metadata URL.", metavar="PEM"),
    ),
    default_timeout=60.0,
    max_calls=10,
    example="diagkit probe har login.har --expect-audience https://app.example.com/saml "
            "--expect-destination https://app.example.com/saml/acs --expect-issuer http://www.okta.com/exk1",
    description="Analyse HAR 1.2 files exported by a browser or proxy. Reports failed requests (with the class "
                "of browser error), 4xx/5xx with their error codes, 401/403 with the parsed challenge, CORS "
                "blocks, redirect loops and HTTPS->HTTP hops, slow requests with their dominant phase, client "
                "clock skew, and SAML/OAuth/JWT problems inside the flow: each SAMLResponse checked as by "
                "probe saml-response (against the --expect-* values), InResponseTo against the AuthnRequest "
                "sent, RelayState over 80 bytes, and SP cookies lost on the ACS POST (SameSite). Evidence "
                "never holds cookie, token, query or body values.",
    network=False,
)

