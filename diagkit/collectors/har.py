"""HAR probe: reads a browser/proxy HAR export and reports what went wrong in the recorded session.

One pass over the entries (streamed for big files) feeds small accumulators; findings are made at the
end so repeated failures become one finding with a count. Evidence and facts carry URLs reduced to
origin + path + query parameter NAMES, never cookie, token, query or body values.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from diagkit.collectors import har_file as hf
from diagkit.context import Context
from diagkit.probe import Option, Probe, Report

TIMELINE_LIMIT = 200
REQUEST_ID_LIMIT = 100
GROUP_SAMPLE = 5  # URLs kept per grouped finding
SLOW_REPORT_LIMIT = 10
REDIRECT_LOOP_REPEATS = 3
LOOP_WINDOW_S = 15.0  # an SSO loop goes round in a second or two; page reloads are further apart
LOOP_WINDOW_ENTRIES = 25

REQUEST_ID_HEADERS = (
    "x-request-id", "x-correlation-id", "correlation-id", "x-correlationid", "request-id", "x-ms-request-id",
    "x-ms-correlation-request-id", "client-request-id", "x-ms-client-request-id", "traceparent", "cf-ray",
    "x-amzn-trace-id", "x-amzn-requestid", "x-amz-request-id", "x-amz-cf-id", "x-b3-traceid",
    "x-cloud-trace-context", "x-trace-id", "x-datadog-trace-id", "x-github-request-id", "x-vercel-id",
    "x-served-by", "x-edge-request-id", "x-okta-request-id", "x-auth0-requestid", "x-transaction-id",
    "x-fastly-request-id", "fly-request-id", "x-azure-ref", "apigw-requestid",
)

# (markers in the error text, class, explanation). First match wins, so specific markers come first.
_ERROR_CLASSES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("ERR_TOO_MANY_REDIRECTS", "NS_ERROR_REDIRECT_LOOP"), "redirect_loop",
     "The browser gave up after too many redirects: a redirect loop (often an SSO session cookie that is not kept)."),
    (("ERR_CERT_", "ERR_SSL_", "ERR_BAD_SSL", "SEC_ERROR_", "SSL_ERROR_", "MOZILLA_PKIX_ERROR", "CERTIFICATE",
      "TLS HANDSHAKE"), "tls",
     "The TLS handshake or certificate check failed: an expired, untrusted or wrong-host certificate, or a "
     "TLS-inspecting proxy. Check the host with `diagkit probe tls HOST`."),
    (("ERR_NAME_NOT_RESOLVED", "ERR_NAME_RESOLUTION_FAILED", "ERR_DNS_", "NS_ERROR_UNKNOWN_HOST",
      "NAME OR SERVICE NOT KNOWN", "GETADDRINFO", "NODENAME NOR SERVNAME"), "dns",
     "The host name did not resolve on the client. Check it with `diagkit probe dns HOST` (VPN, split DNS, typo)."),
    (("ERR_BLOCKED_BY_CLIENT",), "blocked_by_client",
     "A browser extension (ad, privacy or security blocker) cancelled the request. Retry in a private window "
     "or a profile without extensions."),
    (("ERR_BLOCKED_BY_ADMINISTRATOR", "ERR_BLOCKED_BY_RESPONSE", "ERR_BLOCKED_BY_ORB", "ERR_BLOCKED_BY_CSP",
      "NS_ERROR_CONTENT_BLOCKED", "ERR_BLOCKED_BY_PRIVATE_NETWORK"), "blocked_by_policy",
     "The browser blocked the request by policy: an administrator policy, CSP, CORP/COEP/ORB or Private "
     "Network Access rule. The browser console names the rule."),
    (("ERR_PROXY_", "ERR_TUNNEL_CONNECTION_FAILED", "NS_ERROR_PROXY", "ERR_MANDATORY_PROXY"), "proxy",
     "The proxy refused or could not reach the destination. Check the proxy settings and its allow-list."),
    (("ERR_INTERNET_DISCONNECTED", "ERR_NETWORK_CHANGED", "ERR_NETWORK_ACCESS_DENIED", "NS_ERROR_OFFLINE",
      "ERR_NETWORK_IO_SUSPENDED"), "network",
     "The client was offline or its network changed (Wi-Fi, VPN) while the request ran."),
    (("ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED", "ERR_CONNECTION_TIMED_OUT",
      "ERR_CONNECTION_FAILED", "ERR_CONNECTION_ABORTED", "ERR_ADDRESS_UNREACHABLE", "ERR_ADDRESS_INVALID",
      "ERR_TIMED_OUT", "NS_ERROR_CONNECTION_REFUSED", "NS_ERROR_NET_RESET", "NS_ERROR_NET_TIMEOUT",
      "CONNECT CALL FAILED", "CONNECTION REFUSED", "CONNECTION RESET", "TIMED OUT", "TIMEOUT"), "connection",
     "The connection to the server failed (nothing listening, a firewall, or a timeout). Check the port and "
     "the network path from the client."),
    (("ERR_EMPTY_RESPONSE", "ERR_CONTENT_LENGTH_MISMATCH", "ERR_INCOMPLETE_CHUNKED_ENCODING", "ERR_HTTP2_",
      "ERR_QUIC_", "ERR_SPDY_", "ERR_INVALID_HTTP_RESPONSE", "ERR_RESPONSE_HEADERS", "ERR_INVALID_CHUNKED",
      "ERR_CONTENT_DECODING_FAILED", "NS_ERROR_NET_PARTIAL_TRANSFER", "NS_ERROR_NET_INTERRUPT",
      "NS_ERROR_CORRUPTED_CONTENT"), "protocol",
     "The server closed the connection or sent a truncated or malformed response (a proxy, load balancer "
     "or crashed backend)."),
    (("ERR_ABORTED", "NS_BINDING_ABORTED", "ERR_CANCELED", "CANCELED", "CANCELLED"), "aborted",
     "The browser cancelled the request (the page navigated away or a newer request replaced it); usually harmless."),
    (("ERR_FAILED",), "failed",
     "A generic browser failure: in Chrome most often a CORS rejection, a service worker or an extension. The "
     "browser console says which."),
)
_NO_RESPONSE = ("no_response",
                "No response was recorded: the request was still pending when the HAR was saved, was cancelled, "
                "or was blocked before it was sent (Firefox records CORS and blocked requests this way).")
_UNKNOWN = ("other", "The request failed without an HTTP response; see the error text.")

_REDIRECTS = {301, 302, 303, 307, 308}


# ----------------------------------------------------------------------------------- small helpers


def safe_url(url: Any) -> str:
    """origin + path + query (and fragment) parameter NAMES only: safe to show and to put in a packet."""
    if not isinstance(url, str) or not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}{f':{port}' if port else ''}" if parts.scheme and host else ""
    out = origin + parts.path
    names = [p.split("=", 1)[0] for p in parts.query.split("&") if p] if parts.query else []
    if names:
        out += "?" + "&".join(dict.fromkeys(names))
    frag = [p.split("=", 1)[0] for p in parts.fragment.split("&") if "=" in p] if parts.fragment else []
    if frag:
        out += "#" + "&".join(dict.fromkeys(frag))
    return out[:300]


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:  # "http://[::1" and other URLs that are not URLs
        return None


def origin_of(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{host.lower()}" + (f":{port}" if port and port != default else "")


def _path_key(url: str) -> str:
    """origin + path: what identifies "the same page" across repeated visits with changing query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return f"{origin_of(url) or ''}{parts.path or '/'}"


def _parse_time(value: Any) -> _dt.datetime | None:
    from diagkit.context import parse_time

    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        pass
    # Some exporters write more than 6 fractional digits or a space separator.
    text = value.strip().replace(" ", "T", 1)
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return parse_time(text)
    except ValueError:
        return None


def _http_date(value: str | None) -> _dt.datetime | None:
    from email.utils import parsedate_to_datetime

    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment


_MAX_TIMING_MS = 1e10  # about 115 days; nothing a browser records takes longer


def _number(value: Any) -> float | None:
    """A timing value, or None for -1 / missing / junk (HAR uses -1 for "does not apply")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # NaN, Infinity and absurd values (crafted or corrupt exports) would overflow date arithmetic.
    return float(value) if 0 <= value <= _MAX_TIMING_MS else None


def _short(text: Any, limit: int = 160) -> str:
    from diagkit.scrub import scrub

    return scrub(" ".join(str(text).split()))[:limit]


def classify_error(error: str | None) -> tuple[str, str]:
    """(class, explanation) for a browser/proxy error text; no_response when there is none."""
    if not error:
        return _NO_RESPONSE
    upper = error.upper()
    for markers, name, explanation in _ERROR_CLASSES:
        if any(m in upper for m in markers):
            return name, explanation
    return _UNKNOWN


def phases(timings: Any) -> dict[str, float]:
    """Exclusive timing phases in ms; ssl is taken out of connect, which already includes it (HAR 1.2)."""
    if not isinstance(timings, dict):
        return {}
    out = {name: v for name in ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")
           if (v := _number(timings.get(name))) is not None}
    if "ssl" in out and "connect" in out:
        # mitmproxy reports ssl apart from connect; only subtract when connect really contains it.
        if out["connect"] >= out["ssl"]:
            out["connect"] -= out["ssl"]
    return out


def body_error(text: str | None) -> dict[str, str]:
    """error / code / message from a JSON or problem+json error body (codes and short messages only)."""
    import json

    if not text or text.lstrip()[:1] not in ("{", "["):
        return {}
    try:
        doc = json.loads(text[:200_000])
    except (ValueError, RecursionError):
        return {}
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    if not isinstance(doc, dict):
        return {}
    out: dict[str, str] = {}
    err = doc.get("error")
    if isinstance(err, dict):  # Google/Azure style {"error": {"code": ..., "message": ...}}
        for key in ("code", "status", "message"):
            if isinstance(err.get(key), str | int) and key not in out:
                out["code" if key == "status" and "code" not in err else key] = str(err[key])
    elif isinstance(err, str | int):
        out["error"] = str(err)
    for key in ("code", "error_code", "errorCode", "errorSummary", "error_description", "message", "title",
                "type", "detail"):
        value = doc.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            out.setdefault(key, str(value))
    errors = doc.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        for key in ("code", "message"):
            if isinstance(errors[0].get(key), str | int):
                out.setdefault(key, str(errors[0][key]))
    return {k: _short(v) for k, v in list(out.items())[:6]}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:12]


# ----------------------------------------------------------------------------------- the analysis


@dataclass
class _Group:
    count: int = 0
    first: int = 0
    urls: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)

    def note(self, index: int, url: str, ids: list[str]) -> None:
        if not self.count:
            self.first = index
        self.count += 1
        if url not in self.urls and len(self.urls) < GROUP_SAMPLE:
            self.urls.append(url)
        for rid in ids:
            if rid not in self.request_ids and len(self.request_ids) < GROUP_SAMPLE:
                self.request_ids.append(rid)


@dataclass
class _Token:
    token: str
    when: _dt.datetime
    server_date: _dt.datetime | None
    where: str


class Analysis:
    """Accumulates what one pass over the entries saw; `finish` turns it into findings and facts."""

    def __init__(self, ctx: Context, report: Report, *, slow_ms: float, slow_wait_ms: float,
                 max_skew_s: float, timeline_limit: int) -> None:
        self.ctx, self.report = ctx, report
        self.slow_ms, self.slow_wait_ms, self.max_skew_s = slow_ms, slow_wait_ms, max_skew_s
        self.timeline_limit = timeline_limit
        self.count = 0
        self.t0: _dt.datetime | None = None
        self.last_end: _dt.datetime | None = None
        self.timeline: list[dict[str, Any]] = []
        self.status_classes: Counter[str] = Counter()
        self.methods: Counter[str] = Counter()
        self.hosts: set[str] = set()
        self.failed: dict[tuple[str, str, str], _Group] = {}
        self.http_errors: dict[tuple[int, str, str], _Group] = {}
        self.auth: dict[tuple[int, str], _Group] = {}
        self.cors: dict[tuple[str, str], _Group] = {}
        self.slow: list[dict[str, Any]] = []
        self.slow_count = 0
        self.edges: Counter[tuple[str, str]] = Counter()
        # edge -> (index, time) of its last occurrence, and the longest run of quick repeats
        self.edge_last: dict[tuple[str, str], tuple[int, _dt.datetime | None]] = {}
        self.edge_run: dict[tuple[str, str], int] = {}
        self.edge_best: Counter[tuple[str, str]] = Counter()
        self.edge_first: dict[tuple[str, str], int] = {}
        self.insecure: dict[tuple[str, str], _Group] = {}
        self.skews: list[float] = []
        self.skew_hosts: dict[str, list[float]] = {}
        self.request_ids: list[dict[str, Any]] = []
        self.request_ids_total = 0
        self.oauth_seen: set[tuple[str, str]] = set()
        self.tokens: dict[str, _Token] = {}
        self.saml: list[dict[str, Any]] = []
        self.skipped: set[str] = set()

    # ------------------------------------------------------------------ per entry

    def entry(self, index: int, entry: dict) -> None:
        self.count += 1
        req, resp = hf.request_of(entry), hf.response_of(entry)
        url = str(req.get("url") or "")
        shown = safe_url(url)
        method = str(req.get("method") or "").upper()
        status = hf.status_of(entry)
        started = _parse_time(entry.get("startedDateTime") or req.get("startedDateTime"))
        ph = phases(entry.get("timings"))
        total = _number(entry.get("time"))
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
        host = _hostname(url)
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
                row["error"] = _short(error, 60)
            self.timeline.append(row)

        ids = self._request_ids(index, req, resp, shown, status)
        if status == 0:
            self._failed(index, req, resp, url, shown, method, error, ids)
        else:
            self._response(index, entry, req, resp, url, shown, method, status, ids, started)
        self._slow(index, entry, resp, shown, method, status, total, ph)
        self._skew(entry, resp, url, status, started)
        self._auth_material(index, req, resp, url, shown, status, started)

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

    def _cross_origin(self, req: dict, url: str) -> str | None:
        """The page origin when the request went to another origin, else None."""
        page = hf.header(req, "origin")
        if not page or page == "null":
            page = origin_of(hf.header(req, "referer"))
        target = origin_of(url)
        if page and target and page.rstrip("/").lower() != target:
            return page.rstrip("/")
        return None

    def _is_cors_mode(self, req: dict, entry_type: str) -> bool:
        mode = (hf.header(req, "sec-fetch-mode") or "").lower()
        if mode:
            return mode == "cors"
        return entry_type in ("xhr", "fetch", "eventsource") or bool(hf.header(req, "origin"))

    def _failed(self, index: int, req: dict, resp: dict, url: str, shown: str, method: str,
                error: str | None, ids: list[str]) -> None:
        kind, explanation = classify_error(error)
        page = self._cross_origin(req, url)
        if kind == "failed" and page and self._is_cors_mode(req, ""):
            reason = ("the CORS preflight (OPTIONS) failed" if method == "OPTIONS"
                      else "the browser got no usable response for a cross-origin request (net::ERR_FAILED)")
            self._cors(index, shown, page, method, reason, ids)
            return
        key = (kind, _short(error or "", 120), origin_of(url) or "")
        group = self.failed.setdefault(key, _Group(evidence={"class": kind, "explanation": explanation}))
        group.note(index, shown, ids)

    def _cors(self, index: int, shown: str, page: str, method: str, reason: str, ids: list[str]) -> None:
        group = self.cors.setdefault((shown, reason), _Group(evidence={"page_origin": page, "method": method}))
        group.note(index, shown, ids)

    def _response(self, index: int, entry: dict, req: dict, resp: dict, url: str, shown: str, method: str,
                  status: int, ids: list[str], started: _dt.datetime | None) -> None:
        rtype = str(entry.get("_resourceType") or "").lower()
        page = self._cross_origin(req, url)
        upgrade = status == 101 or (hf.header(req, "upgrade") or "").lower() == "websocket"
        if upgrade:
            pass  # WebSocket handshakes are not subject to CORS
        elif page and method == "OPTIONS" and hf.header(req, "access-control-request-method"):
            reason = self._preflight_problem(req, resp, page, status)
            if reason:
                self._cors(index, shown, page, method, reason, ids)
        elif page and self._is_cors_mode(req, rtype) and rtype != "document":
            allowed = hf.header(resp, "access-control-allow-origin")
            if allowed is None and status != 304:
                self._cors(index, shown, page, method,
                           "the cross-origin response has no Access-Control-Allow-Origin header", ids)
            elif allowed is not None and allowed.strip() not in ("*", page) and status != 304:
                self._cors(index, shown, page, method,
                           "Access-Control-Allow-Origin names a different origin than the page's", ids)

        if status in _REDIRECTS:
            self._redirect(index, resp, url, shown, started)
        if status in (401, 403, 407):
            self._unauthorized(index, entry, resp, shown, method, status, ids)
        elif status >= 400:
            key = (status, method, shown)
            group = self.http_errors.get(key)
            if group is None:
                group = self.http_errors[key] = _Group(evidence={"status": status, "method": method, "url": shown})
                details = body_error(hf.response_text(entry, limit=200_000))
                if details:
                    group.evidence["body"] = details
                ctype = hf.mime_type(entry)
                if ctype:
                    group.evidence["content_type"] = ctype
            group.note(index, shown, ids)

    def _preflight_problem(self, req: dict, resp: dict, page: str, status: int) -> str | None:
        if not 200 <= status < 300:
            return f"the CORS preflight (OPTIONS) answered {status}, not 2xx"
        allowed = hf.header(resp, "access-control-allow-origin")
        if allowed is None:
            return "the CORS preflight response has no Access-Control-Allow-Origin header"
        if allowed.strip() not in ("*", page):
            return "the CORS preflight allows a different origin than the page's"
        want = (hf.header(req, "access-control-request-method") or "").strip().upper()
        methods = {m.strip().upper() for m in (hf.header(resp, "access-control-allow-methods") or "").split(",")}
        if want and want not in ("GET", "HEAD", "POST") and want not in methods and "*" not in methods:
            return f"the CORS preflight does not allow the method {want}"
        asked = {h.strip().lower() for h in (hf.header(req, "access-control-request-headers") or "").split(",")
                 if h.strip()}
        allowed_headers = {h.strip().lower() for h in
                           (hf.header(resp, "access-control-allow-headers") or "").split(",")}
        missing = sorted(asked - allowed_headers) if "*" not in allowed_headers else \
            sorted(h for h in asked - allowed_headers if h == "authorization")
        if missing:
            return "the CORS preflight does not allow the request headers " + ", ".join(missing[:5])
        return None

    def _redirect(self, index: int, resp: dict, url: str, shown: str, started: _dt.datetime | None) -> None:
        location = resp.get("redirectURL") or hf.header(resp, "location")
        if not location or not isinstance(location, str):
            return
        try:
            target = urljoin(url, location) if url else location
        except ValueError:  # one of the two is not a URL ("http://[::1")
            target = location
        edge = (_path_key(url), _path_key(target))
        self.edges[edge] += 1
        self.edge_first.setdefault(edge, index)
        last = self.edge_last.get(edge)
        quick = False
        if last is not None:
            if started is not None and last[1] is not None:
                quick = abs((started - last[1]).total_seconds()) <= LOOP_WINDOW_S
            else:
                quick = index - last[0] <= LOOP_WINDOW_ENTRIES
        self.edge_run[edge] = self.edge_run.get(edge, 0) + 1 if quick else 1
        self.edge_best[edge] = max(self.edge_best[edge], self.edge_run[edge])
        self.edge_last[edge] = (index, started)
        if url.lower().startswith("https:") and target.lower().startswith("http:"):
            key = (origin_of(url) or "", origin_of(target) or "")
            group = self.insecure.setdefault(key, _Group(evidence={"from": shown, "to": safe_url(target)}))
            group.note(index, shown, [])
        self._oauth_in_url(target, f"redirect Location of HAR entry {index}")

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
            group = self.auth[key] = _Group(evidence=evidence)
        group.note(index, shown, ids)

    def _challenges(self, values: list[str]) -> list[dict[str, Any]]:
        if not values:
            return []
        try:
            from diagkit.collectors import www_authenticate
        except ImportError:  # the parser is another module; degrade to the scheme names
            self.skipped.add("www_authenticate parser unavailable")
            return [{"scheme": v.split(" ", 1)[0], "params": {}} for v in values]
        out = []
        for challenge in www_authenticate.parse_all(values):
            item = challenge.safe_dict()
            item["params"] = {k: _short(v, 200) for k, v in dict(item.get("params") or {}).items()}
            out.append(item)
        return out[:5]

    def _slow(self, index: int, entry: dict, resp: dict, shown: str, method: str, status: int,
              total: float | None, ph: dict[str, float]) -> None:
        if total is None or status == 101 or entry.get("_webSocketMessages") is not None:
            return
        if hf.mime_type(entry) == "text/event-stream":
            return  # a server-sent event stream stays open on purpose
        wait = ph.get("wait", 0.0)
        if total < self.slow_ms and wait < self.slow_wait_ms:
            return
        self.slow_count += 1
        dominant = max(ph.items(), key=lambda kv: kv[1]) if ph else ("unknown", total)
        row = {"i": index, "method": method, "url": shown, "status": status, "total_ms": round(total),
               "phase": dominant[0], "phase_ms": round(dominant[1]),
               "timings_ms": {k: round(v, 1) for k, v in ph.items()}}
        self.slow.append(row)
        if len(self.slow) > SLOW_REPORT_LIMIT * 4:  # bound memory; keep the slowest
            self.slow.sort(key=lambda r: -r["total_ms"])
            del self.slow[SLOW_REPORT_LIMIT:]

    def _skew(self, entry: dict, resp: dict, url: str, status: int, started: _dt.datetime | None) -> None:
        if started is None or status == 0 or entry.get("_fromCache"):
            return  # a response from the browser cache carries the Date of when it was first fetched
        server = _http_date(hf.header(resp, "date"))
        if server is None:
            return
        skew = (started - server).total_seconds()
        age = (hf.header(resp, "age") or "").strip()
        if age.isascii() and age.isdigit() and len(age) < 12 and abs(skew - int(age)) < abs(skew):
            skew -= int(age)  # a shared cache keeps the origin's Date and adds Age (RFC 9111 §5.1)
        host = _hostname(url) or ""
        self.skews.append(skew)
        self.skew_hosts.setdefault(host, []).append(skew)

    # ------------------------------------------------------------------ SAML / OAuth / JWT inside the flow

    def _auth_material(self, index: int, req: dict, resp: dict, url: str, shown: str, status: int,
                       started: _dt.datetime | None) -> None:
        when = started or self.ctx.now()
        server_date = _http_date(hf.header(resp, "date"))
        # SAML messages: HTTP-POST binding in the form, HTTP-Redirect binding in the query string.
        for binding, params in (("HTTP-POST", hf.form_params(req)), ("HTTP-Redirect", hf.query_params(req))):
            for name, value in params:
                if name in ("SAMLResponse", "SAMLRequest") and value:
                    self._saml(index, name, binding, value, shown, when)
        if status != 0:
            self._oauth_in_url(url, f"request URL of HAR entry {index}")
        # Bearer tokens sent by the client.
        for value in hf.headers(req, "authorization"):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() in ("bearer", "dpop") and token:
                self._token(token.strip(), when, server_date, f"bearer token sent to {shown}")
        for name, value in hf.fragment_params(url) + hf.query_params(req):
            if name in ("id_token", "access_token") and value:
                self._token(value, when, server_date, f"{name} in the URL of {shown}")
        # Token endpoint responses and OAuth error bodies.
        if status:
            self._token_response(index, resp, shown, status, when, server_date)

    def _token_response(self, index: int, resp: dict, shown: str, status: int, when: _dt.datetime,
                        server_date: _dt.datetime | None) -> None:
        import json

        content = resp.get("content") if isinstance(resp.get("content"), dict) else {}
        mime = str(content.get("mimeType") or hf.header(resp, "content-type") or "").lower()
        if "json" not in mime:
            return
        text = hf.response_text({"response": resp}, limit=200_000)
        if not text or not text.lstrip().startswith("{"):
            return
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            return
        if not isinstance(doc, dict):
            return
        code = doc.get("error")
        if isinstance(code, str) and status >= 400 and self._is_oauth_code(code, doc):
            self._oauth(code, doc.get("error_description"), f"JSON response of HAR entry {index} ({shown})",
                        doc.get("error_uri"), shown)
        for name in ("id_token", "access_token"):
            value = doc.get(name)
            if isinstance(value, str) and value:
                self._token(value, when, server_date, f"{name} returned by {shown}")

    @staticmethod
    def _is_oauth_code(code: str, doc: dict[str, Any]) -> bool:
        try:
            from diagkit.collectors import oauth_errors
        except ImportError:
            return "error_description" in doc
        return oauth_errors.is_known(code) or (oauth_errors.looks_like_code(code) and
                                               ("error_description" in doc or "error_uri" in doc))

    def _oauth_in_url(self, url: str, where: str) -> None:
        from urllib.parse import parse_qsl

        try:
            params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        except ValueError:
            return
        params.update(hf.fragment_params(url))
        code = params.get("error")
        if not code:
            return
        # A bare ?error=1 is not OAuth: want a known code, or a code-shaped one next to state/description.
        context = {"error_description", "error_uri", "state"} & params.keys()
        try:
            from diagkit.collectors import oauth_errors
            known, shaped = oauth_errors.is_known(code), oauth_errors.looks_like_code(code)
        except ImportError:
            known, shaped = False, code.replace("_", "").isalpha()
        if not (known or (shaped and context)):
            return
        self._oauth(code, params.get("error_description"), where, params.get("error_uri"), safe_url(url))

    def _oauth(self, code: str, description: Any, where: str, uri: Any, shown: str) -> None:
        key = (code, _path_key(shown))
        if key in self.oauth_seen:
            return
        self.oauth_seen.add(key)
        desc = str(description) if isinstance(description, str) else None
        uri_s = str(uri)[:300] if isinstance(uri, str) else None
        try:
            from diagkit.collectors import oauth_errors
        except ImportError:
            self.report.add("oauth.error", f"OAuth error {code} from {where}",
                            evidence={"error": code, "where": where})
            return
        oauth_errors.oauth_error_finding(self.report, code, desc, where, uri_s)

    def _token(self, token: str, when: _dt.datetime, server_date: _dt.datetime | None, where: str) -> None:
        if token.count(".") not in (2, 4) or len(token) > 20_000:
            return
        key = _digest(token)
        seen = self.tokens.get(key)
        # Judge each distinct token at its last use: that is when an expired one would have failed.
        if seen is None or when >= seen.when:
            self.tokens[key] = _Token(token, when, server_date, where if seen is None else seen.where)

    def _saml(self, index: int, name: str, binding: str, value: str, shown: str, when: _dt.datetime) -> None:
        row: dict[str, Any] = {"i": index, "message": name, "binding": binding, "url": shown}
        self.saml.append(row)
        try:
            from diagkit.collectors import saml_xml
        except ImportError:
            self.skipped.add("SAML decoder unavailable")
            return
        from diagkit.errors import DiagkitError

        try:
            xml = saml_xml.decode_saml_message(value, f"{name} in HAR entry {index}")
        except DiagkitError as exc:
            row["decoded"] = False
            self.report.add("har.saml.unreadable", f"A {name} in the HAR could not be decoded",
                            detail=_short(exc.message, 300), evidence={"entry": index, "url": shown,
                                                                       "binding": binding})
            return
        row["decoded"] = True
        if name != "SAMLResponse":
            return
        try:
            from diagkit.collectors import saml_response
        except ImportError:
            self.skipped.add("SAML response checks unavailable")
            return
        where = f"{name} in HAR entry {index} ({shown})"
        try:
            saml_response.analyse_response(self.report, xml, when, where=where)
        except DiagkitError as exc:
            self.report.add("har.saml.unreadable", f"A {name} in the HAR could not be analysed",
                            detail=_short(exc.message, 300), evidence={"entry": index, "url": shown,
                                                                       "binding": binding})
        finally:
            # Beside its message row, not under a facts key named after the SAMLResponse: a key like that
            # made the packet's redaction treat issuer, destination and ids as secret SAML content.
            analysed = self.report.facts.pop(where, None)
            if analysed is not None:
                row["analysis"] = analysed

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
            self._bearer_error(status, g, challenge or [])
        for (status, _m, _u), g in self.http_errors.items():
            fid = "har.response.server_error" if status >= 500 else "har.response.client_error"
            body = g.evidence.get("body") or {}
            code = body.get("error") or body.get("code") or body.get("error_code") or body.get("errorCode")
            r.add(fid, f"{status} from {g.evidence['method']} {g.evidence['url']}"
                  + (f" ({g.count} times)" if g.count > 1 else ""),
                  detail=(f"Error code in the body: {code}." if code else ""),
                  evidence={**g.evidence, "count": g.count, "first_entry": g.first,
                            **({"request_ids": g.request_ids} if g.request_ids else {})})
        self._finish_redirects()
        self._finish_slow()
        self._finish_skew()
        self._finish_tokens()

    def _bearer_error(self, status: int, group: Any, challenge: list[dict[str, Any]]) -> None:
        """An RFC 6750 error in a Bearer challenge gets the HTTP probe's id too (CONTRACT.md: same ids in the flow)."""
        for c in challenge:
            params = c.get("params") or {}
            code = params.get("error")
            if str(c.get("scheme", "")).lower() not in ("bearer", "dpop") or code not in (
                    "invalid_token", "insufficient_scope"):
                continue
            evidence = {"status": status, "method": group.evidence["method"], "url": group.evidence["url"],
                        "error": code, "count": group.count, "first_entry": group.first,
                        **{k: params[k] for k in ("error_description", "scope", "realm") if params.get(k)}}
            if code == "invalid_token":
                self.report.add("http.auth.invalid_token",
                                f"The API rejected the access token ({status} invalid_token): {group.evidence['url']}",
                                detail=str(params.get("error_description") or ""), evidence=evidence)
            else:
                self.report.add("http.auth.insufficient_scope",
                                "The token lacks a required scope"
                                + (f": {params['scope']}" if params.get("scope") else "")
                                + f" ({group.evidence['url']})", evidence=evidence)
            return

    def _finish_redirects(self) -> None:
        # A loop, not a page loaded many times: the repeated redirect starts at a URL that is itself
        # reached by redirects again and again (A -> B ... -> A, including IdP form posts back to the SP).
        targets: Counter[str] = Counter()
        for (_a, b), n in self.edges.items():
            targets[b] += n
        loops = [((a, b), n) for (a, b), n in self.edge_best.items()
                 if n >= REDIRECT_LOOP_REPEATS and targets[a] >= REDIRECT_LOOP_REPEATS - 1]
        if loops:
            loops.sort(key=lambda item: -item[1])
            hops = [{"from": safe_url(a), "to": safe_url(b), "times": n} for (a, b), n in loops[:GROUP_SAMPLE]]
            first = min(self.edge_first[e] for e, _ in loops)
            self.report.add("har.redirect.loop",
                            f"Redirect loop: {hops[0]['from']} -> {hops[0]['to']} repeated {loops[0][1]} times",
                            detail="The same redirect happens again and again; in SSO flows (SP -> IdP -> SP) "
                                   "this usually means the session cookie set after login is not kept "
                                   "(SameSite, Secure, domain or path) or the SP rejects the assertion silently.",
                            evidence={"hops": hops, "repeats": loops[0][1], "first_entry": first})
        too_many = [g for (kind, _e, _o), g in self.failed.items() if kind == "redirect_loop"]
        if too_many and not loops:
            self.report.add("har.redirect.loop", f"The browser stopped a redirect loop at {too_many[0].urls[0]}",
                            detail="The request failed with too many redirects (net::ERR_TOO_MANY_REDIRECTS).",
                            evidence={"urls": too_many[0].urls, "first_entry": too_many[0].first})
        for g in self.insecure.values():
            self.report.add("har.redirect.insecure", f"Redirect from HTTPS to HTTP: {g.evidence['from']}",
                            evidence={**g.evidence, "count": g.count, "first_entry": g.first})

    def _finish_slow(self) -> None:
        self.slow.sort(key=lambda row: -row["total_ms"])
        for row in self.slow[:SLOW_REPORT_LIMIT]:
            self.report.add(
                "har.request.slow",
                f"Slow request ({row['total_ms']} ms, mostly {row['phase']}): {row['method']} {row['url']}",
                detail=_PHASE_HINT.get(row["phase"], ""),
                evidence={"entry": row["i"], "url": row["url"], "status": row["status"],
                          "total_ms": row["total_ms"], "phase": row["phase"], "phase_ms": row["phase_ms"],
                          "timings_ms": row["timings_ms"]})

    def _finish_skew(self) -> None:
        if not self.skews:
            return
        median = statistics.median(self.skews)
        # A wrong client clock shows against every server; stale cached copies from one host do not.
        by_host = statistics.median(statistics.median(v) for v in self.skew_hosts.values())
        self.report.facts["clock_skew_s"] = round(median, 1)
        if abs(median) > self.max_skew_s and abs(by_host) > self.max_skew_s:
            ahead = "ahead of" if median > 0 else "behind"
            self.report.add("har.clock.skew",
                            f"The client clock is {abs(median) / 60:.0f} min {ahead} the servers' clocks",
                            detail=f"Median of startedDateTime minus the response Date header over "
                                   f"{len(self.skews)} responses is {median:+.0f} s (allowed ±{self.max_skew_s:.0f} s).",
                            evidence={"median_skew_s": round(median), "samples": len(self.skews),
                                      "hosts": len(self.skew_hosts),
                                      "allowed_s": self.max_skew_s, "client": ahead + " server"})

    def _finish_tokens(self) -> None:
        if not self.tokens:
            return
        try:
            from diagkit.collectors import jwt
        except ImportError:
            self.skipped.add("JWT checks unavailable")
            return
        checked = 0
        for item in self.tokens.values():
            decoded = jwt.decode(item.token)
            if decoded is None:
                continue
            checked += 1
            jwt.check_claims(self.report, decoded, item.when, server_date=item.server_date, where=item.where)
        self.report.facts["jwts_checked"] = checked

    def facts(self, source: hf.HarSource) -> dict[str, Any]:
        meta = source.meta
        creator = meta.get("creator") if isinstance(meta.get("creator"), dict) else {}
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
                       "hosts": len(self.hosts), "slow": self.slow_count},
            "request_ids": self.request_ids,
        }
        if self.request_ids_total > len(self.request_ids):
            facts["request_ids_note"] = (f"{self.request_ids_total} entries carry request ids; "
                                         f"{len(self.request_ids)} listed, failing requests first")
        if self.saml:
            facts["saml_messages"] = self.saml[:50]
        facts["timeline"] = self.timeline
        if self.count > len(self.timeline):
            facts["timeline_truncated"] = True
            facts["timeline_note"] = f"first {len(self.timeline)} of {self.count} entries shown"
        if self.skipped:
            facts["checks_skipped"] = sorted(self.skipped)
        return facts


_PHASE_HINT = {
    "blocked": "Most time was spent queued in the browser (too many parallel connections, or a proxy).",
    "dns": "Most time was spent resolving the host name: check the client's DNS resolver.",
    "connect": "Most time was spent opening the TCP connection: network latency, packet loss or a firewall.",
    "ssl": "Most time was spent in the TLS handshake: slow OCSP/CRL checks, a TLS-inspecting proxy or a far server.",
    "send": "Most time was spent sending the request: a large upload or a slow uplink.",
    "wait": "Most time was spent waiting for the server's first byte: the server (or something behind it) is slow.",
    "receive": "Most time was spent downloading the response: a large body or limited bandwidth.",
}


def run(ctx: Context, report: Report, target: str, slow_ms: int = 3000, slow_wait_ms: int = 2000,
        max_skew: int = 300, timeline_limit: int = TIMELINE_LIMIT) -> None:
    from diagkit.errors import InputFormatError

    try:
        source = hf.open_har(target)
    except InputFormatError as exc:
        report.add("har.invalid", detail=exc.message,
                   evidence={"file": target})
        return
    analysis = Analysis(ctx, report, slow_ms=slow_ms, slow_wait_ms=slow_wait_ms, max_skew_s=max_skew,
                        timeline_limit=max(0, timeline_limit))
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
    ),
    default_timeout=60.0,
    max_calls=10,
    example="diagkit probe har session.har --json",
    description="Analyse HAR 1.2 files exported by a browser or proxy. Reports failed requests (with the class "
                "of browser error), 4xx/5xx with their error codes, 401/403 with the parsed challenge, CORS "
                "blocks, redirect loops and HTTPS->HTTP hops, slow requests with their dominant phase, client "
                "clock skew, and SAML/OAuth/JWT problems inside the flow. Evidence never holds cookie, token, "
                "query or body values.",
    network=False,
)
