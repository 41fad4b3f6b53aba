"""Nothing lost, nothing half-written: killed runs leave outputs as they were or fully updated, reruns are
byte-identical, raw files are never modified, and no code runs anything taken from a data file."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import atomic, batch, config

pytestmark = pytest.mark.slow


def snapshot(folder: Path) -> dict[str, str]:
    """Visible files and their hashes (hidden temporary files are the next run's to clean)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not any(part.startswith(".") for part in
                                                                           p.relative_to(folder).parts)}


def pipeline(raw: Path, out: Path) -> None:
    for step in ("clean", "indicators", "projections"):
        res = subprocess.run([sys.executable, "-m", "analysis", step, "--raw-dir", str(raw), "--processed-dir",
                              str(out)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def sample_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    for p in config.RAW_DIR.glob("*"):
        if p.is_file():
            shutil.copy(p, raw / p.name)
    return raw


def test_reruns_are_byte_identical_and_raw_files_untouched(sample_raw, tmp_path):
    before = snapshot(sample_raw)
    pipeline(sample_raw, tmp_path / "a")
    pipeline(sample_raw, tmp_path / "b")
    pipeline(sample_raw, tmp_path / "a")  # and over its own previous output
    a, b = snapshot(tmp_path / "a"), snapshot(tmp_path / "b")
    assert a == b and len(a) >= 10
    assert snapshot(sample_raw) == before


def test_killed_clean_leaves_the_old_or_the_new_outputs(sample_raw, tmp_path):
    out = tmp_path / "processed"
    raw_old = tmp_path / "raw_old"
    shutil.copytree(sample_raw, raw_old)
    (raw_old / "2025-2026.xlsx").unlink()
    res = subprocess.run([sys.executable, "-m", "analysis", "clean", "--raw-dir", str(raw_old), "--processed-dir",
                          str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0
    old = snapshot(out)
    new_dir = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "analysis", "clean", "--raw-dir", str(sample_raw), "--processed-dir",
                    str(new_dir)], capture_output=True, timeout=300, check=True)
    new = snapshot(new_dir)
    assert old != new
    seen = set()
    for delay in (0.3, 0.8, 1.3, 1.8, 2.3, 2.8, 3.5, 5.0):
        proc = subprocess.Popen([sys.executable, "-m", "analysis", "clean", "--raw-dir", str(sample_raw),
                                 "--processed-dir", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = snapshot(out)
        assert state in (old, new), f"mixed outputs after a kill at {delay} s"
        seen.add("new" if state == new else "old")
        if state == new:  # go back to the old state for the next round
            shutil.rmtree(out)
            subprocess.run([sys.executable, "-m", "analysis", "clean", "--raw-dir", str(raw_old),
                            "--processed-dir", str(out)], capture_output=True, timeout=300, check=True)
    assert "old" in seen  # the kills did land before the commit at least once


def test_a_failed_step_leaves_every_previous_output(tmp_path):
    """Several outputs of one step (``atomic.write_files``): when one fails to write, none is replaced."""
    folder = tmp_path / "p"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_text(f"old {name}")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic.write_files({folder / "a.csv": lambda p: p.write_text("new a"), folder / "b.csv": broken})
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"a.csv": "old a.csv", "b.csv": "old b.csv"}


def test_failed_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("previous")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic.write_file(target, broken)
    assert target.read_text() == "previous" and not list(tmp_path.glob(".*.tmp"))


def test_killed_batch_leaves_reports_as_they_were(tmp_path):
    reports = tmp_path / "reports"
    (reports / "2026").mkdir(parents=True)
    (reports / "2026" / "04_report.html").write_text("the report of the previous run")
    before = snapshot(reports)
    proc = subprocess.Popen([sys.executable, "-m", "analysis", "batch", "--years", "2026", "--reports-dir",
                             str(reports), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(6)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch, its workers and their kernels
    proc.wait()
    assert snapshot(reports) == before
    batch.recover(reports)
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]
    assert snapshot(reports) == before


def test_interrupted_swap_is_put_back(tmp_path):
    """A batch killed between moving a year's old folder aside and moving the new one in: the next run puts
    the old one back and drops the abandoned staging folder."""
    reports = tmp_path / "reports"
    (reports / ".2026.old").mkdir(parents=True)
    (reports / ".2026.old" / "04_report.html").write_text("previous")
    (reports / ".2026.abc.tmp").mkdir()
    batch.recover(reports)
    assert (reports / "2026" / "04_report.html").read_text() == "previous"
    assert sorted(p.name for p in reports.iterdir()) == ["2026"]


def test_no_code_runs_text_from_data_files():
    """No eval/exec, no shell, no pickle of inputs anywhere in the package or the notebooks."""
    sources = list((config.PROJECT_ROOT / "src" / "analysis").glob("*.py"))
    sources += list(config.NOTEBOOKS_DIR.glob("*.ipynb"))
    pattern = re.compile(r"\b(eval|exec)\s*\(|shell\s*=\s*True|os\.system\(|pickle\.loads?\(|yaml\.load\(")
    offenders = [f"{p.name}: {m.group(0)}" for p in sources for m in pattern.finditer(p.read_text(encoding="utf-8"))]
    assert not offenders
