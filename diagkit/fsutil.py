"""Atomic file output: write to a temporary file beside the target, then rename.

Nothing diagkit writes is ever left half-written (CONTRACT.md), including on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from diagkit.errors import DiagkitError


def _temp_beside(target: str) -> tuple[int, str]:
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise DiagkitError(f"cannot write '{target}': it is a folder; give a file name", ref="DK102")
    if not os.path.isdir(directory):
        raise DiagkitError(f"cannot write '{target}': folder '{directory}' does not exist", ref="DK102")
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
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_writer(path, mode) as handle:
        handle.write(data)
