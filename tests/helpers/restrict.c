/* restrict: run a command under one restriction a container runtime or systemd applies.
 *
 *   restrict deny-bpf CMD ARG...    a seccomp filter that fails bpf(2) with EPERM, as the
 *                                   default profiles of Docker < 23, containerd < 1.7 and
 *                                   podman do without CAP_SYS_ADMIN
 *   restrict deny-perf CMD ARG...   the same for perf_event_open(2)
 *   restrict mdwe CMD ARG...        no memory may become writable and executable
 *                                   (PR_SET_MDWE, Linux 6.3+; systemd's MemoryDenyWriteExecute=)
 *
 * For tests/test_bpf_privilege.py. Exits 125 if the restriction cannot be set.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

static int deny(long nr) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char **argv) {
    int r;
    if (argc < 3) { fprintf(stderr, "usage: restrict deny-bpf|deny-perf|mdwe CMD ARG...\n"); return 2; }
    if (!strcmp(argv[1], "deny-bpf")) r = deny(SYS_bpf);
    else if (!strcmp(argv[1], "deny-perf")) r = deny(SYS_perf_event_open);
    else if (!strcmp(argv[1], "mdwe")) r = prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0);
    else return 2;
    if (r != 0) { fprintf(stderr, "restrict %s: %s\n", argv[1], strerror(errno)); return 125; }
    execvp(argv[2], argv + 2);
    fprintf(stderr, "restrict: %s: %s\n", argv[2], strerror(errno));
    return 127;
}
