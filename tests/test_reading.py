"""What readers notice: charts (one tick format per axis, no overlapping labels, bars from zero), words
(no technical terms, no sampling intervals around census counts, the plain Vietnamese wording), the command
line's help, and a notebook asked for a year without data."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from analysis import config, plots
from analysis import report as rp
from analysis.__main__ import COMMANDS, main
from analysis.indicators import load_indicators, registry
from analysis.targets import load_targets


@pytest.fixture(scope="module")
def ind(sample_processed):
    return load_indicators(sample_processed)


@pytest.mark.parametrize("ticks, labels", [
    ([0.0, 0.5, 1.0, 1.5], ["0,0%", "0,5%", "1,0%", "1,5%"]),  # never '0,50%' beside '1,5%'
    ([0.0, 0.25, 0.5], ["0,00%", "0,25%", "0,50%"]),
    ([94.0, 96.0, 98.0, 100.0], ["94%", "96%", "98%", "100%"]),
])
def test_one_tick_format_per_axis(ticks, labels):
    fmt = plots.PercentFormatter("vi")
    fmt.set_locs(ticks)
    assert [fmt(v) for v in ticks] == labels


def test_target_values_are_in_the_legend_not_beside_the_points(ind):
    """CT15 in 2025: the observed 99,3% and the 2025 target of 99,1% sat on the same spot."""
    fig = plots.trend_chart(ind, "CT15", load_targets(), "vi", until=2025)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["99,3%"]  # the latest value only
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Chỉ tiêu 2025: ≥ 99,1%" in legend and "Chỉ tiêu 2030: ≥ 99,3%" in legend
    plots.plt.close(fig)
    fig = plots.trend_chart(ind, "CT15", load_targets(), "vi")
    assert not any(c.get_label().startswith("_child") and hasattr(c, "get_paths") and c.get_alpha() is None
                   for c in fig.axes[0].collections if type(c).__name__ == "PolyCollection"), "no interval band"
    plots.plt.close(fig)


@pytest.mark.parametrize("iid", ["CT15", "CT17B", "CT07"])
def test_ward_bars_start_at_zero_and_show_their_counts(ind, iid):
    fig = plots.ward_chart(ind, iid, 2025, load_targets(), "vi")
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0
    labels = [t.get_text() for t in ax.texts if not t.get_text().startswith("ẩn")]
    assert labels and all(re.fullmatch(r"[\d,]+% \([\d.]+/[\d.]+\)", s) for s in labels), labels
    assert "của thị xã" in ax.get_legend().get_texts()[0].get_text()  # the plan sets no ward targets
    plots.plt.close(fig)


def test_no_sampling_interval_around_census_counts(ind):
    for table in (rp.indicator_table(ind, 2025, "vi"), rp.ward_table(ind, "CT16", 2025, "vi")):
        assert not [c for c in table.columns if "tin cậy" in c or "interval" in c.lower()]
    vi = " ".join(entry["vi"] for entry in rp._labels().values())
    assert "sai số chọn mẫu" not in vi.lower() and "khoảng tin cậy 95%" not in vi.lower()
    assert "Khoảng dự báo 80%" in rp.t("band80") and "không phải mẫu điều tra" in rp.t("methods_projection")


def test_plain_vietnamese_wording():
    vi = " ".join(entry["vi"] for entry in rp._labels().values())
    for phrase in ("điểm %", "Cơ sở cần hành động", "kiểm định", "xu thế giảm dần", "số trẻ khuyết tật dưới 5",
                   "benchmarks/README.md", "<5"):
        assert phrase not in vi, phrase
    assert "xu thế chậm dần" in rp.t("methods_projection") and "ít hơn 5 em" in rp.t("methods_suppression")
    annex = rp.indicator_meta_table("vi")["Chỉ tiêu"].tolist()
    assert not [i for i in annex if "_" in i]  # 'CT17A (đối chiếu)', not CT17A_COHORT


def test_the_quality_table_counts_what_the_history_counts(sample_processed):
    """'No problems' must not stand beside a history that counts a note for that year."""
    from analysis.clean import load_tables

    quality = load_tables(sample_processed)["quality"]
    for year in sorted(quality["year"].unique()):
        shown = len(rp.quality_table(quality, year, "vi"))
        history = rp.quality_summary(quality, "vi").set_index("Năm báo cáo")
        row = history.loc[[k for k in history.index if str(k) == str(year)][0]]
        assert shown == sum(c.value for c in row), year


def test_help_is_bilingual_and_names_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS) and "projections" in out
    assert "``" not in out and "DESIGN" not in out and "các bước" in out and "the steps" in out
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    out = capsys.readouterr().out
    options = re.findall(r"^  (--[\w-]+|-h, --help).*?(?=^  -|\Z)", out, flags=re.M | re.S)
    assert len(options) >= 8
    for block in re.split(r"\n  (?=-)", out.split("tùy chọn / options:")[1])[1:]:
        assert " / " in " ".join(block.split()), block  # Vietnamese / English


def test_clean_says_what_to_run_next(tmp_path, capsys):
    assert main(["clean", "--processed-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "Bước tiếp theo / next step: python -m analysis indicators")


@pytest.mark.slow
def test_a_notebook_asked_for_a_missing_year_shows_the_message_alone(sample_processed, tmp_path):
    """In JupyterLab (and papermill), the bilingual message without a traceback around it."""
    out = tmp_path / "nb.ipynb"
    res = subprocess.run([sys.executable, "-m", "papermill", "notebooks/02_indicators.ipynb", str(out),
                          "-p", "year", "1999", "-p", "processed_dir", str(sample_processed), "--no-progress-bar"],
                         capture_output=True, text=True, timeout=300, cwd=config.PROJECT_ROOT)
    assert res.returncode != 0
    errors = [o for c in json.loads(out.read_text(encoding="utf-8"))["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert len(errors) == 1
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0]["traceback"])).strip()
    assert shown.startswith("LỖI / ERROR: Chưa có số liệu năm báo cáo 1999") and "\n" not in shown
    assert "No data for reporting year 1999" in shown and "Traceback" not in shown


def test_every_indicator_has_a_decimal_rule():
    assert all(isinstance(spec.decimals, int) for spec in registry().values())
    assert pd.notna(rp.decimals_near(0.0996, [0.1], 2))
