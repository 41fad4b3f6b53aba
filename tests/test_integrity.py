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

from analysis import batch, config, io

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
        io.recover(out)  # what every reader does first (clean.load_tables)
        state = snapshot(out)
        assert state in (old, new), f"mixed outputs after a kill at {delay} s"
        seen.add("new" if state == new else "old")
        assert not list(out.glob(".*.tmp"))
        if state == new:  # go back to the old state for the next round
            shutil.rmtree(out)
            subprocess.run([sys.executable, "-m", "analysis", "clean", "--raw-dir", str(raw_old),
                            "--processed-dir", str(out)], capture_output=True, timeout=300, check=True)
    assert "old" in seen  # the kills did land before the commit at least once


def test_interrupted_commit_is_rolled_forward(tmp_path):
    """A kill between the renames of a commit: the journal lets the next run finish it."""
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "a.csv").write_text("old a")
    (folder / "b.csv").write_text("old b")
    st = io.Staging(folder)
    st.add("a.csv", lambda p: p.write_text("new a"))
    st.add("b.csv", lambda p: p.write_text("new b"))
    moves = {str(t.relative_to(folder)): str(f.relative_to(folder)) for f, t in st._staged.items()}
    (folder / io.JOURNAL).write_text(json.dumps(moves))
    first_tmp, first_final = next(iter(moves.items()))
    os.replace(folder / first_tmp, folder / first_final)  # the process died after the first rename
    assert {(folder / n).read_text() for n in ("a.csv", "b.csv")} == {"new a", "old b"} or \
        {(folder / n).read_text() for n in ("a.csv", "b.csv")} == {"old a", "new b"}
    io.recover(folder)
    assert (folder / "a.csv").read_text() == "new a" and (folder / "b.csv").read_text() == "new b"
    assert not (folder / io.JOURNAL).exists() and not list(folder.glob(".*.tmp"))


def test_failed_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("previous")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.write_atomic(target, broken)
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
    reports = tmp_path / "reports"
    (reports / ".old-2026").mkdir(parents=True)
    (reports / ".old-2026" / "04_report.html").write_text("previous")
    (reports / ".staging-2026-abc").mkdir()
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


def test_csv_parts_written_apart_join_into_the_csv_of_one_writer(tmp_path):
    """The projection workers each write their vintage's rows of verdicts.csv; joined in year order they must be
    the bytes one writer would have written (one byte order mark, one header), in a scratch folder that
    disappears at commit; a part with another header is refused."""
    frames = [pd.DataFrame({"as_of": [y] * 3, "status": ["on_track", "=x", None], "value": [1.5, 2.0, np.nan]})
              for y in (2024, 2025, 2026)]
    with io.CsvParts(tmp_path / "one.csv") as out:
        for frame in frames:
            out.write(frame)
    folder = tmp_path / "p"
    st = io.Staging(folder)
    scratch = st.scratch_dir()
    for frame in reversed(frames):  # written in any order
        with io.CsvParts(scratch / f"{frame['as_of'][0]}.csv") as out:
            out.write(frame)
    io.join_csv_parts([scratch / f"{y}.csv" for y in (2024, 2025, 2026)], st.reserve("joined.csv"))
    st.commit()
    assert (folder / "joined.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert not scratch.exists() and sorted(p.name for p in folder.iterdir()) == ["joined.csv"]
    with io.CsvParts(tmp_path / "other.csv") as out:
        out.write(frames[0].rename(columns={"value": "projected"}))
    with pytest.raises(ValueError, match="header differs"):
        io.join_csv_parts([tmp_path / "one.csv", tmp_path / "other.csv"], tmp_path / "bad.csv")


def test_the_commands_keep_freed_memory_and_can_give_it_back():
    """python -m analysis serves large arrays from the heap and keeps freed memory (allocator.py); it must
    take effect on this Linux machine and be harmless to repeat; giving memory back is always safe."""
    import subprocess
    import sys

    code = ("from analysis import allocator; a = allocator.keep_freed_memory(); b = allocator.keep_freed_memory(); "
            "allocator.release_free_memory(); import numpy as np; x = np.ones(50_000_000); del x; "
            "allocator.release_free_memory(); print(a, b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    expected = "True" if sys.platform.startswith("linux") else "False"
    assert out == [expected, expected]


def test_huge_pages_are_off_only_inside_the_block(monkeypatch):
    """The indicator computation turns numpy's huge pages off while it runs, and leaves the setting as it found
    it (on or off), also when the block fails."""
    from numpy._core import multiarray

    from analysis import indicators
    from analysis.allocator import without_huge_pages

    start = multiarray._get_madvise_hugepage()
    try:
        seen = []
        monkeypatch.setattr(indicators, "compute", lambda *a, **k: seen.append(multiarray._get_madvise_hugepage()))
        monkeypatch.setattr(indicators, "with_targets", lambda frame, targets, **k: frame)
        multiarray._set_madvise_hugepage(True)
        indicators.process({}, None, None)
        assert seen == [False] and multiarray._get_madvise_hugepage() is True
        for setting in (True, False):
            multiarray._set_madvise_hugepage(setting)
            with without_huge_pages():
                assert multiarray._get_madvise_hugepage() is False
            assert multiarray._get_madvise_hugepage() is setting
        multiarray._set_madvise_hugepage(True)
        with pytest.raises(RuntimeError), without_huge_pages():
            raise RuntimeError("boom")
        assert multiarray._get_madvise_hugepage() is True
    finally:
        multiarray._set_madvise_hugepage(start)
