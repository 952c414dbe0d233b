"""diagkit's errors: a short reference id, a one-line message that names the input, and a hint.

Styled after pip's diagnostics. Messages must never contain secret values: callers name the file or
target and the problem, not the content.
"""

from __future__ import annotations

from collections.abc import Callable


class DiagkitError(Exception):
    """Base class: anything diagkit reports to the user as `error: ...` with exit status 1."""

    ref = "DK000"
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, ref: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        if ref:
            self.ref = ref

    def __reduce__(self) -> tuple:
        """Pickled with its hint and reference (a worker process hands an error back: redact/spread.py)."""
        return (self.__class__, (self.message,), {"hint": self.hint, "ref": self.ref})

    def one_line(self, mask: Callable[[str], str] | None = None) -> str:
        """`error[REF]: message (hint: ...)`. `mask` is applied to the message only: a hint is diagkit's
        own text (often an example command), never user data, so it is shown as written."""
        text = " ".join(self.message.split())
        if mask is not None:
            text = mask(text)
        line = f"error[{self.ref}]: {text}"
        if self.hint:
            line += f" (hint: {' '.join(self.hint.split())})"
        return line


class UsageError(DiagkitError):
    """The command line itself is wrong (an impossible port, an unknown answer name): exit status 2,
    as the command line's own usage errors."""

    ref = "DK010"


class InputError(DiagkitError):
    """A file or value given on the command line is missing, unreadable or malformed."""

    ref = "DK100"


class InputNotFound(InputError):
    ref = "DK101"
    default_hint = "check the path; relative paths are taken from the current directory"


class InputFormatError(InputError):
    ref = "DK102"


class KeyFileError(DiagkitError):
    ref = "DK300"


class PacketError(DiagkitError):
    """A packet is corrupt, tampered with, unsigned, untrusted or unsafe."""

    ref = "DK400"


class RedactionError(DiagkitError):
    ref = "DK500"


class LeakDetected(RedactionError):
    """The post-redaction scan still found something it could not redact; no output was written."""

    ref = "DK501"


class ChecklistError(DiagkitError):
    ref = "DK600"


class PluginError(DiagkitError):
    ref = "DK700"


def read_input_bytes(path: str, what: str = "file", *, limit: int | None = None, stdin: bool = True) -> bytes:
    """Read a user-supplied file, turning OS errors into one-line InputErrors naming the path.

    "-" means standard input unless `stdin` is False.
    """
    import os

    if path == "-" and stdin:
        import sys

        # The same bound as for a file: `cat /dev/zero | diagkit ...` must not eat all memory.
        data = sys.stdin.buffer.read() if limit is None else sys.stdin.buffer.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise InputError(f"{what} on stdin is larger than the {limit} byte limit")
        return data
    try:
        if os.path.isdir(path):
            raise InputError(f"{what} '{path}' is a directory, not a file")
        with open(path, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    except FileNotFoundError:
        raise InputNotFound(f"{what} '{path}' does not exist") from None
    except PermissionError:
        raise InputError(f"{what} '{path}' cannot be read: permission denied") from None
    except OSError as exc:
        raise InputError(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from None
    if limit is not None and len(data) > limit:
        raise InputError(f"{what} '{path}' is larger than the {limit} byte limit")
    return data
