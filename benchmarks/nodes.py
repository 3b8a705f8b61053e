"""Nodes to benchmark on: real processes with real map areas, started and stopped here.

- ``small_node()``: about 370 processes with the machine's own: 220 small C
  programs, 80 Python interpreters with many libraries loaded, three processes
  of 30,000 map areas and one mapping a shm object 20,000 times;
- ``Fleet(n, k)``: n forked children of k extra map areas each, 50 comm names
  among them (3,000 or 10,000 processes), from one small C program.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests")]

from helpers.workload import Workload  # noqa: E402

PYTHON_SLEEPER = "import json, decimal, ssl, sqlite3, sys; print('ready', flush=True); sys.stdin.read()"

# A parent that forks N children of K extra map areas each, 50 comm names among them.
FLEET = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = atol(argv[1]), k = atol(argv[2]), page = sysconf(_SC_PAGESIZE);
    int ready[2];
    if (pipe(ready) != 0) return 3;
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 3; }
        if (pid == 0) {
            char name[16];
            prctl(PR_SET_PDEATHSIG, SIGKILL);  /* the fleet dies with its parent */
            snprintf(name, sizeof name, "svc-%02ld", i % 50);
            prctl(PR_SET_NAME, name);
            char *p = mmap(NULL, (k + 2) * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            for (long j = 1; j <= k; j++) mprotect(p + j * page, page, j % 2 ? PROT_READ : PROT_READ | PROT_WRITE);
            if (write(ready[1], "x", 1) != 1) _exit(3);
            for (;;) pause();
        }
    }
    char buf[4096];
    for (long got = 0; got < n;) {
        ssize_t r = read(ready[0], buf, sizeof buf);
        if (r <= 0) return 3;
        got += r;
    }
    printf("ready %ld\n", n);
    fflush(stdout);
    for (;;) pause();
}
"""


def compile_c(source: str, directory: str, name: str) -> str:
    """Compile *source* with the system C compiler into *directory*; return the binary."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler: scripts/test.sh installs gcc")
    src, binary = os.path.join(directory, name + ".c"), os.path.join(directory, name)
    with open(src, "w") as f:
        f.write(source)
    subprocess.run([cc, "-O2", "-Wall", "-o", binary, src], check=True)
    return binary


@contextlib.contextmanager
def small_node():
    """About 370 processes with this machine's own."""
    workloads = [Workload("areas", 100) for _ in range(220)]
    workloads += [Workload("areas", 30_000) for _ in range(3)]
    workloads += [Workload("shm", f"/vma-bench-{os.getpid()}", 20_000)]
    pythons = []
    try:
        for w in workloads:
            w.start()
        pythons = [subprocess.Popen([sys.executable, "-c", PYTHON_SLEEPER], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True) for _ in range(80)]
        for p in pythons:
            p.stdout.readline()  # imported everything
        yield
    finally:
        for w in workloads:
            w.stop()
        for p in pythons:
            p.kill()
            p.wait()


class Fleet:
    """``with Fleet(n, k):`` n processes of k extra map areas, killed as a group at exit."""

    def __init__(self, n: int, k: int):
        self.n, self.k = n, k
        self.dir = tempfile.mkdtemp(prefix="vma-fleet-")

    def __enter__(self):
        binary = compile_c(FLEET, self.dir, "fleet")
        self.proc = subprocess.Popen([binary, str(self.n), str(self.k)], stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.__exit__()
            raise RuntimeError(f"fleet did not start: {line!r}")
        return self

    def __exit__(self, *exc):
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.proc.wait()
        # The children die with their group but are reaped by init a moment later: wait for
        # the group to be empty, so the next node is measured without them.
        for _ in range(6000):
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        shutil.rmtree(self.dir, ignore_errors=True)


class Sysctl:
    """Raise a sysctl to at least a value for the duration, restore it after (root only)."""

    def __init__(self, name: str, at_least: int):
        self.path = "/proc/sys/" + name.replace(".", "/")
        self.at_least = at_least

    def __enter__(self):
        with open(self.path) as f:
            self.old = f.read().strip()
        if int(self.old) < self.at_least:
            with open(self.path, "w") as f:
                f.write(str(self.at_least))
        return self

    def __exit__(self, *exc):
        with open(self.path, "w") as f:
            f.write(self.old)


def processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())
