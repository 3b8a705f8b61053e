"""`python -m exporter` runs the same entry point as the `vma-exporter` script."""

import sys

from exporter.cli import main

if __name__ == "__main__":
    sys.exit(main())
