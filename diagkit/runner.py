"""Runs one probe against one target: times it, bounds it, and turns crashes into `error` findings."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from diagkit import catalogue
from diagkit.context import Context
from diagkit.errors import DiagkitError
from diagkit.findings import ProbeResult, Severity
from diagkit.probe import Probe, Report, recorded_options
from diagkit.scrub import scrub, scrub_traceback, scrub_url


def shown_target(target: str) -> str:
    """The target as output and packets may show it.

    A token in a URL's query or user:password@ is masked; a message given inline (a pasted
    SAMLResponse, XML or a long base64 value) is replaced by its length and a digest, since its
    content is an assertion or a credential, not a name.
    """
    import hashlib
    import os
    import re

    if len(target) < 4096 and os.path.exists(target):
        return target
    inline = (len(target) > 256 or target.lstrip().startswith("<")
              or any(marker in target for marker in ("SAMLResponse=", "SAMLRequest="))
              or re.fullmatch(r"[A-Za-z0-9+/=_%\s-]{64,}", target) is not None)
    if inline and "://" not in target[:16]:
        digest = hashlib.sha256(target.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return f"<inline value, {len(target)} chars, sha256 {digest}>"
    return scrub_url(target)


def run_probe(probe: Probe, target: str, options: Mapping[str, Any] | None = None,
              ctx: Context | None = None) -> ProbeResult:
    """Never raises for a probe's own failure: the result carries an `error` finding instead.

    DiagkitError from the probe (bad input such as a missing file) is re-raised so the CLI can exit 1
    with its one-line message, unless `ctx.extra['record_input_errors']` asks to record it (collect).
    """
    ctx = ctx or Context(timeout=probe.default_timeout)
    options = dict(options or {})
    report = Report()
    started = ctx.now()
    t0 = time.monotonic()
    outcome: dict[str, BaseException] = {}

    def work() -> None:
        try:
            probe.run(ctx, report, target, **options)
        except BaseException as exc:  # noqa: BLE001 - reported below, never lost
            outcome["exc"] = exc

    deadline = ctx.timeout * max(1, probe.max_calls) + 2.0
    thread = threading.Thread(target=work, name=f"probe-{probe.name}", daemon=True)
    thread.start()
    thread.join(deadline)
    elapsed_ms = int((time.monotonic() - t0) * 1000)

    findings = list(report.findings)
    if thread.is_alive():
        findings.append(catalogue.make(
            "probe.run.timeout",
            f"The {probe.name} probe did not finish within {deadline:.0f} s",
            evidence={"deadline_s": int(deadline)},
        ))
    elif "exc" in outcome:
        exc = outcome["exc"]
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        if isinstance(exc, DiagkitError):
            if not ctx.extra.get("record_input_errors"):
                raise exc
            findings.append(catalogue.make("probe.input.missing", detail=exc.message,
                                           evidence={"ref": exc.ref}))
        else:
            detail = scrub(f"{type(exc).__name__}: {exc}")
            evidence: dict[str, Any] = {"exception": type(exc).__name__}
            if ctx.debug:
                evidence["traceback"] = scrub_traceback("".join(traceback.format_exception(exc)))
            findings.append(catalogue.make("probe.run.crashed", detail=detail, evidence=evidence))
    if not findings:
        # A probe that reports nothing verified nothing: never let that read as success.
        findings.append(catalogue.make("probe.run.crashed", "The probe reported no findings",
                                       detail=f"The {probe.name} probe returned without any finding.",
                                       severity=Severity.ERROR))
    return ProbeResult(
        probe=probe.name,
        target=shown_target(target),
        started_at=started,
        duration_ms=elapsed_ms,
        findings=findings,
        facts=dict(report.facts),
        options=recorded_options(probe, options),
    )
