"""Hot reload (SIGHUP, POST /-/reload) and the daemon's signal handling.

A reload reads the targets config (``--config.file``) and the web config
(``--web.config.file``) again. Both are validated before either is applied: an
invalid file is refused with its reason logged, and the old configs keep
serving. The outcome is exported the way Prometheus exports its own reloads:
``vma_exporter_config_last_reload_successful`` and
``vma_exporter_config_last_reload_success_timestamp_seconds``.
"""

import logging
import signal
import threading
import time
from typing import Callable

from exporter.metrics import ReloadState
from exporter.targets import ConfigError, load_config
from exporter.webconfig import WebConfig, WebConfigError, load_web_config

log = logging.getLogger(__name__)


class WebState:
    """The current web config; the server reads it per connection and per request."""

    def __init__(self, config: WebConfig | None):
        self.current = config  # one attribute: swapping it is atomic

    def __call__(self) -> WebConfig | None:
        return self.current


class Reloader:
    def __init__(self, collector, config_path: str | None, web_path: str | None = None,
                 web_state: WebState | None = None, clock: Callable[[], float] = time.time):
        self.collector = collector
        self.config_path = config_path
        self.web_path = web_path
        self.web_state = web_state
        self._clock = clock
        self._lock = threading.Lock()  # one reload at a time: SIGHUP and HTTP may race
        self.successful = True  # the start-up load succeeded, or we would not be running
        self.success_timestamp = clock()

    def reload(self) -> tuple[bool, str]:
        """Load and apply both configs; return (ok, message) for the HTTP reply."""
        with self._lock:
            try:
                config = load_config(self.config_path)
                web = load_web_config(self.web_path) if self.web_path else None
                old_web = self.web_state.current if self.web_state else None
                if old_web is not None and web is not None and web.tls != old_web.tls:
                    raise WebConfigError(f"{self.web_path}: switching between TLS and plain HTTP needs a restart")
            except (ConfigError, WebConfigError) as exc:
                self.successful = False
                log.error("reload failed, keeping the running config: %s", exc)
                return False, f"reload failed, keeping the running config: {exc}"
            except Exception as exc:  # a bug must not take down a daemon that serves fine
                self.successful = False
                log.exception("reload failed, keeping the running config")
                return False, f"reload failed, keeping the running config: {type(exc).__name__}: {exc}"
            old = self.collector.config
            # The same text keeps the match cache warm; a reload storm then costs only YAML parsing.
            if (config.text, config.source) != (old.text, old.source):
                self.collector.set_config(config)
            if self.web_state is not None and web is not None:
                self.web_state.current = web
            self.successful = True
            self.success_timestamp = self._clock()
        log.info("reloaded config %s%s", config.source, f" and web config {self.web_path}" if web else "")
        return True, "config reloaded"

    def state(self) -> ReloadState:
        """For metrics.SnapshotCollector(reload_state=...)."""
        return ReloadState(self.successful, self.success_timestamp)


SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}


def block_signals() -> None:
    """Call before any thread starts: every thread inherits the mask, so the
    signals stay pending until wait_for_signals() takes them in the main thread.

    Handlers would not do: the kernel delivers a process signal to any thread
    that does not block it, and a main thread blocked in a lock (Event.wait)
    is then never woken to run the Python handler; SIGTERM would hang.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def wait_for_signals(reloader: Reloader) -> int:
    """Serve signals in the main thread: SIGHUP reloads; SIGTERM or SIGINT is returned."""
    while True:
        signum = signal.sigwait(SIGNALS)
        if signum != signal.SIGHUP:
            return signum
        reloader.reload()
