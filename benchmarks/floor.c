/* floor: the least a procfs exporter can do per scrape, in C, as a yardstick.
 *
 * One round reads /proc/PID/maps and /proc/PID/status of every process once,
 * counting newlines and nothing else: the kernel's cost of printing the text
 * plus the smallest reader's. A benchmark harness drives it over pipes so that
 * its rounds interleave with the rounds of what is measured against it:
 *
 *   stdin:  one line per round (its content is ignored); EOF ends the program
 *   stdout: one line per round: "<cpu_ns> <processes> <maps_lines>"
 *
 * cpu_ns is this process's user + system CPU time for the round (getrusage),
 * so the kernel's work generating the files is in it, as it is for a scraper.
 * Usage: floor [PROC_ROOT]   (default /proc)
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char buf[256 * 1024]; /* maps is read in chunks of this size, as the exporter reads it */

static long long cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* Read a whole file; return its newline count, or -1 if it cannot be opened
 * (the process exited, or is another user's and we lack the privilege). */
static long count_lines(int dir, const char *name) {
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    long lines = 0;
    ssize_t n;
    if (fd < 0) return -1;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (char *p = buf; (p = memchr(p, '\n', buf + n - p)) != NULL; p++) lines++;
    close(fd);
    return lines;
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "/proc";
    char line[64];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        long long start = cpu_ns();
        long processes = 0, maps_lines = 0;
        DIR *proc = opendir(root);
        struct dirent *e;
        if (!proc) { perror(root); return 1; }
        while ((e = readdir(proc)) != NULL) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9') continue; /* only the pid directories */
            int dir = openat(dirfd(proc), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dir < 0) continue;
            long n = count_lines(dir, "maps");
            if (n >= 0 && count_lines(dir, "status") >= 0) {
                processes++;
                maps_lines += n;
            }
            close(dir);
        }
        closedir(proc);
        printf("%lld %ld %ld\n", cpu_ns() - start, processes, maps_lines);
    }
    return 0;
}
