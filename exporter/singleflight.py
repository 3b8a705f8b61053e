"""Share one call in flight between the callers that arrive while it runs.

Prometheus HA pairs and people with curl scrape at the same moment; each pass
over /proc costs the node real CPU, so concurrent scrapes wait for the pass in
flight and all get its outcome (Go's golang.org/x/sync/singleflight does the
same for its callers). The outcome is the result or the exception: a pass that
fails fails every scrape that waited for it, and the next call starts afresh.
"""

import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class _Call:
    __slots__ = ("done", "result", "error", "waiters")

    def __init__(self):
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.waiters = 0  # callers sharing this call besides the one running it


class SingleFlight(Generic[T]):
    def __init__(self):
        self._lock = threading.Lock()
        self._calls: dict[object, _Call] = {}

    def do(self, fn: Callable[[], T], key: object = None) -> T:
        """Run *fn*, or wait for the call of the same *key* already running and share its outcome."""
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if leader:
                call = self._calls[key] = _Call()
            else:
                call.waiters += 1
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result
        try:
            call.result = fn()
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
        return call.result

    def waiters(self, key: object = None) -> int:
        """Callers waiting for the call of *key* in flight (0 when none is)."""
        with self._lock:
            call = self._calls.get(key)
            return call.waiters if call is not None else 0
