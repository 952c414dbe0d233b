"""Redaction on several cores gives exactly what one process gives: output bytes, report, map and errors.

Workers are forked, which diagkit only does with no other thread alive; the test process has server
threads, so these tests run `diagkit redact` in a fresh interpreter, with the size thresholds lowered so
that small fixtures take the pool path. Each run reports whether the pool really ran (a test that silently
took the serial path would prove nothing).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_redact import EMAIL, PLANTED, assert_no_planted, planted_har

_SCRIPT = """
import re, sys
from diagkit.redact import engine, gate, parallel
engine.PARALLEL_MIN_BYTES = engine.TEXT_PARALLEL_MIN_BYTES = 0
if sys.argv[1] == "canary":  # a detector the redaction pass does not apply: only the gate finds it
    gate.DETECTORS = [*gate.DETECTORS, gate.Detector("canary", "CANARY", re.compile(r"CANARY-\\d{6}"))]
if sys.argv[1] == "short":  # 24-bit pseudonyms: among 20,000 values a dozen pairs share a prefix
    from diagkit.redact import pseudonym
    pseudonym._HEX = 6
from diagkit.cli import cli
try:
    cli.main(sys.argv[2:], prog_name="diagkit")
finally:
    sys.stderr.write(f"pool: workers={parallel.LAST_RUN.workers} chunks={parallel.LAST_RUN.chunks} "
                     f"fallback={parallel.LAST_RUN.fallback!r}\\n")
"""


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.exit_code = proc.returncode
        lines = proc.stderr.splitlines()
        self.stderr = "\n".join(lines[:-1])
        workers, chunks, fallback = re.fullmatch(r"pool: workers=(\d+) chunks=(\d+) fallback='(.*)'",
                                                 lines[-1]).groups()
        self.workers, self.chunks, self.fallback = int(workers), int(chunks), fallback


def redact(*args: Any, canary: bool = False, short: bool = False) -> Run:
    mode = "canary" if canary else "short" if short else "-"
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, mode, "redact", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    return Run(proc)


def big_har(copies: int = 12) -> dict[str, Any]:
    har = planted_har()
    entries = har["log"]["entries"]
    har["log"]["entries"] = [copy.deepcopy(e) for _ in range(copies) for e in entries]
    # a value only one entry has, so pseudonyms made in different workers meet in the map
    har["log"]["entries"][-1]["request"]["headers"].append({"name": "X-Api-Key", "value": "LASTENTRYplanted99"})
    return har


def _run(src: Path, tmp_path: Path, workers: int, tag: str) -> tuple[bytes, dict, dict, Run]:
    out, report, mapping = tmp_path / f"{tag}.har", tmp_path / f"{tag}.report.json", tmp_path / f"{tag}.map.json"
    result = redact(src, "-o", out, "--report", report, "--map", mapping, "--no-ner",
                    "--key-file", tmp_path / "case.key", "--workers", workers)
    assert result.exit_code == 0, result.stderr
    return out.read_bytes(), json.loads(report.read_text()), json.loads(mapping.read_text()), result


@pytest.mark.parametrize("indent", [2, None])
def test_har_pool_output_is_byte_identical(tmp_path: Path, indent: int | None) -> None:
    src = tmp_path / "big.har"
    src.write_text(json.dumps(big_har(), indent=indent))
    serial = _run(src, tmp_path, 1, "serial")
    assert serial[3].workers == 0
    pooled = _run(src, tmp_path, 2, "pooled")
    assert pooled[3].workers == 2 and pooled[3].chunks > 2
    assert pooled[0] == serial[0]
    assert pooled[1]["locations"] == serial[1]["locations"] and pooled[1]["by_rule"] == serial[1]["by_rule"]
    assert pooled[2] == serial[2] and "LASTENTRYplanted99" in pooled[2].values()
    # the map file too, byte for byte (its entries in the order one process met the values)
    assert (tmp_path / "pooled.map.json").read_bytes() == (tmp_path / "serial.map.json").read_bytes()
    text = pooled[0].decode()
    assert_no_planted(text, [*PLANTED.values(), "LASTENTRYplanted99"])
    doc = json.loads(text)
    assert len(doc["log"]["entries"]) == len(big_har()["log"]["entries"])
    assert text.startswith('{\n  "log"') if indent else "\n" not in text.strip()
    # locations name the entry in the whole file, not in a worker's chunk
    last = len(doc["log"]["entries"]) - 1
    assert any(loc["location"].startswith(f"log.entries[{last}].") for loc in pooled[1]["locations"])


def test_nan_and_infinity_are_written_back_as_they_were(tmp_path: Path) -> None:
    """json.loads accepts NaN/Infinity (browsers have written them into timings); orjson would make them null."""
    har = big_har(copies=4)
    har["log"]["entries"][0]["time"] = float("inf")
    har["log"]["entries"][-1]["timings"]["wait"] = float("nan")
    src = tmp_path / "odd.har"
    src.write_text(json.dumps(har, indent=2))
    serial = _run(src, tmp_path, 1, "serial")
    pooled = _run(src, tmp_path, 2, "pooled")
    assert pooled[3].workers == 2 and pooled[0] == serial[0]
    text = pooled[0].decode()
    assert '"time": Infinity' in text and '"wait": NaN' in text and "null" not in text
    assert_no_planted(text, list(PLANTED.values()))


def test_pseudonyms_sharing_a_prefix_come_out_as_one_process_gives_them(tmp_path: Path) -> None:
    """Which of two values sharing a prefix gets the longer pseudonym depends on the order they are met in:
    the pool checks its answer against one process's and, where they differ, redoes the work in one."""
    har = big_har()
    for i, entry in enumerate(har["log"]["entries"]):  # 20,000 distinct values, met in every chunk
        entry["request"]["headers"] += [{"name": "X-Api-Key", "value": f"KEY{i:03d}-{k:03d}planted"}
                                        for k in range(240)]
    src = tmp_path / "many.har"
    src.write_text(json.dumps(har, indent=2))
    results = []
    for workers in (1, 2):
        out, mapping = tmp_path / f"out{workers}.har", tmp_path / f"map{workers}.json"
        result = redact(src, "-o", out, "--map", mapping, "--no-ner", "--key-file", tmp_path / "case.key",
                        "--workers", workers, short=True)
        assert result.exit_code == 0, result.stderr
        assert result.fallback == ("" if workers == 1 else "a pseudonym prefix shared by two values, met in another order")
        results.append((out.read_bytes(), json.loads(mapping.read_text())))
    assert results[0] == results[1]
    lengths = {len(p.split(":")[1].rstrip(">")) for p in results[0][1]}
    assert 6 in lengths and max(lengths) > 6  # prefixes were shared, and lengthened


def test_har_pool_leak_fails_like_one_process(tmp_path: Path) -> None:
    """A worker's leak is not lost or garbled: the same one-line error, the same location, nothing written."""
    har = big_har()
    har["log"]["entries"][-3]["response"]["content"] = {
        "mimeType": "application/json", "encoding": "base64",
        "text": base64.b64encode(b'{"debug": "internal CANARY-314159 value"}').decode()}
    src = tmp_path / "leaky.har"
    src.write_text(json.dumps(har))
    errors = []
    for workers in (2, 1):
        out = tmp_path / f"out{workers}.har"
        result = redact(src, "-o", out, "--no-ner", "--workers", workers, canary=True)
        assert result.exit_code == 1 and not out.exists()
        errors.append(result.stderr)
    assert "canary" in errors[0] and len(errors[0].splitlines()) <= 2
    assert errors[0] == errors[1]
    assert f"log.entries[{len(har['log']['entries']) - 3}].response.content.text" in errors[0]
    assert "CANARY-314159" not in errors[0]


def test_text_pool_matches_one_process(tmp_path: Path) -> None:
    lines = []
    for i in range(400):
        lines.append(f"2023-11-14T22:00:{i % 60:02d}Z INFO request {i} from 84.17.{i % 250}.9 user u{i}@corp.example")
        if i % 97 == 0:
            lines.append(f"Authorization: Bearer tok{i}planted-abcdefghijkl  call +1 415 555 01{i % 90:02d}")
    lines.append(f"last line mails {EMAIL}")
    src = tmp_path / "support.log"
    src.write_text("\n".join(lines) + "\n")
    results = []
    for workers in (1, 2):
        out, report = tmp_path / f"out{workers}.log", tmp_path / f"r{workers}.json"
        result = redact(src, "-o", out, "--report", report, "--no-ner", "--key-file", tmp_path / "case.key",
                        "--workers", workers)
        assert result.exit_code == 0, result.stderr
        assert result.workers == (2 if workers == 2 else 0)
        document = json.loads(report.read_text())
        del document["output"]
        results.append((out.read_text(), document))
    assert results[0] == results[1]
    text, report = results[1]
    assert EMAIL not in text and "tok97planted" not in text and text.endswith("\n")
    assert len(text.split("\n")) == len(lines) + 1
    # line numbers count from the top of the file in every piece
    assert {"location": f"line {len(lines)}", "rule": "email", "count": 1} in report["locations"]


def test_unchanged_har_is_written_back_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diagkit.collectors import har_file
    from diagkit.errors import RedactionError
    from diagkit.redact.engine import Redactor

    har = {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": [
        {"request": {"method": "GET", "url": "https://example.com/", "headers": []},
         "response": {"status": 200, "headers": [], "content": {"size": 0, "mimeType": "text/plain"}},
         "timings": {"wait": 1}}]}}
    src = tmp_path / "clean.har"
    raw = json.dumps(har, indent=3).encode()
    src.write_bytes(raw)
    result = Redactor(b"k" * 32, ner=False).redact_file(str(src))
    assert result.report.total == 0 and result.data == raw
    # the bytes were let go once decoded: a file that changes meanwhile is refused, never copied
    parse = har_file.parse_har_text

    def parse_then_change(text: str, path: str) -> dict:
        src.write_bytes(raw.replace(b"example.com", b"exfil.example"))
        return parse(text, path)

    monkeypatch.setattr(har_file, "parse_har_text", parse_then_change)
    with pytest.raises(RedactionError, match="changed while it was being redacted"):
        Redactor(b"k" * 32, ner=False).redact_file(str(src))


def test_json_writer_falls_back_for_what_orjson_refuses(invoke: Any, tmp_path: Path) -> None:
    """Integers beyond 64 bits and lone surrogates are valid JSON text; they are written back, not refused."""
    from diagkit.redact import jsonout

    doc = {"big": 2**70, "lone": "\ud800x", "mail": EMAIL}
    for indent in (True, False):
        assert json.loads(jsonout.encode(doc, indent)) == doc
    src = tmp_path / "odd.json"
    src.write_text('{"big": 1180591620717411303424, "lone": "\\ud800x", "mail": "' + EMAIL + '"}')
    out = tmp_path / "out.json"
    result = invoke("redact", src, "-o", out, "--no-ner")
    assert result.exit_code == 0, result.stderr
    back = json.loads(out.read_text())
    assert back["big"] == 2**70 and back["lone"] == "\ud800x" and back["mail"].startswith("<EMAIL:")


@pytest.mark.parametrize("indent", [True, False])
def test_splice_equals_encoding_the_whole_tree(indent: bool) -> None:
    from diagkit.redact import jsonout

    entries = [{"a": [1, {"b": "x\ny", "c": []}], "d": {}}, {"e": "\"quoted\""}, {"f": None}, {"g": [[]]}]
    doc = {"log": {"version": "1.2", "entries": entries, "pages": [{"id": "p"}]}, "z": 1}
    skeleton = {"log": {**doc["log"], "entries": []}, "z": 1}
    chunks = [jsonout.encode_items(entries[:1], indent, 3), jsonout.encode_items([], indent, 3),
              jsonout.encode_items(entries[1:], indent, 3)]
    import io

    handle = io.BytesIO()
    jsonout.write_spliced(skeleton, skeleton["log"]["entries"], chunks, indent, 3, handle, trailing_newline=True)
    assert handle.getvalue() == jsonout.encode(doc, indent) + b"\n"
    assert skeleton["log"]["entries"] == []  # the sentinel is taken out again


# ---------------------------------------------------------------- the pool itself, with small tasks
# These run in a fresh interpreter too (a fork here would copy the server threads' locks), with a timeout,
# so that a pool that hangs fails the test instead of the CI run.

_PARENT = os.getpid()


def _task(mode: str) -> Any:
    def work(i: int, _: int) -> tuple[Any, Any, list[Any]]:
        import time

        from diagkit.redact.report import RedactionReport

        time.sleep(0.005)  # long enough for both processes to take some
        here = os.getpid()
        if mode == "child-error" and here != _PARENT and i == 0:
            raise ValueError("secret-looking message that must not be shown")
        if mode == "parent-error" and here == _PARENT:
            raise ValueError("boom")
        if mode == "child-dies" and here != _PARENT:
            os._exit(3)
        if mode == "interrupt" and here == _PARENT:
            raise KeyboardInterrupt
        report = RedactionReport()
        report.add("rule", f"task {i}")
        return (i, here), report, []
    return work


def pool_main(mode: str) -> None:
    """In the fresh interpreter: run the pool over 40 small tasks and print what happened as JSON."""
    import multiprocessing

    from diagkit.redact import parallel
    from diagkit.redact.engine import Redactor
    from diagkit.redact.report import RedactionReport

    report = RedactionReport()
    job = parallel._Job(Redactor(b"k" * 32, ner=False), [], "x")
    outcome: dict[str, Any] = {"parent": os.getpid()}
    try:
        results = parallel._run(job, _task(mode), [(i, 0) for i in range(40)], 2, report)
        outcome["results"] = results
        outcome["locations"] = [loc["location"] for loc in report.to_dict()["locations"]]
    except (parallel.Fallback, KeyboardInterrupt) as exc:
        outcome["raised"] = type(exc).__name__
        outcome["message"] = str(exc)
    outcome["children_alive"] = len(multiprocessing.active_children())
    outcome["switch_interval"] = sys.getswitchinterval()  # shortened while the pool ran, for its readers
    print(json.dumps(outcome))


def _pool(mode: str) -> dict[str, Any]:
    code = f"from tests.test_redact_parallel import pool_main; pool_main({mode!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # workers never print, whatever happens to them
    return json.loads(proc.stdout)


def test_pool_runs_every_task_once_in_order_in_both_processes() -> None:
    outcome = _pool("ok")
    assert [i for i, _ in outcome["results"]] == list(range(40))
    pids = {pid for _, pid in outcome["results"]}
    assert outcome["parent"] in pids and len(pids) == 2  # the parent worked too, and so did one forked worker
    assert outcome["locations"] == [f"task {i}" for i in range(40)]
    assert outcome["children_alive"] == 0 and outcome["switch_interval"] == 0.005  # as it was


@pytest.mark.parametrize("mode", ["child-error", "parent-error", "child-dies"])
def test_pool_trouble_means_fallback(mode: str) -> None:
    outcome = _pool(mode)
    assert outcome["raised"] == "Fallback" and "secret-looking" not in outcome["message"]
    assert outcome["children_alive"] == 0 and outcome["switch_interval"] == 0.005


def test_pool_ctrl_c_ends_the_workers() -> None:
    outcome = _pool("interrupt")
    assert outcome["raised"] == "KeyboardInterrupt" and outcome["children_alive"] == 0


def test_pool_that_cannot_fork_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """No process can be started (a process limit, a sandbox): the pool gives up and one process does it."""
    import multiprocessing.process

    from diagkit.redact import parallel
    from diagkit.redact.engine import Redactor
    from diagkit.redact.report import RedactionReport

    def refuse(self: Any) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    job = parallel._Job(Redactor(b"k" * 32, ner=False), [], "x")
    threads = threading.active_count()
    with pytest.raises(parallel.Fallback, match="cannot start a worker"):
        parallel._run(job, _task("ok"), [(i, 0) for i in range(4)], 2, RedactionReport())
    assert parallel._JOB is None
    # the reader started for that worker saw its pipe close and ended: nothing is left waiting
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == threads


@pytest.mark.parametrize("workers", [2, 3, 8])
@pytest.mark.parametrize("text", ["", "\n", "\n\n", "one line", "a\nb\n", "\n".join(f"line {i} " + "x" * (i % 97)
                                                                                for i in range(9000)) + "\n",
                                  "no break " * 20000, "é\n" * 30000])
def test_text_pieces_claimed_from_both_ends_cover_the_text(text: str, workers: int) -> None:
    """Pieces claimed in any order from the front (workers) and the back (this process) are whole lines that,
    joined with a line break, are the text again; each knows its first line; they shrink as the work runs
    out, down to MIN_PIECE, so whoever finishes first waits for little."""
    import random
    import threading

    from diagkit.redact import parallel

    rng = random.Random(len(text) + workers)
    schedule = parallel._Spans(text, workers)
    bounds, lock, results = schedule.bounds(), threading.Lock(), {}
    sizes: dict[bool, list[int]] = {True: [], False: []}
    while True:
        from_back = rng.random() < 1 / workers
        span = schedule.claim(lock, bounds, from_back)
        if span is None:
            break
        results[span] = text[span[0]:span[1]]
        sizes[from_back].append(span[1] - span[0])
    pieces = schedule.ordered(results)
    assert pieces is not None and "\n".join(pieces) == text
    job = parallel._Job(None, [], "x", text=text, newlines=[0])
    for block in range(parallel._BLOCK, len(text) + 1, parallel._BLOCK):
        job.newlines.append(job.newlines[-1] + text.count("\n", block - parallel._BLOCK, block))
    for start, _ in sorted(results):
        assert job.first_line(start) == text[:start].count("\n")
    if len(text) > 100_000 and text.count("\n") > 1000:
        for taken in sizes.values():  # each side's pieces shrink (a line's length of slack) to the smallest
            assert all(b <= a + 200 for a, b in zip(taken, taken[1:], strict=False))
        assert max(sizes[False] + sizes[True]) <= len(text) // (2 * workers) + 200
        assert min(sizes[False] + sizes[True]) < parallel.MIN_PIECE + 200
    # a piece missing (a worker died after claiming it) is noticed
    if len(results) > 1:
        del results[sorted(results)[len(results) // 2]]
        assert schedule.ordered(results) is None


def _reference_serial_mapping(before: dict[str, str], added: list[list[tuple[str, str]]], usual: int) -> Any:
    """The pool's merge written out one journal entry at a time: what one process's Pseudonymizer would hold."""
    from diagkit.redact.pseudonym import Pseudonymizer

    serial = dict(before)
    pseudo = Pseudonymizer(b"k" * 32)
    for journal in added:
        for given, value in journal:
            if len(given) - given.index(":") - 2 == usual:
                if serial.setdefault(given, value) != value:
                    return "Fallback"
            elif serial.get(given) != value:
                colon = given.index(":")
                if pseudo.assign(given[1:colon], value, serial, known_hex=given[colon + 1:-1]) != given:
                    return "Fallback"
    return list(serial.items())


def test_pool_pseudonym_map_merge_equals_one_entry_at_a_time() -> None:
    """Journals merged a task at a time (dict operations) give the map, order and refusals that replaying every
    entry gives: usual pseudonyms, longer ones (a prefix two values share), and the same pseudonym for two
    values in two tasks."""
    import random

    from diagkit.redact import parallel
    from diagkit.redact.pseudonym import Pseudonymizer

    rng = random.Random(7)
    usual = parallel.default_hex()
    merged_as_dicts = 0
    for trial in range(300):
        hexes = ["".join(rng.choice("0123456789abcdef") for _ in range(16)) for _ in range(8)]
        def entry(h: str, long: bool = False) -> tuple[str, str]:
            return (f"<EMAIL:{h[:usual + 2] if long else h[:usual]}>", f"value-{h}")
        before = dict([entry(hexes[0])]) if trial % 3 == 0 else {}
        added = [[entry(rng.choice(hexes), long=rng.random() < 0.1) for _ in range(rng.randint(0, 6))]
                 for _ in range(rng.randint(1, 4))]
        if trial % 5 == 0 and added[0]:  # the same pseudonym handed to another value by another task
            given, _ = added[0][0]
            added[-1].append((given, "another value"))
        expected = _reference_serial_mapping(before, added, usual)
        # as the pool sends journals (a dict where it can), and every one as a list
        for form in ([parallel._merge_form(journal) for journal in added], added):
            pseudo = Pseudonymizer(b"k" * 32)
            pseudo.mapping = dict(before)
            try:
                got: Any = list(parallel._serial_mapping(pseudo, len(before), form).items())
            except parallel.Fallback:
                got = "Fallback"
            assert got == expected, (before, form)
        merged_as_dicts += sum(isinstance(parallel._merge_form(journal), dict) for journal in added)
    assert merged_as_dicts > 300  # the quick merge was tested, not only the replay
