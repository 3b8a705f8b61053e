/* mmap_loop: CPU per memory-mapping call, to price the ENOMEM tracepoints.
 *
 *   mmap_loop mmap N      N pairs of mmap(4 KiB, private anonymous) + munmap
 *   mmap_loop getppid N   N getppid() calls: any syscall pays once syscall
 *                         trace events are enabled (the kernel then takes every
 *                         task's slow syscall path)
 *
 * Prints "<ns per syscall>" of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID),
 * kernel time included. benchmarks/bpf.py runs it with and without
 * exporter/bpf/enomem.bpf.c attached.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: mmap_loop mmap|getppid N\n"); return 2; }
    long n = atol(argv[2]), calls;
    double start = now_ns();
    if (!strcmp(argv[1], "mmap")) {
        for (long i = 0; i < n; i++) {
            void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED || munmap(p, 4096) != 0) { perror("mmap"); return 1; }
        }
        calls = 2 * n;
    } else if (!strcmp(argv[1], "getppid")) {
        for (long i = 0; i < n; i++) syscall(SYS_getppid); /* not the vDSO: a real syscall */
        calls = n;
    } else {
        return 2;
    }
    printf("%.1f\n", (now_ns() - start) / calls);
    return 0;
}
