"""/proc/PID/cgroup: which container and which Kubernetes pod a process runs in.

cgroups(7). One line per hierarchy, ``hierarchy-ID:controller-list:cgroup-path``;
cgroup v2 has the single line ``0::/path``, cgroup v1 one line per controller
(hybrid hosts have both). The container runtime and the kubelet name the cgroups,
so the path alone tells the container ID and the pod UID:

    systemd driver (cgroup v1 or v2):
      /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/
          cri-containerd-<id>.scope      (containerd)
          crio-<id>.scope                (CRI-O; crio-conmon-<id>.scope is its monitor process)
          docker-<id>.scope              (dockershim / cri-dockerd)
      /system.slice/docker-<id>.scope    (plain Docker), /machine.slice/libpod-<id>.scope (Podman)
    cgroupfs driver:
      /kubepods/burstable/pod<uid>/<id>  (containerd, Docker), .../pod<uid>/crio-<id> (CRI-O)
      /docker/<id>                       (plain Docker)

systemd reserves "-" in slice names for nesting, so the kubelet writes the pod UID
with underscores there; it comes out here with dashes, as the API server spells it
(kube-state-metrics' ``kube_pod_info{uid}``). The path is relative to the *reader's*
cgroup namespace: an exporter in a pod with a private cgroup namespace (the default
on cgroup v2) sees ``/../../kubepods-...-pod<uid>.slice/...``; matching by path
component copes with that. Nested containers (kind, Docker in Docker) give the
innermost container and pod, the ones the process itself belongs to.
"""

import re
from dataclasses import dataclass

from exporter.procfs import read_file
from exporter.procfs.paths import Roots

_HEX64 = r"[0-9a-f]{64}"
# API server UIDs are RFC 4122 UUIDs; static pods use the 32-hex config hash instead.
_UID = r"[0-9a-f]{8}(?:[-_][0-9a-f]{4}){3}[-_][0-9a-f]{12}|[0-9a-f]{32}"

# Path components, matched whole (re.fullmatch).
_POD = re.compile(rf"(?:[a-z0-9_]+-)*pod(?P<uid>{_UID})(?:\.slice)?")
_MONITOR = re.compile(rf"(?:crio|libpod)-conmon-{_HEX64}(?:\.scope)?")
_CONTAINER = re.compile(
    rf"(?:(?:cri-containerd|containerd|crio|docker|libpod|nerdctl)-)?(?P<id>{_HEX64})(?:\.scope)?")

# Which hierarchy to trust when v1 controllers disagree: the unified one first (what
# the runtime and the kubelet manage on v2 and hybrid hosts), then systemd's own
# tracking hierarchy, then the controllers the kubelet always configures.
_PREFERENCE = (b"", b"name=systemd", b"memory", b"pids", b"cpu,cpuacct", b"cpuacct,cpu")


@dataclass(frozen=True)
class ContainerIdentity:
    """Both empty for a process outside any container (a plain host's processes)."""

    container_id: str = ""  # 64 hex digits, no runtime prefix (kube_pod_container_info has "containerd://<id>")
    pod_uid: str = ""  # with dashes, as in kube_pod_info{uid}


EMPTY = ContainerIdentity()


def parse_cgroup_path(path: str) -> ContainerIdentity:
    """Container ID and pod UID named by one cgroup path (pure)."""
    container_id = pod_uid = ""
    for part in path.split("/"):
        if m := _POD.fullmatch(part):
            pod_uid = m["uid"].replace("_", "-")
            container_id = ""  # a container above the pod is the node's (kind), not this pod's
        elif _MONITOR.fullmatch(part):
            continue  # conmon watches a container from outside it: the pod's, no container's
        elif m := _CONTAINER.fullmatch(part):
            container_id = m["id"]
    return ContainerIdentity(container_id, pod_uid)


def _lines(data: bytes) -> list[tuple[bytes, str]]:
    """(controllers, path) for each well-formed line, best hierarchy first."""
    entries = []
    for line in data.split(b"\n"):
        fields = line.split(b":", 2)
        if len(fields) != 3 or not fields[2].startswith(b"/"):
            continue  # blank, truncated, or not a cgroup line at all
        entries.append((fields[1], fields[2].decode("utf-8", "replace")))

    def rank(entry: tuple[bytes, str]) -> int:
        try:
            return _PREFERENCE.index(entry[0])
        except ValueError:
            return len(_PREFERENCE)

    return sorted(entries, key=rank)  # stable: file order among equals


def parse_cgroup(data: bytes) -> ContainerIdentity:
    """Parse the bytes of /proc/PID/cgroup (pure); EMPTY when no line names a container or pod.

    The first hierarchy (in preference order) whose path names a pod or a
    container wins: on hybrid hosts the v2 line is often just "/" while the v1
    lines carry the kubelet's paths, and the other way round.
    """
    for _, path in _lines(data):
        identity = parse_cgroup_path(path)
        if identity != EMPTY:
            return identity
    return EMPTY


def read_cgroup(roots: Roots, pid: int) -> ContainerIdentity:
    """Read /proc/PID/cgroup under *roots*; raises Vanished, Denied or ReadFailed like every reader."""
    return parse_cgroup(read_file(roots.pid(pid, "cgroup")))
