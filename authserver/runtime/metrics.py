"""Prometheus metrics, one registry per app (no module-level state).

Under ``serve --workers N`` (N > 1) every worker writes its values to files in
the folder ``PROMETHEUS_MULTIPROC_DIR`` names (prometheus-client's
multiprocess mode, chosen when the library is imported: ``serve`` sets the
variable before it starts the workers), and a scrape of any worker reads all
of them: one view of the whole ``serve``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

#: The variable that names the folder of every worker's values (prometheus-client's own).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The server's metrics."""

    def __init__(self) -> None:
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
        lookups = Counter(
            "authserver_secret_cache_lookups",
            "Secret verifications answered by the verified-secret cache (hit) or argon2 (miss)",
            ["result"],
            registry=self.registry,
        )
        self._lookups = {result: lookups.labels(result=result) for result in ("hit", "miss")}
        self._outcomes: dict[str, Counter] = {}

    def token_outcome(self, outcome: str) -> Counter:
        """The counter of one token endpoint outcome (looked up once per outcome)."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.token_requests.labels(outcome=outcome)
        return child

    def secret_cache_lookup(self, hit: bool) -> None:
        self._lookups["hit" if hit else "miss"].inc()

    def exposition(self) -> bytes:
        """The Prometheus text of this process, or of every worker of this ``serve``."""
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


@contextmanager
def one_view_of_the_workers(processes: int) -> Iterator[None]:
    """For ``serve`` with more than one worker: a new, empty folder for every worker's
    values (removed when ``serve`` ends), named in the environment the workers inherit.

    A folder of its own each time, so no earlier run's counters are ever added in. One
    worker keeps its values in memory.
    """
    if processes == 1:
        os.environ.pop(MULTIPROCESS_DIR, None)
        yield
        return
    folder = tempfile.mkdtemp(prefix="authserver-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
