"""Key files: Ed25519 signing and X25519 encryption pairs, public keys, key ids, trust file.

Public key file: PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`, what openssl and cryptography
read). Every option that takes a public key also reads the one-line form
`diagkit-ed25519 <base64 raw key> [comment]` (or `diagkit-x25519 ...`).
Private key file: unencrypted PKCS#8 PEM, mode 0600. Key id: `<type>:` + first 16 hex of sha256(raw key).
A public key is checked before use: a point off the curve, a non-canonical encoding or a small-order
(weak) key is refused wherever a key is read, because for a small-order Ed25519 key a forged
signature verifies and for a small-order X25519 key the shared secret is known to everyone.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diagkit.config import config_dir
from diagkit.errors import InputNotFound, KeyFileError
from diagkit.fsutil import write_atomic

ED25519 = "ed25519"
X25519 = "x25519"
_PREFIX = "diagkit-"
SIGNING_KEY, SIGNING_PUB = "signing.key", "signing.pub"
ENCRYPTION_KEY, ENCRYPTION_PUB = "encryption.key", "encryption.pub"
TRUSTED_KEYS = "trusted_keys"
_MAX_KEY_FILE = 64 * 1024


# Curve constants (RFC 8032 section 5.1, RFC 7748 section 4.1).
_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P
# The y coordinate of a point of order 8 on edwards25519 (the other one is _P - _Y8). With y = 1
# (identity), _P - 1 (order 2) and 0 (order 4) these are every small-order point (libsodium's blocklist).
_Y8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y8, _P - _Y8})
# The same points on curve25519 (u = (1 + y) / (1 - y)), plus u = _P - 1 (small order on the twist).
_SMALL_ORDER_U = frozenset({0, 1, _P - 1} | {(1 + y) * pow(1 - y, -1, _P) % _P for y in (_Y8, _P - _Y8)})


def ed25519_problem(raw: bytes) -> str | None:
    """Why 32 bytes are not a usable Ed25519 public key, or None.

    Refused: a non-canonical encoding (y >= p), a point that is not on the curve, and the small-order
    points, for which one signature verifies for every message.
    """
    if len(raw) != 32:
        return "not 32 bytes"
    number = int.from_bytes(raw, "little")
    y, x_is_odd = number & ((1 << 255) - 1), number >> 255
    if y >= _P:
        return "non-canonical point encoding"
    if y in _SMALL_ORDER_Y:
        return "a small-order (weak) key, for which forged signatures verify"
    x_squared = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    if x_squared == 0 and x_is_odd:
        return "non-canonical point encoding"
    if x_squared and pow(x_squared, (_P - 1) // 2, _P) != 1:
        return "not a point on the curve"
    return None


def x25519_problem(raw: bytes) -> str | None:
    """Why 32 bytes are not a usable X25519 public key (small order, or a non-canonical u), or None."""
    if len(raw) != 32:
        return "not 32 bytes"
    u = int.from_bytes(raw, "little")
    if u >= _P:
        return "non-canonical u-coordinate"
    if u in _SMALL_ORDER_U:
        return "a small-order (weak) key, whose shared secret anyone can compute"
    return None


@dataclass(frozen=True)
class PublicKey:
    """A public key as people paste it: type, raw 32 bytes, optional comment."""

    kind: str
    raw: bytes
    comment: str = ""

    @property
    def key_id(self) -> str:
        return key_id(self.raw, self.kind)

    def line(self, *, comment: bool = True) -> str:
        text = f"{_PREFIX}{self.kind} {base64.b64encode(self.raw).decode()}"
        return f"{text} {self.comment}" if comment and self.comment else text

    def pem(self) -> str:
        """PEM SubjectPublicKeyInfo, as `openssl pkey -pubin` and cryptography read it."""
        from cryptography.hazmat.primitives import serialization

        key = self.ed25519() if self.kind == ED25519 else self.x25519()
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def ed25519(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self.raw)

    def x25519(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        return X25519PublicKey.from_public_bytes(self.raw)


def key_id(key: str | bytes, kind: str = ED25519) -> str:
    """`ed25519:` + 16 hex of sha256(raw key); accepts a public key line (str/bytes) or the raw 32 bytes."""
    if isinstance(key, bytes) and len(key) == 32:
        return f"{kind}:{hashlib.sha256(key).hexdigest()[:16]}"
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    public = parse_public_text(text, "key")
    return public.key_id


def _checked(kind: str, raw: bytes, comment: str, source: str) -> PublicKey:
    problem = ed25519_problem(raw) if kind == ED25519 else x25519_problem(raw)
    if problem:
        raise KeyFileError(f"{source}: the {kind} public key is refused ({problem})")
    return PublicKey(kind, raw, comment)


def parse_public_line(text: str, source: str) -> PublicKey:
    """Parse one `diagkit-<type> <base64> [comment]` line; `source` names where it came from for errors."""
    fields = text.strip().split(None, 2)
    if len(fields) < 2 or not fields[0].startswith(_PREFIX):
        raise KeyFileError(f"{source} is not a diagkit public key line (expected 'diagkit-ed25519 <base64> ...')")
    kind = fields[0][len(_PREFIX):]
    if kind not in (ED25519, X25519):
        raise KeyFileError(f"{source}: unknown key type {_shown(fields[0])}")
    try:
        raw = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeyFileError(f"{source}: the {kind} public key is not 32 bytes of base64")
    return _checked(kind, raw, fields[2].strip() if len(fields) > 2 else "", source)


_PEM_BEGIN, _PEM_END = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"


def parse_public_pem(text: str, source: str) -> PublicKey:
    """One PEM SubjectPublicKeyInfo block (Ed25519 or X25519) and nothing else around it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    body = text.strip()
    if not (body.startswith(_PEM_BEGIN) and body.endswith(_PEM_END) and body.count("-----BEGIN") == 1):
        raise KeyFileError(f"{source} is not one PEM public key block")
    try:
        key = serialization.load_pem_public_key(body.encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise KeyFileError(f"{source} is not a readable PEM public key") from None
    if isinstance(key, Ed25519PublicKey):
        kind = ED25519
    elif isinstance(key, X25519PublicKey):
        kind = X25519
    else:
        raise KeyFileError(f"{source} is a PEM public key of another type; Ed25519 or X25519 is needed")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _checked(kind, raw, "", source)


def parse_public_text(text: str, source: str) -> PublicKey:
    """A public key in either accepted form: a PEM block, or one `diagkit-<type> ...` line."""
    if text.lstrip().startswith("-----BEGIN"):
        return parse_public_pem(text, source)
    return parse_public_line(text, source)


def _shown(text: str) -> str:
    from diagkit.visible import visible

    return "'" + visible(text[:60]) + "'"


def _read_key_file(path: str | Path, what: str) -> bytes:
    p = Path(path)
    try:
        if p.is_dir():
            raise KeyFileError(f"{what} '{p}' is a directory, not a key file")
        with open(p, "rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise InputNotFound(f"{what} '{p}' does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"{what} '{p}' cannot be read: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise KeyFileError(f"{what} '{p}' is too large to be a key file")
    return data


def load_public_key(value: str | Path, kind: str, what: str = "public key") -> PublicKey:
    """A public key from a .pub file (PEM or one line), or a pasted key line given directly as the value."""
    text_value = str(value)
    if text_value.startswith(_PREFIX) and not Path(text_value).exists():
        public = parse_public_line(text_value, f"{what} argument")
        source = f"{what} argument"
    else:
        data = _read_key_file(value, what)
        source = f"{what} '{value}'"
        if b"PRIVATE KEY" in data:
            raise KeyFileError(f"{source} is a private key; pass the matching .pub file instead")
        text = data.decode("utf-8", "replace")
        if text.lstrip().startswith("-----BEGIN"):
            public = parse_public_pem(text, source)
        else:
            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
            if len(lines) != 1:
                raise KeyFileError(f"{source} is not a diagkit public key file (expected a PEM public key "
                                   f"or one 'diagkit-{kind} ...' line)")
            public = parse_public_line(lines[0], source)
    if public.kind != kind:
        raise KeyFileError(f"{source} is an {public.kind} key; an {kind} key is needed here")
    return public


_WARNED: set[str] = set()


def _warn_if_exposed(path: str | Path, source: str) -> None:
    """Warn (as ssh refuses) when others can read a private key file; the key still loads."""
    import os
    import stat
    import sys

    try:
        mode = os.stat(path).st_mode  # follows a symlink: the target's mode is what matters
    except OSError:
        return
    if stat.S_ISREG(mode) and mode & 0o077 and str(path) not in _WARNED:
        _WARNED.add(str(path))  # the same key is loaded more than once per command
        print(f"diagkit: warning: {source} can be read by other users (mode {stat.S_IMODE(mode):04o}); "
              f"run: chmod 600 '{path}'", file=sys.stderr)


def _load_private(path: str | Path, kind: str, what: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    data = _read_key_file(path, what)
    source = f"{what} '{path}'"
    if data.lstrip().startswith(_PREFIX.encode()) or b"PUBLIC KEY-----" in data:
        raise KeyFileError(f"{source} is a public key; a private key file (.key) is needed here")
    if b"ENCRYPTED PRIVATE KEY" in data:
        raise KeyFileError(f"{source} is password-protected, which diagkit does not support")
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileError(f"{source} is not a PEM private key") from None
    wanted = Ed25519PrivateKey if kind == ED25519 else X25519PrivateKey
    if not isinstance(key, wanted):
        found = {Ed25519PrivateKey: "an Ed25519 signing key", X25519PrivateKey: "an X25519 encryption key"}
        name = next((v for t, v in found.items() if isinstance(key, t)), "not a diagkit key")
        need = "an Ed25519 signing key" if kind == ED25519 else "an X25519 encryption key"
        raise KeyFileError(f"{source} is {name}; {need} is needed here")
    _warn_if_exposed(path, source)
    return key


def load_signing_key(path: str | Path) -> Any:
    return _load_private(path, ED25519, "signing key")


def pseudonym_key(sign_key: str | Path | None) -> bytes:
    """The redaction key for a packet, derived from its signing key.

    The same signer and inputs then give the same pseudonyms, so a packet built twice has the same
    evidence bytes (CONTRACT.md), while nobody without the private key can test guesses against them.
    """
    import hmac

    from cryptography.hazmat.primitives import serialization

    private = load_signing_key(sign_key if sign_key is not None else default_signing_key())
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return hmac.new(raw, b"diagkit packet pseudonym key v1", hashlib.sha256).digest()


def load_identity(path: str | Path) -> Any:
    return _load_private(path, X25519, "identity")


def public_of(private_key: Any, comment: str = "") -> PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PublicKey(ED25519 if isinstance(private_key, Ed25519PrivateKey) else X25519, raw, comment)


def _default_comment() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "diagkit"


def _pem(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def generate_keys(directory: str | Path | None = None, *, force: bool = False, comment: str | None = None) -> dict:
    """Write signing.key/.pub and encryption.key/.pub (private files 0600); return paths, lines and key ids."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    folder = Path(directory) if directory is not None else config_dir()
    names = [SIGNING_KEY, SIGNING_PUB, ENCRYPTION_KEY, ENCRYPTION_PUB]
    existing = [n for n in names if (folder / n).exists()]
    if existing and not force:
        raise KeyFileError(f"keys already exist in '{folder}' ({', '.join(existing)}); refusing to overwrite",
                           hint="pass --force to replace them (old packets stay verifiable with the old .pub)")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyFileError(f"cannot create key folder '{folder}': {exc.strerror or exc}") from None
    note = comment if comment is not None else _default_comment()
    note = " ".join(note.split())
    out: dict[str, Any] = {"dir": str(folder)}
    created: list[Path] = []
    try:
        for role, private, key_name, pub_name in (
            ("signing", Ed25519PrivateKey.generate(), SIGNING_KEY, SIGNING_PUB),
            ("encryption", X25519PrivateKey.generate(), ENCRYPTION_KEY, ENCRYPTION_PUB),
        ):
            public = public_of(private, note)
            for path, data, mode in ((folder / key_name, _pem(private), 0o600),
                                     (folder / pub_name, public.pem().encode(), 0o644)):
                fresh = not path.exists()
                write_atomic(path, data, mode=mode)
                if fresh:
                    created.append(path)
            out[role] = {"key_id": public.key_id, "public_key": public.line(),
                         "private_path": str(folder / key_name), "public_path": str(folder / pub_name)}
    except BaseException:
        # Interrupted or failed half way: no half set of new keys that would block the next run.
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return out


def default_signing_key() -> Path:
    """config_dir()/signing.key, generating the key pairs there on first use."""
    path = config_dir() / SIGNING_KEY
    if not path.exists():
        generate_keys(config_dir())
    return path


def trusted_keys_path() -> Path:
    return config_dir() / TRUSTED_KEYS


def load_trusted_keys(path: str | Path | None = None) -> list[PublicKey]:
    """The trusted_keys file: Ed25519 public keys, one per line or as PEM blocks; `#` comments and
    blank lines ignored.

    Fails closed: any other line (an X25519 key, a typo, a half-pasted key) is an error naming the
    line, never skipped, so a broken trust file cannot silently leave nothing pinned.
    """
    p = Path(path) if path is not None else trusted_keys_path()
    if not p.exists():
        return []
    text = _read_key_file(p, "trusted keys file").decode("utf-8", "replace")
    keys = []
    pem: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if pem or line.strip() == _PEM_BEGIN:
            start = start if pem else number
            pem.append(line)
            if line.strip() == _PEM_END:
                keys.append((start, parse_public_pem("\n".join(pem), f"trusted keys file '{p}' line {start}")))
                pem = []
        elif line.strip() and not line.lstrip().startswith("#"):
            keys.append((number, parse_public_line(line, f"trusted keys file '{p}' line {number}")))
    if pem:
        raise KeyFileError(f"trusted keys file '{p}' line {start}: PEM block without its END line")
    for number, key in keys:
        if key.kind != ED25519:
            raise KeyFileError(f"trusted keys file '{p}' line {number} is an {key.kind} key; only Ed25519 "
                               "signing keys can be trusted")
    return [key for _, key in keys]
