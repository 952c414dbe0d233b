"""Time in a HAR: slow requests with the phase that dominated, and the client clock against servers' Dates."""

from __future__ import annotations

import datetime as _dt
import statistics
from typing import Any

from diagkit.context import parse_http_date
from diagkit.formats import har as hf
from diagkit.formats.urls import hostname
from diagkit.probe import Report

SLOW_REPORT_LIMIT = 10

PHASE_HINT = {
    "blocked": "Most time was spent queued in the browser (too many parallel connections, or a proxy).",
    "dns": "Most time was spent resolving the host name: check the client's DNS resolver.",
    "connect": "Most time was spent opening the TCP connection: network latency, packet loss or a firewall.",
    "ssl": "Most time was spent in the TLS handshake: slow OCSP/CRL checks, a TLS-inspecting proxy or a far server.",
    "send": "Most time was spent sending the request: a large upload or a slow uplink.",
    "wait": "Most time was spent waiting for the server's first byte: the server (or something behind it) is slow.",
    "receive": "Most time was spent downloading the response: a large body or limited bandwidth.",
}



class SlowRequests:
    """Requests whose total time or wait for the first byte reaches the limits; the slowest are reported."""

    def __init__(self, slow_ms: float, slow_wait_ms: float) -> None:
        self.slow_ms, self.slow_wait_ms = slow_ms, slow_wait_ms
        self.rows: list[dict[str, Any]] = []
        self.count = 0

    def note(self, index: int, entry: dict, shown: str, method: str, status: int, total: float | None,
             ph: dict[str, float]) -> None:
        if total is None or status == 101 or entry.get("_webSocketMessages") is not None:
            return
        if hf.mime_type(entry) == "text/event-stream":
            return  # a server-sent event stream stays open on purpose
        wait = ph.get("wait", 0.0)
        if total < self.slow_ms and wait < self.slow_wait_ms:
            return
        self.count += 1
        dominant = max(ph.items(), key=lambda kv: kv[1]) if ph else ("unknown", total)
        row = {"i": index, "method": method, "url": shown, "status": status, "total_ms": round(total),
               "phase": dominant[0], "phase_ms": round(dominant[1]),
               "timings_ms": {k: round(v, 1) for k, v in ph.items()}}
        self.rows.append(row)
        if len(self.rows) > SLOW_REPORT_LIMIT * 4:  # bound memory; keep the slowest
            self.rows.sort(key=lambda r: -r["total_ms"])
            del self.rows[SLOW_REPORT_LIMIT:]

    def finish(self, report: Report) -> None:
        self.rows.sort(key=lambda row: -row["total_ms"])
        for row in self.rows[:SLOW_REPORT_LIMIT]:
            report.add(
                "har.request.slow",
                f"Slow request ({row['total_ms']} ms, mostly {row['phase']}): {row['method']} {row['url']}",
                detail=PHASE_HINT.get(row["phase"], ""),
                evidence={"entry": row["i"], "url": row["url"], "status": row["status"],
                          "total_ms": row["total_ms"], "phase": row["phase"], "phase_ms": row["phase_ms"],
                          "timings_ms": row["timings_ms"]})


class ClockSkew:
    """startedDateTime against each response's Date header: a wrong client clock shows against every server."""

    def __init__(self, max_skew_s: float) -> None:
        self.max_skew_s = max_skew_s
        self.skews: list[float] = []
        self.by_host: dict[str, list[float]] = {}

    def note(self, entry: dict, resp: dict, url: str, status: int, started: _dt.datetime | None) -> None:
        if started is None or status == 0 or entry.get("_fromCache"):
            return  # a response from the browser cache carries the Date of when it was first fetched
        server = parse_http_date(hf.header(resp, "date"))
        if server is None:
            return
        skew = (started - server).total_seconds()
        age = (hf.header(resp, "age") or "").strip()
        if age.isascii() and age.isdigit() and len(age) < 12 and abs(skew - int(age)) < abs(skew):
            skew -= int(age)  # a shared cache keeps the origin's Date and adds Age (RFC 9111 §5.1)
        host = hostname(url) or ""
        self.skews.append(skew)
        self.by_host.setdefault(host, []).append(skew)

    def finish(self, report: Report) -> None:
        if not self.skews:
            return
        median = statistics.median(self.skews)
        # A wrong client clock shows against every server; stale cached copies from one host do not.
        by_host = statistics.median(statistics.median(v) for v in self.by_host.values())
        report.facts["clock_skew_s"] = round(median, 1)
        if abs(median) > self.max_skew_s and abs(by_host) > self.max_skew_s:
            ahead = "ahead of" if median > 0 else "behind"
            report.add("har.clock.skew",
                       f"The client clock is {abs(median) / 60:.0f} min {ahead} the servers' clocks",
                       detail=f"Median of startedDateTime minus the response Date header over "
                              f"{len(self.skews)} responses is {median:+.0f} s (allowed ±{self.max_skew_s:.0f} s).",
                       evidence={"median_skew_s": round(median), "samples": len(self.skews),
                                 "hosts": len(self.by_host),
                                 "allowed_s": self.max_skew_s, "client": ahead + " server"})
