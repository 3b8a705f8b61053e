"""``vma-exporter check``: a preflight for the node and, with --pid, a process.

Exit 0 when every check passes (warnings allowed), 1 when one fails or a
process is missing or unreadable, 2 on bad usage. Node checks read
/proc/sys/vm/max_map_count, /sys/kernel/mm/hugepages/*/ and /proc/meminfo
(the default hugepage size); each failure shows how to fix it for good.
Process checks (checks_process.py) take each ENOMEM cause in turn.
"""

import argparse
import json
import re
import sys

from exporter.commands import fmt
from exporter.commands.checks_process import check_process
from exporter.commands.common import EXIT_FAIL, EXIT_OK, add_output_flags, guarded, pid_arg, roots_of
from exporter.commands.verdict import FAIL, OK, WARN, Result, render_text
from exporter.procfs import ProcfsError
from exporter.procfs.hugepages import HugePool, read_pools
from exporter.procfs.meminfo import read_meminfo
from exporter.procfs.paths import Roots
from exporter.procfs.sysctl import KERNEL_DEFAULT_MAX_MAP_COUNT, read_max_map_count

SYSCTL_FILE = "/etc/sysctl.d/99-vma.conf"
_SIZE = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.I)
_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """'2M', '2MB', '2MiB', '2048k', '2048kB', '1G' or bytes -> bytes (binary units)."""
    m = _SIZE.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"size {text!r}: want a number with K, M or G, e.g. 2M or 1G")
    return int(m.group(1)) * _SCALE[m.group(2).lower()]


def hugepages_arg(text: str) -> tuple[int, int]:
    """argparse type for --hugepages SIZE:COUNT."""
    size, sep, count = text.partition(":")
    try:
        if not sep or not count.strip().isdigit():
            raise ValueError(f"{text!r}: want SIZE:COUNT, e.g. 2M:1024 or 1G:4")
        return parse_size(size), int(count)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def sysctl_fix(key: str, value: int) -> list[str]:
    return [f"echo '{key} = {value}' >> {SYSCTL_FILE} && sysctl --system",
            f"(until the next boot only: sysctl -w {key}={value})"]


def check_max_map_count(roots: Roots, minimum: int | None) -> Result:
    name = "vm.max_map_count"
    try:
        value = read_max_map_count(roots)
    except ProcfsError as exc:
        return Result("node", name, FAIL, "unreadable", f"cannot read it: {exc}")
    default = KERNEL_DEFAULT_MAX_MAP_COUNT
    required = minimum if minimum is not None else default
    why = "required" if minimum is not None else "the kernel default"
    data = {"value": value, "required": required, "kernel_default": default}
    if value < required:
        return Result("node", name, FAIL, f"{value} < {required} ({why})",
                      f"a process past {value} map areas gets ENOMEM from mmap, mprotect, mremap and munmap",
                      sysctl_fix(name, required), data)
    if value < default:
        return Result("node", name, WARN, f"{value} >= {required} required, but below the kernel default {default}",
                      "lowered on purpose? processes get ENOMEM sooner than on a stock kernel",
                      sysctl_fix(name, default), data)
    return Result("node", name, OK, f"{value} >= {required} ({why})",
                  f"a process may hold up to {value} map areas", data=data)


def hugepage_fix(size: int, total: int, default_size: int | None) -> list[str]:
    """How to get *total* pages of *size* for good: sysctl for the default size,
    the kernel command line for the others (1 GiB pages seldom allocate at run time)."""
    label = f"hugepages-{size // 1024}kB"
    hz = fmt.page_size(size).replace(" ", "").replace("iB", "")  # 2 MiB -> 2M, 1 GiB -> 1G
    cmdline = f"kernel command line: hugepagesz={hz} hugepages={total}, then update-grub and reboot"
    if size == default_size:
        return sysctl_fix("vm.nr_hugepages", total) + [f"or the {cmdline}"]
    if size >= 1 << 30:
        return [cmdline + f" (add default_hugepagesz={hz} to make it the default size)"]
    return [cmdline, f"or at each boot: echo {total} > /sys/kernel/mm/hugepages/{label}/nr_hugepages"]


def check_hugepages(pools: list[HugePool], size: int, count: int, default_size: int | None) -> Result:
    name = f"hugepages {fmt.page_size(size)}"
    pool = next((p for p in pools if p.pagesize_bytes == size), None)
    if pool is None:
        have = ", ".join(fmt.page_size(p.pagesize_bytes) for p in pools) or "none"
        return Result("node", name, FAIL, f"no pool of this size (pools: {have})",
                      f"this kernel or CPU has no {fmt.page_size(size)} hugepages; a mapping of them fails",
                      data={"required": count, "pagesize_bytes": size})
    usable = pool.free - pool.reserved  # reserved pages are promised to mappings already made
    data = {"pagesize_bytes": size, "required": count, "total": pool.total, "free": pool.free,
            "reserved": pool.reserved, "usable": usable}
    figure = f"usable {usable} (free {pool.free} - reserved {pool.reserved}) of {pool.total}; need {count}"
    if usable < count:
        total = pool.total + (count - usable)
        return Result("node", name, FAIL, figure,
                      f"mapping {_pages(count)} fails with ENOMEM (or SIGBUS on first touch); "
                      f"the pool needs {_pages(total)}", hugepage_fix(size, total, default_size), data)
    return Result("node", name, OK, figure, f"{_pages(count)} can be mapped", data=data)


def _pages(n: int) -> str:
    return f"{n} page" if n == 1 else f"{n} pages"


def node_results(roots: Roots, args) -> list[Result]:
    results = [check_max_map_count(roots, args.min_max_map_count)]
    if args.hugepages:
        try:
            pools = read_pools(roots)
        except ProcfsError as exc:
            return results + [Result("node", "hugepages", FAIL, "unreadable", f"cannot read the pools: {exc}")]
        try:
            default_size = read_meminfo(roots).hugepage_size
        except ProcfsError:
            default_size = None  # then every fix names the kernel command line
        for size, count in args.hugepages:
            results.append(check_hugepages(pools, size, count, default_size))
    return results


def register(subparsers, add_common) -> None:
    p = subparsers.add_parser(
        "check", help="preflight: map area limit, hugepages and, with --pid, each ENOMEM cause",
        description="Check the node (vm.max_map_count, hugepage pools) and with --pid a process "
                    "(map areas against the limit, VmData against RLIMIT_DATA, VmSize against RLIMIT_AS, "
                    "memory available). Exit 0 when all pass, 1 when one fails, 2 on bad usage.")
    add_common(p)  # cli gives subcommands SUPPRESS defaults: flags before the command stay
    p.add_argument("--pid", type=pid_arg, action="append", default=[], metavar="PID",
                   help="also check this process (repeatable)")
    p.add_argument("--min-max-map-count", type=int, metavar="N",
                   help=f"fail when vm.max_map_count is below N (default: the kernel default "
                        f"{KERNEL_DEFAULT_MAX_MAP_COUNT})")
    p.add_argument("--hugepages", type=hugepages_arg, action="append", default=[], metavar="SIZE:COUNT",
                   help="fail when fewer than COUNT pages of SIZE are usable (free - reserved), e.g. 2M:1024 "
                        "or 1G:4 (repeatable)")
    p.add_argument("--warn-ratio", type=float, default=0.9, metavar="R",
                   help="warn when a process uses this share of a limit (default: %(default)s)")
    add_output_flags(p)
    p.set_defaults(func=run)


@guarded("check")
def run(args) -> int:
    if args.min_max_map_count is not None and args.min_max_map_count < 1:
        print(f"vma-exporter check: --min-max-map-count must be positive, not {args.min_max_map_count}",
              file=sys.stderr)
        return 2
    if not 0 < args.warn_ratio <= 1:
        print(f"vma-exporter check: --warn-ratio must be in (0, 1], not {args.warn_ratio}", file=sys.stderr)
        return 2
    roots = roots_of(args)
    results = node_results(roots, args)
    for pid in args.pid:
        results.extend(check_process(roots, pid, args.warn_ratio))
    failed = any(r.status not in (OK, WARN) for r in results)
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [r.as_json() for r in results]}, indent=2))
    else:
        style = fmt.Style(fmt.use_colour(args.color, sys.stdout))
        print("\n".join(render_text(results, style)))
    return EXIT_FAIL if failed else EXIT_OK
