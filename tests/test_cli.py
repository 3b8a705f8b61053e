"""Flags of the daemon: clear errors and exit code 2 for what a user can get wrong."""

import os

import pytest

from helpers.cli import cli

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.mark.parametrize("argv, message", [
    (["--path.procfs", "/nonexistent"], "--path.procfs: /nonexistent is not a procfs mount (no /nonexistent/stat)"),
    (["--path.procfs", FIXTURES], f"--path.procfs: {FIXTURES} is not a procfs mount"),
    (["--path.sysfs", "/nonexistent"], "--path.sysfs: /nonexistent is not a directory"),
    (["--web.listen-address", "nonsense"], "--web.listen-address: expected [host]:port"),
    (["--collect.timeout", "soon"], "not a duration"),
    (["--log.level", "loud"], "invalid choice"),
])
@pytest.mark.parametrize("mode", [[], ["--textfile.output", "/tmp/vma-cli-test.prom"]], ids=["daemon", "textfile"])
def test_bad_flags_exit_2_naming_the_flag(argv, message, mode):
    result = cli(*mode, *argv, timeout=30)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists("/tmp/vma-cli-test.prom")


def test_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("vma-exporter ")
