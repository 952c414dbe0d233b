"""The rule table (diagkit/redact/rules.py): every rule's own samples, and the behaviours built on it,
through `diagkit redact` with exact outcomes."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from diagkit.redact import rules

NAME_SAMPLES = [(rule, name, True) for rule in rules.NAME_RULES for name in rule.yes] + \
               [(rule, name, False) for rule in rules.NAME_RULES for name in rule.no]
VALUE_SAMPLES = [(rule, text, True) for rule in rules.VALUE_RULES for text in rule.yes] + \
                [(rule, text, False) for rule in rules.VALUE_RULES for text in rule.no]


@pytest.mark.parametrize("rule,name,matches", NAME_SAMPLES, ids=[f"{r.id}:{n}" for r, n, _ in NAME_SAMPLES])
def test_name_rule_samples(rule: rules.NameRule, name: str, matches: bool) -> None:
    assert (rules.name_rule(name) is rule) is matches


@pytest.mark.parametrize("rule,text,matches", VALUE_SAMPLES, ids=[f"{r.id}:{t[:30]}" for r, t, _ in VALUE_SAMPLES])
def test_value_rule_samples(rule: rules.ValueRule, text: str, matches: bool) -> None:
    found = [m for m in rule.regex.finditer(text) if rule.check is None or rule.check(m.group(rule.group))]
    assert bool(found) is matches


YES_SAMPLES = [(rule, text) for rule, text, matches in VALUE_SAMPLES if matches]


@pytest.mark.parametrize("rule,text", YES_SAMPLES, ids=[f"{r.id}:{t[:30]}" for r, t in YES_SAMPLES])
def test_value_rule_samples_get_past_the_tables_prefilters(rule: rules.ValueRule, text: str) -> None:
    """A rule runs only where one of its `needs` (or a digit candidate) is: each sample must hold one."""
    assert [hit for hit, _, _ in rules.Table((rule,)).hits(text)] != []


def test_iban_check_agrees_with_presidios() -> None:
    """rules.iban_ok tests the check digits with python-stdnum before asking presidio (whose import costs
    seconds): it must answer as presidio's IbanRecognizer.validate_result does, valid check digits or not."""
    import random
    import string

    from presidio_analyzer.predefined_recognizers import IbanRecognizer

    presidio = IbanRecognizer()
    rng = random.Random(14)
    valid = 0
    for i in range(20000):
        country = rng.choice(["GB", "DE", "FR", "NL", "SA", "BB", "XK"]) if i % 2 else rng.choice(string.ascii_uppercase) * 2
        body = "".join(rng.choice(string.digits + string.ascii_uppercase[:rng.randrange(27)]) for _ in range(rng.randrange(8, 30)))
        if i % 4 == 1:  # a British one's shape: a bank code and 14 digits
            country, body = "GB", "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + f"{rng.randrange(10**14):014d}"
        if i % 3:  # right check digits (98 - the mod 97 of the rearranged number with "00"), as a real IBAN has
            number = int("".join(str(int(ch, 36)) for ch in body + country + "00"))
            text = f"{country}{98 - number % 97:02d}{body}"
        else:
            text = f"{country}{rng.randrange(100):02d}{body}"
        if i % 5 == 0:
            text = " ".join(text[k:k + 4] for k in range(0, len(text), 4))
        expected = bool(presidio.validate_result(text))
        valid += expected
        assert rules.iban_ok.__wrapped__(text) is expected, text
    assert valid > 2000  # the sample holds many IBANs presidio accepts, not only refusals


def test_card_check_agrees_with_presidios_luhn() -> None:
    """rules.luhn uses python-stdnum (presidio is not imported for every card-shaped id); it must answer
    as presidio's CreditCardRecognizer.validate_result does, on every issuer and length."""
    import random

    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    presidio = CreditCardRecognizer()
    rng = random.Random(14)
    for _ in range(20000):
        prefix = rng.choice(["4", "51", "55", "22", "27", "34", "37", "6011", "65", "35", "1", "9"])
        digits = prefix + "".join(rng.choice("0123456789") for _ in range(rng.randrange(11, 19)))
        spaced = " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))
        expected = (13 <= len(digits) <= 19 and rules._CARD_ISSUER.match(digits) is not None
                    and bool(presidio.validate_result(digits)))
        assert rules.luhn.__wrapped__(digits) is expected, digits
        assert rules.luhn.__wrapped__(spaced) is expected, spaced


def test_every_rule_has_samples_both_ways_or_a_reason() -> None:
    assert all(rule.yes for rule in (*rules.NAME_RULES, *rules.VALUE_RULES))
    assert all(rule.no for rule in rules.NAME_RULES)


def _run(invoke: Any, tmp_path: Path, name: str, content: str | bytes, *args: str) -> tuple[Any, str]:
    src = tmp_path / name
    src.write_bytes(content.encode() if isinstance(content, str) else content)
    out = tmp_path / ("out-" + name)
    result = invoke("redact", str(src), "-o", str(out), *args)
    return result, out.read_text("utf-8") if out.exists() else ""


@pytest.mark.parametrize("text,matches", [
    ("2023-11-14T22:09:25Z", True), ("2023-11-14T22:09:25.123456+01:00", True), ("2023-11-14 22:09", True),
    ("2023-11-14T22:09:25,5-0500", True), ("123456", True), ("415555017", True), ("1984-03-17", False),
    ("2023-11-14T22:09:25Z bob@example.com", False), ("2023-11-14T22:09:25Z/token/abc", False),
    ("4111111111111", False), ("+14155550173", False), ("415-555-0173", False),
    ("4247247926275c08", True), ("4bf92f3577b34da6a3ce929d0e0e4736", True), ("550E8400-e29b-41d4-A716-446655440000", True),
    ("4111111111111111", False), ("4111111111111111aB", False), ("DE89370400440532013000", False),
    ("4bf92f3577b34da", False), ("4bf92f3577b34da6 ", False),
])
def test_kept_shape_samples(text: str, matches: bool) -> None:
    assert bool(rules.KEPT_SHAPE.fullmatch(text)) is matches


def test_no_rule_finds_anything_in_a_number_of_up_to_12_digits() -> None:
    """What makes KEPT_SHAPE's numbers safe to keep unscanned: the free-text scanner finds nothing in any
    of them, and a card number needs 13 digits."""
    import random

    from diagkit.redact import scan

    rng = random.Random(12)
    for length in range(1, 13):
        samples = {"9" * length, "0" * length, "4111111111111111"[:length]} | {
            "".join(rng.choice("0123456789") for _ in range(length)) for _ in range(300)}
        for digits in samples:
            assert scan.find(digits) == [], digits
    assert [h.rule for h in scan.find("4111111111111111")] == ["credit_card"]


def test_hex_ids_stay_whatever_their_digits_and_a_card_or_an_iban_still_goes(invoke: Any, tmp_path: Path) -> None:
    """A trace id whose 13 digits pass a card's checks stays (it was taken for a card, and would make the gate
    refuse the file if the redactor kept it and the gate did not); a card, an IBAN in uppercase, and a hex secret
    under its name still go."""
    doc = {"trace": "4247247926275c08", "span": "550e8400-e29b-41d4-a716-446655440000", "card": "4111111111111111",
           "iban": "DE89370400440532013000", "api_key": "3f9a1c0e8b7d6a5f4e3d2c1b0a9f8e7d"}
    result, out = _run(invoke, tmp_path, "a.json", json.dumps(doc), "--no-ner")
    assert result.exit_code == 0, result.stderr
    got = json.loads(out)
    assert {k: got[k] for k in ("trace", "span")} == {k: doc[k] for k in ("trace", "span")}
    assert [got[k][:got[k].index(":")] for k in ("card", "iban", "api_key")] == ["<CARD", "<IBAN", "<KEY"]


def test_no_rule_finds_anything_in_a_hex_id_or_a_uuid_alone_or_in_context() -> None:
    """What makes KEPT_SHAPE's hex ids safe to keep unscanned: neither the scanner nor the gate finds anything in
    random ones, alone or inside the text around them (the gate reads a body whole, ids and all)."""
    import random
    import uuid

    from diagkit.redact import gate, scan

    rng = random.Random(14)
    for _ in range(1500):
        ids = [f"{rng.getrandbits(64):016x}", f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(160):040x}",
               str(uuid.UUID(int=rng.getrandbits(128))), str(uuid.UUID(int=rng.getrandbits(128))).upper()]
        for id_ in ids:
            assert rules.KEPT_SHAPE.fullmatch(id_) or not re.search("[a-f]", id_), id_
            for text in (id_, json.dumps({"trace": id_}), f"id={id_}&n=2", f"trace {id_} done"):
                assert gate.first_leak(text) is None, text
                assert [h for h in scan.find(text) if h.rule not in ("base64", "url", "query")] == [], text


def test_timestamps_stay_and_a_birth_date_under_its_name_goes(invoke: Any, tmp_path: Path) -> None:
    doc = {"ts": "2023-11-14T22:09:25Z", "created": "2023-11-14 22:09", "dob": "1984-03-17T00:00:00Z",
           "birthdate": "1984-03-17", "note": "2023-11-14T22:09:25Z bob.person@corp-example.test"}
    result, out = _run(invoke, tmp_path, "a.json", json.dumps(doc), "--no-ner")
    assert result.exit_code == 0, result.stderr
    got = json.loads(out)
    assert got["ts"] == doc["ts"] and got["created"] == doc["created"]
    assert got["dob"].startswith("<DATE:") and got["birthdate"].startswith("<DATE:")
    assert got["note"].startswith("2023-11-14T22:09:25Z <EMAIL:")


def test_redact_terms_everywhere_case_insensitively(invoke: Any, tmp_path: Path) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_text("# words to hide\nProjectNimbus\n\n")
    text = "Acme asked about projectnimbus on acme.example.com; ACME's PROJECTNIMBUS rollout"
    result, out = _run(invoke, tmp_path, "notes.txt", text, "--redact-term", "acme", "--terms", str(terms), "--no-ner")
    assert result.exit_code == 0, result.stderr
    assert "acme" not in out.lower() and "nimbus" not in out.lower()
    acme = re.findall(r"<TERM:[0-9a-f]+>", out)
    assert len(acme) == 5 and acme[0] == acme[2] == acme[3] and acme[1] == acme[4] != acme[0]
    assert out.endswith("'s <TERM:" + acme[4][6:] + " rollout")


def test_without_ner_the_report_says_names_are_not_detected(invoke: Any, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result, _ = _run(invoke, tmp_path, "a.txt", "hello Robert Miller", "--no-ner", "--report", str(report))
    assert result.exit_code == 0
    doc = json.loads(report.read_text())
    assert doc["names_detected"] is False and "names and places are not detected" in doc["notes"][0]
    assert "names and places are not detected" in result.stderr


def test_with_ner_names_in_json_notes_and_titles_are_found(invoke: Any, tmp_path: Path) -> None:
    from diagkit.redact.engine import ner_available

    if not ner_available():
        if os.environ.get("CI"):  # the dev extra installs the model: missing there is a broken install
            pytest.fail("the [ner] model is not installed", pytrace=False)
        pytest.skip("the [ner] model is not installed")
    doc = {"note": "Customer Robert Miller called about the invoice", "status": "open"}
    result, out = _run(invoke, tmp_path, "a.json", json.dumps(doc))
    assert result.exit_code == 0
    assert "Robert" not in out and "Miller" not in out and json.loads(out)["status"] == "open"


def test_one_pseudonym_whatever_the_encoding(invoke: Any, tmp_path: Path) -> None:
    email = "dana.kowalski@corp-example.test"
    har = {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [{
        "startedDateTime": "2030-01-01T00:00:00Z", "time": 1,
        "request": {"method": "GET", "url": "https://a.test/x?u=dana.kowalski%40corp-example.test", "httpVersion": "h2",
                    "headers": [{"name": "x-user", "value": email}], "cookies": [],
                    "queryString": [{"name": "u", "value": "dana.kowalski%40corp-example.test"}],
                    "headersSize": -1, "bodySize": -1},
        "response": {"status": 200, "statusText": "", "httpVersion": "h2", "headers": [], "cookies": [],
                     "content": {"size": 1, "mimeType": "application/json",
                                 "text": json.dumps({"u": email}).replace("@", "\\u0040")},
                     "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"send": 1, "wait": 1, "receive": 1}}]}}
    result, out = _run(invoke, tmp_path, "a.har", json.dumps(har), "--no-ner")
    assert result.exit_code == 0 and email not in out
    hexes = set(re.findall(r"(?:<|%3C)EMAIL(?::|%3A)([0-9a-f]+)", out))
    assert len(hexes) == 1


def test_binary_bodies_become_a_placeholder_and_readable_octet_stream_is_redacted(invoke: Any, tmp_path: Path) -> None:
    binary = b"\x00\x01\x02protobuf\x12\x1ddana.kowalski@corp-example.test\xff"
    readable = json.dumps({"owner": "dana.kowalski@corp-example.test", "state": "active"}).encode()

    def entry(data: bytes) -> dict:
        return {"startedDateTime": "2030-01-01T00:00:00Z", "time": 1,
                "request": {"method": "GET", "url": "https://a.test/", "httpVersion": "h2", "headers": [],
                            "cookies": [], "queryString": [], "headersSize": -1, "bodySize": -1},
                "response": {"status": 200, "statusText": "", "httpVersion": "h2", "headers": [], "cookies": [],
                             "content": {"size": len(data), "mimeType": "application/octet-stream",
                                         "text": base64.b64encode(data).decode(), "encoding": "base64"},
                             "redirectURL": "", "headersSize": -1, "bodySize": -1},
                "cache": {}, "timings": {"send": 1, "wait": 1, "receive": 1}}
    har = {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [entry(binary), entry(readable)]}}
    result, out = _run(invoke, tmp_path, "a.har", json.dumps(har), "--no-ner")
    assert result.exit_code == 0
    first, second = (e["response"]["content"] for e in json.loads(out)["log"]["entries"])
    import hashlib

    assert first["text"] == f"<BINARY:{len(binary)} bytes sha256:{hashlib.sha256(binary).hexdigest()}>"
    inner = json.loads(base64.b64decode(second["text"]))
    assert inner["state"] == "active" and inner["owner"].startswith("<EMAIL:")


@pytest.mark.parametrize("line,kept,gone", [
    ("GET /v2/orders?state=active&page=2", ["state=active"], []),
    ("GET https://login.example.test/error?code=70008", ["code=70008"], []),
    ("GET https://app.example.test/callback?code=SplxlOBeZQQYbYS6&state=af0ifjsl", [], ["SplxlOBeZQQYbYS6", "af0ifjsl"]),
    ("WARN token validation failed for client app", ["token validation failed"], []),
    ("Access denied for user 'app' (using password: YES)", ["(using password: YES)"], []),
    ("new password: Tr0ub4dor&3", [], ["Tr0ub4dor&3"]),
    ("order 771234567890 shipped, trace 4bf92f3577b34da6a3ce929d0e0e4736", ["771234567890", "4bf92f3577b34da6"], []),
    ("Authorization: Digest username=\"bob\", realm=\"api@example.test\", uri=\"/x\", qop=auth, response=\"6629fae4\"",
     ['realm="api@example.test"', 'uri="/x"', "qop=auth"], ["6629fae4", "bob"]),
    ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20300101/us-east-1/s3/aws4_request, "
     "SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3be",
     ["/20300101/us-east-1/s3/aws4_request", "SignedHeaders=host;x-amz-date", "AWS4-HMAC-SHA256"],
     ["AKIAIOSFODNN7EXAMPLE", "fe5f80f77d5fa3be"]),
    ("Authorization: SSWS 00Qm7xYzT3Lk9WvBnR2pHs5Df8", ["Authorization: SSWS <SECRET:"], ["00Qm7xYzT3Lk9WvBnR2pHs5Df8"]),
    ("$ mysql -h db -u root -pMyS3cret orders; docker run -p 8080:80 nginx", ["-p 8080:80"], ["MyS3cret"]),
    ("$ curl -u admin:CurlP4ss https://a.test/ && redis-server --requirepass R3dis-pass", ["curl -u"],
     ["CurlP4ss", "R3dis-pass"]),
    ("fw src_ip:198.51.100.7 dst_ip:93.184.215.14 connected to 93.184.215.14:443", ["dst_ip:93.184.215.14",
     "connected to 93.184.215.14:443"], ["198.51.100.7"]),
])
def test_free_text_decisions(invoke: Any, tmp_path: Path, line: str, kept: list[str], gone: list[str]) -> None:
    result, out = _run(invoke, tmp_path, "a.log", line + "\n", "--no-ner")
    assert result.exit_code == 0
    assert all(k in out for k in kept), out
    assert not any(g in out for g in gone), out


def test_public_siblings_under_credential_keys_stay(invoke: Any, tmp_path: Path) -> None:
    doc = {"credentials": {"type": "service_account", "project_id": "p-1", "token_uri": "https://o.test/token",
                           "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\n"}}
    result, out = _run(invoke, tmp_path, "a.json", json.dumps(doc), "--no-ner")
    creds = json.loads(out)["credentials"]
    assert result.exit_code == 0
    assert {k: creds[k] for k in ("type", "project_id", "token_uri")} == {
        "type": "service_account", "project_id": "p-1", "token_uri": "https://o.test/token"}
    assert creds["private_key"].startswith("<KEY:")


def test_gate_refuses_what_the_redactor_missed_and_names_where(invoke: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit.redact import decide

    monkeypatch.setattr(decide.Redaction, "pseudo", lambda self, kind, value, rule, ctx: value)
    result, out = _run(invoke, tmp_path, "a.json", json.dumps({"a": [{"b": "mail dana@corp-example.test"}]}))
    assert result.exit_code == 1 and out == "" and not (tmp_path / "out-a.json").exists()
    assert "'email' is still present at a[0].b" in result.stderr and "dana@" not in result.stderr


def test_the_gate_reads_base64_as_what_it_spells() -> None:
    """A text wholly base64 of readable text is looked at as that text only; any other text as written (a
    JWT in it as its header and claims), then in each decoded form (its base64 runs among them)."""
    from diagkit.redact import gate

    body = base64.b64encode(b'{"owner": "dana@corp-example.test", "n": 1}').decode()
    assert list(gate.forms(body)) == ['{"owner": "dana@corp-example.test", "n": 1}']
    assert gate.first_leak(body) == "email"
    noise = base64.b64encode(bytes(range(1, 40))).decode()  # control bytes: not text, so read as written
    assert list(gate.forms(noise)) == [noise]
    line = f"saved body={body}"
    assert list(gate.forms(line)) == [line, '{"owner": "dana@corp-example.test", "n": 1}']
    head, claims = (base64.urlsafe_b64encode(part).decode().rstrip("=")
                    for part in (b'{"alg":"RS256","typ":"JWT"}', b'{"sub":"dana@corp-example.test","exp":1700000000}'))
    token = f"{head}.{claims}.c2lnbmF0dXJl"
    assert list(gate.forms(f"Bearer {token}")) == ["Bearer x", '{"alg":"RS256","typ":"JWT"}',
                                                   '{"sub":"dana@corp-example.test","exp":1700000000}']
    assert gate.first_leak(f"https://u:{token}@example.test/") == "url_password"  # found around the token still


def test_xml_with_a_dtd_is_refused_and_saml_inside_is_redacted(invoke: Any, tmp_path: Path) -> None:
    result, out = _run(invoke, tmp_path, "a.xml", '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>')
    assert result.exit_code == 1 and "DTD" in result.stderr and out == ""
    config = '<configuration><appSettings><add key="SmtpPassword" value="Smtp$ecret-9931"/>' \
             '<add key="SmtpHost" value="smtp.example.test"/></appSettings></configuration>'
    result, out = _run(invoke, tmp_path, "web.config", config, "--no-ner")
    assert result.exit_code == 0 and "Smtp$ecret" not in out and 'value="smtp.example.test"' in out


def test_server_addresses_in_probe_results_stay_and_client_ones_go() -> None:
    from diagkit.redact.engine import Redactor

    result = {"detail": "Answer: 93.184.215.14, 93.184.215.15", "target": "93.184.215.14:443",
              "evidence": {"resolver": "8.8.8.8", "answers": ["93.184.215.14"], "serverIPAddress": "2001:db8::1"},
              "note": "login from 198.51.100.7 (X-Forwarded-For 203.0.113.9)"}
    out = Redactor(b"k" * 32, ner=False).redact_obj(result)
    assert {k: out[k] for k in ("detail", "target")} == {k: result[k] for k in ("detail", "target")}
    assert out["evidence"] == result["evidence"]
    assert re.fullmatch(r"login from <IP:[0-9a-f]+> \(X-Forwarded-For <IP:[0-9a-f]+>\)", out["note"])


STARTS = [rule for rule in rules.VALUE_RULES if rule.starts]


def test_the_needs_trie_finds_each_need_where_the_plain_alternation_does() -> None:
    """rules._trie factors the needs' prefixes: it must find every need, alone and inside text, and agree
    with a plain alternation of them on every text of the corpus (a need it missed would skip a rule)."""
    from tests import redact_corpus

    needs = sorted({n for rule in rules.VALUE_RULES for n in rule.needs})
    trie, plain = re.compile(rules._trie(needs)), re.compile("|".join(re.escape(n) for n in needs))
    for need in needs:
        assert trie.fullmatch(need) and trie.search(f"x {need} y").group(0) == need
    assert re.fullmatch(rules._trie(["ab", "abc", "b"]), "abc") and re.fullmatch(rules._trie(["ab", "abc"]), "ab")
    texts = [*(s for rule in rules.VALUE_RULES for s in (*rule.yes, *rule.no)),
             *(case.data.decode("utf-8", "replace") for case in redact_corpus.corpus())]
    for text in texts:
        assert bool(trie.search(text)) == bool(plain.search(text))


@pytest.mark.parametrize("rule", STARTS, ids=[r.id for r in STARTS])
def test_a_rules_starts_lookahead_finds_what_its_pattern_finds(rule: rules.ValueRule) -> None:
    """`starts` is put in front of the pattern as a lookahead: every match must begin with that class."""
    from tests import redact_corpus

    plain = re.compile(rule.pattern)
    texts = [*rule.yes, *rule.no, *(case.data.decode("utf-8", "replace") for case in redact_corpus.corpus())]
    for text in texts:
        assert [m.span() for m in rule.regex.finditer(text)] == [m.span() for m in plain.finditer(text)]
    for text in rule.yes:
        assert all(re.match(rule.starts, m.group(0)) for m in plain.finditer(text))


ONE_LINE = [rule for rule in rules.VALUE_RULES if rule.one_line]


@pytest.mark.parametrize("rule", ONE_LINE, ids=[r.id for r in ONE_LINE])
def test_a_one_line_rule_finds_in_a_long_text_what_a_whole_pass_finds(rule: rules.ValueRule) -> None:
    """In a long text a `one_line` rule runs only on the lines holding one of its needs, each bounded by
    its line: at a line's start and end, between neighbours and alone, it must find what one pass finds."""
    assert rule.needs and "$" not in rule.pattern
    lines = []
    for sample in rule.yes:
        lines += [sample, f"x {sample}", f"{sample} y", f"a={sample};b={sample}", f"({sample})", f"é{sample}ü", ""]
    filler = "2023-11-14T22:00:00Z INFO nothing to see here, order 4711 in 12 ms\n" * 300
    text = filler + "\n".join(lines) + "\n" + filler + "\n".join(lines)
    assert len(text) >= 16384
    whole = [(m.span(), m.group(rule.group)) for m in rule.regex.finditer(text)
             if rule.check is None or rule.check(m.group(rule.group))]
    assert whole
    assert [(m.span(), m.group(group)) for _, m, group in rules.Table((rule,)).hits(text)] == whole


HINTED = [rule for rule in rules.VALUE_RULES if rule.hint]


@pytest.mark.parametrize("rule", HINTED, ids=[r.id for r in HINTED])
def test_a_rules_hint_is_in_every_match(rule: rules.ValueRule) -> None:
    """A long text without a rule's `hint` is not scanned with it: every match, of its samples and over the
    whole adversarial corpus, must hold the hint, and a long text with the samples finds what one pass finds."""
    from tests import redact_corpus

    hint = re.compile(rule.hint)
    texts = [*rule.yes, *(case.data.decode("utf-8", "replace") for case in redact_corpus.corpus())]
    matches = [m.group(0) for text in texts for m in rule.regex.finditer(text)]
    assert matches and all(hint.search(m) for m in matches)
    filler = "2023-11-14T22:00:00Z INFO nothing to see here, order 4711 in 12 ms\n" * 300
    text = filler + " ".join(rule.yes) + "\n" + filler
    whole = [m.span(rule.group) for m in rule.regex.finditer(text) if rule.check is None or rule.check(m.group(rule.group))]
    assert whole and [m.span(group) for _, m, group in rules.Table((rule,)).hits(text)] == whole
    assert list(rules.Table((rule,)).hits(filler * 2)) == []  # without the hint: not scanned, nothing found


def test_secret_words_in_prose_are_looked_for_with_any_spelling_of_api_key() -> None:
    from diagkit.redact import scan

    for text in ("the API key is Xy7Kq2Lm9", "api_key was Xy7Kq2Lm9", "use apikey Xy7Kq2Lm9", "Api-Key Xy7Kq2Lm9"):
        assert [hit.rule for hit in scan.find(text)] == ["secret_word"], text
    assert scan.find("cache hit key=orders:42 monkey Xy7Kq2Lm9") == []


def test_a_secrets_name_then_a_space_then_its_value() -> None:
    """A config directive or a command's argument: `requirepass X`, `aws configure set aws_secret_access_key X`.
    A flag, a word and a resource's name after kubectl's `secret` are no value."""
    from diagkit.redact import scan

    for text, kind in (("aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENGbPxRfiCY", "SECRET"),
                       ("requirepass Xk9pQ2mZ7vLr", "PASSWORD"), ("npm config set _authToken npm_a1B2c3D4e5F6", "TOKEN")):
        assert [(hit.kind, hit.rule) for hit in scan.find(text)] == [(kind, "name_value")], text
    for text in ("the access_token expired yesterday", "kubectl get secret app-creds-2 -o yaml",
                 "kubectl create secret generic test-secret --from-literal=a=b", "secretKeyRef someName"):
        assert scan.find(text) == [], text


def test_a_scripts_code_a_query_and_versions_are_no_values() -> None:
    from diagkit.redact import scan

    for text in ('var user = parameters.user;this.credentials=e.credentials||this.credentials||"same-origin";',
                 "t.tokenize=function(e){return e}", "let token = abc.def;", "{login(password:$password){token user{id name}}}",
                 "os=Linux,browser_version=149.0.0.0", "uafvl=Chromium;139.0.7258.67|Not;A=Brand;99.0.0.0"):
        assert scan.find(text) == [], text
    assert [hit.kind for hit in scan.find('var password = "Xk9pLq2vRw7";')] == ["PASSWORD"]
    assert [hit.kind for hit in scan.find("client=198.51.100.7;proto=https")] == ["IP"]


def test_secret_words_are_looked_for_as_the_pattern_matches_them() -> None:
    """The word filter folds case as IGNORECASE does, so a spelling the pattern matches is never skipped."""
    from diagkit.redact import scan

    for text in ("ſecret is Xy7Kq2Lm9", "the paſſword is Xy7Kq2Lm9", "SECRET IS Xy7Kq2Lm9"):
        assert rules.SECRET_WORD_IN_PROSE.search(text), text
        assert [hit.rule for hit in scan.find(text)] == ["secret_word"], text


@pytest.mark.parametrize("kind,value", [
    ("SESSION", "2023-03-06T19:02:50.836Z"), ("USER", "?1"), ("CSRF", "1"), ("KEY", "c"), ("TOKEN", "{{token}}"),
    ("KEY", "${API_KEY}"), ("PASSWORD", "$DB_PASSWORD"), ("PASSWORD", "%PASSWORD%"), ("SIGNATURE", "SUCCESS"),
    ("TOKEN", "expired"), ("SECRET", "none"), ("PASSWORD", "xxxxxxxx"), ("SECRET", "REDACTED_FOR_THIS_ISSUE"),
    ("TOKEN", "********"), ("KEY", "****************B4XB"), ("SECRET", "****************m+2k"),
    ("TOKEN", "sk_****wxyz"), ("PASSWORD", "XXXXXXXX1234")])
def test_a_secrets_name_before_no_secret(kind: str, value: str) -> None:
    assert rules.not_secret(kind, value)


@pytest.mark.parametrize("kind,value", [
    ("PASSWORD", "hunter"), ("PASSWORD", "Zq9!mPass"), ("SECRET", "letmeinplease"), ("TOKEN", "abcdefghijklmnop"),
    ("SESSION", "25e60089-3e4f"), ("PASSWORD", "4821"), ("TOKEN", "$ecretT0ken"), ("PASSWORD", "hiddenGem42"),
    ("PASSWORD", "xxx-Redacted9"), ("PASSWORD", "XxXx1234"), ("PASSWORD", "xxxxab12cd")])
def test_a_secrets_name_before_a_secret(kind: str, value: str) -> None:
    assert not rules.not_secret(kind, value)


def test_code_is_not_a_value_and_a_password_with_a_bracket_still_is() -> None:
    for code in ("new", "jQuery.now(", "jQuery.now()", "tokens[i", "tokens[i]", "authenticateHeader.indexOf(",
                 "\\ue707", "\\x41\\x42"):
        assert rules.code_value(code), code
    for value in ("Secret(1", "Pass[word", "hunter2", "p.a.s.s(word)"):
        assert not rules.code_value(value), value


def test_a_name_ending_in_key_before_an_opaque_value() -> None:
    assert rules.keyed_secret("validationKey", "3F1D59A8B7C6D5E4F3A2B1C0")
    assert rules.keyed_secret("Key", "dwc8aqu8Xk29LmQp77Zt")
    assert not rules.keyed_secret("Key", "Content-Type")            # no digit: a word
    assert not rules.keyed_secret("sortKey", "created_at")
    assert not rules.keyed_secret("keyboard", "3F1D59A8B7C6D5E4F3A2B1C0")  # not a key's name
    assert not rules.keyed_secret("Sec-WebSocket-Key", "aOpK58kffMOGmH4do+rCyw==")  # a handshake's nonce
    assert not rules.keyed_secret("apiKey", "short12")               # too short to be a key
    assert not rules.keyed_secret("publicKey", "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")


def test_words_of_the_protocol_are_never_names() -> None:
    from diagkit.redact import ner

    for words in ("Switching Protocols", "Fri", "Referer", "Not Found", "Internal Server Error", "Cache-Control"):
        assert not ner._plausible(words), words
    for name in ("Alice Martin", "April Oniel", "Robert Miller"):
        assert ner._plausible(name), name


def test_a_secret_word_takes_its_value_from_its_own_line() -> None:
    from diagkit.redact import scan

    text = "aws_secret_access_key = secret\n\n[with_colon]\naws_access_key_id: accessKey"
    assert "secret_word" not in [hit.rule for hit in scan.find(text)]
    assert text[slice(*scan.find(text)[-1][:2])] == "accessKey"  # the id after its name, nothing else


def test_a_jwt_header_with_nothing_to_hide_is_kept_as_written() -> None:
    """Its segment byte for byte (spaces, key order, padding as the issuer wrote them); the claims are rewritten."""
    from diagkit.redact.engine import Redactor

    head = base64.urlsafe_b64encode(b'{"alg": "RS256",  "kid": "k-1"}').decode()  # padded, spaced
    claims = base64.urlsafe_b64encode(b'{"sub": "dana@corp-example.test", "exp": 1700000000}').decode().rstrip("=")
    out = Redactor(b"k" * 32, ner=False).redact_text(f"Authorization: Bearer {head}.{claims}.c2lnbmF0dXJlLXNpZ25hdHVyZQ")
    token = out.split("Bearer ")[1]
    assert token.split(".")[0] == head and "dana@" not in out and token.split(".")[2].startswith("redacted")
