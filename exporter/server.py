"""HTTP: /metrics, the landing page, health endpoints, /-/reload.

The standard library's threading HTTP server: each scrape gets a thread, and
collect.Collector makes concurrent scrapes share one pass over /proc. TLS and
basic auth plug in through ``wrap_socket`` and ``authorize`` (see webconfig).
"""

import gzip
import html
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__

log = logging.getLogger(__name__)

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


def parse_listen_address(value: str) -> tuple[str, int]:
    """``:9979``, ``0.0.0.0:9979``, ``[::1]:9979`` -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address: expected [host]:port, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host, int(port)


class Handlers:
    """What the HTTP layer needs from the rest of the exporter."""

    def __init__(self, registry: CollectorRegistry, telemetry_path: str = "/metrics",
                 config_source: Callable[[], str] = lambda: "",
                 reload: Callable[[], tuple[bool, str]] | None = None,
                 authorize: Callable[[str | None], bool] | None = None):
        self.registry = registry
        self.telemetry_path = telemetry_path
        self.config_source = config_source
        self.reload = reload
        self.authorize = authorize


def make_handler(h: Handlers):
    class Handler(BaseHTTPRequestHandler):
        server_version = f"vma-exporter/{__version__}"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # route the stdlib's access log to debug
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8", headers=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _authorized(self) -> bool:
            if h.authorize is None or h.authorize(self.headers.get("Authorization")):
                return True
            self._send(401, b"Unauthorized\n", headers=[("WWW-Authenticate", 'Basic realm="vma-exporter"')])
            return False

        def do_GET(self):
            if not self._authorized():
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
            self._send(404, b"Not Found\n")

        do_HEAD = do_GET

        def do_POST(self):
            if not self._authorized():
                return
            if self.path.split("?", 1)[0] != "/-/reload" or h.reload is None:
                return self._send(404 if h.reload else 405, b"Not Found\n")
            ok, message = h.reload()
            self._send(200 if ok else 500, (message + "\n").encode())

        def _metrics(self):
            encoder, ctype = choose_encoder(self.headers.get("Accept"))
            try:
                body = encoder(h.registry)
            except Exception:  # never let one bad collection kill the server thread silently
                log.exception("collection failed")
                return self._send(500, b"collection failed, see the exporter's log\n")
            headers = []
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                body = gzip.compress(body, compresslevel=1)
                headers.append(("Content-Encoding", "gzip"))
            self._send(200, body, ctype, headers)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler, wrap_socket=None):
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if host == "":  # ':port' listens on every interface, IPv6 and IPv4 where the kernel allows
            self.address_family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
            address = ("::" if socket.has_ipv6 else "0.0.0.0", address[1])
        self._wrap = wrap_socket
        super().__init__(address, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def get_request(self):
        conn, addr = super().get_request()
        if self._wrap is not None:
            conn = self._wrap(conn)
        return conn, addr


def start(address: tuple[str, int], handlers: Handlers, wrap_socket=None) -> Server:
    server = Server(address, make_handler(handlers), wrap_socket)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
