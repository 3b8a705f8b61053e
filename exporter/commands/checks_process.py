"""The process half of ``vma-exporter check``: each cause of ENOMEM in turn.

mmap(2) and setrlimit(2) list them: too many map areas, RLIMIT_DATA (since
Linux 4.7), RLIMIT_AS, and no memory. Reads /proc/PID/stat, maps (the count,
through the exporter's maps reader), status (VmData, VmSize), limits,
/proc/sys/vm/max_map_count, /proc/sys/vm/overcommit_memory and /proc/meminfo.

Headroom on map areas, from mm/mmap.c, mm/vma.c and mm/mremap.c: mmap (and
brk) fail only when the count is already *above* max_map_count, so it may
reach the limit + 1; splitting an area (munmap or mprotect of part of it)
fails once the count is *at* the limit; a moving mremap refuses within 3 of
it. (Checked on 6.18: the workload's munmap fails at exactly max_map_count,
and one more mapping still succeeds there.)
"""

import math

from exporter.commands import fmt
from exporter.commands.common import CommandError, identify, process_error
from exporter.commands.verdict import ERROR, FAIL, OK, WARN, Result
from exporter.procfs import ProcfsError
from exporter.procfs.limits import read_limits
from exporter.procfs.maps import read_map_count
from exporter.procfs.meminfo import OVERCOMMIT_NEVER, MemInfo, read_meminfo, read_overcommit_memory
from exporter.procfs.paths import Roots
from exporter.procfs.status import read_status
from exporter.procfs.sysctl import read_max_map_count

MREMAP_HEADROOM = 3  # mremap's move refuses when map_count >= max_map_count - 3
# Memory available (MemAvailable / MemTotal): below FAIL the node is out of
# memory for any practical purpose; below WARN a large mapping is at risk.
MEM_FAIL, MEM_WARN = 0.01, 0.10
COMMIT_WARN = 0.05  # strict overcommit: headroom under this share of CommitLimit
NEXT_ALLOCATION = 1 << 20  # what a process maps next, at the least (rlimit_result says why)
ARENA_RESERVE = 128 << 20  # glibc's new_heap maps 2 * HEAP_MAX_SIZE to find a 64 MiB-aligned heap
_DIRECTIVE = {"RLIMIT_DATA": "LimitDATA", "RLIMIT_AS": "LimitAS"}
_ULIMIT = {"RLIMIT_DATA": "-d", "RLIMIT_AS": "-v"}
_PRLIMIT = {"RLIMIT_DATA": "data", "RLIMIT_AS": "as"}


def map_areas_result(scope: str, count: int, limit: int, warn_ratio: float) -> Result:
    headroom = limit - count
    figure = f"{count} of max_map_count {limit} ({fmt.percent(count / limit)}), headroom {headroom}"
    data = {"map_areas": count, "max_map_count": limit, "headroom": headroom}
    if count > limit:
        return Result(scope, "map areas", FAIL, figure,
                      "over the limit: every new mmap, split (munmap or mprotect of part of an area) and mremap "
                      "fails with ENOMEM", data=data)
    if count >= limit:
        return Result(scope, "map areas", FAIL, figure,
                      "at the limit: munmap or mprotect of part of an area fails with ENOMEM (a split needs one "
                      "area more), so does mremap; one more mmap or brk may succeed, then none", data=data)
    if count >= limit - MREMAP_HEADROOM:
        return Result(scope, "map areas", FAIL, figure,
                      f"within {MREMAP_HEADROOM} of the limit: mremap that moves an area fails with ENOMEM; "
                      f"{headroom} splits or new mappings left", data=data)
    if count >= warn_ratio * limit:
        return Result(scope, "map areas", WARN, figure,
                      f"close to the limit: {headroom} more areas, then mmap, munmap and mremap fail with ENOMEM",
                      data=data)
    return Result(scope, "map areas", OK, figure, f"{headroom} more areas before ENOMEM", data=data)


def rlimit_result(scope: str, name: str, usage_name: str, used: int | None, limit: float,
                  warn_ratio: float, consequence: str, pid: int | None = None) -> Result:
    """VmData against RLIMIT_DATA, or VmSize against RLIMIT_AS (both soft limits).

    FAIL when the next ordinary allocation cannot fit under the limit: the
    kernel refuses a mapping that would take the usage past it (may_expand_vm
    in mm/mmap.c), and what a program maps next is seldom one page: malloc
    maps a block above its mmap threshold (128 KiB and up, 1 MiB buffers are
    common) or grows a heap by at least 128 KiB (M_TOP_PAD). So less than
    NEXT_ALLOCATION left is a process whose mmap already fails.
    """
    if used is None:
        return Result(scope, name, ERROR, "-", f"no {usage_name} in status (kernel thread or exiting?)")
    data = {"used_bytes": used, "limit_bytes": None if math.isinf(limit) else int(limit)}
    if math.isinf(limit):
        return Result(scope, name, OK, f"{usage_name} {fmt.human_bytes(used)}, {name} unlimited",
                      "no limit", data=data)
    figure = f"{usage_name} {fmt.human_bytes(used)} of {name} {fmt.human_bytes(limit)} ({fmt.percent(used / limit)})"
    left = int(limit - used)
    data["left_bytes"] = left
    if left < NEXT_ALLOCATION:
        return Result(scope, name, FAIL, figure,
                      f"{name} has {fmt.human_bytes(max(left, 0))} left, less than the next ordinary allocation "
                      f"({fmt.human_bytes(NEXT_ALLOCATION)}): {consequence} fails with ENOMEM",
                      [f"raise {name} where the process is started (systemd {_DIRECTIVE[name]}=, ulimit "
                       f"{_ULIMIT[name]}), or now: prlimit --pid {pid or 'PID'} --{_PRLIMIT[name]}=NEW_BYTES"], data=data)
    if name == "RLIMIT_AS" and left < ARENA_RESERVE:
        return Result(scope, name, WARN, figure,
                      f"{fmt.human_bytes(left)} left under {name}: a new malloc arena (it reserves "
                      f"{fmt.human_bytes(ARENA_RESERVE)} of address space) or a thread stack fails with ENOMEM",
                      data=data)
    if used >= warn_ratio * limit:
        return Result(scope, name, WARN, figure,
                      f"close to the limit: {fmt.human_bytes(left)} left under {name}, then {consequence} fails "
                      "with ENOMEM", data=data)
    return Result(scope, name, OK, figure, f"{fmt.human_bytes(left)} left under {name} before ENOMEM", data=data)


def memory_result(scope: str, mem: MemInfo, overcommit: int | None) -> Result:
    name = "memory available"
    avail = mem.available
    data = {"mem_total_bytes": mem.total, "mem_available_bytes": avail, "overcommit_memory": overcommit,
            "commit_limit_bytes": mem.commit_limit, "committed_bytes": mem.committed}
    if avail is None:
        return Result(scope, name, ERROR, "-", "no MemAvailable in /proc/meminfo (kernel before 3.14)", data=data)
    ratio = avail / mem.total if mem.total else 0.0
    figure = f"MemAvailable {fmt.human_bytes(avail)} of {fmt.human_bytes(mem.total)} ({fmt.percent(ratio)})"
    if overcommit == OVERCOMMIT_NEVER and mem.commit_headroom is not None:
        head = mem.commit_headroom
        figure += f"; commit headroom {fmt.human_bytes(max(head, 0))} (strict overcommit)"
        if head <= 0:
            return Result(scope, name, FAIL, figure,
                          "Committed_AS is at CommitLimit: any new private writable mapping fails with ENOMEM",
                          data=data)
        if head < COMMIT_WARN * (mem.commit_limit or 1):
            return Result(scope, name, WARN, figure,
                          f"a private writable mapping larger than {fmt.human_bytes(head)} fails with ENOMEM",
                          data=data)
    if ratio < MEM_FAIL:
        return Result(scope, name, FAIL, figure,
                      "the node is out of memory: allocations fail or the OOM killer ends a process", data=data)
    if ratio < MEM_WARN:
        return Result(scope, name, WARN, figure,
                      "memory is short: a large mapping may fail with ENOMEM or wake the OOM killer", data=data)
    if overcommit == OVERCOMMIT_NEVER:
        return Result(scope, name, OK, figure, "enough memory and commit headroom", data=data)
    return Result(scope, name, OK, figure,
                  "enough memory (with overcommit on, mmap fails only for a mapping larger than RAM + swap)",
                  data=data)


def check_process(roots: Roots, pid: int, warn_ratio: float) -> list[Result]:
    try:
        stat = identify(roots, pid)
    except CommandError as exc:
        return [Result(f"pid {pid}", "process", ERROR, "-", str(exc))]
    scope = f"pid {pid} ({stat.comm})"
    results = []
    try:
        count = read_map_count(roots, pid).areas
    except ProcfsError as exc:
        results.append(Result(scope, "map areas", ERROR, "-",
                              str(process_error(exc, roots, pid, roots.pid(pid, "maps")))))
    else:
        try:
            results.append(map_areas_result(scope, count, read_max_map_count(roots), warn_ratio))
        except ProcfsError as exc:
            results.append(Result(scope, "map areas", ERROR, f"{count} map areas",
                                  f"cannot read vm.max_map_count: {exc}"))
    try:
        status, limits = read_status(roots, pid), read_limits(roots, pid)
        results.append(rlimit_result(scope, "RLIMIT_DATA", "VmData", status.data, limits.data, warn_ratio,
                                     "brk, malloc and every private writable mapping", pid))
        results.append(rlimit_result(scope, "RLIMIT_AS", "VmSize", status.virtual, limits.address_space,
                                     warn_ratio, "every new mapping", pid))
    except ProcfsError as exc:
        results.append(Result(scope, "rlimits", ERROR, "-",
                              str(process_error(exc, roots, pid, roots.pid(pid, "status or limits")))))
    try:
        mem = read_meminfo(roots)
    except ProcfsError as exc:
        return results + [Result(scope, "memory available", ERROR, "-", f"cannot read meminfo: {exc}")]
    try:
        overcommit = read_overcommit_memory(roots)
    except ProcfsError:
        overcommit = None  # judged on MemAvailable alone
    return results + [memory_result(scope, mem, overcommit)]
