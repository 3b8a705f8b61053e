"""The declarations of exporter/metrics.py rendered as text, the way prometheus_client would.

prometheus_client builds a Sample (a dict of labels) for every sample and formats
each label of each sample anew: about 18 us a sample here, more than a whole
pass of the BPF source on a small node. This renders the same declarations
straight to text: each process's, group's and pool's labels are escaped once
and reused by all of its samples. The output is byte for byte what
prometheus_client writes, in the Prometheus text format 0.0.4 and in
OpenMetrics 1.0.0 (tests/test_exposition.py holds both to it), so the golden
files and every parser see no difference. A family unchanged since the last render
(the same objects, labels and values) is not formatted again (render()'s memo).
"""

from typing import Callable

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.utils import floatToGoString

from exporter.metrics import SCOPES, Context, Metric, ReloadState

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if openmetrics else text


def _names(metric: Metric, openmetrics: bool) -> tuple[str, str, str]:
    """(family name for HELP and TYPE, its type, the sample name) in one format."""
    name = metric.name
    if metric.type == "counter":
        return (name.removesuffix("_total") if openmetrics else name), "counter", name
    if metric.type == "info":
        return (name.removesuffix("_info"), "info", name) if openmetrics else (name, "gauge", name)
    return name, "gauge", name


def _order(scope_labels: tuple[str, ...], extra: tuple[str, ...]) -> list[tuple[bool, int]]:
    """Where each label goes, in sorted order (as prometheus_client writes them):
    (from the object's labels?, index)."""
    named = [(n, True, i) for i, n in enumerate(scope_labels)] + [(n, False, i) for i, n in enumerate(extra)]
    return [(own, i) for _, own, i in sorted(named)]


def _zero_float(values) -> bool:
    """Whether a float 0 is among *values*: -0.0 == 0.0, so such a family is not compared."""
    return any(type(v) is float and not v for v in values)


def render(ctx: Context, openmetrics: bool = False, memo: dict | None = None) -> bytes:
    """Every declared metric with the samples of *ctx*, in one format.

    With *memo* (one per format, kept by the caller between renders), a family whose
    objects, labels and values are all those of the last render is not formatted
    again: its text is reused. Between two scrapes most families of a node are
    unchanged, and formatting is most of a render. The memo holds one render's text."""
    out: list[str] = []
    append = out.append
    for scope in SCOPES:
        objects = list(scope.objects(ctx))
        labels = scope.labels
        own = tuple(tuple(scope.label_values(obj)) for obj in objects)
        texts = None  # the objects' escaped label texts, made only if a family must be formatted
        for metric in scope.metrics:
            if metric.samples is not None:
                data = tuple(tuple(metric.samples(obj)) for obj in objects)
                exact = not any(_zero_float([v for _, v in samples]) for samples in data)
            else:
                data = tuple(metric.value(obj) for obj in objects)
                exact = not _zero_float(data)
            key = (own, data)
            if memo is not None and exact:
                hit = memo.get(metric.name)
                if hit is not None and hit[0] == key:
                    append(hit[1])
                    continue
            if texts is None:
                texts = _label_texts(labels, own)
            text = _family(metric, openmetrics, labels, texts, data)
            if memo is not None:
                if exact:
                    memo[metric.name] = (key, text)
                else:  # kept, it would match a later 0 (int): -0.0 == 0, and its text says "-0.0"
                    memo.pop(metric.name, None)
            append(text)
    return "".join(out).encode("utf-8")


def _label_texts(labels: tuple[str, ...], own: tuple) -> tuple[list, list]:
    """Per object: its 'name="escaped value"' pairs, and their sorted join (made once for
    all the object's samples)."""
    pairs = [[f'{n}="{_escape(v)}"' for n, v in zip(labels, values)] for values in own]
    sorted_own = [i for _, i in _order(labels, ())]
    return pairs, [",".join(p[i] for i in sorted_own) for p in pairs]


def _family(metric: Metric, openmetrics: bool, labels: tuple[str, ...], texts: tuple[list, list],
            data: tuple) -> str:
    """One family's HELP, TYPE and samples, from its objects' values (or samples)."""
    pairs, plain = texts
    family, kind, sample_name = _names(metric, openmetrics)
    out = [f"# HELP {family} {_help(metric.help, openmetrics)}\n# TYPE {family} {kind}\n"]
    append = out.append
    if metric.samples is not None:
        extra = metric.labels
        order = _order(labels, extra)
        for own, samples in zip(pairs, data):
            for values, value in samples:
                mine = [f'{n}="{_escape(v)}"' for n, v in zip(extra, values)]
                text = ",".join(own[i] if is_own else mine[i] for is_own, i in order)
                append(f"{sample_name}{{{text}}} {floatToGoString(value)}\n")
        return "".join(out)
    for value, text in zip(data, plain):
        if value is None:
            continue
        if metric.type == "info":  # its value is its labels; the sample is 1
            info = ",".join(sorted([*(f'{n}="{_escape(v)}"' for n, v in value.items()),
                                    *([text] if text else [])]))
            append(f"{sample_name}{{{info}}} 1.0\n")
        elif text:
            append(f"{sample_name}{{{text}}} {floatToGoString(value)}\n")
        else:
            append(f"{sample_name} {floatToGoString(value)}\n")
    return "".join(out)


class Exposition:
    """What /metrics serves and the textfile mode writes: the declared metrics of one pass,
    then the daemon's own process_* (prometheus_client's ProcessCollector, small and fixed).

    The format follows the scraper's Accept header as prometheus_client negotiates it:
    OpenMetrics when asked for (Prometheus asks first), else the text format 0.0.4.
    """

    def __init__(self, collector, reload_state: Callable[[], ReloadState] | None = None,
                 own_process: bool = True):
        self._collector = collector
        self._reload = reload_state
        self._own = CollectorRegistry(auto_describe=True)
        if own_process:
            ProcessCollector(registry=self._own)
        self._memo: tuple[dict, dict] = ({}, {})  # render()'s, for the text format and OpenMetrics

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) for an Accept header; runs (or joins) one pass."""
        openmetrics = choose_encoder(accept)[1].startswith("application/openmetrics-text")
        ctx = Context(self._collector.collect(), self._reload() if self._reload else None)
        own = (openmetrics_latest if openmetrics else generate_latest)(self._own)  # OpenMetrics: with # EOF
        return render(ctx, openmetrics, self._memo[openmetrics]) + own, OPENMETRICS if openmetrics else TEXT
