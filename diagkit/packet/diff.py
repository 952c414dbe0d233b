"""Diff: what two packets (or saved results) saw differently, per probe and target, and what it usually means.

CONTRACT.md `packet diff`: findings only one side has, severities that differ, and facts that differ
(DNS answers, certificate issuer and fingerprints, HTTP status, clock offset). Packets are verified
before anything in them is read. A value one side's redaction replaced (`<IP:3f9a1c>`) cannot be
compared with a plain one: it is listed as not compared, never reported as a difference.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from diagkit.errors import InputError, InputFormatError
from diagkit.findings import ProbeResult, Severity
from diagkit.packet.format import REPLACED, UNREACHED
from diagkit.visible import visible

CLOCK_TOLERANCE_S = 60  # the skew env.clock.skewed tolerates: smaller offsets are the same verdict


@dataclass
class Difference:
    probe: str
    target: str
    kind: str  # "finding" | "severity" | "fact"
    name: str
    a: Any
    b: Any
    meaning: str


@dataclass
class NotCompared:
    probe: str
    target: str
    name: str | None
    a: Any
    b: Any
    reason: str


@dataclass
class Comparison:
    differences: list[Difference]
    not_compared: list[NotCompared]

    @property
    def same(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"same": self.same, "differences": [asdict(d) for d in self.differences],
                "not_compared": [asdict(n) for n in self.not_compared]}


# ---------------------------------------------------------------- reading either side


def load(path: str, *, trusted_keys: Sequence[str] = (), identity: str | None = None
         ) -> tuple[list[ProbeResult], str]:
    """The results of a packet (verified first, like `packet show`) or of a saved results file, and a
    line saying which it was (for a packet: who signed it and whether that key is pinned)."""
    from diagkit.errors import read_input_bytes
    from diagkit.findings import parse_results_document
    from diagkit.packet import crypto
    from diagkit.packet import format as fmt
    from diagkit.packet.verify import verify_packet

    data = read_input_bytes(path, "packet or results file", limit=fmt.MAX_PACKET_BYTES)
    if data.startswith(b"PK") or crypto.is_encrypted(data):
        packet = verify_packet(path, trusted_keys=trusted_keys, identity=identity)
        return packet.results(), (f"{visible(path)}: packet verified, signer {packet.signer.key_id} "
                                  f"({packet.signer_status()})")
    try:
        return parse_results_document(json.loads(data)), f"{visible(path)}: results file (unsigned)"
    except RecursionError:
        raise InputFormatError(f"'{path}' is not a packet or diagkit results (JSON nested too deeply)") from None
    except (ValueError, KeyError, TypeError) as exc:
        reason = "neither a ZIP nor JSON" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) \
            else str(exc).splitlines()[0]
        raise InputFormatError(f"'{path}' is not a packet or diagkit results ({reason})") from None


# ---------------------------------------------------------------- facts worth comparing


def _dns(facts: dict[str, Any]) -> dict[str, Any]:
    resolvers = [r for r in facts.get("resolvers") or [] if isinstance(r, dict)]
    out: dict[str, Any] = {}
    if resolvers:
        out["dns_status"] = sorted({str(r.get("status")) for r in resolvers})
        out["dns_answers"] = sorted({f"{a.get('type')} {a.get('value')}" for r in resolvers
                                     for a in r.get("answers") or [] if isinstance(a, dict)})
    lookup = facts.get("getaddrinfo")
    if isinstance(lookup, dict) and not lookup.get("timeout"):
        out["os_lookup"] = sorted(map(str, lookup.get("addresses") or []))
    return out


def _tls(facts: dict[str, Any]) -> dict[str, Any]:
    chain = [c for c in facts.get("chain") or [] if isinstance(c, dict)]
    out: dict[str, Any] = {}
    if chain:
        out["certificate_issuer"] = chain[0].get("issuer")
        out["certificate_fingerprints"] = [c.get("sha256") for c in chain]
    clock = facts.get("clock")
    if isinstance(clock, dict) and isinstance(clock.get("skew_seconds"), int):
        out["clock_skew_s"] = clock["skew_seconds"]
    return out


def _http(facts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    response = facts.get("response")
    if isinstance(response, dict) and "status" in response:
        out["http_status"] = response["status"]
    if isinstance(facts.get("server_clock_skew_s"), int):
        out["clock_skew_s"] = facts["server_clock_skew_s"]
    return out


def _saml_metadata(facts: dict[str, Any]) -> dict[str, Any]:
    return {"http_status": facts["http_status"]} if "http_status" in facts else {}


def _oidc(facts: dict[str, Any]) -> dict[str, Any]:
    attempts = [a for a in facts.get("discovery_attempts") or [] if isinstance(a, dict)]
    return {"http_status": [a.get("status") for a in attempts]} if attempts else {}


def _environment(facts: dict[str, Any]) -> dict[str, Any]:
    clock = facts.get("clock")
    if isinstance(clock, dict) and isinstance(clock.get("offset_s"), int):
        return {"clock_offset_s": clock["offset_s"]}
    return {}


_FACTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "dns": _dns, "tls": _tls, "http": _http, "saml-metadata": _saml_metadata, "oidc": _oidc,
    "environment": _environment,
}

_FACT_MEANING = {
    "dns_answers": "The resolvers answer differently: split-horizon DNS or a VPN on one side, a resolver "
                   "override, or a DNS change between the runs.",
    "dns_status": "The name resolves on one side only or differently: split-horizon DNS, a VPN or a "
                  "filtering resolver on one side.",
    "os_lookup": "The operating systems resolve the name differently: a hosts-file entry, VPN split DNS "
                       "or a local resolver on one side.",
    "certificate_issuer": "A different issuer for the same endpoint: TLS interception (a corporate proxy or "
                  "antivirus) on one side, or a different server behind the name.",
    "certificate_fingerprints": "A different certificate for the same endpoint: TLS interception on one side, another "
                        "server or load-balancer node, or a renewal between the runs.",
    "http_status": "A different answer to the same request: a proxy, WAF or firewall answering on one side, "
                   "different credentials, or a change on the server.",
    "clock_skew_s": "The clocks disagree with the server by different amounts: one machine's clock is skewed "
                    "(check NTP); tokens, SAML assertions and certificates are judged by it.",
    "clock_offset_s": "The clocks disagree with the server by different amounts: one machine's clock is skewed "
                      "(check NTP); tokens, SAML assertions and certificates are judged by it.",
}


def _finding_meaning(finding_id: str) -> str:
    if UNREACHED.search(finding_id) or finding_id.endswith(".timeout"):
        return "Reachable from one side only: a firewall, proxy, VPN or allow-list in the path."
    if finding_id.startswith(("tls.chain.", "tls.certificate.", "tls.hostname.")):
        return ("The certificate is judged differently: TLS interception on one side (its CA trusted there "
                "or not), or a different server behind the name.")
    if "clock" in finding_id:
        return "A skewed clock on one side (check NTP)."
    if finding_id.startswith("dns."):
        return "The two sides' resolvers disagree: split-horizon DNS or a VPN on one side."
    if finding_id.endswith(".ok"):
        return "The check passed on one side only; the other side's differences in this list say why."
    if finding_id == "probe.input.missing":
        return "The check could not run on one side: an input or secret it needs was missing there."
    if finding_id.startswith("probe.run."):
        return "The check did not complete on one side; nothing can be concluded from it."
    return ("Only one side sees this: the machines reach the service differently (network path, proxy, "
            "configuration), or it changed between the runs.")


# ---------------------------------------------------------------- comparing


def _severities(result: ProbeResult) -> dict[str, str]:
    """Worst severity per finding id; a replay's demotion of an unreachable target is undone (see replay)."""
    worst: dict[str, Severity] = {}
    for finding in result.findings:
        mark = finding.evidence.get("replay")
        was = mark.get("severity_was") if isinstance(mark, dict) else None
        undo = finding.severity is Severity.ERROR and UNREACHED.search(finding.id) and was in ("fail", "warn")
        severity = Severity(was) if undo else finding.severity
        if finding.id not in worst or severity.rank > worst[finding.id].rank:
            worst[finding.id] = severity
    return {k: v.value for k, v in worst.items()}


def _redacted(value: Any) -> bool:
    return bool(REPLACED.search(json.dumps(value, ensure_ascii=False)))


def _facts_differ(name: str, a: Any, b: Any) -> bool:
    if name.startswith("clock_") and isinstance(a, int) and isinstance(b, int):
        return abs(a - b) > CLOCK_TOLERANCE_S
    return a != b


def _keyed(results: Sequence[ProbeResult]) -> dict[tuple[str, str, int], ProbeResult]:
    """(probe, target, n): the n-th run of the same probe and target pairs with the other side's n-th."""
    out: dict[tuple[str, str, int], ProbeResult] = {}
    for result in results:
        n = sum(1 for key in out if key[:2] == (result.probe, result.target))
        out[(result.probe, result.target, n)] = result
    return out


def _compare_pair(a: ProbeResult, b: ProbeResult, diffs: list[Difference], skipped: list[NotCompared]) -> None:
    sev_a, sev_b = _severities(a), _severities(b)
    for finding_id in list(dict.fromkeys([*sev_a, *sev_b])):
        left, right = sev_a.get(finding_id), sev_b.get(finding_id)
        if left == right:
            continue
        kind = "severity" if left and right else "finding"
        diffs.append(Difference(a.probe, a.target, kind, finding_id, left, right, _finding_meaning(finding_id)))
    extract = _FACTS.get(a.probe)
    if extract is None:
        return
    facts_a, facts_b = extract(a.facts), extract(b.facts)
    for name in list(dict.fromkeys([*facts_a, *facts_b])):
        left, right = facts_a.get(name), facts_b.get(name)
        if name not in facts_a or name not in facts_b or not _facts_differ(name, left, right):
            continue  # a fact one side could not observe is covered by that side's findings
        if _redacted(left) or _redacted(right):
            skipped.append(NotCompared(a.probe, a.target, name, left, right,
                                       "one side's value was redacted in its packet; compare with the customer"))
            continue
        diffs.append(Difference(a.probe, a.target, "fact", name, left, right, _FACT_MEANING[name]))


def compare(a: Sequence[ProbeResult], b: Sequence[ProbeResult], where: tuple[str, str] = ("A", "B")) -> Comparison:
    """Compare two result lists. Raises InputError when no probe and target appears on both sides."""
    left, right = _keyed(a), _keyed(b)
    diffs: list[Difference] = []
    skipped: list[NotCompared] = []
    paired = 0
    for key, result in left.items():
        if key in right:
            paired += 1
            _compare_pair(result, right[key], diffs, skipped)
        else:
            skipped.append(NotCompared(result.probe, result.target, None, "present", None, f"only in {where[0]}"))
    skipped += [NotCompared(r.probe, r.target, None, None, "present", f"only in {where[1]}")
                for key, r in right.items() if key not in left]
    if not paired:
        raise InputError(f"'{where[0]}' and '{where[1]}' have no probe and target in common; nothing to compare")
    return Comparison(diffs, skipped)


# ---------------------------------------------------------------- showing


def _value(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return visible(text)


def render_terminal(comparison: Comparison, a_name: str, b_name: str) -> str:
    """Plain text grouped by probe and target; every value from a packet shown with invisibles escaped."""
    head = (f"A = {visible(a_name)}\nB = {visible(b_name)}\n"
            + ("no differences" if comparison.same else f"{len(comparison.differences)} difference(s)"))
    lines = [head]
    group = None
    for d in comparison.differences:
        if (d.probe, d.target) != group:
            group = (d.probe, d.target)
            lines += ["", f"{visible(d.probe)} {visible(d.target)}"]
        lines.append(f"  {d.kind:<8} {visible(d.name)}")
        lines.append(f"           A: {_value(d.a)}")
        lines.append(f"           B: {_value(d.b)}")
        lines.append(f"           usually means: {d.meaning}")
    if comparison.not_compared:
        lines += ["", "not compared"]
        lines += [f"  {visible(n.probe)} {visible(n.target)}" + (f" {visible(n.name)}" if n.name else "")
                  + f": {n.reason}" for n in comparison.not_compared]
    return "\n".join(lines)


def _md(value: Any) -> str:
    """One table cell, plain-text safe: no HTML entities; Markdown and table syntax backslash-escaped."""
    text = " ".join(_value(value).split())
    for ch in "\\`*_[]<>|":
        text = text.replace(ch, "\\" + ch)
    return text or " "


def render_markdown(comparison: Comparison, a_name: str, b_name: str) -> str:
    out = [f"## Packet diff: A = {_md(a_name)}, B = {_md(b_name)}", ""]
    if comparison.same:
        out.append("No differences.")
    else:
        out += ["| Probe | Target | Kind | What | A | B | Usually means |", "|---|---|---|---|---|---|---|"]
        out += [f"| {_md(d.probe)} | {_md(d.target)} | {d.kind} | {_md(d.name)} | {_md(d.a)} | {_md(d.b)} | "
                f"{_md(d.meaning)} |" for d in comparison.differences]
    if comparison.not_compared:
        out += ["", "Not compared:", ""]
        out += [f"- {_md(n.probe)} {_md(n.target)}" + (f" {_md(n.name)}" if n.name else "") + f": {_md(n.reason)}"
                for n in comparison.not_compared]
    return "\n".join(out) + "\n"
