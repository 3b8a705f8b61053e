"""The whole /metrics exposition over the fixture tree, against checked-in golden files.

The real exporter runs as a subprocess over tests/fixtures/proc and
tests/fixtures/sys, listening on a free loopback port; its first scrape is
compared, after normalising what varies from run to run, with
tests/golden/metrics.prom (embedded default config) and
tests/golden/metrics-targets.prom (a config with templates and a tight
per-process bound). Every exposition is linted by ``promtool check metrics``.

Regenerate the golden files after an intended change, then review the diff:

    python3 -m pytest tests/test_golden.py --update-golden
"""

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from helpers import golden

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GOLDEN = os.path.join(HERE, "golden")
PROCFS = os.path.join(HERE, "fixtures", "proc")
SYSFS = os.path.join(HERE, "fixtures", "sys")
START_TIMEOUT = 60.0  # seconds; generous for a loaded 2-core machine

# Bounded per-process series: the top process, plus every process at or above
# 0.05 % of max_map_count (65530 -> 32.8 areas). Groups named by templates.
TARGETS_YAML = r"""
process_names:
  - name: "shm:{{.Matches.Shm}}"
    comm: [shm-leaker]
    cmdline: ['--shm=/(?P<Shm>\S+)']
  - name: "java:{{.Matches.App}}"
    exe: [java]
    cmdline: ['-jar\s+\S*/(?P<App>[^/]+)\.jar']
  - name: "{{.ExeBase}}"
    exe: [/usr/bin/dpdk-testpmd, sleep]
  - name: other
per_process:
  top_n: 1
  min_limit_ratio: 0.0005
"""

CASES = {"metrics.prom": None, "metrics-targets.prom": TARGETS_YAML}

# Values that differ on every run: durations and timestamps of the exporter itself.
VOLATILE = re.compile(r"vma_exporter_\w*_(duration|timestamp)_seconds")


def exporter_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "exporter", "--path.procfs", PROCFS, "--path.sysfs", SYSFS, *args]


def exporter_env() -> dict:
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """The exporter as a subprocess on a free loopback port (retried if another test takes the port)."""

    def __init__(self, tmp_path, config_text: str | None):
        self.args = []
        if config_text is not None:
            path = tmp_path / "targets.yml"
            path.write_text(config_text)
            self.args = ["--config.file", str(path)]
        self.log = tmp_path / "exporter.log"
        self.proc = None
        self.port = None

    def start(self) -> "Exporter":
        for _ in range(5):
            self.port = free_port()
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    exporter_command(*self.args, "--web.listen-address", f"127.0.0.1:{self.port}"),
                    cwd=REPO, env=exporter_env(), stdout=log, stderr=subprocess.STDOUT)
            if self._wait_healthy():
                return self
            self.stop()
            if "cannot listen" not in self.log.read_text():
                break
        raise AssertionError(f"exporter did not become healthy:\n{self.log.read_text()}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                # /-/healthy does not collect: the first /metrics scrape is the first collection.
                if requests.get(f"http://127.0.0.1:{self.port}/-/healthy", timeout=5).status_code == 200:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        return False

    def scrape(self) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def normalise(text: str) -> tuple[str, dict[str, float]]:
    """Replace volatile values with NaN and the version label with VERSION; return the volatile values.

    The daemon's own process_* families (prometheus_client's ProcessCollector: its CPU,
    memory, fds) change on every run and are not written in textfile mode: left out.
    """
    out, volatile = [], {}
    for line in text.splitlines():
        if re.match(r"(# (HELP|TYPE) )?process_", line):
            continue
        if not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            if VOLATILE.fullmatch(name):
                head, _, value = line.rpartition(" ")
                volatile[head] = float(value)
                line = f"{head} NaN"
            elif name == "vma_exporter_build_info":
                line = re.sub(r'version="[^"]*"', 'version="VERSION"', line)
        out.append(line)
    return "\n".join(out) + "\n", volatile


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory):
    """The first scrape of a fresh exporter for each golden case: (response, wall time window)."""
    out = {}
    for name, config_text in CASES.items():
        exporter = Exporter(tmp_path_factory.mktemp(name), config_text).start()
        try:
            before = time.time()
            response = exporter.scrape()
            after = time.time()
        finally:
            exporter.stop()
        out[name] = (response, before, after)
    return out


def compare_or_update(request, name: str, normalised: str) -> None:
    golden.compare(os.path.join(GOLDEN, name), normalised, "exporter output (normalised)")


@pytest.mark.parametrize("name", list(CASES))
def test_http_exposition_matches_golden(request, scrapes, name):
    response, before, after = scrapes[name]
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    normalised, volatile = normalise(response.text)
    assert volatile, "no volatile samples found: has the scrape duration metric been renamed?"
    own = re.search(r"^process_resident_memory_bytes (\S+)$", response.text, re.M)
    assert own and float(own.group(1)) > 1e6, "the daemon exports its own process_* metrics"
    for head, value in volatile.items():  # what is normalised away must still be sane
        if "_duration_" in head:
            assert 0 <= value < 60, head
        else:
            assert before - 3600 <= value <= after + 1, head
    compare_or_update(request, name, normalised)


def test_textfile_output_equals_http_exposition(tmp_path, scrapes):
    """--textfile.output writes the same exposition as the first HTTP scrape."""
    out = tmp_path / "vma.prom"
    proc = subprocess.run(exporter_command("--textfile.output", str(out)), cwd=REPO, env=exporter_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert normalise(out.read_text())[0] == normalise(scrapes["metrics.prom"][0].text)[0]


def promtool_check(text: str) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'; scripts/test.sh installs it)")
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("name", list(CASES))
def test_promtool_lints_the_exposition(scrapes, name):
    result = promtool_check(scrapes[name][0].text)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr)


@pytest.mark.parametrize("name", list(CASES))
def test_promtool_lints_the_golden_file(name):
    with open(os.path.join(GOLDEN, name)) as f:
        result = promtool_check(f.read())
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_is_not_a_no_op():
    """The lint above can fail: a gauge with a summary's suffix is rejected."""
    result = promtool_check("# HELP vma_bad_sum x\n# TYPE vma_bad_sum gauge\nvma_bad_sum 1\n")
    assert result.returncode != 0
    assert "_sum" in result.stdout + result.stderr


# --- facts the golden files must hold, checked without them --------------------------------
# (so that regenerating a golden file blindly cannot hide a regression in these)

def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def proc_labels(pid: int, comm: str, group: str, container_id: str = "", pod_uid: str = "", **extra) -> tuple:
    labels = dict(comm=comm, group=group, pid=str(pid), container_id=container_id, pod_uid=pod_uid, **extra)
    return tuple(sorted(labels.items()))


POD_400 = dict(container_id="4f" * 32, pod_uid="0d1c2b3a-4f5e-6a7b-8c9d-0e1f2a3b4c5d")
POD_500 = dict(container_id="ab" * 32, pod_uid="7a9f0c1e-2b3d-4e5f-8a9b-c0d1e2f3a4b5")


def test_default_config_facts(scrapes):
    text = scrapes["metrics.prom"][0].text
    s = samples(text)
    leaker = proc_labels(400, "shm-leaker", "shm-leaker", **POD_400)
    assert s[("vma_node_map_areas_limit", ())] == 65530
    assert s[("vma_process_map_areas", leaker)] == 1022
    assert s[("vma_process_top_object_map_areas",
              proc_labels(400, "shm-leaker", "shm-leaker", object="/dev/shm/ingest-buffer", **POD_400))] == 1000
    assert s[("vma_process_map_areas", proc_labels(100, "(sd-pam) x)", "(sd-pam) x)"))] == 20
    weird = 'a"b\\c\nd e'  # a quote, a backslash, a newline: escaped in the text, intact once parsed
    assert s[("vma_process_map_areas", proc_labels(800, weird, weird))] == 9
    assert 'comm="a\\"b\\\\c\\nd e"' in text
    assert s[("vma_process_start_time_seconds", leaker)] == pytest.approx(1767225600 + 1203044 / 100)
    dpdk = proc_labels(500, "dpdk-testpmd", "dpdk-testpmd", **POD_500)
    assert s[("vma_process_rlimit_data_bytes", dpdk)] == 4 << 30
    assert math.isinf(s[("vma_process_rlimit_as_bytes", leaker)])
    assert s[("vma_process_hugetlb_bytes", dpdk)] == 1056768 * 1024
    old_kernel = proc_labels(300, "java", "java")
    assert ("vma_process_virtual_bytes", old_kernel) in s
    # statm's shared is top's SHR on every kernel (before 4.5: file pages, which held shmem then)
    assert s[("vma_process_shared_bytes", old_kernel)] == 33226 * 4096
    assert ("vma_process_hugetlb_bytes", old_kernel) not in s
    assert ("vma_process_rlimit_as_bytes", proc_labels(701, "trunc-limits", "trunc-limits")) not in s
    assert s[("vma_node_hugepages", (("pagesize_bytes", "1073741824"),))] == 4
    assert s[("vma_node_numa_hugepages_free", (("numa_node", "1"), ("pagesize_bytes", "2097152")))] == 256
    errors = {r: s[("vma_exporter_read_errors_total", (("reason", r),))]
              for r in ("permission", "vanished", "parse", "io")}
    assert errors == {"permission": 0, "vanished": 1, "parse": 2, "io": 0}  # 999; 700's stat and 701's limits
    # Not the kernel thread nor the zombie; 700 and 999 count: they were tried, and failed.
    assert s[("vma_exporter_processes_scanned", ())] == 10
    pids = {dict(k[1]).get("pid") for k in s if k[0].startswith("vma_process_")}
    assert pids == {"1", "100", "300", "400", "500", "600", "701", "800"}
    assert s[("vma_exporter_build_info", (("version", __version__),))] == 1


def test_no_command_line_in_any_label(scrapes):
    for name in CASES:
        for family in text_string_to_metric_families(scrapes[name][0].text):
            for sample in family.samples:
                for value in sample.labels.values():
                    for arg in ("--batch=512", "-Xmx4g", "splash", "infinity", "--shm="):
                        assert arg not in value, (sample, arg)


def test_targets_config_facts(scrapes):
    s = samples(scrapes["metrics-targets.prom"][0].text)
    exported = {dict(k[1])["pid"] for k in s if k[0] == "vma_process_map_areas"}
    assert exported == {"400", "500"}  # top 1, plus 500 at 53 areas >= 0.0005 * 65530
    groups = {dict(k[1])["group"]: v for k, v in s.items() if k[0] == "vma_group_processes"}
    assert groups == {"shm:ingest-buffer": 1, "java:billing": 1, "dpdk-testpmd": 1, "sleep": 2, "other": 3}
    # Group aggregates cover members without per-process series.
    assert s[("vma_group_map_areas", (("group", "sleep"),))] == 13 + 9
    assert s[("vma_group_map_areas_max", (("group", "other"),))] == 26
    assert s[("vma_group_map_areas", (("group", "other"),))] == 26 + 20 + 9
    assert s[("vma_exporter_processes_watched", ())] == 8
    assert s[("vma_exporter_processes_exported", ())] == 2
