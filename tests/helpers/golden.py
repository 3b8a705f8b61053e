"""Golden files: output compared with a checked-in copy, rewritten by one switch.

``python3 -m pytest --update-golden`` (tests/conftest.py sets UPDATE) rewrites every
golden file the run compares (tests/golden/*.prom, tests/fixtures/cli/expected/*)
from the current code instead of comparing; review the diff with ``git diff``.
"""

import difflib
import os

import pytest

UPDATE = False  # set by tests/conftest.py from --update-golden


def compare(path: str, actual: str, what: str = "output") -> None:
    """Fail with a diff when *actual* differs from the file at *path*; rewrite it when updating."""
    rel = os.path.relpath(path, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if UPDATE:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(actual)
        return
    with open(path) as f:
        expected = f.read()
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), rel, what))
        pytest.fail(f"{what} differs from {rel}; if the change is intended, run\n"
                    f"    python3 -m pytest --update-golden\nand review the diff.\n{diff[:20000]}")
