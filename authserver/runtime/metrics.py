"""Prometheus metrics, one registry per app (no module-level state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class _CacheCollector(Collector):
    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        hits, misses = self._read()
        family = CounterMetricFamily(
            "authserver_secret_cache_lookups",
            "Secret verifications answered by the verified-secret cache (hit) or argon2 (miss)",
            labels=["result"],
        )
        family.add_metric(["hit"], hits)
        family.add_metric(["miss"], misses)
        yield family


class Metrics:
    """The server's metrics."""

    def __init__(self, cache_stats: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry()
        self.token_requests = Counter(
            "authserver_token_requests",
            "Token endpoint requests by outcome (issued or the OAuth error code)",
            ["outcome"],
            registry=self.registry,
        )
        self.token_latency = Histogram(
            "authserver_token_request_seconds",
            "Token endpoint latency",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.registry.register(_CacheCollector(cache_stats))
        self._outcomes: dict[str, Counter] = {}

    def token_outcome(self, outcome: str) -> Counter:
        """The counter of one token endpoint outcome (looked up once per outcome)."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.token_requests.labels(outcome=outcome)
        return child
