"""The image from ./Dockerfile, built by scripts/image.sh and run as the README tells Docker users.

Real podman (tests/containers/containers.conf), a real workload of known map areas owned by
another uid on this host, scraped over a port published on loopback. The README's `docker run`
line runs with `podman` for `docker` and three values changed, each for a reason named below;
every option stays as written.
"""

import os
import re
import shlex
import subprocess

import pytest
import requests
from helpers import podman
from helpers.daemon import free_port, samples_by_name
from helpers.workload import Workload, unique_comm

pytestmark = pytest.mark.container

README = os.path.join(podman.REPO, "README.md")
DOCKERFILE = os.path.join(podman.REPO, "Dockerfile")
OTHER_UID = 1234


def dockerfile_value(pattern: str) -> str:
    with open(DOCKERFILE) as f:
        return re.findall(pattern, f.read(), re.MULTILINE)[-1]  # the last: the final stage's


def readme_docker_commands() -> list[list[str]]:
    """The README's Docker block (Deploying), one argv per command, continuations joined."""
    with open(README) as f:
        text = f.read()
    block = re.search(r"\*\*Docker\*\* on a host.*?```sh\n(.*?)```", text, re.DOTALL)
    assert block, "README.md has no Docker block under Deploying"
    return [shlex.split(line) for line in block[1].replace("\\\n", " ").splitlines() if line.strip()]


def readme_command(verb: str) -> list[str]:
    found = [argv for argv in readme_docker_commands() if argv[:2] == ["docker", verb]]
    assert len(found) == 1, f"README: {len(found)} 'docker {verb}' lines"
    return found[0]


def run_once(image: str, *argv: str, entrypoint: str | None = None) -> str:
    """``podman run --rm`` one command in *image*; its stdout."""
    name = podman.unique_name("vma-once")
    options = [f"--entrypoint={entrypoint}"] if entrypoint else []
    try:
        return podman.podman("run", "--rm", f"--name={name}", *options, image, *argv).stdout
    finally:
        podman.podman("rm", "--force", "--time=0", name, check=False)


def get(port: int, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=podman.WAIT)


def ready(port: int) -> bool:
    return get(port, "/-/ready").status_code == 200


@pytest.fixture(scope="module")
def image() -> str:
    return podman.exporter_image()


def test_image_is_built_on_a_base_with_the_dockerfiles_python(image, capsys):
    official = dockerfile_value(r"^ARG PYTHON_IMAGE=(\S+)$")
    minor, release = re.fullmatch(r"python:(\d+\.\d+)-slim-(\w+)", official).groups()
    base = podman.base_image()
    assert base in (f"docker.io/library/{official}", f"localhost/vma-exporter-base:{release}-python{minor}",
                    os.environ.get("VMA_BASE_IMAGE")), base
    labels = podman.inspect(image, "{{json .Labels}}")
    assert f'"org.opencontainers.image.base.name":"{base}"' in labels, labels
    version = run_once(image, "-c", "import sys; print('%d.%d' % sys.version_info[:2])",
                       entrypoint="/opt/vma-exporter/bin/python3")
    assert version.strip() == minor, f"the image's Python is {version.strip()}, the official base's {minor}"
    assert podman.inspect(image, "{{.Config.User}}") == dockerfile_value(r"^USER (\S+)$")
    assert podman.inspect(image, "{{json .Config.Entrypoint}}") == dockerfile_value(r"^ENTRYPOINT (.+)$").replace(" ", "")
    size = int(podman.inspect(image, "{{.Size}}"))
    with capsys.disabled():
        print(f"\nimage {image} on {base}: {size} bytes ({size / 1e6:.0f} MB)")
    assert size < 400e6, "the image grew past 400 MB: a build tool or cache reached the final stage"


def test_base_is_cached_between_runs(image):
    """A second run finds the base in podman's store: no bootstrap, the same image."""
    before = podman.inspect(podman.base_image(), "{{.Id}}")
    out = subprocess.run([os.path.join(podman.REPO, "scripts", "image.sh"), "base"], cwd=podman.REPO,
                         env=podman.env(), capture_output=True, text=True, timeout=podman.BUILD_TIMEOUT,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == podman.base_image()
    assert "bootstrapping" not in out.stderr, out.stderr
    assert podman.inspect(podman.base_image(), "{{.Id}}") == before


def test_image_has_libbpf_and_no_package_lists(image, capsys):
    """libbpf.so.1 (for the kernel-side collection source) loads in the exporter's Python."""
    version = run_once(image, "-c", "import ctypes; b = ctypes.CDLL('libbpf.so.1'); "
                       "print(b.libbpf_major_version(), b.libbpf_minor_version())",
                       entrypoint="/opt/vma-exporter/bin/python3").split()
    assert version[0] == "1", version
    with capsys.disabled():
        print(f"\nlibbpf in the image: {'.'.join(version)}")
    assert run_once(image, "-c", "ls -A /var/lib/apt/lists", entrypoint="/bin/sh").strip() == ""
    assert not run_once(image, "-c", "ls /opt/vma-exporter/bin | grep -x pip || true", entrypoint="/bin/sh").strip()


def test_readme_build_line_with_podman(image, tmp_path):
    """`docker build -t vma-exporter:0.1.0 .` as written, with podman for docker.

    Where the official base can be pulled it builds; where it cannot (no registry here), podman
    stops at that pull and nowhere else, and the README names scripts/image.sh for that case.
    """
    argv = readme_command("build")
    assert argv[2:] == ["-t", "vma-exporter:0.1.0", "."], argv
    tag = f"localhost/vma-exporter:readme-{os.getpid()}"
    out = subprocess.run(["podman", "build", "-t", tag, "."], cwd=podman.REPO, env=podman.env(),
                         capture_output=True, text=True, timeout=podman.BUILD_TIMEOUT, check=False)
    try:
        if podman.base_image().startswith("docker.io/"):
            assert out.returncode == 0, out.stderr[-3000:]
        else:
            official = dockerfile_value(r"^ARG PYTHON_IMAGE=(\S+)$")
            assert out.returncode != 0
            assert f"docker.io/library/{official}" in out.stdout + out.stderr, out.stderr[-3000:]
            with open(README) as f:
                assert "scripts/image.sh" in f.read()
    finally:
        podman.podman("rmi", "--force", tag, check=False)


# --- the README's docker run line, with podman -------------------------------------------------

@pytest.fixture(scope="module")
def readme_run(image, workload_bin):
    """The README's run line with podman; (container, port, workload of another uid, its comm)."""
    argv = readme_command("run")[2:]
    port = free_port()
    # Changed: the name (two runs of the suite may overlap), the published address (loopback and
    # a free port: nothing of a test listens beyond this machine, and 9979 may be taken), and the
    # image (this session's build of the same Dockerfile).
    replaced = {"--name=vma-exporter": f"--name={podman.unique_name('vma-readme')}",
                "--publish=9979:9979": f"--publish=127.0.0.1:{port}:9979",
                "vma-exporter:0.1.0": image}
    assert set(replaced) <= set(argv), f"the README's run line changed: {argv}"
    argv = [replaced.get(a, a) for a in argv]
    comm = unique_comm("vmaimage")

    def other_uid():
        os.setgroups([])
        os.setgid(OTHER_UID)
        os.setuid(OTHER_UID)

    with Workload("areas", 3000, comm=comm, preexec_fn=other_uid) as w:
        with podman.Container(replaced["--name=vma-exporter"].split("=", 1)[1], argv) as c:
            podman.wait_for(lambda: ready(port), f"the container's /-/ready on 127.0.0.1:{port}\n{c.logs()}")
            yield c, port, w, comm


def test_readme_run_figures_equal_the_kernels(readme_run):
    c, port, workload, comm = readme_run
    samples = samples_by_name(get(port, "/metrics").text)
    assert podman.scraped_group_figures(samples, comm) == podman.kernel_group_figures(workload.pid)
    with open("/proc/sys/vm/max_map_count") as f:
        assert samples["vma_node_map_areas_limit"][0].value == int(f.read())
    mine = [s for s in samples.get("vma_process_map_areas", []) if s.labels["pid"] == str(workload.pid)]
    assert all(s.value == podman.kernel_group_figures(workload.pid)["vma_group_map_areas"] for s in mine)


def test_readme_run_identity_and_privileges(readme_run):
    """uid 0 (--user=0:0) with only CAP_SYS_PTRACE, no new privileges, the host's pids, and
    nothing writable under /host or at /."""
    c, port, _, _ = readme_run
    pid = c.pid
    status = podman.proc_status(pid)
    assert status["Uid"].split() == ["0"] * 4 and status["Gid"].split() == ["0"] * 4
    caps = podman.capabilities(pid)
    assert caps == {"CapInh": 0, "CapPrm": podman.CAP_SYS_PTRACE, "CapEff": podman.CAP_SYS_PTRACE,
                    "CapBnd": podman.CAP_SYS_PTRACE, "CapAmb": 0}, caps
    assert status["NoNewPrivs"] == "1"
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid"), "--pid=host"
    mounts = podman.mounts(pid)
    assert mounts["/"][0].startswith("ro"), mounts["/"]
    assert mounts["/host/proc"][1] == "proc" and mounts["/host/proc"][0].startswith("ro")
    assert {fs for mp, (_, fs) in mounts.items() if mp.startswith("/host/sys/")} == {"sysfs"}
    assert podman.writable_mounts(pid, "/host") == [], "a host filesystem is writable in the container"
    bound = podman.inspect(c.name, "{{json .NetworkSettings.Ports}}")
    assert f'"HostIp":"127.0.0.1","HostPort":"{port}"' in bound, bound


def test_readme_run_stops_on_sigterm(readme_run, capsys):
    """`podman stop -t 2` (SIGTERM, SIGKILL after 2 s): exit code 0 means SIGTERM alone did it."""
    c, _, _, _ = readme_run
    code, seconds = c.stop(timeout=2)
    with capsys.disabled():
        print(f"\npodman stop -t 2 of the README's container: exit {code} after {seconds:.2f} s")
    assert code == 0, f"exit {code} (137: it needed SIGKILL)\n{c.logs()}"
    assert "shutting down (SIGTERM)" in c.logs()
    assert podman.inspect(c.name, "{{.State.Status}}") == "exited", "--restart=unless-stopped restarted it"


def test_image_runs_as_the_dockerfiles_user(image):
    """Run with nothing but a published port: the Dockerfile's USER, no capabilities, serving."""
    port = free_port()
    name = podman.unique_name("vma-user")
    with podman.Container(name, ["--detach", f"--name={name}", f"--publish=127.0.0.1:{port}:9979", image]) as c:
        podman.wait_for(lambda: ready(port), f"/-/ready on 127.0.0.1:{port}")
        uid, gid = dockerfile_value(r"^USER (\S+)$").split(":")
        status = podman.proc_status(c.pid)
        assert status["Uid"].split() == [uid] * 4 and status["Gid"].split() == [gid] * 4
        assert podman.capabilities(c.pid)["CapEff"] == 0
        assert "vma_exporter_build_info" in get(port, "/metrics").text
        code, _ = c.stop(timeout=2)
        assert code == 0, c.logs()
