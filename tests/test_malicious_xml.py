"""Deliberately malicious XML through every SAML entry point: files, URLs, base64, DEFLATE and HARs.

Each attack must end cleanly: the expected exit code, no traceback, no local file content read, and
bounded time and memory (entity expansion refused, decompression capped).
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import json
import tracemalloc
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.servers import Response

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
LOCAL_SECRET = "LOCAL-FILE-CONTENT-7f3a"


@pytest.fixture
def local_secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(LOCAL_SECRET)
    return path


def attacks(secret: Path) -> dict[str, str]:
    uri = secret.as_uri()
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return {
        "xxe": f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{uri}">]>'
               f'<md:EntityDescriptor xmlns:md="{MD}" entityID="&x;"/>',
        "parameter_entity": f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{uri}"> %p;]><r/>',
        "billion_laughs": f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY lol0 "lol">{lol}]><r>&lol9;</r>',
        "quadratic": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + "A" * 50_000 + '">]><r>'
                     + "&a;" * 50_000 + "</r>",
        "external_dtd": '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>',
        "xinclude": f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:xi="http://www.w3.org/2001/XInclude" '
                    f'entityID="x"><xi:include href="{uri}" parse="text"/></md:EntityDescriptor>',
        "xslt_pi": f'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="{uri}"?>'
                   f'<md:EntityDescriptor xmlns:md="{MD}" entityID="x"/>',
        "deep": "<a>" * 100_000 + "</a>" * 100_000,
    }


REFUSED = {"xxe", "parameter_entity", "billion_laughs", "quadratic", "external_dtd", "deep"}


def _clean(result: Any, code: int) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert LOCAL_SECRET not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) <= 1, result.stderr


def _ids(result: Any) -> set[str]:
    doc = json.loads(result.stdout)
    return {f["id"] for f in doc["findings"]}


@pytest.mark.parametrize("name", sorted(attacks(Path("/x"))))
def test_saml_metadata_file_attacks(invoke, tmp_path: Path, local_secret: Path, name: str) -> None:
    path = tmp_path / f"{name}.xml"
    path.write_text(attacks(local_secret)[name])
    result = invoke("probe", "saml-metadata", path, "--json")
    _clean(result, 3)
    ids = _ids(result)
    # Refused before any work proportional to the attack: at the DOCTYPE (nothing declared, nothing
    # expanded or fetched), or at the parser's depth limit for deep nesting.
    details = " ".join(f["detail"] for f in json.loads(result.stdout)["findings"])
    if name == "deep":
        assert "Excessive depth in document: 256" in details, details
    elif name in REFUSED:
        assert "(DTDForbidden)" in details, details
    # Refused outright, or parsed with XInclude/PI inert (then the entity simply is not an IdP).
    assert ids == {"saml.metadata.invalid"} if name in REFUSED else "saml.metadata.no_idp" in ids, ids


@pytest.mark.parametrize("name", sorted(attacks(Path("/x"))))
def test_saml_metadata_url_attacks(invoke, http_server, local_secret: Path, name: str) -> None:
    body = attacks(local_secret)[name]
    srv = http_server({"/md": Response(200, [("Content-Type", "application/samlmetadata+xml")], body)})
    result = invoke("probe", "saml-metadata", srv.url("/md"), "--json", "--timeout", "5")
    _clean(result, 3)
    assert ("saml.metadata.invalid" in _ids(result)) == (name in REFUSED)
    assert [r.route for r in srv.requests] == ["/md"]  # no DTD or stylesheet fetched anywhere


def test_metadata_50mb_attribute_refused_by_size(invoke, tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    with path.open("w") as handle:
        handle.write(f'<md:EntityDescriptor xmlns:md="{MD}" entityID="')
        handle.write("A" * (50 << 20))
        handle.write('"/>')
    result = invoke("probe", "saml-metadata", path)
    _clean(result, 1)
    assert "larger than" in result.stderr and "big.xml" in result.stderr


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


@functools.cache
def _deflate_bomb(megabytes: int = 256) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b" " * (1 << 20)
    return packer.compress(b"<a>") + b"".join(packer.compress(block) for _ in range(megabytes)) + packer.flush()


@pytest.mark.parametrize("encoding", ["file", "base64", "deflate"])
@pytest.mark.parametrize("name", ["xxe", "billion_laughs", "quadratic", "external_dtd"])
def test_saml_response_attacks(invoke, tmp_path: Path, local_secret: Path, name: str, encoding: str) -> None:
    xml = attacks(local_secret)[name].encode()
    data = {"file": xml, "base64": base64.b64encode(xml), "deflate": base64.b64encode(_deflate(xml))}[encoding]
    path = tmp_path / "resp.b64"
    path.write_bytes(data)
    result = invoke("probe", "saml-response", path, "--json")
    _clean(result, 3)
    doc = json.loads(result.stdout)
    assert [f["id"] for f in doc["findings"]] == ["saml.response.invalid"]
    assert "refused" in doc["findings"][0]["detail"]


def test_saml_response_deflate_bomb_is_capped(invoke, tmp_path: Path) -> None:
    path = tmp_path / "bomb.b64"
    path.write_bytes(base64.b64encode(_deflate_bomb()))
    tracemalloc.start()
    try:
        result = invoke("probe", "saml-response", path, "--json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _clean(result, 3)
    assert "inflates beyond" in result.stdout
    assert peak < 100 << 20, peak  # the bomb would be 256 MiB


def test_saml_response_stdin_is_bounded(invoke) -> None:
    result = invoke("probe", "saml-response", "-", input="A" * (21 << 20))
    _clean(result, 1)
    assert "larger than" in result.stderr


# ---------------------------------------------------------------- SAML inside a HAR


def _har(entries: list[dict]) -> str:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": entries}})


def _entry(url: str, *, status: int = 200, method: str = "GET", params: list | None = None,
           resp_headers: list | None = None, content: dict | None = None) -> dict:
    entry: dict[str, Any] = {
        "startedDateTime": "2026-03-01T10:00:00Z", "time": 10,
        "request": {"method": method, "url": url, "headers": [], "queryString": []},
        "response": {"status": status, "headers": resp_headers or [], "content": content or {"mimeType": "text/html"}},
        "timings": {"send": 1, "wait": 5, "receive": 4},
    }
    if params is not None:
        entry["request"]["postData"] = {"mimeType": "application/x-www-form-urlencoded", "params": params}
    return entry


@functools.cache
def _gzip_bomb(megabytes: int = 256) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as handle:
        handle.write(b'{"error":"')
        block = b"A" * (1 << 20)
        for _ in range(megabytes):
            handle.write(block)
    return buffer.getvalue()


def test_har_with_xxe_saml_deflate_bomb_and_gzip_bomb(invoke, tmp_path: Path, local_secret: Path) -> None:
    xxe = base64.b64encode(attacks(local_secret)["xxe"].encode()).decode()
    bomb = base64.b64encode(_deflate_bomb()).decode()
    har = _har([
        _entry("https://idp.example.com/sso?SAMLRequest=" + quote(bomb, safe="") + "&RelayState=r"),
        _entry("https://sp.example.com/acs", method="POST", params=[{"name": "SAMLResponse", "value": xxe}]),
        _entry("https://api.example.com/data", status=400,
               resp_headers=[{"name": "Content-Encoding", "value": "gzip"},
                             {"name": "Content-Type", "value": "application/json"}],
               content={"mimeType": "application/json", "encoding": "base64",
                        "text": base64.b64encode(_gzip_bomb()).decode()}),
    ])
    path = tmp_path / "bombs.har"
    path.write_text(har)
    tracemalloc.start()
    try:
        result = invoke("probe", "har", path, "--json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _clean(result, 3)
    doc = json.loads(result.stdout)
    by_id = {f["id"]: f for f in doc["findings"]}
    assert "saml.response.invalid" in by_id and "DTD" in by_id["saml.response.invalid"]["detail"]
    assert "har.saml.unreadable" in by_id and "inflates beyond" in by_id["har.saml.unreadable"]["detail"]
    assert "har.response.client_error" in by_id
    assert peak < 150 << 20, peak  # each bomb alone is 256 MiB inflated


def test_har_gzip_body_is_inflated_with_a_cap() -> None:
    from diagkit.formats import har as har_file

    entry = {"response": {"headers": [{"name": "Content-Encoding", "value": "gzip"}],
                          "content": {"encoding": "base64", "text": base64.b64encode(_gzip_bomb()).decode()}}}
    assert len(har_file.response_bytes(entry)) == har_file.MAX_INFLATED_BODY
    assert len(har_file.response_bytes(entry, limit=1000)) == 1000
    small = {"response": {"headers": [{"name": "Content-Encoding", "value": "gzip"}],
                          "content": {"encoding": "base64", "text": base64.b64encode(gzip.compress(b"hello")).decode()}}}
    assert har_file.response_bytes(small) == b"hello"
