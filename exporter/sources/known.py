"""What the last pass read of each process, reused while the process is provably unchanged.

/proc/PID/stat is, after maps, the costliest read of the procfs source: the kernel
formats 52 fields (fs/proc/array.c do_task_stat, which also sums the CPU time of
every thread) and Python parses them. On a node of 3,000 small processes it was a
fifth of a pass. Of what it gives, the pass needs the identity (pid, start time),
the comm (group matching), whether it is a kernel thread or a zombie, and the
thread count (for exported processes, which read status anyway). None of these
changes without a visible sign, so stat is re-read only when:

- the pid's /proc entry has another inode number than last pass (the listing's
  d_ino, exporter/procfs/paths.py list_pid_inodes): a new process under a reused
  pid, or the kernel dropped the dentry. The same number is the same struct pid;
- statm's bytes differ from the last pass's: an exec (a new mm: new VIRT, text),
  any mmap, munmap or brk, RSS that moved; a process that became a zombie reads
  all zeros. Then statm is parsed too, and only then;
- every REFRESH passes for each process (spread over the passes by pid): a rename
  by prctl(PR_SET_NAME) changes no memory, and is seen at the latest then.

Zombie leaders (their live thread is read instead) are never kept: they take the
whole path every pass. Kernel threads are kept by inode, and not read at all.
"""

from typing import NamedTuple

from exporter.procfs.stat import ProcStat

REFRESH = 5  # a process's stat is re-read at least every REFRESH passes


class Known(NamedTuple):
    inode: int
    statm: bytes  # the raw file; b"" for a kernel thread
    stat: ProcStat
    memory: tuple[int, int, int]  # VIRT, RES, SHR in bytes, parsed from statm


class KnownProcesses:
    """Two generations, as the matcher's cache: what this pass kept, and what the last
    one did; end_pass() drops the processes nobody looked up (they are gone)."""

    def __init__(self):
        self._last: dict[int, Known] = {}
        self._this: dict[int, Known] = {}
        self._passes = 0
        self._saved = 0
        self.saved = 0  # stat reads the last pass saved (tests/test_known.py)

    def lookup(self, pid: int, inode: int) -> Known | None:
        """The last pass's entry if the process is the same and not due for a refresh."""
        known = self._last.get(pid)
        if known is None or known.inode != inode or (pid + self._passes) % REFRESH == 0:
            return None
        return known

    def keep(self, pid: int, known: Known) -> None:
        self._this[pid] = known
        self._saved += 1

    def remember(self, pid: int, inode: int, statm: bytes, stat: ProcStat, memory: tuple[int, int, int]) -> None:
        self._this[pid] = Known(inode, statm, stat, memory)

    def end_pass(self) -> None:
        self._last, self._this = self._this, {}
        self._passes += 1
        self.saved, self._saved = self._saved, 0
