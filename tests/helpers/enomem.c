/* enomem: a process whose memory-mapping call fails with ENOMEM once, for a known
 * reason; for the tests of the BPF ENOMEM counters (tests/test_bpf_enomem.py).
 *
 *   enomem mmap-rlimit-data       RLIMIT_DATA set to VmData + 256 KiB, then a 1 MiB
 *                                 private writable mmap
 *   enomem mprotect-rlimit-data   the same limit; a 1 MiB PROT_NONE mapping made writable
 *   enomem brk-rlimit-data        the same limit; the break moved up by 1 MiB
 *   enomem mremap-rlimit-as       RLIMIT_AS set to VmSize + 1 MiB; a one-page mapping
 *                                 grown to 4 MiB
 *   enomem shmat-rlimit-as        the same limit; a 4 MiB SysV segment attached
 *   enomem mmap-memory            a 2^47-byte mapping: more than a 47-bit address space
 *                                 holds, with no limit set
 *   enomem quiet N                N mmap/munmap pairs that all succeed
 *
 * It then prints "ready <pid> errno=<errno of that call>" (0 if it did not fail)
 * and waits for a signal. Output goes through write(2): after the limit is
 * lowered, stdio's buffer allocation could fail and count as one more ENOMEM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <unistd.h>

#define MiB (1024L * 1024)

static void say(const char *fmt, long a, long b) {
    char line[128];
    int n = snprintf(line, sizeof line, fmt, a, b);
    if (write(1, line, n) != n) _exit(3);
}

/* A /proc/self/status value in kB, as bytes. */
static long status_bytes(const char *key) {
    char buf[8192];
    FILE *f = fopen("/proc/self/status", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *p = strstr(buf, key);
    if (!p) { say("error no %ld%ld\n", 0, 0); _exit(3); }
    return atol(p + strlen(key)) * 1024;
}

static void limit(int resource, long bytes) {
    struct rlimit r;
    getrlimit(resource, &r);
    r.rlim_cur = bytes;
    if (setrlimit(resource, &r) != 0) { say("error setrlimit %ld %ld\n", resource, errno); _exit(3); }
}

int main(int argc, char **argv) {
    int err = 0;
    /* As helper.h's take_comm (this file keeps off stdio and its buffers): a comm of the test's. */
    if (getenv("WORKLOAD_COMM")) prctl(PR_SET_NAME, getenv("WORKLOAD_COMM"), 0, 0, 0);
    if (argc < 2) return 2;
    const char *mode = argv[1];
    if (!strcmp(mode, "mmap-rlimit-data")) {
        limit(RLIMIT_DATA, status_bytes("VmData:") + 256 * 1024);
        if (mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) err = errno;
    } else if (!strcmp(mode, "mprotect-rlimit-data")) {
        char *p = mmap(NULL, MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 3;
        limit(RLIMIT_DATA, status_bytes("VmData:") + 256 * 1024);
        if (mprotect(p, MiB, PROT_READ | PROT_WRITE) != 0) err = errno;
    } else if (!strcmp(mode, "brk-rlimit-data")) {
        limit(RLIMIT_DATA, status_bytes("VmData:") + 256 * 1024);
        if (sbrk(MiB) == (void *)-1) err = errno;
    } else if (!strcmp(mode, "mremap-rlimit-as")) {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 3;
        limit(RLIMIT_AS, status_bytes("VmSize:") + MiB);
        if (mremap(p, 4096, 4 * MiB, MREMAP_MAYMOVE) == MAP_FAILED) err = errno;
    } else if (!strcmp(mode, "shmat-rlimit-as")) {
        int id = shmget(IPC_PRIVATE, 4 * MiB, IPC_CREAT | 0600);
        if (id < 0) return 3;
        limit(RLIMIT_AS, status_bytes("VmSize:") + MiB);
        if (shmat(id, NULL, 0) == (void *)-1) err = errno;
        shmctl(id, IPC_RMID, NULL);
    } else if (!strcmp(mode, "mmap-memory")) {
        if (mmap(NULL, 1UL << 47, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
            err = errno;
    } else if (!strcmp(mode, "quiet") && argc == 3) {
        for (long i = 0, n = atol(argv[2]); i < n; i++) {
            void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED || munmap(p, 4096) != 0) { err = errno; break; }
        }
    } else {
        return 2;
    }
    say("ready %ld errno=%ld\n", getpid(), err);
    for (;;) pause();
}
