"""Atomic file output: write to a temporary file beside the target, then rename.

Nothing diagkit writes is ever left half-written (CONTRACT.md), including on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

from diagkit.errors import DiagkitError


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Yield a binary file; on success it replaces `path`, on any exception it disappears."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise DiagkitError(f"cannot write '{target}': it is a folder; give a file name", ref="DK102")
    if not os.path.isdir(directory):
        raise DiagkitError(f"cannot write '{target}': folder '{directory}' does not exist", ref="DK102")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".diagkit-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise DiagkitError(f"cannot write '{target}': {exc.strerror or exc}", ref="DK102") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o644) -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_writer(path, mode) as handle:
        handle.write(data)
