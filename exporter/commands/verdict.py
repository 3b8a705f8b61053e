"""One check's outcome and how ``vma-exporter check`` prints a list of them.

Reads no file. A result has a status, the figure it rests on, a one-line
verdict saying what happens to the process, and, when it is not OK, the
commands that fix it for good.
"""

from dataclasses import dataclass, field

from exporter.commands import fmt

OK, WARN, FAIL, ERROR = "OK", "WARN", "FAIL", "ERROR"  # ERROR: the check could not be made


@dataclass(frozen=True)
class Result:
    scope: str  # "node" or "pid 4242 (java)"
    name: str  # what was checked, e.g. "vm.max_map_count"
    status: str
    figure: str
    verdict: str
    fix: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # the numbers, for --json

    def as_json(self) -> dict:
        return {"scope": self.scope, "check": self.name, "status": self.status, "figure": self.figure,
                "verdict": self.verdict, "fix": list(self.fix), **({"data": self.data} if self.data else {})}


def _paint(status: str, style: fmt.Style):
    return {OK: style.green, WARN: style.yellow}.get(status, style.red)


def render_text(results: list[Result], style: fmt.Style) -> list[str]:
    """Results grouped by scope; status, name and figure aligned across all of them."""
    width_status = max(len(s) for s in (OK, WARN, FAIL, ERROR))
    width_name = max((len(r.name) for r in results), default=0)
    indent = "  " + " " * (width_status + 2)
    lines: list[str] = []
    scope = None
    for r in results:
        if r.scope != scope:
            scope = r.scope
            lines.append(style.bold(scope))
        status = _paint(r.status, style)(r.status) + " " * (width_status - len(r.status))
        lines.append(f"  {status}  {r.name.ljust(width_name)}  {r.figure}".rstrip())
        lines.append(f"{indent}{r.verdict}")
        for i, fix in enumerate(r.fix):
            lines.append(f"{indent}{'fix: ' if i == 0 else '     '}{fix}")
    counts = {s: sum(1 for r in results if r.status == s) for s in (FAIL, ERROR, WARN, OK)}
    failed = counts[FAIL] + counts[ERROR]
    summary = f"{failed} failed, {counts[WARN]} warning{'s' if counts[WARN] != 1 else ''}, {counts[OK]} passed"
    lines.append(_paint(FAIL if failed else WARN if counts[WARN] else OK, style)(summary))
    return lines
