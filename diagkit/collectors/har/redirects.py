"""Redirects in a HAR: loops (the same hop repeated quickly, as in a broken SSO round trip) and HTTPS->HTTP hops."""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from urllib.parse import urljoin

from diagkit.collectors.har.values import GROUP_SAMPLE, Group
from diagkit.formats import har as hf
from diagkit.formats.urls import origin_of, path_key, url_shape
from diagkit.probe import Report

REDIRECT_LOOP_REPEATS = 3
LOOP_WINDOW_S = 15.0  # an SSO loop goes round in a second or two; page reloads are further apart
LOOP_WINDOW_ENTRIES = 25


class RedirectLoops:
    """Counts each redirect edge (from page -> to page) and the longest run of quick repeats of it."""

    def __init__(self) -> None:
        self.edges: Counter[tuple[str, str]] = Counter()
        # edge -> (index, time) of its last occurrence, and the longest run of quick repeats
        self.edge_last: dict[tuple[str, str], tuple[int, _dt.datetime | None]] = {}
        self.edge_run: dict[tuple[str, str], int] = {}
        self.edge_best: Counter[tuple[str, str]] = Counter()
        self.edge_first: dict[tuple[str, str], int] = {}
        self.insecure: dict[tuple[str, str], Group] = {}

    def note(self, index: int, resp: dict, url: str, shown: str, started: _dt.datetime | None) -> str | None:
        """Records one redirect response; returns the absolute target, None when it has no Location."""
        location = resp.get("redirectURL") or hf.header(resp, "location")
        if not location or not isinstance(location, str):
            return None
        try:
            target = urljoin(url, location) if url else location
        except ValueError:  # one of the two is not a URL ("http://[::1")
            target = location
        edge = (path_key(url), path_key(target))
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
            group = self.insecure.setdefault(key, Group(evidence={"from": shown, "to": url_shape(target)}))
            group.note(index, shown, [])
        return target

    def finish(self, report: Report, too_many: list[Group]) -> None:
        """`too_many`: failed requests the browser itself stopped with "too many redirects"."""
        # A loop, not a page loaded many times: the repeated redirect starts at a URL that is itself
        # reached by redirects again and again (A -> B ... -> A, including IdP form posts back to the SP).
        targets: Counter[str] = Counter()
        for (_a, b), n in self.edges.items():
            targets[b] += n
        loops = [((a, b), n) for (a, b), n in self.edge_best.items()
                 if n >= REDIRECT_LOOP_REPEATS and targets[a] >= REDIRECT_LOOP_REPEATS - 1]
        if loops:
            loops.sort(key=lambda item: -item[1])
            hops = [{"from": url_shape(a), "to": url_shape(b), "times": n} for (a, b), n in loops[:GROUP_SAMPLE]]
            first = min(self.edge_first[e] for e, _ in loops)
            report.add("har.redirect.loop",
                       f"Redirect loop: {hops[0]['from']} -> {hops[0]['to']} repeated {loops[0][1]} times",
                       detail="The same redirect happens again and again; in SSO flows (SP -> IdP -> SP) "
                              "this usually means the session cookie set after login is not kept "
                              "(SameSite, Secure, domain or path) or the SP rejects the assertion silently.",
                       evidence={"hops": hops, "repeats": loops[0][1], "first_entry": first})
        if too_many and not loops:
            report.add("har.redirect.loop", f"The browser stopped a redirect loop at {too_many[0].urls[0]}",
                       detail="The request failed with too many redirects (net::ERR_TOO_MANY_REDIRECTS).",
                       evidence={"urls": too_many[0].urls, "first_entry": too_many[0].first})
        for g in self.insecure.values():
            report.add("har.redirect.insecure", f"Redirect from HTTPS to HTTP: {g.evidence['from']}",
                       evidence={**g.evidence, "count": g.count, "first_entry": g.first})
