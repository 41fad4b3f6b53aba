"""End to end: the pipeline on the sample, then the batch for two years with one made to fail."""

from __future__ import annotations

import json
import re
import shutil

import openpyxl
import pandas as pd
import pytest

from analysis import batch, config
from analysis.__main__ import main
from analysis.indicators import registry

pytestmark = pytest.mark.slow

EVIL_SCRIPT = "<script>alert('x')</script> Trường lạ"
EVIL_FORMULA = '=HYPERLINK("http://example.invalid","bấm vào đây")'


@pytest.fixture(scope="module")
def processed(sample_processed, tmp_path_factory):
    """The whole pipeline on the shipped sample (a copy of it), then two hostile school names."""
    folder = tmp_path_factory.mktemp("processed")
    shutil.copytree(sample_processed, folder, dirs_exist_ok=True)
    truong = pd.read_parquet(folder / "truong.parquet")
    lacking = truong[(truong["year"] == 2026) & (truong["csvc_khuyet_tat"] == False)].index[:2]  # noqa: E712
    truong.loc[lacking[0], "ten_truong"] = EVIL_SCRIPT
    truong.loc[lacking[1], "ten_truong"] = EVIL_FORMULA
    truong.to_parquet(folder / "truong.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def run(processed, tmp_path_factory):
    """2025 is made to fail (its verdicts are removed, so the report's year check fails); 2026 must still complete."""
    broken = tmp_path_factory.mktemp("broken")
    shutil.copytree(processed, broken, dirs_exist_ok=True)
    (broken / "verdicts" / "2025.parquet").unlink()
    reports = tmp_path_factory.mktemp("reports")
    (reports / "2026").mkdir()
    (reports / "2026" / "stale_from_an_old_run.html").write_text("old")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["batch", "--years", "2025-2026", "--jobs", "2", "--processed-dir", str(broken),
                     "--reports-dir", str(reports), "--no-progress"])
    return code, reports, err.getvalue()


def test_exit_code_and_summary_name_the_failed_year(run):
    code, reports, err = run
    assert code == 1
    assert "2025" in err and "04_report.ipynb" in err and "Traceback" not in err


def test_the_other_year_completed_with_every_output(run):
    _, reports, _ = run
    files = sorted(p.name for p in (reports / "2026").iterdir())
    assert files == sorted([f"{n}{s}" for n in batch.NOTEBOOKS for s in (".ipynb", ".html")]
                           + [batch.excel_name(2026, "vi")])  # the stale file of an old run is gone
    assert not list(reports.glob(".staging-*")) and not list(reports.glob(".old-*"))


def test_failed_year_keeps_its_notebook_with_the_error_and_no_html(run):
    _, reports, _ = run
    folder = reports / "2025"
    nb = json.loads((folder / "04_report.ipynb").read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "AssertionError"
    assert not (folder / "04_report.html").exists()
    assert (folder / "03_projections.html").exists()  # notebooks before the failing one still rendered


def test_failed_year_still_runs_its_other_notebooks_but_gets_no_excel(run):
    """The notebooks of a year are independent: one failing does not stop the others, but a year with a
    failed notebook is not complete, so it gets no Excel export."""
    _, reports, _ = run
    folder = reports / "2025"
    assert [n for n in batch.NOTEBOOKS if not (folder / f"{n}.ipynb").exists()] == []
    assert [n for n in batch.NOTEBOOKS if (folder / f"{n}.html").exists()] == ["01_clean", "02_indicators",
                                                                                "03_projections"]
    assert not (folder / batch.excel_name(2025, "vi")).exists()


def test_html_is_for_readers(run):
    _, reports, _ = run
    page = (reports / "2026" / "04_report.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", " ", page, flags=re.S))
    assert "Traceback" not in page and "Error" not in text
    assert "hl-ipython3" not in page and "import " not in text  # no code cells
    for forbidden in (str(config.PROJECT_ROOT), "/tmp/", "/home/", "/root/", "site-packages"):
        assert forbidden not in page
    for iid, spec in registry(include_cross_checks=False).items():
        assert iid in text and spec.text("name", "vi") in text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']https?://", page)  # opens with the network off
    assert 'src="data:image/png;base64,' in page  # images embedded
    assert "DỮ LIỆU GIẢ LẬP" in page
    assert re.search(r"\d+,\d%", text)  # Vietnamese decimal comma


def test_hostile_names_are_plain_text(run):
    _, reports, _ = run
    page = (reports / "2026" / "04_report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "=HYPERLINK" in page  # shown as text in HTML
    wb = openpyxl.load_workbook(reports / "2026" / batch.excel_name(2026, "vi"))
    cells = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert any(v == "'" + EVIL_FORMULA for v in cells)
    assert not any(v.startswith(("=", "+", "-", "@")) for v in cells)
    assert any(v == EVIL_SCRIPT for v in cells)


def test_excel_has_vietnamese_headers(run):
    _, reports, _ = run
    wb = openpyxl.load_workbook(reports / "2026" / batch.excel_name(2026, "vi"))
    assert wb.sheetnames[0] == "Tổng hợp"
    values = [c.value for row in wb["Tổng hợp"].iter_rows() for c in row]
    assert "Chỉ tiêu" in values and "Đánh giá 2025" in values


def test_index_links_every_year(run):
    _, reports, _ = run
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert 'href="2026/04_report.html"' in index and 'href="2025/03_projections.html"' in index
    assert "Lỗi khi chạy" in index and "Đã đạt" in index


def test_rerun_overwrites_cleanly(processed, tmp_path):
    reports = tmp_path / "reports"
    args = ["batch", "--years", "2026", "--notebooks", "01_clean", "--processed-dir", str(processed),
            "--reports-dir", str(reports), "--no-progress"]
    assert main(args) == 0
    first = (reports / "2026" / "01_clean.html").read_bytes()
    assert main(args) == 0
    assert (reports / "2026" / "01_clean.html").read_bytes() == first
    assert sorted(p.name for p in (reports / "2026").iterdir()) == [
        "01_clean.html", "01_clean.ipynb", batch.excel_name(2026, "vi")]


def test_bad_years_are_a_clear_error(processed, capsys):
    assert main(["batch", "--years", "1999", "--processed-dir", str(processed), "--no-progress"]) == 2
    assert "1999" in capsys.readouterr().err
