/* floor: the least any procfs exporter can spend to count map areas.
 *
 * One round reads, for every process under PROCFS, /proc/PID/status whole and
 * /proc/PID/maps whole, counting newlines and nothing else: the files every
 * procfs exporter of map areas must have the kernel write. The kernel's work of
 * printing them (show_map_vma in fs/proc/task_mmu.c, proc_pid_status in
 * fs/proc/array.c) is most of the cost; a C program adds next to nothing to it.
 *
 * Driven over stdin so a harness can interleave its rounds with the program under
 * test: each line read runs one round and prints
 *     <cpu ns of the round> <processes> <map lines>
 * where CPU is user + system time of this process (getrusage), so the kernel's work
 * on our behalf is counted, as it is for the exporter. EOF ends the program.
 *
 *     cc -O2 -o floor floor.c && echo | ./floor [PROCFS]
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char buf[1 << 16];

/* Read a file whole; return its newlines, or -1 if it cannot be opened (a process gone). */
static long count_lines(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (const char *p = buf; (p = memchr(p, '\n', buf + n - p)) != NULL; p++) lines++;
    close(fd);
    return lines;
}

static long long cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
         + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

int main(int argc, char **argv) {
    const char *procfs = argc > 1 ? argv[1] : "/proc";
    char path[4096], line[64];
    while (fgets(line, sizeof line, stdin)) {
        long long start = cpu_ns();
        long procs = 0, areas = 0;
        DIR *d = opendir(procfs);
        if (!d) { perror(procfs); return 2; }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9') continue; /* pids only */
            snprintf(path, sizeof path, "%s/%s/status", procfs, e->d_name);
            if (count_lines(path) < 0) continue;
            snprintf(path, sizeof path, "%s/%s/maps", procfs, e->d_name);
            long n = count_lines(path);
            if (n < 0) continue;
            procs++;
            areas += n;
        }
        closedir(d);
        printf("%lld %ld %ld\n", cpu_ns() - start, procs, areas);
        fflush(stdout);
    }
    return 0;
}
