"""Churn: thousands of processes come and go while the exporter is scraped hundreds
of times. Every scrape answers 200 with a parseable exposition, nothing
is logged at error level, and the exporter's open file descriptors and RSS do not
grow from the middle of the run to its end.

The spawner is a small C program (compiled here): each child does one of
- rename itself with prctl(PR_SET_NAME), names with spaces, parentheses, quotes;
- map 40 areas, then exit;
- exit at once and stay a zombie until the parent reaps it ~0.2 s later;
- rename itself several times while alive;
- exec /bin/true (a new address space under the same pid).
"""

import os
import shutil
import statistics
import subprocess
import threading

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers.daemon import Daemon

SPAWNER = r"""
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *names[] = {"churn (a) b", "churn)x(", "ch\"urn\\", "churn{}=,", "churn one", "churn-two"};

static void child(long i) {
    long page = sysconf(_SC_PAGESIZE);
    switch (i % 5) {
    case 0:
        prctl(PR_SET_NAME, names[i % 6]);
        usleep(5000);
        break;
    case 1: {
        char *p = mmap(NULL, 42 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED)
            for (int k = 1; k <= 40; k++) mprotect(p + k * page, page, k % 2 ? PROT_READ : PROT_READ | PROT_WRITE);
        usleep(20000);
        break;
    }
    case 2:
        break; /* exits at once: a zombie until the parent reaps it */
    case 3:
        for (int k = 0; k < 6; k++) { prctl(PR_SET_NAME, names[(i + k) % 6]); usleep(2000); }
        break;
    case 4:
        execl("/bin/true", "true", (char *)NULL);
        break;
    }
    _exit(0);
}

/* Spawns a batch of children every tick until stdin reaches EOF (the test says when it
 * has seen enough), printing "spawned N" every 500; then reaps every child and prints the
 * totals. No rate is asked of it: the test waits for counts, not for time. */
int main(void) {
    enum { MAXKIDS = 65536, BATCH = 8 };
    static pid_t pids[MAXKIDS];
    static double born[MAXKIDS];
    long spawned = 0, reaped = 0, head = 0, tail = 0;
    double start = now();
    struct pollfd in = {0, POLLIN, 0};
    for (;;) {
        if (poll(&in, 1, 20) > 0) { /* readable: the test closed stdin (EOF) or wrote to it */
            char c;
            if (read(0, &c, 1) <= 0) break;
        }
        double t0 = now();
        for (int k = 0; k < BATCH && tail - head < MAXKIDS; k++) {
            pid_t pid = fork();
            if (pid == 0) child(spawned);
            if (pid > 0) {
                pids[tail % MAXKIDS] = pid;
                born[tail % MAXKIDS] = t0;
                tail++;
                if (++spawned % 500 == 0) { printf("spawned %ld\n", spawned); fflush(stdout); }
            }
        }
        /* Reap, oldest first, only children older than 0.2 s: the quick ones stay zombies that long. */
        while (head < tail && now() - born[head % MAXKIDS] > 0.2) {
            if (waitpid(pids[head % MAXKIDS], NULL, WNOHANG) == 0) break;
            head++;
            reaped++;
        }
    }
    for (; head < tail; head++, reaped++) waitpid(pids[head % MAXKIDS], NULL, 0);
    printf("done spawned %ld reaped %ld seconds %.1f\n", spawned, reaped, now() - start);
    return 0;
}
"""

# Enough to prove it, waited for as counts (never as a duration or a rate): the run ends
# once the spawner has made SPAWNS processes and SCRAPES scrapes have answered meanwhile.
SPAWNS = 4000
SCRAPES = 300


@pytest.fixture(scope="module")
def spawner(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (scripts/test.sh installs gcc)")
    d = tmp_path_factory.mktemp("churn")
    (d / "spawner.c").write_text(SPAWNER)
    subprocess.run([cc, "-O2", "-Wall", "-o", str(d / "spawner"), str(d / "spawner.c")], check=True)
    return str(d / "spawner")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_churn(spawner):
    with Daemon("--log.level=info") as d:
        pid = d.proc.pid
        requests.get(d.url + "/metrics", timeout=60)  # warm up before the churn starts
        churn = subprocess.Popen([spawner], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        results: list[tuple[int, str | None]] = []  # (status, problem), in order
        samples: list[tuple[int, int, int]] = []  # (scrapes so far, fds, rss kB)
        spawned = [0]
        enough = threading.Event()  # SPAWNS processes and SCRAPES scrapes: stop
        lock = threading.Lock()

        def read_spawner():
            for line in churn.stdout:
                if line.startswith("spawned "):
                    spawned[0] = int(line.split()[1])
                elif line.startswith("done "):
                    spawned[0] = int(line.split()[2])

        def scrape(session: requests.Session | None):
            while not enough.is_set():
                try:
                    r = (session or requests).get(d.url + "/metrics", timeout=60)
                    problem = None
                    families = {f.name: f for f in text_string_to_metric_families(r.text)}
                    if families["vma_exporter_collection_complete"].samples[0].value != 1:
                        problem = "incomplete collection"
                except Exception as exc:  # noqa: BLE001 -- recorded and asserted below
                    r, problem = None, f"{type(exc).__name__}: {exc}"
                with lock:
                    results.append((r.status_code if r is not None else 0, problem))
                    samples.append((len(results), fds(pid), rss_kb(pid)))
                    if len(results) >= SCRAPES and spawned[0] >= SPAWNS:
                        enough.set()

        # One scraper keeps its connection alive (as Prometheus does); one connects afresh each time.
        threads = [threading.Thread(target=read_spawner),
                   threading.Thread(target=scrape, args=(requests.Session(),)),
                   threading.Thread(target=scrape, args=(None,))]
        for t in threads:
            t.start()
        enough.wait(600)
        churn.stdin.close()  # the spawner reaps its children and exits
        churn.wait(120)
        for t in threads:
            t.join(120)
        final = d.metrics()
        log = d.log()

    assert enough.is_set(), f"{len(results)} scrapes, {spawned[0]} processes spawned before the test gave up"
    bad = [r for r in results if r[0] != 200 or r[1]]
    assert not bad, bad[:5]
    assert "level=error" not in log and "Traceback" not in log, log[-3000:]
    vanished = final["vma_exporter_read_errors_total"]
    assert sum(s.value for s in vanished if s.labels["reason"] == "vanished") > 0  # the race was really hit

    n = len(samples)
    middle, last = samples[int(0.35 * n):int(0.55 * n)], samples[int(0.8 * n):]
    fd_mid, fd_end = max(s[1] for s in middle), max(s[1] for s in last)
    rss_mid, rss_end = statistics.median(s[2] for s in middle), statistics.median(s[2] for s in last)
    print(f"\nchurn: {spawned[0]} processes spawned during {len(results)} scrapes; "
          f"fds middle {fd_mid} end {fd_end}; RSS middle {rss_mid / 1024:.1f} MiB end {rss_end / 1024:.1f} MiB")
    assert fd_end <= fd_mid + 2, (fd_mid, fd_end)  # two scrapers: at most their sockets in flight
    assert rss_end <= rss_mid * 1.05 + 2048, (rss_mid, rss_end)
