"""The exporter as a real subprocess on a free loopback port, for the tests.

``Daemon`` is the one runner: flags, another user and group, another Python, a
pre-exec hook, TLS (ready means the port accepts TCP, which holds for HTTPS and
basic auth alike). helpers/exporter.py's ``Exporter`` adds a targets config to
it; e2e/prometheus.py shares the port and process helpers for its own binary.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_process(proc: subprocess.Popen, timeout: float, sig=signal.SIGTERM) -> int:
    """Send *sig* if it still runs; SIGKILL if it has not exited within *timeout* s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def samples_by_name(text: str) -> dict[str, list]:
    """Parse an exposition: sample name -> samples (counters under their sample names)."""
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


class Daemon:
    """``python3 -m exporter`` on 127.0.0.1:<free port>; stderr kept for the log."""

    START_TIMEOUT = 60
    STOP_TIMEOUT = 30

    def __init__(self, *flags: str, user=None, group=None, env=None, scheme="http", python=sys.executable,
                 preexec_fn=None):
        self.port = free_port()
        self.scheme = scheme
        self.args = [python, "-m", "exporter", f"--web.listen-address=127.0.0.1:{self.port}", *flags]
        self.user, self.group, self.preexec_fn = user, group, preexec_fn
        self.env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> "Daemon":
        self.stderr = tempfile.TemporaryFile()
        extra = {"user": self.user, "group": self.group, "extra_groups": []} if self.user is not None else {}
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stderr=self.stderr, env=self.env,
                                     preexec_fn=self.preexec_fn, **extra)
        if wait:
            deadline = time.monotonic() + self.START_TIMEOUT
            while not port_open(self.port):  # TCP only: works for TLS and auth alike
                if self.proc.poll() is not None:
                    raise RuntimeError(f"exporter exited {self.proc.returncode}: {self.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"exporter not listening after {self.START_TIMEOUT} s: {self.log()}")
                time.sleep(0.05)
        return self

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def wait_log(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"no {text!r} in the log within {timeout} s:\n{self.log()}"
            time.sleep(0.05)
        return self.log()

    def text(self, **kw) -> str:
        """One scrape of /metrics, as text; *kw* go to requests (verify=, auth=, cert=)."""
        r = requests.get(self.url + "/metrics", timeout=120, **kw)
        assert r.status_code == 200, r.text
        return r.text

    def metrics(self, **kw) -> dict[str, list]:
        """Scrape and parse: sample name -> samples."""
        return samples_by_name(self.text(**kw))

    def stop(self, sig=signal.SIGTERM) -> int:
        return stop_process(self.proc, self.STOP_TIMEOUT, sig)

    def __enter__(self) -> "Daemon":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def one(samples: dict, name: str, **labels) -> float:
    found = [s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0].value
