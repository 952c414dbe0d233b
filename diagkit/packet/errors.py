"""What can be wrong with a packet, one error class each, so every problem has its own reference id."""

from __future__ import annotations

from diagkit.errors import PacketError as _DiagkitPacketError


class PacketError(_DiagkitPacketError):
    """A packet problem whose message may quote the packet: made visible (no control or bidi characters)."""

    def __init__(self, message: str, *, hint: str | None = None, ref: str | None = None) -> None:
        from diagkit.visible import visible

        # The last line of defence: callers already escape what they quote from the packet.
        super().__init__(visible(message), hint=hint, ref=ref)


class NotAPacket(PacketError):
    ref = "DK401"


class TruncatedPacket(PacketError):
    ref = "DK402"


class ZipBomb(PacketError):
    ref = "DK403"


class UnsafeMemberPath(PacketError):
    ref = "DK404"


class DuplicateMember(PacketError):
    ref = "DK405"


class MissingSignature(PacketError):
    ref = "DK406"


class BadSignature(PacketError):
    ref = "DK407"


class UntrustedSigner(PacketError):
    ref = "DK408"
    default_hint = "check the key id with the person who built the packet, then pass --trusted-key or add it to trusted_keys"


class MemberMismatch(PacketError):
    """The archive does not match the signed manifest; subclasses say how (tampered, missing, extra)."""

    ref = "DK409"


class TamperedMember(MemberMismatch):
    ref = "DK413"


class MissingMember(MemberMismatch):
    ref = "DK414"


class ExtraMember(MemberMismatch):
    ref = "DK415"


class EncryptedPacket(PacketError):
    ref = "DK410"


class DecryptionFailed(PacketError):
    ref = "DK411"


class CorruptMember(PacketError):
    ref = "DK412"


class MalformedArchive(PacketError):
    """The ZIP is not laid out exactly as `packet build` writes it (diagkit/packet/zipsafe.py)."""

    ref = "DK416"


class MalformedManifest(PacketError):
    """manifest.json is signed but not canonical JSON, or not the documented manifest."""

    ref = "DK417"
