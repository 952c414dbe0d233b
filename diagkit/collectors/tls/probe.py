"""TLS probe: connect with SNI, capture the chain the server sends, and judge the certificate.

The handshake is done without verification so that even a broken chain can be inspected; the verdicts
(dates, host name, self-signed, incomplete or untrusted chain, weak keys) are then worked out one by one,
so each problem gets its own finding instead of OpenSSL's first error only.

This module holds the verdicts and the run; beside it: handshake (the connection itself), sni (a refusal
for want of SNI) and chain (certificates, the trust store, path building, host names).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from typing import TYPE_CHECKING, Any

from diagkit.collectors.tls.chain import (
    Path_,
    aia_urls,
    build_path,
    describe,
    fetch_aia,
    hostname_matches,
    is_self_issued,
    key_info,
    system_roots,
    time_text,
    weak_reasons,
    webpki_problem,
)
from diagkit.collectors.tls.handshake import ConnectFailure, Session, handshake
from diagkit.collectors.tls.sni import explain_sni
from diagkit.context import Context
from diagkit.errors import InputError
from diagkit.findings import format_time, human_duration, utc_now
from diagkit.formats.certs import load_pem_bundle
from diagkit.formats.urls import split_host_port
from diagkit.probe import Option, Probe, Report

if TYPE_CHECKING:
    pass

SOON = _dt.timedelta(days=30)
CLOCK_SKEW_LIMIT = 300  # seconds; beyond this, certificate dates seen from this machine are suspect
MAX_AIA_FETCHES = 3
# Handshake failures that mean "we could not agree on a protocol version": worth a legacy retry.
_VERSION_REASONS = {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE",
                    "SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE",
                    "TLSV1_ALERT_INSUFFICIENT_SECURITY", "UNSAFE_LEGACY_RENEGOTIATION_DISABLED"}




# ---------------------------------------------------------------- verdicts



def _check_dates(report: Report, certs: list[Any], labels: list[str], now: _dt.datetime, skew_note: str) -> None:
    for cert, label in zip(certs, labels, strict=True):
        before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
        evidence = {"certificate": label, "subject": cert.subject.rfc4514_string(),
                    "not_before": time_text(before), "not_after": time_text(after), "checked_at": time_text(now)}
        if after < now:
            report.add("tls.certificate.expired", f"The {label} certificate expired {human_duration((now - after).total_seconds())} ago",
                       detail=f"notAfter {time_text(after)} is before {time_text(now)}.{skew_note}", evidence=evidence)
        elif before > now:
            report.add("tls.certificate.not_yet_valid",
                       f"The {label} certificate is not valid for another {human_duration((before - now).total_seconds())}",
                       detail=f"notBefore {time_text(before)} is after {time_text(now)}.{skew_note}", evidence=evidence)
        else:
            # A 90-day certificate renewed at 60 days should not warn for a month: scale the window.
            window = min(SOON, (after - before) / 3)
            if after - now <= window:
                evidence["warn_window_days"] = round(window.total_seconds() / 86400, 1)
                report.add("tls.certificate.expires_soon", f"The {label} certificate expires in {human_duration((after - now).total_seconds())}",
                           detail=f"notAfter {time_text(after)}; the warning window for a certificate valid "
                                  f"{human_duration((after - before).total_seconds())} is {human_duration(window.total_seconds())}.", evidence=evidence)


def _check_chain(ctx: Context, report: Report, leaf: Any, sent: list[Any], store: list[Any],
                 now: _dt.datetime, from_ca_file: bool) -> Path_:
    path = build_path(leaf, sent, store)
    if path.missing_issuer is not None:
        # What a browser would do: fetch the missing issuer from the AIA URL, then try again.
        extra: list[Any] = []
        top = path.certs[-1]
        for _ in range(MAX_AIA_FETCHES):
            urls = aia_urls(top)
            fetched = next((certs for url in urls[:2] if (certs := fetch_aia(ctx, url))), None)
            if not fetched:
                break
            path.fetched.append(urls[0])
            extra.extend(fetched)
            repaired = build_path(leaf, sent + extra, store)
            repaired.fetched = path.fetched
            if repaired.missing_issuer is None:
                break
            top = repaired.certs[-1]
        if extra:
            repaired = build_path(leaf, sent + extra, store)
            repaired.fetched = path.fetched
        else:
            repaired = path
        _report_missing(report, leaf, sent, path, repaired)
        return repaired
    if path.untrusted_root is not None:
        if path.untrusted_root is leaf:
            report.add("tls.certificate.self_signed", "The server's certificate is self-signed",
                       detail=f"'{leaf.subject.rfc4514_string()}' is its own issuer and is not in the trust store"
                              f"{' or --ca-file' if from_ca_file else ''}.",
                       evidence={"subject": leaf.subject.rfc4514_string(), "sha256": describe(leaf)["sha256"]})
        else:
            root = path.untrusted_root
            report.add("tls.chain.untrusted", "The chain ends at a root that is not trusted",
                       detail=f"The server's chain leads to '{root.subject.rfc4514_string()}', which is not in the "
                              f"system trust store{' nor --ca-file' if from_ca_file else ''}.",
                       evidence={"root": root.subject.rfc4514_string(), "root_sha256": describe(root)["sha256"],
                                 "root_sent_by_server": True})
    return path


def _report_missing(report: Report, leaf: Any, sent: list[Any], path: Path_, repaired: Path_) -> None:
    top = path.certs[-1]
    urls = aia_urls(top)
    evidence = {"missing_issuer": path.missing_issuer, "sent_count": len(sent), "aia_ca_issuers": urls,
                "aia_fetched": path.fetched}
    aia_note = (f" The certificate names its issuer's download URL (AIA caIssuers {urls[0]}), so browsers "
                "fetch it and work, while curl, Java, Python and most API clients fail." if urls else
                " The certificate has no AIA caIssuers URL, so no client can fetch the missing certificate.")
    if top is leaf or repaired.anchored:
        report.add("tls.chain.incomplete", "The server does not send the certificate that issued "
                   + ("its certificate" if top is leaf else f"'{top.subject.rfc4514_string()}'"),
                   detail=f"Missing: '{path.missing_issuer}'. It was not sent and is not a trusted root.{aia_note}",
                   evidence=evidence)
    if not repaired.anchored:
        end = repaired.untrusted_root
        where = (f"a root that is not trusted ('{end.subject.rfc4514_string()}')" if end is not None
                 else f"'{repaired.missing_issuer}', which is neither sent nor in the trust store")
        report.add("tls.chain.untrusted", "No path from the certificate to a trusted root",
                   detail=f"The chain ends at {where}." + ("" if top is leaf else aia_note),
                   evidence={"chain_ends_at": repaired.missing_issuer or (end.subject.rfc4514_string() if end else None),
                             "aia_fetched": repaired.fetched})


def _check_weak(report: Report, path_certs: list[Any], sent: list[Any]) -> None:
    seen: list[Any] = []
    for index, cert in enumerate([*sent, *[c for c in path_certs if c not in sent]]):
        if cert in seen:
            continue
        seen.append(cert)
        root = is_self_issued(cert) and index > 0
        # A root's self-signature is never checked by clients, so its hash does not matter; its key does.
        reasons = weak_reasons(cert, check_signature=not root)
        if reasons:
            label = "server" if index == 0 else "root" if root else "intermediate"
            report.add("tls.key.weak", f"The {label} certificate uses a weak key or signature: {', '.join(reasons)}",
                       detail=f"'{cert.subject.rfc4514_string()}': {', '.join(reasons)}.",
                       evidence={"certificate": label, "subject": cert.subject.rfc4514_string(),
                                 "key": " ".join(str(p) for p in key_info(cert)), "reasons": reasons})


def _validation_time(certs: list[Any], now: _dt.datetime) -> _dt.datetime | None:
    start = max(c.not_valid_before_utc for c in certs)
    end = min(c.not_valid_after_utc for c in certs)
    if start <= now <= end:
        return now
    return start if start <= end else None


# ---------------------------------------------------------------- the probe


def run(ctx: Context, report: Report, target: str, servername: str | None = None, ca_file: str | None = None) -> None:
    from cryptography import x509

    from diagkit.errors import read_input_bytes

    host, port = split_host_port(target)
    if not host:
        raise InputError(f"target '{target}' has no host name")
    name = servername or host
    try:
        ipaddress.ip_address(name)
        sni = None  # SNI never carries an IP address (RFC 6066 §3)
    except ValueError:
        sni = name
    extra_roots = load_pem_bundle(read_input_bytes(ca_file, "CA file", limit=16 << 20), ca_file) if ca_file else []
    report.facts.update({"host": host, "port": port, "servername": sni})

    try:
        session = handshake(ctx, host, port, sni, legacy=False)
    except ConnectFailure as first:
        retried: Session | None = None
        if first.reason in _VERSION_REASONS:
            try:
                retried = handshake(ctx, host, port, sni, legacy=True)
            except ConnectFailure:
                retried = None
        if retried is None:
            sni_note = explain_sni(ctx, host, port, sni, first)
            report.add("tls.connect.failed", f"TLS connection to {host}:{port} failed ({first.stage})"
                       + (f": {sni_note['title']}" if sni_note else ""),
                       detail=first.message + ("" if first.reason not in _VERSION_REASONS else
                                               " A retry allowing TLS 1.0/1.1 failed too.")
                       + ("." + sni_note["detail"] if sni_note else ""),
                       evidence={"host": host, "port": port, "stage": first.stage, "timed_out": first.timed_out,
                                 **({"reason": first.reason} if first.reason else {}),
                                 **(sni_note["evidence"] if sni_note else {})},
                       refs=["RFC 8446", "RFC 6066 §3"] if sni_note else None,
                       severity="error" if first.timed_out else None)
            return
        session = retried
    report.facts.update({"protocol": session.protocol, "cipher": session.cipher})
    if session.legacy:
        report.add("tls.protocol.outdated", f"{host}:{port} only speaks {session.protocol}",
                   detail=f"A TLS 1.2+ handshake failed; only {session.protocol} worked. Current clients refuse it.",
                   evidence={"protocol": session.protocol, "cipher": session.cipher})
    if not session.chain:
        report.add("tls.connect.failed", f"{host}:{port} sent no certificate",
                   detail="The handshake completed without a server certificate (anonymous or PSK cipher suite).",
                   evidence={"host": host, "port": port, "stage": "certificate"})
        return

    certs = [x509.load_der_x509_certificate(der) for der in session.chain]
    leaf, sent = certs[0], certs
    now = ctx.now()
    report.facts["chain"] = [describe(c) for c in certs]

    skew_note = _clock(report, session.http)
    store = system_roots() + extra_roots
    report.facts["trust_store"] = {"system_roots": len(store) - len(extra_roots), "ca_file_roots": len(extra_roots)}

    problems_before = len(report.problems())
    path = _check_chain(ctx, report, leaf, sent, store, now, bool(extra_roots))
    labels = ["server"] + ["root" if is_self_issued(c) else "intermediate" for c in path.certs[1:]]
    _check_dates(report, path.certs, labels, now, skew_note)

    matched, presented = hostname_matches(leaf, name)
    if not matched:
        report.add("tls.hostname.mismatch", f"The certificate does not cover '{name}'",
                   detail=(f"Names in the certificate: {', '.join(presented)}." if presented else
                           "The certificate has no subjectAltName; clients no longer use the subject CN.")
                   + (" IP addresses only match IP SANs." if sni is None else ""),
                   evidence={"expected": name, "presented": presented,
                             "subject_cn": [a.value for a in leaf.subject.get_attributes_for_oid(
                                 x509.oid.NameOID.COMMON_NAME)]})
    _check_weak(report, path.certs, sent)

    if path.anchored and len(report.problems()) == problems_before:
        at = _validation_time(path.certs, now)
        objection = webpki_problem(leaf, sent[1:] + [c for c in path.certs[1:] if c not in sent],
                                   [path.certs[-1]], at) if at else None
        if objection:
            # OpenSSL-based clients (curl, Python, most servers) accept such chains; strict WebPKI verifiers may not.
            report.add("tls.chain.policy", "The chain is trusted but breaks a WebPKI rule",
                       detail=f"A path to a trusted root exists; a strict verifier objects: {objection.split(' (encountered')[0]}",
                       evidence={"verifier": objection.split(" (encountered")[0]})
    report.facts["path"] = [c.subject.rfc4514_string() for c in path.certs]
    report.facts["trusted"] = path.anchored and not any(f.id == "tls.chain.untrusted" for f in report.findings)

    if not report.problems():
        root = path.certs[-1].subject.rfc4514_string()
        days_left = (leaf.not_valid_after_utc - now).days
        report.add("tls.connect.ok", f"{session.protocol} to {host}:{port}: certificate valid for '{name}'",
                   detail=f"Chain validates to '{root}'; host name matches; expires in {days_left} days "
                          f"({time_text(leaf.not_valid_after_utc)}); cipher {session.cipher}.",
                   evidence={"protocol": session.protocol, "cipher": session.cipher, "root": root,
                             "not_after": time_text(leaf.not_valid_after_utc)})


def _clock(report: Report, http: dict[str, Any]) -> str:
    """Compare this machine's real clock with the server's Date; returns a note for date findings."""
    report.facts["http"] = {k: (format_time(v) if isinstance(v, _dt.datetime) else v) for k, v in http.items()}
    server_date = http.get("date")
    if not isinstance(server_date, _dt.datetime):
        return ""
    # The machine's own clock, even when DIAGKIT_NOW fixes the verdict clock: this is about the machine.
    local = utc_now()
    skew = (local - server_date).total_seconds()
    report.facts["clock"] = {"server_date": format_time(server_date), "local_time": format_time(local),
                             "skew_seconds": int(skew)}
    if abs(skew) <= CLOCK_SKEW_LIMIT:
        return ""
    direction = "ahead of" if skew > 0 else "behind"
    report.add("tls.clock.skew", f"This machine's clock is {human_duration(skew)} {direction} the server's",
               detail=f"Server Date: {format_time(server_date)}; local clock: {format_time(local)}. A wrong clock makes "
                      "valid certificates look expired or not yet valid.",
               evidence={"server_date": format_time(server_date), "local_time": format_time(local),
                         "skew_seconds": int(skew)})
    return f" This machine's clock differs from the server's by {int(skew)} s; check it first."


probe = Probe(
    name="tls",
    summary="Check a TLS endpoint's certificate, chain, host name and protocol.",
    target="HOST[:PORT]",
    run=run,
    check_target=split_host_port,
    options=(
        Option("servername", "SNI name to send and to match the certificate against (default: the host).",
               metavar="NAME"),
        Option("ca_file", "Extra trusted CA certificates (PEM), added to the system trust store.", metavar="PEM"),
    ),
    default_timeout=10.0,
    max_calls=6,
    example="diagkit probe tls api.example.com:443 --servername api.example.com",
    description=(
        "Connect to HOST[:PORT] (default 443) with SNI, capture the chain the server sends and judge it: dates, "
        "host name (SAN DNS/IP), self-signed, incomplete or untrusted chain (with the AIA caIssuers URL), weak keys "
        "and signatures, TLS 1.0/1.1-only servers, and this machine's clock against the server's HTTP Date."
    ),
)
