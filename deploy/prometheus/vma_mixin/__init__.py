"""The rules source of vma-exporter: one config, recording rules, alerts.

``config.py`` holds every selector, threshold and duration; ``recording.py``
and ``alerts.py`` build the rules from it; ``render.py`` writes them as a
Prometheus rules file and as a Kubernetes PrometheusRule. tools/generate.py
writes the checked-in copies; nothing here touches files.
"""

import copy
import re

from vma_mixin import alerts, config, recording

# One group: Prometheus evaluates the rules of a group in order, at one timestamp, so the
# alerts read the ratios recorded in the same evaluation. Separate groups run on their own
# tickers in no fixed order, and an alert could read a ratio one interval old.
GROUP = "vma-exporter"

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(text: str) -> float:
    """A Prometheus duration ("1h30m", "15m", "90s") in seconds; ValueError if malformed."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def groups(for_cap: str | None = None) -> list[dict]:
    """The rule groups, as Prometheus reads them.

    *for_cap* shortens every ``for:`` longer than it to it, and nothing else: the
    end-to-end test runs the real expressions and thresholds with for-durations of
    seconds instead of minutes.
    """
    out = [{"name": GROUP, "rules": recording.rules() + alerts.rules()}]
    if config.GROUP_INTERVAL:
        for g in out:
            g["interval"] = config.GROUP_INTERVAL
    if for_cap is not None:
        cap = duration_seconds(for_cap)
        out = copy.deepcopy(out)
        for g in out:
            for rule in g["rules"]:
                if "for" in rule and duration_seconds(rule["for"]) > cap:
                    rule["for"] = for_cap
    return out


def alert_names() -> list[str]:
    """Distinct alert names, in rule order."""
    names: list[str] = []
    for rule in alerts.rules():
        if rule["alert"] not in names:
            names.append(rule["alert"])
    return names
