/* workload: a process with a known number of map areas, for the tests.
 *
 *   workload areas N [ARG...]   N single-page anonymous areas (alternating
 *                               PROT_READ / PROT_READ|PROT_WRITE), inside a
 *                               PROT_NONE guard page on each side (N + 2 areas);
 *                               extra ARGs are ignored (tests put "secrets" in argv).
 *   workload shm NAME N         map one POSIX shm object N times (N areas, one object)
 *   workload leak NAME RATE     map one shm object RATE times a second, never unmap
 *   workload at-limit           map 2 * vm.max_map_count pages, then munmap every
 *                               other one until munmap fails with ENOMEM: the process
 *                               then sits at the limit
 *   workload hugetlb N          N anonymous MAP_HUGETLB pages of the default size, touched
 *   workload grow N SECONDS     add N single-page areas every SECONDS
 *   workload leader-exit N      a thread makes N areas (as "areas"), then the main thread
 *                               calls pthread_exit: the leader reads as a zombie in
 *                               /proc/PID/stat while the process lives on
 *
 * With WORKLOAD_COMM set in the environment it first renames itself (comm), so
 * that tests running side by side can each select only their own processes.
 * After setup it prints "ready <pid> <detail>" on stdout and waits for a signal.
 * A failure prints "error <what>: <strerror>" and exits 3.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "helper.h"

/* n single-page areas between two PROT_NONE guards: exactly n + 2 areas. */
static void make_areas(long n) {
    char *base = mmap(NULL, (n + 2) * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) die("mmap");
    for (long i = 0; i < n; i++) {
        int prot = (i % 2) ? PROT_READ : PROT_READ | PROT_WRITE;
        if (mprotect(base + (i + 1) * page, page, prot) != 0) die("mprotect");
    }
}

static int open_shm(const char *name) {
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd < 0) die("shm_open");
    if (ftruncate(fd, page) != 0) die("ftruncate");
    return fd;
}

static void map_shm(int fd) {
    /* Same fd, same offset: neighbouring areas never merge (their offsets do not follow). */
    if (mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED) die("mmap shm");
}

static long read_max_map_count(void) {
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 0;
    if (!f || fscanf(f, "%ld", &v) != 1) die("read max_map_count");
    fclose(f);
    return v;
}

static long leader_exit_n;

static void *leader_exit_thread(void *arg) {
    (void)arg;
    make_areas(leader_exit_n);
    sleep_ms(200);  /* let the main thread exit first */
    ready("leader-exited");
    for (;;) pause();
    return NULL;
}

int main(int argc, char **argv) {
    char detail[128] = "";
    page = sysconf(_SC_PAGESIZE);
    signal(SIGPIPE, SIG_IGN);
    take_comm();
    if (argc < 2) { fprintf(stderr, "usage: see the comment at the top of workload.c\n"); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "areas") && argc >= 3) {
        make_areas(atol(argv[2]));
    } else if (!strcmp(mode, "shm") && argc == 4) {
        int fd = open_shm(argv[2]);
        for (long i = 0, n = atol(argv[3]); i < n; i++) map_shm(fd);
    } else if (!strcmp(mode, "leak") && argc == 4) {
        int fd = open_shm(argv[2]);
        long rate = atol(argv[3]);
        ready("leaking");
        for (;;) {
            for (long i = 0; i < rate; i++) map_shm(fd);
            sleep_ms(1000);
        }
    } else if (!strcmp(mode, "at-limit") && argc == 2) {
        long limit = read_max_map_count(), n = 2 * limit, i;
        char *base = mmap(NULL, n * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) die("mmap");
        for (i = 1; i < n; i += 2)
            if (munmap(base + i * page, page) != 0) break;
        if (i >= n) { errno = 0; die("munmap never failed"); }
        snprintf(detail, sizeof detail, "munmap-failed errno=%d at=%ld", errno, i / 2);
    } else if (!strcmp(mode, "hugetlb") && argc == 3) {
        long n = atol(argv[2]);
        size_t huge = 2UL << 20;
        char *p = mmap(NULL, n * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
        if (p == MAP_FAILED) die("mmap hugetlb");
        for (long i = 0; i < n; i++) p[i * huge] = 1;
    } else if (!strcmp(mode, "leader-exit") && argc == 3) {
        pthread_t t;
        leader_exit_n = atol(argv[2]);
        if (pthread_create(&t, NULL, leader_exit_thread, NULL) != 0) die("pthread_create");
        pthread_exit(NULL);
    } else if (!strcmp(mode, "grow") && argc == 4) {
        long n = atol(argv[2]), ms = (long)(atof(argv[3]) * 1000);
        ready("growing");
        for (;;) { make_areas(n); sleep_ms(ms); }
    } else {
        fprintf(stderr, "workload: bad arguments\n");
        return 2;
    }
    ready(detail);
    for (;;) pause();
}
