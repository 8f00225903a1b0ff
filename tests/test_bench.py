"""The benchmark script runs end to end on a tiny load (the real runs are in docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("token", "introspection", "cold", "default_workers", "scale_200", "scale_400")


def test_bench_smoke_measures_every_scenario(tmp_path: Path) -> None:
    """Needs wrk, which scripts/test installs."""
    results_file = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--json", str(results_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(results_file.read_text())["authserver"]
    for scenario in SCENARIOS:
        assert results[scenario]["rps"] > 0, scenario
        assert results[scenario]["errors"] == 0, scenario
    assert results["cold"]["cold_credentials"] == 2
    assert "serve default (" in run.stdout
    assert results["scale_400"]["startup_s"] > 0
    assert results["scale_400"]["rss_mib"] > 0


def test_bench_soak_reports_memory(tmp_path: Path) -> None:
    results_file = tmp_path / "soak.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--soak",
            "2",
            "--json",
            str(results_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    samples = json.loads(results_file.read_text())["soak"]
    assert len(samples) >= 2
    assert all(sample["rss_mib"] > 0 for sample in samples)


def test_bench_baseline_compares_the_token_path_with_another_checkout(tmp_path: Path) -> None:
    """This checkout against itself: both servers answer, and the ratio is printed."""
    results_file = tmp_path / "baseline.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--baseline", str(ROOT)]
        + ["--json", str(results_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(results_file.read_text())["baseline"]
    assert result["rps"] > 0 and result["baseline_rps"] > 0
    assert result["errors"] == result["baseline_errors"] == 0
    assert f"against {ROOT}'s" in run.stdout


def test_bench_compare_counts_cpu_per_request_of_each_server(tmp_path: Path) -> None:
    """--compare: this checkout against another run of it, side by side, CPU per request."""
    results_file = tmp_path / "compare.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--compare",
            f"again={sys.executable}:{ROOT}",
            "--json",
            str(results_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(results_file.read_text())["compare"]
    for scenario in ("token", "introspection"):
        for label in ("this", "again"):
            measured = results[scenario][label]
            assert measured["rps"] > 0 and measured["errors"] == 0, (scenario, label)
            assert measured["cpu_us"] > 0, (scenario, label)


def test_inprocess_lever_reports_cpu_per_request_on_and_off(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "inprocess.py"),
            "--lever",
            "lines",
            "--rounds",
            "1",
            "--batch",
            "32",
            "--credentials",
            "2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "lever lines: 1 alternating batches of 32 token requests" in run.stdout
