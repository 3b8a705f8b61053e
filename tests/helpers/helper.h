/* What the C test helpers (workload.c, patterns.c, enomem.c) share: the page size and
 * the "ready <pid> <detail>" / "error <what>: <strerror>" protocol that
 * tests/helpers/workload.py reads. */
#ifndef VMA_TEST_HELPER_H
#define VMA_TEST_HELPER_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static long page;

static void die(const char *what) {
    printf("error %s: %s\n", what, strerror(errno));
    fflush(stdout);
    exit(3);
}

static void ready(const char *detail) {
    printf("ready %d %s\n", (int)getpid(), detail);
    fflush(stdout);
}

/* With WORKLOAD_COMM in the environment, take that comm: tests running side by side then
 * each select only their own processes. */
static void take_comm(void) {
    if (getenv("WORKLOAD_COMM")) prctl(PR_SET_NAME, getenv("WORKLOAD_COMM"), 0, 0, 0);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
