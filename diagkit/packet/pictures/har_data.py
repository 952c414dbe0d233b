"""What the HAR pictures draw, read from a packet's (redacted) HAR evidence and the har probe's result.

Only names, statuses, timings and URLs reduced by `safe_url` (origin, path, parameter names) are used,
never parameter or body values, so the pictures show no more than the findings already do. Every
accessor tolerates missing or oddly typed fields (formats/har.py's), so a HAR the probe read always draws.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from diagkit.findings import ProbeResult, Severity
from diagkit.formats import har as hf
from diagkit.formats.har import number, parse_har_time, phases
from diagkit.formats.urls import hostname, url_shape
from diagkit.packet.pictures.sso import BROWSER, Hop, Lane
from diagkit.packet.pictures.waterfall import MAX_ROWS, PHASES, Request

SLOW_MS, SLOW_WAIT_MS = 3000.0, 2000.0          # the har probe's defaults (collectors/har.py)
_ENTRY_IN_TEXT = re.compile(r"HAR entry (\d+)")
_STATIC = re.compile(r"\.(js|mjs|css|png|jpe?g|gif|svg|ico|woff2?|ttf|map)$", re.I)
_GRANTS = {"authorization_code", "refresh_token", "client_credentials", "password", "implicit",
           "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
           "urn:ietf:params:oauth:grant-type:saml2-bearer", "urn:ietf:params:oauth:grant-type:token-exchange"}
MAX_LANES_PER_ROLE = 3


def entries_of(har: Any) -> list[dict]:
    log = har.get("log") if isinstance(har, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    return [e if isinstance(e, dict) else {} for e in entries] if isinstance(entries, list) else []


def entry_findings(result: ProbeResult) -> dict[int, list[tuple[str, str, str]]]:
    """HAR entry index -> (severity, id, title) of the findings worse than pass that name that entry."""
    out: dict[int, list[tuple[str, str, str]]] = {}
    for finding in sorted(result.findings, key=lambda f: -f.severity.rank):
        if finding.severity is Severity.PASS:
            continue
        where: set[int] = set()
        # The hop where the problem shows: a SAML response's ACS POST, not the request it answers.
        for key in ("entry", "first_entry", "response_entry", "acs_entry", "i"):
            value = finding.evidence.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                where.add(value)
        if not where:  # SAML checks name the entry in their text ("SAMLResponse in HAR entry 3 (...)")
            texts = [finding.title, finding.detail] + [v for v in finding.evidence.values() if isinstance(v, str)]
            where = {int(m) for t in texts for m in _ENTRY_IN_TEXT.findall(t) if len(m) < 9}
        for index in where:
            out.setdefault(index, []).append((finding.severity.value, finding.id, finding.title))
    return out


def _slow(result: ProbeResult) -> dict[int, set[str]]:
    """Entry -> phases the har probe called slow (har.request.slow evidence)."""
    out: dict[int, set[str]] = {}
    for finding in result.findings:
        if finding.id == "har.request.slow":
            entry, phase = finding.evidence.get("entry"), finding.evidence.get("phase")
            if isinstance(entry, int) and isinstance(phase, str) and phase in PHASES:
                out.setdefault(entry, set()).add(phase)
    return out


def _request_ids(result: ProbeResult) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    rows = result.facts.get("request_ids")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("i"), int) and isinstance(row.get("ids"), dict):
            out[row["i"]] = [f"{k}: {v}" for k, v in row["ids"].items()]
    return out


def requests_of(har: Any, result: ProbeResult) -> list[Request]:
    """The waterfall rows: each entry (first MAX_ROWS) with its start offset, phases and marks."""
    entries = entries_of(har)[:MAX_ROWS]
    starts = [parse_har_time(e.get("startedDateTime")) for e in entries]
    known = [s for s in starts if s is not None]
    t0 = min(known) if known else None
    slow, ids, found = _slow(result), _request_ids(result), entry_findings(result)
    rows: list[Request] = []
    previous = 0.0
    for index, (entry, started) in enumerate(zip(entries, starts, strict=True)):
        req = hf.request_of(entry)
        ph = phases(entry.get("timings"))
        total = number(entry.get("time"))
        total = total if total is not None else sum(ph.values())
        start = (started - t0).total_seconds() * 1000 if started is not None and t0 is not None else previous
        previous = start
        status = hf.status_of(entry)
        resp = hf.response_of(entry)
        error = resp.get("_error") or entry.get("_error") or resp.get("_errorText")
        marked = set(slow.get(index, set()))
        if ph and (total >= SLOW_MS or ph.get("wait", 0.0) >= SLOW_WAIT_MS):
            marked.add(max(ph.items(), key=lambda kv: kv[1])[0])  # the probe's rule: the dominant phase
        rows.append(Request(index=index, label=f"{str(req.get('method') or '').upper()} {url_shape(req.get('url'))}".strip(),
                            start_ms=start, phases=ph, total_ms=total, status=status,
                            failed=status == 0 or status >= 400, error=str(error)[:60] if error else "",
                            slow_phases=marked, request_ids=ids.get(index, []), findings=found.get(index, [])))
    return rows


def _names(pairs: list[tuple[str, str]]) -> set[str]:
    return {n for n, _ in pairs}


def _message(entry: dict, saml_types: dict[int, str], index: int) -> tuple[str, str, str]:
    """(message, role of the host called, role of the host a redirect points to) of one entry, '' when none."""
    req, resp = hf.request_of(entry), hf.response_of(entry)
    url = str(req.get("url") or "")
    query, form, fragment = _names(hf.query_params(req)), _names(hf.form_params(req)), _names(hf.fragment_params(url))
    location = hf.header(resp, "location") or resp.get("redirectURL")
    location = location if isinstance(location, str) else ""
    loc_query = {p.split("=", 1)[0] for p in urlsplit(location).query.split("&") if p} if location else set()
    kind = saml_types.get(index)
    for name, binding, names in (("SAMLRequest", "HTTP-Redirect", query), ("SAMLRequest", "HTTP-POST", form)):
        if name in names:
            return f"{kind or 'AuthnRequest'} ({name}, {binding})", "IdP", ""
    for binding, names in (("HTTP-POST", form), ("HTTP-Redirect", query)):
        if "SAMLResponse" in names:
            return f"{kind or 'Response'} (SAMLResponse, {binding})", "SP", ""
    if "grant_type" in form:
        grant = next((v for n, v in hf.form_params(req) if n == "grant_type"), "")
        return f"token request ({grant if grant in _GRANTS else 'grant_type'})", "IdP", ""
    if "response_type" in query or {"client_id", "redirect_uri"} <= query:
        return "OIDC/OAuth authorization request", "IdP", ""
    answer = query | fragment
    if "error" in answer and ({"state", "error_description"} & answer):
        return "OAuth error response (error)", "SP", ""
    if "code" in answer and "state" in answer or {"id_token", "access_token"} & answer:
        return "authorization response (" + ", ".join(sorted({"code", "id_token", "access_token"} & answer)) + ")", "SP", ""
    if "SAMLRequest" in loc_query:
        return "redirects to the IdP with a SAMLRequest", "SP", "IdP"
    if "response_type" in loc_query or {"client_id", "redirect_uri"} <= loc_query:
        return "redirects to the IdP with an authorization request", "SP", "IdP"
    return "", "", ""


def sso_of(har: Any, result: ProbeResult) -> tuple[list[Lane], list[Hop], int] | None:
    """Lanes, hops (at most the first MAX_HOPS) and the hop count of the SSO flow in a HAR; None without one."""
    from diagkit.packet.pictures.sso import MAX_HOPS

    entries = entries_of(har)
    saml_types: dict[int, str] = {}
    rows = result.facts.get("saml_messages")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("i"), int) and isinstance(row.get("type"), str):
            saml_types[row["i"]] = row["type"]
    messages: dict[int, str] = {}
    roles: dict[str, str] = {}
    for index, entry in enumerate(entries):
        message, role, target_role = _message(entry, saml_types, index)
        if not message:
            continue
        messages[index] = message
        host = hostname(str(hf.request_of(entry).get("url") or "")) or "?"
        roles.setdefault(host, role)
        if target_role:
            resp = hf.response_of(entry)
            location = hf.header(resp, "location") or resp.get("redirectURL")
            target = hostname(location) if isinstance(location, str) else None
            if target:
                roles.setdefault(target, target_role)
    if not messages:
        return None
    for role in ("SP", "IdP"):  # a bounded number of lanes: extra hosts of a role are left out
        for host in [h for h, r in roles.items() if r == role][MAX_LANES_PER_ROLE:]:
            del roles[host]
    first, last = min(messages), max(messages)
    found = entry_findings(result)
    hops: list[Hop] = []
    for index, entry in enumerate(entries):
        req, resp = hf.request_of(entry), hf.response_of(entry)
        url = str(req.get("url") or "")
        host = hostname(url) or "?"
        if host not in roles or not first - 1 <= index <= last + 2:
            continue
        path = urlsplit(url_shape(url)).path if url_shape(url) and not url_shape(url).startswith("<") else ""
        if index not in messages and (_STATIC.search(path) or entry.get("_resourceType") in
                                      ("script", "stylesheet", "image", "font", "media")):
            continue
        status = hf.status_of(entry)
        location = hf.header(resp, "location") or resp.get("redirectURL")
        to = hostname(location) if isinstance(location, str) and location else None
        answer = f"{status or 'failed'}" + (f" to {to}" if to and 300 <= status < 400 else "")
        query = urlsplit(url_shape(url)).query if url_shape(url) and not url_shape(url).startswith("<") else ""
        hops.append(Hop(index=index, lane=host, request=f"{str(req.get('method') or '').upper()} {path}"
                        + (f"?{query}" if query else ""), message=messages.get(index, ""), status=status,
                        answer=answer, findings=found.get(index, [])))
    order = {"SP": 0, "IdP": 1}
    hosts = sorted(roles, key=lambda h: (order.get(roles[h], 2), list(roles).index(h)))
    lanes = [Lane(BROWSER, "Browser")] + [Lane(h, roles[h]) for h in hosts]
    return lanes, hops[:MAX_HOPS], len(hops)
