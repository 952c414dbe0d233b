"""SAML XML helpers shared by the SAML probes, the HAR probe and the redactor.

Decoding of SAML messages as they travel (raw XML, base64 form fields, URL-encoded, HTTP-Redirect
DEFLATE), hardened XML parsing (no DTDs, no entities, no network), SAML time parsing, and XML
signature inspection/verification with signxml.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from diagkit.errors import InputFormatError
from diagkit.formats.inflate import RAW_DEFLATE, ZLIB, inflate

if TYPE_CHECKING:
    from cryptography import x509
    from lxml import etree

NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
NS_SAML1P = "urn:oasis:names:tc:SAML:1.0:protocol"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
SAML2_PROTOCOL = NS_SAMLP
NS = {"md": NS_MD, "saml": NS_SAML, "samlp": NS_SAMLP, "ds": NS_DS, "xenc": NS_XENC}

MAX_XML_BYTES = 20 * 1024 * 1024
_MAX_INFLATE = 10 * 1024 * 1024  # a DEFLATE bomb stops here
_PARAM_RE = re.compile(r"(?:^|[?&\s])(SAMLResponse|SAMLRequest)=([^&\s]+)")


def qn(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _looks_like_xml(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def decode_saml_message(value: str | bytes, source: str = "SAML message") -> bytes:
    """XML bytes from raw XML, base64 (whitespace, URL-encoding tolerated) or DEFLATE+base64 (HTTP-Redirect).

    A pasted query string or form body (`SAMLResponse=...&RelayState=...`) is accepted too.
    """
    if isinstance(value, bytes):
        if _looks_like_xml(value):
            return value.lstrip(b" \t\r\n")
        try:
            text = value.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputFormatError(f"{source}: not XML and not base64 text (binary data)") from None
    else:
        text = value
    text = text.strip().lstrip("\ufeff")
    if text.startswith("<"):
        return text.encode("utf-8")
    param = _PARAM_RE.search(text)
    if param:
        text = param.group(2)
    if re.search(r"%[0-9A-Fa-f]{2}", text):
        text = unquote(text)  # '+' stays '+': it is a base64 character here
    compact = re.sub(r"\s+", "", text)
    if not compact or not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", compact):
        raise InputFormatError(f"{source}: neither XML nor base64 (expected a SAML message: XML, base64 "
                               "as in a SAMLResponse form field, or DEFLATE+base64 as in HTTP-Redirect)")
    compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InputFormatError(f"{source}: looks like base64 but does not decode") from None
    if _looks_like_xml(raw):
        return raw
    for wbits in (RAW_DEFLATE, ZLIB):  # raw DEFLATE (SAML Bindings §3.4.4.1), and zlib-wrapped as some SPs send
        try:
            inflated = inflate(raw, wbits, _MAX_INFLATE)
        except zlib.error:
            continue
        if inflated.over_limit:
            raise InputFormatError(f"{source}: DEFLATE data inflates beyond {_MAX_INFLATE} bytes; refused")
        if _looks_like_xml(inflated.data):
            return inflated.data
    raise InputFormatError(f"{source}: base64 decodes to neither XML nor DEFLATE-compressed XML")


def parse_xml(data: bytes, source: str) -> etree._Element:
    """Parse untrusted XML: DTDs (hence XXE and entity expansion) refused, no network, no huge trees."""
    from lxml import etree

    if len(data) > MAX_XML_BYTES:
        raise InputFormatError(f"{source}: XML larger than {MAX_XML_BYTES} bytes; refused")
    # defusedxml (expat) is the guard: any DTD, entity declaration or external reference is refused
    # before lxml builds the tree that the probes use.
    import defusedxml
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise InputFormatError(f"{source}: contains a DTD or entity declaration ({type(exc).__name__}); refused "
                               "to protect against XXE and entity-expansion attacks (SAML never needs one)") from None
    except ParseError as exc:
        raise InputFormatError(f"{source}: not well-formed XML ({exc})") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_pis=True, collect_ids=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise InputFormatError(f"{source}: not well-formed XML ({reason})") from None
    except ValueError as exc:
        raise InputFormatError(f"{source}: cannot be parsed as XML ({exc})") from None
    if root is None:
        raise InputFormatError(f"{source}: empty XML document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InputFormatError(f"{source}: contains a DTD; refused (XXE / entity expansion protection)")
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise InputFormatError(f"{source}: contains entity references; refused")
    return root


def parse_saml_time(text: str | None) -> _dt.datetime | None:
    """xs:dateTime as SAML uses it (UTC, Z, optional fractional seconds of any length); None if absent/bad."""
    if not text:
        return None
    value = text.strip()
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", value)
    if not match:
        return None
    base, frac, zone = match.groups()
    iso = base + ((frac[:7]) if frac else "") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        moment = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment.astimezone(_dt.UTC)


def text_of(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return " ".join(element.text.split())


# ---------------------------------------------------------------- XML signatures


@dataclass
class SignatureInfo:
    """One ds:Signature: where it sits, what it references, and (after verify) whether it holds."""

    element: Any
    parent: Any
    references: list[str] = field(default_factory=list)
    algorithm: str | None = None
    digest: str | None = None
    certificate: x509.Certificate | None = None
    certificate_error: str | None = None
    valid: bool | None = None
    reason: str | None = None
    trusted: str | None = None  # SHA-256 of the published certificate it verified with (collectors/saml/trust.py)

    @property
    def parent_id(self) -> str | None:
        return self.parent.get("ID") if self.parent is not None else None

    @property
    def covers_parent(self) -> bool:
        """True when the only reference is the enveloping element by its ID (or "" on the document root)."""
        if len(self.references) != 1:
            return False
        ref = self.references[0]
        if ref == "":
            return self.parent is not None and self.parent.getparent() is None
        return ref.startswith("#") and self.parent_id is not None and ref[1:] == self.parent_id

    def summary(self) -> dict[str, Any]:
        from diagkit.formats.certs import fingerprints

        data: dict[str, Any] = {
            "on": _local(self.parent.tag) if self.parent is not None else None,
            "reference": self.references[0] if len(self.references) == 1 else self.references,
            "algorithm": (self.algorithm or "").rsplit("#", 1)[-1] or None,
            "digest": (self.digest or "").rsplit("#", 1)[-1] or None,
            "valid": self.valid,
        }
        if self.certificate is not None:
            data["certificate_subject"] = self.certificate.subject.rfc4514_string()
            data["certificate_sha256"] = fingerprints(self.certificate)["sha256"]
        if self.trusted:
            data["verified_with_published_sha256"] = self.trusted
        if self.reason:
            data["reason"] = self.reason
        return data


def local_name(element: Any) -> str:
    """The element's name without its namespace; "?" for no element, a comment or a processing instruction."""
    return element.tag.split("}", 1)[-1] if element is not None and isinstance(element.tag, str) else "?"


def namespace_of(element: Any) -> str:
    """The element's namespace URI, or "none"."""
    tag = element.tag
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else "none"


def _local(tag: Any) -> str:
    return tag.split("}", 1)[-1] if isinstance(tag, str) else str(tag)


def signature_info(sig: etree._Element) -> SignatureInfo:
    from diagkit.formats.certs import CertificateError, load_certificate

    info = SignatureInfo(element=sig, parent=sig.getparent())
    signed_info = sig.find(qn(NS_DS, "SignedInfo"))
    if signed_info is not None:
        method = signed_info.find(qn(NS_DS, "SignatureMethod"))
        info.algorithm = method.get("Algorithm") if method is not None else None
        for ref in signed_info.findall(qn(NS_DS, "Reference")):
            info.references.append(ref.get("URI", ""))
            digest = ref.find(qn(NS_DS, "DigestMethod"))
            if digest is not None:
                info.digest = digest.get("Algorithm")
    cert_el = sig.find(f"{qn(NS_DS, 'KeyInfo')}/{qn(NS_DS, 'X509Data')}/{qn(NS_DS, 'X509Certificate')}")
    if cert_el is not None and cert_el.text:
        try:
            info.certificate = load_certificate(cert_el.text)
        except CertificateError as exc:
            info.certificate_error = f"embedded certificate unreadable: {exc}"
    return info


def verify_signature(info: SignatureInfo) -> SignatureInfo:
    """Verify an enveloped signature over its parent with the certificate embedded in it.

    This proves integrity (nothing changed since signing, by the holder of that key); whether the
    certificate is the one the relying party trusts is a separate question (collectors/saml/trust.py answers it).
    """
    if info.certificate is None:
        info.valid = None
        info.reason = info.certificate_error or "no X509Certificate in the signature's KeyInfo: cannot verify " \
                                               "without the signer's certificate"
        return info
    info.valid, info.reason = verify_with(info, info.certificate)
    return info


def verify_with(info: SignatureInfo, cert: x509.Certificate) -> tuple[bool, str | None]:
    """(verifies, why not) for the signature over its parent, checked with `cert` whatever KeyInfo says.

    signxml's `x509_cert` overrides the certificate in the signature, so a certificate from the IdP's
    metadata is what decides, never the one the message brings along.
    """
    import copy
    import warnings

    from signxml import SignatureConfiguration, XMLVerifier
    from signxml.algorithms import DigestAlgorithm, SignatureMethod
    from signxml.exceptions import SignXMLException

    # Verify the enveloping element on its own, so the expected location is unambiguous.
    target = copy.deepcopy(info.parent)
    config = SignatureConfiguration(
        location="./",
        expect_references=1,
        # Old IdPs still sign with SHA-1: verify it (integrity) and let the caller flag the algorithm.
        signature_methods=frozenset(SignatureMethod),
        digest_algorithms=frozenset(DigestAlgorithm),
        # Certificate dates are judged separately; verify at a moment the certificate was valid.
        verification_time=cert.not_valid_before_utc + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # negative serials of old IdP certificates
            XMLVerifier().verify(target, x509_cert=cert, expect_config=config, validate_schema=False,
                                 id_attribute="ID")
    except SignXMLException as exc:  # InvalidInput, InvalidSignature, InvalidDigest...
        return False, _short(exc)
    except (ValueError, TypeError, KeyError) as exc:
        return False, f"cannot verify: {type(exc).__name__}"
    return True, None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()).rstrip(":") or type(exc).__name__
    if text == "Signature verification failed":
        text += " (the SignatureValue does not match SignedInfo: changed after signing, or another key)"
    return text[:200]
