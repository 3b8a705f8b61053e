"""``vma-exporter diff``: which map areas a process gained or lost, by region, shape and object.

Two reads of /proc/PID/maps ``--interval`` apart (through snapshot.take), or
saved snapshots (``--from FILE [--to FILE]``). Areas are grouped by kind and
backing object (a file, a shm object, ``[heap]``, anonymous memory); each
group shows its count and size before and after and a few of the address
ranges that appeared or went away. This replaces saving maps twice and
diffing by hand (docs/incidents.md, incident 002): a process that maps one shm object in a loop shows
that object first, with its growth. Changes are also totalled by pattern
(exporter/patterns): anonymous areas by shape with the region they span, so
a carved reservation reads as "+36000 areas inside 7f..-7f..: 4KiB
rw-p/---p alternating", and the second read's patterns close the report, so
"no map area changed" still says what holds the areas.
"""

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from exporter.commands import fmt
from exporter.commands.common import (
    EXIT_USAGE,
    CommandError,
    add_output_flags,
    guarded,
    pid_arg,
    positive_float,
    positive_int,
    roots_of,
)
from exporter.commands.snapshot import MapsSnapshot, load, take
from exporter.patterns import rank
from exporter.patterns.areas import analyze, grouped, shape_keys
from exporter.procfs.maps_areas import Area

ANON = "[anon]"  # the object of areas without a name


@dataclass
class Change:
    """One (kind, object) group whose areas changed."""

    kind: str
    object: str
    before: int = 0
    after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    added: list[Area] = field(default_factory=list)  # areas only in the second read
    removed: list[Area] = field(default_factory=list)  # areas only in the first read

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def bytes_delta(self) -> int:
        return self.bytes_after - self.bytes_before


def compare(before: list[Area], after: list[Area]) -> list[Change]:
    """Groups whose areas differ, most grown first and most shrunk last."""
    groups: dict[tuple[str, str], Change] = {}

    def group(a: Area) -> Change:
        k = (a.kind, a.name or ANON)
        if k not in groups:
            groups[k] = Change(a.kind, a.name or ANON)
        return groups[k]

    for a in before:
        g = group(a)
        g.before += 1
        g.bytes_before += a.size
    for a in after:
        g = group(a)
        g.after += 1
        g.bytes_after += a.size
    # An area is "the same" when every field of its line is; a split or an
    # mprotect shows as one area gone and two (or one) new ones.
    old, new = Counter(before), Counter(after)
    for a in after:
        if old[a] > 0:
            old[a] -= 1
        else:
            group(a).added.append(a)
    for a in before:
        if new[a] > 0:
            new[a] -= 1
        else:
            group(a).removed.append(a)
    changed = [g for g in groups.values() if g.added or g.removed]
    return sorted(changed, key=lambda g: (-g.delta, -(len(g.added) + len(g.removed)), g.kind, g.object))


def area_range(a: Area) -> str:
    return f"{a.start:08x}-{a.end:08x} {a.perms} {fmt.human_bytes(a.size)}"


@dataclass
class Region:
    """The areas of one pattern (a shape, a family, an object) that changed, and where."""

    pattern: str
    label: str
    added: int
    removed: int
    start: int
    end: int

    @property
    def delta(self) -> int:
        return self.added - self.removed


def regions(before: list[Area], after: list[Area], changes: list[Change]) -> list[Region]:
    """Areas gained and lost, totalled by pattern: anonymous areas by their shape
    (exporter/patterns), each shape in its own maps' context, named ones by object,
    family or directory; with the address region they span."""
    sides = []
    for areas, pick in ((after, "added"), (before, "removed")):
        keys = dict(zip(areas, shape_keys(areas)))
        changed = sorted((a for c in changes for a in getattr(c, pick)), key=lambda a: a.start)
        sides.append(grouped(changed, [keys[a] for a in changed]))
    out: dict[tuple[str, str], Region] = {}
    for sign, found in zip((1, -1), sides):
        for f in found:
            r = out.get((f.pattern, f.label))
            if r is None:
                r = out[(f.pattern, f.label)] = Region(f.pattern, f.label, 0, 0, f.start, f.end)
            r.start, r.end = min(r.start, f.start), max(r.end, f.end)
            if sign > 0:
                r.added += f.areas
            else:
                r.removed += f.areas
    return sorted(out.values(), key=lambda r: (-abs(r.delta), -(r.added + r.removed), r.pattern, r.label))


@dataclass
class Report:
    before: MapsSnapshot
    after: MapsSnapshot
    count_before: int
    count_after: int
    changes: list[Change]
    regions: list[Region] = field(default_factory=list)
    now: tuple = ()  # what holds the areas in the second read (Pattern tuples, busiest first)

    @property
    def interval(self) -> float | None:
        if self.before.time is None or self.after.time is None:
            return None
        return self.after.time - self.before.time

    @property
    def limit(self) -> int | None:
        return self.after.max_map_count or self.before.max_map_count

    @property
    def rate(self) -> float | None:
        interval = self.interval
        return (self.count_after - self.count_before) / interval if interval and interval > 0 else None

    def seconds_to_limit(self) -> float | None:
        rate, limit = self.rate, self.limit
        if not rate or rate <= 0 or not limit:
            return None
        return max(0.0, (limit - self.count_after) / rate)


def build(before: MapsSnapshot, after: MapsSnapshot) -> Report:
    a, b = before.areas(), after.areas()
    changes = compare(a, b)
    now = tuple(c.public() for c in analyze(b, rank.TOP, rank.MIN_SHARE))
    return Report(before, after, len(a), len(b), changes, regions(a, b, changes), now)


def _who(r: Report) -> str:
    s = r.after if r.after.pid is not None else r.before
    if s.pid is not None:
        return f"pid {s.pid} ({fmt.printable(s.comm)})" if s.comm else f"pid {s.pid}"
    return f"{r.before.source} -> {r.after.source}"


def render_text(r: Report, style: fmt.Style, examples: int, limit: int) -> list[str]:
    delta = r.count_after - r.count_before
    head = f"{_who(r)}: {r.count_before} -> {r.count_after} map areas ({fmt.signed(delta)})"
    if r.interval is not None:
        head += f" in {r.interval:.1f} s"
        if r.rate is not None:
            head += f", {r.rate:+.1f}/s"
    lines = [style.bold(head)]
    if r.limit:
        used = fmt.percent(r.count_after / r.limit)
        line = f"max_map_count {r.limit}: {used} used"
        eta = r.seconds_to_limit()
        if eta is not None:
            line += f"; at this rate the limit is reached in about {fmt.duration(eta)}"
        lines.append(line)
    if not r.changes:
        lines.append("no map area changed")
        return lines + _now(r, style)
    if r.regions:
        lines.append("")
        lines.append(style.bold("BY REGION AND SHAPE"))
        for g in r.regions[:limit]:
            lines.append("  " + region_line(g))
        if len(r.regions) > limit:
            lines.append(f"  ... and {len(r.regions) - limit} more (--limit)")
    sections = (("GREW", [c for c in r.changes if c.delta > 0]),
                ("SHRANK", sorted((c for c in r.changes if c.delta < 0), key=lambda c: c.delta)),
                ("CHANGED (same count, other areas)", [c for c in r.changes if c.delta == 0]))
    for title, changes in sections:
        if not changes:
            continue
        lines.append("")
        lines.append(style.bold(title))
        shown = changes[:limit]
        rows = [[(fmt.signed(c.delta), style.yellow if c.delta > 0 else style.green if c.delta < 0 else None),
                 str(c.before), str(c.after), fmt.signed_bytes(c.bytes_delta), c.kind, c.object]
                for c in shown]
        table = fmt.table(("CHANGE", "BEFORE", "AFTER", "SIZE", "KIND", "OBJECT"), rows,
                          (True, True, True, True, False, False), style, indent="  ")
        lines.append(table[0])
        pad = "      "
        for c, row_line in zip(shown, table[1:]):
            lines.append(row_line)
            lines.extend(_examples(c, examples, pad, style))
        if len(changes) > limit:
            lines.append(f"  ... and {len(changes) - limit} more (--limit)")
    return lines + _now(r, style)


def region_line(g: Region) -> str:
    """'+36000 areas inside 7f3e00000000-7f3e08ca0000 (140.6 MiB): 4KiB rw-p/---p alternating (anon_shape)'."""
    if g.added and g.removed:
        count = f"{fmt.signed(g.delta)} areas (+{g.added} new, -{g.removed} gone)"
    else:
        count = f"{fmt.signed(g.delta)} areas"
    where = "inside" if g.delta >= 0 else "from"
    return (f"{count} {where} {g.start:x}-{g.end:x} ({fmt.human_bytes(g.end - g.start)}): "
            f"{fmt.printable(g.label)} ({g.pattern})")


def _now(r: Report, style: fmt.Style) -> list[str]:
    """What holds the areas in the second read: the answer once growth has stopped."""
    if not r.now:
        return []
    lines = ["", style.bold("WHAT HOLDS THE AREAS NOW")]
    total = r.count_after
    for p in r.now:
        share = fmt.percent(p.areas / total) if total else "-"
        lines.append(f"  {p.areas} areas ({share}): {p.pattern} {fmt.printable(p.label)}")
    return lines


def _examples(c: Change, n: int, pad: str, style: fmt.Style) -> list[str]:
    out = []
    for label, areas in (("new", c.added), ("gone", c.removed)):
        if not areas or n == 0:
            continue
        picked = sorted(areas, key=lambda a: a.start)[:n]
        text = f"{pad}  {label}: " + ", ".join(area_range(a) for a in picked)
        if len(areas) > n:
            text += f" (+{len(areas) - n} more)"
        out.append(style.dim(text))
    return out


def _area_json(a: Area) -> dict:
    return {"start": f"{a.start:x}", "end": f"{a.end:x}", "perms": a.perms, "size_bytes": a.size}


def render_json(r: Report, examples: int) -> dict:
    def side(s: MapsSnapshot, count: int) -> dict:
        return {"source": s.source, "pid": s.pid, "comm": s.comm, "time": s.time, "map_areas": count}

    return {
        "before": side(r.before, r.count_before),
        "after": side(r.after, r.count_after),
        "map_areas_delta": r.count_after - r.count_before,
        "interval_seconds": r.interval,
        "rate_per_second": r.rate,
        "max_map_count": r.limit,
        "seconds_to_limit": r.seconds_to_limit(),
        "regions": [{
            "pattern": g.pattern, "label": g.label, "added": g.added, "removed": g.removed, "delta": g.delta,
            "start": f"{g.start:x}", "end": f"{g.end:x}", "size_bytes": g.end - g.start,
        } for g in r.regions],
        "patterns_now": [{"pattern": p.pattern, "label": p.label, "map_areas": p.areas} for p in r.now],
        "changes": [{
            "kind": c.kind, "object": c.object, "before": c.before, "after": c.after, "delta": c.delta,
            "bytes_before": c.bytes_before, "bytes_after": c.bytes_after, "bytes_delta": c.bytes_delta,
            "added": len(c.added), "removed": len(c.removed),
            "added_examples": [_area_json(a) for a in sorted(c.added, key=lambda a: a.start)[:examples]],
            "removed_examples": [_area_json(a) for a in sorted(c.removed, key=lambda a: a.start)[:examples]],
        } for c in r.changes],
    }


def register(subparsers, add_common) -> None:
    p = subparsers.add_parser(
        "diff", help="what map areas a process gained or lost, by region, shape and backing object",
        description="Compare two reads of a process's map areas: of PID, --interval seconds apart; of a "
                    "saved snapshot (--from FILE) and PID now; or of two saved snapshots "
                    "(--from FILE --to FILE). Snapshots come from `vma-exporter snapshot PID > FILE`; "
                    "a plain copy of /proc/PID/maps works too.")
    add_common(p)  # cli gives subcommands SUPPRESS defaults: flags before the command stay
    p.add_argument("pid", type=pid_arg, nargs="?", metavar="PID")
    p.add_argument("--interval", type=positive_float, default=5.0, metavar="SECONDS",
                   help="seconds between the two reads of PID (default: %(default)s)")
    p.add_argument("--from", dest="before", metavar="FILE", help="the first read: a saved snapshot")
    p.add_argument("--to", dest="after", metavar="FILE", help="the second read: a saved snapshot (needs --from)")
    p.add_argument("--examples", type=int, default=3, metavar="N",
                   help="address ranges shown per object (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=10, metavar="N",
                   help="objects shown per section (default: %(default)s)")
    add_output_flags(p)
    p.set_defaults(func=run)


@guarded("diff")
def run(args) -> int:
    if args.after and not args.before:
        raise CommandError("--to needs --from (the first read)", EXIT_USAGE)
    if args.after and args.pid:
        raise CommandError("give PID or --to FILE for the second read, not both", EXIT_USAGE)
    if not args.pid and not args.after:
        raise CommandError("nothing to compare: give PID, or --from FILE with PID or --to FILE", EXIT_USAGE)
    if args.examples < 0:
        raise CommandError(f"--examples must be 0 or more, not {args.examples}", EXIT_USAGE)
    roots = roots_of(args)
    if args.before:
        before = load(args.before)
        after = load(args.after) if args.after else take(roots, args.pid)
        _same_process(before, after)
    else:
        before = take(roots, args.pid)
        time.sleep(args.interval)
        after = take(roots, args.pid)
        _same_process(before, after)
    report = build(before, after)
    if args.json:
        print(json.dumps(render_json(report, args.examples), indent=2))
    else:
        style = fmt.Style(fmt.use_colour(args.color, sys.stdout))
        print("\n".join(render_text(report, style, args.examples, args.limit)))
    return 0


def _same_process(a: MapsSnapshot, b: MapsSnapshot) -> None:
    """Refuse to compare two different processes (pids are reused)."""
    if a.pid is None or b.pid is None:
        return  # a plain maps copy: the person knows what they saved
    if a.pid != b.pid:
        raise CommandError(f"{a.source} is pid {a.pid} and {b.source} is pid {b.pid}: not the same process")
    if a.start_ticks is not None and b.start_ticks is not None and a.start_ticks != b.start_ticks:
        raise CommandError(f"pid {a.pid} is not the same process in {a.source} and {b.source} "
                           "(it restarted and the pid was reused)")
