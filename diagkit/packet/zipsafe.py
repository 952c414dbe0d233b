"""Writing reproducible ZIPs and reading untrusted ones without trusting their headers.

Reading checks every name before any content, bounds member count, total inflated size and
per-member compression ratio while streaming, and refuses symlinks, duplicates and case clashes.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib

from diagkit.packet import format as fmt
from diagkit.packet.errors import (
    CorruptMember,
    DuplicateMember,
    NotAPacket,
    TruncatedPacket,
    UnsafeMemberPath,
    ZipBomb,
)

_CHUNK = 64 * 1024


def write_zip(members: dict[str, bytes]) -> bytes:
    """A ZIP with sorted names, fixed timestamps and modes, no extra fields: same input, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=fmt.ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode bits below mean what they say
            info.external_attr = fmt.ZIP_MODE << 16
            archive.writestr(info, members[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def _open(data: bytes, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.LargeZipFile:
        raise ZipBomb(f"packet '{source}' is a ZIP64 archive larger than diagkit accepts") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if data.startswith(b"PK\x03\x04"):
            raise TruncatedPacket(f"packet '{source}' is a truncated or corrupt ZIP archive ({exc})") from None
        raise NotAPacket(f"'{source}' is not a diagkit packet (not a ZIP archive or encrypted packet)") from None


def read_members(data: bytes, source: str, *, limits: dict[str, int] | None = None) -> dict[str, bytes]:
    """All members of an untrusted ZIP, checked for unsafe names and bombs; raises a PacketError subclass."""
    lim = {"members": fmt.MAX_MEMBERS, "total": fmt.MAX_TOTAL_UNCOMPRESSED, "ratio": fmt.MAX_RATIO,
           "grace": fmt.RATIO_GRACE, **(limits or {})}
    archive = _open(data, source)
    infos = archive.infolist()
    if len(infos) > lim["members"]:
        raise ZipBomb(f"packet '{source}' has {len(infos)} members, more than the limit of {lim['members']}")
    seen: dict[str, str] = {}
    for info in infos:
        name = info.filename
        reason = fmt.unsafe_name_reason(name)
        if reason:
            raise UnsafeMemberPath(f"packet '{source}' has an unsafe member path {name!r} ({reason})")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeMemberPath(f"packet '{source}' has a symlink member {name!r}")
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise UnsafeMemberPath(f"packet '{source}' has a member {name!r} that is not a regular file")
        folded = name.casefold()
        if folded in seen:
            if seen[folded] == name:
                raise DuplicateMember(f"packet '{source}' has a duplicate member {name!r}")
            raise UnsafeMemberPath(f"packet '{source}' has members {seen[folded]!r} and {name!r} that differ only in case")
        seen[folded] = name
        if info.flag_bits & 0x1:
            raise NotAPacket(f"packet '{source}' member {name!r} uses ZIP encryption, which diagkit packets never do")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise NotAPacket(f"packet '{source}' member {name!r} uses an unsupported compression method")
        if info.compress_size > len(data) or info.header_offset >= len(data):
            # A compressed size larger than the whole archive is a lie, and would also blind the
            # ratio check below (inflated / claimed compressed size).
            raise TruncatedPacket(f"packet '{source}' member {name!r} has a ZIP header that claims more bytes "
                                  "than the archive holds (corrupt or crafted)")

    members: dict[str, bytes] = {}
    total = 0
    for info in infos:
        name = info.filename
        parts: list[bytes] = []
        size = 0
        try:
            with archive.open(info) as handle:
                while chunk := handle.read(_CHUNK):
                    size += len(chunk)
                    total += len(chunk)
                    if total > lim["total"]:
                        raise ZipBomb(f"packet '{source}' inflates to more than {lim['total']} bytes (zip bomb?)")
                    if size > lim["grace"] and size > lim["ratio"] * max(info.compress_size, 1):
                        raise ZipBomb(f"packet '{source}' member {name!r} inflates more than "
                                      f"{lim['ratio']}:1 (zip bomb?)")
                    parts.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "CRC" in message:
                raise CorruptMember(f"packet '{source}' member {name!r} is tampered or corrupt "
                                    "(CRC-32 does not match)") from None
            raise TruncatedPacket(f"packet '{source}' member {name!r} cannot be read: truncated or corrupt "
                                  f"archive ({message})") from None
        members[name] = b"".join(parts)
    return members
