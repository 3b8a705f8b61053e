"""``vma-exporter explain PID``: what multiplies a process's map areas, and what to do.

Reads /proc/PID/stat (comm, thread count), /proc/PID/maps once (through
snapshot.take, which also reads /proc/sys/vm/max_map_count and where hugetlbfs
is mounted), then tells, busiest first, each pattern that holds the areas
(exporter/patterns): its count, the address region where it lives, what it is
(object, directory, family, anonymous shape, thread stacks, malloc arenas),
and one line each of what it usually means and what to do. The count against
max_map_count comes first: that is what the person paged for ENOMEM asks.
"""

import json
import sys

from exporter.commands import fmt
from exporter.commands.checks_process import map_areas_result
from exporter.commands.common import CommandError, add_output_flags, guarded, identify, pid_arg, roots_of
from exporter.commands.snapshot import take
from exporter.patterns import advice, threads as thread_check
from exporter.patterns.areas import Finding, analyze, locate, shape_keys
from exporter.procfs.maps import KINDS, Classifier, parse_maps

LIMIT = 10  # patterns shown; the daemon keeps 3
MIN_SHARE = 0.01  # after the first, a pattern holds at least this share of the areas


class Explanation:
    """Everything explain prints, computed once for text and JSON alike."""

    def __init__(self, snap, threads: int | None):
        self.snap = snap
        self.threads = threads
        areas = snap.areas()
        self.summary = parse_maps(snap.data, Classifier(snap.hugetlb_mounts))
        keys = shape_keys(areas)
        chosen = analyze(areas, LIMIT, MIN_SHARE, keys)
        checked = thread_check.check(tuple(c.public() for c in chosen), threads)
        self.findings = [f._replace(pattern=p.pattern) for f, p in zip(locate(areas, chosen, keys), checked)]

    @property
    def count(self) -> int:
        return self.summary.areas

    def limit_verdict(self):
        limit = self.snap.max_map_count
        return map_areas_result("", self.count, limit, 0.9) if limit else None


def _stacks_line(f: Finding, threads: int | None) -> str | None:
    if f.pattern not in ("thread_stacks", "exited_thread_stacks") or threads is None:
        return None
    stacks = f.areas // 2
    live = max(threads - 1, 0)  # the main thread runs on [stack]
    text = (f"{stacks} stack{'s' if stacks != 1 else ''} for {threads} thread{'s' if threads != 1 else ''} "
            f"({live} besides the main thread on [stack])")
    gone = thread_check.exited(stacks, threads, f.label)
    if gone:
        text += f": about {gone} belong to threads that exited and were never joined"
    return text


def render_text(e: Explanation, style: fmt.Style) -> list[str]:
    s = e.snap
    who = f"pid {s.pid} ({fmt.printable(s.comm)})" if s.comm else f"pid {s.pid}"
    lines = []
    verdict = e.limit_verdict()
    if verdict:
        paint = {"OK": style.green, "WARN": style.yellow}.get(verdict.status, style.red)
        lines.append(style.bold(f"{who}: {verdict.figure}"))
        lines.append(paint(verdict.status) + f"  {verdict.verdict}")
    else:
        lines.append(style.bold(f"{who}: {e.count} map areas (max_map_count unreadable)"))
    kinds = sorted(((n, k) for k, n in e.summary.by_kind.items() if n), reverse=True)
    lines.append("by kind: " + ", ".join(f"{n} {k}" for n, k in kinds) if kinds else "by kind: none")
    if e.threads is not None:
        lines.append(f"threads: {e.threads}")
    lines.append("")
    if not e.findings:
        lines.append("nothing multiplies: no object, directory, family or anonymous shape holds "
                     "8 areas or more")
        return lines
    lines.append(style.bold("WHAT HOLDS THE AREAS, busiest first"))
    for i, f in enumerate(e.findings, 1):
        share = fmt.percent(f.areas / e.count) if e.count else "-"
        lines.append(style.bold(f"{i}. {f.areas} areas ({share}): {f.pattern} {fmt.printable(f.label)}"))
        lines.append(f"   region {f.start:x}-{f.end:x} ({fmt.human_bytes(f.span)}), "
                     f"{fmt.human_bytes(f.mapped)} mapped")
        stacks = _stacks_line(f, e.threads)
        if stacks:
            lines.append(f"   {stacks}")
        means, todo = advice.advice(f.public())
        lines.append(f"   means: {means}")
        lines.append(f"   do:    {todo}")
    return lines


def render_json(e: Explanation) -> dict:
    s = e.snap
    limit = s.max_map_count
    out = {
        "pid": s.pid, "comm": s.comm, "map_areas": e.count, "max_map_count": limit,
        "headroom": limit - e.count if limit else None,
        "limit_ratio": e.count / limit if limit else None,
        "threads": e.threads,
        "map_areas_by_kind": {k: e.summary.by_kind[k] for k in KINDS},
        "patterns": [],
    }
    for f in e.findings:
        means, todo = advice.advice(f.public())
        item = {"pattern": f.pattern, "label": f.label, "map_areas": f.areas,
                "share": f.areas / e.count if e.count else None,
                "region": {"start": f"{f.start:x}", "end": f"{f.end:x}", "size_bytes": f.span},
                "mapped_bytes": f.mapped, "means": means, "action": todo}
        if f.pattern in ("thread_stacks", "exited_thread_stacks"):
            item["stacks"] = f.areas // 2
        out["patterns"].append(item)
    return out


def register(subparsers, add_common) -> None:
    p = subparsers.add_parser(
        "explain", help="what multiplies a process's map areas, where, and what to do",
        description="Read PID's map areas once and tell, busiest first, each pattern that holds them: one "
                    "object mapped many times, numbered files or a directory of files each mapped once, "
                    "anonymous areas of one shape (a carved reservation, pieces left by munmap), thread "
                    "stacks, malloc arenas; with the address region, what it usually means and what to do.")
    add_common(p)  # cli gives subcommands SUPPRESS defaults: flags before the command stay
    p.add_argument("pid", type=pid_arg, metavar="PID")
    add_output_flags(p)
    p.set_defaults(func=run)


@guarded("explain")
def run(args) -> int:
    roots = roots_of(args)
    snap = take(roots, args.pid)
    stat = identify(roots, args.pid)
    if stat.starttime_ticks != snap.start_ticks:
        raise CommandError(f"pid {args.pid} exited and was reused while it was read")
    e = Explanation(snap, stat.num_threads)
    if args.json:
        print(json.dumps(render_json(e), indent=2))
    else:
        style = fmt.Style(fmt.use_colour(args.color, sys.stdout))
        print("\n".join(render_text(e, style)))
    return 0

