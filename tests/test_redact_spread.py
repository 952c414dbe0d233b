"""A big HAR's entries shared with worker processes (diagkit/redact/spread.py): the copy, the report and
the pseudonym map are byte for byte those of one process, whatever happens to a worker."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from diagkit.redact import spread
from tests import redact_corpus

GIVEN, FAMILY = "Zenobia", "Quillfeather"
ECHO = "Qv7rT2mZ9xLp4sNw8kYd"  # a secret the last entry names, echoed under no name in the first


def _big_har(tmp_path: Path) -> Path:
    """The corpus's Chrome SSO capture, its entries copied 12 times (each copy's URLs told apart), between an
    entry that names a person in free text and, last, one whose token says that is a person's name: the
    name is learned in the last slice and must be hidden in the first one too."""
    doc = json.loads(redact_corpus.chrome_sso_har().data)
    base = doc["log"]["entries"]
    entries = []
    for copy in range(12):
        for entry in json.loads(json.dumps(base)):
            entry["request"]["url"] += ("&" if "?" in entry["request"]["url"] else "?") + f"copy={copy}"
            entries.append(entry)
    first = json.loads(json.dumps(base[0]))
    first["response"]["content"] = {"size": 40, "mimeType": "text/plain", "text": f"Signed in as {GIVEN} {FAMILY}, welcome; ref {ECHO}"}
    last = json.loads(json.dumps(base[0]))
    token = redact_corpus.jwt({"iss": redact_corpus.ISSUER, "given_name": GIVEN, "family_name": FAMILY, "sub": "u-1"})
    last["response"]["content"] = {"size": 80, "mimeType": "application/json", "text": json.dumps({"id_token": token,
                                                                                        "session_token": ECHO})}
    doc["log"]["entries"] = [first, *entries, last]
    path = tmp_path / "big.har"
    path.write_text(json.dumps(doc, indent=2))
    return path


def _redact(invoke, tmp_path: Path, har: Path, tag: str, *extra: str, ner: bool = False) -> tuple[int, str, bytes, bytes, bytes]:
    out, report, mapping = tmp_path / f"{tag}.har", tmp_path / f"{tag}.report.json", tmp_path / f"{tag}.map.json"
    result = invoke("redact", har, "-o", out, "--report", report, "--map", mapping, "--key-file",
                    tmp_path / "case.key", *([] if ner else ["--no-ner"]), *extra)
    read = [p.read_bytes() if p.exists() else b"" for p in (out, report, mapping)]
    read[1] = read[1].replace(str(out).encode(), b"OUT")  # the report names the copy it describes
    return result.exit_code, result.stderr, read[0], read[1], read[2]


@pytest.fixture
def spread_on(monkeypatch: pytest.MonkeyPatch):
    """Returns a function that turns the sharing on for any HAR (two processes), or off."""
    def switch(on: bool) -> None:
        monkeypatch.setattr(spread, "MIN_ENTRIES", 1 if on else 10**9)
        monkeypatch.setattr(spread, "MIN_CHARS", 0)
        monkeypatch.setattr(spread, "workers", lambda: 2)
    return switch


def _stand_in(monkeypatch: pytest.MonkeyPatch, function) -> None:
    """`function` in place of the worker function; a job names it by module and name, so it takes both."""
    function.__module__, function.__qualname__ = spread._worker.__module__, spread._worker.__qualname__
    monkeypatch.setattr(spread, "_worker", function)


def _one_process_then_workers(invoke, tmp_path: Path, har: Path, spread_on, ner: bool = False) -> tuple:
    """The capture redacted in one process, then shared with workers: both succeed and write the same
    copy, report and map."""
    spread_on(False)
    serial = _redact(invoke, tmp_path, har, "serial", ner=ner)
    spread_on(True)
    shared = _redact(invoke, tmp_path, har, "shared", ner=ner)
    assert serial[0] == shared[0] == 0
    assert shared[2:] == serial[2:]
    return serial, shared


def test_workers_give_the_copy_report_and_map_of_one_process(invoke, tmp_path: Path, spread_on,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pids = tmp_path / "pids"
    worker = spread._worker

    def recording(job: tuple) -> tuple:
        with open(pids, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return worker(job)
    _stand_in(monkeypatch, recording)
    _, shared = _one_process_then_workers(invoke, tmp_path, _big_har(tmp_path), spread_on)
    assert len(pids.read_text().split()) == 2  # both slices went to workers, none was walked here
    assert str(os.getpid()) not in pids.read_text().split()
    out = shared[2].decode()
    assert GIVEN not in out and FAMILY not in out  # learned in the last slice, hidden in the first
    assert ECHO not in out  # a secret found in the last slice, hidden where the first echoes it
    assert json.loads(shared[3])["by_rule"]["learned_name"] >= 2
    assert json.loads(shared[3])["by_rule"]["echo"] == 1


def test_with_the_ner_model_workers_give_the_copy_of_one_process(invoke, tmp_path: Path, spread_on) -> None:
    """The model is loaded before the fork and shared; names it finds in each slice are the same."""
    from diagkit.redact.engine import ner_available

    assert ner_available()  # the dev extra installs it
    doc = json.loads(_big_har(tmp_path).read_text())
    doc["log"]["entries"][-2]["response"]["content"] = {"size": 60, "mimeType": "text/plain",
                                                        "text": "Ticket raised by Margaret Holloway from Leeds"}
    har = tmp_path / "ner.har"
    har.write_text(json.dumps(doc))
    _, shared = _one_process_then_workers(invoke, tmp_path, har, spread_on, ner=True)
    assert b"Holloway" not in shared[2] and json.loads(shared[3])["names_detected"] is True


def test_a_pseudonym_prefix_taken_in_an_earlier_slice_is_settled_as_in_one_process(
        invoke, tmp_path: Path, spread_on, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one hex digit, values collide in every slice: each slice is walked again here, after the
    earlier ones, so the later value gets the longer pseudonym exactly as in one process."""
    from diagkit.redact import pseudonym

    monkeypatch.setattr(pseudonym, "_HEX", 1)  # a forked worker inherits it
    serial, _ = _one_process_then_workers(invoke, tmp_path, _big_har(tmp_path), spread_on)
    assert len(json.loads(serial[4])) > 16  # collisions happened: some pseudonyms are longer than one digit


def test_a_shared_har_with_nothing_to_hide_is_written_again_with_the_same_content(invoke, tmp_path: Path,
                                                                                    spread_on) -> None:
    """A big HAR's bytes are let go once it is parsed: when nothing needed hiding, its content is written again
    (the same JSON) rather than its bytes copied; a small one is still copied byte for byte."""
    entry = {"startedDateTime": "2030-01-01T00:00:00.000Z", "time": 1.5,
             "request": {"method": "GET", "url": "https://www.example.test/static/app.js", "headers": [],
                         "queryString": [], "cookies": []},
             "response": {"status": 200, "headers": [{"name": "content-type", "value": "text/javascript"}],
                          "content": {"size": 12, "mimeType": "text/javascript", "text": "console.log()"}}}
    har = tmp_path / "plain.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": [entry] * 40}}, indent=1))
    for on in (False, True):
        spread_on(on)
        code, stderr, out, report, _ = _redact(invoke, tmp_path, har, f"plain-{on}")
        assert code == 0, stderr
        assert json.loads(out) == json.loads(har.read_text()) and json.loads(report)["total"] == 0
        assert (out == har.read_bytes()) is not on


def test_a_worker_that_dies_leaves_its_slice_to_this_process(invoke, tmp_path: Path, spread_on,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def dying(job: tuple) -> tuple:
        os._exit(9)  # as the kernel's out-of-memory killer would end it
    _stand_in(monkeypatch, dying)
    _one_process_then_workers(invoke, tmp_path, _big_har(tmp_path), spread_on)


def test_a_leak_found_in_a_worker_is_refused_with_its_place_and_hint(invoke, tmp_path: Path, spread_on,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate runs in the worker on its slice; its refusal crosses back whole (message, place, hint) and
    nothing is written, exactly as in one process."""
    from diagkit.redact import decide

    email = "leaky.person@corp-example.test"
    doc = json.loads(_big_har(tmp_path).read_text())
    doc["log"]["entries"][-3]["response"]["content"] = {"size": 9, "mimeType": "text/plain", "text": f"mail {email}"}
    har = tmp_path / "leaky.har"
    har.write_text(json.dumps(doc))
    text = decide.Redaction.text

    def blind(self, text_in: str, *args, **kwargs) -> str:  # a redactor that misses this one value
        return text_in if email in text_in else text(self, text_in, *args, **kwargs)
    monkeypatch.setattr(decide.Redaction, "text", blind)
    results = []
    for on in (False, True):
        spread_on(on)
        results.append(_redact(invoke, tmp_path, har, f"leak-{on}"))
    for code, stderr, out, _, _ in results:
        assert code == 1
        assert out == b""
        assert "error[DK501]" in stderr and "a value matching 'email'" in stderr
        assert f"log.entries[{len(doc['log']['entries']) - 3}].response.content.text" in stderr
        assert "hint: redact that field by hand" in stderr
    assert results[0][1] == results[1][1]


def test_a_process_with_other_threads_is_not_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    """fork() copies only the calling thread: a lock another thread holds would never be released in the
    child, so such a process redacts alone."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert spread.workers() == 1
    finally:
        stop.set()
        other.join()
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # this test process may run local servers' threads
    assert spread.workers() == min(len(os.sched_getaffinity(0)), spread.MAX_WORKERS)
