"""The pass's policy: who is watched, who is exported, who gets the breakdown.

Knows no file and no source: a source (exporter/sources) gives each process's
facts; this decides what to ask it for.

- watched: the processes the targets config matches (exporter/targets), decided
  once per (pid, start time, comm);
- exported: per-process series are bounded to the top N by map areas node-wide,
  plus every process at or above a share of vm.max_map_count, so danger is never
  hidden by the bound (choose_exported);
- the breakdown (kinds, objects) is for exported processes only. Which ones
  those are is known only at the end of the pass, so the pass predicts them from
  the previous one (the biggest processes stay the biggest) and asks the source
  for their breakdown in the same read; a process that newly enters the exported
  set is read a second time (Source.deepen). In steady state none is.

Vanished or unreadable processes become counted outcomes, never exceptions: one
misbehaving process never fails a pass.
"""

from dataclasses import dataclass

from exporter.node import NodeFacts
from exporter.procfs import DeadlineExceeded, Denied, ParseError, ProcfsError, Vanished
from exporter.procfs.maps import Classifier
from exporter.snapshot import READ_ERROR_REASONS, ProcessSample
from exporter.targets import Matcher, ProcessFacts
from exporter.targets.match import MISSING


def reason_of(exc: ProcfsError) -> str:
    """The `reason` label of vma_exporter_read_errors_total for a reader error."""
    if isinstance(exc, Vanished):
        return "vanished"
    if isinstance(exc, Denied):
        return "permission"
    if isinstance(exc, ParseError):
        return "parse"
    return "io"


@dataclass
class PassResult:
    samples: list[ProcessSample]  # every watched process, most map areas first, `exported` set
    errors: dict[str, int]  # read errors of this pass, by reason
    scanned: int  # processes examined (kernel threads and real zombies excluded)
    complete: bool  # False when the deadline cut the pass short


def choose_exported(samples: list[ProcessSample], top_n: int, min_ratio: float,
                    max_map_count: int | None) -> list[ProcessSample]:
    """The samples most map areas first, with ``exported`` set on the top *top_n*
    and on every one at or above *min_ratio* of the limit."""
    # Unreadable map counts rank last; ties go to the lower pid for a stable order.
    ranked = sorted(samples, key=lambda s: (-(s.map_areas if s.map_areas is not None else -1), s.pid))
    threshold = min_ratio * max_map_count if max_map_count else None
    out = []
    for rank, s in enumerate(ranked):
        areas = s.map_areas
        exported = areas is not None and (rank < top_n or (threshold is not None and areas >= threshold))
        out.append(s._replace(exported=True) if exported else s)
    return out


class Policy:
    """Runs passes over a source; remembers who was exported, to predict the next pass."""

    def __init__(self, matcher: Matcher):
        self.matcher = matcher
        self.predicted: set[tuple[int, int]] = set()  # (pid, start) exported by the last pass

    def run(self, source, node: NodeFacts, deadline: float | None, everyone: bool = False) -> PassResult:
        """One pass. With *everyone* (the CLI views) every watched process gets its
        breakdown; the prediction is left as it was."""
        errors = dict.fromkeys(READ_ERROR_REASONS, 0)
        matcher, predicted = self.matcher, self.predicted
        classifier = Classifier(node.hugetlb_mounts or ())
        samples: list[ProcessSample] = []
        live = set()
        scanned, complete = 0, True
        try:
            for found in source.scan(node, deadline):
                scanned += 1
                if isinstance(found, ProcfsError):
                    errors[reason_of(found)] += 1
                    continue
                key = (found.pid, found.starttime_ticks, found.comm)
                live.add(key)
                try:
                    group = matcher.cached(key)
                    if group is MISSING:  # not seen before: match it (may read its cmdline or uid)
                        group = matcher.group_of(ProcessFacts(
                            found.pid, found.starttime_ticks, found.comm,
                            lambda f=found: source.uid(f), lambda f=found: source.argv(f)))
                    if group is None:
                        continue
                    try:
                        areas, breakdown = source.map_areas(
                            found, everyone or (found.pid, found.starttime_ticks) in predicted, classifier, deadline)
                    except Denied:
                        errors["permission"] += 1  # still counted in its group, without map areas
                        areas = breakdown = None
                except DeadlineExceeded:
                    raise
                except ProcfsError as exc:
                    errors[reason_of(exc)] += 1
                    continue
                samples.append(found._replace(group=group, map_areas=areas, breakdown=breakdown))
        except DeadlineExceeded:
            complete = False  # the process being read is left out: a partial count would understate it
        matcher.retain(live)
        config = matcher.config
        samples = choose_exported(samples, config.top_n, config.min_limit_ratio, node.max_map_count)
        for i, s in enumerate(samples):
            if not s.exported:
                continue
            deepened, error = source.deepen(s, classifier, deadline)
            if isinstance(error, DeadlineExceeded):
                complete = False  # exported with its count; the rest is left out
            elif error is not None:
                errors[reason_of(error)] += 1
            samples[i] = deepened
        if not everyone:
            self.predicted = {s.identity for s in samples if s.exported}
        source.end_pass()
        return PassResult(samples, errors, scanned, complete)
