"""Least privilege, visibly: the exporter run as a real unprivileged user.

It serves what it can read (its own user's processes, in full), counts the rest
under reason="permission" (still in their groups, without map areas), and says
once at start which capability would let it read everything. The same user with
that capability (CAP_SYS_PTRACE, as an ambient capability) then reads everything:
the advice in the log is checked, not just printed.
"""

import grp
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

from exporter.commands.common import PTRACE_HINT
from helpers.cli import cli, skip_unless_pid1_maps_unreadable
from helpers.host import host_lock

from helpers import workload as wl
from helpers.daemon import ROOT, Daemon, one

USER = "vma-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a user and switches to it")

CONFIG = """\
process_names:
  - name: workload
    comm: [workload]
per_process:
  top_n: 10000
"""


@pytest.fixture(scope="module")
def user():
    """The unprivileged user (useradd --system if missing; removed again if we made it),
    under the host lock: another run must not remove it while this one uses it."""
    with host_lock():
        yield from _user()


def _user():
    created = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                           capture_output=True, text=True)
        if r.returncode != 0 and "already exists" not in r.stderr:  # a parallel session may have made it
            pytest.skip(f"cannot create user {USER}: {r.stderr.strip()}")
        created = r.returncode == 0
    entry = pwd.getpwnam(USER)
    yield entry
    if created:
        subprocess.run(["userdel", USER], capture_output=True)


def runs_as(python: str, entry, env=None) -> bool:
    try:
        r = subprocess.run([python, "-c", "import yaml, prometheus_client"], user=entry.pw_uid,
                           group=entry.pw_gid, extra_groups=[], env=env, capture_output=True, cwd="/")
    except PermissionError:  # cannot even reach the interpreter
        return False
    return r.returncode == 0


@pytest.fixture(scope="module")
def python_for(user):
    """An interpreter and environment the unprivileged user can run the exporter with.

    This test's own interpreter may live where that user cannot go (pyenv under
    /root, mode 0700). Then a system python3 of the same version gets a
    world-readable copy of the exporter's runtime packages on PYTHONPATH.
    """
    if runs_as(sys.executable, user):
        yield sys.executable, {}
        return
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [p for p in (shutil.which(version, path="/usr/local/bin:/usr/bin:/bin"),
                              shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")) if p]
    site = tempfile.mkdtemp(prefix="vma-test-site-")
    os.chmod(site, 0o755)
    for name in ("prometheus_client", "yaml", "_yaml"):
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            shutil.copytree(list(spec.submodule_search_locations)[0], os.path.join(site, name),
                            ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", site], check=True)
    env = {"PYTHONPATH": site}
    try:
        for python in candidates:
            if runs_as(python, user, {**os.environ, **env}):
                yield python, env
                return
        pytest.skip(f"no Python {version} that user {USER} can run (this one: {sys.executable})")
    finally:
        shutil.rmtree(site)


def as_user(entry):
    def demote():
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return demote


@pytest.fixture(scope="module")
def workloads(user, workload_bin):
    """One workload of the unprivileged user, one of root: both 300 areas (302 with the guards).

    The user's copy of the binary must be readable: exec of a file the user may
    run but not read makes the process non-dumpable, and the kernel then refuses
    its maps even to its own user (only CAP_SYS_PTRACE reads them).
    """
    bindir = tempfile.mkdtemp(prefix="vma-test-bin-")
    os.chmod(bindir, 0o755)
    readable = os.path.join(bindir, "workload")
    shutil.copy(workload_bin, readable)
    os.chmod(readable, 0o755)
    own = wl.Workload("areas", 300, preexec_fn=as_user(user))
    own.args[0] = readable
    try:
        with own, wl.Workload("areas", 300) as roots:
            yield own, roots
    finally:
        shutil.rmtree(bindir)


@pytest.fixture()
def config_file():
    """The targets config where the unprivileged user can read it (pytest's tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="vma-test-conf-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "targets.yml")
    with open(path, "w") as f:
        f.write(CONFIG)
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(d)


def daemon_as(user, python_for, config: str, *prefix: str) -> Daemon:
    python, env = python_for
    d = Daemon(f"--config.file={config}", python=python, env=env)
    if prefix:  # run through setpriv: it switches the user itself
        d.args = [*prefix, *d.args]
    else:
        d.user, d.group = user.pw_uid, user.pw_gid
    return d


def test_unprivileged_user_serves_its_own_and_counts_the_rest(user, python_for, workloads, config_file):
    own, roots = workloads
    with daemon_as(user, python_for, config_file) as d:
        samples = d.metrics()
        log = d.log()
        with open(f"/proc/{d.proc.pid}/status") as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(user.pw_uid)] * 4  # really that user, not root
    # Its own process: in full, exactly what the kernel counts.
    assert one(samples, "vma_process_map_areas", pid=str(own.pid)) == wl.kernel_map_areas(own.pid) > 302
    # Root's process: counted in its group, no map areas, a permission error.
    assert not [s for s in samples["vma_process_map_areas"] if s.labels["pid"] == str(roots.pid)]
    assert one(samples, "vma_group_processes", group="workload") >= 2
    assert one(samples, "vma_exporter_read_errors_total", reason="permission") >= 1
    # Said once, at start, with the capability that would fix it.
    lines = [line for line in log.splitlines() if "CAP_SYS_PTRACE" in line]
    assert len(lines) == 1, log
    assert "level=warn" in lines[0] and 'reason=\\"permission\\"' in lines[0]
    assert "level=error" not in log


def test_the_advice_works_cap_sys_ptrace_reads_everything(user, python_for, workloads, config_file):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    own, roots = workloads
    group = grp.getgrgid(user.pw_gid).gr_name
    prefix = (setpriv, f"--reuid={USER}", f"--regid={group}", "--clear-groups",
              "--inh-caps=+sys_ptrace", "--ambient-caps=+sys_ptrace")
    with daemon_as(user, python_for, config_file, *prefix) as d:
        samples = d.metrics()
        log = d.log()
        with open(f"/proc/{d.proc.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
    assert status["Uid"].split() == [str(user.pw_uid)] * 4
    assert int(status["CapEff"], 16) == 1 << 19  # CAP_SYS_PTRACE and nothing else
    for w in (own, roots):
        assert one(samples, "vma_process_map_areas", pid=str(w.pid)) == wl.kernel_map_areas(w.pid)
    assert "CAP_SYS_PTRACE" not in log
    assert "maps of other users' processes are readable" in log


def test_as_root_there_is_no_warning(workloads):
    # The unprivileged user's workload is the other user's process the start-up probe reads.
    with Daemon() as d:
        log = d.wait_log("listening on")
    assert "maps of other users' processes are readable" in log
    assert "CAP_SYS_PTRACE" not in log


# --- what the commands say when a process's maps are refused ---------------------------------------

UNDUMPABLE = ("import ctypes, sys; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0\n"
              "print('ready', flush=True); sys.stdin.read()")


def command_as(user, python_for, *argv: str) -> subprocess.CompletedProcess:
    python, env = python_for
    return subprocess.run([python, "-m", "exporter", *argv], user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_without_the_capability_a_command_says_what_grants_it(user, python_for, workloads):
    _, roots = workloads
    r = command_as(user, python_for, "snapshot", str(roots.pid))
    assert r.returncode == 1, r.stderr
    assert PTRACE_HINT in r.stderr and "although" not in r.stderr and "Traceback" not in r.stderr


def test_an_undumpable_process_is_reported_as_such(user, python_for):
    python, env = python_for
    proc = subprocess.Popen([python, "-c", UNDUMPABLE], user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                            env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert os.stat(f"/proc/{proc.pid}/stat").st_uid == 0  # the kernel's own sign of it
        r = command_as(user, python_for, "snapshot", str(proc.pid))  # its own user
    finally:
        proc.communicate("")
    assert r.returncode == 1, r.stderr
    assert f"pid {proc.pid} is not dumpable" in r.stderr and "only CAP_SYS_PTRACE can" in r.stderr


def test_with_the_capability_a_refusing_process_gets_no_capability_hint():
    """Root with CAP_SYS_PTRACE: pid 1 of this machine still refuses. Telling root to get
    CAP_SYS_PTRACE would be wrong; the refusal is the process's side."""
    skip_unless_pid1_maps_unreadable()
    for command in (["snapshot", "1"], ["diff", "1", "--interval", "0.1"]):
        r = cli(*command)
        assert r.returncode == 1, r.stderr
        assert "although vma-exporter has CAP_SYS_PTRACE" in r.stderr
        assert PTRACE_HINT not in r.stderr
