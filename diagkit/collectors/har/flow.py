"""SAML, OAuth and JWT material inside a HAR flow, judged with the same checks the dedicated probes use.

SAMLResponses posted or redirected through the browser go to saml_response.analyse_response; OAuth
errors in redirect URLs and JSON bodies get the oauth.* ids; bearer tokens and tokens returned by token
endpoints are checked as JWTs at their last use. RFC 6750 errors in a Bearer challenge carry the HTTP
probe's ids (the same ids in a flow). Token values never leave this module.

Expectations (`--expect-audience/-issuer/-destination`, from `collect` the checklist's answers) apply to
every SAMLResponse and to ID tokens; access tokens are left alone, since their audience is an API, not
the client. The state carried across the flow (InResponseTo, RelayState, SP cookies) is har_saml's.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from diagkit.collectors.har.values import Group, digest, short
from diagkit.collectors.http import jwt_claims, oauth
from diagkit.context import Context, parse_http_date
from diagkit.formats import har as hf
from diagkit.formats.urls import path_key, url_shape
from diagkit.probe import Report


@dataclass
class _Token:
    token: str
    when: _dt.datetime
    server_date: _dt.datetime | None
    where: str


class FlowChecks:
    """Per-entry auth material of a HAR; findings about SAML and OAuth as they are seen, JWTs at the end."""

    def __init__(self, ctx: Context, report: Report, skipped: set[str],
                 expect: dict[str, str | None] | None = None) -> None:
        from diagkit.collectors.har.saml import SamlFlow

        self.ctx, self.report = ctx, report
        self.skipped = skipped  # shared with the analysis: checks that could not run, listed in the facts
        self.oauth_seen: set[tuple[str, str]] = set()
        self.tokens: dict[str, _Token] = {}
        self.saml: list[dict[str, Any]] = []
        self.expect = {k: v for k, v in (expect or {}).items() if v}
        self.state = SamlFlow()
        self.anchors: Any = None  # saml_trust.Anchors from --idp-metadata/--idp-cert, else None

    def entry(self, index: int, req: dict, resp: dict, url: str, shown: str, status: int,
              started: _dt.datetime | None) -> None:
        """SAML messages, OAuth errors and tokens in one entry's request and response."""
        when = started or self.ctx.now()
        server_date = parse_http_date(hf.header(resp, "date"))
        # SAML messages: HTTP-POST binding in the form, HTTP-Redirect binding in the query string.
        seen = False
        for binding, params in (("HTTP-POST", hf.form_params(req)), ("HTTP-Redirect", hf.query_params(req))):
            relay = next((v for n, v in params if n == "RelayState"), None)
            for name, value in params:
                if name in ("SAMLResponse", "SAMLRequest") and value:
                    seen = True
                    root = self._saml(index, name, binding, value, shown, when)
                    self.state.message(index, name, binding, root, relay, req, resp, url, shown, status,
                                       self.report)
        if not seen:
            self.state.bodiless_acs_post(index, req, resp, url, shown, status, self.expect.get("destination"))
        if 300 <= status < 400:
            self._redirected_request(index, resp, shown)
        self.state.entry_done(index, req, resp, url, shown)
        if status != 0:
            self.oauth_in_url(url, f"request URL of HAR entry {index}")
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

    def _redirected_request(self, index: int, resp: dict, shown: str) -> None:
        """An AuthnRequest in a redirect's Location: some exports (Safari) fold the redirect into one entry,
        so the request to the IdP may never appear on its own. The same request seen again is one request."""
        from urllib.parse import parse_qsl, urlsplit

        from diagkit.errors import DiagkitError
        from diagkit.formats import saml_xml

        location = hf.header(resp, "location") or resp.get("redirectURL")
        if not isinstance(location, str) or "SAMLRequest=" not in location:
            return
        try:
            params = parse_qsl(urlsplit(location).query, keep_blank_values=True)
        except ValueError:
            return
        value = next((v for n, v in params if n == "SAMLRequest"), None)
        try:
            root = saml_xml.parse_xml(saml_xml.decode_saml_message(value or "", "SAMLRequest in a Location"),
                                      "SAMLRequest in a Location")
        except DiagkitError:
            return  # reported where the browser sends it, if it does
        self.state.redirect_request(index, root, next((v for n, v in params if n == "RelayState"), None), shown)

    def _token_response(self, index: int, resp: dict, shown: str, status: int, when: _dt.datetime,
                        server_date: _dt.datetime | None) -> None:
        import json

        body = resp.get("content")
        content = body if isinstance(body, dict) else {}
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
        from diagkit.formats import oauth_errors
        return oauth_errors.is_known(code) or (oauth_errors.looks_like_code(code) and
                                               ("error_description" in doc or "error_uri" in doc))

    def oauth_in_url(self, url: str, where: str) -> None:
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
        from diagkit.formats import oauth_errors
        known, shaped = oauth_errors.is_known(code), oauth_errors.looks_like_code(code)
        if not (known or (shaped and context)):
            return
        self._oauth(code, params.get("error_description"), where, params.get("error_uri"), url_shape(url))

    def _oauth(self, code: str, description: Any, where: str, uri: Any, shown: str) -> None:
        key = (code, path_key(shown))
        if key in self.oauth_seen:
            return
        self.oauth_seen.add(key)
        desc = str(description) if isinstance(description, str) else None
        uri_s = str(uri)[:300] if isinstance(uri, str) else None
        oauth.oauth_error_finding(self.report, code, desc, where, uri_s)

    def _token(self, token: str, when: _dt.datetime, server_date: _dt.datetime | None, where: str) -> None:
        if token.count(".") not in (2, 4) or len(token) > 20_000:
            return
        key = digest(token)
        seen = self.tokens.get(key)
        # Judge each distinct token at its last use: that is when an expired one would have failed.
        if seen is None or when >= seen.when:
            self.tokens[key] = _Token(token, when, server_date, where if seen is None else seen.where)

    def _saml(self, index: int, name: str, binding: str, value: str, shown: str, when: _dt.datetime) -> Any:
        """Check one SAML message; its parsed root for the flow state (None when it cannot be read)."""
        row: dict[str, Any] = {"i": index, "message": name, "binding": binding, "url": shown}
        self.saml.append(row)
        from diagkit.errors import DiagkitError
        from diagkit.formats import saml_xml

        try:
            xml = saml_xml.decode_saml_message(value, f"{name} in HAR entry {index}")
            # A response that does not parse is analyse_response's saml.response.invalid (fail), below.
            root = saml_xml.parse_xml(xml, f"{name} in HAR entry {index}") if name != "SAMLResponse" else None
        except DiagkitError as exc:
            row["decoded"] = False
            self.report.add("har.saml.unreadable", f"A {name} in the HAR could not be decoded",
                            detail=short(exc.message, 300), evidence={"entry": index, "url": shown,
                                                                       "binding": binding})
            return None
        row["decoded"] = True
        if root is not None:
            row["type"] = saml_xml.local_name(root)
            if root.get("ID"):
                row["id"] = root.get("ID")
            return root
        try:
            root = saml_xml.parse_xml(xml, f"{name} in HAR entry {index}")
        except DiagkitError:
            root = None
        from diagkit.collectors.saml import response as saml_response
        where = f"{name} in HAR entry {index} ({shown})"
        try:
            saml_response.analyse_response(self.report, xml, when, where=where,
                                           expect_audience=self.expect.get("audience"),
                                           expect_destination=self.expect.get("destination"),
                                           expect_issuer=self.expect.get("issuer"), anchors=self.anchors)
        except DiagkitError as exc:
            self.report.add("har.saml.unreadable", f"A {name} in the HAR could not be analysed",
                            detail=short(exc.message, 300), evidence={"entry": index, "url": shown,
                                                                       "binding": binding})
        finally:
            # Beside its message row, not under a facts key named after the SAMLResponse: a key like that
            # made the packet's redaction treat issuer, destination and ids as secret SAML content.
            analysed = self.report.facts.pop(where, None)
            if analysed is not None:
                row["analysis"] = analysed
        return root

    def bearer_error(self, status: int, group: Group, challenge: list[dict[str, Any]]) -> None:
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

    def finish(self) -> None:
        """The flow-wide SAML checks; then each distinct JWT once, at its last use."""
        if self.saml or self.state.requests:
            self.report.facts["saml_flow"] = self.state.finish(self.report)
        if self.expect:
            # What the expectations were applied to: none at all is worth knowing (a HAR without the login).
            self.report.facts["expectations"] = {
                **self.expect, "saml_responses_checked": sum(1 for r in self.saml if r["message"] == "SAMLResponse"
                                                             and r.get("decoded")),
                "id_tokens_checked": 0}
        if not self.tokens:
            return
        from diagkit.formats import jwt
        checked = 0
        for item in self.tokens.values():
            decoded = jwt.decode(item.token)
            if decoded is None:
                continue
            checked += 1
            # Only an ID token's iss/aud are the IdP and the client (OIDC Core §2); an access token's aud is an API.
            id_token = item.where.startswith("id_token") or jwt.is_id_token(decoded)
            if id_token and self.expect:
                self.report.facts["expectations"]["id_tokens_checked"] += 1
            found = Report()
            jwt_claims.check_claims(found, decoded, item.when, server_date=item.server_date, where=item.where,
                             expect_issuer=_issuer(self.expect.get("issuer")) if id_token else None,
                             expect_audience=self.expect.get("audience") if id_token else None)
            # "An ID token used as an access token" is only true of a token sent as a bearer; an id_token
            # in a redirect or a token endpoint's answer is where ID tokens belong.
            self.report.extend([f for f in found.findings
                                if f.id != "jwt.token.id_token" or item.where.startswith("bearer token")])
        self.report.facts["jwts_checked"] = checked


def _issuer(value: str | None) -> str | None:
    """An issuer given as its discovery URL means the issuer itself (OIDC Discovery §4)."""
    suffix = "/.well-known/openid-configuration"
    return value[: -len(suffix)] if value and value.endswith(suffix) else value
