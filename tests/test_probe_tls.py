"""`diagkit probe tls` against real loopback TLS servers: one certificate per verdict, JSON shape, timeouts."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import warnings
from pathlib import Path
from typing import Any

import pytest

from diagkit.collectors.tls.chain import hostname_matches
from diagkit.formats.urls import split_host_port
from tests import servers

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
FINDING_KEYS = {"id", "severity", "title", "detail", "evidence", "remediation", "refs"}
RESULT_KEYS = {"diagkit_version", "probe", "target", "started_at", "duration_ms", "findings", "facts"}


def probe(invoke, port: int, *args: str, env: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    result = invoke("probe", "tls", f"127.0.0.1:{port}", *args, "--json", env=env)
    doc = json.loads(result.stdout)
    assert set(doc) - {"options", "diagnosis"} == RESULT_KEYS and doc["probe"] == "tls"
    for finding in doc["findings"]:
        assert set(finding) == FINDING_KEYS
    return result, doc


def ids(doc: dict[str, Any], *severities: str) -> set[str]:
    return {f["id"] for f in doc["findings"] if not severities or f["severity"] in severities}


def problems(doc: dict[str, Any]) -> set[str]:
    return ids(doc, "warn", "fail", "error")


# ---------------------------------------------------------------- certificates made with cryptography


class Issuer:
    """A small CA built with cryptography, for what trustme cannot make (weak keys, SHA-1, AIA, roots sent)."""

    def __init__(self, name: str, key: Any = None, parent: Issuer | None = None, aia: str | None = None) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
        signer = parent or self
        builder = _base(self.name, signer.name, self.key.public_key(), NOW - dt.timedelta(days=30),
                        NOW + dt.timedelta(days=3650))
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
        if parent:
            builder = builder.add_extension(_aki(parent), critical=False)
        if aia:
            builder = _with_aia(builder, aia)
        self.cert = builder.sign(signer.key if parent else self.key, hashes.SHA256())

    def leaf(self, names: list[str], *, key: Any = None, hash_alg: Any = None, aia: str | None = None,
             not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> tuple[Any, Any]:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        key = key or ec.generate_private_key(ec.SECP256R1())
        sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
        builder = _base(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, names[0])]), self.name,
                        key.public_key(), not_before or NOW - dt.timedelta(days=1),
                        not_after or NOW + dt.timedelta(days=365))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(_aki(self), critical=False)
        if aia:
            builder = _with_aia(builder, aia)
        return builder.sign(self.key, hash_alg or hashes.SHA256()), key

    def pem(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        return self.cert.public_bytes(Encoding.PEM)


def _base(subject: Any, issuer: Any, public_key: Any, not_before: dt.datetime, not_after: dt.datetime) -> Any:
    from cryptography import x509

    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after))


def _aki(issuer: Issuer) -> Any:
    from cryptography import x509

    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())


def _with_aia(builder: Any, url: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    return builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url))]), critical=False)


def serve(tmp_path: Path, cert: Any, key: Any, chain: list[Any] = (), *, legacy_only: bool = False,
          started: list[Any]) -> servers.TLSServer:
    """A TLSServer for arbitrary cryptography certificates; security level 0 so weak keys can be served."""
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    cert_file, key_file = tmp_path / f"cert{len(started)}.pem", tmp_path / f"key{len(started)}.pem"
    cert_file.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in [cert, *chain]))
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if legacy_only:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.load_cert_chain(str(cert_file), str(key_file))
    srv = servers.TLSServer(ctx).start()
    started.append(srv)
    return srv


@pytest.fixture
def custom_server(tmp_path):
    started: list[Any] = []
    yield lambda cert, key, chain=(), **kw: serve(tmp_path, cert, key, list(chain), started=started, **kw)
    for srv in started:
        srv.stop()


@pytest.fixture
def issuer(tmp_path) -> tuple[Issuer, str]:
    root = Issuer("diagkit test root")
    path = tmp_path / "root.pem"
    path.write_bytes(root.pem())
    return root, str(path)


# ---------------------------------------------------------------- healthy


def test_healthy_endpoint_passes(invoke, ca, ca_file, tls_server):
    srv = tls_server(ca.issue_cert("localhost", "127.0.0.1"))
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file)
    assert result.exit_code == 0, result.stdout
    assert "tls.connect.ok" in ids(doc, "pass") and not problems(doc)
    facts = doc["facts"]
    assert facts["protocol"] == "TLSv1.3" and facts["cipher"]  # both ends allow it: the newest is agreed
    assert facts["trusted"] is True
    leaf = facts["chain"][0]
    assert "IP:127.0.0.1" in leaf["sans"] and "DNS:localhost" in leaf["sans"]
    assert len(leaf["sha256"].split(":")) == 32 and leaf["key_type"].startswith("EC")
    for key in ("subject", "issuer", "serial", "not_before", "not_after", "key_size", "signature_algorithm"):
        assert leaf[key], key
    assert facts["http"]["speaks_http"] is True and abs(facts["clock"]["skew_seconds"]) < 60


def test_healthy_with_intermediate_and_servername(invoke, ca, ca_file, tls_server):
    child = ca.create_child_ca()
    srv = tls_server(child.issue_cert("api.example.test"))
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file, "--servername", "api.example.test")
    assert result.exit_code == 0, result.stdout
    assert doc["facts"]["servername"] == "api.example.test"
    assert len(doc["facts"]["chain"]) == 2 and len(doc["facts"]["path"]) == 3


def test_strictly_compliant_chain_has_no_notes(invoke, issuer, custom_server):
    root, root_file = issuer
    cert, key = root.leaf(["127.0.0.1"])
    srv = custom_server(cert, key)
    result, doc = probe(invoke, srv.port, "--ca-file", root_file)
    assert result.exit_code == 0
    assert ids(doc) == {"tls.connect.ok"}


def test_human_output(invoke, ca, ca_file, tls_server):
    srv = tls_server(ca.issue_cert("127.0.0.1"))
    result = invoke("probe", "tls", f"127.0.0.1:{srv.port}", "--ca-file", ca_file)
    assert result.exit_code == 0
    assert "[tls.connect.ok]" in result.stdout and "protocol:" in result.stdout
    assert result.stderr == ""


# ---------------------------------------------------------------- dates


def test_expired(invoke, ca, ca_file, tls_server):
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=3))
    result, doc = probe(invoke, tls_server(leaf).port, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.certificate.expired"}
    finding = next(f for f in doc["findings"] if f["id"] == "tls.certificate.expired")
    assert finding["severity"] == "fail" and "3 days ago" in finding["title"]
    assert finding["evidence"]["not_after"] == (NOW - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_not_yet_valid(invoke, ca, ca_file, tls_server):
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW + dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=90))
    result, doc = probe(invoke, tls_server(leaf).port, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.certificate.not_yet_valid"}


def test_expires_soon_warns(invoke, ca, ca_file, tls_server):
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW - dt.timedelta(days=80), not_after=NOW + dt.timedelta(days=10))
    result, doc = probe(invoke, tls_server(leaf).port, "--ca-file", ca_file)
    assert result.exit_code == 4
    assert problems(doc) == {"tls.certificate.expires_soon"}
    finding = next(f for f in doc["findings"] if f["id"] == "tls.certificate.expires_soon")
    assert finding["severity"] == "warn" and finding["evidence"]["warn_window_days"] == 30


def test_expires_soon_window_scales_with_lifetime(invoke, ca, ca_file, tls_server):
    # A 9-day certificate with 5 days left is normal (window = 3 days); two days before expiry it is not.
    leaf = ca.issue_cert("127.0.0.1", not_before=NOW - dt.timedelta(days=4), not_after=NOW + dt.timedelta(days=5))
    srv = tls_server(leaf)
    result, _ = probe(invoke, srv.port, "--ca-file", ca_file)
    assert result.exit_code == 0
    later = (NOW + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file, env={"DIAGKIT_NOW": later})
    assert result.exit_code == 4
    assert problems(doc) == {"tls.certificate.expires_soon"}
    assert doc["started_at"] == later  # the injected clock drives the verdicts


def test_injected_clock_makes_a_valid_certificate_expired(invoke, ca, ca_file, tls_server):
    srv = tls_server(ca.issue_cert("127.0.0.1", not_after=NOW + dt.timedelta(days=100)))
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file,
                        env={"DIAGKIT_NOW": (NOW + dt.timedelta(days=101)).isoformat()})
    assert result.exit_code == 3
    assert problems(doc) == {"tls.certificate.expired"}


# ---------------------------------------------------------------- host name


def test_hostname_mismatch(invoke, ca, ca_file, tls_server):
    srv = tls_server(ca.issue_cert("other.example.test"))
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.hostname.mismatch"}
    finding = next(f for f in doc["findings"] if f["id"] == "tls.hostname.mismatch")
    assert finding["evidence"]["expected"] == "127.0.0.1"
    assert finding["evidence"]["presented"] == ["DNS:other.example.test"]


def test_servername_mismatch_and_wildcards(invoke, ca, ca_file, tls_server):
    srv = tls_server(ca.issue_cert("*.example.test"))
    ok, _ = probe(invoke, srv.port, "--ca-file", ca_file, "--servername", "api.example.test")
    assert ok.exit_code == 0
    deep, doc = probe(invoke, srv.port, "--ca-file", ca_file, "--servername", "a.b.example.test")
    assert deep.exit_code == 3 and problems(doc) == {"tls.hostname.mismatch"}


@pytest.mark.parametrize(("sans", "name", "expected"), [
    (["www.example.com"], "WWW.Example.com.", True),
    (["*.example.com"], "api.example.com", True),
    (["*.example.com"], "example.com", False),
    (["*.example.com"], "a.b.example.com", False),
    (["*.com"], "example.com", False),
    (["127.0.0.1"], "127.0.0.1", True),
    (["localhost"], "127.0.0.1", False),  # an IP target matches IP SANs only
    (["2001:db8::1"], "2001:db8::1", True),
    (["xn--bcher-kva.example"], "bücher.example", True),
])
def test_hostname_matching(issuer, sans, name, expected):
    root, _ = issuer
    cert, _ = root.leaf(sans)
    assert hostname_matches(cert, name)[0] is expected


# ---------------------------------------------------------------- chains


def self_signed(names: list[str]) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, names[0])])
    builder = _base(name, name, key.public_key(), NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=365))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(key, hashes.SHA256()), key


def test_self_signed(invoke, custom_server, ca_file):
    cert, key = self_signed(["selfie.test"])
    srv = custom_server(cert, key)
    result, doc = probe(invoke, srv.port, "--servername", "selfie.test", "--ca-file", ca_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.certificate.self_signed"}
    assert doc["facts"]["chain"][0]["self_signed"] is True


def test_self_signed_pinned_with_ca_file_is_trusted(invoke, custom_server, tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    cert, key = self_signed(["pinned.test"])
    pinned = tmp_path / "pinned.pem"
    pinned.write_bytes(cert.public_bytes(Encoding.PEM))
    srv = custom_server(cert, key)
    result, doc = probe(invoke, srv.port, "--ca-file", str(pinned), "--servername", "pinned.test")
    assert result.exit_code == 0, doc["findings"]
    assert doc["facts"]["trusted"] is True


def test_missing_intermediate_is_incomplete(invoke, ca, ca_file, tls_server):
    child = ca.create_child_ca()
    srv = tls_server(child.issue_cert("127.0.0.1"), chain=False)
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert "tls.chain.incomplete" in problems(doc)
    finding = next(f for f in doc["findings"] if f["id"] == "tls.chain.incomplete")
    assert finding["evidence"]["aia_ca_issuers"] == [] and "no AIA" in finding["detail"]
    # the same leaf with its intermediate is fine: the verdict is about what the server sends
    complete, _ = probe(invoke, tls_server(child.issue_cert("127.0.0.1")).port, "--ca-file", ca_file)
    assert complete.exit_code == 0


def test_missing_intermediate_repaired_through_aia(invoke, issuer, custom_server, http_server):
    from cryptography.hazmat.primitives.serialization import Encoding

    root, root_file = issuer
    aia = http_server({})
    intermediate = Issuer("diagkit test intermediate", parent=root)
    aia.routes["/intermediate.cer"] = servers.Response(200, [("Content-Type", "application/pkix-cert")],
                                                       intermediate.cert.public_bytes(Encoding.DER))
    cert, key = intermediate.leaf(["127.0.0.1"], aia=aia.url("/intermediate.cer"))
    srv = custom_server(cert, key)
    result, doc = probe(invoke, srv.port, "--ca-file", root_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.chain.incomplete"}  # browsers repair it; nothing else is wrong
    finding = next(f for f in doc["findings"] if f["id"] == "tls.chain.incomplete")
    assert finding["evidence"]["aia_fetched"] == [aia.url("/intermediate.cer")]
    assert "browsers" in finding["detail"]


def test_untrusted_root(invoke, ca_file, tls_server):
    import trustme

    stranger = trustme.CA().create_child_ca()  # intermediate sent; its root is not trusted
    srv = tls_server(stranger.issue_cert("127.0.0.1"))
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.chain.untrusted"}


def test_untrusted_root_sent_by_server(invoke, custom_server):
    root = Issuer("private root")
    cert, key = root.leaf(["127.0.0.1"])
    srv = custom_server(cert, key, [root.cert])
    result, doc = probe(invoke, srv.port)
    assert problems(doc) == {"tls.chain.untrusted"}
    finding = next(f for f in doc["findings"] if f["id"] == "tls.chain.untrusted")
    assert finding["evidence"]["root"] == "CN=private root"


def test_leaf_from_unknown_ca_alone_is_incomplete_and_untrusted(invoke, ca, tls_server):
    # Leaf only, issuer unknown, no AIA: a missing intermediate and an unknown root look the same.
    srv = tls_server(ca.issue_cert("127.0.0.1"))
    result, doc = probe(invoke, srv.port)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.chain.incomplete", "tls.chain.untrusted"}


# ---------------------------------------------------------------- weak keys and signatures


def test_weak_rsa_key(invoke, issuer, custom_server):
    from cryptography.hazmat.primitives.asymmetric import rsa

    root, root_file = issuer
    cert, key = root.leaf(["127.0.0.1"], key=rsa.generate_private_key(65537, 1024))
    result, doc = probe(invoke, custom_server(cert, key).port, "--ca-file", root_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.key.weak"}
    finding = next(f for f in doc["findings"] if f["id"] == "tls.key.weak")
    assert finding["evidence"]["reasons"] == ["RSA key of 1024 bits (< 2048)"]
    assert doc["facts"]["chain"][0]["key_size"] == 1024


def sha1_resigned(cert: Any, issuer_key: Any) -> Any:
    """cryptography no longer signs with SHA-1: swap the (same-length) RSA OID and sign the TBS ourselves."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import Encoding

    sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
    der = cert.public_bytes(Encoding.DER).replace(sha256_rsa, sha256_rsa[:-1] + b"\x05")
    tbs = x509.load_der_x509_certificate(der).tbs_certificate_bytes
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    assert der.endswith(cert.signature) and len(signature) == len(cert.signature)
    return x509.load_der_x509_certificate(der[: -len(signature)] + signature)


def test_sha1_signature(invoke, custom_server, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    root = Issuer("sha1 root", key=rsa.generate_private_key(65537, 2048))
    root_file = tmp_path / "sha1-root.pem"
    root_file.write_bytes(root.pem())
    cert, key = root.leaf(["127.0.0.1"])
    cert = sha1_resigned(cert, root.key)
    assert cert.signature_hash_algorithm.name == "sha1"
    result, doc = probe(invoke, custom_server(cert, key).port, "--ca-file", str(root_file))
    assert result.exit_code == 3
    assert problems(doc) == {"tls.key.weak"}
    assert "SHA1 signature" in next(f for f in doc["findings"] if f["id"] == "tls.key.weak")["title"]


# ---------------------------------------------------------------- protocol, clock, connection


def test_tls_1_1_only_server(invoke, issuer, custom_server):
    root, root_file = issuer
    cert, key = root.leaf(["127.0.0.1"])
    result, doc = probe(invoke, custom_server(cert, key, legacy_only=True).port, "--ca-file", root_file)
    assert result.exit_code == 3
    assert problems(doc) == {"tls.protocol.outdated"}
    assert doc["facts"]["protocol"] == "TLSv1.1"  # the newest the server allows


def test_clock_skew(invoke, ca, ca_file, tls_server):
    srv = tls_server(ca.issue_cert("127.0.0.1"), date_header="Mon, 01 Jan 2001 00:00:00 GMT")
    result, doc = probe(invoke, srv.port, "--ca-file", ca_file)
    assert result.exit_code == 4
    assert problems(doc) == {"tls.clock.skew"}
    assert doc["facts"]["clock"]["server_date"] == "2001-01-01T00:00:00Z"


def test_connection_refused(invoke, silent_server):
    srv = silent_server()
    port = srv.port
    srv.stop()
    result, doc = probe(invoke, port, "--timeout", "2")
    assert result.exit_code == 3
    assert ids(doc) == {"tls.connect.failed"}
    assert doc["findings"][0]["evidence"]["stage"] == "tcp"


def test_silent_server_times_out(invoke, silent_server):
    srv = silent_server()
    result, doc = probe(invoke, srv.port, "--timeout", "0.2")
    assert ids(doc) == {"tls.connect.failed"}
    finding = doc["findings"][0]
    assert finding["severity"] == "error" and finding["evidence"]["timed_out"] is True
    assert result.exit_code == 5
    # One connection, a ClientHello sent on it, then the client gave up by itself.
    assert srv.wait_closed()  # seen end of stream: everything sent before it was read
    assert srv.connections == 1 and srv.received[0][:1] == b"\x16"
    assert "tls.connect.failed" in result.stderr


def test_plain_http_port(invoke, http_server):
    srv = http_server({})
    result, doc = probe(invoke, srv.port, "--timeout", "2")
    assert result.exit_code == 3
    assert ids(doc) == {"tls.connect.failed"}
    assert "does not speak TLS" in doc["findings"][0]["detail"]


def test_several_targets(invoke, ca, ca_file, tls_server):
    good = tls_server(ca.issue_cert("127.0.0.1"))
    bad = tls_server(ca.issue_cert("elsewhere.test"))
    result = invoke("probe", "tls", f"127.0.0.1:{good.port}", f"127.0.0.1:{bad.port}", "--ca-file", ca_file, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert [problems(r) for r in doc["results"]] == [set(), {"tls.hostname.mismatch"}]


# ---------------------------------------------------------------- input


def test_missing_ca_file_is_one_line_error(invoke, tmp_path):
    result = invoke("probe", "tls", "127.0.0.1:1", "--ca-file", str(tmp_path / "nope.pem"))
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "nope.pem" in result.stderr


def test_garbage_ca_file_is_one_line_error(invoke, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = invoke("probe", "tls", "127.0.0.1:1", "--ca-file", str(bad))
    assert result.exit_code == 1
    assert "bad.pem" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("target", "expected"), [
    ("example.com", ("example.com", 443)), ("example.com:8443", ("example.com", 8443)),
    ("[::1]:8443", ("::1", 8443)), ("::1", ("::1", 443)), ("https://example.com:444/path", ("example.com", 444)),
])
def test_split_host_port(target, expected):
    assert split_host_port(target) == expected


def test_authority_parts_and_is_ip():
    from diagkit.formats.urls import authority_parts, is_ip

    assert authority_parts(" [2001:db8::1]:8443 ") == ("2001:db8::1", "8443")
    assert authority_parts("https://api.example.com:8443/v1?x=1") == ("api.example.com", "8443")
    assert authority_parts("api.example.com") == ("api.example.com", "")
    assert authority_parts("api.example.com:https") == ("api.example.com", "https")  # callers judge the port
    assert authority_parts("2001:db8::1") == ("2001:db8::1", "")
    assert [is_ip(t) for t in ("192.0.2.1", "[2001:db8::1]", "2001:db8::1", "example.com", "")] == \
        [True, True, True, False, False]


def test_split_host_port_rejects_bad_port():
    from diagkit.errors import UsageError

    for target in ("example.com:https", "example.com:0", "example.com:65536", "[::1]:99999", ":443"):
        with pytest.raises(UsageError):
            split_host_port(target)
    assert split_host_port("[::1]:65535") == ("::1", 65535)
    assert split_host_port("https://example.com/x") == ("example.com", 443)
