"""Start the C workload (helpers/workload.c) and wait until its map areas are in place.

The binary is compiled once per test session with the system C compiler. Other
helper programs (helpers/enomem.c) run the same way with ``program=``.
"""

import os
import signal
import subprocess
import threading

from helpers.cbuild import build as build_c

HERE = os.path.dirname(os.path.abspath(__file__))


def build(program: str = "workload") -> str:
    """Compile helpers/<program>.c (workload, enomem, ...) if the binary is missing or stale."""
    return build_c(os.path.join(HERE, program + ".c"), program)


class Workload:
    """A running workload process; use as a context manager."""

    def __init__(self, *args: str, timeout: float = 60.0, preexec_fn=None, comm: str | None = None,
                 program: str = "workload", binary: str | None = None):
        self.args = [binary or build(program), *map(str, args)]
        self.timeout = timeout
        self.preexec_fn = preexec_fn
        # A comm of its own lets a test select only its processes (at most 15 characters).
        self.env = dict(os.environ, WORKLOAD_COMM=comm[:15]) if comm else None
        self.proc: subprocess.Popen | None = None
        self.detail = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> "Workload":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True, preexec_fn=self.preexec_fn,
                                     env=self.env)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.timeout)
        first = line[0].strip() if line else ""
        if not first.startswith("ready "):
            self.stop()
            raise RuntimeError(f"workload {self.args[1:]} did not get ready: {first or 'timeout'}")
        self.detail = first.split(" ", 2)[2] if first.count(" ") >= 2 else ""
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if self.args[1] in ("shm", "leak"):  # the shm object outlives the process: remove it
            try:
                os.unlink("/dev/shm/" + self.args[2].lstrip("/"))
            except FileNotFoundError:
                pass

    def __enter__(self) -> "Workload":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def unique_comm(prefix: str) -> str:
    """A comm no other test uses at the same time: prefix plus this process's pid."""
    return f"{prefix[:8]}{os.getpid() % 10_000_000}"[:15]


def kernel_map_areas(pid: int) -> int:
    """The kernel's count, read the plain way: lines of maps less [vsyscall]."""
    with open(f"/proc/{pid}/maps", "rb") as f:
        lines = f.read().splitlines()
    return sum(1 for line in lines if not line.endswith(b"[vsyscall]"))
