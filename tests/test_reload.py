"""Hot reload of the targets config: SIGHUP and POST /-/reload, end to end and in process."""

import signal
import threading
import time

import pytest
import requests

from exporter.collect import Collector
from exporter.procfs.paths import Roots
from exporter.reload import Reloader
from exporter.targets import load_config
from helpers.daemon import Daemon, one
from helpers.workload import Workload

ALPHA = """\
process_names:
  - name: alpha
    comm: [workload]
per_process:
  top_n: 5
"""
BETA = ALPHA.replace("alpha", "beta")
BROKEN = ALPHA.replace("comm: [workload]", "comm: workload")  # a string, not a list


def groups(samples) -> set[str]:
    return {s.labels["group"] for s in samples.get("vma_group_processes", [])}


def reload_state(samples) -> tuple[float, float]:
    return (one(samples, "vma_exporter_config_last_reload_successful"),
            one(samples, "vma_exporter_config_last_reload_success_timestamp_seconds"))


def wait_for(predicate, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def scrape_if(d: Daemon, group: str):
    samples = d.metrics()
    return samples if group in groups(samples) else None


@pytest.fixture()
def running(tmp_path, workload_bin):
    config = tmp_path / "targets.yml"
    config.write_text(ALPHA)
    with Workload("areas", 10), Daemon(f"--config.file={config}") as d:
        d.config = config
        yield d


def test_sighup_reloads_and_refuses_a_broken_file(running):
    d = running
    first = d.metrics()
    assert "alpha" in groups(first)
    ok, started = reload_state(first)
    assert ok == 1 and started <= time.time()

    d.config.write_text(BETA)
    d.proc.send_signal(signal.SIGHUP)
    after = wait_for(lambda: scrape_if(d, "beta"), "group beta")
    assert "alpha" not in groups(after)
    ok, stamp = reload_state(after)
    assert ok == 1 and stamp > started

    d.config.write_text(BROKEN)
    d.proc.send_signal(signal.SIGHUP)
    log = d.wait_log("reload failed")
    line = next(ln for ln in log.splitlines() if "reload failed" in ln)
    assert "level=error" in line and "process_names[0].comm: must be a non-empty list" in line
    refused = d.metrics()
    assert groups(refused) == groups(after)  # the old config keeps serving
    assert reload_state(refused) == (0, stamp)  # failed, and the last success is still the old one


def test_http_reload(running):
    d = running
    d.config.write_text(BETA)
    r = requests.post(d.url + "/-/reload", timeout=60)
    assert (r.status_code, r.text) == (200, "config reloaded\n")
    assert "beta" in groups(d.metrics())  # applied before the reply: no waiting

    d.config.write_text("process_names: [\n")
    r = requests.post(d.url + "/-/reload", timeout=60)
    assert r.status_code == 500
    assert "reload failed, keeping the running config" in r.text and "invalid YAML" in r.text
    samples = d.metrics()
    assert "beta" in groups(samples) and reload_state(samples)[0] == 0

    d.config.unlink()
    r = requests.post(d.url + "/-/reload", timeout=60)
    assert r.status_code == 500 and "cannot read config" in r.text

    d.config.write_text(ALPHA)
    assert requests.post(d.url + "/-/reload", timeout=60).status_code == 200
    samples = d.metrics()
    assert "alpha" in groups(samples) and reload_state(samples)[0] == 1
    assert d.log().count("level=error") == 2  # one line per refused reload, nothing else


def test_concurrent_reloads_and_scrapes(running):
    d = running
    codes, errors = [], []

    def reload():
        try:
            codes.append(requests.post(d.url + "/-/reload", timeout=120).status_code)
            codes.append(requests.get(d.url + "/metrics", timeout=120).status_code)
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=reload) for _ in range(16)]
    for t in threads:
        t.start()
    for _ in range(10):
        d.proc.send_signal(signal.SIGHUP)
    for t in threads:
        t.join()
    assert not errors and codes == [200] * 32
    assert "alpha" in groups(d.metrics())
    assert "level=error" not in d.log()


def test_the_same_text_keeps_the_match_cache(tmp_path):
    path = tmp_path / "targets.yml"
    path.write_text(ALPHA)
    collector = Collector(Roots(), load_config(str(path)))
    times = iter([100.0, 200.0, 300.0, 400.0])
    reloader = Reloader(collector, str(path), clock=lambda: next(times))
    matcher = collector._policy.matcher
    assert reloader.reload() == (True, "config reloaded")
    assert collector._policy.matcher is matcher  # unchanged text: the cache of process -> group stays warm
    path.write_text(BETA)
    assert reloader.reload()[0]
    assert collector._policy.matcher is not matcher and collector.config.rules[0].name.text == "beta"
    path.write_text(BROKEN)
    ok, message = reloader.reload()
    assert not ok and "process_names[0].comm" in message
    assert collector.config.rules[0].name.text == "beta"
    assert reloader.state() == (False, 300.0)  # what vma_exporter_config_last_reload_* export


def test_without_a_config_file_reload_keeps_the_embedded_default():
    collector = Collector(Roots(), load_config(None))
    reloader = Reloader(collector, None)
    assert reloader.reload() == (True, "config reloaded")
    assert collector.config.source == "<embedded default>"
