"""End to end: the pipeline on the sample, then the batch for two years with one made to fail; a partial
batch beside it; what a reader gets (the Excel workbook's cells, the printed pages, the index)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

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
    schools = truong["loai_truong"].isin(["tieu_hoc", "thcs", "th_thcs"])  # CT20A's scope: its action list
    lacking = truong[(truong["year"] == 2026) & (truong["csvc_khuyet_tat"] == False) & schools].index[:2]  # noqa: E712
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
                           + [batch.excel_name(2026, "vi"), "stale_from_an_old_run.html"])  # not the run's: kept
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]  # no staging folder left
    assert oct((reports / "2026").stat().st_mode & 0o777) == "0o755"  # readable by those who serve the reports


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
    """The notebooks of a year are independent: one failing does not stop the others; the export of a year
    without verdicts fails rather than showing a summary without them."""
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


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def partial(run, processed, tmp_path_factory):
    """What README step 4 suggests for an English copy, on a copy of the complete run: the officials'
    report of one year in English."""
    _, complete, _ = run
    reports = tmp_path_factory.mktemp("partial") / "reports"
    shutil.copytree(complete, reports, copy_function=shutil.copy2)
    before = snapshot(reports)
    code = main(["batch", "--years", "2026", "--lang", "en", "--notebooks", "04_report", "--processed-dir",
                 str(processed), "--reports-dir", str(reports), "--no-progress"])
    return code, reports, before, snapshot(reports)


def test_a_partial_batch_replaces_exactly_what_it_renders(partial):
    code, reports, before, after = partial
    assert code == 0
    made = {"2026/04_report_en.ipynb", "2026/04_report_en.html", f"2026/{batch.excel_name(2026, 'en')}"}
    assert set(after) - set(before) == made
    # every Vietnamese report of 2026, the failed year 2025 and the stale file are untouched, byte for byte
    assert {k: v for k, v in after.items() if k not in made and k != "index.html"} == {
        k: v for k, v in before.items() if k != "index.html"}


def test_the_index_stays_vietnamese_and_lists_every_language(partial):
    _, reports, _, _ = partial
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert '<html lang="vi">' in index and "Báo cáo cho lãnh đạo" in index
    assert 'href="2026/04_report_en.html"' in index and 'href="2026/04_report.html"' in index
    assert 'href="2026/01_clean.html"' in index and f'href="2026/{batch.excel_name(2026, "en")}"' in index


def test_a_successful_batch_prints_one_line(processed, tmp_path):
    """No kernel log lines (warnings about TCP, 'ERROR | KeyboardInterrupt caught in kernel') on a success:
    the kernels write to the batch's own terminal, so the batch runs as a user runs it."""
    res = subprocess.run([sys.executable, "-m", "analysis", "batch", "--years", "2026", "--notebooks", "01_clean",
                          "--processed-dir", str(processed), "--reports-dir", str(tmp_path), "--no-progress"],
                         capture_output=True, text=True, timeout=600, cwd=config.PROJECT_ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "" and len(res.stdout.splitlines()) == 1, res.stdout + res.stderr
    assert "ok" in res.stdout


def test_a_finished_kernel_is_shut_down_without_an_interrupt(monkeypatch):
    """jupyter_client interrupts a kernel before shutting it down; ipykernel logs that as an ERROR."""
    import asyncio

    from jupyter_client import AsyncKernelManager

    sent = []

    async def interrupt(self):
        sent.append(self.shutting_down)

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", interrupt)
    km = batch._quiet_kernel_manager()()
    for shutting_down in (True, False):
        km.shutting_down = shutting_down
        asyncio.run(km._async_interrupt_kernel())
    assert sent == [False]  # an interrupt asked for while the kernel runs still goes through


def test_every_report_has_contents_and_a_way_back(run):
    _, reports, _ = run
    for page in [reports / "2026" / f"{n}.html" for n in batch.NOTEBOOKS]:
        html = page.read_text(encoding="utf-8")
        assert 'href="../index.html"' in html, page.name
        targets = re.findall(r'<li class="toc-\d"><a href="#([^"]+)"', html)
        assert len(targets) >= 3, page.name
        ids = set(re.findall(r'<h[23] id="([^"]+)"', html))
        assert set(targets) <= ids, (page.name, set(targets) - ids)


def test_the_report_is_set_up_for_a4(run):
    _, reports, _ = run
    html = (reports / "2026" / "04_report.html").read_text(encoding="utf-8")
    styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.S))
    assert "size: A4" in styles and "@top-center" in styles and "DỮ LIỆU GIẢ LẬP" in styles.split("@top-center")[1]
    assert not re.search(r"\.jp-Cell[^{]*\{[^}]*break-inside: avoid", styles)  # cells may break across pages
    assert "thead { display: table-header-group; }" in styles


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("pdftotext")), reason="needs chromium, poppler")
def test_the_report_prints_on_a4_with_the_summary_on_page_1(run, tmp_path):
    _, reports, _ = run
    pdf = tmp_path / "r.pdf"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", f"--print-to-pdf={pdf}",
                    (reports / "2026" / "04_report.html").as_uri()], capture_output=True, timeout=180, check=True)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert "(A4)" in info
    pages = int(re.search(r"Pages:\s+(\d+)", info)[1])
    first = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf), "-"], capture_output=True,
                           text=True).stdout
    assert "Tóm tắt" in first and "CT07" in first and "CT20B" in first  # the whole summary table
    last = subprocess.run(["pdftotext", "-f", str(pages), "-l", str(pages), str(pdf), "-"], capture_output=True,
                          text=True).stdout
    assert "DỮ LIỆU GIẢ LẬP" in last and f"{pages} / {pages}" in last  # the notice and page number on every page


def test_excel_cells_hold_numbers_with_formats(run):
    """Every number is a number (no '96,6%', '10.300' or '2025' as text), with a number format; an autofilter
    and the print setup on every sheet."""
    _, reports, _ = run
    wb = openpyxl.load_workbook(reports / "2026" / batch.excel_name(2026, "vi"))
    numbers = 0
    for ws in wb.worksheets:
        head = ws.print_title_rows.split(":")[0].lstrip("$")
        assert ws.auto_filter.ref.startswith(f"A{head}:")
        assert int(ws.page_setup.paperSize) == 9 and ws.page_setup.orientation == "landscape"  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
        for row in ws.iter_rows(min_row=int(head) + 1):
            for c in row:
                if isinstance(c.value, str):
                    assert not re.fullmatch(r"[−+'-]?[\d.,]+\s*%?", c.value), (ws.title, c.coordinate, c.value)
                elif isinstance(c.value, (int, float)):
                    numbers += 1
                    assert c.number_format != "General", (ws.title, c.coordinate)
    assert numbers > 100
    summary = wb["Tổng hợp"]
    cells = {c.value: c for c in summary[4]}
    first = summary.cell(row=5, column=list(cells).index("Năm 2026") + 1)
    assert isinstance(first.value, float) and 0 <= first.value <= 1 and first.number_format.endswith("%")


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
