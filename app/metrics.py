"""Prometheus metrics on a registry owned by the app (no process-global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
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
    """Values read at scrape time: documents per collection, queue depths, readiness."""

    def __init__(self, gauges: Callable[[], dict[str, list[tuple[dict[str, str], float]]]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, samples in self._gauges().items():
            labels = sorted(samples[0][0]) if samples else []
            family = GaugeMetricFamily(name, name.replace("_", " "), labels=labels)
            for label_values, value in samples:
                family.add_metric([label_values[k] for k in labels], value)
            yield family
