"""Running the command line from the diagnosis tests, and their golden files."""

import os
import subprocess
import sys

import pytest

from exporter.cli import main
from helpers import golden as golden_files

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)
FIXTURE = os.path.join(TESTS, "fixtures", "cli")
ROOTS = ["--path.procfs", os.path.join(FIXTURE, "proc"), "--path.sysfs", os.path.join(FIXTURE, "sys")]


def golden(name: str, actual: str) -> None:
    """Compare with tests/fixtures/cli/expected/NAME (pytest --update-golden rewrites it)."""
    golden_files.compare(os.path.join(FIXTURE, "expected", name), actual, "the command's output")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """In-process: main() with these arguments; (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli(*argv: str, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command as a person runs it: a separate process."""
    return subprocess.run([sys.executable, "-m", "exporter", *argv], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=timeout)


def unused_pid() -> int:
    """A pid no process has now (counting down from pid_max)."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


def skip_unless_pid1_maps_unreadable() -> None:
    """PID 1's maps refuse even root here: the one real permission case at hand."""
    try:
        with open("/proc/1/maps", "rb") as f:
            f.read(1)
    except PermissionError:
        return
    pytest.skip("/proc/1/maps is readable here: no process refuses us")
