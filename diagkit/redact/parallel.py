"""Large inputs on every core: chunks of HAR entries (redacted, gated and encoded) or pieces of a long
text (whole lines) are shared between this process and forked workers.

The parsed HAR or the text reaches the workers by fork (copy on write, with the garbage collector's
view of it frozen so that it is not copied page by page): tasks are claimed through a shared pair of
bounds (chunk numbers, or character offsets for text), and only encoded JSON or redacted text comes
back, so no tree is ever pickled. Workers use the run's Redactor as it was
at the fork, so pseudonyms are those a single process gives; reports and pseudonym maps are merged
back in order. Anything unusual (a worker error, a leak, a pseudonym collision between workers) makes
the caller redo the work in one process, which raises the same error a serial run would.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from diagkit.gcpause import gc_paused
from diagkit.redact import jsonout
from diagkit.redact.pseudonym import default_hex
from diagkit.redact.report import RedactionReport

_ENTRIES_LOC = ((None, "log"), "entries")
CHUNKS_PER_WORKER = 6  # entries and lines differ in cost: several chunks a worker keep every core busy to the end
MIN_PIECE = 8192  # characters: the smallest text piece claimed (a few milliseconds of work)
READER_SWITCH_INTERVAL = 0.0005  # seconds: how soon a reader waiting for the GIL gets it, while the pool runs
PIPE_BYTES = 1 << 20  # a result pipe's size where Linux allows it (1 MB for any user by default; 64 KB if not)
_BLOCK = 65536  # characters a line count is kept for (a piece's first line number counts from the last one)


@dataclass
class _Job:
    redactor: Any
    items: list[Any]  # HAR entries
    name: str
    indent: bool = False  # HAR: the output's layout
    nonfinite: bool = False  # HAR: NaN/Infinity in the input, written back as they were
    text: str = ""  # text: all of it (pieces are spans of it, claimed as the work goes)
    newlines: list[int] = field(default_factory=list)  # text: line breaks before each _BLOCK characters
    parent: int = field(default_factory=os.getpid)

    def first_line(self, start: int) -> int:
        """The 0-based number of the line the text's character `start` is on."""
        block = start // _BLOCK
        return self.newlines[block] + self.text.count("\n", block * _BLOCK, start)


@dataclass
class PoolStats:
    """What the last pool run measured: for bench/redact_bench.py (memory the workers held privately)."""

    workers: int = 0
    chunks: int = 0
    worker_private_kb: list[int] = field(default_factory=list)  # per worker, what it held privately when done
    fallback: str = ""  # why the last pool gave up, if it did


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
    # them holds would stay held in the child forever (the pool's own readers are started knowing what they
    # hold: nothing). Linux only: on macOS a process that has touched system frameworks (proxy lookup does)
    # can crash in a forked child, and Windows has no fork.
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _widen(conn: Any) -> None:
    """A worker's result pipe made PIPE_BYTES large, where the system allows: a result that fits is written at
    once (the worker goes on) and read in one go (the reader needs the GIL once, not once for each 64 KB)."""
    import fcntl  # the pool runs on Linux only (can_fork): not imported where there is no fcntl

    size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if size is not None:
        with contextlib.suppress(OSError):  # above the system's limit for this user: the pipe stays as it is
            fcntl.fcntl(conn.fileno(), size, PIPE_BYTES)


def _private_kb() -> int:
    try:
        with open("/proc/self/smaps_rollup") as handle:
            return sum(int(line.split()[1]) for line in handle if line.startswith(("Private_Clean", "Private_Dirty")))
    except OSError:
        return 0


# output, report, the pseudonyms handed out (as _merge_form gives them)
_Result = tuple[Any, RedactionReport, "dict[str, str] | list[tuple[str, str]]"]


def _begin() -> tuple[_Job, Any, RedactionReport]:
    """The job, its redactor (journaling the pseudonyms it hands out) and a report for the task."""
    job = _JOB
    assert job is not None
    job.redactor._pseudo.journal = []
    return job, job.redactor, job.redactor.new_report()


def _finish(out: Any, report: RedactionReport, redactor: Any) -> _Result:
    """A task's result: its output, report, every pseudonym it handed out in order."""
    new, redactor._pseudo.journal = redactor._pseudo.journal, None
    assert _JOB is not None and new is not None
    if os.getpid() != _JOB.parent and report.tracks_locations:
        # JSON paths go back to the parent as strings: built here, on this core, and far quicker to send
        # than the linked tuples they are made of
        report.by_location = dict(report.locations())
    return out, report, _merge_form(new)


def _merge_form(journal: list[tuple[str, str]]) -> dict[str, str] | list[tuple[str, str]]:
    """A task's journal as _serial_mapping merges it, made in the task's own process (the merge is the pool's
    last step, on one core): when it holds no pseudonym longer than the usual and is a mapping (within one
    process a pseudonym is only ever one value's), a dict of first sightings in order, merged by dict
    operations; otherwise the journal, replayed one entry at a time."""
    given_to = dict(journal)
    longer = re.compile(f":[0-9a-f]{{{default_hex() + 1}}}")  # more hex than the usual
    if len(given_to) == len(set(journal)) and not longer.search("\n".join(given_to)):
        return given_to
    return journal


def _work_entries(start: int, end: int) -> _Result:
    from diagkit.redact.gate import Gate

    job, redactor, report = _begin()
    scrubber = redactor._scrubber(report, job.name)
    gate = Gate(redactor._pseudo, report, job.name, redactor._detectors)
    out = []
    with gc_paused():
        for i in range(start, end):
            loc = (_ENTRIES_LOC, i)
            out.append(gate.tree(scrubber.walk(job.items[i], loc), loc))
    return _finish(jsonout.encode_items(out, job.indent, 3, job.nonfinite), report, redactor)


def _work_text(start: int, end: int) -> _Result:
    job, redactor, report = _begin()
    with gc_paused():
        out = redactor._lines(job.text[start:end], report, job.name, job.first_line(start))
    return _finish(out, report, redactor)


class _Tasks:
    """Tasks made beforehand (ranges of HAR entries), claimed one at a time: workers take them from the front
    of the list, this process from the back."""

    def __init__(self, tasks: list[tuple[int, int]]) -> None:
        self.tasks = tasks

    def bounds(self) -> list[int]:
        return [0, len(self.tasks)]

    def claim(self, lock: Any, bounds: Any, from_back: bool) -> tuple[int, int] | None:
        """The next task nobody has (its arguments, which also name its result)."""
        with lock:
            if bounds[0] >= bounds[1]:
                return None
            if from_back:
                bounds[1] -= 1
                return self.tasks[int(bounds[1])]
            bounds[0] += 1
            return self.tasks[int(bounds[0] - 1)]

    def ordered(self, results: dict[Any, Any]) -> list[Any] | None:
        """Every task's result in order, or None when one is missing."""
        if any(task not in results for task in self.tasks):
            return None
        return [results[task] for task in self.tasks]


class _Spans:
    """A text claimed a span of whole lines at a time: workers from the front, this process from the back,
    each claim 1/(2 × processes) of what is left (guided self-scheduling, from both ends). Pieces shrink as
    the work runs out, wherever the processes meet: a forked worker runs slower at first (it copies every
    page it writes to), and with pieces cut beforehand the meeting point moved into large ones, leaving one
    process waiting for the other's last piece."""

    def __init__(self, text: str, workers: int) -> None:
        self.text = text
        self.workers = workers

    def bounds(self) -> list[int]:
        return [0, len(self.text)]  # what is left: from a line's start to a line's end (a break or the end)

    def claim(self, lock: Any, bounds: Any, from_back: bool) -> tuple[int, int] | None:
        """(start, end) of the next piece: whole lines, its neighbours' line break not in it."""
        text = self.text
        with lock:
            front, back = int(bounds[0]), int(bounds[1])
            if front > back:
                return None
            size = max(MIN_PIECE, (back - front) // (2 * self.workers))
            if from_back:
                cut = text.rfind("\n", front, max(front, back - size))
                start = front if cut == -1 else cut + 1
                bounds[1] = start - 1
                return start, back
            cut = text.find("\n", min(back, front + size), back)
            end = back if cut == -1 else cut
            bounds[0] = end + 1
            return front, end

    def ordered(self, results: dict[tuple[int, int], Any]) -> list[Any] | None:
        """The pieces' results in text order, or None unless they cover the text (a line break between each)."""
        spans = sorted(results)
        expected = 0
        for start, end in spans:
            if start != expected:
                return None
            expected = end + 1
        return [results[span] for span in spans] if expected == len(self.text) + 1 else None


def _worker(work: Any, schedule: Any, lock: Any, bounds: Any, conn: Any) -> None:
    """A forked worker: claims tasks until none are left and sends back (task, result) for each.

    Nothing it meets is printed (multiprocessing would print a traceback, and a message could quote
    input): any failure goes back as an exception type name, and the parent redoes the work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends the workers
    try:
        while (task := schedule.claim(lock, bounds, from_back=False)) is not None:
            try:
                result = work(*task)
            except Exception as exc:  # noqa: BLE001
                conn.send((task, None, type(exc).__name__))
                return
            conn.send((task, result, None))
        # its private memory once, when it is done: reading smaps_rollup walks the page tables (2-3 ms)
        conn.send((_MEMORY, (os.getpid(), _private_kb()), None))
    except BaseException as exc:  # noqa: BLE001 - a result that cannot be sent, a broken pipe
        with contextlib.suppress(BaseException):
            conn.send((-1, None, type(exc).__name__))
    finally:
        with contextlib.suppress(OSError):
            conn.close()


_MEMORY = -2  # the index of a worker's last message: (pid, its private memory in kB)


def _drain(conn: Any, results: dict[Any, Any], failed: list[str], memory: dict[int, int]) -> None:
    """Reads one worker's results as they come (a worker blocks once its pipe is full)."""
    while True:
        try:
            task, result, error = conn.recv()
        except (EOFError, OSError):
            return
        if error is not None:
            failed.append(error)
        elif task == _MEMORY:
            memory[result[0]] = result[1]
        else:
            results[task] = result


def _run(job: _Job, work: Any, tasks: list[tuple[int, int]] | _Spans, workers: int,
         report: RedactionReport) -> list[Any]:
    """_pool(), leaving the redactor as it was when the pool gives up: the tasks this process did must
    not shape the serial run that follows (its pseudonym map, and strings cached with their pseudonyms)."""
    redactor = job.redactor
    caches = [redactor._pseudo.mapping, redactor._pseudo._cache]
    strings = getattr(redactor, "_string_cache", None)  # made by the first Scrubber, possibly still empty
    if strings is not None:
        caches.append(strings)
    sizes = [len(c) for c in caches]
    try:
        return _pool(job, work, _Tasks(tasks) if isinstance(tasks, list) else tasks, workers, report)
    except Fallback as exc:
        LAST_RUN.fallback = str(exc)
        for cache, size in zip(caches, sizes, strict=True):
            for key in list(itertools.islice(cache, size, None)):  # entries are only ever added
                del cache[key]
        raise


def _pool(job: _Job, work: Any, schedule: _Tasks | _Spans, workers: int, report: RedactionReport) -> list[Any]:
    """Each task's first result, in order; reports and pseudonym maps merged. Fallback on any trouble.

    `workers` counts this process: it forks workers - 1 and works too, taking tasks from the back (of the
    list, or of the text) while the workers take them from the front (an idle parent would waste a core,
    and unlike a forked worker it does not first pay for copying the pages it touches)."""
    global _JOB
    _JOB = job
    before = len(job.redactor._pseudo.mapping)
    ctx = multiprocessing.get_context("fork")
    lock = ctx.Lock()
    bounds = ctx.RawArray("q", schedule.bounds())
    results: dict[Any, Any] = {}
    failed: list[str] = []
    memory: dict[int, int] = {}  # worker pid -> its private memory (kB) when it was done
    procs, readers = [], []
    # objects that exist now are never scanned by the collector, in the parent or the workers: a collection
    # in a worker would otherwise touch (and so copy) every page of the parent's heap
    gc.freeze()
    # A reader needs the GIL after each read of its pipe, and this process's own work holds it: by default a
    # waiting thread gets it after 5 ms, and a worker whose result does not fit the pipe waits that long for
    # each pipe-full (a HAR chunk is megabytes: hundreds of milliseconds a chunk, measured). Readers are
    # idle but when a worker has sent something, so the shorter interval costs nothing meanwhile.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, READER_SWITCH_INTERVAL))
    try:
        for _ in range(workers - 1):
            try:
                receive, send = ctx.Pipe(duplex=False)
            except OSError as exc:  # no more file descriptors: one process does it all
                raise Fallback(f"cannot start a worker ({exc.strerror or type(exc).__name__})") from None
            _widen(receive)
            # The reader starts before the fork: started after it, it took 3-7 ms (every page it touched was
            # now shared with the child) where this process should be working. It is then blocked reading the
            # pipe, holding no lock, so the child (which has only the forking thread) inherits none held.
            readers.append(threading.Thread(target=_drain, args=(receive, results, failed, memory), daemon=True))
            readers[-1].start()
            try:
                proc = ctx.Process(target=_worker, args=(work, schedule, lock, bounds, send), daemon=True)
                proc.start()
            except OSError as exc:  # no more processes: one process does it all
                raise Fallback(f"cannot start a worker ({exc.strerror or type(exc).__name__})") from None
            finally:
                send.close()  # this process never writes: the reader sees the end once the worker's copy closes
            procs.append(proc)
        while (task := schedule.claim(lock, bounds, from_back=True)) is not None:
            try:
                results[task] = work(*task)
            except Exception as exc:  # noqa: BLE001 - the serial run raises it again, with its own message
                raise Fallback(type(exc).__name__) from None
        for reader in readers:
            reader.join()
        done = schedule.ordered(results)
        if failed or done is None:  # a worker failed, or died without saying why
            raise Fallback(failed[0] if failed else "a worker ended early")
        # before the workers are joined: they have sent everything and are exiting meanwhile (unmapping a
        # process takes a few milliseconds that need not be waited for first)
        pseudo = job.redactor._pseudo
        serial = _serial_mapping(pseudo, before, [r[2] for r in done])
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join()
        _JOB = None
        gc.unfreeze()
        sys.setswitchinterval(interval)
    for _, part, _ in done:
        report.merge(part)
    pseudo.mapping.clear()
    pseudo.mapping.update(serial)
    # this process's own memory is its peak RSS already; a worker's is what it held privately when done
    LAST_RUN.workers, LAST_RUN.chunks, LAST_RUN.worker_private_kb = workers, len(done), list(memory.values())
    return [r[0] for r in done]


def _serial_mapping(pseudo: Any, before: int,
                    added: list[dict[str, str] | list[tuple[str, str]]]) -> dict[str, str]:
    """The pseudonym map one process would have made, checked against what each task gave its values.

    Tasks ran in different processes and orders, so where two values share a pseudonym prefix, which one
    got the longer pseudonym may differ from one process's answer; replaying every task's journal in task
    order (the order one process meets the values in) says so. Fallback then: the output holds the other
    answer. The map comes out in that order too."""
    serial = dict(itertools.islice(pseudo.mapping.items(), before))  # what every process started from
    known = {(given, value) for given, value in serial.items()}
    usual = default_hex()
    for journal in added:
        if isinstance(journal, dict):
            # usual pseudonyms only (_merge_form): only one another task (or the start) holds too can disagree
            if any(serial[given] != journal[given] for given in journal.keys() & serial.keys()):
                raise Fallback("a pseudonym prefix shared by two values, met in another order")
            serial.update(journal)
            continue
        for given, value in journal:
            colon = given.index(":")
            if len(given) - colon - 2 == usual:
                # a pseudonym of the usual length is what one process gives exactly when no other value holds
                # it yet (what assign() decides, without its call for each of a dense log's many values)
                holder = serial.setdefault(given, value)
                if holder != value:
                    raise Fallback("a pseudonym prefix shared by two values, met in another order")
                continue
            if (given, value) in known:
                continue
            # the digest's hex is in the pseudonym given: no HMAC is computed again here
            if pseudo.assign(given[1:colon], value, serial, known_hex=given[colon + 1:-1]) != given:
                raise Fallback("a pseudonym prefix shared by two values, met in another order")
            known.add((given, value))
    return serial


def redact_entries(redactor: Any, entries: list[Any], report: RedactionReport, workers: int, name: str,
                   indent: bool, nonfinite: bool = False) -> list[bytes]:
    """The encoded entries (chunks for jsonout.write_spliced), in order; Fallback when only a serial
    run can give the right answer or error."""
    chunk = max(1, -(-len(entries) // (workers * CHUNKS_PER_WORKER)))
    tasks = [(i, min(i + chunk, len(entries))) for i in range(0, len(entries), chunk)]
    job = _Job(redactor, entries, name, indent=indent, nonfinite=nonfinite)
    return _run(job, _work_entries, tasks, workers, report)


def redact_text(redactor: Any, text: str, report: RedactionReport, workers: int, name: str) -> str:
    """A long text redacted in pieces of whole lines (every text rule is line-local once PEM blocks are
    done, which the caller does first), joined again; Fallback as for entries."""
    newlines = [0]  # line breaks before each block, for a piece's first line number
    for block in range(_BLOCK, len(text) + 1, _BLOCK):
        newlines.append(newlines[-1] + text.count("\n", block - _BLOCK, block))
    job = _Job(redactor, [], name, text=text, newlines=newlines)
    return "\n".join(_run(job, _work_text, _Spans(text, workers), workers, report))
