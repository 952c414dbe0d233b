"""The packet's ZIP: one exact layout, written here and read back here by a strict parser of our own.

Different ZIP readers disagree about lenient archives: Python's zipfile accepts data before and
after the archive, honours a ZIP64 locator the end record contradicts, ignores the entry count and
Unicode-path extra fields, and cuts names at NUL; Java's streaming reader trusts local headers only;
unzip honours Unicode-path extra fields. Any archive two readers can read differently could show one
set of files to `packet verify` and another to `unzip`. So the reader below accepts only the layout
`write_zip` produces (APPNOTE 6.3.10 sections 4.3-4.4), byte for byte in every structural field:

    local header + name + deflated data, for each member in name order, from offset 0 with no gaps
    central directory headers in the same order, right after the last member's data
    end of central directory record, the last 22 bytes of the file, with no comment

No ZIP64, extra fields, data descriptors, comments, encryption, disks, directories or links; every
member is deflated, dated 1980-01-01 00:00, mode 0100644 from a Unix host; the local header repeats
the central one; sizes, CRC-32 and entry counts must match the data. Names are checked (control
bytes, UTF-8, paths safe on Linux, Windows and macOS, distinct under case folding) before any member
is inflated, and inflation is bounded by the sizes already checked.
"""

from __future__ import annotations

import struct
import zlib

from diagkit.formats.inflate import RAW_DEFLATE, inflate
from diagkit.packet import format as fmt
from diagkit.packet.errors import (
    CorruptMember,
    DuplicateMember,
    MalformedArchive,
    NotAPacket,
    UnsafeMemberPath,
    ZipBomb,
)

_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_LOCAL = struct.Struct("<IHHHHHIIIHH")            # 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")    # 46 bytes
_END = struct.Struct("<IHHHHIIH")                 # 22 bytes

VERSION_MADE_BY = (3 << 8) | 20   # Unix host, spec 2.0 (what zipfile writes for deflate)
VERSION_NEEDED = 20               # deflate
METHOD_DEFLATE = 8
FLAG_UTF8 = 0x0800                # general purpose bit 11: the name is UTF-8
DOS_TIME, DOS_DATE = 0, (0 << 9) | (1 << 5) | 1   # 1980-01-01 00:00:00
EXTERNAL_ATTR = fmt.ZIP_MODE << 16                # regular file 0644, no DOS attribute bits


def _flags(raw_name: bytes) -> int:
    return FLAG_UTF8 if not raw_name.isascii() else 0


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def write_zip(members: dict[str, bytes]) -> bytes:
    """The one packet layout: sorted names, fixed time and mode, deflate, nothing optional."""
    body: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name in sorted(members):
        data = members[name]
        raw_name = name.encode("utf-8")
        packed = _deflate(data)
        crc = zlib.crc32(data)
        fields = (VERSION_NEEDED, _flags(raw_name), METHOD_DEFLATE, DOS_TIME, DOS_DATE, crc, len(packed), len(data),
                  len(raw_name))
        body += [_LOCAL.pack(_LOCAL_SIG, *fields, 0), raw_name, packed]
        central += [_CENTRAL.pack(_CENTRAL_SIG, VERSION_MADE_BY, *fields, 0, 0, 0, 0, EXTERNAL_ATTR, offset), raw_name]
        offset += _LOCAL.size + len(raw_name) + len(packed)
    directory = b"".join(central)
    count = len(members)
    end = _END.pack(_END_SIG, 0, 0, count, count, len(directory), offset, 0)
    return b"".join(body) + directory + end


class _Entry:
    """One central directory record, already checked against the fixed layout."""

    def __init__(self, name: str, raw_name: bytes, fields: tuple[int, ...], offset: int) -> None:
        self.name, self.raw_name, self.fields, self.offset = name, raw_name, fields, offset

    @property
    def crc(self) -> int:
        return self.fields[5]

    @property
    def compressed(self) -> int:
        return self.fields[6]

    @property
    def size(self) -> int:
        return self.fields[7]


def _bad(source: str, problem: str) -> MalformedArchive:
    return MalformedArchive(f"malformed archive: packet '{source}' {problem} (only the layout diagkit "
                            "writes is accepted)")


def _shown(raw_name: bytes) -> str:
    from diagkit.visible import visible

    return "'" + visible(raw_name[:120].decode("utf-8", "backslashreplace")) + "'"


def _end_record(data: bytes, source: str) -> tuple[int, int, int]:
    """(entry count, central directory size, its offset) from an end record that is the last 22 bytes."""
    if len(data) < _END.size or not (data.startswith(b"PK\x03\x04") or b"PK\x05\x06" in data):
        raise NotAPacket(f"'{source}' is not a diagkit packet (not a ZIP archive or encrypted packet)")
    sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = _END.unpack_from(data, len(data) - _END.size)
    if sig != _END_SIG:
        last = data.rfind(b"PK\x05\x06")
        if last >= 0 and last + _END.size <= len(data):
            claimed_comment = _END.unpack_from(data, last)[7]
            if claimed_comment and last + _END.size + claimed_comment == len(data):
                raise _bad(source, "has an archive comment")
            raise _bad(source, "has data after its end-of-archive record")
        raise _bad(source, "has no end-of-archive record (truncated?)")
    if comment:
        raise _bad(source, "has an archive comment")
    if 0xFFFF in (disk, cd_disk, on_disk, total) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise _bad(source, "is a ZIP64 archive")
    if disk or cd_disk or on_disk != total:
        raise _bad(source, "claims to span several disks")
    if total > fmt.MAX_MEMBERS:
        raise ZipBomb(f"packet '{source}' has {total} members, more than the limit of {fmt.MAX_MEMBERS}")
    if cd_offset + cd_size != len(data) - _END.size:
        raise _bad(source, "has data between its central directory and its end record (ZIP64 records, a "
                           "second directory) or a directory size that does not match")
    return total, cd_size, cd_offset


def _central_entries(data: bytes, source: str, total: int, cd_offset: int) -> list[_Entry]:
    entries: list[_Entry] = []
    at = cd_offset
    end = len(data) - _END.size
    for _ in range(total):
        if at + _CENTRAL.size > end:
            raise _bad(source, "has fewer central directory entries than its end record counts")
        (sig, made_by, needed, flags, method, time, date, crc, compressed, size, name_len, extra_len, comment_len,
         disk, internal, external, offset) = _CENTRAL.unpack_from(data, at)
        raw_name = data[at + _CENTRAL.size:at + _CENTRAL.size + name_len]
        if sig != _CENTRAL_SIG or len(raw_name) != name_len:
            raise _bad(source, "has a damaged central directory")
        shown = _shown(raw_name)
        if extra_len:
            raise _bad(source, f"has an extra field on member {shown} (e.g. a Unicode-path or ZIP64 field)")
        if comment_len:
            raise _bad(source, f"has a comment on member {shown}")
        if flags & 0x0008:
            raise _bad(source, f"uses a data descriptor for member {shown}")
        if flags & 0x0041:
            raise _bad(source, f"encrypts member {shown}")
        if 0xFFFFFFFF in (compressed, size, offset):
            raise _bad(source, f"uses ZIP64 sizes for member {shown}")
        if method != METHOD_DEFLATE:
            raise _bad(source, f"stores member {shown} with compression method {method} (only deflate is written)")
        if (external >> 16) != fmt.ZIP_MODE or external & 0xFFFF or made_by != VERSION_MADE_BY or internal:
            raise _bad(source, f"gives member {shown} file attributes other than a regular file with mode 0644 "
                               f"(external attributes 0x{external:08x})")
        if (needed, time, date, disk) != (VERSION_NEEDED, DOS_TIME, DOS_DATE, 0):
            raise _bad(source, f"has a header for member {shown} that diagkit never writes (version, time or disk)")
        name = _checked_name(raw_name, flags, source)
        entries.append(_Entry(name, raw_name, (needed, flags, method, time, date, crc, compressed, size, name_len),
                              offset))
        at += _CENTRAL.size + name_len
    if at != end:
        raise _bad(source, "has more central directory bytes than its end record counts (a second directory?)")
    return entries


def _checked_name(raw_name: bytes, flags: int, source: str) -> str:
    """The member name, if its raw bytes hold no control byte and are UTF-8 flagged as such."""
    shown = _shown(raw_name)
    if b"\x00" in raw_name:
        raise UnsafeMemberPath(f"unsafe member path: packet '{source}' has a member name with a NUL byte ({shown})")
    if any(b < 0x20 or b == 0x7F for b in raw_name):
        raise UnsafeMemberPath(f"unsafe member path: packet '{source}' has a member name with a control "
                               f"character ({shown})")
    if flags & ~FLAG_UTF8 or flags != _flags(raw_name):
        raise _bad(source, f"has general purpose flags 0x{flags:04x} on member {shown} (the UTF-8 flag must be "
                           "set exactly when the name is not ASCII)")
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeMemberPath(f"unsafe member path: packet '{source}' has a member name that is not UTF-8 "
                               f"({shown})") from None
    reason = fmt.unsafe_name_reason(name)
    if reason:
        raise UnsafeMemberPath(f"unsafe member path: packet '{source}' has member {shown} ({reason})")
    return name


def _check_name_set(entries: list[_Entry], source: str) -> None:
    """Names in strictly ascending order, none equal to another (or to its folder) under case folding."""
    folded: dict[str, str] = {}
    raw_seen: set[bytes] = set()
    for entry in entries:
        if entry.raw_name in raw_seen:
            raise DuplicateMember(f"malformed archive: packet '{source}' has a duplicate member {_shown(entry.raw_name)}")
        raw_seen.add(entry.raw_name)
        key = fmt.fold_name(entry.name)
        if key in folded:
            raise UnsafeMemberPath(f"unsafe member path: packet '{source}' has members {_shown(folded[key].encode())} "
                                   f"and {_shown(entry.raw_name)}, one name on Windows and macOS (case folding)")
        folded[key] = entry.name
    for entry in entries:
        parts = fmt.fold_name(entry.name).split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in folded:
                raise UnsafeMemberPath(f"unsafe member path: packet '{source}' has member "
                                       f"{_shown(folded[folder].encode())} and a folder of the same name")
    for index in range(1, len(entries)):
        if entries[index - 1].raw_name > entries[index].raw_name:
            raise _bad(source, "does not list its members in name order")


def _member_data(data: bytes, entry: _Entry, at: int, source: str) -> tuple[bytes, int]:
    """The compressed bytes of `entry`, whose local header must start at `at` and repeat the central one."""
    shown = _shown(entry.raw_name)
    if entry.offset != at:
        raise _bad(source, f"has member {shown} at offset {entry.offset} where {at} was expected (data "
                           "before, between or overlapping members)")
    if at + _LOCAL.size > len(data):
        raise _bad(source, f"is cut short in the local header of member {shown}")
    sig, *local = _LOCAL.unpack_from(data, at)
    name_start = at + _LOCAL.size
    if sig != _LOCAL_SIG or tuple(local[:9]) != entry.fields or local[9] != 0 \
            or data[name_start:name_start + len(entry.raw_name)] != entry.raw_name:
        raise _bad(source, f"has a local header for member {shown} that differs from its central directory entry")
    start = name_start + len(entry.raw_name)
    stop = start + entry.compressed
    return data[start:stop], stop


def _inflate(packed: bytes, entry: _Entry, source: str) -> bytes:
    shown = _shown(entry.raw_name)
    try:
        # Never inflate more than the (already bounded) declared size plus one byte.
        inflated = inflate(packed, RAW_DEFLATE, entry.size + 1)
    except zlib.error:
        raise CorruptMember(f"tampered member: packet '{source}' member {shown} is tampered or corrupt "
                            "(deflate data does not decode)") from None
    plain = inflated.data
    if len(plain) != entry.size or not inflated.complete or inflated.trailing or inflated.over_limit:
        raise _bad(source, f"has member {shown} whose sizes do not match its data")
    if zlib.crc32(plain) != entry.crc:
        raise CorruptMember(f"tampered member: packet '{source}' member {shown} is tampered or corrupt "
                            "(CRC-32 does not match)")
    return plain


class Archive:
    """A packet ZIP whose whole layout, names and sizes are checked; members are inflated on demand,
    so a verifier can check trust and the signature before inflating everything else."""

    def __init__(self, source: str, entries: list[_Entry], packed: list[bytes]) -> None:
        self.source = source
        self._members = {entry.name: (entry, data) for entry, data in zip(entries, packed, strict=True)}

    @property
    def names(self) -> list[str]:
        return list(self._members)

    def read(self, name: str) -> bytes:
        entry, packed = self._members[name]
        return _inflate(packed, entry, self.source)

    def read_all(self) -> dict[str, bytes]:
        return {name: self.read(name) for name in self._members}


def open_archive(data: bytes, source: str, *, limits: dict[str, int] | None = None) -> Archive:
    """Check everything about an untrusted packet ZIP that needs no inflating; raise a PacketError
    naming the first thing wrong with it."""
    lim = {"total": fmt.MAX_TOTAL_UNCOMPRESSED, "ratio": fmt.MAX_RATIO, "grace": fmt.RATIO_GRACE, **(limits or {})}
    total_count, _cd_size, cd_offset = _end_record(data, source)
    entries = _central_entries(data, source, total_count, cd_offset)
    _check_name_set(entries, source)
    total = 0
    for entry in entries:
        total += entry.size
        if total > lim["total"]:
            raise ZipBomb(f"packet '{source}' inflates to more than {lim['total']} bytes (zip bomb?)")
        if entry.size > lim["grace"] and entry.size > lim["ratio"] * max(entry.compressed, 1):
            raise ZipBomb(f"packet '{source}' member {_shown(entry.raw_name)} inflates more than "
                          f"{lim['ratio']}:1 (zip bomb?)")
    packed: list[bytes] = []
    at = 0
    for entry in entries:
        data_of_entry, at = _member_data(data, entry, at, source)
        if at > cd_offset:
            raise _bad(source, f"has member {_shown(entry.raw_name)} running into its central directory")
        packed.append(data_of_entry)
    if at != cd_offset:
        raise _bad(source, "has data between its last member and its central directory")
    return Archive(source, entries, packed)
