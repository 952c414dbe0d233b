"""The phone metadata test (diagkit.redact.phones.may_be_valid) against python-phonenumbers itself: it may
only rule out what parse() + is_valid_number() rejects, and the matcher built on it must give the matcher's
own verdicts."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest

from diagkit.redact import phones

# presidio's regions, and others whose metadata has the odd cases: AR and MX rewrite national numbers
# (transform rules), IT keeps a leading zero, JP/AU/NZ have their own prefixes, GG/JE share GB's code.
REGIONS = (*phones.PHONE_REGIONS, "AR", "MX", "IT", "JP", "AU", "NZ", "GG", "JE", "ZA", "CN")
PREFIXES = ("", "", "", "0", "00", "011", "1", "1 ", "44", "49 ", "33", "55", "972", "91", "9012", "0 ", "0041",
            "015", "(0)", "(415) ", "+44 ", "+1 ")
SEPARATORS = ("", " ", " ", "-", ".", "/", " (", ") ", "-")


def _candidates(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        groups = [str(rng.randrange(10 ** (k - 1), 10 ** k)) if rng.random() < 0.8 else
                  "".join(rng.choice("0123456789") for _ in range(k)) for k in rng.choices(range(1, 7), k=rng.randint(1, 4))]
        text = rng.choice(PREFIXES)
        for i, g in enumerate(groups):
            text += (rng.choice(SEPARATORS) if i else "") + g
        out.append(text)
    # shapes met in logs: status + size, dates, versions, ids, and real phones
    out += ["200 881029", "200 46087", "2023-11-14", "120.0.6099.109", "415.555.0137", "(415) 555-0199",
            "020 7946 0958", "030 90182244", "01 42 68 53 00", "+49 30 90182244", "0800 123 4567", "911",
            "11 98765 4321", "(11) 98765-4321", "0 11 98765 4321", "1 415 555 0100", "00 44 20 7946 0958"]
    return out


def _valid(candidate: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(candidate, region))
    except phonenumbers.NumberParseException:
        return False


def test_metadata_test_never_rules_out_a_valid_number() -> None:
    ruled_out = invalid = 0
    for candidate in _candidates(5, 2500):
        for region in REGIONS:
            valid = _valid(candidate, region)
            if not phones.may_be_valid(candidate, region):
                assert not valid, (candidate, region)
                ruled_out += 1
            if not valid:
                invalid += 1
    # ... and it does rule out most invalid numbers without parsing (a test that always says True passes
    # the assertion above; this one it fails)
    assert ruled_out > 0.6 * invalid


@pytest.mark.parametrize("region", ["US", "GB", "DE", "IL", "IN", "CA", "BR"])
def test_an_access_log_status_and_size_is_not_parsed(region: str) -> None:
    assert not phones.may_be_valid("200 881029", region)


def test_what_the_metadata_test_cannot_judge_is_parsed() -> None:
    for candidate in ("+44 20 7946 0958", "011 44 20 7946 0958", "415 555 0100 ext 12", "1-800-FLOWERS"):
        assert phones.may_be_valid(candidate, "US")
    assert phones.may_be_valid("00 49 30 90182244", "FR")  # an international dialling prefix


def test_matcher_gives_phonenumbers_own_verdicts() -> None:
    """The matcher with the metadata test in front of parse() accepts exactly what phonenumbers' matcher
    accepts, inner matches included ("200 881029" is not a French number; "881029" might be German)."""
    matcher_class = phones._matcher_class()
    assert matcher_class is not None
    rng = random.Random(9)
    compared = accepted = 0
    for candidate in _candidates(7, 1500):
        window = rng.choice(("call ", "id ", "", "x", "on ")) + candidate + rng.choice(("", " now", ".", "a"))
        offset = window.index(candidate)
        for region in phones.PHONE_REGIONS:
            ours = matcher_class(window, region, leniency=phonenumbers.Leniency.VALID)._extract_match(candidate, offset)
            theirs = phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID
                                                     )._extract_match(candidate, offset)
            assert (ours is None) == (theirs is None), (window, region)
            if ours is not None:
                assert (ours.start, ours.raw_string, ours.number) == (theirs.start, theirs.raw_string, theirs.number)
                accepted += 1
            compared += 1
    assert accepted > 50 and compared > 10000


def test_national_prefix_check_rejects_only_what_the_matcher_rejects() -> None:
    """_prefix_missing() (the national prefix a region's format asks for, checked before parsing) holds only
    where phonenumbers' matcher at leniency VALID rejects the whole candidate; and it does hold often."""
    missing = 0
    for candidate in _candidates(11, 2000):
        if not phones._SIMPLE_RE.fullmatch(candidate):
            continue
        digits = candidate.translate(phones._SEPARATORS)
        window = f"call {candidate} now"
        for region in phones.PHONE_REGIONS:
            if phones._prefix_missing(digits, region):
                missing += 1
                matcher = phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID)
                assert matcher._parse_and_verify(candidate, 5) is None, (candidate, region)
    assert missing > 400
    assert phones._prefix_missing("200881029", "FR") and phones._prefix_missing("2079463754", "GB")
    assert not phones._prefix_missing("02079463754", "GB") and not phones._prefix_missing("4155550137", "US")


def test_candidate_pattern_finds_what_its_plainer_form_finds() -> None:
    """The separators between digits, written one branch per first character, match what the plainer
    alternation matches, span for span (ASCII and not)."""
    plain = re.compile(r"(?<![\w.+/\\-])(?:\+|00)?(?:\(\+?\d{1,4}\)[ .\-]?)?\d(?:(?:[ .\-/]|[ .\-]?\(|\)[ .\-]?)?\d)"
                       r"{6,16}(?:\s?(?:ext\.?|x)\s?\d{1,6})?(?![\w@])")
    rng = random.Random(41)
    alphabet = ["+", "(", ")", "00", "1", "415", "555", "0137", " ", "-", ".", "/", "x", "ext ", "a", "@", "\n", "_",
                " (", ") ", ").", "-(", "\u0664\u0661", "T", ":"]
    for _ in range(6000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        assert [m.span() for m in phones.CANDIDATE_RE.finditer(text)] == [m.span() for m in plain.finditer(text)], text


def test_ascii_candidate_scan_finds_what_the_full_pattern_finds() -> None:
    rng = random.Random(13)
    alphabet = ["+", "(", ")", "00", "1", "415", "555", "0137", " ", "-", ".", "/", "x", "ext ", "a", "@", "\n", "_"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        assert text.isascii()
        assert [m.span() for m in phones.candidates(text)] == [m.span() for m in phones.CANDIDATE_RE.finditer(text)]
    unicode_text = "call \u0664\u0661\u0665 555 0137 or +1 415 555 0100"
    assert [m.group() for m in phones.candidates(unicode_text)] == [
        m.group() for m in phones.CANDIDATE_RE.finditer(unicode_text)]


def test_accepted_gives_the_matchers_verdict_for_every_region_asked() -> None:
    """accepted() skips the matcher where the metadata says it must reject (whole candidate and every part):
    its verdict is still that of phonenumbers' own matcher run for each region the whole may be valid in."""
    rng = random.Random(29)
    compared = yes = 0
    cands = _candidates(31, 1500) + ["200 881029", "200 46087", "020 7946 0958", "(415) 555-0199", "30 90182244"]
    for candidate in cands:
        if candidate.startswith(("+", "00")) or not 7 <= sum(c.isdigit() for c in candidate) <= 17:
            continue
        window = rng.choice(("call ", "", '1.1" ', "id ")) + candidate + rng.choice(("", " now", ' "-"'))
        offset = window.index(candidate)
        theirs = any(
            phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID
                                            )._extract_match(candidate, offset) is not None
            for region in phones.PHONE_REGIONS if phones.may_be_valid(candidate, region))
        phones.accepted.cache_clear()
        assert phones.accepted(candidate, window, offset) == theirs, (window, candidate)
        compared += 1
        yes += theirs
    assert compared > 800 and yes > 30


def test_the_matcher_reads_only_its_neighbours() -> None:
    """accepted() gets the candidate with phones.NEIGHBOURS characters around it (so that the same number
    between the same characters is one cache entry): its verdict is the one the whole line gives."""
    rng = random.Random(37)
    before = ("call ", "x", "(", "id:", "at 2023-11-14 ", "ref ", "a/", "+", "tel.", "", "on 12 ")
    after = ("", " now", ":30", ":5", "x", ").", " ext 12", "/2", "a", ":61 ok", "-", " 12:30:45")
    compared = yes = 0
    # a date and an hour, then ":mm", is a time stamp to the matcher: that is the furthest it reads ahead
    stamps = [f"20{rng.randrange(10, 30)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} {h:02d}"
              for h in range(24)] + ["1998/07/01 20", "2023 1114 2230"]
    for candidate in _candidates(41, 1200) + stamps + ["12 30 45 67", "415 555 0137", "020 7946 0958"]:
        if candidate.startswith(("+", "00")):
            continue
        line = rng.choice(before) + candidate + rng.choice(after) + rng.choice(after)
        if candidate in stamps:
            line = f"at {candidate}:{rng.randrange(60):02d}:00 UTC"
        offset = line.index(candidate)
        lo = max(0, offset - phones.NEIGHBOURS[0])
        narrow = line[lo:offset + len(candidate) + phones.NEIGHBOURS[1]]
        whole = phones.accepted.__wrapped__(candidate, line, offset)
        assert phones.accepted.__wrapped__(candidate, narrow, offset - lo) == whole, (line, candidate)
        compared += 1
        yes += whole
    assert compared > 800 and yes > 20


def test_phone_candidates_inside_taken_spans_or_on_pseudonyms_are_skipped() -> None:
    """A candidate wholly inside a span another pattern took (however many spans start between them), or on a
    pseudonym, is not a phone; the same number elsewhere in the text is."""
    from diagkit.redact.text import Spans, TextScanner

    number = "call 415 555 0137 now"
    text = f"{number} | {number} | <PHONE:415555013> | {number}"
    starts = [i for i in range(len(text)) if text.startswith("415 555 0137", i)]
    first, second, third = starts
    # a long span holding the second number, then three short ones starting after it but before the number
    claimed = Spans([(second - 5, second + 15), (second - 4, second - 3), (second - 3, second - 2),
                     (second - 2, second - 1)])
    blocked = Spans([(text.index("<PHONE"), text.index("<PHONE") + len("<PHONE:415555013>"))])
    found = TextScanner(ner=False)._phones(text, blocked, claimed)
    assert [(s, e) for s, e, _, _ in found] == [(first, first + 12), (third, third + 12)]
