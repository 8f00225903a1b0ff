"""Prometheus metrics, one set per app (no module-level state).

The counts are plain numbers, kept in a flat array of doubles, and turned into
Prometheus metrics only when ``/metrics`` is scraped (a custom collector): a
request adds to two or three of them, without prometheus-client's locks and
value objects. Under ``serve --workers N`` (N > 1) the array of each worker is
a small file in the folder ``PROMETHEUS_MULTIPROC_DIR`` names (``serve`` makes
it and sets the variable before the workers start), and a scrape of any worker
sums every worker's file: one view of the whole ``serve``.
"""

from __future__ import annotations

import bisect
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

#: The variable that names the folder of every worker's values (prometheus-client's own).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# The array: fixed numbers first, then one slot per token endpoint outcome (its name, in
# ASCII as every OAuth error code is, and its count), assigned as outcomes first occur.
_HIT, _MISS, _SUM, _COUNT, _BUCKETS = 0, 1, 2, 3, 4
_FIXED = _BUCKETS + len(LATENCY_BUCKETS) + 1  # +Inf
_NAME_BYTES = 32
_SLOT = _NAME_BYTES + 8
_OUTCOMES = 64  # about 20 can occur; a full table counts the rest as "other"
_SIZE = _FIXED * 8 + _OUTCOMES * _SLOT
_FILE_PREFIX = "authserver-numbers-"


class _Numbers:
    """One process's counts: in memory, or in its own file of the workers' folder."""

    def __init__(self, folder: str | None) -> None:
        if folder is None:
            self.buffer: bytearray | mmap.mmap = bytearray(_SIZE)
        else:
            path = Path(folder) / f"{_FILE_PREFIX}{os.getpid()}.bin"
            # A worker started again with the pid of one that died adds to its counts.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size != _SIZE:
                    os.ftruncate(fd, _SIZE)
                self.buffer = mmap.mmap(fd, _SIZE)
            finally:
                os.close(fd)
        self.fixed = memoryview(self.buffer)[: _FIXED * 8].cast("d")
        self.outcomes: dict[str, memoryview[float]] = {}
        for name, _ in outcome_slots(self.buffer):
            self._slot(name)

    def _slot(self, name: str) -> memoryview[float]:
        for index in range(_OUTCOMES - 1):  # the last slot is "other"'s
            start = _FIXED * 8 + index * _SLOT
            stored = bytes(self.buffer[start : start + _NAME_BYTES]).rstrip(b"\0")
            if stored == name.encode() or not stored:
                if not stored:
                    self.buffer[start : start + _NAME_BYTES] = name.encode().ljust(
                        _NAME_BYTES, b"\0"
                    )
                view = memoryview(self.buffer)[start + _NAME_BYTES : start + _SLOT].cast("d")
                self.outcomes[name] = view
                return view
        start = _FIXED * 8 + (_OUTCOMES - 1) * _SLOT
        self.buffer[start : start + _NAME_BYTES] = b"other".ljust(_NAME_BYTES, b"\0")
        return memoryview(self.buffer)[start + _NAME_BYTES : start + _SLOT].cast("d")

    def outcome(self, name: str) -> memoryview[float]:
        """The count of one outcome (a one-element view of the array)."""
        view = self.outcomes.get(name)
        if view is None:
            readable = name.isascii() and name.isprintable() and len(name) <= _NAME_BYTES
            view = self._slot(name if readable else "other")
            self.outcomes[name] = view
        return view


def outcome_slots(buffer: bytes | bytearray | mmap.mmap) -> Iterator[tuple[str, float]]:
    values = memoryview(buffer)
    for index in range(_OUTCOMES):
        start = _FIXED * 8 + index * _SLOT
        name = bytes(values[start : start + _NAME_BYTES]).rstrip(b"\0")
        if name:
            count = values[start + _NAME_BYTES : start + _SLOT].cast("d")[0]
            yield name.decode("ascii", "replace"), count


class _Collector(Collector):
    """The metrics from the arrays, made at scrape time: this process's or every worker's."""

    def __init__(self, numbers: _Numbers, folder: str | None) -> None:
        self.numbers = numbers
        self.folder = folder

    def arrays(self) -> list[bytes]:
        if self.folder is None:
            return [bytes(self.numbers.buffer)]
        arrays = []
        for path in Path(self.folder).glob(f"{_FILE_PREFIX}*.bin"):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if len(data) == _SIZE:
                arrays.append(data)
        return arrays

    def collect(self) -> Iterable[Metric]:
        fixed = [0.0] * _FIXED
        outcomes: dict[str, float] = {}
        for data in self.arrays():
            for index, value in enumerate(memoryview(data)[: _FIXED * 8].cast("d")):
                fixed[index] += value
            for name, count in outcome_slots(data):
                outcomes[name] = outcomes.get(name, 0.0) + count
        requests = CounterMetricFamily(
            "authserver_token_requests",
            "Token endpoint requests by outcome (issued or the OAuth error code)",
            labels=["outcome"],
        )
        for name, count in sorted(outcomes.items()):
            requests.add_metric([name], count)
        yield requests
        cumulative, buckets = 0.0, []
        for bound, count in zip(
            [*map(str, LATENCY_BUCKETS), "+Inf"], fixed[_BUCKETS:_FIXED], strict=True
        ):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "authserver_token_request_seconds",
            "Token endpoint latency",
            buckets=buckets,
            sum_value=fixed[_SUM],
        )
        lookups = CounterMetricFamily(
            "authserver_secret_cache_lookups",
            "Secret verifications answered by the verified-secret cache (hit) or argon2 (miss)",
            labels=["result"],
        )
        lookups.add_metric(["hit"], fixed[_HIT])
        lookups.add_metric(["miss"], fixed[_MISS])
        yield lookups


class Metrics:
    """The server's metrics."""

    def __init__(self) -> None:
        folder = os.environ.get(MULTIPROCESS_DIR) or None
        self._numbers = _Numbers(folder)
        self._fixed = self._numbers.fixed
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(self._numbers, folder))

    def token_answered(self, outcome: str, seconds: float) -> None:
        """One answer of the token endpoint: its outcome (issued or the OAuth error code) and
        how long it took."""
        self._numbers.outcome(outcome)[0] += 1
        fixed = self._fixed
        fixed[_BUCKETS + bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        fixed[_SUM] += seconds
        fixed[_COUNT] += 1

    def secret_cache_lookup(self, hit: bool) -> None:
        self._fixed[_HIT if hit else _MISS] += 1

    def exposition(self) -> bytes:
        """The Prometheus text of this process, or of every worker of this ``serve``."""
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
