"""The metrics' plain counts, turned into Prometheus text at scrape time."""

from __future__ import annotations

from pathlib import Path

import pytest

from authserver.runtime.metrics import MULTIPROCESS_DIR, Metrics


def sample(text: str, name: str) -> float:
    [line] = [row for row in text.splitlines() if row.startswith(name + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_a_scrape_shows_every_count_made_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR, raising=False)
    metrics = Metrics()
    metrics.token_answered("issued", 0.0015)
    metrics.token_answered("issued", 0.03)
    metrics.token_answered("invalid_client", 0.004)
    metrics.secret_cache_lookup(True)
    metrics.secret_cache_lookup(False)
    metrics.secret_cache_lookup(True)
    text = metrics.exposition().decode()
    assert sample(text, 'authserver_token_requests_total{outcome="issued"}') == 2
    assert sample(text, 'authserver_token_requests_total{outcome="invalid_client"}') == 1
    assert sample(text, 'authserver_token_request_seconds_bucket{le="0.001"}') == 0
    assert sample(text, 'authserver_token_request_seconds_bucket{le="0.002"}') == 1
    assert sample(text, 'authserver_token_request_seconds_bucket{le="0.005"}') == 2
    assert sample(text, 'authserver_token_request_seconds_bucket{le="+Inf"}') == 3
    assert sample(text, "authserver_token_request_seconds_count") == 3
    assert sample(text, "authserver_token_request_seconds_sum") == pytest.approx(0.0355)
    assert sample(text, 'authserver_secret_cache_lookups_total{result="hit"}') == 2
    assert sample(text, 'authserver_secret_cache_lookups_total{result="miss"}') == 1


def test_an_outcome_that_is_no_error_code_is_counted_as_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR, raising=False)
    metrics = Metrics()
    metrics.token_answered("bad\nname", 0.001)
    metrics.token_answered("x" * 40, 0.001)
    text = metrics.exposition().decode()
    assert sample(text, 'authserver_token_requests_total{outcome="other"}') == 2
    assert "bad" not in text


def test_workers_counts_in_one_folder_are_summed_by_any_scrape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sets of counts in the workers' folder (here, as after a worker restarted with the
    pid of one that ended, one file): a scrape of either shows them all."""
    monkeypatch.setenv(MULTIPROCESS_DIR, str(tmp_path))
    first = Metrics()
    first.token_answered("issued", 0.001)
    second = Metrics()
    second.token_answered("issued", 0.001)
    second.token_answered("invalid_scope", 0.001)
    for metrics in (first, second):
        text = metrics.exposition().decode()
        assert sample(text, 'authserver_token_requests_total{outcome="issued"}') == 2
        assert sample(text, 'authserver_token_requests_total{outcome="invalid_scope"}') == 1
        assert sample(text, "authserver_token_request_seconds_count") == 3


def test_a_scrape_sums_the_files_of_other_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROCESS_DIR, str(tmp_path))
    metrics = Metrics()
    metrics.token_answered("issued", 0.001)
    [own] = list(tmp_path.iterdir())
    (tmp_path / "authserver-numbers-1.bin").write_bytes(own.read_bytes())  # a second worker
    text = metrics.exposition().decode()
    assert sample(text, 'authserver_token_requests_total{outcome="issued"}') == 2
