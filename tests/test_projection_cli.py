"""`python -m analysis project` (DESIGN §6): outputs, and bad input that never ends in a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import projection, verdicts
from analysis.__main__ import main

GOOD = "series_id,year,value,lower,upper\n" + "".join(
    f"CT16,{y},{v},0,100\n" for y, v in zip(range(2021, 2027), [97.0, 97.5, 98.1, 98.4, 98.9, 99.0])) + "".join(
    f"CT18B,{y},{v},0,100\n" for y, v in zip(range(2021, 2027), [0.2, 0.18, 0.15, 0.16, 0.12, 0.1]))
TARGETS = "series_id,target_year,target_value,direction\nCT16,2025,99.1,increase\nCT16,2030,99.3,increase\n" \
          "CT18B,2030,0.05,decrease\nCT18B,2025,,decrease\n"


def run(tmp_path: Path, text: str | None, *extra: str, name: str = "in.csv"):
    src = tmp_path / name
    if text is not None:
        src.write_text(text, encoding="utf-8")
    out = tmp_path / "out.csv"
    code = main(["project", str(src), "-o", str(out), *extra])
    return code, out


def test_projects_and_judges(tmp_path, capsys):
    (tmp_path / "targets.csv").write_text(TARGETS, encoding="utf-8")
    status = tmp_path / "status.csv"
    code, out = run(tmp_path, GOOD, "--targets", str(tmp_path / "targets.csv"), "--status", str(status))
    assert code == 0
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # plain UTF-8 for programs
    proj = pd.read_csv(out)
    assert list(proj.columns[:8]) == projection.OUTPUT_COLUMNS
    assert sorted(proj["year"].unique()) == [2027, 2028, 2029, 2030]
    assert (proj["method"] == "auto").all()
    verdict = pd.read_csv(status).set_index(["series_id", "target_year"])
    assert list(pd.read_csv(status).columns[:6]) == verdicts.STATUS_COLUMNS
    assert list(pd.read_csv(status).columns) == verdicts.STATUS_COLUMNS + verdicts.STATUS_EXTRA_COLUMNS
    assert verdict.loc[("CT16", 2025), "status"] == "not_met"  # 98.9 observed < 99.1
    assert verdict.loc[("CT16", 2025), "label"] == "Không đạt"
    assert verdict.loc[("CT18B", 2025), "status"] == "no_target"  # blank target_value: none set
    assert verdict.loc[("CT18B", 2025), "label"] == "Không đặt chỉ tiêu"
    assert set(verdict["status"]) <= set(verdicts.STATUSES)
    # pace from each series' first year by default
    assert verdict.loc[("CT16", 2030), "baseline_year"] == 2021
    assert verdict.loc[("CT16", 2030), "status"] in ("on_track", "needs_acceleration", "regressing")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave nothing behind


def test_baseline_option(tmp_path, capsys):
    (tmp_path / "targets.csv").write_text(TARGETS, encoding="utf-8")
    status = tmp_path / "status.csv"
    code, _ = run(tmp_path, GOOD, "--targets", str(tmp_path / "targets.csv"), "--status", str(status),
                  "--baseline", "2023", "--lang", "en")
    assert code == 0
    verdict = pd.read_csv(status).set_index(["series_id", "target_year"])
    row = verdict.loc[("CT18B", 2030)]  # 0.15 in 2023, 0.1 in 2026
    assert row["baseline_year"] == 2023 and row["baseline_value"] == 0.15
    assert row["change_per_year_since_baseline"] == pytest.approx((0.1 - 0.15) / 3)
    assert row["aarr_required"] == pytest.approx((1 - (0.05 / 0.1) ** (1 / 4)) * 100)
    assert row["label"] == verdicts.status_label(row["status"], "en", row["grade"] if isinstance(row["grade"], str)
                                                 else None)
    # --baseline belongs to the verdict
    code, _ = run(tmp_path, GOOD, "--baseline", "2023")
    assert code == 2 and "--baseline" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, GOOD, "--targets", str(tmp_path / "targets.csv"), "--status", str(status), "--baseline", "x")
    assert exit_.value.code == 2


def test_help_lists_the_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["project", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for word in ("achieved", "not_met", "on_track", "needs_acceleration", "regressing", "no_target",
                 "insufficient_data", "--baseline"):
        assert word in text


def test_until_and_method(tmp_path):
    code, out = run(tmp_path, GOOD, "--until", "2028", "--method", "linear", "--quantiles")
    proj = pd.read_csv(out)
    assert code == 0 and proj["year"].max() == 2028 and (proj["method"] == "linear").all()
    assert {"q01", "q99"} <= set(proj.columns)


def test_one_point_gives_an_insufficient_data_row(tmp_path):
    code, out = run(tmp_path, "series_id,year,value\nx,2025,50\n" + GOOD.split("\n", 1)[1].replace(",0,100", ""))
    proj = pd.read_csv(out)
    assert code == 0
    rows = proj[proj["series_id"] == "x"]
    assert (rows["method"] == "insufficient_data").all() and rows["value"].isna().all()


def test_value_outside_bounds_is_left_out_with_a_warning(tmp_path, capsys):
    code, out = run(tmp_path, GOOD.replace("CT16,2023,98.1,0,100", "CT16,2023,120,0,100"))
    err = capsys.readouterr().err
    assert code == 0
    assert "CT16" in err and "2023" in err and "120" in err and "Traceback" not in err
    proj = pd.read_csv(out)
    assert (proj.loc[proj["series_id"] == "CT16", "n_points"] == 5).all()
    assert "outside" in proj.loc[proj["series_id"] == "CT16", "method_reason"].iloc[0]


@pytest.mark.parametrize("text, needle", [
    ("series_id,value\nx,1\n", "year"),                                      # missing column
    ("series_id,year,value\nx,2020,1\nx,2021,abc\n", "abc"),                # text in value
    ("series_id,year,value\nx,2020,1,5\n", "decimal comma"),                # more fields than the header
    ("series_id,year,value\nx,2020,1\nx,2020,2\n", "Duplicate year"),       # duplicate year
    ("series_id,year,value\nx,2020.5,1\n", "whole number"),                 # year not an integer
    ("", "empty"),                                                           # empty file
    ("series_id,year,value\n", "no data rows"),                             # header only
])
def test_bad_input_is_a_clear_message(tmp_path, capsys, text, needle):
    code, out = run(tmp_path, text)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "LỖI / ERROR" in err
    assert not out.exists()


def test_missing_file_and_incomplete_options(tmp_path, capsys):
    code, _ = run(tmp_path, None, name="nowhere.csv")
    assert code == 2 and "not found" in capsys.readouterr().err
    code, _ = run(tmp_path, GOOD, "--targets", str(tmp_path / "t.csv"))
    assert code == 2 and "--status" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text("series_id,target_year,target_value,direction\nCT16,2030,99,up\n")
    code, _ = run(tmp_path, GOOD, "--targets", str(tmp_path / "t.csv"), "--status", str(tmp_path / "s.csv"))
    assert code == 2 and "increase or decrease" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, GOOD, "--method", "prophet")
    assert exit_.value.code == 2


def test_the_real_command_never_shows_a_traceback(tmp_path):
    """End to end through `python -m analysis`, as a user (or the backtest script) runs it."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text("series_id,year,value\nx,2020,1\nx,2021,một\n", encoding="utf-8")
    ok = subprocess.run([sys.executable, "-m", "analysis", "project", str(good), "-o", str(tmp_path / "o.csv")],
                        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0 and (tmp_path / "o.csv").exists()
    fail = subprocess.run([sys.executable, "-m", "analysis", "project", str(bad), "-o", str(tmp_path / "p.csv")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert fail.returncode == 2 and "một" in fail.stderr and "Traceback" not in fail.stderr
