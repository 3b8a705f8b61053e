"""exporter/singleflight.py and the Collector's use of it: concurrent callers share one
call in flight and its outcome (result or exception); the next call runs afresh.

Deterministic: the call in flight is held on an event until every other caller is
seen waiting for it (SingleFlight.waiters), never by sleeping and hoping.
"""

import threading

from exporter.collect import Collector
from exporter.procfs.paths import Roots
from exporter.singleflight import SingleFlight
from exporter.sources.procfs import ProcfsSource
from exporter.targets import default_config
from helpers.wait import until

CALLERS = 8


def run_together(call, held: threading.Event, waiting) -> list:
    """Start CALLERS threads on *call*; release *held* once CALLERS - 1 of them wait."""
    outcomes: list = []
    lock = threading.Lock()

    def one():
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 -- the outcome under test
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=one) for _ in range(CALLERS)]
    for t in threads:
        t.start()
    until(lambda: waiting() == CALLERS - 1, f"{CALLERS - 1} callers waiting")
    held.set()
    for t in threads:
        t.join(30)
    return outcomes


def test_concurrent_callers_share_one_call_and_its_result():
    flight, held, calls = SingleFlight(), threading.Event(), []

    def work():
        calls.append(1)
        held.wait(30)
        return object()

    outcomes = run_together(lambda: flight.do(work), held, flight.waiters)
    assert len(calls) == 1 and len(outcomes) == CALLERS
    assert all(o is outcomes[0] for o in outcomes)
    assert flight.waiters() == 0
    assert flight.do(work) is not outcomes[0]  # the next call runs afresh
    assert len(calls) == 2


def test_a_failed_call_fails_every_waiter_and_the_next_call_tries_again():
    flight, held, calls = SingleFlight(), threading.Event(), []

    def failing():
        calls.append(1)
        held.wait(30)
        raise RuntimeError("procfs went away")

    outcomes = run_together(lambda: flight.do(failing), held, flight.waiters)
    assert len(calls) == 1
    assert len(outcomes) == CALLERS and all(isinstance(o, RuntimeError) and "procfs went away" in str(o)
                                            for o in outcomes)
    assert flight.do(lambda: "fine") == "fine"  # nothing of the failure is left behind


def test_calls_of_different_keys_do_not_share():
    flight, held = SingleFlight(), threading.Event()
    first = threading.Thread(target=lambda: flight.do(lambda: held.wait(30), key="daemon"))
    first.start()
    until(lambda: "daemon" in flight._calls, "the first call to start")
    assert flight.do(lambda: "cli", key="cli") == "cli"  # not held by the daemon's call
    held.set()
    first.join(30)


class HeldSource(ProcfsSource):
    """The real procfs source, whose scan waits for an event before it reads /proc."""

    def __init__(self, roots, held: threading.Event):
        super().__init__(roots)
        self.held, self.scans = held, 0

    def scan(self, node, deadline):
        self.scans += 1
        self.held.wait(30)
        yield from super().scan(node, deadline)


def test_concurrent_scrapes_share_one_pass_over_proc():
    held = threading.Event()
    source = HeldSource(Roots(), held)
    collector = Collector(Roots(), default_config(), source=source)
    snaps = run_together(collector.collect, held, collector.waiting)
    assert source.scans == 1
    assert {s.sequence for s in snaps} == {1} and all(s is snaps[0] for s in snaps)
    assert collector.collect().sequence == 2
