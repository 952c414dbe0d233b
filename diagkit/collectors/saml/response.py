"""SAML response probe, and `analyse_response`, the checks the HAR probe also runs on a captured SAMLResponse.

Status, issuer, destination/recipient, audience, time window (300 s allowance), signature placement
(wrapping), encrypted and multiple assertions. Personal values (NameID, attribute values) never leave
this module: only attribute names and the NameID format are reported.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from typing import Any

from diagkit.context import Context
from diagkit.findings import Severity, format_time, human_duration
from diagkit.formats.saml_xml import (
    NS_DS,
    NS_SAML,
    NS_SAML1,
    NS_SAML1P,
    NS_SAMLP,
    NS_XENC,
    local_name,
    namespace_of,
    qn,
    text_of,
)
from diagkit.probe import Option, Probe, Report

CLOCK_SKEW = _dt.timedelta(seconds=300)
_STATUS_PREFIX = "urn:oasis:names:tc:SAML:2.0:status:"
# Bounded as RFC 5321 bounds them (local part 64, domain 253): unbounded runs made every start
# position rescan a long dotted word to its end (quadratic, ReDoS).
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


def _short_status(value: str | None) -> str | None:
    return value[len(_STATUS_PREFIX):] if value and value.startswith(_STATUS_PREFIX) else value


def _url_note(expected: str, found: str) -> str:
    if expected.rstrip("/") == found.rstrip("/"):
        return " They differ only by a trailing slash, which still counts: the comparison is exact."
    if expected.lower() == found.lower():
        return " They differ only in letter case, which still counts."
    return ""



class _Analysis:
    def __init__(self, report: Report, now: _dt.datetime, where: str) -> None:
        self.report = report
        self.now = now
        self.where = where
        self.facts: dict[str, Any] = {}
        self.start = len(report.findings)

    def add(self, finding_id: str, title: str, detail: str = "", evidence: dict[str, Any] | None = None,
            **kwargs: Any) -> None:
        prefix = "" if self.where == "SAMLResponse" else f"{self.where}: "
        self.report.add(finding_id, prefix + title, detail, {**(evidence or {}), "where": self.where}, **kwargs)

    def problems(self) -> bool:
        return bool(self.report.problems(self.start))

    # ---------------------------------------------------------------- parts

    def status(self, response: Any) -> bool:
        """True when the status is Success."""
        status = response.find(qn(NS_SAMLP, "Status"))
        if status is None:
            self.add("saml.response.invalid", "The response has no Status element",
                     detail="samlp:Status is required in every response (SAML 2.0 Core §3.2.2).")
            return False
        top = status.find(qn(NS_SAMLP, "StatusCode"))
        top_value = top.get("Value") if top is not None else None
        second = top.find(qn(NS_SAMLP, "StatusCode")) if top is not None else None
        second_value = second.get("Value") if second is not None else None
        message = text_of(status.find(qn(NS_SAMLP, "StatusMessage")))
        if message:
            # Error messages sometimes name the user; keep the gist, not the address.
            message = _EMAIL_RE.sub("<EMAIL>", message)[:300]
        self.facts["status"] = {"code": _short_status(top_value), "second_level": _short_status(second_value),
                                "message": message}
        if top_value == _STATUS_PREFIX + "Success":
            return True
        codes = " / ".join(c for c in (_short_status(top_value), _short_status(second_value)) if c)
        self.add("saml.response.status_error", f"The IdP returned status {codes or '(empty)'}",
                 detail=(f"StatusMessage: {message}. " if message else "")
                 + _STATUS_HINTS.get(_short_status(second_value) or "", _STATUS_HINTS.get(_short_status(top_value) or "", "")),
                 evidence={"status_code": top_value, "second_level": second_value, "status_message": message})
        return False

    def destination(self, response: Any, recipients: list[str], expect: str | None) -> None:
        destination = response.get("Destination")
        self.facts["destination"] = destination
        if expect is not None:
            wrong = []
            if destination is not None and destination != expect:
                wrong.append(("Destination", destination))
            wrong.extend(("Recipient", r) for r in recipients if r != expect)
            if wrong:
                name, value = wrong[0]
                self.add("saml.destination.mismatch", f"{name} is not the expected ACS URL",
                         detail=f"Expected '{expect}', the response says {name}='{value}'." + _url_note(expect, value),
                         evidence={"expected": expect, **{n.lower(): v for n, v in wrong}})
        elif destination and any(r != destination for r in recipients):
            self.add("saml.destination.mismatch", "Destination and Recipient differ",
                     detail=f"Response Destination '{destination}' vs SubjectConfirmationData Recipient "
                            f"'{recipients[0]}'; the SP compares both with its ACS URL.",
                     evidence={"destination": destination, "recipient": recipients[0]}, severity=Severity.WARN)

    def assertion(self, assertion: Any, expect_audience: str | None) -> list[str]:
        """Facts and time/audience checks of one plain assertion; returns its Recipients."""
        facts: dict[str, Any] = {"id": assertion.get("ID"), "issuer": text_of(assertion.find(qn(NS_SAML, "Issuer"))),
                                 "issue_instant": assertion.get("IssueInstant")}
        subject = assertion.find(qn(NS_SAML, "Subject"))
        recipients: list[str] = []
        windows: list[tuple[str, str | None, str | None]] = []
        if subject is not None:
            name_id = subject.find(qn(NS_SAML, "NameID"))
            if name_id is not None:
                facts["name_id"] = {"format": name_id.get("Format"), "value": "<redacted>"}
            elif subject.find(qn(NS_SAML, "EncryptedID")) is not None:
                facts["name_id"] = {"encrypted": True}
            for sc in subject.findall(qn(NS_SAML, "SubjectConfirmation")):
                data = sc.find(qn(NS_SAML, "SubjectConfirmationData"))
                row = {"method": (sc.get("Method") or "").rsplit(":", 1)[-1]}
                if data is not None:
                    row.update({k: data.get(a) for k, a in (("recipient", "Recipient"), ("not_before", "NotBefore"),
                                                             ("not_on_or_after", "NotOnOrAfter"),
                                                             ("in_response_to", "InResponseTo")) if data.get(a)})
                    if data.get("Recipient") is not None:
                        recipients.append(data.get("Recipient"))
                    windows.append(("SubjectConfirmationData", data.get("NotBefore"), data.get("NotOnOrAfter")))
                facts.setdefault("subject_confirmations", []).append(row)
        conditions = assertion.find(qn(NS_SAML, "Conditions"))
        audiences: list[str] = []
        if conditions is not None:
            windows.insert(0, ("Conditions", conditions.get("NotBefore"), conditions.get("NotOnOrAfter")))
            facts["conditions"] = {"not_before": conditions.get("NotBefore"),
                                   "not_on_or_after": conditions.get("NotOnOrAfter")}
            for restriction in conditions.findall(qn(NS_SAML, "AudienceRestriction")):
                audiences.extend(text_of(a) or "" for a in restriction.findall(qn(NS_SAML, "Audience")))
        facts["audiences"] = audiences
        authn = assertion.find(qn(NS_SAML, "AuthnStatement"))
        if authn is not None:
            ref = authn.find(f"{qn(NS_SAML, 'AuthnContext')}/{qn(NS_SAML, 'AuthnContextClassRef')}")
            facts["authn"] = {"instant": authn.get("AuthnInstant"), "session_not_on_or_after":
                              authn.get("SessionNotOnOrAfter"), "context": text_of(ref)}
        facts["attribute_names"] = sorted({a.get("Name") or a.get("FriendlyName") or "?"
                                           for a in assertion.iter(qn(NS_SAML, "Attribute"))})
        self.facts.setdefault("assertions", []).append(facts)
        self._times(windows)
        if expect_audience is not None and audiences and expect_audience not in audiences:
            note = next((_url_note(expect_audience, a) for a in audiences if _url_note(expect_audience, a)), "")
            self.add("saml.audience.mismatch", "The assertion's Audience is not the expected SP",
                     detail=f"Expected '{expect_audience}'; the assertion is for {', '.join(repr(a) for a in audiences)}."
                            + note, evidence={"expected": expect_audience, "audiences": audiences})
        elif expect_audience is not None and not audiences:
            self.facts["audience_note"] = "no AudienceRestriction: any audience is accepted"
        return recipients

    def name_id_format(self, assertion: Any, expected: str | None) -> None:
        """saml.nameid.format_mismatch when the NameID's Format is not the one the SP expects (value never shown)."""
        subject = assertion.find(qn(NS_SAML, "Subject"))
        name_id = subject.find(qn(NS_SAML, "NameID")) if subject is not None else None
        if not expected or name_id is None:
            return  # no expectation, or an EncryptedID / no subject: nothing comparable
        found = name_id.get("Format") or _UNSPECIFIED  # Core §8.3.1: no Format means unspecified
        if _format_matches(expected.strip(), found):
            return
        note = ""
        if expected.rsplit(":", 1)[-1].lower() == found.rsplit(":", 1)[-1].lower():
            note = (" They differ only in the URN prefix: emailAddress and unspecified are SAML:1.1 formats, "
                    "persistent and transient SAML:2.0 (Core §8.3); SPs compare the whole URN.")
        self.add("saml.nameid.format_mismatch",
                 f"The NameID format is {found.rsplit(':', 1)[-1]}, not the expected {expected.rsplit(':', 1)[-1]}",
                 detail=f"Expected Format '{expected}'; the assertion's NameID has Format '{found}'." + note,
                 evidence={"expected": expected, "found": found})

    def issuers(self, expected: str | None, anchors: Any) -> str | None:
        """Compare the Response and Assertion Issuers with --expect-issuer (else the metadata's entityIDs).

        Returns the issuer that names the IdP, used to pick its certificates from an aggregate.
        """
        issuer = self.facts.get("issuer")
        found: list[tuple[str, str]] = [("Response", issuer)] if issuer else []
        found += [("Assertion", a["issuer"]) for a in self.facts.get("assertions", []) if a.get("issuer")]
        wanted = [expected] if expected else list(anchors.entity_ids) if anchors is not None else []
        if wanted:
            wrong = [(name, value) for name, value in found if value not in wanted]
            if wrong:
                name, value = wrong[0]
                whose = "expected IdP" if expected else "IdP entityID in the metadata"
                self.add("saml.issuer.mismatch", f"The {name} Issuer is not the {whose}",
                         detail=f"Expected '{wanted[0]}'" + (f" (or one of {len(wanted)} entities)" if len(wanted) > 1
                                                            else "") + f"; the {name} Issuer is '{value}'."
                                + _url_note(wanted[0], value) + " SPs match the Issuer exactly against the IdP "
                                "entityID they are configured with.",
                         evidence={"expected": wanted[0] if len(wanted) == 1 else wanted,
                                   **{n.lower(): v for n, v in found}},
                         # What the SP was told (--expect-issuer) decides; metadata given only for its
                         # certificates may carry another spelling of the entityID, so that is only noted.
                         severity=Severity.FAIL if expected else Severity.INFO)
        elif len({v for _, v in found}) > 1:
            self.add("saml.issuer.mismatch", "The response and assertion issuers differ",
                     evidence={"issuers": sorted({v for _, v in found})})
        return found[0][1] if found else None

    def _times(self, windows: list[tuple[str, str | None, str | None]]) -> None:
        from diagkit.formats.saml_xml import parse_saml_time

        expired_at: tuple[str, _dt.datetime] | None = None
        early_at: tuple[str, _dt.datetime] | None = None
        for where, before_raw, after_raw in windows:
            for label, raw in ((f"{where} NotBefore", before_raw), (f"{where} NotOnOrAfter", after_raw)):
                if raw and parse_saml_time(raw) is None:
                    self.add("saml.response.invalid", f"{label} is not a valid time", evidence={"value": raw})
            before, after = parse_saml_time(before_raw), parse_saml_time(after_raw)
            if after is not None and self.now >= after + CLOCK_SKEW and (expired_at is None or after < expired_at[1]):
                expired_at = (f"{where} NotOnOrAfter", after)
            if before is not None and self.now + CLOCK_SKEW < before and (early_at is None or before > early_at[1]):
                early_at = (f"{where} NotBefore", before)
        at = format_time(self.now)
        if expired_at:
            label, moment = expired_at
            self.add("saml.assertion.expired", f"The assertion expired {human_duration((self.now - moment).total_seconds())} ago",
                     detail=f"{label} is {format_time(moment)}; checked at {at} with a "
                            f"{int(CLOCK_SKEW.total_seconds())} s allowance.",
                     evidence={"not_on_or_after": format_time(moment), "checked_at": at, "field": label})
        if early_at:
            label, moment = early_at
            self.add("saml.assertion.not_yet_valid", f"The assertion is not valid for another {human_duration((moment - self.now).total_seconds())}",
                     detail=f"{label} is {format_time(moment)}; checked at {at} with a "
                            f"{int(CLOCK_SKEW.total_seconds())} s allowance. The IdP's clock is probably ahead.",
                     evidence={"not_before": format_time(moment), "checked_at": at, "field": label})


_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"


def _format_matches(expected: str, found: str) -> bool:
    """Exact URN match; a short name ("emailAddress", "email", "persistent") matches the URN's last part."""
    if ":" in expected:
        return expected == found
    short, last = expected.lower(), found.rsplit(":", 1)[-1].lower()
    return short == last or (len(short) >= 5 and last.startswith(short))


_STATUS_HINTS = {
    "AuthnFailed": "The IdP could not authenticate the user (wrong credentials, MFA failure, or locked account).",
    "InvalidNameIDPolicy": "The NameID format the SP requested is not supported or not configured for this SP at "
                           "the IdP; align NameIDPolicy Format with the IdP application.",
    "RequestDenied": "The IdP refused the request (user not assigned to the application, or policy).",
    "NoPassive": "IsPassive was requested but the user has no session at the IdP.",
    "NoAuthnContext": "The IdP cannot satisfy the RequestedAuthnContext (e.g. MFA class) the SP asked for.",
    "Requester": "The IdP blames the request (the SP side): see the second-level code.",
    "Responder": "The IdP failed on its side: check the IdP's logs for this request.",
    "VersionMismatch": "The IdP does not accept the SAML version of the request.",
    "UnknownPrincipal": "The IdP does not know this user.",
    "RequestUnsupported": "The IdP does not support this kind of request.",
}


def _signatures(an: _Analysis, response: Any, root: Any, assertions: list[Any], anchors: Any = None,
                issuer: str | None = None) -> tuple[bool, bool]:
    """(response signed, assertion signed) counting only signatures enveloping exactly what they reference.

    With usable trust anchors (saml_trust) a signature holds only when it verifies with a published IdP
    certificate; without them, only integrity with the embedded certificate is checked and said so.
    """
    from diagkit.collectors.saml import trust as saml_trust
    from diagkit.formats.saml_xml import signature_info, verify_signature

    untrusted_signers: set[str] = set()

    ids: dict[str, int] = {}
    for el in root.iter():
        if isinstance(el.tag, str) and el.get("ID"):
            ids[el.get("ID")] = ids.get(el.get("ID"), 0) + 1
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    response_signed = assertion_signed = False
    summaries = []
    top_assertions = {id(a) for a in assertions}
    for sig in root.iter(qn(NS_DS, "Signature")):
        info = signature_info(sig)
        parent = info.parent
        over_response = response is not None and parent is response
        over_assertion = parent is not None and parent.tag == qn(NS_SAML, "Assertion") and id(parent) in top_assertions
        if info.covers_parent and (over_response or over_assertion) and not duplicated:
            # A signature in the right place counts as "signed" even when it fails to verify: that is
            # reported as saml.signature.invalid, not as a missing signature.
            response_signed |= over_response
            assertion_signed |= over_assertion
            if anchors is not None and anchors.usable:
                saml_trust.judge(an.add, info, "response" if over_response else "assertion", anchors, issuer,
                                 untrusted_signers)
                summaries.append(info.summary())
                continue
            verify_signature(info)
            if info.valid is False:
                an.add("saml.signature.invalid", f"The {'response' if over_response else 'assertion'} signature "
                       "does not verify", detail=f"{info.reason}. Checked with the certificate embedded in the "
                       "signature; the content was changed after signing (or signed with another key).",
                       evidence={k: v for k, v in info.summary().items() if k != "valid"})
        else:
            why = ("IDs are duplicated: " + ", ".join(duplicated[:3]) if duplicated else
                   f"it references {info.references or 'nothing'} but sits in <{local_name(parent)}> "
                   f"ID={parent.get('ID') if parent is not None else None!r}" if not info.covers_parent else
                   f"it signs a <{local_name(parent)}> that is not the Response or one of its assertions")
            an.add("saml.signature.wrapping", "A signature does not cover the Response or the Assertion",
                   detail=f"Ignored as a signature because {why}. This is the shape of an XML signature wrapping "
                          "attack (or a broken IdP); the response is treated as unsigned there.",
                   evidence={"signature_on": local_name(parent), "references": info.references})
        summaries.append(info.summary())
    an.facts["signatures"] = summaries
    an.facts["signed"] = {"response": response_signed, "assertion": assertion_signed}
    return response_signed, assertion_signed


def analyse_response(report: Report, xml: bytes, now: _dt.datetime, *, expect_audience: str | None = None,
                     expect_destination: str | None = None, expect_issuer: str | None = None,
                     expect_nameid_format: str | None = None, anchors: Any = None,
                     where: str = "SAMLResponse") -> None:
    """Add saml.* findings for one SAML response (XML bytes) to `report`; facts go to report.facts[where].

    `anchors` (saml_trust.Anchors) are the IdP's published signing certificates; None when not given.
    """
    from diagkit.errors import InputFormatError
    from diagkit.formats.saml_xml import parse_xml

    an = _Analysis(report, now, where)
    report.facts[where] = an.facts
    try:
        root = parse_xml(xml, where)
    except InputFormatError as exc:
        an.add("saml.response.invalid", "The SAML response is not valid XML", detail=exc.message)
        return
    if root.tag in (qn(NS_SAML1P, "Response"), qn(NS_SAML1, "Assertion")) or (
            isinstance(root.tag, str) and root.tag.startswith(("{urn:oasis:names:tc:SAML:1.", "{urn:oasis:names:tc:SAML:1.1"))):
        an.add("saml.response.unsupported", "SAML 1.1 responses are not supported",
               detail="This is a SAML 1.x message (namespace urn:oasis:names:tc:SAML:1.0); only SAML 2.0 is checked.",
               evidence={"root": local_name(root)})
        return
    if root.tag == qn(NS_SAML, "Assertion"):
        response, assertions, encrypted = None, [root], []
    elif root.tag == qn(NS_SAMLP, "Response"):
        response = root
        assertions = root.findall(qn(NS_SAML, "Assertion"))
        encrypted = root.findall(qn(NS_SAML, "EncryptedAssertion"))
    else:
        ns = namespace_of(root)
        an.add("saml.response.invalid", f"Not a SAML 2.0 Response: the root element is <{local_name(root)}>",
               detail=f"Expected samlp:Response ({NS_SAMLP}); found <{local_name(root)}> in namespace {ns}.",
               evidence={"root": local_name(root), "namespace": ns})
        return

    ok_status = True
    if response is not None:
        an.facts.update({"id": response.get("ID"), "version": response.get("Version"),
                         "issue_instant": response.get("IssueInstant"),
                         "in_response_to": response.get("InResponseTo"),
                         "issuer": text_of(response.find(qn(NS_SAML, "Issuer")))})
        if response.get("Version") not in (None, "2.0"):
            an.add("saml.response.invalid", f"Unexpected SAML Version {response.get('Version')!r}",
                   evidence={"version": response.get("Version")})
        if not response.get("ID"):
            an.add("saml.response.invalid", "The response has no ID attribute",
                   detail="Without an ID a signature cannot reference the response (SAML 2.0 Core §3.2.2).")
        ok_status = an.status(response)
    nested = [a for a in root.iter(qn(NS_SAML, "Assertion")) if a is not root]
    total = len(assertions) + len(encrypted)
    an.facts["assertion_count"] = total
    if total > 1 or len(nested) > len(assertions if response is not None else []):
        an.add("saml.assertion.multiple", f"The response carries {max(total, len(nested))} assertions",
               detail="A response normally carries one assertion; several (or assertions hidden deeper in the "
                      "document) are typical of signature wrapping attacks, and SPs may pick a different one.",
               evidence={"top_level": total, "anywhere": len(nested) + (1 if response is None else 0)})
    if encrypted:
        an.facts["encrypted_assertions"] = len(encrypted)
        method = encrypted[0].find(f".//{qn(NS_XENC, 'EncryptionMethod')}")
        an.add("saml.assertion.encrypted", "The assertion is encrypted: its contents cannot be checked here",
               detail="Audience, time window, subject and the assertion's own signature are inside the "
                      "EncryptedAssertion and need the SP's private key. The SP must still require a signature.",
               evidence={"algorithm": method.get("Algorithm") if method is not None else None})
    if ok_status and not assertions and not encrypted:
        an.add("saml.response.invalid", "A Success response without any assertion",
               detail="A successful response must carry an Assertion or EncryptedAssertion.")
    recipients: list[str] = []
    for assertion in assertions:
        recipients.extend(an.assertion(assertion, expect_audience))
        an.name_id_format(assertion, expect_nameid_format)
    if response is not None:
        an.destination(response, recipients, expect_destination)
    elif expect_destination is not None:
        an.destination(root, recipients, expect_destination)
    issuer = an.issuers(expect_issuer, anchors)

    signed_response, signed_assertion = _signatures(an, response, root, assertions, anchors, issuer)
    if assertions and not (signed_response or signed_assertion):
        an.add("saml.assertion.unsigned", "Neither the response nor the assertion is signed",
               detail="No XML signature covers the Response or the Assertion by ID reference. A correct SP "
                      "rejects it; an SP that accepts it accepts forged logins.")
    elif assertions and signed_response and not signed_assertion:
        an.add("saml.assertion.not_signed", "Only the Response is signed, not the Assertion",
               detail="The signature covers the Response, which protects the assertion inside it in transit, but "
                      "SPs that require signed assertions (WantAssertionsSigned, Entra/ADFS 'sign assertion', "
                      "Spring/Shibboleth defaults) reject it. Enable assertion signing (or 'sign response and "
                      "assertion') at the IdP.", evidence={"signed": {"response": True, "assertion": False}})
    # Encrypted assertion in an unsigned response: the signature, if any, is inside the encryption, so we
    # cannot tell; reported as info above rather than claiming "unsigned".

    # IdP certificates asked for but unreadable: their finding says so, and no pass may suggest trust.
    if not an.problems() and (anchors is None or anchors.usable):
        checked = ["status Success" if response is not None else "bare assertion"]
        if assertions:
            checked.append(f"time window at {format_time(now)} (±{int(CLOCK_SKEW.total_seconds())} s)")
        if expect_audience:
            checked.append("audience")
        if expect_destination:
            checked.append("destination")
        if expect_issuer or (anchors is not None and anchors.entity_ids):
            checked.append("issuer")
        if expect_nameid_format:
            checked.append("NameID format")
        signed = [n for n, s in (("response", signed_response), ("assertion", signed_assertion)) if s]
        if signed:
            sigs = an.facts.get("signatures", [])
            trusted = sorted({str(sig.get("verified_with_published_sha256")) for sig in sigs
                              if sig.get("verified_with_published_sha256")})
            if anchors is not None and anchors.usable and trusted:
                how = "verified with the IdP's published certificate SHA-256 " + ", ".join(trusted)
            elif all(sig.get("valid") for sig in sigs):
                how = ("integrity verified with the embedded certificate only, NOT against the IdP's: give "
                       "--idp-metadata or --idp-cert to check it is the IdP's")
            else:
                how = "no embedded certificate: verify with the IdP's certificate (--idp-metadata/--idp-cert)"
            checked.append(f"signed ({' + '.join(signed)}; {how})")
        an.add("saml.response.ok", "The SAML response passed the checks made", detail="; ".join(checked) + ".")


def _load(target: str) -> tuple[bytes | str, str]:
    from diagkit.errors import InputNotFound, read_input_bytes

    if target == "-":
        return read_input_bytes("-", "SAML response", limit=20 * 1024 * 1024), "stdin"
    if os.path.exists(target):
        return read_input_bytes(target, "SAML response file", limit=20 * 1024 * 1024), target
    stripped = target.strip()
    looks_like_value = stripped.startswith("<") or len(stripped) > 200 or "=" in stripped[-3:]
    if not looks_like_value and re.fullmatch(r"[\w./\\~:-]+", stripped) and (
            "/" in stripped or "\\" in stripped or re.search(r"\.(xml|b64|base64|txt|saml)$", stripped, re.I)):
        raise InputNotFound(f"SAML response file '{target}' does not exist",
                            hint="pass a file, '-' for stdin, or the base64/XML value itself")
    return target, "the SAMLResponse value given"


def run(ctx: Context, report: Report, target: str, expect_audience: str | None = None,
        expect_destination: str | None = None, at: str | None = None, idp_metadata: str | None = None,
        idp_cert: str | None = None, expect_issuer: str | None = None, expect_nameid_format: str | None = None,
        ca_file: str | None = None) -> None:
    del ca_file  # already in ctx (the CLI passes --ca-file to the Context)
    from diagkit.collectors.saml import trust as saml_trust
    from diagkit.context import parse_time
    from diagkit.errors import InputError, InputFormatError
    from diagkit.formats.saml_xml import decode_saml_message

    if at:
        try:
            now = parse_time(at)
        except ValueError:
            raise InputError(f"--at '{at}' is not an ISO 8601 time (e.g. 2024-05-01T10:00:00Z)") from None
    else:
        now = ctx.now()
    raw, source = _load(target)
    # Missing files (response, certificate, metadata) exit 1 before anything is fetched or judged.
    anchors = saml_trust.load(ctx, report, idp_metadata, idp_cert)
    try:
        xml = decode_saml_message(raw, source)
    except InputFormatError as exc:
        report.add("saml.response.invalid", "Not a SAML message", detail=exc.message)
        return
    analyse_response(report, xml, now, expect_audience=expect_audience, expect_destination=expect_destination,
                     expect_issuer=expect_issuer, expect_nameid_format=expect_nameid_format, anchors=anchors)


probe = Probe(
    name="saml-response",
    summary="Check a SAML 2.0 response: status, audience, destination, time window and signatures.",
    target="SOURCE",
    run=run,
    options=(
        Option("expect_audience", "The SP entityID the assertion must be for.", metavar="A"),
        Option("expect_destination", "The SP's ACS URL (Destination/Recipient must equal it).", metavar="URL"),
        Option("at", "Check the time window at this ISO 8601 time instead of now.", metavar="TIME"),
        Option("idp_metadata", "The IdP's metadata (URL or file): the signature must verify with a signing "
               "certificate it publishes.", metavar="URL|FILE"),
        Option("idp_cert", "The IdP signing certificate(s) the SP trusts (PEM/DER file).", metavar="PEM"),
        Option("expect_issuer", "The IdP entityID the SP expects as Issuer (exact match).", metavar="I"),
        Option("expect_nameid_format", "The NameID Format the SP expects (URN, or e.g. emailAddress, persistent).",
               metavar="F"),
        Option("ca_file", "Extra trusted CA certificates (PEM) for an https metadata URL.", metavar="PEM"),
    ),
    network=False,
    default_timeout=10.0,
    max_calls=3,
    example="diagkit probe saml-response response.b64 --idp-metadata https://idp.example.com/metadata "
            "--expect-audience https://sp.example.com --expect-destination https://sp.example.com/acs",
    description="Check a SAML 2.0 response given as a file, '-' (stdin), or the value itself: base64 as in a "
                "SAMLResponse form field, raw XML, or DEFLATE+base64 (HTTP-Redirect). Reports status codes, "
                "issuer, destination, audience, time window (300 s allowance), signature placement and "
                "encrypted assertions. With --idp-metadata or --idp-cert the signature must verify with a "
                "certificate the IdP publishes (a rotated certificate names both fingerprints); without them only "
                "integrity is checked, with the certificate the response carries. NameID and attribute values are "
                "never shown.",
)
