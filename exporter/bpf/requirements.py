"""What the BPF source needs, checked before loading, named exactly when missing.

Opening it needs: Linux 5.8+ (the task iterator), kernel BTF
(/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF), libbpf.so.1, CAP_BPF and
CAP_PERFMON (or CAP_SYS_ADMIN), a seccomp filter and LSM that let bpf() through
and, once loaded, the host PID namespace (the iterator walks the reader's PID
namespace but reports the root namespace's pids). The ENOMEM tracepoints also
need tracefs and perf_event_open(). Every failure to open raises
``BpfUnavailable`` whose message lists all that is missing, so the fix is one
read away; ``--collect.source=auto`` logs that message and falls back to procfs.
"""

import ctypes
import errno
import os
import platform
import re

from exporter.bpf import libbpf

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39  # include/uapi/linux/capability.h
_NR_BPF = {"x86_64": 321, "aarch64": 280}
MIN_KERNEL = (5, 8)
BTF_PATH = "/sys/kernel/btf/vmlinux"


class BpfUnavailable(Exception):
    """The BPF source cannot be opened here; ``missing`` lists why, one item each."""

    def __init__(self, missing: list[str]):
        self.missing = list(missing)
        super().__init__("BPF source unavailable: needs " + "; ".join(self.missing))


def kernel_version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m[1]), int(m[2])) if m else (0, 0)


def status_field(status: bytes, name: bytes) -> bytes | None:
    """One field of /proc/self/status ("CapEff", "Seccomp")."""
    m = re.search(rb"^" + name + rb":\s*(\S+)", status, re.M)
    return m[1] if m else None


def missing_capabilities(cap_eff: int) -> list[str]:
    """CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN (which grants both on every kernel)."""
    if cap_eff & (1 << CAP_SYS_ADMIN):
        return []
    lacking = [name for bit, name in ((CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")) if not cap_eff & (1 << bit)]
    if not lacking:
        return []
    return [f"{' and '.join(lacking)} (the BPF source needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)"]


def syscall_denied(status: bytes, nr: dict[str, int], what: str) -> str | None:
    """Call *what* with arguments no kernel accepts: EINVAL/EFAULT means it got through,
    EPERM/EACCES/ENOSYS that a seccomp filter or an LSM stopped it first."""
    number = nr.get(platform.machine())
    if number is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    ret = libc.syscall(ctypes.c_long(number), ctypes.c_long(-1), ctypes.c_long(0), ctypes.c_long(0))
    err = ctypes.get_errno() if ret < 0 else 0
    if err not in (errno.EPERM, errno.EACCES, errno.ENOSYS):
        return None
    name = errno.errorcode.get(err, str(err))
    if status_field(status, b"Seccomp") == b"2":
        return (f"a seccomp profile that allows {what}() (this process's seccomp filter, Seccomp: 2 in "
                f"/proc/self/status, refuses it with {name})")
    return f"an LSM policy that allows {what}() (SELinux, AppArmor or kernel lockdown refuses it with {name})"


def check(btf_path: str = BTF_PATH, library: str = libbpf.LIBRARY) -> None:
    """Raise BpfUnavailable naming everything that stops the BPF source here."""
    missing = []
    release = platform.release()
    if kernel_version(release) < MIN_KERNEL:
        missing.append(f"Linux 5.8 or later (BPF task iterators); this kernel is {release}")
    if not os.access(btf_path, os.R_OK):
        missing.append(f"kernel BTF at {btf_path} (a kernel built with CONFIG_DEBUG_INFO_BTF=y)")
    try:
        libbpf.library(library)
    except OSError as exc:
        missing.append(f"{library} (Debian/Ubuntu: apt-get install libbpf1; Fedora/RHEL: dnf install libbpf): {exc}")
    with open("/proc/self/status", "rb") as f:
        status = f.read()
    caps = missing_capabilities(int(status_field(status, b"CapEff") or b"0", 16))
    missing += caps
    if not caps:  # without the capabilities bpf() fails anyway; only then is a refusal the filter's
        denied = syscall_denied(status, _NR_BPF, "bpf")
        if denied:
            missing.append(denied)
    if missing:
        raise BpfUnavailable(missing)


def check_pid_namespace(reader_pidns_level: int, reader_tgid: int) -> None:
    """After the first pass: the iterator saw the reader's PID namespace, not the host's."""
    if reader_pidns_level != 0 or reader_tgid != os.getpid():
        raise BpfUnavailable([(
            f"the host PID namespace (Kubernetes hostPID: true, docker/podman --pid=host): this process is pid "
            f"{os.getpid()} in a PID namespace {reader_pidns_level} level(s) below the host's (pid {reader_tgid} "
            f"there), where the task iterator sees only its namespace's tasks")])
