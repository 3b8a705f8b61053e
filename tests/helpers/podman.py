"""Real containers for the tests: podman with the project's config, the images, and cleanup.

podman runs with tests/containers/containers.conf (through CONTAINERS_CONF; nothing in /etc is
touched). The images are built once per test session and removed at its end: the exporter's by
scripts/image.sh (which keeps the base it bootstrapped in podman's store, the cache for the next
run), the systemd host's from tests/containers/systemd-host.Containerfile on that base. A
Container holds the host lock (helpers/host.py) while it exists and is removed on exit.
"""

import atexit
import os
import shutil
import subprocess
import threading
import time

import pytest

from helpers.host import host_lock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTAINERS = os.path.join(REPO, "tests", "containers")
CONF = os.path.join(CONTAINERS, "containers.conf")
BUILD_TIMEOUT = 1200  # the first run on a machine bootstraps the base (about 80 s here)
WAIT = 60.0  # a loaded 2-core machine

_memo: dict[str, str] = {}
_memo_lock = threading.Lock()


def env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": CONF}


def podman(*args: str, timeout: float = WAIT, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(["podman", *args], env=env(), capture_output=True, text=True, timeout=timeout,
                         check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {out.returncode}\n{out.stdout[-2000:]}{out.stderr[-3000:]}")
    return out


def unavailable() -> str | None:
    """Why podman cannot run these tests here, or None."""
    if "unavailable" not in _memo:
        _memo["unavailable"] = _why_unavailable() or ""
    return _memo["unavailable"] or None


def _why_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root: rootless podman needs subuid ranges and a user session the suite does not set up"
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/test.sh installs podman, runc and the rest)"
    out = subprocess.run(["podman", "info"], env=env(), capture_output=True, text=True, timeout=WAIT, check=False)
    if out.returncode != 0:
        return f"podman cannot run here: {out.stderr.strip()[-500:]}"
    return None


def require() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def _once(key: str, make) -> str:
    with _memo_lock:
        if key not in _memo:
            _memo[key] = make()
        return _memo[key]


def _remove_image_at_exit(tag: str) -> None:
    atexit.register(lambda: podman("rmi", "--force", tag, check=False))


def base_image() -> str:
    """The base scripts/image.sh builds on (the official one, or the local bootstrapped one)."""
    require()

    def make() -> str:
        out = subprocess.run([os.path.join(REPO, "scripts", "image.sh"), "base"], cwd=REPO, env=env(),
                             capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        _memo["base_log"] = out.stderr
        return out.stdout.strip()
    return _once("base", make)


def exporter_image() -> str:
    """The image from ./Dockerfile, built by scripts/image.sh under a tag of this session's own."""
    base_image()  # settles (and, on a new machine, bootstraps) the base first

    def make() -> str:
        tag = f"localhost/vma-exporter:test-{os.getpid()}"
        out = subprocess.run([os.path.join(REPO, "scripts", "image.sh"), tag], cwd=REPO, env=env(),
                             capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        assert out.stdout.strip() == tag, out.stdout
        _memo["image_log"] = out.stderr
        _remove_image_at_exit(tag)
        return tag
    return _once("image", make)


def systemd_host_image() -> str:
    """A Debian host with systemd as pid 1 (tests/containers/systemd-host.Containerfile)."""
    base = base_image()

    def make() -> str:
        tag = f"localhost/vma-exporter-systemd-host:test-{os.getpid()}"
        podman("build", "--quiet", "--layers=false", "--pull=never", "--network=host", "--build-arg",
               f"BASE={base}", "--tag", tag, "--file", os.path.join(CONTAINERS, "systemd-host.Containerfile"),
               CONTAINERS, timeout=BUILD_TIMEOUT)
        _remove_image_at_exit(tag)
        return tag
    return _once("systemd_host", make)


def inspect(name: str, fmt: str) -> str:
    return podman("inspect", "--format", fmt, name).stdout.strip()


_counter = iter(range(1, 10**6))


def unique_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


class Container:
    """``with Container(name, ["--detach", options..., image, args...]) as c``.

    *argv* is everything after ``podman run`` (``--detach`` and ``--name`` included, so a test
    can run a documented command line as written). Removed with ``podman rm --force`` on exit.
    """

    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.argv = argv
        self._lock = None

    def __enter__(self) -> "Container":
        self._lock = host_lock()
        self._lock.__enter__()
        try:
            podman("run", *self.argv)
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        try:
            podman("rm", "--force", "--time=0", self.name, check=False)
        finally:
            if self._lock is not None:
                self._lock.__exit__(None, None, None)
                self._lock = None

    @property
    def pid(self) -> int:
        """The container's main process, as the host sees it."""
        return int(inspect(self.name, "{{.State.Pid}}"))

    def logs(self) -> str:
        out = podman("logs", self.name, check=False)
        return out.stdout + out.stderr

    def exec(self, *argv: str, check: bool = True, timeout: float = WAIT, options: tuple[str, ...] = ()):
        return podman("exec", *options, self.name, *argv, check=check, timeout=timeout)

    def stop(self, timeout: int) -> tuple[int, float]:
        """``podman stop -t TIMEOUT``: (the main process's exit code, seconds the stop took)."""
        return stop(self.name, timeout)


def stop(name: str, timeout: int) -> tuple[int, float]:
    started = time.monotonic()
    podman("stop", f"--time={timeout}", name, timeout=timeout + WAIT)
    seconds = time.monotonic() - started
    return int(inspect(name, "{{.State.ExitCode}}")), seconds


def wait_for(predicate, what: str, timeout: float = WAIT, interval: float = 0.1):
    """Poll *predicate* until it returns something true; fail naming *what* after *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, AssertionError, ValueError):
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(interval)


# --- what the kernel says of a process (read from the host) ------------------------------------

CAP_SYS_PTRACE = 1 << 19


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as key -> value text."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def capabilities(pid: int) -> dict[str, int]:
    status = proc_status(pid)
    return {key: int(status[key], 16) for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def mounts(pid: int) -> dict[str, tuple[str, str]]:
    """/proc/PID/mountinfo: mount point -> (per-mount options, filesystem type)."""
    out = {}
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out[fields[4]] = (fields[5], fields[sep + 1])
    return out


def writable_mounts(pid: int, under: str) -> list[str]:
    """Mounts at or below *under* in the process's mount namespace that are not read-only."""
    root = f"/proc/{pid}/root"
    return [mp for mp in mounts(pid) if (mp == under or mp.startswith(under + "/"))
            and not os.statvfs(root + mp).f_flag & os.ST_RDONLY]


def host_pid(container_pid: int, pid_in_container: int) -> int:
    """The host's pid of the process *pid_in_container* in the pid namespace of *container_pid*."""
    ns = os.readlink(f"/proc/{container_pid}/ns/pid")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            if proc_status(int(entry))["NSpid"].split()[-1] == str(pid_in_container):
                return int(entry)
        except (FileNotFoundError, ProcessLookupError, PermissionError, KeyError):
            continue  # gone, or this machine's pid 1 (unreadable even to root here)
    raise LookupError(f"no pid {pid_in_container} in the pid namespace of {container_pid}")


# --- the exporter's figures for one workload against the kernel's --------------------------------

GROUP_METRICS = ("vma_group_processes", "vma_group_map_areas", "vma_group_virtual_bytes",
                 "vma_group_resident_bytes")


def kernel_group_figures(pid: int) -> dict[str, float]:
    """What a group holding only process *pid* (a host pid) must report, read the plain way."""
    from helpers.workload import kernel_map_areas

    status = proc_status(pid)
    kib = {key: int(status[key].split()[0]) * 1024 for key in ("VmSize", "VmRSS")}
    return {"vma_group_processes": 1, "vma_group_map_areas": kernel_map_areas(pid),
            "vma_group_virtual_bytes": kib["VmSize"], "vma_group_resident_bytes": kib["VmRSS"]}


def scraped_group_figures(samples: dict, group: str) -> dict[str, float]:
    out = {}
    for name in GROUP_METRICS:
        found = [s.value for s in samples.get(name, []) if s.labels.get("group") == group]
        assert len(found) == 1, f"{name}{{group={group!r}}}: {found}"
        out[name] = found[0]
    return out
