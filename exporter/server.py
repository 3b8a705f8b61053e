"""HTTP: /metrics, the landing page, health endpoints, POST /-/reload.

The standard library's threading HTTP server: each connection gets a thread,
and collect.Collector makes concurrent scrapes share one pass over /proc.

Hardening, because the port is reachable by whoever is on the network:

- The TLS handshake runs in the connection's own thread, never in the accept
  loop: a client that connects and stays silent would otherwise stall every
  other scrape. It has HANDSHAKE_TIMEOUT seconds to finish.
- At most MAX_CONNECTIONS connections are served at once (each holds a
  thread); more are closed at accept. An idle keep-alive connection is closed
  after IDLE_TIMEOUT seconds.
- TLS, basic auth, extra headers and the rate limit come from the *current*
  web config (``web()``), so a reload applies them to the next connection or
  request without a restart.
"""

import errno
import gzip
import html
import logging
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from exporter import __version__
from exporter.procfs import ProcfsError
from exporter.webconfig import WebConfig

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0  # above Prometheus's longest usual scrape interval, so keep-alive works
# Until a connection has made one good request it holds its slot only this long:
# otherwise 32 idle sockets would lock every scraper out for two minutes.
FIRST_REQUEST_TIMEOUT = 10.0
MAX_CONNECTIONS = 32  # Prometheus HA pairs need two; stays under systemd's TasksMax=64
MAX_BODY = 64 * 1024  # POST bodies are not used; read and drop at most this much

LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vma-exporter</title></head>
<body>
<h1>vma-exporter {version}</h1>
<p>Map areas (VMAs) per process against <code>vm.max_map_count</code>, memory and hugepages.</p>
<ul>
<li><a href="{path}">Metrics</a></li>
<li><a href="/-/healthy">Health</a></li>
</ul>
<p>Config: <code>{config}</code></p>
</body></html>
"""

_NO_WEB = WebConfig()


def parse_listen_address(value: str) -> tuple[str, int]:
    """``:9979``, ``0.0.0.0:9979``, ``[::1]:9979``, ``localhost:9979`` -> (host, port).

    A host that does not resolve is bad usage (ValueError), told before anything
    starts: "Name or service not known" from the bind, later, would read like a
    failure of the node.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address: expected [host]:port, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host:
        try:
            socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as exc:
            raise ValueError(f"--web.listen-address: {host!r} in {value!r} is not an address of this host "
                             f"(it does not resolve: {exc.args[-1] if exc.args else exc})") from None
    return host, int(port)


# Bind errors that come from the address itself (a typo, an address this host does not
# have): bad usage, exit 2. Others (EADDRINUSE: another program holds the port; EACCES:
# a port below 1024 without the privilege) are the situation's: exit 1.
ADDRESS_ERRORS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL)


class Handlers:
    """What the HTTP layer needs from the rest of the exporter."""

    def __init__(self, exposition, telemetry_path: str = "/metrics",
                 config_source: Callable[[], str] = lambda: "",
                 reload: Callable[[], tuple[bool, str]] | None = None,
                 web: Callable[[], WebConfig | None] = lambda: None):
        self.exposition = exposition  # exposition.Exposition: render(accept) -> (body, content type)
        self.telemetry_path = telemetry_path
        self.config_source = config_source
        self.reload = reload
        self.web = web


def accepts_gzip(header: str | None) -> bool:
    """RFC 9110 content coding: gzip (or *) listed with a q-value above 0."""
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        return q > 0
    return False


def make_handler(h: Handlers):
    class Handler(BaseHTTPRequestHandler):
        server_version = f"vma-exporter/{__version__}"
        protocol_version = "HTTP/1.1"
        timeout = FIRST_REQUEST_TIMEOUT  # applied to the socket by StreamRequestHandler.setup()
        _web = _NO_WEB

        def log_message(self, fmt, *args):  # route the stdlib's access log to debug
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8", headers=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (*self._web.headers, *headers):
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            if code in (401, 429):
                self.close_connection = True  # a refused client does not keep its slot
            else:
                self.connection.settimeout(IDLE_TIMEOUT)  # a real client: keep-alive as usual

        def _admit(self) -> bool:
            """Rate limit, then basic auth, as exporter-toolkit orders them."""
            self._web = h.web() or _NO_WEB
            if self._web.rate_limit is not None and not self._web.rate_limit.allow():
                self._send(429, b"Too Many Requests\n")
                return False
            if self._web.auth is None or self._web.auth.check(self.headers.get("Authorization")):
                return True
            log.debug("%s: basic auth failed", self.address_string())
            self._send(401, b"Unauthorized\n", headers=[("WWW-Authenticate", 'Basic realm="vma-exporter"')])
            return False

        def do_GET(self):
            if not self._admit():
                return
            path = self.path.split("?", 1)[0]
            if path == h.telemetry_path:
                return self._metrics()
            if path == "/":
                page = LANDING.format(version=__version__, path=html.escape(h.telemetry_path),
                                      config=html.escape(h.config_source()))
                return self._send(200, page.encode(), "text/html; charset=utf-8")
            if path in ("/-/healthy", "/-/ready"):
                return self._send(200, b"OK\n")
            if path == "/-/reload":
                return self._send(405, b"Method Not Allowed: use POST\n", headers=[("Allow", "POST")])
            self._send(404, b"Not Found\n")

        do_HEAD = do_GET

        def do_POST(self):
            self._drain_body()
            if not self._admit():
                return
            if self.path.split("?", 1)[0] != "/-/reload" or h.reload is None:
                return self._send(404, b"Not Found\n")
            ok, message = h.reload()
            self._send(200 if ok else 500, (message + "\n").encode())

        def _drain_body(self):
            """Consume a request body so the next keep-alive request starts clean."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY or self.headers.get("Transfer-Encoding"):
                self.close_connection = True  # cannot find the end of it safely: close after replying
            elif length:
                self.rfile.read(length)

        def _metrics(self):
            try:
                body, ctype = h.exposition.render(self.headers.get("Accept"))
            except (OSError, ProcfsError) as exc:  # the node, not the exporter: say what, not where in the code
                log.error("collection failed: %s", exc)
                return self._send(500, f"collection failed: {exc}\n".encode())
            except Exception as exc:  # a bug: never let it kill the server thread silently
                log.exception("collection failed")
                return self._send(500, f"collection failed: {type(exc).__name__}: {exc}\n".encode())
            headers = [("Vary", "Accept-Encoding")]
            if accepts_gzip(self.headers.get("Accept-Encoding")):
                body = gzip.compress(body, compresslevel=1)
                headers.append(("Content-Encoding", "gzip"))
            self._send(200, body, ctype, headers)

    return Handler


def _ipv6_works() -> bool:
    """socket.has_ipv6 is how Python was built; a kernel booted with ipv6.disable=1
    refuses AF_INET6 sockets all the same, and then ':port' means IPv4 only."""
    if not socket.has_ipv6:
        return False
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler, web: Callable[[], WebConfig | None] = lambda: None,
                 tls: bool = False, max_connections: int = MAX_CONNECTIONS):
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host == "":  # ':port' listens on every interface, IPv6 and IPv4 where the kernel allows
            v6 = _ipv6_works()
            self.address_family = socket.AF_INET6 if v6 else socket.AF_INET
            address = ("::" if v6 else "0.0.0.0", address[1])
        self.web = web
        self.tls = tls  # fixed for the life of the listener; the context may change on reload
        self._max = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._warned = -1e9
        super().__init__(address, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def process_request(self, request, client_address):
        """In the accept loop: only a cheap admission check, then a thread."""
        if not self._slots.acquire(blocking=False):
            now = time.monotonic()
            if now - self._warned > 60:  # a flood must not flood the log too
                self._warned = now
                log.warning("%d connections open: closing new ones (from %s)", self._max, client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError as exc:  # "can't start new thread": a task limit (cgroup pids.max) was hit
            self._slots.release()
            log.warning("cannot start a thread for %s: %s", client_address[0], exc)
            self.shutdown_request(request)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            if self.tls:
                request = self._handshake(request, client_address)
                if request is None:
                    return
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _handshake(self, sock: socket.socket, client_address) -> ssl.SSLSocket | None:
        web = self.web()
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            tls_sock = web.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            log.debug("%s: cannot start TLS: %s", client_address[0], exc)
            self.shutdown_request(sock)
            return None
        try:
            tls_sock.do_handshake()
            if not web.san_allowed(tls_sock.getpeercert()):
                raise ssl.SSLError("client certificate has none of client_allowed_sans")
        except (OSError, ValueError) as exc:  # plain HTTP to a TLS port, no or bad certificate, timeout
            log.debug("%s: TLS handshake failed: %s", client_address[0], exc)
            self.shutdown_request(tls_sock)
            return None
        return tls_sock

    def handle_error(self, request, client_address):
        # A client that hangs up or times out is not the exporter's error: debug only.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("%s: connection error: %s", client_address[0], exc)
        else:
            log.error("%s: error serving the request", client_address[0], exc_info=True)


def start(address: tuple[str, int], handlers: Handlers, tls: bool = False) -> Server:
    server = Server(address, make_handler(handlers), handlers.web, tls)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
