"""The Excel workbook officials take away: the report's tables, numbers kept numbers, formulas neutralised."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import actions, config
from analysis import report as rp
from analysis.atomic import write_file
from analysis.errors import AnalysisError
from analysis.formats import neutralise_formula
from analysis.projections_by_year import load_projections
from analysis.report import t
from analysis.template import school_year_label


def _stacked(tables: dict, column: str) -> pd.DataFrame:
    """The tables one under another, each with its key in a first column."""
    return pd.concat([f.assign(**{column: key})[[column, *f.columns]] for key, f in tables.items()], ignore_index=True)


def workbook_tables(year: int, lang: str = "vi", processed_dir=None, raw_dir=None) -> dict[str, pd.DataFrame]:
    """The tables of the export, as shown in the report (typed cells, suppression applied)."""
    data = rp.YearData(year, processed_dir, raw_dir)
    _, verdicts = load_projections(data.folder, as_of=year)
    if verdicts.empty:  # the summary would show no verdict at all: an export of a year not projected fails
        raise AnalysisError(f"Chưa có đánh giá cho năm {year}; hãy chạy 'python -m analysis projections'.",
                            f"No verdicts for {year}; run 'python -m analysis projections' first.")
    summary, _ = rp.summary_table(data.indicators, verdicts, year, lang)
    lacking = actions.institutions_lacking(data.truong, year, lang)
    to_act = {iid: rp.action_table(lacking, iid, lang) for iid, _ in actions.ACTION_FLAGS}
    furthest = {rp.Num(ty, "int"): rp.furthest_table(actions.wards_furthest(data.indicators, data.targets, year, ty),
                                                     data.indicators, year, lang) for ty in config.TARGET_YEARS}
    return {  # sheet names (labels.yaml) are at most 31 characters, Excel's limit
        t("xlsx_summary", lang): summary,
        t("xlsx_indicators", lang): rp.indicator_table(data.indicators, year, lang),
        t("xlsx_actions", lang): _stacked(to_act, t("indicator", lang)),
        t("xlsx_wards", lang): _stacked(furthest, t("target_year", lang)),
        t("xlsx_quality", lang): rp.quality_table(data.quality, year, lang),
    }


def write_workbook(tables: dict[str, pd.DataFrame], path: Path, title: str, synthetic: bool, lang: str) -> Path:
    """A title row, the synthetic-data note (also atop every printed page), bold headers, typed cells, filters."""
    import openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, frame in tables.items():
        ws = wb.create_sheet(name[:31])
        ws.append([neutralise_formula(title)])
        ws["A1"].font = Font(bold=True, size=13)
        if synthetic:
            ws.append([t("synthetic_banner", lang)])
            ws["A2"].font = Font(bold=True, color="C62828")
            ws.oddHeader.center.text = t("synthetic_banner", lang)
        head = 4 if synthetic else 3  # a blank row above the header
        widths = [min(50, max(9, 2 + max([len(str(c)) // 2] + [len(str(v)) for v in frame[c].tolist()])))
                  for c in frame.columns]
        for j, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(j)].width = width
        for i, row in enumerate([list(frame.columns), *frame.itertuples(index=False)], start=head):
            for j, value in enumerate(row, start=1):
                cell = ws.cell(row=i, column=j)
                if i == head:
                    cell.value = neutralise_formula(str(value))
                    cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor="EEF3F8")
                elif isinstance(value, rp.Num):  # a number, with its number format
                    cell.value, cell.number_format = value.excel()
                elif not rp._missing(value):  # text, never run as a formula
                    cell.value, cell.number_format = neutralise_formula(str(value)), "@"
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            # wrapped text needs its row's height: neither Excel nor LibreOffice sizes it when opening a file
            ws.row_dimensions[i].height = 15 * max([1] + [-(-len(str(v)) // (w - 1)) for v, w in zip(row, widths)])
        ws.auto_filter.ref = f"A{head}:{get_column_letter(max(1, len(frame.columns)))}{head + len(frame)}"
        ws.freeze_panes = ws.cell(row=head + 1, column=1)
        ws.print_title_rows = f"{head}:{head}"
        ws.page_setup.paperSize, ws.page_setup.orientation = ws.PAPERSIZE_A4, ws.ORIENTATION_LANDSCAPE
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.oddFooter.right.text = f"{t('page', lang)} &P / &N"
    return write_file(path, lambda tmp: wb.save(tmp))


def export_year(year: int, path: Path, lang: str = "vi", processed_dir=None, raw_dir=None) -> Path:
    synthetic = rp.YearData(year, processed_dir, raw_dir).synthetic
    title = t("report_heading", lang, school_year=school_year_label(year))
    return write_workbook(workbook_tables(year, lang, processed_dir, raw_dir), path, title, synthetic, lang)
