"""Pod identity from /proc/PID/cgroup: every runtime's path format, then real processes.

The fixtures under fixtures/cgroup/ are whole /proc/PID/cgroup files as each
runtime and cgroup driver writes them. The real-process tests make the kubelet's
cgroup layout on this machine's kernel (root only), put a workload process in it,
and read it back the way the exporter does, also from inside a cgroup namespace
like an exporter pod's.
"""

import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest
from helpers.workload import Workload

from exporter.procfs import Vanished
from exporter.procfs.cgroup import (
    EMPTY,
    ContainerIdentity,
    parse_cgroup,
    parse_cgroup_path,
    read_cgroup,
)
from exporter.procfs.paths import Roots

pytestmark = pytest.mark.host  # the cgroup hierarchies are the host's

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "cgroup")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

C1 = "3f7c2e9a1b0d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6"  # containerd
C2 = "a9e1c0b4d2f34e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"  # CRI-O
C3 = "5b2d8f6e4c1a3b9d7e0f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0e1b3d5f7a9c2e4b"  # Docker
NODE = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"  # a kind node's container
U1 = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901"
U2 = "e4d3c2b1-a098-4765-8432-10fedcba9876"
STATIC = "8f2c3b1a9d4e5f60718293a4b5c6d7e8"  # a static pod: the kubelet's config hash

EXPECTED = {
    "containerd-systemd-v2": (C1, U1),
    "containerd-systemd-v1": (C1, U1),
    "containerd-cgroupfs-v2": (C1, U1),
    "containerd-cgroupfs-v1": (C1, U1),
    "crio-systemd-v2": (C2, U2),
    "crio-systemd-v1": (C2, U2),
    "crio-cgroupfs-v1": (C2, U2),
    "crio-conmon-v2": ("", U2),  # conmon runs in the pod's slice, outside the container it watches
    "dockershim-systemd-v1": (C3, U1),
    "dockershim-cgroupfs-v1": (C3, U1),
    "docker-systemd-v2": (C3, ""),
    "docker-cgroupfs-v1": (C3, ""),
    "podman-v2": (C3, ""),
    "cgroupns-relative-v2": (C1, U2),  # read from inside an exporter pod's cgroup namespace
    "kind-nested-v2": (C1, U1),  # the pod's container, not the kind node's
    "kind-node-v2": (NODE, ""),  # the kubelet of a kind node runs in the node's container
    "static-pod-v2": (C1, STATIC),
    "pod-level-cgroupfs-v1": ("", U1),
    "hybrid-v1-paths-v2-root": (C1, U1),
    "controllers-disagree-v1": (C1, U1),  # memory (kubelet-managed) outranks pids
    "host-service-v2": ("", ""),
    "host-session-v2": ("", ""),
    "host-sandbox-v1": ("", ""),  # 32 hex digits without "pod": not a pod UID
    "kernel-thread": ("", ""),
    "empty": ("", ""),
    "truncated-uid-v2": ("", ""),
    "truncated-id-v2": ("", U1),
    "garbage": ("", ""),
}


def fixture(name: str) -> bytes:
    with open(os.path.join(FIXTURES, name + ".txt"), "rb") as f:
        return f.read()


def test_every_fixture_has_an_expectation():
    names = {f[:-4] for f in os.listdir(FIXTURES) if f.endswith(".txt")}
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    assert parse_cgroup(fixture(name)) == ContainerIdentity(*EXPECTED[name])


@pytest.mark.parametrize("path, expected", [
    # systemd escapes "-" in slice names, so the kubelet writes the UID with underscores
    (f"/kubepods.slice/kubepods-pod{U1.replace('-', '_')}.slice", ("", U1)),
    # an upper-case or short "UID" is no UID: the kubelet writes lower-case RFC 4122 text
    (f"/kubepods/pod{U1.upper()}/{C1}", (C1, "")),
    (f"/kubepods/pod{U1[:-1]}/{C1}", (C1, "")),
    # a 64-hex component under an unknown prefix is not trusted as a container
    (f"/system.slice/foo-{C1}.scope", ("", "")),
    # sub-cgroups a container makes for itself (systemd inside a container) keep its ID
    (f"/system.slice/docker-{C3}.scope/init.scope", (C3, "")),
    ("/", ("", "")),
    ("", ("", "")),
])
def test_parse_cgroup_path(path, expected):
    assert parse_cgroup_path(path) == ContainerIdentity(*expected)


def test_missing_pid_is_vanished(tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(Vanished):
        read_cgroup(Roots(procfs=str(tmp_path)), 1)


def test_reader_uses_the_procfs_root(tmp_path):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "cgroup").write_bytes(fixture("crio-systemd-v2"))
    assert read_cgroup(Roots(procfs=str(tmp_path)), 42) == ContainerIdentity(C2, U2)


def _names_a_container(raw: bytes) -> bool:
    return bool(re.search(rb"[0-9a-f]{64}|pod[0-9a-f]{8}[-_]", raw))


def test_real_processes_on_this_machine(workload_bin):
    """This process and a fresh workload: what the reader says is what their cgroup file implies."""
    with Workload("areas", 10) as w:
        for pid in (os.getpid(), w.pid):
            with open(f"/proc/{pid}/cgroup", "rb") as f:
                raw = f.read()
            identity = read_cgroup(Roots(), pid)
            assert identity == parse_cgroup(raw)
            if not _names_a_container(raw):  # a plain host (this one): both labels empty
                assert identity == EMPTY, raw


# --- the kubelet's layout made on this kernel --------------------------------------------

def _cgroup_mounts() -> dict[str, str]:
    """Mount point per hierarchy: "" for cgroup v2, each controller (or name=...) for v1."""
    mounts = {}
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f.read().decode().splitlines():
            fields = line.split(" ")
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup2":
                mounts.setdefault("", fields[4])
            elif fstype == "cgroup":
                for option in options:  # superoptions: rw, the controllers, name=..., xattr...
                    mounts.setdefault(option, fields[4])
    return mounts


class CgroupTree:
    """Directories made under one hierarchy, removed deepest first (processes must be gone)."""

    def __init__(self, mount: str):
        self.mount = mount
        self.made: list[str] = []

    def make(self, path: str) -> str:
        full = self.mount
        for part in path.strip("/").split("/"):
            full = os.path.join(full, part)
            if not os.path.isdir(full):
                os.mkdir(full)
                self.made.append(full)
        return full

    def remove(self) -> None:
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError:
                pass  # a process still inside: leave it rather than fail the cleanup of others


def _join(directory: str):
    """preexec_fn: move the child into *directory* before it execs the workload."""
    def move():
        with open(os.path.join(directory, "cgroup.procs"), "w") as f:
            f.write("0")  # 0: the writing process itself
    return move


def _mount_or_skip(key: str) -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root to make cgroups")
    mount = _cgroup_mounts().get(key)
    if mount is None or not os.access(mount, os.W_OK):
        pytest.skip(f"no writable cgroup hierarchy {key or 'v2'!r} on this machine")
    return mount


@pytest.mark.root
def test_real_process_in_kubelet_systemd_layout_cgroup_v2(workload_bin):
    tree = CgroupTree(_mount_or_skip(""))
    uid, cid = str(uuid.uuid4()), os.urandom(32).hex()
    leaf = tree.make(f"vma-test-{os.getpid()}/kubepods.slice/kubepods-burstable.slice/"
                     f"kubepods-burstable-pod{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope")
    try:
        with Workload("areas", 10, preexec_fn=_join(leaf)) as w:
            assert read_cgroup(Roots(), w.pid) == ContainerIdentity(cid, uid)
    finally:
        tree.remove()


@pytest.mark.root
def test_exported_series_carry_the_pod_identity(workload_bin, tmp_path):
    """End to end: the exporter labels a real process in a pod's cgroup with its container and pod."""
    tree = CgroupTree(_mount_or_skip(""))
    uid, cid = str(uuid.uuid4()), os.urandom(32).hex()
    leaf = tree.make(f"vma-test-{os.getpid()}-e2e/kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice/"
                     f"crio-{cid}.scope")
    config, out = tmp_path / "config.yaml", tmp_path / "vma.prom"
    config.write_text("process_names:\n  - name: podded\n    comm: [vmapodded]\n")
    w = Workload("areas", 10, preexec_fn=_join(leaf), comm="vmapodded")  # only this process matches
    try:
        with w:
            run = subprocess.run([sys.executable, "-m", "exporter", f"--config.file={config}",
                                  f"--textfile.output={out}"],
                                 cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
            assert run.returncode == 0, run.stderr
    finally:
        tree.remove()
    text = out.read_text()
    series = [line for line in text.splitlines() if line.startswith("vma_process_map_areas{")]
    errors = [line for line in text.splitlines() if line.startswith("vma_exporter_read_errors")]
    assert len(series) == 1, (series, errors, run.stderr)
    assert f'pid="{w.pid}"' in series[0]
    assert f'container_id="{cid}"' in series[0] and f'pod_uid="{uid}"' in series[0], (series, errors, run.stderr)


@pytest.mark.root
def test_real_process_in_kubelet_cgroupfs_layout_cgroup_v1(workload_bin):
    mounts = _cgroup_mounts()
    key = next((k for k in ("pids", "memory", "name=systemd") if k in mounts), None)
    if key is None:
        pytest.skip("no cgroup v1 hierarchy on this machine (pure cgroup v2)")
    tree = CgroupTree(_mount_or_skip(key))
    uid, cid = str(uuid.uuid4()), os.urandom(32).hex()
    leaf = tree.make(f"vma-test-{os.getpid()}/kubepods/besteffort/pod{uid}/crio-{cid}")
    try:
        with Workload("areas", 10, preexec_fn=_join(leaf)) as w:
            assert read_cgroup(Roots(), w.pid) == ContainerIdentity(cid, uid)
    finally:
        tree.remove()


@pytest.mark.root
def test_read_from_inside_an_exporter_pods_cgroup_namespace(workload_bin):
    """The exporter pod's own cgroup namespace makes paths relative ("/../.."): still found."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    tree = CgroupTree(_mount_or_skip(""))
    base = f"vma-test-{os.getpid()}-ns/kubepods.slice/kubepods-besteffort.slice"
    uid, cid = str(uuid.uuid4()), os.urandom(32).hex()
    target = tree.make(f"{base}/kubepods-besteffort-pod{uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope")
    exporter = tree.make(f"{base}/kubepods-besteffort-pod{uuid.uuid4().hex}.slice/cri-containerd-{'e' * 64}.scope")
    reader = ("import sys; from exporter.procfs.cgroup import read_cgroup; from exporter.procfs.paths import Roots\n"
              "pid = int(sys.argv[1]); print(open(f'/proc/{pid}/cgroup').read().strip().splitlines()[-1])\n"
              "i = read_cgroup(Roots(), pid); print(i.container_id, i.pod_uid)")
    try:
        with Workload("areas", 10, preexec_fn=_join(target)) as w:
            out = subprocess.run(["unshare", "--cgroup", sys.executable, "-c", reader, str(w.pid)],
                                 cwd=REPO, capture_output=True, text=True, timeout=60,
                                 preexec_fn=_join(exporter), check=False)
            assert out.returncode == 0, out.stderr
            raw_line, ids = out.stdout.splitlines()
            assert raw_line.startswith("0::/../"), raw_line  # the case this test is about did happen
            assert ids.split() == [cid, uid]
    finally:
        tree.remove()
