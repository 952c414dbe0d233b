"""CORS as recorded in a HAR: which requests were cross-origin from a page, and why a preflight failed.

Only response headers the browser recorded are judged; the browser console remains the final word.
"""

from __future__ import annotations

from diagkit.formats import har as hf
from diagkit.formats.urls import origin_of


def cross_origin(req: dict, url: str) -> str | None:
    """The page origin when the request went to another origin, else None."""
    page = hf.header(req, "origin")
    if not page or page == "null":
        page = origin_of(hf.header(req, "referer"))
    target = origin_of(url)
    if page and target and page.rstrip("/").lower() != target:
        return page.rstrip("/")
    return None


def is_cors_mode(req: dict, entry_type: str) -> bool:
    """Whether the browser applied CORS (Sec-Fetch-Mode, else the kind of request)."""
    mode = (hf.header(req, "sec-fetch-mode") or "").lower()
    if mode:
        return mode == "cors"
    if entry_type in ("xhr", "fetch", "eventsource"):
        return True
    # A page navigation (an IdP's auto-submitted SAML form) sends Origin too but asks for HTML: not CORS.
    navigation = entry_type == "document" or (hf.header(req, "accept") or "").lower().startswith("text/html")
    return bool(hf.header(req, "origin")) and not navigation


def preflight_problem(req: dict, resp: dict, page: str, status: int) -> str | None:
    """Why a recorded preflight (OPTIONS) would make the browser refuse the request, or None."""
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
