"""Honest about privilege: what the BPF source needs, and the message when it is missing.

Each case runs a real child process under a real restriction (capabilities
dropped with setpriv, a seccomp filter or no-W+X memory set by helpers/restrict.c,
a new PID namespace with unshare) and asserts on the one exception it gets,
``BpfUnavailable``, whose ``missing`` items must name exactly what is lacking.
The least-privilege identities of the deployments must open it.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers.tracefs import tracefs_mounted
from helpers.workload import build

from exporter.bpf import BpfUnavailable, requirements
from exporter.bpf.tasks import TaskIterator

pytestmark = pytest.mark.root
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UID = 61934  # the systemd model's dynamic uid (as in tests/test_deploy.py)

PROBE = r"""
import json, sys
from exporter.bpf import BpfUnavailable
from exporter.bpf.tasks import TaskIterator
from exporter.bpf.enomem import EnomemCounter
out = {}
for name, cls, kwargs in (("tasks", TaskIterator, dict(btf_path=sys.argv[1])), ("enomem", EnomemCounter, {})):
    try:
        with cls(**kwargs) as source:
            out[name] = {"ok": True, "read": bool(source.read()) if name == "tasks" else True}
    except BpfUnavailable as exc:
        out[name] = {"ok": False, "missing": exc.missing, "message": str(exc)}
print(json.dumps(out))
"""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def probe(*wrapper: str, btf: str = requirements.BTF_PATH) -> dict:
    """Run PROBE in a child under *wrapper* (a command prefix); its verdict per source."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "PYTHONPATH": REPO, "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([*wrapper, sys.executable, "-c", PROBE, btf], capture_output=True, text=True,
                         env=env, cwd="/", timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def setpriv(*caps: str, uid: int | None = None) -> list[str]:
    """uid 0 (or *uid*) with exactly *caps*, as the DaemonSet and the systemd unit give them."""
    keep = ",".join(["-all"] + [f"+{c}" for c in caps])
    args = [tool("setpriv")]
    if uid is not None:
        args += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups", f"--ambient-caps={keep}"]
    return args + [f"--inh-caps={keep}", f"--bounding-set={keep}", "--"]


@pytest.fixture(scope="module")
def tracefs():
    with tracefs_mounted() as path:
        yield path


def test_uid_0_with_only_bpf_perfmon_and_ptrace_opens_both(tracefs):
    """The DaemonSet's and the bpf unit's identity: every other capability dropped."""
    got = probe(*setpriv("bpf", "perfmon", "sys_ptrace"))
    assert got["tasks"] == {"ok": True, "read": True}
    assert got["enomem"]["ok"], got["enomem"]


@pytest.mark.parametrize("caps, named", [
    (("perfmon", "sys_ptrace"), "CAP_BPF ("),
    (("bpf", "sys_ptrace"), "CAP_PERFMON ("),
    (("sys_ptrace",), "CAP_BPF and CAP_PERFMON ("),
])
def test_a_missing_capability_is_named(tracefs, caps, named):
    got = probe(*setpriv(*caps))
    for source in ("tasks", "enomem"):
        assert not got[source]["ok"]
        assert len(got[source]["missing"]) == 1 and got[source]["missing"][0].startswith(named), got[source]
        assert "or CAP_SYS_ADMIN" in got[source]["message"]


def test_a_dynamic_user_with_ambient_capabilities_runs_the_iterator_but_not_the_tracepoints(tracefs):
    """tracefs is root's (mode 0700): the trace events' ids are out of reach of any other uid."""
    got = probe(*setpriv("bpf", "perfmon", "sys_ptrace", uid=UID))
    assert got["tasks"] == {"ok": True, "read": True}
    assert not got["enomem"]["ok"]
    assert got["enomem"]["missing"][0].startswith("read access to tracefs at /sys/kernel/tracing"), got["enomem"]


def test_every_missing_requirement_is_named_at_once(tracefs, tmp_path):
    got = probe(*setpriv("sys_ptrace"), btf=str(tmp_path / "vmlinux"))
    missing = got["tasks"]["missing"]
    assert len(missing) == 2
    assert missing[0] == f"kernel BTF at {tmp_path / 'vmlinux'} (a kernel built with CONFIG_DEBUG_INFO_BTF=y)"
    assert missing[1].startswith("CAP_BPF and CAP_PERFMON")


def test_no_btf(tmp_path):
    with pytest.raises(BpfUnavailable) as exc:
        TaskIterator(btf_path=str(tmp_path / "missing"))
    assert exc.value.missing == [f"kernel BTF at {tmp_path / 'missing'} (a kernel built with CONFIG_DEBUG_INFO_BTF=y)"]


def test_no_libbpf():
    with pytest.raises(BpfUnavailable) as exc:
        TaskIterator(library="libbpf-not-installed.so.1")
    assert len(exc.value.missing) == 1
    assert exc.value.missing[0].startswith("libbpf-not-installed.so.1 (Debian/Ubuntu: apt-get install libbpf1")


def test_a_seccomp_filter_that_refuses_bpf(tracefs):
    got = probe(build("restrict"), "deny-bpf")
    for source in ("tasks", "enomem"):
        assert got[source]["missing"] == [(
            "a seccomp profile that allows bpf() (this process's seccomp filter, Seccomp: 2 in /proc/self/status, "
            "refuses it with EPERM)")], got[source]


def test_a_seccomp_filter_that_refuses_perf_event_open_stops_only_the_tracepoints(tracefs):
    got = probe(build("restrict"), "deny-perf")
    assert got["tasks"] == {"ok": True, "read": True}
    assert got["enomem"]["missing"][0].startswith("a seccomp profile that allows perf_event_open()")


def test_no_writable_executable_memory_is_needed(tracefs):
    """systemd's MemoryDenyWriteExecute=yes: libbpf and the ctypes print callback still work."""
    got = probe(build("restrict"), "mdwe")
    assert got["tasks"] == {"ok": True, "read": True} and got["enomem"]["ok"], got


def test_a_child_pid_namespace_is_named():
    """The iterator walks the reader's PID namespace but reports the host's pids."""
    got = probe(tool("unshare"), "--pid", "--fork", "--mount-proc")
    assert not got["tasks"]["ok"]
    assert got["tasks"]["missing"][0].startswith("the host PID namespace (Kubernetes hostPID: true, "
                                                 "docker/podman --pid=host)"), got["tasks"]


@pytest.mark.parametrize("cap_eff, missing", [
    (0, ["CAP_BPF and CAP_PERFMON (the BPF source needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)"]),
    (1 << 21, []),
    ((1 << 38) | (1 << 39), []),
    (1 << 39, ["CAP_PERFMON (the BPF source needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)"]),
])
def test_capability_sets(cap_eff, missing):
    assert requirements.missing_capabilities(cap_eff) == missing


@pytest.mark.parametrize("release, version", [("6.18.44-fc-v657", (6, 18)), ("5.8.0-25-generic", (5, 8)),
                                               ("4.19.0", (4, 19)), ("weird", (0, 0))])
def test_kernel_versions(release, version):
    assert requirements.kernel_version(release) == version
