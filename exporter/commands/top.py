"""``vma-exporter top``: the node's processes ranked by map areas, and what holds them.

One pass of the exporter's own Collector (so the same config, --path.procfs
and --path.sysfs as the daemon, and no second reading of /proc): per process
/proc/PID/stat, statm and maps; for the node /proc/sys/vm/max_map_count and
the hugepage pools under /sys/kernel/mm/hugepages. Every watched process is
listed, not only those the daemon exports.

``--watch SECONDS`` refreshes in place (a new screen on a terminal, one frame
after another otherwise) with each process's growth since the previous
refresh; ``--json`` prints one JSON object per refresh, one per line.
"""

import json
import sys
import time

from exporter.collect import Collector
from exporter.commands import fmt
from exporter.commands.common import (
    add_output_flags,
    guarded,
    load_config_or_fail,
    positive_float,
    positive_int,
    roots_of,
)
from exporter.patterns import Pattern
from exporter.patterns import threads as thread_check
from exporter.procfs.access import CAP_SYS_PTRACE, has_capability
from exporter.snapshot import ProcessSample, Snapshot

# Shares of max_map_count that colour the %MAX column: the daemon's default
# per-process threshold (min_limit_ratio) and the critical alert's 90 %.
WARN_SHARE, CRIT_SHARE = 0.5, 0.9
OBJECT_WIDTH = 60  # a longer path keeps its tail: the file name tells most
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen


def _share(p: ProcessSample, limit: int | None) -> float | None:
    return p.map_areas / limit if limit and p.map_areas is not None else None


def _short(path: str | None) -> str:
    if not path:
        return "-"
    return path if len(path) <= OBJECT_WIDTH else "..." + path[-(OBJECT_WIDTH - 3):]


def header_lines(snap: Snapshot, style: fmt.Style, sysfs: str = "/sys") -> list[str]:
    limit = snap.max_map_count
    lines = [style.bold("max_map_count ") + (str(limit) if limit is not None else "unknown (unreadable)")]
    if snap.pools is None:
        pools = f"unknown: sysfs unreadable at {sysfs}"
    elif snap.pools:
        pools = "; ".join(
            f"{fmt.page_size(p.pagesize_bytes)}: {p.total} total, {p.free} free, {p.reserved} reserved, "
            f"{p.surplus} surplus" for p in snap.pools)
    else:
        pools = "none (no hugetlb support)"
    lines.append(style.bold("hugepages ") + pools)
    watched = snap.watched
    line = style.bold("processes ") + f"{watched} watched of {snap.scanned} scanned"
    unreadable = sum(1 for p in snap.processes if p.map_areas is None)
    if unreadable:
        # The capability helps only when it is missing; with it, the processes refuse on their side.
        why = ("refused even with CAP_SYS_PTRACE: not dumpable in another user namespace, or a security module"
               if has_capability(CAP_SYS_PTRACE) else "needs CAP_SYS_PTRACE")
        line += f"; maps unreadable for {unreadable} ({why})"
    if not snap.complete:
        line += "; collection cut short by --collect.timeout"
    lines.append(line)
    return lines


def checked_patterns(procs) -> dict[tuple[int, int], tuple[Pattern, ...]]:
    """Each process's patterns, thread stacks checked against its thread count."""
    return {p.identity: thread_check.check(p.breakdown.patterns, p.threads) if p.breakdown else ()
            for p in procs}


def render_text(snap: Snapshot, style: fmt.Style, limit: int | None,
                growth: dict[tuple[int, int], int | None] | None = None, sysfs: str = "/sys") -> list[str]:
    """The header and the ranked table; *growth* (watch mode) adds the GROWTH column.

    KIND, HOLDS and WHAT are the first of the process's patterns: what holds
    most of its areas (exporter/patterns), "-" when nothing multiplies."""
    lines = header_lines(snap, style, sysfs)
    procs = snap.processes[:limit] if limit else snap.processes
    patterns = checked_patterns(procs)
    headers = ["PID", "COMM", "GROUP", "AREAS"] + (["GROWTH"] if growth is not None else []) + [
        "%MAX", "VIRT", "RES", "SHR", "HUGETLB", "KIND", "HOLDS", "WHAT"]
    right = [True, False, False, True] + ([True] if growth is not None else []) + [
        True, True, True, True, True, False, True, False]
    rows = []
    for p in procs:
        share = _share(p, snap.max_map_count)
        paint = (style.red if share is not None and share >= CRIT_SHARE
                 else style.yellow if share is not None and share >= WARN_SHARE else None)
        row = [str(p.pid), p.comm, p.group, (str(p.map_areas) if p.map_areas is not None else "?", paint)]
        if growth is not None:
            g = growth.get(p.identity, "")  # absent: the first refresh, nothing to compare with
            row.append(g if g == "" else ("new", style.cyan) if g is None
                       else (fmt.signed(g), style.yellow if g > 0 else None))
        first = patterns.get(p.identity, ())[:1]
        row += [(fmt.percent(share), paint), fmt.human_bytes(p.virtual_bytes), fmt.human_bytes(p.resident_bytes),
                fmt.human_bytes(p.shared_bytes), fmt.human_bytes(p.hugetlb_bytes),
                first[0].pattern if first else "-", str(first[0].areas) if first else "-",
                _short(first[0].label if first else None)]
        rows.append(row)
    lines.append("")
    lines.extend(fmt.table(headers, rows, right, style))
    if limit and len(snap.processes) > limit:
        lines.append(f"... {len(snap.processes) - limit} more (--limit)")
    return lines


def render_json(snap: Snapshot, limit: int | None,
                growth: dict[tuple[int, int], int | None] | None = None) -> dict:
    procs = snap.processes[:limit] if limit else snap.processes
    patterns = checked_patterns(procs)
    out = []
    for p in procs:
        m = p.breakdown
        item = {
            "pid": p.pid, "comm": p.comm, "group": p.group, "start_time_seconds": p.start_time_seconds,
            "map_areas": p.map_areas, "limit_ratio": _share(p, snap.max_map_count),
            "virtual_bytes": p.virtual_bytes, "resident_bytes": p.resident_bytes, "shared_bytes": p.shared_bytes,
            "hugetlb_bytes": p.hugetlb_bytes, "threads": p.threads,
            "top_object": m.top_object if m else None,
            "top_object_map_areas": m.top_object_areas if m and m.top_object else None,
            "map_areas_by_kind": dict(m.by_kind) if m else None,
            "patterns": [{"pattern": x.pattern, "label": x.label, "map_areas": x.areas}
                         for x in patterns.get(p.identity, ())] if m else None,
            "exported": p.exported,  # whether the daemon gives it per-process series
        }
        if growth is not None:
            item["map_areas_growth"] = growth.get(p.identity)
        out.append(item)
    return {
        "timestamp": snap.timestamp,
        "max_map_count": snap.max_map_count,
        "hugepages": None if snap.pools is None else [  # None: sysfs unreadable, not "no pools"
            {"pagesize_bytes": p.pagesize_bytes, "total": p.total, "free": p.free, "reserved": p.reserved,
             "surplus": p.surplus, "usable": p.free - p.reserved} for p in snap.pools],
        "processes_scanned": snap.scanned,
        "processes_watched": snap.watched,
        "read_errors": dict(snap.read_errors),
        "complete": snap.complete,
        "processes": out,
    }


def growth_since(prev: Snapshot | None, snap: Snapshot) -> dict[tuple[int, int], int | None]:
    """Map areas gained per process since *prev*, by (pid, start time); None = new
    (or unreadable). Empty on the first refresh."""
    if prev is None:
        return {}
    before = {p.identity: p.map_areas for p in prev.processes}
    out: dict[tuple[int, int], int | None] = {}
    for p in snap.processes:
        old = before.get(p.identity)
        out[p.identity] = None if old is None or p.map_areas is None else p.map_areas - old
    return out


def register(subparsers, add_common) -> None:
    p = subparsers.add_parser(
        "top", help="processes ranked by map areas against vm.max_map_count",
        description="List the watched processes of the node, most map areas first, with their share of "
                    "vm.max_map_count, VIRT/RES/SHR, hugetlb memory and the backing object mapped in the "
                    "most areas. The header shows the limit and the hugepage pools.")
    add_common(p)  # cli gives subcommands SUPPRESS defaults: flags before the command stay
    p.add_argument("-n", "--limit", type=positive_int, metavar="N",
                   help="show only the first N processes (default: all watched)")
    p.add_argument("--watch", type=positive_float, metavar="SECONDS",
                   help="refresh every SECONDS, showing each process's growth since the last refresh")
    p.add_argument("--count", type=positive_int, metavar="N",
                   help="with --watch: stop after N refreshes (default: until interrupted)")
    add_output_flags(p)
    p.set_defaults(func=run)


@guarded("top")
def run(args) -> int:
    collector = Collector(roots_of(args), load_config_or_fail(args))
    style = fmt.Style(fmt.use_colour(args.color, sys.stdout))
    if not args.watch:
        snap = collector.collect(everyone=True)  # each with its breakdown, not only the exported
        if args.json:
            print(json.dumps(render_json(snap, args.limit), indent=2))
        else:
            print("\n".join(render_text(snap, style, args.limit, sysfs=args.sysfs)))
        return 0
    in_place = sys.stdout.isatty() and not args.json
    prev, n = None, 0
    try:
        while True:
            started = time.monotonic()
            snap = collector.collect(everyone=True)
            growth = growth_since(prev, snap)
            if args.json:
                out = json.dumps(render_json(snap, args.limit, growth))
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(snap.timestamp))
                head = style.dim(f"every {args.watch:g} s, refresh {n + 1}, {stamp}; growth since the previous")
                out = "\n".join([head] + render_text(snap, style, args.limit, growth, args.sysfs))
                out = CLEAR + out if in_place else out + ("\n" if not args.count or n + 1 < args.count else "")
            print(out, flush=True)
            prev, n = snap, n + 1
            if args.count and n >= args.count:
                return 0
            time.sleep(max(0.0, args.watch - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a watch ends
