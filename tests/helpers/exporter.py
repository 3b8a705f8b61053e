"""Run the real exporter with a targets config on a free loopback port and scrape it."""

import os
import signal
import tempfile

from helpers.daemon import Daemon


class Exporter(Daemon):
    """``with Exporter(config_yaml, *flags) as e: e.scrape()``

    A Daemon whose targets config is given as text: written to a temporary
    file at start (``--config.file``), removed at stop. None: the embedded default.
    """

    def __init__(self, config: str | None = None, *flags: str, env=None):
        super().__init__(*flags, env=env)
        self.config = config
        self._config_file: str | None = None

    def start(self, wait: bool = True) -> "Exporter":
        if self.config is not None and self._config_file is None:
            with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
                f.write(self.config)
            self._config_file = f.name
            self.args.append(f"--config.file={f.name}")
        super().start(wait)
        return self

    # name -> samples (prometheus_client Sample tuples), counters under their sample names
    scrape = Daemon.metrics

    def stop(self, sig=signal.SIGTERM) -> int | None:
        code = super().stop(sig) if self.proc else None
        if self._config_file:
            os.unlink(self._config_file)
            self._config_file = None  # stop() may be called twice
        return code


def by_pid(samples: list, pid: int, **labels) -> list:
    return [s for s in samples if s.labels.get("pid") == str(pid)
            and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples: list, pid: int, **labels) -> float:
    found = by_pid(samples, pid, **labels)
    assert len(found) == 1, f"expected one sample for pid {pid} {labels}, got {found}"
    return found[0].value
