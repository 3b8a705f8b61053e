"""Kernel-side collection with BPF: every process in one pass, and ENOMEM as it happens.

Two CO-RE objects, compiled from the C next to them and committed
(scripts/build-bpf.sh; tests/test_bpf_build.py fails when one is stale), loaded
at run time through libbpf.so.1 with ctypes (no compiler, no kernel headers):

- tasks.bpf.c / tasks.py: a task iterator that reads, for every process, the
  kernel's own figures (task_struct, signal_struct->rlim[], mm_struct's
  map_count, total_vm, data_vm, mm_rss_stat / percpu rss_stat, hugetlb_usage,
  mm_lock_seq) in one pass, as fixed binary records (records.h, records.py);
- enomem.bpf.c / enomem.py: programs on the syscalls:sys_{enter,exit}_* trace
  events of mmap, munmap, mprotect, mremap, brk and shmat that count ENOMEM per
  process, per (syscall, cause) and per node.

libbpf.py is the ctypes binding, bpfobject.py owns one loaded object and every
link and fd made from it, tracepoints.py opens trace events as perf events,
requirements.py names what is missing when the source cannot open
(``BpfUnavailable``).
"""

from exporter.bpf.requirements import BpfUnavailable

__all__ = ["BpfUnavailable"]
