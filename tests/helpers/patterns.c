/* patterns: one process per way map areas multiply, for the pattern tests.
 *
 *   patterns shm NAME N          one POSIX shm object mapped N times (mmap without munmap)
 *   patterns munmap N            one mapping of 2N pages, then every other page unmapped:
 *                                N pieces of 4 KiB separated by holes
 *   patterns carve N             a PROT_NONE reservation of 2N+1 pages with N rw-p pages
 *                                mapped over it with MAP_FIXED: 2N+1 alternating areas
 *   patterns carve-grow N RATE   the same reservation, carved RATE pages a second up to N
 *   patterns threads N           N-1 threads parked besides the main thread (N threads),
 *                                each on a default (8 MiB) stack with its guard page
 *   patterns unjoined N          N threads that exit at once and are never joined: their
 *                                stacks stay mapped while the process has 1 thread
 *   patterns files DIR N         N files created in DIR, each mapped once (one page)
 *   patterns hugefiles DIR N     N files of one huge page on the hugetlbfs mount DIR, named
 *                                rtemap_0 ... as DPDK does, each mapped once
 *   patterns arenas N            N threads that malloc at the same time (glibc arenas)
 *   patterns rlimit-data MIB     RLIMIT_DATA set to MIB MiB, then 1 MiB private writable
 *                                mappings until one is refused (ENOMEM)
 *
 * After setup it prints "ready <pid> <detail>" and waits for a signal. A
 * failure prints "error <what>: <strerror>" and exits 3. Files it creates
 * under DIR stay: the test that gave DIR removes them.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "helper.h"

static void *park(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void *leave(void *arg) { return arg; }

static pthread_barrier_t together;

static void *allocate(void *arg) {
    (void)arg;
    pthread_barrier_wait(&together);  /* all at once: malloc finds its arenas busy and makes more */
    volatile char *p = malloc(64);
    if (p) p[0] = 1;
    pthread_barrier_wait(&together);
    for (;;) pause();
    return NULL;
}

static char *reserve(long pages) {
    char *base = mmap(NULL, pages * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) die("mmap reservation");
    return base;
}

static void carve_page(char *base, long i) {
    /* incident 003 (docs/incidents.md): MAP_FIXED over the reservation, every other page */
    if (mmap(base + (2 * i + 1) * page, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
             -1, 0) == MAP_FAILED) die("mmap MAP_FIXED");
}

static void map_file(const char *path, size_t size) {
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    if (fd < 0) die("open");
    if (ftruncate(fd, size) != 0) die("ftruncate");
    if (mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED) die("mmap file");
    close(fd);  /* the mapping keeps the file */
}

static void base36(long n, char *out) {
    char tmp[16];
    int i = 0;
    do { tmp[i++] = "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36]; n /= 36; } while (n);
    while (i) *out++ = tmp[--i];
    *out = 0;
}

int main(int argc, char **argv) {
    char detail[128] = "";
    page = sysconf(_SC_PAGESIZE);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 3) { fprintf(stderr, "usage: see the comment at the top of patterns.c\n"); return 2; }
    const char *mode = argv[1];
    long n = atol(argv[argc - 1]);
    if (!strcmp(mode, "shm") && argc == 4) {
        int fd = shm_open(argv[2], O_CREAT | O_RDWR, 0600);
        if (fd < 0) die("shm_open");
        if (ftruncate(fd, page) != 0) die("ftruncate");
        for (long i = 0; i < n; i++)
            if (mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED) die("mmap shm");
    } else if (!strcmp(mode, "munmap") && argc == 3) {
        char *p = mmap(NULL, 2 * n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) die("mmap");
        for (long i = 0; i < n; i++) {
            p[2 * i * page] = 1;
            if (munmap(p + (2 * i + 1) * page, page) != 0) die("munmap");
        }
        snprintf(detail, sizeof detail, "first=%lx", (unsigned long)p);
    } else if (!strcmp(mode, "carve") && argc == 3) {
        char *base = reserve(2 * n + 1);
        for (long i = 0; i < n; i++) carve_page(base, i);
        snprintf(detail, sizeof detail, "reservation=%lx-%lx", (unsigned long)base,
                 (unsigned long)(base + (2 * n + 1) * page));
    } else if (!strcmp(mode, "carve-grow") && argc == 4) {
        n = atol(argv[2]);
        long rate = atol(argv[3]), done = 0;
        char *base = reserve(2 * n + 1);
        snprintf(detail, sizeof detail, "reservation=%lx-%lx", (unsigned long)base,
                 (unsigned long)(base + (2 * n + 1) * page));
        ready(detail);
        for (;;) {
            for (long i = 0; i < rate && done < n; i++) carve_page(base, done++);
            sleep_ms(1000);
        }
    } else if ((!strcmp(mode, "threads") || !strcmp(mode, "unjoined")) && argc == 3) {
        int parked = !strcmp(mode, "threads");
        for (long i = 0; i < (parked ? n - 1 : n); i++) {
            pthread_t t;
            int err = pthread_create(&t, NULL, parked ? park : leave, NULL);
            if (err) { errno = err; die("pthread_create"); }
        }
        if (!parked) {  /* wait until they have all exited: the process is down to one thread */
            char path[64], line[256];
            snprintf(path, sizeof path, "/proc/%d/status", (int)getpid());
            for (int threads = 0; threads != 1; sleep_ms(10)) {
                FILE *f = fopen(path, "r");
                if (!f) die("status");
                while (fgets(line, sizeof line, f))
                    if (!strncmp(line, "Threads:", 8)) threads = atoi(line + 8);
                fclose(f);
            }
        }
    } else if (!strcmp(mode, "files") && argc == 4) {
        char path[4096], name[32];
        for (long i = 0; i < n; i++) {
            base36(i, name);  /* _0.cfs, _1.cfs, ... _a.cfs: a search index's segments */
            snprintf(path, sizeof path, "%s/_%s.cfs", argv[2], name);
            map_file(path, page);
        }
    } else if (!strcmp(mode, "hugefiles") && argc == 4) {
        char path[4096];
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/rtemap_%ld", argv[2], i);
            map_file(path, 2UL << 20);
        }
    } else if (!strcmp(mode, "arenas") && argc == 3) {
        pthread_barrier_init(&together, NULL, n + 1);
        for (long i = 0; i < n; i++) {
            pthread_t t;
            int err = pthread_create(&t, NULL, allocate, NULL);
            if (err) { errno = err; die("pthread_create"); }
        }
        pthread_barrier_wait(&together);
        pthread_barrier_wait(&together);
    } else if (!strcmp(mode, "rlimit-data") && argc == 3) {
        struct rlimit lim = {n << 20, RLIM_INFINITY};
        if (setrlimit(RLIMIT_DATA, &lim) != 0) die("setrlimit");
        long got = 0;
        while (mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) got++;
        snprintf(detail, sizeof detail, "refused errno=%d after=%ld", errno, got);
    } else {
        fprintf(stderr, "patterns: bad arguments\n");
        return 2;
    }
    ready(detail);
    for (;;) pause();
}
