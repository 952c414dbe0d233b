"""The `oauth.error` finding, made the same way wherever an OAuth or OIDC error is seen (API answer, HAR
redirect, IdP error page), from formats.oauth_errors' table of codes."""

from __future__ import annotations

from diagkit.formats import oauth_errors
from diagkit.probe import Report


def oauth_error_finding(report: Report, code: str, description: str | None, where: str,
                        uri: str | None = None, *, cause: str | None = None, fix: str | None = None,
                        extra: dict[str, object] | None = None, ref: str | None = None,
                        title: str | None = None) -> None:
    """Adds `oauth.error` with evidence.error = the code (CONTRACT.md) and the description when present.

    `cause`/`fix`/`ref` override the table for provider codes (AADSTS..., MSIS...); `extra` adds evidence
    such as the provider's name.
    """
    known_cause, known_fix = oauth_errors.describe(code)
    cause, fix = cause or known_cause, fix or known_fix
    evidence: dict[str, object] = {"error": code, "where": where}
    if description:
        evidence["error_description"] = oauth_errors.clean_description(description)
    if uri:
        evidence["error_uri"] = uri
    evidence.update(extra or {})
    refs = [r for r in (ref or oauth_errors.reference(code),) if r and r != "provider-specific"] or None
    report.add("oauth.error", title or f"OAuth error {code} from {where}", detail=f"Likely cause: {cause}",
               evidence=evidence, remediation=fix, refs=refs)
