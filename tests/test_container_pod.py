"""The DaemonSet's pod, played: the pod template of the kustomize build, as a Pod, in podman.

No Kubernetes API server or kubelet runs here. deploy/kubernetes is built with `kubectl
kustomize` through an overlay that sets the image (as docs/deploy.md tells users to), the
DaemonSet's pod template becomes a Pod beside its ConfigMap, and `podman kube play` runs it with
the image scripts/image.sh built. Where podman 4.3 is not a kubelet, the test says so:
- hostPID is ignored: the exporter gets a pid namespace of its own and is its pid 1 there. The
  host's /proc, mounted at /host/proc, still lists every process of the host, so the figures
  are the host's; the test asserts both.
- The probes are not run: podman turns the livenessProbe into a `curl` healthcheck on port 0 (it
  does not resolve the named port, and the image has no curl) that it would schedule through a
  systemd this machine does not run, and ignores the readinessProbe. The test sends each
  probe's HTTP GET to its path and port, as the kubelet would.
- A kubelet probes the pod's IP; here the test publishes the container port on loopback
  (hostPort and hostIP added to the played copy), the only address a test may reach.
- appArmorProfile, priorityClassName, tolerations and nodeSelector have no effect in podman.
"""

import copy
import os
import shutil
import subprocess

import pytest
import requests
import yaml
from helpers import podman
from helpers.daemon import free_port, samples_by_name
from helpers.host import host_lock
from helpers.workload import Workload, unique_comm

pytestmark = pytest.mark.container

K8S = os.path.join(podman.REPO, "deploy", "kubernetes")


def kustomize_with_image(tmp, image: str) -> list[dict]:
    """`kubectl kustomize` of an overlay over deploy/kubernetes that sets the image."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (it builds the kustomize output)")
    shutil.copytree(K8S, tmp / "kubernetes")
    name, tag = image.rsplit(":", 1)
    (tmp / "overlay").mkdir()
    (tmp / "overlay" / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../kubernetes"], "images": [{"name": "vma-exporter", "newName": name, "newTag": tag}]}))
    out = subprocess.run([kubectl, "kustomize", str(tmp / "overlay")], capture_output=True, text=True,
                         timeout=podman.WAIT, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


@pytest.fixture(scope="module")
def played(tmp_path_factory, workload_bin):
    """The played pod: a dict with the template, the container spec, its name and port, the
    ConfigMap, and a workload of known map areas on the host."""
    podman.require()
    image = podman.exporter_image()
    tmp = tmp_path_factory.mktemp("pod")
    docs = kustomize_with_image(tmp, image)
    template = one(docs, "DaemonSet")["spec"]["template"]
    configmap = one(docs, "ConfigMap")
    pod_name = podman.unique_name("vma-pod")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": pod_name, "labels": template["metadata"]["labels"]},
           "spec": copy.deepcopy(template["spec"])}
    container = pod["spec"]["containers"][0]
    port = free_port()
    metrics = next(p for p in container["ports"] if p["name"] == "metrics")
    metrics.update(hostPort=port, hostIP="127.0.0.1")
    manifest = tmp / "pod.yaml"
    manifest.write_text(yaml.safe_dump_all([configmap, pod]))
    comm = unique_comm("vmapod")
    with host_lock(), Workload("areas", 2500, comm=comm) as workload:
        try:
            podman.podman("kube", "play", str(manifest))
            name = f"{pod_name}-{container['name']}"
            podman.wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=podman.WAIT).ok,
                            f"the pod's /-/ready on 127.0.0.1:{port}")
            yield {"template": template, "spec": template["spec"]["containers"][0], "name": name, "port": port,
                   "configmap": configmap, "workload": workload, "comm": comm,
                   "pid": int(podman.inspect(name, "{{.State.Pid}}"))}
        finally:
            podman.podman("kube", "down", str(manifest), check=False)
            # kube play keeps a ConfigMap volume as a named volume; kube down leaves it.
            podman.podman("volume", "rm", "--force", configmap["metadata"]["name"], check=False)


def test_pod_runs_the_templates_args_and_config(played):
    with open(f"/proc/{played['pid']}/cmdline", "rb") as f:
        argv = f.read().decode().split("\0")[:-1]
    # The entrypoint is a Python script: the kernel runs its interpreter with the script's path.
    assert argv[1] == "/opt/vma-exporter/bin/vma-exporter" and argv[2:] == played["spec"]["args"], argv
    config = next(a.split("=", 1)[1] for a in argv if a.startswith("--config.file="))
    with open(f"/proc/{played['pid']}/root{config}") as f:
        assert f.read() == played["configmap"]["data"]["config.yaml"]


def test_pod_mounts_are_the_templates_and_read_only(played):
    pid = played["pid"]
    mounts = podman.mounts(pid)
    volumes = {v["name"]: v for v in played["template"]["spec"]["volumes"]}
    for mount in played["spec"]["volumeMounts"]:
        options, fstype = mounts[mount["mountPath"]]
        assert options.startswith("ro"), (mount, options)
        host_path = volumes[mount["name"]].get("hostPath", {}).get("path")
        if host_path == "/proc":
            assert fstype == "proc", "the host's /proc is mounted"
        elif host_path and host_path.startswith("/sys/"):
            assert fstype == "sysfs", mount
    assert podman.writable_mounts(pid, "/host") == [], "a host filesystem is writable in the pod"


def test_pod_security_context(played):
    pid, sc = played["pid"], played["spec"]["securityContext"]
    status = podman.proc_status(pid)
    assert status["Uid"].split() == [str(sc["runAsUser"])] * 4
    assert status["Gid"].split() == [str(sc["runAsGroup"])] * 4
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE"]}
    assert podman.capabilities(pid) == {"CapInh": 0, "CapPrm": podman.CAP_SYS_PTRACE,
                                        "CapEff": podman.CAP_SYS_PTRACE, "CapBnd": podman.CAP_SYS_PTRACE,
                                        "CapAmb": 0}
    assert sc["allowPrivilegeEscalation"] is False and status["NoNewPrivs"] == "1"
    assert played["template"]["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert status["Seccomp"] == "2", "seccomp filter mode"
    assert sc["readOnlyRootFilesystem"] is True and podman.mounts(pid)["/"][0].startswith("ro")
    write = podman.podman("exec", played["name"], "/opt/vma-exporter/bin/python3", "-c",
                          "open('/written-by-the-test', 'w')", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr, write.stderr
    limit = played["spec"]["resources"]["limits"]["memory"]
    assert limit.endswith("Mi") and int(podman.inspect(played["name"], "{{.HostConfig.Memory}}")) == \
        int(limit[:-2]) * 2**20


def test_pod_probes_answer(played):
    ports = {p["name"]: p["containerPort"] for p in played["spec"]["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        get = played["spec"][probe]["httpGet"]
        assert ports[get["port"]] == 9979  # the container port the loopback address publishes
        r = requests.get(f"http://127.0.0.1:{played['port']}{get['path']}", timeout=podman.WAIT)
        assert r.status_code == 200, (probe, r.status_code, r.text)


def test_pod_reads_the_host_without_host_pid(played):
    """hostPID: true in the template, which podman ignores; the host /proc mount still shows
    every host process, and the figures for a workload of this host equal the kernel's."""
    assert played["template"]["spec"]["hostPID"] is True
    pid = played["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid"), \
        "podman honoured hostPID: update this test and docs/deploy.md"
    samples = samples_by_name(requests.get(f"http://127.0.0.1:{played['port']}/metrics", timeout=podman.WAIT).text)
    assert podman.scraped_group_figures(samples, played["comm"]) == \
        podman.kernel_group_figures(played["workload"].pid)


def test_pod_exporter_is_pid1_and_stops_on_sigterm(played, capsys):
    """As pid 1 of its namespace the kernel drops signals whose action is the default; the daemon
    blocks SIGHUP and SIGTERM and takes them with sigwait (exporter/reload.py), and blocked
    signals are never dropped: pid 1 still reloads and stops."""
    assert podman.proc_status(played["pid"])["NSpid"].split()[-1] == "1"

    def reloaded_at() -> float:
        text = requests.get(f"http://127.0.0.1:{played['port']}/metrics", timeout=podman.WAIT).text
        return samples_by_name(text)["vma_exporter_config_last_reload_success_timestamp_seconds"][0].value

    before = reloaded_at()
    podman.podman("kill", "--signal=HUP", played["name"])  # SIGHUP reloads, pid 1 or not
    podman.wait_for(lambda: reloaded_at() > before, "a reload on SIGHUP")
    code, seconds = podman.stop(played["name"], timeout=2)
    with capsys.disabled():
        print(f"\npodman stop -t 2 of the played pod's exporter (pid 1): exit {code} after {seconds:.2f} s")
    assert code == 0, f"exit {code} (137: SIGTERM did not stop it, SIGKILL did)"
