"""Output files: checked before any work starts, written to a temporary file beside the target, then renamed.

Nothing diagkit writes is ever left half-written, including on Ctrl-C. An output that exists and is not a
regular file (a device, a FIFO, a symlink, a folder) is refused, never replaced. `-` is standard output.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import IO

from diagkit.errors import DiagkitError
from diagkit.visible import visible

STDOUT = "-"


def check_output(target: str | os.PathLike[str], what: str = "output", inputs: Sequence[str] = ()) -> None:
    """Refuse an output path diagkit must not write: called before any work starts, and again just
    before the rename. `-` (standard output) always passes. An output that is one of `inputs` is refused:
    diagkit never overwrites what it reads."""
    target = os.fspath(target)
    if target == STDOUT:
        return
    for source in inputs:
        if source != STDOUT and os.path.exists(target) and os.path.exists(source) and os.path.samefile(target, source):
            raise DiagkitError(f"{what} '{visible(target)}' is the input file '{visible(source)}'; diagkit never "
                               f"overwrites its input", ref="DK102")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise DiagkitError(f"cannot write {what} '{visible(target)}': {exc.strerror or exc}", ref="DK102") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a symbolic link" if stat.S_ISLNK(mode)
                else "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise DiagkitError(f"cannot write {what} '{visible(target)}': it is {kind}, and diagkit only replaces "
                           "regular files",
                           ref="DK102", hint="give a new file name, or '-' for standard output")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise DiagkitError(f"cannot write {what} '{visible(target)}': folder '{visible(directory)}' does not exist",
                           ref="DK102")


def _temp_beside(target: str) -> tuple[int, str]:
    check_output(target)
    directory = os.path.dirname(os.path.abspath(target))
    try:
        return tempfile.mkstemp(prefix=".diagkit-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DiagkitError(f"cannot write '{target}': {exc.strerror or exc}", ref="DK102") from None


@contextlib.contextmanager
def atomic_files() -> Iterator[Callable[..., IO[bytes]]]:
    """Several outputs that appear together or not at all: `open(path, mode=0o644)` gives a binary file;
    all are flushed to disk first and renamed only at the end, so a Ctrl-C or a failure on any of them
    (e.g. an unwritable --map folder) leaves none behind."""
    opened: list[tuple[str, str, IO[bytes]]] = []

    def open_(path: str | os.PathLike[str], mode: int = 0o644) -> IO[bytes]:
        target = os.fspath(path)
        fd, tmp = _temp_beside(target)
        try:
            os.fchmod(fd, mode)
            handle = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        opened.append((tmp, target, handle))
        return handle

    try:
        yield open_
        for _, _, handle in opened:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        for _, target, _ in opened:
            check_output(target)  # nothing turned it into a device or a link while we worked
        for tmp, target, _ in opened:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _, handle in opened:
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Yield a binary file; on success it replaces `path`, on any exception it disappears."""
    with atomic_files() as open_:
        yield open_(path, mode)


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o644) -> None:
    """Write `data` to `path` atomically, or to standard output when `path` is `-`."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if os.fspath(path) == STDOUT:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with atomic_writer(path, mode) as handle:
        handle.write(data)
