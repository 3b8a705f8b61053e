"""A node of many processes for the benchmarks: a C parent forking N children of K areas.

Each child renames itself (50 comm names among them, "svc-00".."svc-49"),
makes K single-page map areas (mprotect of alternate pages inside one
mapping), says it is ready and waits; the fleet dies with its parent
(PR_SET_PDEATHSIG) or with the process group. Used by benchmarks/scale.py and
benchmarks/bpf.py.
"""

import os
import shutil
import subprocess
import tempfile

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


class Fleet:
    def __init__(self, n: int, k: int):
        self.n, self.k = n, k
        self.dir = tempfile.mkdtemp(prefix="vma-fleet-")

    def __enter__(self):
        cc = shutil.which("cc") or shutil.which("gcc")
        src, binary = os.path.join(self.dir, "fleet.c"), os.path.join(self.dir, "fleet")
        with open(src, "w") as f:
            f.write(FLEET)
        subprocess.run([cc, "-O2", "-o", binary, src], check=True)
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
        shutil.rmtree(self.dir, ignore_errors=True)
