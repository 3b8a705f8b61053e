"""What the diagnosis commands share: flag types, roots, config, and errors
about one process worded for the person at the terminal.

Reads /proc/PID/stat (identity: comm, start time, kernel thread?) and
/proc/PID/maps (whole, for a snapshot) through the exporter's own readers.

Exit codes, the same for every command: 0 fine, 1 a check failed or the
process is missing or unreadable (a fact about the node, not a typo), 2 bad
usage (argparse, a bad config file, a bad value).
"""

import argparse
import functools
import logging
import os
import sys

from exporter.procfs import Denied, ProcfsError, Vanished
from exporter.procfs.access import CAP_SYS_PTRACE, has_capability, is_undumpable
from exporter.procfs.maps import iter_chunks
from exporter.procfs.paths import Roots, procfs_problem, sysfs_problem
from exporter.procfs.stat import ProcStat, read_stat

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("exporter")

PTRACE_HINT = (
    "reading another process's map areas needs ptrace read access: run as root with "
    "CAP_SYS_PTRACE (in a container: add the SYS_PTRACE capability), or as the process's own user")


def denied_reason(roots: Roots, pid: int) -> str:
    """Why reading a process's maps was refused, as far as this side can tell: the
    capability is missing (then what grants it), or the process is not dumpable, or
    it refuses even a reader that has the capability (then no capability would help)."""
    if has_capability(CAP_SYS_PTRACE):
        return ("permission denied although vma-exporter has CAP_SYS_PTRACE: the process refuses ptrace "
                "reads from here (it is not dumpable and in another user namespace, or a security module "
                "such as Landlock, AppArmor or SELinux confines one of the two)")
    if is_undumpable(roots, pid):
        return (f"permission denied: pid {pid} is not dumpable (prctl PR_SET_DUMPABLE 0, or a setuid or "
                "file-capability program), so even its own user cannot read its maps; only CAP_SYS_PTRACE can")
    return f"permission denied; {PTRACE_HINT}"


class CommandError(Exception):
    """A failure to report as ``vma-exporter COMMAND: message`` with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL):
        super().__init__(message)
        self.code = code


def pid_arg(text: str) -> int:
    """argparse type: a process id (a positive integer)."""
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r} (want a positive integer)")
    return int(text)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the output: auto = only on a terminal and without NO_COLOR (default: auto)")


def checked_roots(args) -> Roots:
    """The one check of --path.procfs and --path.sysfs, for the daemon and every command.

    A procfs that is missing or not a procfs is bad usage (ValueError, exit 2):
    nothing could be reported. An unreadable sysfs is said once, here, at
    start; the exporter still serves map areas, with the hugepage pools missing
    and vma_exporter_node_read_success{file="hugepages"} 0, never "no hugetlb".
    """
    roots = Roots(args.procfs, args.sysfs)
    problem = procfs_problem(roots)
    if problem:
        raise ValueError(f"--path.procfs: {problem}")
    problem = sysfs_problem(roots)
    if problem:
        log.warning("--path.sysfs: %s: the hugepage pools are unknown (not the same as none)", problem)
    return roots


def roots_of(args) -> Roots:
    """The roots of --path.procfs and --path.sysfs, checked as the daemon checks them:
    a bad procfs is bad usage; an unreadable sysfs is said once."""
    try:
        return checked_roots(args)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def load_config_or_fail(args):
    """The targets config of --config.file (or the embedded default); a bad file is bad usage."""
    from exporter.targets import ConfigError, load_config

    try:
        return load_config(args.config_file)
    except ConfigError as exc:
        raise CommandError(f"config error: {exc}", EXIT_USAGE) from None


def process_error(exc: ProcfsError, roots: Roots, pid: int, path: str) -> CommandError:
    """Word a reader error about one process for a person."""
    if isinstance(exc, Vanished):
        if not os.path.exists(roots.proc(pid)):
            return CommandError(f"no process with pid {pid} ({roots.proc(pid)} does not exist)")
        return CommandError(f"pid {pid} exited while {path} was read")
    if isinstance(exc, Denied):
        return CommandError(f"pid {pid}: cannot read {path}: {denied_reason(roots, pid)}")
    return CommandError(f"pid {pid}: cannot read {path}: {exc}")


def identify(roots: Roots, pid: int) -> ProcStat:
    """The process's stat (comm, start time); an error if it is missing or has no memory."""
    try:
        stat = read_stat(roots, pid)
    except ProcfsError as exc:
        raise process_error(exc, roots, pid, roots.pid(pid, "stat")) from None
    if stat.is_kernel_thread:
        raise CommandError(f"pid {pid} ({stat.comm}) is a kernel thread: it has no map areas")
    if stat.is_zombie:
        raise CommandError(f"pid {pid} ({stat.comm}) is a zombie: it has no map areas any more")
    return stat


def read_maps_bytes(roots: Roots, pid: int) -> bytes:
    """The whole maps file, as the kernel wrote it (for snapshot and diff)."""
    path = roots.pid(pid, "maps")
    try:
        return b"".join(iter_chunks(path))
    except ProcfsError as exc:
        raise process_error(exc, roots, pid, path) from None


def guarded(name: str):
    """Decorate a command's run(): CommandError becomes a message and an exit
    code; a closed pipe (``| head``) ends quietly, the way other tools do."""

    def wrap(run):
        @functools.wraps(run)
        def inner(args) -> int:
            try:
                return run(args)
            except CommandError as exc:
                print(f"vma-exporter {name}: {exc}", file=sys.stderr)
                return exc.code
            except BrokenPipeError:
                # Python would complain again when it flushes stdout at exit.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_OK

        return inner

    return wrap
