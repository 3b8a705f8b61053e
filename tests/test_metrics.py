"""exporter/metrics.py: one declaration per metric, and the README documents each.

The declarations are the metric contract: names follow Prometheus conventions
(base units, _total only on counters), every metric has help text, and the
README's metric tables name exactly the declared metrics, no more and no fewer.
"""

import os
import re

from exporter.metrics import PROCESS_LABELS, SCOPES, declared

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
UNITS = ("_bytes", "_seconds", "_total", "_info", "_ratio")


def readme_metrics() -> set[str]:
    """Names in the first column of the README's tables under '## Metrics'."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("\n## Metrics"):]
    section = section[: section.index("\n## ", 1)]
    return set(re.findall(r"^\| `(vma_[a-z_]+)` \|", section, re.M))


def test_every_declared_metric_is_in_the_readme_and_nothing_else():
    names = {m.name for m in declared()}
    documented = readme_metrics()
    assert names - documented == set(), "declared but not documented in README.md"
    assert documented - names == set(), "documented in README.md but not declared"


def test_names_follow_prometheus_conventions():
    seen = set()
    for m in declared():
        assert m.name not in seen, f"{m.name} declared twice"
        seen.add(m.name)
        assert re.fullmatch(r"vma_(node|process|group|exporter)_[a-z_]+", m.name), m.name
        assert m.help and m.help.endswith("."), m.name
        assert m.name.endswith("_total") == (m.type == "counter"), m.name
        assert m.name.endswith("_info") == (m.type == "info"), m.name
        assert not m.name.endswith("_sum") and not m.name.endswith("_count"), m.name
        assert "kb" not in m.name.split("_") and "mb" not in m.name.split("_"), f"{m.name}: base units"
        assert (m.value is None) != (m.samples is None), f"{m.name}: one value or several samples"
        assert bool(m.labels) == (m.samples is not None), f"{m.name}: extra labels come with samples"


def test_every_per_process_metric_carries_the_process_labels():
    process = next(s for s in SCOPES if s.labels == PROCESS_LABELS)
    assert {m.name for m in process.metrics} == {m.name for m in declared() if m.name.startswith("vma_process_")}
