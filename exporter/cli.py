"""Command line: the daemon (default) and the diagnosis subcommands.

Flags follow node_exporter's names so fleet tooling carries over.
"""

import argparse
import importlib
import logging
import signal
import sys
import threading

from prometheus_client import CollectorRegistry

from exporter import __version__, logs
from exporter.collect import Collector
from exporter.commands import COMMANDS
from exporter.metrics import SnapshotCollector
from exporter.procfs.paths import Roots
from exporter.targets import ConfigError, load_config

DEFAULT_PORT = 9979
DEFAULT_LISTEN = f":{DEFAULT_PORT}"
log = logging.getLogger("exporter")


def add_common(p: argparse.ArgumentParser) -> None:
    """Flags every command shares: where /proc and /sys are, which targets."""
    p.add_argument("--config.file", dest="config_file", metavar="PATH",
                   help="targets config (YAML); default: the embedded config, every process grouped by comm")
    p.add_argument("--path.procfs", dest="procfs", default="/proc", metavar="PATH",
                   help="procfs mount point (default: %(default)s)")
    p.add_argument("--path.sysfs", dest="sysfs", default="/sys", metavar="PATH",
                   help="sysfs mount point (default: %(default)s)")
    p.add_argument("--log.level", dest="log_level", default="info", choices=list(logs.LEVELS),
                   help="log level (default: %(default)s)")


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
    p.add_argument("--collect.timeout", dest="collect_timeout", type=float, default=None, metavar="SECONDS",
                   help="stop one collection after this long and serve what it has (default: no limit)")
    p.add_argument("--textfile.output", dest="textfile", metavar="PATH",
                   help="collect once, write the exposition atomically to PATH (for node_exporter's "
                        "textfile collector, e.g. /var/lib/node_exporter/textfile/vma.prom) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"exporter.commands.{name}").register(sub, add_common)
    return p


def load_or_exit(path: str | None):
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"vma-exporter: config error: {exc}", file=sys.stderr)
        sys.exit(2)


def write_textfile_or_fail(registry, path: str) -> int:
    from exporter.textfile import write_textfile

    try:
        size = write_textfile(registry, path)
    except OSError as exc:
        print(f"vma-exporter: --textfile.output: cannot write {path}: {exc}", file=sys.stderr)
        return 1
    log.info("wrote %d bytes to %s", size, path)
    return 0


def run_daemon(args) -> int:
    from exporter import server

    config = load_or_exit(args.config_file)
    try:
        address = server.parse_listen_address(args.listen)
    except ValueError as exc:
        print(f"vma-exporter: {exc}", file=sys.stderr)
        return 2
    collector = Collector(Roots(args.procfs, args.sysfs), config, timeout=args.collect_timeout)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SnapshotCollector(collector))
    if args.textfile:
        return write_textfile_or_fail(registry, args.textfile)
    handlers = server.Handlers(registry, args.telemetry_path, lambda: collector.config.source)
    try:
        httpd = server.start(address, handlers)
    except OSError as exc:
        print(f"vma-exporter: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    log.info("listening on %s (version %s, config %s)", args.listen, __version__, config.source)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down")
    httpd.shutdown()
    httpd.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level)
    if args.command:
        return args.func(args)
    return run_daemon(args)
