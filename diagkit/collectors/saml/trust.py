"""Trust anchors for SAML responses: the IdP's published signing certificates, and the check against them.

`load` reads them from IdP metadata (`--idp-metadata URL|FILE`) or a certificate file (`--idp-cert PEM`).
`judge` decides one signature: it counts as trusted only when it verifies with one of those certificates
(signxml is given the published certificate, never the one the message carries). A signature that verifies
only with the certificate embedded in the response is `saml.signature.untrusted_cert`, both SHA-256
fingerprints named: the IdP rotated its signing certificate and the SP (or the metadata given) has the old one.
A source that cannot be read or analysed leaves the anchors unusable, so nothing is reported as trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diagkit.formats.saml_xml import NS_DS, NS_MD, local_name, namespace_of, qn

if TYPE_CHECKING:
    from cryptography import x509

    from diagkit.context import Context
    from diagkit.formats.saml_xml import SignatureInfo
    from diagkit.probe import Report

MAX_CERT_FILE_BYTES = 1024 * 1024


@dataclass
class Anchor:
    cert: x509.Certificate
    fingerprint: str  # SHA-256, colon hex as IdP consoles show it
    source: str
    entity_id: str | None = None


@dataclass
class Anchors:
    """What the user said the IdP signs with. `usable` is False when a given source could not be read."""

    items: list[Anchor] = field(default_factory=list)
    usable: bool = True
    entity_ids: list[str] = field(default_factory=list)

    def for_issuer(self, issuer: str | None) -> list[Anchor]:
        """The certificates of the metadata entity named by the response's Issuer, else all of them."""
        chosen = [a for a in self.items if issuer and a.entity_id == issuer]
        return chosen or self.items

    def facts(self) -> list[dict[str, Any]]:
        from diagkit.formats.certs import describe

        out = []
        for a in self.items:
            info = describe(a.cert)
            out.append({"source": a.source, "entity_id": a.entity_id, "subject": info["subject"],
                        "not_after": info["not_after"], "fingerprint_sha256": a.fingerprint})
        return out


def _anchor(cert: x509.Certificate, source: str, entity_id: str | None = None) -> Anchor:
    from diagkit.formats.certs import fingerprints

    return Anchor(cert, fingerprints(cert)["sha256"], source, entity_id)


def load(ctx: Context, report: Report, idp_metadata: str | None, idp_cert: str | None) -> Anchors | None:
    """None when neither option is given; problems with a source are findings (`fail`), never a pass."""
    if not idp_metadata and not idp_cert:
        return None
    anchors = Anchors()
    if idp_cert:
        _from_cert_file(report, anchors, idp_cert)
    if idp_metadata:
        _from_metadata(ctx, report, anchors, idp_metadata)
    if anchors.usable and not anchors.items:
        anchors.usable = False
    report.facts["idp_certificates"] = anchors.facts()
    return anchors


def _from_cert_file(report: Report, anchors: Anchors, path: str) -> None:
    import os
    import re

    from diagkit.errors import read_input_bytes
    from diagkit.formats import certs

    if not os.path.exists(path) and ("-----BEGIN CERTIFICATE-----" in path
                                     or re.fullmatch(r"[A-Za-z0-9+/=\s]{200,20000}", path)):
        data, path = path.encode(), "(the certificate given inline)"  # pasted PEM or base64 DER
    else:
        data = read_input_bytes(path, "IdP certificate file", limit=MAX_CERT_FILE_BYTES)  # missing: exit 1
    found = []
    for block in certs._PEM_RE.finditer(data):
        try:
            found.append(certs.load_certificate(block.group(0)))
        except certs.CertificateError as exc:
            report.add("saml.certificate.invalid", f"A certificate in '{path}' cannot be read",
                       detail=f"{exc}.", evidence={"file": path})
            anchors.usable = False
            return
    if not found:
        try:  # one certificate as DER, or base64 DER as copied from metadata
            found.append(_der(data) if data[:1] == b"\x30" else certs.load_certificate(data))
        except (certs.CertificateError, ValueError):
            report.add("saml.certificate.invalid", f"'{path}' holds no readable X.509 certificate",
                       detail="Expected PEM (-----BEGIN CERTIFICATE-----), DER, or the base64 of an "
                              "X509Certificate element.", evidence={"file": path})
            anchors.usable = False
            return
    anchors.items.extend(_anchor(c, f"--idp-cert {path}") for c in found)


def _der(data: bytes) -> x509.Certificate:
    from cryptography import x509

    return x509.load_der_x509_certificate(data)


def _from_metadata(ctx: Context, report: Report, anchors: Anchors, source: str) -> None:
    from diagkit.collectors.saml import metadata as saml_metadata
    from diagkit.errors import InputFormatError, read_input_bytes
    from diagkit.formats import certs
    from diagkit.formats.saml_xml import parse_xml
    from diagkit.probe import Report as _Report
    from diagkit.scrub import scrub_url

    shown = scrub_url(source)
    if saml_metadata.is_url(source):
        fetched = _Report()
        data = saml_metadata.fetch(ctx, fetched, source)
        report.extend(fetched.findings)
        report.facts["idp_metadata"] = {"source": shown, **fetched.facts}
        if data is None:
            anchors.usable = False
            return
    else:
        data = read_input_bytes(source, "IdP metadata file", limit=saml_metadata.MAX_METADATA_BYTES)
        report.facts["idp_metadata"] = {"source": shown}
    try:
        root = parse_xml(data, f"IdP metadata {shown}")
    except InputFormatError as exc:
        report.add("saml.metadata.invalid", "The IdP metadata could not be parsed", detail=exc.message,
                   evidence={"source": shown})
        anchors.usable = False
        return
    if root.tag not in (qn(NS_MD, "EntityDescriptor"), qn(NS_MD, "EntitiesDescriptor")):
        report.add("saml.metadata.invalid", f"Not SAML 2.0 metadata: the root element is <{local_name(root)}>",
                   detail=f"Expected md:EntityDescriptor or md:EntitiesDescriptor; found <{local_name(root)}> "
                          f"in namespace {namespace_of(root)}.", evidence={"source": shown})
        anchors.usable = False
        return
    entities = [root] if root.tag == qn(NS_MD, "EntityDescriptor") else list(root.iter(qn(NS_MD, "EntityDescriptor")))
    idps = 0
    for entity in entities:
        entity_id = entity.get("entityID")
        for role in entity.findall(qn(NS_MD, "IDPSSODescriptor")):
            idps += 1
            if entity_id and entity_id not in anchors.entity_ids:
                anchors.entity_ids.append(entity_id)
            for kd in role.findall(qn(NS_MD, "KeyDescriptor")):
                if (kd.get("use") or "signing") != "signing":
                    continue  # use="encryption" keys never sign (SAML 2.0 Metadata §2.4.1.1)
                for el in kd.iter(qn(NS_DS, "X509Certificate")):
                    try:
                        cert = certs.load_certificate(el.text or "")
                    except certs.CertificateError as exc:
                        report.add("saml.metadata.invalid", f"{entity_id}: a signing certificate cannot be read",
                                   detail=f"X509Certificate in a KeyDescriptor is {exc}.",
                                   evidence={"source": shown, "entity_id": entity_id})
                        anchors.usable = False
                        continue
                    if all(a.fingerprint != certs.fingerprints(cert)["sha256"] for a in anchors.items):
                        anchors.items.append(_anchor(cert, f"metadata {shown}", entity_id))
    if not idps:
        report.add("saml.metadata.no_idp", "The IdP metadata has no IDPSSODescriptor",
                   detail="Without an IdP role there is no published signing certificate to check the response "
                          "against.", evidence={"source": shown})
        anchors.usable = False
    elif not any(a.source == f"metadata {shown}" for a in anchors.items) and anchors.usable:
        report.add("saml.certificate.missing", "The IdP metadata publishes no signing certificate",
                   detail="No KeyDescriptor (use=\"signing\" or without use) holds an X509Certificate, so the "
                          "response's signature could not be checked against the IdP.",
                   evidence={"source": shown}, severity="error")
        anchors.usable = False


# ---------------------------------------------------------------- judging one signature


def _same_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    from cryptography.hazmat.primitives import serialization

    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        return a.public_key().public_bytes(*fmt) == b.public_key().public_bytes(*fmt)
    except (ValueError, TypeError):
        return False


def _hex(fingerprint: str | None) -> str | None:
    return fingerprint.replace(":", "").lower() if fingerprint else None


def judge(report_add: Any, info: SignatureInfo, what: str, anchors: Anchors, issuer: str | None,
          reported: set[str] | None = None) -> None:
    """Set info.valid/info.trusted from the published certificates; add the finding when it does not hold.

    `report_add` is the analysis's add (it prefixes the place in a HAR). Integrity alone is never trust.
    `reported` holds the signers already named for this message: a Response and its Assertion signed by
    the same unpublished certificate are one finding.
    """
    from diagkit.formats.certs import fingerprints
    from diagkit.formats.saml_xml import verify_with

    candidates = anchors.for_issuer(issuer)
    published = [a.fingerprint for a in candidates]
    for anchor in candidates:
        ok, _reason = verify_with(info, anchor.cert)
        if ok:
            info.valid, info.trusted, info.reason = True, anchor.fingerprint, None
            return
    info.trusted = None
    embedded = info.certificate
    signer = fingerprints(embedded)["sha256"] if embedded is not None else None
    evidence: dict[str, Any] = {"on": what, "signer_sha256": signer, "published_sha256": published,
                                "algorithm": (info.algorithm or "").rsplit("#", 1)[-1] or None,
                                # Also as plain hex, as `cryptography` and most scripts print a fingerprint.
                                "signer_sha256_hex": _hex(signer), "published_sha256_hex": [_hex(p) for p in published]}
    known_key = embedded is not None and any(_same_key(embedded, a.cert) for a in candidates)
    if embedded is not None and not known_key:
        ok, reason = verify_with(info, embedded)
        info.valid = ok
        if ok:
            if reported is not None:
                if signer in reported:
                    return
                reported.add(str(signer))
            evidence["signer_subject"] = embedded.subject.rfc4514_string()
            evidence["signer_not_before"] = embedded.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            report_add("saml.signature.untrusted_cert",
                       f"The {what} is signed by a certificate the IdP does not publish (SHA-256 {signer})",
                       detail=f"The signature verifies with the certificate in the response (SHA-256 {signer}, "
                              f"{evidence['signer_subject']}), which is not among the {len(published)} signing "
                              f"certificate(s) given for the IdP (SHA-256 {', '.join(published)}). The IdP has "
                              "rotated its signing certificate and the SP still trusts the old one (or the "
                              "response comes from another IdP).", evidence=evidence)
            return
        info.reason = reason
        report_add("saml.signature.invalid", f"The {what} signature does not verify",
                   detail=f"{reason}. It does not verify with its embedded certificate (SHA-256 {signer}) either, "
                          f"which the IdP does not publish (published: {', '.join(published)}): the content was "
                          "changed after signing.", evidence=evidence)
        return
    info.valid = False
    info.reason = "does not verify with any certificate the IdP publishes"
    if embedded is not None:
        detail = (f"The embedded certificate (SHA-256 {signer}) is the IdP's, but the signature does not verify "
                  "with its key: the content was changed after signing.")
    else:
        detail = (f"The signature carries no certificate and verifies with none of the {len(published)} the IdP "
                  f"publishes (SHA-256 {', '.join(published)}): the content was changed after signing, or the IdP "
                  "signs with a key it has not published yet (rotation).")
    report_add("saml.signature.invalid", f"The {what} signature does not verify with the IdP's certificate",
               detail=detail, evidence=evidence)
