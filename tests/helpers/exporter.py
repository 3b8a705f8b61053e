"""Run the real exporter as a subprocess on a free loopback port and scrape it."""

import os
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


class Exporter:
    """``with Exporter(config_yaml, *flags) as e: e.scrape()``"""

    def __init__(self, config: str | None = None, *flags: str, env=None):
        self.config = config
        self.flags = list(flags)
        self.env = env
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._tmp = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Exporter":
        args = [sys.executable, "-m", "exporter", f"--web.listen-address=127.0.0.1:{self.port}", *self.flags]
        if self.config is not None:
            self._tmp = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
            self._tmp.write(self.config)
            self._tmp.close()
            args.append(f"--config.file={self._tmp.name}")
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, cwd=ROOT, stderr=self.stderr, env=self.env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited {self.proc.returncode}: {self.log()}")
            try:
                requests.get(self.url + "/-/healthy", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("exporter did not start listening within 30 s")

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def text(self) -> str:
        r = requests.get(self.url + "/metrics", timeout=60)
        r.raise_for_status()
        return r.text

    def scrape(self) -> dict[str, list]:
        """name -> samples (prometheus_client Sample tuples), counters under their sample names."""
        out: dict[str, list] = {}
        for fam in text_string_to_metric_families(self.text()):
            for s in fam.samples:
                out.setdefault(s.name, []).append(s)
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp:
            os.unlink(self._tmp.name)
            self._tmp = None  # stop() may be called twice

    def __enter__(self) -> "Exporter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def by_pid(samples: list, pid: int, **labels) -> list:
    return [s for s in samples if s.labels.get("pid") == str(pid)
            and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples: list, pid: int, **labels) -> float:
    found = by_pid(samples, pid, **labels)
    assert len(found) == 1, f"expected one sample for pid {pid} {labels}, got {found}"
    return found[0].value
