"""Hostile HAR files: deep nesting, wrong types everywhere, absurd numbers, broken URLs and dates,
odd encodings, a huge header and many entries. Every one ends with a verdict, never a traceback or
a `probe.run.crashed` finding."""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from tests.work import assert_linear

GOOD = {"startedDateTime": "2026-03-01T10:00:00Z", "time": 1,
        "request": {"method": "GET", "url": "https://a.example/x", "headers": []},
        "response": {"status": 200, "headers": [], "content": {}}, "timings": {"wait": 1}}


def _har(entries: list[Any]) -> dict:
    return {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": entries}}


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, allow_nan=True))
    return path


def _run(invoke, path: Path) -> tuple[Any, dict]:
    result = invoke("probe", "har", path, "--json")
    assert "Traceback" not in result.stderr + result.stdout
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    for finding in doc.get("findings", []):
        assert finding["id"] != "probe.run.crashed", finding
    return result, doc


@pytest.mark.parametrize("text", [
    '{"log":{"entries":[' + "[" * 200_000 + "]" * 200_000 + "]}}",
    '{"log":{"entries":[{"request":' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "}]}}",
])
def test_deeply_nested_json_is_invalid_har(invoke, tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.har"
    path.write_text(text)
    result, doc = _run(invoke, path)
    assert result.exit_code == 5
    assert [f["id"] for f in doc["findings"]] == ["har.invalid"]
    assert "nested too deeply" in doc["findings"][0]["detail"]



def test_integer_past_the_digit_limit_is_invalid_har(invoke, tmp_path: Path) -> None:
    path = tmp_path / "big.har"
    path.write_text('{"log":{"version":"1.2","entries":[],"x":' + "7" * 5000 + "}}")
    result, doc = _run(invoke, path)
    assert result.exit_code == 5
    assert [f["id"] for f in doc["findings"]] == ["har.invalid"]
    assert "number too long" in doc["findings"][0]["detail"]


WEIRD_ENTRIES: list[Any] = [
    "string", None, 1, [], {"request": "x", "response": "y"},
    {"request": None, "response": None, "timings": None, "startedDateTime": None, "time": None},
    {"request": {"method": None, "url": None, "headers": None, "queryString": None, "postData": None},
     "response": {"status": None, "headers": None, "content": None, "redirectURL": None}},
    {"startedDateTime": "not a date", "time": "slow", "request": {"method": 5, "url": 12, "headers": "h"},
     "response": {"status": "abc", "headers": [None, 1, "x", {"name": None}, {"name": "WWW-Authenticate", "value": None}]},
     "timings": {"wait": "10", "send": -5, "receive": math.nan, "blocked": math.inf, "dns": -1e308}},
    {"startedDateTime": "9999-12-31T23:59:59Z", "time": 1e300, "request": {"method": "GET", "url": "::::not a url:::["},
     "response": {"status": 401, "headers": [{"name": "WWW-Authenticate", "value": 'Bearer error="invalid_token"'}]},
     "timings": {"wait": 1e300}},
    {"startedDateTime": "2026-13-45T25:61:61Z", "time": math.inf, "request": {"method": "GET", "url": "http://[::1/x?a=b"},
     "response": {"status": math.inf, "headers": [{"name": "Date", "value": "garbage"}, {"name": "Age", "value": "²"}],
                  "redirectURL": "http://[bad"}},
    {"startedDateTime": "2026-03-01T10:00:00Z", "request": {"method": "GET", "url": "http://[::1"},
     "response": {"status": 302, "headers": [{"name": "Location", "value": "http://[::1/next"}]}},
    {"startedDateTime": 12345, "request": {"method": "GET", "url": "https://a.example/?SAMLRequest=%%%"},
     "response": {"status": -3, "content": {"text": 5, "encoding": ["base64"]}, "_error": {"x": 1}}},
    {"startedDateTime": "2026-03-01T10:00:00Z", "request": {"method": "GET", "url": "https://a.example/"},
     "response": {"status": 10 ** 30, "headers": [{"name": "Age", "value": "9" * 5000},
                                                  {"name": "Date", "value": "Thu, 01 Jan 1970 00:00:00 GMT"}]}},
    GOOD,
]


# What each entry above gives alone: (exit code, finding ids). Not an object: no entry to read, `error` (5);
# unreadable or absurd request/response fields: a request that failed, `warn` (4); a 401 with a Bearer
# challenge, or an unreadable SAMLRequest: `fail` (3); sane enough: `pass` (0).
WEIRD_OUTCOMES: list[tuple[int, set[str]]] = [
    (5, {"har.entries.empty"}), (5, {"har.entries.empty"}), (5, {"har.entries.empty"}), (5, {"har.entries.empty"}),
    (4, {"har.request.failed"}), (4, {"har.request.failed"}), (4, {"har.request.failed"}),
    (4, {"har.request.failed"}), (3, {"har.auth.unauthorized", "http.auth.invalid_token"}),
    (4, {"har.request.failed"}), (0, {"har.ok"}), (3, {"har.request.failed", "har.saml.unreadable"}),
    (4, {"har.request.failed"}), (0, {"har.ok"}),
]


def test_wrong_types_nan_infinity_bad_dates_and_urls(invoke, tmp_path: Path) -> None:
    result, doc = _run(invoke, _write(tmp_path / "weird.har", _har(WEIRD_ENTRIES)))
    assert result.exit_code == 3, result.stderr  # the worst of the entries' verdicts
    assert doc["facts"]["entries"] == sum(isinstance(e, dict) for e in WEIRD_ENTRIES)


@pytest.mark.parametrize("index", range(len(WEIRD_ENTRIES)))
def test_each_weird_entry_alone(invoke, tmp_path: Path, index: int) -> None:
    assert len(WEIRD_OUTCOMES) == len(WEIRD_ENTRIES)
    result, doc = _run(invoke, _write(tmp_path / "one.har", _har([WEIRD_ENTRIES[index]])))
    code, found = WEIRD_OUTCOMES[index]
    assert result.exit_code == code, result.stderr
    assert {f["id"] for f in doc["findings"]} == found


def test_status_and_timing_sanitised() -> None:
    from diagkit.formats import har as har_file

    for status in (math.inf, math.nan, 10 ** 30, -3, 42, "abc", None):
        assert har_file.status_of({"response": {"status": status}}) == 0
    assert har_file.status_of({"response": {"status": "404"}}) == 404
    assert har_file.phases({"wait": math.inf, "send": math.nan, "receive": 1e300, "dns": 3}) == {"dns": 3.0}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "utf-32"])
@pytest.mark.parametrize("streamed", [False, True])
def test_utf16_and_friends(invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str,
                           streamed: bool) -> None:
    from diagkit.formats import har as har_file

    if streamed:
        monkeypatch.setattr(har_file, "STREAM_THRESHOLD", 0)
    path = tmp_path / "enc.har"
    path.write_bytes(json.dumps(_har([GOOD])).encode(encoding))
    result, doc = _run(invoke, path)
    assert result.exit_code == 0, result.stdout
    assert doc["facts"]["entries"] == 1 and doc["facts"]["streamed"] is streamed


def test_non_utf8_bytes_name_the_offset(invoke, tmp_path: Path) -> None:
    path = tmp_path / "latin1.har"
    path.write_bytes(json.dumps(_har([GOOD])).encode().replace(b"a.example", b"\xe9\xff.example"))
    result, doc = _run(invoke, path)
    assert result.exit_code == 5
    assert doc["findings"][0]["id"] == "har.invalid"
    assert "not valid UTF-8" in doc["findings"][0]["detail"] and "offset" in doc["findings"][0]["detail"]


def test_20mb_header_value(invoke, tmp_path: Path) -> None:
    entry = json.loads(json.dumps(GOOD))
    entry["request"]["headers"] = [{"name": "X-Big", "value": "A" * (20 << 20)},
                                   {"name": "Authorization", "value": "Bearer " + "B" * (20 << 20)}]
    entry["response"]["status"] = 401
    entry["response"]["headers"] = [{"name": "WWW-Authenticate", "value": "Bearer " + "realm=x, " * 100_000}]
    result, doc = _run(invoke, _write(tmp_path / "big.har", _har([entry])))
    assert result.exit_code == 3  # a 401 with a Bearer challenge
    assert {f["id"] for f in doc["findings"]} == {"har.auth.unauthorized"}
    assert "B" * 64 not in result.stdout  # the token is never echoed


def test_work_grows_linearly_with_challenge_parameters_and_header_size(invoke, tmp_path: Path) -> None:
    """Guards the test above without a stopwatch: twice the input, at most about twice the work."""

    def run(n: int) -> None:
        entry = json.loads(json.dumps(GOOD))
        entry["request"]["headers"] = [{"name": "Authorization", "value": "Bearer " + "B" * (n * 100)}]
        entry["response"]["status"] = 401
        entry["response"]["headers"] = [{"name": "WWW-Authenticate", "value": "Bearer " + "realm=x, " * n}]
        result, _ = _run(invoke, _write(tmp_path / f"big{n}.har", _har([entry])))
        assert result.exit_code == 3

    assert_linear(run, 2_000)


def test_many_tiny_entries_stream_with_bounded_memory(invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long HAR takes the streamed path: memory does not grow with the number of entries."""
    from diagkit.formats import har as har_file

    monkeypatch.setattr(har_file, "STREAM_THRESHOLD", 1 << 20)
    path = tmp_path / "many.har"
    one = json.dumps(GOOD)
    count = 15_000
    with path.open("w") as handle:
        handle.write('{"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":[')
        handle.write(",".join([one] * count))
        handle.write("]}}")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        result, doc = _run(invoke, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.stdout[-2000:]
    assert doc["facts"]["streamed"] is True and doc["facts"]["entries"] == count
    assert peak < size, (peak, size)  # a whole-file load would be several times the file size


def test_work_grows_linearly_with_the_number_of_entries(invoke, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The streamed path does a bounded amount of work per entry: twice the entries, about twice the calls."""
    from diagkit.formats import har as har_file

    monkeypatch.setattr(har_file, "STREAM_THRESHOLD", 0)
    one = json.dumps(GOOD)

    def run(count: int) -> None:
        path = tmp_path / f"many{count}.har"
        path.write_text('{"log":{"version":"1.2","creator":{"name":"t","version":"1"},"entries":['
                        + ",".join([one] * count) + "]}}")
        result, doc = _run(invoke, path)
        assert result.exit_code == 0 and doc["facts"]["streamed"] is True and doc["facts"]["entries"] == count

    assert_linear(run, 300)
