"""Prometheus metrics on a registry owned by the app (no process-global state)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class Metrics:
    def __init__(self, gauges: Callable[[], dict[str, list[tuple[dict[str, str], float]]]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lsr_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lsr_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.registry.register(_GaugeCollector(gauges))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class _GaugeCollector(Collector):
    """Values read at scrape time: documents per collection, queue depths, readiness, live
    recall. A name ending in ``_total`` is exported as a counter (its value only grows)."""

    def __init__(self, gauges: Callable[[], dict[str, list[tuple[dict[str, str], float]]]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, samples in self._gauges().items():
            labels = sorted(samples[0][0]) if samples else []
            kind = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
            family = kind(name, HELP.get(name, name.replace("_", " ")), labels=labels)
            for label_values, value in samples:
                family.add_metric([label_values[k] for k in labels], value)
            yield family


HELP = {
    "lsr_recall_estimate": "live Recall@10 of served searches (mean over the sampled window)",
    "lsr_recall_ci_low": "lower end of the live recall estimate's confidence interval",
    "lsr_recall_ci_high": "upper end of the live recall estimate's confidence interval",
    "lsr_recall_samples": "sampled searches in the live recall estimate",
    "lsr_recall_target": "the collection's target_recall",
    "lsr_recall_moves_total": "moves of the collection's setting along its calibrated front",
    "lsr_recall_samples_dropped_total": "samples dropped because the queue was full",
    "lsr_searches_total": "search answers served (searches of a batch count one each)",
    "lsr_certified_total": "search answers certified exact (exact mode, or certify: true)",
}


def recall_gauges(service: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Live recall of every collection that has served a search (``service``: the
    :class:`app.services.search.SearchService`)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {
        name: [] for name in HELP if name != "lsr_recall_samples_dropped_total"
    }
    for name, live in sorted(service.recall.states().items()):
        snap = live.snapshot()
        label = {"collection": name}
        estimate = snap["estimate"]
        out["lsr_recall_estimate"].append((label, math.nan if estimate is None else estimate))
        out["lsr_recall_ci_low"].append((label, snap["ci_low"]))
        out["lsr_recall_ci_high"].append((label, snap["ci_high"]))
        out["lsr_recall_samples"].append((label, float(snap["samples"])))
        if snap["target"] is not None:
            out["lsr_recall_target"].append((label, snap["target"]))
        out["lsr_recall_moves_total"].append((label, float(snap["moves"])))
        out["lsr_searches_total"].append((label, float(snap["searches"])))
        out["lsr_certified_total"].append((label, float(snap["certified"])))
    out["lsr_recall_samples_dropped_total"] = [({}, float(service.recall.dropped))]
    return {name: samples for name, samples in out.items() if samples}
