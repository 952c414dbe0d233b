"""Large HARs on every core: entries are redacted, gated and encoded in forked worker processes.

The parsed HAR is handed to the workers by fork (copy on write, with the garbage collector's view of
it frozen so that it is not copied page by page), so only entry ranges go out and only encoded JSON
comes back: no tree is ever pickled. Workers use the run's Redactor as it was at the fork, so
pseudonyms are those a single process gives; their reports and pseudonym maps are merged back in
order. Anything unusual (a worker error, a leak, a pseudonym collision between workers) makes the
caller redo the work in one process, which raises the same error a serial run would.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from diagkit.redact import jsonout
from diagkit.redact.report import RedactionReport

_ENTRIES_LOC = ((None, "log"), "entries")
CHUNKS_PER_WORKER = 6  # entries differ in size: several chunks a worker keep both cores busy to the end


@dataclass
class _Job:
    redactor: Any
    entries: list[Any]
    name: str
    indent: bool


@dataclass
class PoolStats:
    """What the last pool run measured: for bench/redact_bench.py (memory the workers held privately)."""

    workers: int = 0
    chunks: int = 0
    worker_private_kb: list[int] = field(default_factory=list)  # per worker, its largest reading


LAST_RUN = PoolStats()
_JOB: _Job | None = None


class Fallback(Exception):
    """The pool could not give the serial result; redo the work in one process."""


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    # fork copies only the calling thread: with other threads alive (collect's probe pool) a lock one of
    # them holds would stay held in the child forever
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _private_kb() -> int:
    try:
        with open("/proc/self/smaps_rollup") as handle:
            return sum(int(line.split()[1]) for line in handle if line.startswith(("Private_Clean", "Private_Dirty")))
    except OSError:
        return 0


def _work(start: int, end: int) -> tuple[bytes, dict[tuple[str, str], int], list[tuple[str, str]], tuple[int, int]]:
    from diagkit.redact.gate import Gate

    job = _JOB
    assert job is not None
    redactor = job.redactor
    known = len(redactor._pseudo.mapping)
    report = RedactionReport()
    scrubber = redactor._scrubber(report, job.name)
    gate = Gate(redactor._pseudo, report, job.name, redactor._detectors)
    out = []
    gc.disable()  # the walk makes no reference cycles; collections would only rescan what it builds
    try:
        for i in range(start, end):
            loc = (_ENTRIES_LOC, i)
            out.append(gate.tree(scrubber.walk(job.entries[i], loc), loc))
    finally:
        gc.enable()
    encoded = jsonout.encode_items(out, job.indent, 3)
    new = list(redactor._pseudo.mapping.items())[known:]
    return encoded, report.by_location, new, (os.getpid(), _private_kb())


def redact_entries(redactor: Any, entries: list[Any], report: RedactionReport, workers: int, name: str,
                   indent: bool) -> list[bytes]:
    """The encoded entries (chunks for jsonout.write_spliced), in order; Fallback when only a serial
    run can give the right answer or error."""
    global _JOB
    chunk = max(1, -(-len(entries) // (workers * CHUNKS_PER_WORKER)))
    ranges = [(i, min(i + chunk, len(entries))) for i in range(0, len(entries), chunk)]
    _JOB = _Job(redactor, entries, name, indent)
    gc.collect()
    gc.freeze()  # objects that exist now are never scanned by the collector, in the parent or the workers
    results = []
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        futures = [pool.submit(_work, start, end) for start, end in ranges]
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - any worker failure: the serial run says what it is
                raise Fallback(type(exc).__name__) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _JOB = None
        gc.unfreeze()
    mapping = redactor._pseudo.mapping
    merged: dict[str, str] = {}
    for _, _, new, _ in results:
        for pseudo, value in new:
            if mapping.get(pseudo, value) != value or merged.setdefault(pseudo, value) != value:
                raise Fallback("pseudonym collision between workers")
    chunks = []
    for encoded, by_location, _, _ in results:
        for (location, rule), count in by_location.items():
            report.add(rule, location, count)
        chunks.append(encoded)
    redactor._pseudo.merge(merged)
    LAST_RUN.workers, LAST_RUN.chunks = workers, len(ranges)
    peaks: dict[int, int] = {}
    for _, _, _, (pid, kb) in results:
        peaks[pid] = max(peaks.get(pid, 0), kb)
    LAST_RUN.worker_private_kb = list(peaks.values())
    return chunks
