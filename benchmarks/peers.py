"""The exporters measured side by side: vma-exporter's daemon and its peers, and the C floor.

Each daemon runs as a real process on a loopback port and is scraped over HTTP the
way Prometheus scrapes (one kept-alive connection per target, gzip, Prometheus's
Accept header, so a daemon that speaks OpenMetrics is asked for it); its CPU is read from /proc/PID/stat (utime + stime: every thread's, dead ones included)
before and after a batch of scrapes, its peak RSS from VmHWM. The peers, when
installed (Debian's prometheus-process-exporter and prometheus-node-exporter):

- process-exporter with its defaults (it reads smaps and every thread) and with
  ``-gather-smaps=false -threads=false``, both with a config watching every process;
- node_exporter with its defaults (no per-process figures: the cost of the exporter
  every node already runs).

The floor is benchmarks/floor.c: every /proc/PID/status and maps read in C, counting
newlines; it measures its own CPU per round with getrusage.

Everything measured runs on one CPU (MEASURE_CPU): the daemons and the floor are
started there, and a benchmark measuring in its own process holds ``pinned()``.
Unpinned, on this two-core VM, the floor's CPU per round wandered by a third
between minutes (75 to 110 ms for the same 3,000 processes) as the scheduler
moved it; pinned beside what it is compared with, it held within a few percent.
"""
import contextlib

import os
import shutil
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests"), HERE]

from helpers.daemon import free_port, port_open, stop_process  # noqa: E402
from nodes import compile_c  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROCESS_EXPORTER = shutil.which("prometheus-process-exporter") or shutil.which("process-exporter")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
# Every process, one group per comm: the config that makes process-exporter read what we read.
PROCESS_EXPORTER_CONFIG = "process_names:\n  - name: '{{.Comm}}'\n    cmdline: ['.+']\n"
MEASURE_CPU = max(os.sched_getaffinity(0))  # the node's workloads and the kernel's own work keep the others


def _pin() -> None:
    """preexec_fn of what is measured: every thread it starts inherits the CPU (a Go
    peer sizes GOMAXPROCS from it, as it would under a one-core CPU limit)."""
    os.sched_setaffinity(0, {MEASURE_CPU})


@contextlib.contextmanager
def pinned():
    """This process on MEASURE_CPU for the block, then back where it was."""
    before = os.sched_getaffinity(0)
    _pin()
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads, exited ones too), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


# What Prometheus 2.x sends (scrape/scrape.go, acceptHeader); with it, gzip and keep-alive.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


class Daemon:
    """An exporter process on a free loopback port."""

    def __init__(self, name: str, argv: list[str]):
        self.name, self.port = name, free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc = None
        self.session = requests.Session()

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_pin)
        for _ in range(600):
            if port_open(self.port):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.argv}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not listening: {self.argv}")

    def __exit__(self, *exc):
        stop_process(self.proc, 10)
        self.session.close()

    def scrape(self) -> int:
        """One scrape on the daemon's kept-alive connection (Prometheus keeps one per target
        since 2.0; a new connection per scrape would add a thread start to every figure here)."""
        r = self.session.get(f"http://127.0.0.1:{self.port}/metrics", timeout=600,
                             headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        r.raise_for_status()
        return len(r.content)

    def cpu_per_scrape(self, scrapes: int) -> float:
        before = cpu_seconds(self.proc.pid)
        for _ in range(scrapes):
            self.scrape()
        return (cpu_seconds(self.proc.pid) - before) / scrapes

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)


def daemons(workdir: str, bpf: bool = False) -> list[Daemon]:
    """vma-exporter (and with *bpf* its BPF source too) and every installed peer."""
    listen = "127.0.0.1:{port}"
    ours = [sys.executable, "-m", "exporter", f"--web.listen-address={listen}"]
    out = [Daemon("vma-exporter", ours)]
    if bpf:
        out.append(Daemon("vma-exporter --collect.source=bpf", ours + ["--collect.source=bpf"]))
    if PROCESS_EXPORTER:
        config = os.path.join(workdir, "process-exporter.yml")
        with open(config, "w") as f:
            f.write(PROCESS_EXPORTER_CONFIG)
        base = [PROCESS_EXPORTER, f"-config.path={config}", f"-web.listen-address={listen}"]
        out.append(Daemon("process-exporter (defaults)", base))
        out.append(Daemon("process-exporter -gather-smaps=false -threads=false",
                          base + ["-gather-smaps=false", "-threads=false"]))
    if NODE_EXPORTER:
        out.append(Daemon("node_exporter (defaults)", [NODE_EXPORTER, f"--web.listen-address={listen}"]))
    return out


class Floor:
    """benchmarks/floor.c, compiled here and driven one round per request."""

    def __init__(self, procfs: str = "/proc"):
        self.dir = tempfile.mkdtemp(prefix="vma-floor-")
        with open(os.path.join(HERE, "floor.c")) as f:
            binary = compile_c(f.read(), self.dir, "floor")
        self.proc = subprocess.Popen([binary, procfs], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=_pin)

    def round(self) -> tuple[float, int, int]:
        """One read of every status and maps file: (CPU seconds, processes, map lines)."""
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        ns, procs, lines = self.proc.stdout.readline().split()
        return int(ns) / 1e9, int(procs), int(lines)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
