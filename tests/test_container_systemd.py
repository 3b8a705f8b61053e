"""deploy/systemd/ under a real systemd: pid 1 of a podman container, the units as shipped.

The container is a Debian host (tests/containers/systemd-host.Containerfile) run the way systemd
runs in podman (--systemd=always, CAP_SYS_ADMIN for its mount namespaces and CAP_SYS_PTRACE for
the unit to be given). The package is installed with docs/deploy.md's own commands, from the
wheel this checkout builds; its dependencies come from a wheel directory the host's pip filled
(PIP_NO_INDEX, PIP_FIND_LINKS: the container's network has no way out here). The workload runs
inside the container as another uid, since the exporter sees the container's processes.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from helpers import podman
from helpers.daemon import free_port, samples_by_name
from helpers.workload import unique_comm

from exporter import __version__

pytestmark = pytest.mark.container

SYSTEMD = os.path.join(podman.REPO, "deploy", "systemd")
DEPLOY_MD = os.path.join(podman.REPO, "docs", "deploy.md")
RELEASE = "/srv/vma-exporter"  # the unpacked release in the container: the wheel and deploy/
OTHER_UID = 1234
DYNAMIC_UIDS = range(61184, 65520)  # systemd's DynamicUser= range


def documented_install() -> str:
    """docs/deploy.md's commands under "systemd on plain hosts"."""
    with open(DEPLOY_MD) as f:
        block = re.search(r"^## systemd on plain hosts\n+```sh\n(.*?)```", f.read(), re.DOTALL | re.MULTILINE)
    assert block, "docs/deploy.md: no install commands under 'systemd on plain hosts'"
    return block[1]


@pytest.fixture(scope="module")
def release(tmp_path_factory, workload_bin) -> str:
    """What an operator unpacks: this checkout's wheel and deploy/systemd, plus the wheels of the
    dependencies and the test workload."""
    podman.require()
    root = tmp_path_factory.mktemp("release")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(podman.REPO, name), src)
    shutil.copytree(os.path.join(podman.REPO, "exporter"), src / "exporter",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(root / "wheels"),
                          str(src)], capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    wheel = f"vma_exporter-{__version__}-py3-none-any.whl"
    assert wheel in documented_install(), f"docs/deploy.md installs another wheel than {wheel}"
    shutil.move(str(root / "wheels" / wheel), root / wheel)
    shutil.rmtree(src)
    shutil.copytree(SYSTEMD, root / "deploy" / "systemd")
    shutil.copy(workload_bin, root / "workload")
    for path in (root, *root.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() or path.name == "workload" else 0o644)
    return str(root)


@pytest.fixture(scope="module")
def host(release):
    """The systemd container, booted, with the package and the daemon unit installed as
    docs/deploy.md says; (container, published loopback port)."""
    image = podman.systemd_host_image()
    name = podman.unique_name("vma-systemd")
    port = free_port()
    argv = ["--detach", f"--name={name}", "--systemd=always", "--cap-add=SYS_ADMIN", "--cap-add=SYS_PTRACE",
            f"--publish=127.0.0.1:{port}:9979", f"--volume={release}:{RELEASE}:ro", image, "/sbin/init"]
    with podman.Container(name, argv) as c:
        def booted() -> str | None:
            state = c.exec("systemctl", "is-system-running", check=False).stdout.strip()
            return state if state in ("running", "degraded") else None

        state = podman.wait_for(booted, "systemd booting in the container")
        assert state == "running", c.exec("systemctl", "--failed", "--no-pager", check=False).stdout
        c.exec("sh", "-ec", documented_install(), timeout=300,
               options=(f"--workdir={RELEASE}", "--env=PIP_NO_INDEX=1", f"--env=PIP_FIND_LINKS={RELEASE}/wheels"))
        wait_ready(port)
        yield c, port


def get(port: int, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=podman.WAIT)


def wait_ready(port: int) -> None:
    podman.wait_for(lambda: get(port, "/-/ready").status_code == 200, f"/-/ready on 127.0.0.1:{port}")


def scrape(port: int) -> dict:
    return samples_by_name(get(port, "/metrics").text)


def show(c, unit: str, *props: str) -> dict[str, str]:
    out = c.exec("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main_pid(c) -> int:
    """The exporter's host pid (systemd names it in the container's pid namespace)."""
    return podman.host_pid(c.pid, int(show(c, "vma-exporter", "MainPID")["MainPID"]))


def permission_errors(samples) -> float:
    return next(s.value for s in samples["vma_exporter_read_errors_total"] if s.labels["reason"] == "permission")


class ContainerWorkload:
    """helpers/workload.c inside the container as another uid; the host pid once it is ready."""

    def __init__(self, c, comm: str, *args: str):
        self.proc = subprocess.Popen(
            ["podman", "exec", f"--user={OTHER_UID}:{OTHER_UID}", f"--env=WORKLOAD_COMM={comm}", c.name,
             f"{RELEASE}/workload", *args], env=podman.env(), stdout=subprocess.PIPE, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(podman.WAIT)
        fields = line[0].split() if line else []
        if fields[:1] != ["ready"]:
            self.proc.kill()
            raise RuntimeError(f"workload in {c.name} did not get ready: {line}")
        self.pid = podman.host_pid(c.pid, int(fields[1]))

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(podman.WAIT)
        self.proc.stdout.close()


def restart(c, port: int) -> None:
    c.exec("systemctl", "restart", "vma-exporter")
    wait_ready(port)


def test_installed_as_documented_and_serving(host):
    c, port = host
    shipped = open(os.path.join(SYSTEMD, "vma-exporter.service")).read()
    assert c.exec("cat", "/etc/systemd/system/vma-exporter.service").stdout == shipped, "the unit is not as shipped"
    assert c.exec("systemctl", "is-enabled", "vma-exporter").stdout.strip() == "enabled"
    assert c.exec("systemctl", "is-active", "vma-exporter").stdout.strip() == "active"
    build = scrape(port)["vma_exporter_build_info"]
    assert [s.labels["version"] for s in build] == [__version__]


def test_dynamic_user_reads_another_uids_maps_through_cap_sys_ptrace_alone(host):
    c, port = host
    comm = unique_comm("vmasysd")
    workload = ContainerWorkload(c, comm, "areas", "3000")
    dropin = "/etc/systemd/system/vma-exporter.service.d"
    try:
        pid = main_pid(c)
        status = podman.proc_status(pid)
        uids = {int(u) for u in status["Uid"].split()}
        assert len(uids) == 1 and uids <= set(DYNAMIC_UIDS) and OTHER_UID not in uids, status["Uid"]
        ptrace = podman.CAP_SYS_PTRACE
        assert podman.capabilities(pid) == {"CapInh": ptrace, "CapPrm": ptrace, "CapEff": ptrace,
                                            "CapBnd": ptrace, "CapAmb": ptrace}
        assert status["NoNewPrivs"] == "1"
        samples = scrape(port)
        assert podman.scraped_group_figures(samples, comm) == podman.kernel_group_figures(workload.pid)
        assert permission_errors(samples) == 0
        # Control: the same unit without its ambient capability reads nothing of the other uid.
        c.exec("sh", "-ec", f"mkdir -p {dropin} && printf '[Service]\\nAmbientCapabilities=\\n' "
                            f">{dropin}/no-ptrace.conf && systemctl daemon-reload")
        restart(c, port)
        assert podman.capabilities(main_pid(c))["CapEff"] == 0
        samples = scrape(port)
        figures = podman.scraped_group_figures(samples, comm)
        assert figures["vma_group_processes"] == 1 and figures["vma_group_map_areas"] == 0, figures
        assert permission_errors(samples) >= 1
    finally:
        workload.stop()
        c.exec("sh", "-ec", f"rm -rf {dropin} && systemctl daemon-reload")
        restart(c, port)


def test_systemctl_reload_reloads(host):
    """Flags from /etc/default/vma-exporter (a restart), then configs swapped by `systemctl reload`."""
    c, port = host

    def reload_state() -> tuple[float, float, set[str]]:
        s = scrape(port)
        return (s["vma_exporter_config_last_reload_successful"][0].value,
                s["vma_exporter_config_last_reload_success_timestamp_seconds"][0].value,
                {x.labels["group"].split(":")[0] for x in s["vma_group_processes"]})

    def write_config(text: str) -> None:
        c.exec("sh", "-ec", f"mkdir -p /etc/vma-exporter && printf '%s' '{text}' >/etc/vma-exporter/config.yaml "
                            "&& chmod 0644 /etc/vma-exporter/config.yaml")

    write_config('process_names:\n  - name: "first:{{.Comm}}"\n')
    c.exec("sh", "-ec", "echo 'VMA_EXPORTER_ARGS=\"--config.file=/etc/vma-exporter/config.yaml\"' "
                        ">/etc/default/vma-exporter")
    try:
        restart(c, port)
        pid = main_pid(c)
        ok, stamp, groups = reload_state()
        assert (ok, groups) == (1, {"first"})
        write_config('process_names:\n  - name: "second:{{.Comm}}"\n')
        c.exec("systemctl", "reload", "vma-exporter")
        ok, new_stamp, groups = podman.wait_for(lambda: (s := reload_state())[2] == {"second"} and s,
                                                "groups renamed by the reloaded config")
        assert ok == 1 and new_stamp > stamp, (ok, stamp, new_stamp)
        write_config("process_names:\n  - name: broken\n    comm: []\n")
        c.exec("systemctl", "reload", "vma-exporter")
        podman.wait_for(lambda: reload_state()[0] == 0, "vma_exporter_config_last_reload_successful 0")
        assert reload_state()[1:] == (new_stamp, {"second"}), "a refused config must leave the running one"
        journal = c.exec("journalctl", "--unit=vma-exporter", "--no-pager").stdout
        assert "reload failed, keeping the running config" in journal
        assert main_pid(c) == pid, "systemctl reload restarted the exporter"
    finally:
        c.exec("rm", "-f", "/etc/default/vma-exporter", "/etc/vma-exporter/config.yaml")
        restart(c, port)


def test_systemctl_stop_is_clean(host, capsys):
    c, port = host
    started = time.monotonic()
    c.exec("systemctl", "stop", "vma-exporter")
    seconds = time.monotonic() - started
    try:
        state = show(c, "vma-exporter", "ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
        with capsys.disabled():
            print(f"\nsystemctl stop vma-exporter: {seconds:.2f} s, {state}")
        # ExecMainCode 1 is CLD_EXITED: it exited by itself (2 would be killed by a signal).
        assert state == {"ActiveState": "inactive", "Result": "success", "ExecMainCode": "1", "ExecMainStatus": "0"}
        assert "shutting down (SIGTERM)" in c.exec("journalctl", "--unit=vma-exporter", "--no-pager").stdout
    finally:
        c.exec("systemctl", "start", "vma-exporter")
        wait_ready(port)


def test_textfile_timer_writes_its_file(host):
    """Installed like the daemon unit, the timer enabled: its service writes vma.prom for
    node_exporter (whose root-owned directory exists on such a host)."""
    c, _ = host
    output = "/var/lib/node_exporter/textfile_collector/vma.prom"
    c.exec("sh", "-ec", f"install -d -m 0755 {os.path.dirname(output)} && cd {RELEASE} && "
                        "install -m 0644 deploy/systemd/vma-exporter-textfile.service "
                        "deploy/systemd/vma-exporter-textfile.timer /etc/systemd/system/ && "
                        "systemctl daemon-reload && systemctl enable --now vma-exporter-textfile.timer")
    try:
        podman.wait_for(lambda: c.exec("test", "-s", output, check=False).returncode == 0,
                        f"{output} written by the timer's service", timeout=120)
        text = c.exec("cat", output).stdout
        assert c.exec("stat", "--format=%u %a", output).stdout.split() == ["0", "644"]
        state = show(c, "vma-exporter-textfile.service", "Result", "ExecMainStatus")
        assert state == {"Result": "success", "ExecMainStatus": "0"}, state
        samples = samples_by_name(text)
        assert "vma_node_map_areas_limit" in samples and permission_errors(samples) == 0
        promtool = shutil.which("promtool")
        if promtool:
            check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                                   timeout=podman.WAIT, check=False)
            assert check.returncode == 0, check.stdout + check.stderr
        assert c.exec("systemctl", "is-active", "vma-exporter-textfile.timer").stdout.strip() == "active"
    finally:
        c.exec("systemctl", "disable", "--now", "vma-exporter-textfile.timer", check=False)


def exposure(c, unit: str) -> tuple[float, str]:
    out = c.exec("systemd-analyze", "security", "--no-pager", unit).stdout
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d) (\w+)", out)
    assert found, out[-2000:]
    return float(found[1]), found[2]


def test_systemd_analyze_security_score(host, capsys):
    """The exposure score of the running units, and the one docs/deploy.md states."""
    c, _ = host
    c.exec("sh", "-ec", f"cd {RELEASE} && install -m 0644 deploy/systemd/vma-exporter-textfile.service "
                        "/etc/systemd/system/ && systemctl daemon-reload")
    daemon = exposure(c, "vma-exporter.service")
    textfile = exposure(c, "vma-exporter-textfile.service")
    with capsys.disabled():
        print(f"\nsystemd-analyze security: vma-exporter.service {daemon[0]} {daemon[1]}, "
              f"vma-exporter-textfile.service {textfile[0]} {textfile[1]}")
    assert daemon[0] <= 2.0 and textfile[0] <= 2.0
    with open(DEPLOY_MD) as f:
        docs = f.read()
    assert f"`vma-exporter.service` {daemon[0]}" in docs, "docs/deploy.md states another score for the daemon"
    assert f"`vma-exporter-textfile.service` {textfile[0]}" in docs, "docs/deploy.md: the textfile unit's score"
