"""SAML, OAuth and JWT material inside a HAR flow, judged with the same checks the dedicated probes use.

SAMLResponses posted or redirected through the browser go to saml_response.analyse_response; OAuth
errors in redirect URLs and JSON bodies get the oauth.* ids; bearer tokens and tokens returned by token
endpoints are checked as JWTs at their last use. RFC 6750 errors in a Bearer challenge carry the HTTP
probe's ids (the same ids in a flow). Token values never leave this module.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from diagkit.collectors import har_file as hf
from diagkit.collectors.har_values import Group, digest, path_key, safe_url, short
from diagkit.context import Context, parse_http_date
from diagkit.probe import Report


@dataclass
class _Token:
    token: str
    when: _dt.datetime
    server_date: _dt.datetime | None
    where: str


class FlowChecks:
    """Per-entry auth material of a HAR; findings about SAML and OAuth as they are seen, JWTs at the end."""

    def __init__(self, ctx: Context, report: Report, skipped: set[str]) -> None:
        self.ctx, self.report = ctx, report
        self.skipped = skipped  # shared with the analysis: checks that could not run, listed in the facts
        self.oauth_seen: set[tuple[str, str]] = set()
        self.tokens: dict[str, _Token] = {}
        self.saml: list[dict[str, Any]] = []

    def entry(self, index: int, req: dict, resp: dict, url: str, shown: str, status: int,
              started: _dt.datetime | None) -> None:
        """SAML messages, OAuth errors and tokens in one entry's request and response."""
        when = started or self.ctx.now()
        server_date = parse_http_date(hf.header(resp, "date"))
        # SAML messages: HTTP-POST binding in the form, HTTP-Redirect binding in the query string.
        for binding, params in (("HTTP-POST", hf.form_params(req)), ("HTTP-Redirect", hf.query_params(req))):
            for name, value in params:
                if name in ("SAMLResponse", "SAMLRequest") and value:
                    self._saml(index, name, binding, value, shown, when)
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
        try:
            from diagkit.collectors import oauth_errors
            known, shaped = oauth_errors.is_known(code), oauth_errors.looks_like_code(code)
        except ImportError:
            known, shaped = False, code.replace("_", "").isalpha()
        if not (known or (shaped and context)):
            return
        self._oauth(code, params.get("error_description"), where, params.get("error_uri"), safe_url(url))

    def _oauth(self, code: str, description: Any, where: str, uri: Any, shown: str) -> None:
        key = (code, path_key(shown))
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
        key = digest(token)
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
                            detail=short(exc.message, 300), evidence={"entry": index, "url": shown,
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
                            detail=short(exc.message, 300), evidence={"entry": index, "url": shown,
                                                                       "binding": binding})
        finally:
            # Beside its message row, not under a facts key named after the SAMLResponse: a key like that
            # made the packet's redaction treat issuer, destination and ids as secret SAML content.
            analysed = self.report.facts.pop(where, None)
            if analysed is not None:
                row["analysis"] = analysed

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
        """Checks each distinct JWT once, at its last use."""
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
