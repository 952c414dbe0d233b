"""SAML metadata probe: fetch or read IdP metadata and check entity, roles, endpoints, certificates, signature."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from diagkit.context import Context
from diagkit.findings import Severity, format_time
from diagkit.formats.saml_xml import NS_DS, NS_MD, SAML2_PROTOCOL, local_name, namespace_of, qn
from diagkit.probe import Option, Probe, Report

MAX_METADATA_BYTES = 20 * 1024 * 1024
_ENDPOINTS = ("SingleSignOnService", "SingleLogoutService", "ArtifactResolutionService",
              "AssertionConsumerService", "ManageNameIDService", "AttributeService")


def _is_url(target: str) -> bool:
    return target.lower().startswith(("http://", "https://"))


def _fetch(ctx: Context, report: Report, url: str) -> bytes | None:
    import httpx

    from diagkit.scrub import scrub_url

    shown = scrub_url(url)  # a signed or token-bearing metadata URL keeps its secrets out of the output

    try:
        with ctx.http_client(follow_redirects=True) as client, client.stream(
                "GET", url, headers={"Accept": "application/samlmetadata+xml, application/xml, text/xml"}) as resp:
            report.facts["http_status"] = resp.status_code
            report.facts["content_type"] = resp.headers.get("content-type")
            if str(resp.url) != url:
                report.facts["final_url"] = scrub_url(str(resp.url))
            if resp.status_code != 200:
                report.add("saml.metadata.unreachable", f"Metadata URL answered HTTP {resp.status_code}",
                           detail=f"GET {shown} returned {resp.status_code} {resp.reason_phrase}; expected 200 "
                                  "with the XML metadata.",
                           evidence={"url": shown, "status": resp.status_code})
                return None
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_METADATA_BYTES:
                    report.add("saml.metadata.unreachable", "Metadata response is too large",
                               detail=f"More than {MAX_METADATA_BYTES} bytes; not read further.",
                               evidence={"url": shown})
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:  # idna refuses an over-long label
        from diagkit.scrub import scrub

        hint = " (private CA? pass --ca-file)" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else ""
        report.add("saml.metadata.unreachable", "Could not fetch the metadata URL",
                   detail=f"GET {shown} failed: {type(exc).__name__}: {scrub(str(exc))}{hint}",
                   evidence={"url": shown, "error": type(exc).__name__},
                   # CONTRACT.md: a check cut short by the timeout could not run, so `error`, not a verdict.
                   severity=Severity.ERROR if isinstance(exc, httpx.TimeoutException) else None)
        return None


# Public names for the response probe, which reads IdP metadata for its trust anchors (saml_trust).
is_url = _is_url
fetch = _fetch


def _entity_id_note(expected: str, found: str) -> str:
    if expected.rstrip("/") == found.rstrip("/"):
        return " They differ only by a trailing slash, which still counts: entityIDs are compared exactly."
    if expected.lower() == found.lower():
        return " They differ only in letter case, which still counts: entityIDs are compared exactly."
    return ""


def _bool_attr(element: Any, name: str) -> bool | None:
    value = element.get(name)
    return None if value is None else value.strip().lower() in ("true", "1")


class _EntityCheck:
    """Checks one EntityDescriptor; findings go to `report` (a sub-report when part of an aggregate)."""

    def __init__(self, report: Report, entity: Any, now: _dt.datetime, *, idp_only: bool) -> None:
        self.report = report
        self.entity = entity
        self.now = now
        self.idp_only = idp_only
        self.entity_id = entity.get("entityID") or "(no entityID)"
        self.facts: dict[str, Any] = {"entity_id": self.entity_id}

    def run(self) -> dict[str, Any]:
        entity, facts = self.entity, self.facts
        if entity.get("validUntil"):
            facts["valid_until"] = entity.get("validUntil")
        if entity.get("cacheDuration"):
            facts["cache_duration"] = entity.get("cacheDuration")
        _check_valid_until(self.report, entity, self.now, f"Entity {self.entity_id}")
        idps = [r for r in entity.findall(qn(NS_MD, "IDPSSODescriptor"))]
        saml2_idps = [r for r in idps if SAML2_PROTOCOL in (r.get("protocolSupportEnumeration") or "").split()]
        roles = [child.tag.split("}", 1)[-1] for child in entity if isinstance(child.tag, str)
                 and child.tag.endswith(("Descriptor",)) and child.tag != qn(NS_DS, "Signature")]
        facts["roles"] = roles
        if not saml2_idps:
            if not self.idp_only:
                what = ("an IDPSSODescriptor without the SAML 2.0 protocol in protocolSupportEnumeration"
                        if idps else f"no IDPSSODescriptor (roles: {', '.join(roles) or 'none'})")
                self.report.add("saml.metadata.no_idp", f"{self.entity_id} is not a SAML 2.0 IdP",
                                detail=f"The entity has {what}. Service-provider metadata was probably given "
                                       "where the IdP's was expected.",
                                evidence={"entity_id": self.entity_id, "roles": roles})
            descriptors = [r for r in entity if isinstance(r.tag, str) and r.tag.startswith(f"{{{NS_MD}}}")]
        else:
            descriptors = saml2_idps
            idp = saml2_idps[0]
            facts["idp"] = {
                "protocols": (idp.get("protocolSupportEnumeration") or "").split(),
                "want_authn_requests_signed": _bool_attr(idp, "WantAuthnRequestsSigned"),
                "nameid_formats": [(e.text or "").strip() for e in idp.findall(qn(NS_MD, "NameIDFormat"))],
            }
        self._endpoints(descriptors)
        if saml2_idps and not facts.get("endpoints", {}).get("SingleSignOnService"):
            self.report.add("saml.metadata.invalid", f"{self.entity_id}: the IdP has no SingleSignOnService",
                            detail="An IDPSSODescriptor must list at least one SingleSignOnService endpoint "
                                   "(SAML 2.0 Metadata §2.4.3).", evidence={"entity_id": self.entity_id})
        self._certificates(descriptors, is_idp=bool(saml2_idps))
        return facts

    def _endpoints(self, descriptors: list[Any]) -> None:
        endpoints: dict[str, list[dict[str, Any]]] = {}
        insecure: list[dict[str, Any]] = []
        for role in descriptors:
            for kind in _ENDPOINTS:
                for ep in role.findall(qn(NS_MD, kind)):
                    location = (ep.get("Location") or "").strip()
                    row = {"binding": (ep.get("Binding") or "").rsplit(":", 1)[-1], "location": location,
                           "https": location.lower().startswith("https://")}
                    endpoints.setdefault(kind, []).append(row)
                    if location and not row["https"]:
                        insecure.append({"service": kind, "binding": row["binding"], "location": location})
        self.facts["endpoints"] = endpoints
        if insecure:
            names = ", ".join(sorted({i["service"] for i in insecure}))
            self.report.add("saml.sso.insecure_endpoint",
                            f"{self.entity_id}: {len(insecure)} endpoint(s) not on HTTPS ({names})",
                            detail="; ".join(f"{i['service']} ({i['binding']}) {i['location']}" for i in insecure[:10]),
                            evidence={"entity_id": self.entity_id, "endpoints": insecure[:20]})

    def _certificates(self, descriptors: list[Any], *, is_idp: bool) -> None:
        from diagkit.formats import certs as certlib

        seen: dict[str, dict[str, Any]] = {}
        order: list[tuple[str, Any]] = []
        for role in descriptors:
            for kd in role.findall(qn(NS_MD, "KeyDescriptor")):
                use = kd.get("use") or "signing+encryption"
                for el in kd.iter(qn(NS_DS, "X509Certificate")):
                    try:
                        cert = certlib.load_certificate(el.text or "")
                    except certlib.CertificateError as exc:
                        self.report.add("saml.metadata.invalid",
                                        f"{self.entity_id}: a {use} certificate cannot be read",
                                        detail=f"X509Certificate in a KeyDescriptor is {exc}.",
                                        evidence={"entity_id": self.entity_id, "use": use})
                        continue
                    info = certlib.describe(cert)
                    fp = info["fingerprint_sha256"]
                    if fp in seen:
                        seen[fp]["use"] = sorted(set(seen[fp]["use"]) | set(use.split("+")))
                        continue
                    info["use"] = use.split("+")
                    seen[fp] = info
                    order.append((fp, cert))
        self.facts["certificates"] = list(seen.values())
        signing = [fp for fp, _ in order if "signing" in seen[fp]["use"]]
        for fp, cert in order:
            info = seen[fp]
            label = f"{'/'.join(info['use'])} certificate {info['subject']} (SHA-256 {fp[:23]}...)"
            evidence = {"entity_id": self.entity_id, "use": info["use"], "subject": info["subject"],
                        "not_after": info["not_after"], "fingerprint_sha256": fp}
            for problem in certlib.assess(cert, self.now):
                if problem.kind == "expired":
                    self.report.add("saml.certificate.expired", f"{self.entity_id}: {label} {problem.message}",
                                    evidence=evidence)
                elif problem.kind == "not_yet_valid":
                    self.report.add("saml.certificate.not_yet_valid", f"{self.entity_id}: {label} is "
                                    f"{problem.message}", evidence=evidence)
                elif problem.kind == "expires_soon":
                    self.report.add("saml.certificate.expires_soon", f"{self.entity_id}: {label} {problem.message}",
                                    detail=f"Within the {certlib.EXPIRES_SOON_DAYS}-day warning window; publish the "
                                           "next certificate alongside this one now.", evidence=evidence)
                elif problem.kind == "weak_key":
                    self.report.add("saml.certificate.weak_key", f"{self.entity_id}: {label}: {problem.message}",
                                    evidence={**evidence, "key": info["key"]})
                elif problem.kind == "weak_signature":
                    # In metadata the key is pinned, so the certificate's own signature is rarely checked:
                    # worth fixing, but not what breaks logins.
                    self.report.add("saml.certificate.weak_key", f"{self.entity_id}: {label}: {problem.message}",
                                    detail="A SHA-1/MD5 signature on the certificate itself. Most SPs pin the key "
                                           "from metadata and ignore it, strict ones reject it.",
                                    evidence={**evidence, "signature_hash": info["signature_hash"]},
                                    severity=Severity.WARN)
        if is_idp and not signing:
            self.report.add("saml.certificate.missing", f"{self.entity_id}: the IdP publishes no signing certificate",
                            evidence={"entity_id": self.entity_id})
        if len(signing) >= 2:
            self.report.add("saml.certificate.rollover",
                            f"{self.entity_id}: {len(signing)} signing certificates published (rollover in progress)",
                            detail="SPs must accept signatures from any of them; check the SP has imported all.",
                            evidence={"entity_id": self.entity_id,
                                      "certificates": [{"subject": seen[fp]["subject"], "not_after":
                                                        seen[fp]["not_after"], "fingerprint_sha256": fp}
                                                       for fp in signing]})


def _check_valid_until(report: Report, element: Any, now: _dt.datetime, what: str) -> None:
    from diagkit.formats.saml_xml import parse_saml_time

    raw = element.get("validUntil")
    if raw is None:
        return
    moment = parse_saml_time(raw)
    if moment is None:
        report.add("saml.metadata.invalid", f"{what}: validUntil is not a valid time",
                   evidence={"valid_until": raw})
    elif moment < now:
        days = (now - moment).days
        report.add("saml.metadata.expired", f"{what}: metadata expired {days} days ago (validUntil)",
                   evidence={"valid_until": format_time(moment)})


def _check_signature(report: Report, root: Any) -> None:
    from diagkit.formats.saml_xml import signature_info, verify_signature

    sig = root.find(qn(NS_DS, "Signature"))
    if sig is None:
        report.facts["signed"] = False
        return
    info = verify_signature(signature_info(sig))
    report.facts["signed"] = True
    report.facts["signature"] = info.summary()
    cert = info.summary().get("certificate_subject")
    if info.valid:
        report.add("saml.signature.valid", "The metadata's XML signature is valid",
                   detail=f"Verified with the certificate embedded in the signature ({cert}). This proves the "
                          "document was not changed since it was signed; whether you trust that certificate is a "
                          "separate question: compare its fingerprint with the one your federation or IdP publishes.",
                   evidence={k: v for k, v in info.summary().items() if k != "valid"})
    elif info.valid is False:
        report.add("saml.signature.invalid", "The metadata's XML signature does not verify",
                   detail=f"{info.reason}. Checked against the certificate embedded in the signature ({cert}).",
                   evidence={k: v for k, v in info.summary().items() if k != "valid"})
    else:
        report.add("saml.signature.unverifiable", "The metadata's XML signature could not be checked",
                   detail=info.reason or "", evidence={k: v for k, v in info.summary().items() if k != "valid"})
    if info.valid and info.algorithm and info.algorithm.endswith(("sha1", "md5")):
        report.add("saml.signature.weak_algorithm", "The metadata is signed with SHA-1",
                   evidence={"algorithm": info.algorithm})


def _merge(report: Report, sub: Report, count_label: str) -> None:
    """Aggregates: one finding per id, listing the entities, so 50 expired certificates stay readable."""
    by_id: dict[str, list[Any]] = {}
    for finding in sub.findings:
        by_id.setdefault(finding.id, []).append(finding)
    for finding_id, items in by_id.items():
        if len(items) == 1:
            report.findings.append(items[0])
            continue
        worst = max(items, key=lambda f: f.severity.rank)
        entities = sorted({str(f.evidence.get("entity_id")) for f in items})
        report.add(finding_id, f"{len(items)} findings in {len(entities)} {count_label}: {worst.title}",
                   detail="\n".join(f.title for f in items[:15]) + ("\n..." if len(items) > 15 else ""),
                   evidence={"count": len(items), "entities": entities[:25]}, severity=worst.severity)


def run(ctx: Context, report: Report, target: str, expect_entity_id: str | None = None,
        ca_file: str | None = None) -> None:
    del ca_file  # already in ctx (the CLI passes --ca-file to the Context)
    from diagkit.errors import InputFormatError, read_input_bytes
    from diagkit.formats.saml_xml import parse_xml
    from diagkit.scrub import scrub_url

    now = ctx.now()
    report.facts["source"] = scrub_url(target)
    if _is_url(target):
        data = _fetch(ctx, report, target)
        if data is None:
            return
    else:
        data = read_input_bytes(target, "metadata file", limit=MAX_METADATA_BYTES)
    report.facts["bytes"] = len(data)
    source = target if not _is_url(target) else f"metadata from {scrub_url(target)}"
    try:
        root = parse_xml(data, source)
    except InputFormatError as exc:
        report.add("saml.metadata.invalid", "The metadata could not be parsed", detail=exc.message)
        return
    kind = local_name(root)
    if root.tag not in (qn(NS_MD, "EntityDescriptor"), qn(NS_MD, "EntitiesDescriptor")):
        ns = namespace_of(root)
        report.add("saml.metadata.invalid", f"Not SAML 2.0 metadata: the root element is <{kind}>",
                   detail=f"Expected md:EntityDescriptor or md:EntitiesDescriptor in namespace {NS_MD}; "
                          f"found <{kind}> in namespace {ns}.", evidence={"root": kind, "namespace": ns})
        return
    report.facts["root"] = kind
    _check_signature(report, root)
    _check_valid_until(report, root, now, "Metadata" if kind == "EntityDescriptor" else "Aggregate")
    if root.get("cacheDuration"):
        report.facts["cache_duration"] = root.get("cacheDuration")
    if root.get("validUntil"):
        report.facts["valid_until"] = root.get("validUntil")
    entities = [root] if kind == "EntityDescriptor" else list(root.iter(qn(NS_MD, "EntityDescriptor")))
    by_id = {e.get("entityID"): e for e in entities}

    if expect_entity_id is not None:
        chosen = by_id.get(expect_entity_id)
        if chosen is None:
            ids = [i for i in by_id if i]
            near = next((i for i in ids if _entity_id_note(expect_entity_id, i)), None)
            if kind == "EntityDescriptor" and ids:
                note = _entity_id_note(expect_entity_id, ids[0])
                report.add("saml.entity_id.mismatch", "The metadata's entityID is not the expected one",
                           detail=f"Expected '{expect_entity_id}', the metadata says '{ids[0]}'.{note}",
                           evidence={"expected": expect_entity_id, "found": ids[0]})
                chosen = entities[0]
            else:
                note = _entity_id_note(expect_entity_id, near) if near else ""
                report.add("saml.entity_id.mismatch", f"No entity '{expect_entity_id}' in the metadata",
                           detail=f"The {len(ids)} entities do not include it."
                                  + (f" Closest: '{near}'.{note}" if near else ""),
                           evidence={"expected": expect_entity_id, "closest": near, "entities": len(ids)})
        entities_to_check = [chosen] if chosen is not None else []
        aggregate = False
    else:
        entities_to_check = entities
        aggregate = kind == "EntitiesDescriptor"

    if aggregate:
        _check_aggregate(report, entities_to_check, now)
        return
    if not entities_to_check:
        return
    check = _EntityCheck(report, entities_to_check[0], now, idp_only=False)
    report.facts["entity"] = check.run()
    if not report.problems():
        facts = report.facts["entity"]
        sso = facts.get("endpoints", {}).get("SingleSignOnService", [])
        certs = facts.get("certificates", [])
        until = min((c["not_after"] for c in certs), default=None)
        report.add("saml.metadata.ok", f"IdP metadata for {check.entity_id} is valid",
                   detail=f"entityID{' matches' if expect_entity_id else ''} '{check.entity_id}'; "
                          f"{len(sso)} SSO endpoint(s), all HTTPS; {len(certs)} certificate(s)"
                          + (f", valid until at least {until}" if until else "") + ".")


def _check_aggregate(report: Report, entities: list[Any], now: _dt.datetime) -> None:
    sub = Report()
    idps: list[dict[str, Any]] = []
    sps = 0
    for entity in entities:
        if entity.find(qn(NS_MD, "SPSSODescriptor")) is not None:
            sps += 1
        is_idp = any(SAML2_PROTOCOL in (r.get("protocolSupportEnumeration") or "").split()
                     for r in entity.findall(qn(NS_MD, "IDPSSODescriptor")))
        if not is_idp:
            continue
        facts = _EntityCheck(sub, entity, now, idp_only=True).run()
        certs = facts.get("certificates", [])
        idps.append({"entity_id": facts["entity_id"],
                     "sso_endpoints": len(facts.get("endpoints", {}).get("SingleSignOnService", [])),
                     "certificates": len(certs),
                     "earliest_not_after": min((c["not_after"] for c in certs), default=None)})
    report.facts["aggregate"] = {"entities": len(entities), "idps": len(idps), "sps": sps}
    report.facts["idps"] = idps
    report.add("saml.metadata.aggregate", f"Aggregate of {len(entities)} entities: {len(idps)} IdP(s), {sps} SP(s)",
               detail="Each IdP was checked; use --expect-entity-id to check one entity in full.")
    if not idps:
        report.add("saml.metadata.no_idp", "The aggregate contains no SAML 2.0 IdP",
                   detail=f"None of the {len(entities)} entities has an IDPSSODescriptor supporting SAML 2.0.",
                   evidence={"entities": len(entities)})
        return
    _merge(report, sub, "IdPs")
    if not report.problems():
        report.add("saml.metadata.ok", f"All {len(idps)} IdP(s) in the aggregate passed the checks")


probe = Probe(
    name="saml-metadata",
    summary="Check SAML 2.0 IdP metadata: entityID, validity, endpoints, certificates and signature.",
    target="SOURCE",
    run=run,
    options=(
        Option("expect_entity_id", "The entityID the SP is configured with (exact match).", metavar="ID"),
        Option("ca_file", "Extra trusted CA certificates (PEM) for an https metadata URL.", metavar="PEM"),
    ),
    default_timeout=10.0,
    max_calls=2,
    network=True,
    example="diagkit probe saml-metadata https://idp.example.com/metadata --expect-entity-id https://idp.example.com/",
    description="Check SAML 2.0 metadata from a URL or a file (SOURCE): EntityDescriptor or EntitiesDescriptor, "
                "entityID (exact, trailing slash included), validUntil, IdP role and protocol, SSO/SLO endpoints "
                "(HTTPS), signing/encryption certificates (expiry, key size, SHA-1, rollover) and the "
                "metadata's own XML signature. DTDs and entities are refused.",
)
