"""Checks that the ACME status page says "ok": the example of docs/writing-a-probe.md."""

from diagkit.probe import Option, Probe


def run(ctx, report, target, path="/status"):
    import httpx  # heavy imports inside run keep `diagkit --help` instant

    url = target.rstrip("/") + path
    try:
        with ctx.http_client() as client:  # bounded by --timeout, honours proxies and --ca-file
            response = client.get(url)
    except httpx.HTTPError as exc:  # a finding, not a crash: the page could not be read
        report.add("acme.status.unreachable", evidence={"error": type(exc).__name__})
        return
    report.facts["status"] = response.status_code
    if response.status_code == 200 and response.text.strip() == "ok":
        report.add("acme.status.ok", "The status page says ok")
    else:
        report.add("acme.status.degraded", evidence={"status": response.status_code})


probe = Probe(
    name="acme", summary="Check the ACME status page.", target="URL", run=run,
    options=(Option("path", "Status path.", default="/status"),),
    default_timeout=5.0, max_calls=1,
    example="diagkit probe acme https://status.acme.example",
    findings={
        "acme.status.ok": {"severity": "pass", "title": "The status page says ok",
                           "meaning": "The page answered 200 with the word ok.", "remediation": ""},
        "acme.status.degraded": {"severity": "warn", "title": "The status page is degraded",
                                 "meaning": "The page did not answer 200 with the word ok.",
                                 "remediation": "Check the ACME status page and its incident notes."},
        "acme.status.unreachable": {"severity": "fail", "title": "The status page could not be read",
                                    "meaning": "No answer came back (refused, timed out, TLS or DNS failure).",
                                    "remediation": "Check the URL, then run `diagkit probe http` on it."},
    },
)
