"""exporter.procfs.sysctl: /proc/sys/vm/max_map_count (Documentation/admin-guide/sysctl/vm.rst)."""

import os

import pytest

from exporter.procfs import ParseError, Vanished
from exporter.procfs.paths import Roots
from exporter.procfs.sysctl import KERNEL_DEFAULT_MAX_MAP_COUNT, parse_int, read_max_map_count

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))


def test_read_max_map_count_fixture():
    assert read_max_map_count(ROOTS) == 65530


def test_kernel_default():
    assert KERNEL_DEFAULT_MAX_MAP_COUNT == 65535 - 5  # DEFAULT_MAX_MAP_COUNT = USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN


def test_missing_file_is_vanished(tmp_path):
    with pytest.raises(Vanished):
        read_max_map_count(Roots(str(tmp_path), str(tmp_path)))


@pytest.mark.parametrize("data, value", [
    (b"65530\n", 65530),
    (b"262144\n", 262144),  # what Elasticsearch asks for
    (b"2147483647\n", 2147483647),
    (b"3096", 3096),  # the node of incident 004 (docs/incidents.md), no newline
    (b" 1000 \n", 1000),
])
def test_parse_int(data, value):
    assert parse_int(data, "max_map_count") == value


@pytest.mark.parametrize("data", [b"", b"\n", b"abc\n", b"65530 65530\n", b"6.5e4\n"])
def test_parse_int_errors_name_the_file(data):
    with pytest.raises(ParseError, match="max_map_count: not an integer") as err:
        parse_int(data, "max_map_count")
    assert err.value.what == "max_map_count"
