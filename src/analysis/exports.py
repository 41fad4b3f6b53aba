"""The Excel workbook officials take away: the summary table, the action lists and the data problems of a
reporting year, with Vietnamese headers. Text that a spreadsheet would run as a formula is neutralised;
small counts of children with disabilities stay suppressed as in the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import actions, config
from analysis import report as rp
from analysis.atomic import write_file
from analysis.formats import neutralise_formula, neutralise_frame
from analysis.report import t

SHEET_NAMES = {
    "summary": {"vi": "Tổng hợp", "en": "Summary"},
    "actions": {"vi": "Cơ sở cần hành động", "en": "Institutions to act on"},
    "wards": {"vi": "Xã phường xa chỉ tiêu", "en": "Wards furthest from target"},
    "quality": {"vi": "Chất lượng số liệu", "en": "Data quality"},
    "indicators": {"vi": "Các chỉ tiêu trong năm", "en": "Indicators this year"},
}


def workbook_tables(year: int, lang: str = "vi", processed_dir=None, raw_dir=None) -> dict[str, pd.DataFrame]:
    """The tables of the export, as shown in the report (formatted text, suppression applied)."""
    from analysis.projections_by_year import load_projections

    data = rp.YearData(year, processed_dir, raw_dir)
    _, verdicts = load_projections(data.folder, as_of=year)
    summary, _ = rp.summary_table(data.indicators, verdicts, year, lang)
    lacking = actions.institutions_lacking(data.truong, year, lang)
    to_act = pd.concat(
        [rp.action_table(lacking, iid, lang).assign(**{t("indicator", lang): iid}) for iid, _ in actions.ACTION_FLAGS],
        ignore_index=True)
    to_act = to_act[[t("indicator", lang), *[c for c in to_act.columns if c != t("indicator", lang)]]]
    frames = {}
    for ty in config.TARGET_YEARS:
        frames[ty] = rp.furthest_table(actions.wards_furthest(data.indicators, data.targets, year, ty), lang)
        frames[ty].insert(0, t("target_year", lang), str(ty))
    return {
        SHEET_NAMES["summary"][lang]: summary,
        SHEET_NAMES["indicators"][lang]: rp.indicator_table(data.indicators, year, lang),
        SHEET_NAMES["actions"][lang]: to_act,
        SHEET_NAMES["wards"][lang]: pd.concat(frames.values(), ignore_index=True),
        SHEET_NAMES["quality"][lang]: rp.quality_table(data.quality, year, lang),
    }


def write_workbook(tables: dict[str, pd.DataFrame], path: Path, title: str, synthetic: bool, lang: str) -> Path:
    """Write the sheets with openpyxl: a title row, a synthetic-data note when it applies, bold headers."""
    import openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, frame in tables.items():
        frame = neutralise_frame(frame)
        ws = wb.create_sheet(name[:31])
        ws.append([neutralise_formula(title)])
        ws["A1"].font = Font(bold=True, size=13)
        start = 2
        if synthetic:
            ws.append([t("synthetic_banner", lang)])
            ws["A2"].font = Font(bold=True, color="C62828")
            start = 3
        ws.append([])
        header_row = start + 1
        ws.append(list(frame.columns))
        for cell in ws[header_row]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="EEF3F8")
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in frame.itertuples(index=False):
            ws.append([None if (isinstance(v, float) and v != v) else v for v in row])
        for j, col in enumerate(frame.columns, start=1):
            width = max([len(str(col))] + [len(str(v)) for v in frame.iloc[:, j - 1].tolist()] or [10])
            ws.column_dimensions[openpyxl.utils.get_column_letter(j)].width = min(60, max(10, width + 2))
        ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    return write_file(path, lambda tmp: wb.save(tmp))


def export_year(year: int, path: Path, lang: str = "vi", processed_dir=None, raw_dir=None) -> Path:
    from analysis.template import school_year_label

    data = rp.YearData(year, processed_dir, raw_dir)
    tables = workbook_tables(year, lang, processed_dir, raw_dir)
    title = t("report_heading", lang, school_year=school_year_label(year))
    return write_workbook(tables, path, title, data.synthetic, lang)
