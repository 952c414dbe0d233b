"""Shared pytest fixtures: CLI runner, trustme CA, and factories for real loopback servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests import servers

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def system_resolver() -> Iterator[servers.DNSServer]:
    """The "system" resolver every test's dns probe sees: a loopback server with an empty zone, so a
    probe a checklist runs on a name or an IP gets NXDOMAIN from 127.0.0.1, never an answer (or a
    wait) from the machine's own resolver."""
    srv = servers.DNSServer("").start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                   system_resolver: servers.DNSServer) -> None:
    """Keys and config written by commands go to a temp dir, never the developer's real config; the
    system resolvers are the loopback `system_resolver` (a test may set DIAGKIT_SYSTEM_RESOLVERS itself)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("DIAGKIT_SYSTEM_RESOLVERS", system_resolver.address)
    monkeypatch.setenv("DIAGKIT_CONFIG_DIR", str(home / "config"))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()


@pytest.fixture
def invoke(runner: CliRunner):
    """invoke("probe", "tls", ...) -> click Result with .exit_code, .stdout, .stderr."""
    from diagkit.cli import cli

    def _invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)

    return _invoke


@pytest.fixture(scope="session")
def ca() -> Any:
    import trustme

    return trustme.CA()


@pytest.fixture
def ca_file(ca: Any, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def http_server() -> Iterator[Any]:
    """Factory: http_server(routes, ssl_context=None) -> started HTTPServer, stopped after the test."""
    started: list[Any] = []

    def make(routes: dict[Any, Any] | None = None, ssl_context: Any = None) -> servers.HTTPServer:
        srv = servers.HTTPServer(routes, ssl_context).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def _web_pool() -> Iterator[list[Any]]:
    """Plain HTTP servers shared by a module's tests: a test takes them in turn through `web`."""
    pool = [servers.HTTPServer().start() for _ in range(3)]
    yield pool
    for srv in pool:
        srv.stop()


@pytest.fixture
def web(_web_pool: list[Any]) -> Any:
    """Factory: web(routes) -> one of the module's plain HTTP servers, given these routes and no requests
    yet; each call in a test gets another server (another origin)."""
    handed = iter(_web_pool)

    def make(routes: dict[Any, Any] | None = None) -> servers.HTTPServer:
        srv = next(handed)
        srv.routes = dict(routes or {})
        srv.requests.clear()
        return srv

    return make


@pytest.fixture
def tls_server() -> Iterator[Any]:
    """Factory: tls_server(leaf, chain=True, min_version=None, date_header=None) -> started TLSServer."""
    started: list[Any] = []

    def make(leaf: Any, *, chain: bool = True, min_version: Any = None, date_header: str | None = None) -> servers.TLSServer:
        srv = servers.TLSServer(servers.server_context(leaf, chain=chain, min_version=min_version), date_header).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def silent_server() -> Iterator[Any]:
    started: list[Any] = []

    def make(udp: bool = False, host: str = "127.0.0.1") -> servers.SilentServer:
        srv = servers.SilentServer(udp, host).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def dns_server() -> Iterator[Any]:
    """Factory: dns_server(zone_text, servfail=(), refused=()) -> started DNSServer."""
    started: list[Any] = []

    def make(zone: str = "", **kwargs: Any) -> servers.DNSServer:
        srv = servers.DNSServer(zone, **kwargs).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def corpus_required() -> bool:
    """The shared corpus must be complete when ../shared is there, and always in CI (CI set): only a
    checkout without ../shared at all may skip the corpus tests."""
    return SHARED.is_dir() or bool(os.environ.get("CI"))


def require_shared(relative: str) -> Path:
    """SHARED/relative (a file or folder): fails the test when it is missing and ../shared is required,
    skips it only when ../shared is absent outside CI."""
    path = SHARED / relative
    if not path.exists():
        if corpus_required():
            pytest.fail(f"{path} is missing ({SHARED} is present or CI is set)", pytrace=False)
        pytest.skip(f"{SHARED} is absent")
    return path


def require_corpus(relative: str) -> Path:
    """CORPUS/relative, under the rule of require_shared."""
    return require_shared(f"corpus/{relative}")


def corpus_outcomes(kind: str) -> dict[str, int]:
    """The exit code each corpus file under `kind` gives (tests/fixtures/corpus_outcomes.json), by path
    relative to the corpus."""
    import json

    table = json.loads((Path(__file__).parent / "fixtures" / "corpus_outcomes.json").read_text())
    return {rel: code for rel, code in table.items() if rel.startswith(kind.rstrip("/") + "/")}


def check_corpus_complete(kind: str) -> None:
    """Every file the outcome table names is in the corpus, and every corpus file has an outcome."""
    require_corpus(kind)
    expected = set(corpus_outcomes(kind))
    present = {p.relative_to(CORPUS).as_posix() for p in corpus_files(kind)}
    missing = sorted(expected - present)
    assert not missing, f"missing from {CORPUS}: {missing}"
    unrecorded = sorted(present - expected)
    assert not unrecorded, f"no outcome recorded in tests/fixtures/corpus_outcomes.json for: {unrecorded}"


def corpus_files(kind: str) -> list[Path]:
    """Files under CORPUS/kind, for parametrizing; an absent folder gives none (require_corpus fails then)."""
    base = CORPUS / kind
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.is_file() and p.name != "SOURCES.md")


os.environ.setdefault("DIAGKIT_TEST", "1")
