"""The HTTP server and the daemon's life cycle, end to end: flags, endpoints,
connection limits, --collect.timeout, SIGTERM.

The exporter runs as a real subprocess: helpers/daemon.py's ``Daemon``.
"""

import gzip
import http.client
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from exporter import server
from helpers.daemon import ROOT, Daemon, one, port_open
from helpers.workload import Workload


# --- the daemon's life cycle -------------------------------------------------------------

def test_sigterm_exits_zero_and_closes_the_port():
    d = Daemon().start()
    assert d.metrics()["vma_exporter_collection_complete"][0].value == 1
    assert d.stop(signal.SIGTERM) == 0
    assert not port_open(d.port)
    assert "shutting down (SIGTERM)" in d.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT] * 4)
def test_a_signal_right_after_start_is_not_lost(sig):
    # The kernel hands a process signal to any thread; before signals were blocked in
    # every thread and taken with sigwait, this hung about one time in ten.
    d = Daemon().start()
    assert d.stop(sig) == 0
    assert not port_open(d.port)


@pytest.mark.parametrize("flags, message", [
    (["--web.listen-address=nonsense"], "expected [host]:port"),
    (["--collect.timeout=-3"], "must be positive"),
    (["--collect.timeout=soon"], "not a duration"),
    (["--web.config.file=/nonexistent/web.yml"], "/nonexistent/web.yml: cannot read web config"),
])
def test_bad_flags_exit_2_with_a_message(flags, message):
    r = subprocess.run([sys.executable, "-m", "exporter", *flags], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert message in r.stderr


def test_port_in_use_exits_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "exporter", f"--web.listen-address=127.0.0.1:{port}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_collect_timeout_serves_what_it_has_and_says_so(workload_bin):
    # Four processes of 60,000 map areas: reading one takes far longer than 1 ms, and the
    # deadline is checked between processes, so the pass stops with processes left over.
    workloads = [Workload("areas", 60_000).start() for _ in range(4)]
    try:
        with Daemon("--collect.timeout=1ms") as cut, Daemon() as full:
            cut_samples = cut.metrics()
            assert one(cut_samples, "vma_exporter_collection_complete") == 0
            assert one(cut_samples, "vma_node_map_areas_limit") > 0  # node facts are still there
            full_samples = full.metrics()
            assert one(full_samples, "vma_exporter_collection_complete") == 1
            assert one(cut_samples, "vma_exporter_processes_scanned") < one(full_samples, "vma_exporter_processes_scanned")
            for d in (cut, full):
                assert "level=error" not in d.log()
    finally:
        for w in workloads:
            w.stop()


# --- endpoints ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon():
    with Daemon("--web.telemetry-path=/vma") as d:
        yield d


def test_endpoints(daemon):
    landing = requests.get(daemon.url + "/", timeout=60)
    assert landing.status_code == 200 and 'href="/vma"' in landing.text
    assert requests.get(daemon.url + "/-/healthy", timeout=60).text == "OK\n"
    assert requests.get(daemon.url + "/metrics", timeout=60).status_code == 404
    r = requests.get(daemon.url + "/-/reload", timeout=60)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert requests.post(daemon.url + "/-/quit", timeout=60).status_code == 404
    head = requests.head(daemon.url + "/vma", timeout=60)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 0


def test_gzip_when_asked(daemon):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    conn.request("GET", "/vma", headers={"Accept-Encoding": "gzip"})
    r = conn.getresponse()
    assert r.getheader("Content-Encoding") == "gzip"
    assert b"vma_exporter_build_info" in gzip.decompress(r.read())
    conn.close()


def test_keep_alive_survives_a_post_with_a_body(daemon):
    # The body of a POST must be consumed, or it would be read as the next request.
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    conn.request("POST", "/-/reload", body=b"x" * 1000)
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"config reloaded\n"
    conn.request("GET", "/-/healthy")
    assert conn.getresponse().read() == b"OK\n"
    conn.close()


def test_malformed_requests_do_not_hurt(daemon):
    for junk in (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
                 b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"):
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as s:
            s.sendall(junk)
            reply = b"".join(iter(lambda: s.recv(65536), b""))  # the server closes after an error
        # 400, 414 or 431; an unparseable request line gets the stdlib's HTTP/0.9-style error page.
        assert b"Error code: 4" in reply and b"HTTP/1.1 200" not in reply
    assert requests.get(daemon.url + "/-/healthy", timeout=60).status_code == 200
    assert "level=error" not in daemon.log()


def test_connections_past_the_cap_are_closed_and_the_server_recovers():
    httpd = server.Server(("127.0.0.1", 0), server.make_handler(server.Handlers(None)),
                          max_connections=2)
    import threading
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(2)]
        deadline = time.monotonic() + 30
        while httpd._slots._value:  # wait until the accept loop has given both their slots
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as extra:
            extra.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            assert extra.recv(100) == b""  # closed without an answer
        for s in idle:
            s.close()
        deadline = time.monotonic() + 30
        while True:  # the slots free up once the handler threads see the closed sockets
            try:
                assert requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=5).status_code == 200
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_gzip_only_when_accepted_and_vary_is_sent():
    from exporter.server import accepts_gzip

    assert accepts_gzip("gzip") and accepts_gzip("deflate, gzip;q=0.5") and accepts_gzip("*")
    assert not accepts_gzip(None) and not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0, identity") and not accepts_gzip("gzip;q=0.0")
