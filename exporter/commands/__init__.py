"""Subcommands of ``vma-exporter`` besides the daemon (diagnosis on the node).

Each module in COMMANDS has ``register(subparsers, add_common)`` adding its
parser with ``func=run`` set, and ``run(args) -> int`` (the exit code).
"""

COMMANDS: list[str] = ["top", "explain", "diff", "snapshot", "check"]  # modules under exporter.commands
