"""The benchmark scripts keep working: their smallest runs, and the commands they time. Speed itself is
measured by the scripts (benchmarks/README.md), never asserted here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import config

BENCH = config.PROJECT_ROOT / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_bench_batch_times_what_an_analyst_types_and_the_batch(tmp_path):
    bench = load("bench_batch")
    papermill, nbconvert = bench.naive_commands(2026, "04_report", tmp_path)
    assert Path(papermill[0]).name == "papermill" and Path(papermill[0]).parent == Path(sys.executable).parent
    assert papermill[1:] == ["notebooks/04_report.ipynb", str(tmp_path / "2026" / "04_report.ipynb"), "-p", "year", "2026"]
    assert nbconvert[1:] == ["nbconvert", "--to", "html", "--no-input", str(tmp_path / "2026" / "04_report.ipynb")]
    cmd = bench.batch_command([2025, 2026], tmp_path, 2, ("01_clean",))
    assert cmd[1:4] == ["-m", "analysis", "batch"]
    assert cmd[cmd.index("--years") + 1] == "2025,2026" and cmd[cmd.index("--jobs") + 1] == "2"
    assert cmd[cmd.index("--notebooks") + 1] == "01_clean" and "--no-progress" in cmd


@pytest.mark.slow
def test_bench_batch_quick_run(sample_processed):
    """Both ways on the latest year's notebook 01 (about 30 s), outputs compared."""
    res = subprocess.run([sys.executable, str(BENCH / "bench_batch.py"), "--quick", "--processed-dir",
                          str(sample_processed)], capture_output=True, text=True, timeout=300, cwd=config.PROJECT_ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "same HTML files from both ways: yes" in res.stdout
    assert "median: batch" in res.stdout and "x faster" in res.stdout


def test_bench_batch_without_processed_data_says_what_to_run(tmp_path):
    """A clean clone has no data/processed/: the benchmark says which command to run, without a traceback."""
    res = subprocess.run([sys.executable, str(BENCH / "bench_batch.py"), "--quick", "--processed-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=config.PROJECT_ROOT)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "make data" in res.stderr and "python -m analysis indicators" in res.stderr
