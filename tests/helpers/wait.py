"""Waiting on a condition, not on the clock: poll until it holds, fail saying what never did."""

import threading
import time

import pytest


def until(condition, what: str, timeout: float = 60.0, every: float = 0.01):
    """Return the first true value of condition(); fail the test after *timeout* seconds."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        pause.wait(every)
