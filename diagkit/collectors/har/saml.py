"""SAML login state across a HAR: does the response answer the request, and does the SP get its state back?

Three checks need the whole flow, not one message: the response's InResponseTo against the ID of the
AuthnRequest the SP sent (Redirect binding: DEFLATE in the query; POST binding: the form), the RelayState
length (80 bytes, SAML Bindings §3.4.3/§3.5.3), and the SP's cookies: one set before the redirect to
the IdP and missing from the ACS POST is the SameSite case (RFC 6265bis §4.1.2.7, §8.8). Severities that depend
on how the flow ended are settled in `finish`, when every entry has been seen.

Cookies are read by har_cookies (Chrome, Firefox and Safari keep them in different places). Cookie and
RelayState values never leave these modules: findings name cookies and their attributes, and give
RelayState lengths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus

from diagkit.collectors.har.cookies import Cookie, sent_cookies, set_cookies, site, url_parts
from diagkit.collectors.har.values import digest
from diagkit.formats import har as hf
from diagkit.formats.urls import origin_of

RELAY_STATE_MAX = 80  # bytes, SAML 2.0 Bindings §3.4.3 and §3.5.3
_ERROR_WORDS = re.compile(r"\b(error|invalid|expired|failed|failure|exception|unable|denied|forbidden)\b", re.I)
# Where an SP sends a login it did not accept (a successful ACS redirects to the app or the RelayState).
_BACK_TO_LOGIN = re.compile(r"(error|fail|denied|login|signin|sign-in|logout|expired|unauthori[sz]ed)", re.I)


@dataclass
class AuthnRequest:
    entry: int
    id: str | None
    binding: str
    url: str
    acs_url: str | None
    relay_state: str | None
    issuer: str | None = None  # the SP's entityID
    # Cookies set by entries before this one were set "before the redirect"; for a request read from a
    # redirect's Location that includes the redirect itself (SPs set their state cookie there).
    cookie_boundary: int = -1
    from_location: bool = False

    def __post_init__(self) -> None:
        if self.cookie_boundary < 0:
            self.cookie_boundary = self.entry

    def same_sp(self, post_url: str, audiences: set[str], destination: str | None) -> bool | None:
        """Whether a response POSTed to post_url answers this SP; None when the request does not say."""
        if self.acs_url:
            return origin_of(self.acs_url) in {origin_of(post_url), origin_of(destination)}
        if self.issuer and audiences:
            return self.issuer in audiences
        return None


@dataclass
class Acs:
    """One SAMLResponse delivered to the SP, and what the flow did next."""

    entry: int
    url: str
    status: int
    location: str | None
    error_page: bool
    relay_state: str | None
    request: AuthnRequest | None
    later_request: bool = False
    lost: list[Cookie] = field(default_factory=list)
    cross_site: bool | None = None
    post_url: str = ""

    @property
    def failed(self) -> bool:
        """The SP did not accept the login: an error status or page, back to a login/error URL, or a new request."""
        if self.status == 0 or self.status >= 400 or self.error_page or self.later_request:
            return True
        return bool(self.location and _BACK_TO_LOGIN.search(self.location))


def _decoded(value: str, form: bool) -> str:
    """A form or query value as the SP reads it (some exporters keep percent-encoding in params)."""
    if re.search(r"%[0-9A-Fa-f]{2}", value):
        return unquote_plus(value) if form else unquote(value)
    return value


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ". " if text else ""


class SamlFlow:
    """Feed it every entry in order (`entry`), the SAML messages found in it (`message`), then `finish`."""

    def __init__(self) -> None:
        self.cookies: dict[tuple[str, str, str], Cookie] = {}
        self.requests: list[AuthnRequest] = []
        self.acs: list[Acs] = []
        self.relay_states: dict[str, dict[str, Any]] = {}
        self.cookies_recorded = False  # any request cookie at all (sanitised exports strip every one)
        self.provisional: list[int] = []  # ACS POSTs recorded without their real request headers

    # ---------------------------------------------------------------- per entry

    def message(self, index: int, name: str, binding: str, root: Any, relay_state: str | None, req: dict,
                resp: dict, url: str, shown: str, status: int, report: Any) -> None:
        """A decoded SAMLRequest/SAMLResponse (root: its parsed XML, or None when it did not parse)."""
        from diagkit.formats.saml_xml import NS_SAML, NS_SAMLP, qn, text_of

        relay = _decoded(relay_state, binding == "HTTP-POST") if relay_state else None
        if relay is not None:
            self._relay(index, name, relay, shown)
        if name == "SAMLRequest":
            if root is not None and root.tag == qn(NS_SAMLP, "AuthnRequest"):
                same = next((r for r in self.requests if root.get("ID") and r.id == root.get("ID")), None)
                if same is not None:
                    # The request a redirect's Location announced, now sent (or the IdP passing it along):
                    # one request, named where the browser sent it; its cookie boundary stays.
                    if same.from_location:
                        same.entry, same.url, same.binding, same.from_location = index, shown, binding, False
                    return
                self._add_request(AuthnRequest(index, root.get("ID"), binding, shown,
                                               root.get("AssertionConsumerServiceURL"), relay,
                                               text_of(root.find(qn(NS_SAML, "Issuer")))))
            return
        request = self._request_for(url, root)
        acs = Acs(index, shown, status, hf.header(resp, "location"), self._error_page(resp, status), relay, request,
                  post_url=url)
        self.acs.append(acs)
        if root is not None and request is not None:
            self._in_response_to(acs, root, report)
        if binding == "HTTP-POST" and request is not None:
            self._cookies_lost(acs, req, url)

    def redirect_request(self, index: int, root: Any, relay_state: str | None, shown: str) -> None:
        """An AuthnRequest found in the Location of the redirect at entry `index` (shown: that entry's URL)."""
        from diagkit.formats.saml_xml import NS_SAML, NS_SAMLP, qn, text_of

        if root.tag != qn(NS_SAMLP, "AuthnRequest") or any(r.id == root.get("ID") for r in self.requests if r.id):
            return
        relay = _decoded(relay_state, False) if relay_state else None
        if relay is not None:
            self._relay(index, "SAMLRequest", relay, shown)
        self._add_request(AuthnRequest(index, root.get("ID"), "HTTP-Redirect", shown,
                                       root.get("AssertionConsumerServiceURL"), relay,
                                       text_of(root.find(qn(NS_SAML, "Issuer"))), cookie_boundary=index + 1,
                                       from_location=True))

    def _add_request(self, request: AuthnRequest) -> None:
        self.requests.append(request)
        # The same SP sending the user back to the IdP after an ACS POST: that login did not stick.
        for acs in self.acs:
            if acs.request is None or request.same_sp(acs.post_url, set(), None) is not False:
                acs.later_request = True

    def bodiless_acs_post(self, index: int, req: dict, resp: dict, url: str, shown: str, status: int,
                          expected_acs: str | None) -> None:
        """A POST to the ACS URL whose form the browser did not record (Chrome drops the bodies of some
        navigations): the SAMLResponse is unseen, but the cookies it arrived with still are."""
        if str(req.get("method") or "").upper() != "POST" or not self.requests:
            return
        target = url.split("?", 1)[0].split("#", 1)[0]
        request = self.requests[-1]
        acs_urls = {u for u in (request.acs_url, expected_acs) if u}
        if target not in acs_urls or any(a.request is request for a in self.acs):
            return
        acs = Acs(index, shown, status, hf.header(resp, "location"), self._error_page(resp, status), None, request,
                  post_url=url)
        self.acs.append(acs)
        self._cookies_lost(acs, req, url)

    def _request_for(self, post_url: str, root: Any) -> AuthnRequest | None:
        """The last AuthnRequest of the SP this response is for (an IdP that is itself an SP of another IdP,
        as with Entra ID federation or a Keycloak broker, sends its own AuthnRequest in between)."""
        from diagkit.formats.saml_xml import NS_SAML, qn, text_of

        if root is None:
            return self.requests[-1] if self.requests else None
        audiences = {text_of(a) or "" for a in root.iter(qn(NS_SAML, "Audience"))}
        for request in reversed(self.requests):
            if request.same_sp(post_url, audiences, root.get("Destination")) is not False:
                return request
        return None

    def entry_done(self, index: int, req: dict, resp: dict, url: str, shown: str) -> None:
        """Cookies set by this entry's response (after its own request was judged)."""
        self.cookies_recorded = self.cookies_recorded or bool(sent_cookies(req))
        for cookie in set_cookies(resp, url, index, shown):
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.deleted:
                self.cookies.pop(key, None)
            else:
                self.cookies[key] = cookie

    @staticmethod
    def _error_page(resp: dict, status: int) -> bool:
        if not 200 <= status < 300:
            return False
        text = hf.response_text({"response": resp}, limit=200_000) or ""
        mime = str(hf.header(resp, "content-type") or (resp.get("content") or {}).get("mimeType") or "").lower()
        # A 200 from the ACS is either the next auto-submitted form or an error page.
        return "html" in mime and "<form" not in text.lower() and bool(_ERROR_WORDS.search(text[:50_000]))

    def _relay(self, index: int, name: str, value: str, shown: str) -> None:
        size = len(value.encode("utf-8"))
        key = digest(value)
        seen = self.relay_states.setdefault(key, {"bytes": size, "entries": [], "messages": [], "url": shown})
        seen["entries"].append(index)
        seen["messages"].append(name)

    def _in_response_to(self, acs: Acs, root: Any, report: Any) -> None:
        from diagkit.formats.saml_xml import NS_SAML, qn

        request = acs.request
        assert request is not None
        on_response = root.get("InResponseTo")
        on_subject = [d.get("InResponseTo") for d in root.iter(qn(NS_SAML, "SubjectConfirmationData"))
                      if d.get("InResponseTo")]
        values = ([on_response] if on_response else []) + on_subject
        if not request.id or (values and all(v == request.id for v in values)):
            return  # answers the request (or the request has no ID to compare: its own problem)
        earlier = next((r for r in reversed(self.requests) if r is not request and r.id and r.id in values), None)
        found = on_response or (on_subject[0] if on_subject else None)
        if not values:
            title = "The SAML response answers no request, although the SP sent an AuthnRequest"
            why = ("It carries no InResponseTo (an IdP-initiated, unsolicited response); an SP waiting for its "
                   "request's answer rejects it.")
        elif earlier is not None:
            title = "The SAML response answers an earlier AuthnRequest, not the last one sent"
            why = (f"InResponseTo matches the AuthnRequest of entry {earlier.entry}; the SP keeps only the last "
                   "request (several tabs, the back button or a retried login).")
        elif request.id in values:
            title = "The response's InResponseTo and its SubjectConfirmationData's differ"
            why = "Response and assertion must answer the same request."
        else:
            title = "The SAML response's InResponseTo is not the ID of the AuthnRequest sent"
            why = ("No AuthnRequest in this recording has that ID: the response was meant for another login "
                   "(another browser, a stale IdP session or a replayed response).")
        report.add("har.saml.inresponseto_mismatch", title,
                   detail=f"AuthnRequest ID '{request.id}' (entry {request.entry}, {request.binding}) vs "
                          f"InResponseTo '{found}' (entry {acs.entry}). {why}",
                   evidence={"request_id": request.id, "in_response_to": found,
                             "subject_in_response_to": on_subject or None, "request_entry": request.entry,
                             "response_entry": acs.entry, "acs_url": acs.url})

    def _cookies_lost(self, acs: Acs, req: dict, url: str) -> None:
        request = acs.request
        assert request is not None
        scheme, host, path = url_parts(url)
        sent = sent_cookies(req)
        listed = req.get("headers")
        headers = listed if isinstance(listed, list) else []
        names = {str(h.get("name", "")).lower() for h in headers if isinstance(h, dict)}
        if not sent and not names & {"host", ":authority", "accept-encoding", "accept-language", "content-length"}:
            # Chrome's "provisional headers": what was really sent, cookies included, is not in the recording.
            self.provisional.append(acs.entry)
            return
        acs.lost = sorted((c for c in self.cookies.values()
                           if c.entry < request.cookie_boundary and c.applies_to(host, path) and c.name not in sent
                           and not (c.secure and scheme == "http")),
                          key=lambda c: c.entry)
        origin = hf.header(req, "origin")
        referer = hf.header(req, "referer")
        source = origin if origin and origin != "null" else referer
        source_host = url_parts(source)[1] if source else None
        if origin == "null":
            acs.cross_site = True  # an opaque origin: the form came from a cross-site redirect chain
        elif source_host:
            acs.cross_site = site(source_host) != site(host)

    # ---------------------------------------------------------------- findings

    def finish(self, report: Any) -> dict[str, Any]:
        for acs in self.acs:
            # A recording without a single request cookie was exported without them: nothing was lost.
            if acs.lost and self.cookies_recorded:
                self._report_lost(report, acs)
        for info in self.relay_states.values():
            if info["bytes"] > RELAY_STATE_MAX:
                self._report_relay(report, info)
        facts: dict[str, Any] = {"authn_requests": len(self.requests), "responses": len(self.acs)}
        if any(a.lost for a in self.acs) and not self.cookies_recorded:
            facts["cookies_note"] = "no request in the recording carries a cookie (exported without cookies?): " \
                                    "the SP cookie check was not made"
        if self.provisional:
            facts["provisional_headers"] = (f"ACS POST entries {self.provisional[:5]} were recorded with provisional "
                                            "headers only: their cookies could not be checked")
        if self.acs and not self.requests:
            facts["note"] = ("no AuthnRequest recorded: IdP-initiated login, or the recording started at the IdP; "
                             "InResponseTo and cookie checks need the SP's redirect")
        return facts

    def _report_lost(self, report: Any, acs: Acs) -> None:
        first = acs.lost[0]
        names = ", ".join(f"{c.name} ({c.describe()})" for c in acs.lost[:5])
        reasons = []
        if acs.cross_site is False:
            reasons.append("the POST came from the same site, so SameSite does not explain it: the cookie expired, "
                           "was overwritten or cleared, or its Domain/Path do not cover the ACS")
        elif any(c.samesite is None or c.samesite.lower() in ("lax", "strict") for c in acs.lost):
            reasons.append("browsers do not send SameSite=Lax or Strict cookies (and cookies without SameSite, "
                           "treated as Lax; Chrome makes an exception only in the first 2 minutes) with the "
                           "cross-site POST the IdP's form makes to the ACS")
        if any(c.samesite and c.samesite.lower() == "none" and not c.secure for c in acs.lost):
            reasons.append("SameSite=None without Secure is refused by browsers altogether")
        if any(c.samesite and c.samesite.lower() == "none" and c.secure for c in acs.lost):
            reasons.append("a SameSite=None; Secure cookie was still withheld: third-party cookie blocking or "
                           "tracking protection (Safari ITP, Firefox ETP), or the cookie expired")
        severity = None if acs.failed else "warn"
        outcome = ("the SP did not complete the login" if acs.failed else
                   "the SP seems to have continued anyway; if the login fails later, this is the likely cause")
        report.add("har.saml.session_cookie_lost",
                   f"The ACS POST to {acs.url} arrived without the SP cookie {first.name} ({first.describe()})",
                   detail=f"Set before the redirect to the IdP (entry {first.entry}, {first.set_by}) and missing "
                          f"from the SAMLResponse POST (entry {acs.entry}): {names}. " + _sentence("; ".join(reasons))
                          + f"Here {outcome}.",
                   evidence={"acs_url": acs.url, "acs_entry": acs.entry, "cross_site": acs.cross_site,
                             "acs_status": acs.status,
                             "cookies": [{"name": c.name, "samesite": c.samesite, "secure": c.secure,
                                          "set_at_entry": c.entry, "set_by": c.set_by} for c in acs.lost[:10]]},
                   severity=severity)

    def _report_relay(self, report: Any, info: dict[str, Any]) -> None:
        answered = [a for a in self.acs if a.entry in info["entries"]]
        sent = "SAMLRequest" in info["messages"]
        # Harmless here only when it reached the SP unchanged and the SP accepted the login.
        ok_end = bool(answered) and not any(a.failed for a in answered)
        detail = (f"RelayState of {info['bytes']} bytes (entries {', '.join(map(str, info['entries'][:5]))}); SAML "
                  f"bindings allow at most {RELAY_STATE_MAX}. ")
        if ok_end:
            detail += "It reached the SP intact here, but stricter IdPs and SPs truncate or refuse it."
        elif sent and not answered and any(a.entry > info["entries"][0] for a in self.acs):
            detail += "It did not come back unchanged with the response: the IdP truncated or dropped it."
        else:
            detail += "IdPs may truncate or refuse it, and the SP then loses where to send the user."
        report.add("har.saml.relaystate_too_long",
                   f"RelayState is {info['bytes']} bytes, over the {RELAY_STATE_MAX}-byte limit",
                   detail=detail, evidence={"bytes": info["bytes"], "limit": RELAY_STATE_MAX,
                                            "entries": info["entries"][:10], "messages": sorted(set(info["messages"])),
                                            "first_url": info["url"]},
                   severity="warn" if ok_end else None)
