"""A real Prometheus server (Debian's /usr/bin/prometheus) for the tests.

Started on a free loopback port with a temporary config and TSDB, fast scrape
and evaluation intervals, and the given rules file. Queried through its HTTP
API, polled with generous deadlines (other test sessions may load the machine).
"""

import os
import shutil
import subprocess
import time

import requests
import yaml

from helpers.daemon import free_port, stop_process

BINARY = shutil.which("prometheus")


class QueryError(AssertionError):
    """Prometheus rejected a query (bad_data: it does not parse, or types do not match)."""


class Prometheus:
    def __init__(self, workdir: str, *, job: str, targets: list[str], rules_file: str,
                 target_labels: dict[str, str] | None = None, interval: str = "1s"):
        self.workdir = workdir
        self.config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "rule_files": [rules_file],
            "scrape_configs": [{"job_name": job,
                                "static_configs": [{"targets": targets, "labels": target_labels or {}}]}],
        }
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Prometheus":
        config_path = os.path.join(self.workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(self.config, f)
        for _attempt in range(3):  # a free port can be taken between bind(0) and Prometheus' bind
            self.port = free_port()
            self._log = open(os.path.join(self.workdir, "prometheus.log"), "w+")
            self.proc = subprocess.Popen(
                [BINARY, f"--config.file={config_path}", f"--web.listen-address=127.0.0.1:{self.port}",
                 f"--storage.tsdb.path={os.path.join(self.workdir, 'tsdb')}", "--log.level=warn"],
                stdout=self._log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                        return self
                except requests.ConnectionError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError(f"prometheus not ready within {timeout} s: {self.log()}")
            if "address already in use" not in self.log():
                raise RuntimeError(f"prometheus exited {self.proc.returncode}: {self.log()}")
        raise RuntimeError(f"prometheus found no free port: {self.log()}")

    def log(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-4000:]

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, 20)
        if self._log:
            self._log.close()

    def __enter__(self) -> "Prometheus":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- HTTP API ---------------------------------------------------------------------------------

    def _get(self, path: str, **params) -> dict:
        r = requests.get(self.url + path, params=params, timeout=30)
        body = r.json()
        if body.get("status") != "success":
            raise QueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query; the result's samples ({"metric": {...}, "value": [t, "v"]})."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def series(self, selector: str) -> list[dict]:
        """Label sets of the series matching *selector* (what Grafana's label_values() reads)."""
        return self._get("/api/v1/series", **{"match[]": selector})

    def rules(self) -> list[dict]:
        return self._get("/api/v1/rules")["groups"]

    def targets_up(self) -> list[dict]:
        return [t for t in self._get("/api/v1/targets")["activeTargets"] if t["health"] == "up"]


def wait_until(check, timeout: float, what: str, interval: float = 0.5):
    """Call *check* until it returns something truthy; fail naming *what* and the last result."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last result: {last!r}")
        time.sleep(interval)
