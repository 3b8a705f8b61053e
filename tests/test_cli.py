"""Flags of the daemon: clear errors and exit code 2 for what a user can get wrong."""

import os

import pytest

from helpers.cli import cli

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.mark.parametrize("argv, message", [
    (["--path.procfs", "/nonexistent"], "--path.procfs: /nonexistent does not exist or is not a directory"),
    (["--path.procfs", FIXTURES], f"--path.procfs: {FIXTURES} is not a procfs mount"),
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


def test_an_unreadable_sysfs_is_no_usage_error(tmp_path):
    """Map areas are still served; the pools are missing and said to be (tests/test_failures.py)."""
    out = tmp_path / "vma.prom"
    result = cli("--path.sysfs", "/nonexistent", "--textfile.output", str(out), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "sysfs unreadable at /nonexistent" in result.stderr
    assert 'vma_exporter_node_read_success{file="hugepages"} 0.0' in out.read_text()


def test_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("vma-exporter ")
