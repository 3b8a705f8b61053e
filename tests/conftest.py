import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import workload  # noqa: E402
from helpers.host import host_lock  # noqa: E402


@pytest.fixture(scope="session")
def workload_bin() -> str:
    return workload.build()


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite every golden file (tests/golden/*.prom, tests/fixtures/cli/expected/*) from the "
                          "current code instead of comparing")


def pytest_configure(config):
    from helpers import golden

    golden.UPDATE = bool(config.getoption("--update-golden"))


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (reserves hugepages or changes sysctls)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _host_state(request):
    """Tests marked ``host`` change or read host-global state (hugepage pools, sysctls such
    as vm.max_map_count, users, cgroups, BPF programs, containers): they hold the one host
    lock, so two runs of the suite on one machine do not see each other's changes."""
    if request.node.get_closest_marker("host") is None:
        yield
        return
    with host_lock():
        yield
