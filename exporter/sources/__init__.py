"""Sources of per-process facts: where the pass gets what it knows about each process.

The pass (exporter/policy.py) does not care which source it runs on. A source has:

- ``name``: what ``--collect.source`` calls it, exported in the Snapshot;
- ``counts_enomem``: whether it sees failing syscalls; then
  ``live_failures()`` gives the live processes' failures by identity (and each
  sample's ``enomem`` its own), ``node_failures`` and ``overflows`` the node's,
  and ``retired_failures()`` the final counts of processes that exited since
  the last pass;
- ``scan(node, deadline)``: every user-space process of the node, or the
  ProcfsError that stopped reading it; raises DeadlineExceeded past *deadline*.
  What it yields has a sample's pid, starttime_ticks, comm, map_areas (None
  until counted), virtual_bytes, resident_bytes and hugetlb_bytes: the pass ranks
  and sums every process, and only the exported ones become whole samples;
- ``sample(found)``: the whole ProcessSample of what scan() yielded;
- ``uid(sample)`` and ``argv(sample)``: the costly facts a group rule may need;
- ``map_areas(sample, breakdown, classifier, deadline)``: the count of map
  areas, and with *breakdown* the summary by kind and object;
- ``deepen(sample, classifier, deadline)``: what only exported processes get
  (the breakdown if it is missing, VmData, limits, pod identity), returning the
  sample and the error that stopped it, if any;
- ``end_pass()`` after each pass, ``close()`` when the collector goes.

procfs.ProcfsSource reads /proc; the BPF source reads the kernel's own counters
with a task iterator and falls back to /proc only for maps' breakdown.
"""

SOURCES = ("procfs", "bpf", "auto")


def open_source(name: str, roots):
    """The source *name* names (``--collect.source``); raises BpfUnavailable (naming
    every requirement that is missing) when ``bpf`` cannot open. ``auto`` is the
    caller's choice of what to do then."""
    from exporter.sources.procfs import ProcfsSource

    if name == "procfs":
        return ProcfsSource(roots)
    from exporter.sources.bpf import BpfSource  # loads ctypes and libbpf only when asked for

    return BpfSource(roots)


def bpf_unavailable(roots) -> str | None:
    """Why the BPF source cannot open here (every missing requirement), or None: it
    opened, and is closed again."""
    from exporter.bpf import BpfUnavailable

    try:
        open_source("bpf", roots).close()
    except BpfUnavailable as exc:
        return str(exc)
    return None
