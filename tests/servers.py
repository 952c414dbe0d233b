"""Real loopback servers for tests: HTTP(S) with programmable routes, raw TLS, silent sockets, DNS.

Every server binds 127.0.0.1 port 0, runs in a daemon thread and is shut down by its fixture. Their
loops poll for the stop request every POLL seconds, so stopping one takes at most that long: the suite
must not spend its time waiting on teardowns.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

POLL = 0.02  # seconds between two checks for a stop request in every server loop

# ---------------------------------------------------------------- HTTP(S)


@dataclass
class Request:
    method: str
    path: str  # path with query
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def route(self) -> str:
        return urlsplit(self.path).path


@dataclass
class Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | str = b""

    def encoded(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body


Handler = Callable[[Request], Response]


class _QuietHTTPServer(http.server.ThreadingHTTPServer):
    """A client that gives up (timeout tests) must not make the server print a traceback: under CliRunner,
    sys.stderr is the command's captured stderr, so the noise would land in the output under test."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def json_response(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    import json

    return Response(status, [("Content-Type", "application/json"), *(headers or [])], json.dumps(data))


class HTTPServer:
    """Routes: {"/path": Response | handler} or {("METHOD", "/path"): ...}; unknown paths get 404.

    `requests` records everything received, so tests can assert what the client sent.
    """

    def __init__(self, routes: dict[Any, Response | Handler] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[Any, Response | Handler] = dict(routes or {})
        self.requests: list[Request] = []
        server = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                server.requests.append(req)
                target = server.routes.get((self.command, req.route), server.routes.get(req.route))
                if target is None:
                    resp = Response(404, [("Content-Type", "text/plain")], "not found")
                elif callable(target):
                    resp = target(req)
                else:
                    resp = target
                payload = resp.encoded()
                self.send_response(resp.status)
                names = {k.lower() for k, _ in resp.headers}
                for name, value in resp.headers:
                    self.send_header(name, value)
                if "content-length" not in names:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if ssl_context is not None else "http"
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(POLL,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def start(self) -> HTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


# ---------------------------------------------------------------- raw TLS


def server_context(leaf: Any, *, chain: bool = True, min_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """An ssl server context for a trustme LeafCert; chain=False sends the leaf only (no intermediates)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if chain:
        leaf.configure_cert(ctx)
    else:
        with leaf.private_key_pem.tempfile() as key, leaf.cert_chain_pems[0].tempfile() as cert:
            ctx.load_cert_chain(cert, key)
    if min_version is not None:
        ctx.minimum_version = min_version
    return ctx


class TCPServer:
    """A loopback TCP server: each accepted connection is handled by `_handle` on a thread of its own;
    stop() returns within one poll interval. Subclasses implement `_handle` (and may extend stop())."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        self.sock.settimeout(POLL)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class TLSServer(TCPServer):
    """Accepts TLS connections and answers any bytes with a minimal HTTP response carrying `Date`."""

    def __init__(self, ctx: ssl.SSLContext, date_header: str | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.date_header = date_header

    def _handle(self, conn: socket.socket) -> None:
        import email.utils

        conn.settimeout(5)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                data = tls.recv(4096)
                if data:
                    date = self.date_header or email.utils.formatdate(usegmt=True)
                    tls.sendall(f"HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode())
        except (OSError, ssl.SSLError):
            pass


class SilentServer:
    """Accepts TCP connections (or UDP datagrams) and never answers: proves timeouts are enforced.

    It records what the client did instead of how long it took: `datagrams` (UDP payloads received),
    `connections` (TCP connections accepted) and `closed` (connections the client itself closed, seen
    as end of stream). A client that gave up on its own timeout has closed every connection it opened;
    `wait_closed` blocks until that is seen (its limit is a safety net, never the check).
    """

    def __init__(self, udp: bool = False, host: str = "127.0.0.1") -> None:
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(self.family, kind)
        self.sock.bind((host, 0))
        if not udp:
            self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self.connections = 0
        self.closed = 0
        self.received: list[bytes] = []  # bytes sent on each connection, in accept order
        self._held: list[socket.socket] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(udp,), daemon=True)

    def _loop(self, udp: bool) -> None:
        self.sock.settimeout(POLL)
        while not self._stop.is_set():
            try:
                if udp:
                    data, _ = self.sock.recvfrom(65535)
                    with self._changed:
                        self.datagrams.append(data)
                        self._changed.notify_all()
                else:
                    conn, _ = self.sock.accept()
                    with self._changed:
                        index = self.connections
                        self.connections += 1
                        self.received.append(b"")
                        self._held.append(conn)
                    threading.Thread(target=self._watch, args=(conn, index), daemon=True).start()
            except (TimeoutError, OSError):
                continue

    def _watch(self, conn: socket.socket, index: int) -> None:
        """Reads (never answers) until the client closes the connection or the server stops."""
        conn.settimeout(POLL)
        while not self._stop.is_set():
            try:
                data = conn.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            with self._changed:
                if data:
                    self.received[index] += data
                else:
                    self.closed += 1
                self._changed.notify_all()
            if not data:
                return

    def wait_closed(self, limit: float = 10.0) -> bool:
        """True once every accepted connection has been closed by the client."""
        with self._changed:
            return self._changed.wait_for(lambda: self.connections and self.closed == self.connections, limit)

    def wait_datagrams(self, count: int, limit: float = 10.0) -> bool:
        """True once at least `count` UDP datagrams have arrived."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.datagrams) >= count, limit)

    def datagrams_so_far(self) -> list[bytes]:
        """Every datagram sent to this server before the call, none missed: a marker sent now arrives after
        them (one loopback receive queue is first in, first out), so once it is seen they all have been."""
        marker = b"diagkit-test-marker-" + str(id(self)).encode()
        with socket.socket(self.family, socket.SOCK_DGRAM) as sock:
            sock.sendto(marker, (self.host, self.port))
        with self._changed:
            self._changed.wait_for(lambda: marker in self.datagrams, 10.0)
            seen = list(self.datagrams)
        assert marker in seen, "the silent UDP server stopped reading"
        return seen[:seen.index(marker)]

    def start(self) -> SilentServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.sock.close()


# ---------------------------------------------------------------- DNS


class DnslibServer:
    """A dnslib server on 127.0.0.1 answering with `resolver` over UDP, and over TCP at the same port
    (tcp=False: the TCP port is bound but never listens, so a TCP query is refused). Subclasses build
    the resolver and call _listen(); stop() returns within one poll interval."""

    _servers: list[Any]
    _holder: socket.socket | None = None

    def _listen(self, resolver: Any, tcp: bool = True) -> None:
        from dnslib.server import DNSLogger
        from dnslib.server import DNSServer as _DNSServer

        # dnslib logs every query with print(); under CliRunner that lands in the command's stdout.
        quiet = DNSLogger(logf=lambda _line: None)
        # The UDP port the OS picks can be taken for TCP (an ephemeral client port): pick again.
        for attempt in range(20):
            udp = _DNSServer(resolver, address="127.0.0.1", port=0, logger=quiet)
            self.port = udp.server.server_address[1]
            try:
                if tcp:
                    self._servers = [udp, _DNSServer(resolver, address="127.0.0.1", port=self.port, tcp=True,
                                                     logger=quiet)]
                else:
                    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    holder.bind(("127.0.0.1", self.port))  # bound, never listening: connect gets RST
                    self._holder, self._servers = holder, [udp]
                return
            except OSError:
                udp.server.server_close()
                if attempt == 19:
                    raise

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        # dnslib's start_thread() polls at socketserver's default 0.5 s; every stop would wait that long.
        for srv in self._servers:
            threading.Thread(target=srv.server.serve_forever, args=(POLL,), daemon=True).start()
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.server.shutdown()
            srv.server.server_close()
        if self._holder is not None:
            self._holder.close()


class DNSServer(DnslibServer):
    """A dnslib server answering from a zone written in master-file syntax.

    `zone` is zone-file text (e.g. "www.test. 60 IN A 192.0.2.1"). Names listed in `servfail` get SERVFAIL,
    in `refused` get REFUSED; names absent from the zone get NXDOMAIN, present names with another
    type get NODATA. Listens on UDP and TCP at the same port.
    """

    def __init__(self, zone: str = "", servfail: tuple[str, ...] = (), refused: tuple[str, ...] = ()) -> None:
        from dnslib import QTYPE, RCODE, RR
        from dnslib.server import BaseResolver

        records = RR.fromZone(zone) if zone.strip() else []
        bad = {n.rstrip(".").lower() + ".": RCODE.SERVFAIL for n in servfail}
        bad.update({n.rstrip(".").lower() + ".": RCODE.REFUSED for n in refused})
        self.queries: list[tuple[str, str]] = []
        outer = self

        class _Resolver(BaseResolver):
            def resolve(self, request: Any, handler: Any) -> Any:
                reply = request.reply()
                qname = str(request.q.qname).lower()
                qtype = QTYPE[request.q.qtype]
                outer.queries.append((qname, qtype))
                if qname in bad:
                    reply.header.rcode = bad[qname]
                    return reply
                owned = [rr for rr in records if str(rr.rname).lower() == qname]
                if not owned:
                    reply.header.rcode = RCODE.NXDOMAIN
                    return reply
                for rr in owned:
                    if QTYPE[rr.rtype] == qtype or (QTYPE[rr.rtype] == "CNAME" and qtype != "CNAME"):
                        reply.add_answer(rr)
                return reply

        self._listen(_Resolver())
