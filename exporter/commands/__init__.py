"""Subcommands of ``vma-exporter`` besides the daemon (diagnosis on the node).

Each module in COMMANDS has ``register(subparsers)`` adding its parser with
``func=run`` set, and ``run(args) -> int`` (the exit code).
"""

COMMANDS: list[str] = []  # module names under exporter.commands, e.g. "top"
