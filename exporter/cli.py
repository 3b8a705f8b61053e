"""Command line: the daemon (default) and the diagnosis subcommands.

Flags follow node_exporter's names so fleet tooling carries over.
"""

import argparse
import functools
import importlib
import logging
import signal
import sys


from exporter import __version__, logs
from exporter.collect import Collector
from exporter.commands import COMMANDS
from exporter.exposition import Exposition
from exporter.procfs import ProcfsError
from exporter.procfs.access import CAP_SYS_PTRACE, has_capability, probe_maps_access
from exporter.commands.common import checked_roots
from exporter.procfs.paths import Roots
from exporter.sources import SOURCES, open_source
from exporter.targets import ConfigError, load_config

DEFAULT_PORT = 9979
DEFAULT_LISTEN = f":{DEFAULT_PORT}"
log = logging.getLogger("exporter")


def add_common(p: argparse.ArgumentParser, suppress: bool = False) -> None:
    """Flags every command shares: where /proc and /sys are, which targets.

    On a subcommand's parser (*suppress*), the defaults are SUPPRESS: argparse
    copies a subparser's defaults over the namespace, so a default there would
    silently undo ``vma-exporter --path.procfs /host/proc top``.
    """
    def default(value):
        return argparse.SUPPRESS if suppress else value

    p.add_argument("--config.file", dest="config_file", metavar="PATH", default=default(None),
                   help="targets config (YAML); default: the embedded config, every process grouped by comm")
    p.add_argument("--path.procfs", dest="procfs", default=default("/proc"), metavar="PATH",
                   help="procfs mount point (default: /proc)")
    p.add_argument("--path.sysfs", dest="sysfs", default=default("/sys"), metavar="PATH",
                   help="sysfs mount point (default: /sys)")
    p.add_argument("--log.level", dest="log_level", default=default("info"), choices=list(logs.LEVELS),
                   help="log level (default: info)")


def seconds(text: str) -> float:
    """A positive duration: seconds as a number, or Go's form as other exporters take it (10s, 500ms)."""
    from exporter.webconfig import WebConfigError, parse_duration

    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text, "duration")
        except WebConfigError:
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 5s, 500ms, 2.5)") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vma-exporter",
        description="Prometheus exporter of per-process map areas (VMAs) against vm.max_map_count, "
                    "memory and hugepages. Without a command it runs the exporter daemon.")
    p.add_argument("--version", action="version", version=f"vma-exporter {__version__}")
    add_common(p)
    p.add_argument("--web.listen-address", dest="listen", default=DEFAULT_LISTEN, metavar="[HOST]:PORT",
                   help="address to serve metrics on (default: %(default)s)")
    p.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics", metavar="PATH",
                   help="path under which to expose metrics (default: %(default)s)")
    p.add_argument("--web.config.file", dest="web_config_file", metavar="PATH",
                   help="TLS and basic auth config in exporter-toolkit's format (as node_exporter's); "
                        "reloaded with SIGHUP and POST /-/reload")
    p.add_argument("--collect.timeout", dest="collect_timeout", type=seconds, default=None, metavar="DURATION",
                   help="stop one collection after this long (e.g. 5s, 500ms, 2.5) and serve what it has, "
                        "marked by vma_exporter_collection_complete 0 (default: no limit)")
    p.add_argument("--collect.source", dest="collect_source", choices=SOURCES, default="procfs",
                   help="what reads the per-process figures: procfs (least privilege: CAP_SYS_PTRACE), bpf (a "
                        "task iterator and ENOMEM tracepoints: CAP_BPF and CAP_PERFMON, BTF, libbpf.so.1), or auto "
                        "(bpf if it opens, else procfs, saying why) (default: %(default)s)")
    p.add_argument("--textfile.output", dest="textfile", metavar="PATH",
                   help="collect once, write the exposition atomically to PATH (for node_exporter's "
                        "textfile collector, e.g. /var/lib/node_exporter/textfile/vma.prom) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"exporter.commands.{name}").register(sub, functools.partial(add_common, suppress=True))
    return p


def load_or_exit(path: str | None):
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"vma-exporter: config error: {exc}", file=sys.stderr)
        sys.exit(2)


def write_textfile_or_fail(exposition, path: str) -> int:
    from exporter.textfile import write_textfile

    try:
        size = write_textfile(exposition, path)
    except ProcfsError as exc:  # the collection itself failed: write nothing rather than a partial file
        print(f"vma-exporter: --textfile.output: collection failed, {path} left as it was: {exc}",
              file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"vma-exporter: --textfile.output: cannot write {path}: {exc}", file=sys.stderr)
        return 1
    log.info("wrote %d bytes to %s", size, path)
    return 0


def run_daemon(args) -> int:
    from exporter import server
    from exporter.reload import Reloader, WebState, block_signals, wait_for_signals
    from exporter.webconfig import WebConfigError, load_web_config

    if not args.textfile:
        # First of all: until sigwait takes them, SIGHUP's default action would kill
        # a daemon that a `systemctl reload` reaches during its first moments.
        block_signals()
    config = load_or_exit(args.config_file)
    try:
        address = server.parse_listen_address(args.listen)
    except ValueError as exc:
        print(f"vma-exporter: {exc}", file=sys.stderr)
        return 2
    web = None
    if args.web_config_file and not args.textfile:
        try:
            web = load_web_config(args.web_config_file)
        except WebConfigError as exc:
            print(f"vma-exporter: --web.config.file: {exc}", file=sys.stderr)
            return 2
    try:
        roots = checked_roots(args)
    except ValueError as exc:
        print(f"vma-exporter: {exc}", file=sys.stderr)
        return 2
    source = source_or_exit(args.collect_source, roots)
    if source is None:
        return 1
    collector = Collector(roots, config, timeout=args.collect_timeout, source=source)
    web_state = WebState(web)
    reloader = Reloader(collector, args.config_file, args.web_config_file, web_state)
    if args.textfile:
        try:
            # Not the exporter's own process_*: in textfile mode node_exporter exports its own.
            return write_textfile_or_fail(Exposition(collector, reloader.state, own_process=False), args.textfile)
        finally:
            collector.close()
    log_maps_access(roots)
    # The daemon's own CPU, memory and file descriptors (process_*) follow the declared metrics.
    exposition = Exposition(collector, reloader.state)
    handlers = server.Handlers(exposition, args.telemetry_path, lambda: collector.config.source,
                               reload=reloader.reload, web=web_state)
    try:
        httpd = server.start(address, handlers, tls=web is not None and web.tls)
    except OSError as exc:
        print(f"vma-exporter: --web.listen-address: cannot listen on {args.listen}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2 if exc.errno in server.ADDRESS_ERRORS else 1
    log.info("listening on %s (version %s, config %s, TLS %s, basic auth %s)", args.listen, __version__,
             config.source, "on" if web and web.tls else "off", "on" if web and web.auth else "off")
    signum = wait_for_signals(reloader)
    log.info("shutting down (%s)", signal.Signals(signum).name)
    httpd.shutdown()
    httpd.server_close()
    collector.close()  # the BPF source detaches its programs: nothing stays in the kernel
    return 0


def source_or_exit(name: str, roots: Roots):
    """The source of --collect.source, or None (exit 1) when bpf was asked for and cannot
    open: the message names what is missing. auto says it once and takes procfs."""
    from exporter.bpf import BpfUnavailable

    try:
        source = open_source(name if name != "auto" else "bpf", roots)
    except BpfUnavailable as exc:
        if name == "bpf":
            print(f"vma-exporter: --collect.source=bpf: {exc}", file=sys.stderr)
            return None
        log.warning("--collect.source=auto: %s; collecting through procfs", exc)
        return open_source("procfs", roots)
    log.info("collecting through %s", source.name)
    return source


def log_maps_access(roots: Roots) -> None:
    """Say once, at start, whether other users' maps are readable, and what would make them so."""
    probe = probe_maps_access(roots)
    if probe is None:
        log.debug("no process of another user visible to probe maps access")
        return
    if probe.readable:
        log.info("maps of other users' processes are readable (%d of %d probed)", probe.readable,
                 probe.readable + len(probe.denied))
        return
    pid, uid = probe.denied[0]
    if has_capability(CAP_SYS_PTRACE):
        log.warning("cannot read the maps of other users' processes (pid %d, uid %d: permission denied) although "
                    "the exporter has CAP_SYS_PTRACE: a security module (an AppArmor profile, SELinux) "
                    "forbids it; they are counted under "
                    "vma_exporter_read_errors_total{reason=\"permission\"}", pid, uid)
    else:
        log.warning(
            "cannot read the maps of other users' processes (pid %d, uid %d: permission denied): they are "
            "counted under vma_exporter_read_errors_total{reason=\"permission\"} without map areas; grant "
            "CAP_SYS_PTRACE to read every process (systemd: AmbientCapabilities=CAP_SYS_PTRACE, Kubernetes: "
            "securityContext.capabilities.add: [SYS_PTRACE])", pid, uid)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level)
    if args.command:
        return args.func(args)
    return run_daemon(args)
