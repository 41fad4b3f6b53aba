"""Raw tables -> typed, validated tidy tables and the quality table (load / process / save).

The contract (DESIGN §4, data/raw/README.md): counts are non-negative integers ("1.234" is one thousand
two hundred thirty-four; "-" is zero); yes/no cells take Có/Không, x/blank, 1/0, yes/no; a subset never
exceeds its total; codes are unique; wards are known to the crosswalk for that school year; MamNon and
PhoThong rows refer to institutions in Truong. A value that breaks the contract is logged in the quality
table and excluded (set missing), never guessed; a file that cannot be used stops with a bilingual message.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import QUALITY_COLUMNS, AnalysisError, DataFileError, Problem, short_value
from analysis.geography import Crosswalk, name_key, short_name
from analysis.atomic import write_files
from analysis.formats import csv_writer, parquet_writer
from analysis.read import SCHOOL_YEAR_IN_TEXT, RawSheet, RawWorkbook, read_workbook
from analysis.template import (
    FEMALE_SUFFIX, LOWER_SECONDARY_TYPES, NO_VALUES, PRESCHOOL_TYPES, PRIMARY_TYPES, SHEETS, WORKBOOK_NAME_RE,
    YES_MARKS, YES_VALUES, by_sex_subset_rules, category_lookup, fold, subset_rules,
)

# names of the tidy tables in data/processed/ (one Parquet file each)
TABLES = {"Truong": "truong", "MamNon": "mam_non", "PhoThong": "pho_thong", "XaPhuong": "xa_phuong"}
MAX_COUNT = 1_000_000  # no school or ward has a million children: larger is a typing error
MAX_TEXT = 200
_INVISIBLE = re.compile(r"[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# digits, or digits grouped by thousands with dots; ASCII only: other scripts' digits are not what the office types
_COUNT_TEXT = re.compile(r"^-?([0-9]+|[0-9]{1,3}(\.[0-9]{3})+)$")
_DECIMAL_COMMA = re.compile(r"^-?[0-9]+,[0-9]+$")
_DASHES = {"-", "–", "—"}


@dataclass
class CleanYear:
    """The cleaned tables of one school-year workbook and what was found wrong in it."""

    year: int
    file: str
    tables: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)
    sha256: str = ""
    rows_read: dict[str, int] = field(default_factory=dict)
    synthetic: bool = False  # the workbook says it is synthetic sample data (reports then say so too)


# --- discovery ------------------------------------------------------------------------------------------

def year_of_file(path: Path) -> int:
    """'2024-2025.xlsx' -> 2025; anything else is not a school-year workbook."""
    m = WORKBOOK_NAME_RE.match(path.name)
    if not m or int(m["end"]) != int(m["start"]) + 1:
        raise DataFileError(path.name, "Tên tệp phải là năm học dạng YYYY-YYYY.xlsx (ví dụ 2024-2025.xlsx).",
                            "The file name must be the school year as YYYY-YYYY.xlsx (e.g. 2024-2025.xlsx).",
                            code="file_name")
    return int(m["end"])


def _year_or_none(file: str):
    m = WORKBOOK_NAME_RE.match(file)
    return int(m["end"]) if m else None


def discover(raw_dir: Path, years: list[int] | None = None) -> dict[int, Path]:
    """School-year workbooks in ``raw_dir`` (the name skips Excel lock files '~$…'; the template is in a folder)."""
    found = {_year_or_none(path.name): path for path in sorted(raw_dir.glob("*.xlsx"))}
    return {y: path for y, path in found.items() if y is not None and (years is None or y in years)}


# --- cell coercion (vectorised per column) ---------------------------------------------------------------

def _clean_text_one(v) -> tuple[str | None, bool]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None, False
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = unicodedata.normalize("NFC", str(v))
    if s.isprintable() and "  " not in s:
        # nothing invisible, no whitespace but single spaces: only the ends can change (the usual cell)
        return (s.strip(" ") or None), False
    invisible = bool(_INVISIBLE.search(s))
    text = re.sub(r"\s+", " ", _INVISIBLE.sub("", s)).strip()
    return (text or None), invisible


def _per_distinct(values: pd.Series, one) -> tuple[list, list]:
    """``one(cell) -> (a, b)`` over the cells as two lists, each distinct cell computed once (values repeat down a
    column; typed: 1, 1.0 and True are distinct cells)."""
    once = functools.lru_cache(maxsize=None, typed=True)(one)
    pairs = [once(v) for v in values.tolist()]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _clean_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """NFC, invisible characters removed, spaces collapsed; returns (text, had_invisible)."""
    texts, invisible = _per_distinct(values, _clean_text_one)
    return (pd.Series(texts, index=values.index, dtype=object).astype("string"),
            pd.Series(invisible, index=values.index, dtype=bool))


def _read_number(v) -> tuple[float, str]:
    """A cell that is not a Python float -> (its number, '') or (nan, reason code)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return np.nan, "blank"
    if isinstance(v, bool):
        return np.nan, "not_number"
    if isinstance(v, (datetime, date, time, timedelta, pd.Timestamp)):
        return np.nan, "date"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (float(v), "") if np.isfinite(float(v)) else (np.nan, "not_number")
    s = _INVISIBLE.sub("", re.sub(r"[\s\u00a0\u202f]+", "", unicodedata.normalize("NFC", str(v))))
    if not s:
        return np.nan, "blank"
    if s in _DASHES:
        return 0.0, ""
    if _COUNT_TEXT.match(s):
        return float(s.replace(".", "")), ""
    if _DECIMAL_COMMA.match(s) or re.match(r"^-?\d+\.\d{1,2}$", s):
        return np.nan, "fraction"
    return np.nan, "formula" if s.startswith("=") else "not_number"


def parse_counts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Cells -> nullable integers and a reason code for each cell that is not a valid count. Python floats (the
    Excel reader's numbers) are taken as they are, other cells read by ``_read_number``; then all checked at once."""
    n = len(values)
    cells = np.asarray(values.array, dtype=object)
    is_float = np.fromiter((v.__class__ is float for v in cells), dtype=bool, count=n)
    x = np.where(is_float, cells, np.nan).astype(float) if n else np.zeros(0)
    unread = np.full(n, "", dtype=object)
    for i in np.flatnonzero(~is_float):
        x[i], unread[i] = _read_number(cells[i])
    with np.errstate(invalid="ignore"):
        reason = np.select(
            [unread != "", np.isnan(x), ~np.isfinite(x), x < 0, x != np.floor(x), x > MAX_COUNT],
            [unread, "blank", "not_number", "negative", "fraction", "too_large"], "").astype(object)
    out = np.where(reason == "", x, np.nan)
    return pd.Series(out, index=values.index).astype("Int64"), pd.Series(reason, index=values.index)


def _parse_yesno_one(v) -> tuple[bool | None, str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return False, ""  # template: x/blank means blank = no
    if isinstance(v, bool):
        return v, ""
    if isinstance(v, (int, float)) and float(v) in (0.0, 1.0):
        return bool(v), ""
    key = fold(v)
    if str(v).strip() in YES_MARKS or key in YES_VALUES:
        return True, ""
    if key in NO_VALUES:
        return False, ""
    return None, "not_yesno"


def parse_yesno(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Cells -> nullable booleans and a reason code for each cell that is not a yes/no answer."""
    out, reason = _per_distinct(values, _parse_yesno_one)
    return (pd.Series(pd.array(out, dtype="boolean"), index=values.index),
            pd.Series(reason, index=values.index, dtype=object))


_REASONS = {
    "blank": ("warning", "Ô trống: giá trị thiếu, không được tính.", "Blank cell: value missing, not counted."),
    "not_number": ("error", "Không phải là số.", "Not a number."),
    "date": ("error", "Ô số liệu chứa ngày tháng.", "A count cell holds a date."),
    "fraction": ("error", "Số lẻ (số đếm phải là số nguyên).", "Fractional value (counts are whole numbers)."),
    "negative": ("error", "Số âm.", "Negative number."),
    "too_large": ("error", f"Số lớn bất thường (> {MAX_COUNT:,}).".replace(",", "."), f"Implausibly large (> {MAX_COUNT:,})."),
    "formula": ("error", "Công thức không có giá trị đã tính; hãy lưu lại tệp trong Excel.",
                "A formula without a computed value; re-save the file in Excel."),
    "not_yesno": ("error", "Không đọc được Có/Không (dùng Có/Không, x/để trống, 1/0).",
                  "Not a yes/no answer (use Có/Không, x/blank, 1/0)."),
    "unknown_category": ("error", "Giá trị không có trong danh mục.", "Value not in the list of categories."),
}


class SheetCleaner:
    """Types one sheet's raw rows and records every problem with its cell reference."""

    def __init__(self, raw: RawSheet, year: int):
        self.raw, self.year, self.spec = raw, year, raw.spec
        self.problems: list[Problem] = list(raw.problems)
        for p in self.problems:
            p.year = year
        self.cells = {cid: pd.Series([row[idx] if idx < len(row) else None for _, row in raw.rows], dtype=object)
                      for cid, (idx, _) in raw.columns.items()}
        self.frame = pd.DataFrame({"source_row": pd.Series([r for r, _ in raw.rows], dtype="int64")})

    def problem(self, i: int, column_id: str, severity: str, code: str, vi: str, en: str, value=None,
                frame: pd.DataFrame | None = None) -> None:
        """Log a problem at row ``i`` of ``frame`` (default: the sheet being typed)."""
        frame = self.frame if frame is None else frame
        row = int(frame["source_row"].iloc[i])
        key = frame.get("ma_truong")
        ma = key.iloc[i] if key is not None and self.spec.name != "XaPhuong" else None
        self.problems.append(Problem(
            file=self.raw.file, sheet=self.raw.sheet, severity=severity, code=code, message_vi=vi, message_en=en,
            row=row, column=self.raw.header_of(column_id),
            cell=self.raw.cell_ref(column_id, row) if column_id in self.raw.columns and row else "",
            value=short_value(value), year=self.year, ma_truong="" if ma is None or pd.isna(ma) else str(ma),
            column_id=column_id,
        ))

    def problems_at(self, rows, column_id: str, severity: str, code: str, vi: str, en: str, values=None,
                    frame: pd.DataFrame | None = None) -> None:
        """``problem`` at every row where ``rows`` is true, each with its own cell of ``values``."""
        for i in np.flatnonzero(rows):
            self.problem(int(i), column_id, severity, code, vi, en, None if values is None else values.iloc[i], frame)

    def run(self) -> pd.DataFrame:
        for col in self.spec.columns:
            if col.id not in self.cells:
                dtype = {"count": "Int64", "yesno": "boolean"}.get(col.kind, "string")
                self.frame[col.id] = pd.Series(pd.NA, index=self.frame.index, dtype=dtype)
                continue
            values = self.cells[col.id]
            refs = self.raw.formula_cells  # cells holding a formula without a computed value (read as blank)
            formula = np.array([bool(refs) and self.raw.cell_ref(col.id, r) in refs for r, _ in self.raw.rows], bool)
            if formula.any():
                severity, vi, en = _REASONS["formula"]
                self.problems_at(formula, col.id, severity, "formula", vi, en)
                # a count or yes/no is then parsed as invalid and set missing below (its reason replaced by
                # this one); a text is just missing
                values = values.where(~formula, "\x00formula" if col.kind in ("count", "yesno") else None)
            if col.kind in ("code", "text"):
                text, invisible = _clean_text(values)
                if col.kind == "code":
                    text = text.str.upper()
                self.problems_at(invisible, col.id, "warning", "invisible_characters",
                                 "Có ký tự ẩn/điều khiển; đã loại bỏ các ký tự này.",
                                 "Hidden or control characters removed.", values)
                self.problems_at(text.str.len().fillna(0) > MAX_TEXT, col.id, "warning", "text_too_long",
                                 f"Chuỗi quá dài, chỉ giữ {MAX_TEXT} ký tự đầu.",
                                 f"Text too long, first {MAX_TEXT} characters kept.", values)
                text = text.str.slice(0, MAX_TEXT)
                self.frame[col.id] = text
            elif col.kind == "category":
                text, _ = _clean_text(values)
                lookup = category_lookup(col)
                codes = text.map({u: lookup.get(fold(u)) for u in text.dropna().unique()}).astype("string")
                severity, vi, en = _REASONS["unknown_category"]
                self.problems_at(codes.isna() & text.notna(), col.id, severity, "unknown_category", vi, en, values)
                self.problems_at(text.isna(), col.id, "error", "blank", "Ô trống ở cột bắt buộc.",
                                 "Blank cell in a required column.")
                self.frame[col.id] = codes
            else:  # yes/no or count
                parsed, reasons = (parse_yesno if col.kind == "yesno" else parse_counts)(values)
                why = reasons.to_numpy()
                for i in np.flatnonzero((why != "") & ~formula):  # only the cells with a problem
                    # an optional girls' cell left blank just means no breakdown by sex for that row
                    if why[i] != "blank" or col.required:
                        severity, vi, en = _REASONS[why[i]]
                        self.problem(int(i), col.id, severity, why[i], vi, en, values.iloc[i])
                self.frame[col.id] = parsed.where(~formula, pd.NA)
        self._check_subsets()
        self._check_all_zero()
        self._check_totals()
        self.frame.insert(0, "year", np.int64(self.year))
        self.frame["source_file"] = self.raw.file
        self.frame["source_row"] = self.frame.pop("source_row")
        return self.frame

    def _check_subsets(self) -> None:
        for sub, sup in subset_rules(self.spec):
            if sub not in self.raw.columns or sup not in self.raw.columns:
                continue
            bad = (self.frame[sub] > self.frame[sup]).fillna(False).to_numpy()
            for i in np.flatnonzero(bad):
                a, b = self.frame.at[int(i), sub], self.frame.at[int(i), sup]
                sub_c, sup_c = self.spec.column(sub), self.spec.column(sup)
                self.problem(int(i), sub, "error", "subset_exceeds_total",
                             f"'{sub_c.vi}' ({a}) lớn hơn '{sup_c.vi}' ({b}); giá trị bị loại.",
                             f"'{sub_c.en}' ({a}) exceeds '{sup_c.en}' ({b}); value excluded.", a)
            self.frame.loc[bad, sub] = pd.NA
        self._check_boys()

    def _check_boys(self) -> None:
        """The boys' counts are derived (all minus girls): they obey the same subset rules as the entered
        counts. A row where they do not is kept (which of its four counts is wrong cannot be told) and
        logged; the indicators leave that row's boys out of the results by sex (``indicators.by_sex``)."""
        for sub, sup in by_sex_subset_rules(self.spec):
            cols = (sub, sub + FEMALE_SUFFIX, sup, sup + FEMALE_SUFFIX)
            if not all(c in self.raw.columns for c in cols):
                continue
            a, af, b, bf = (self.frame[c] for c in cols)
            bad = ((a - af) > (b - bf)).fillna(False).to_numpy()
            sub_c, sup_c = self.spec.column(sub), self.spec.column(sup)
            for i in np.flatnonzero(bad):
                n = [int(x.iloc[i]) for x in (a, af, b, bf)]
                self.problem(
                    int(i), sub + FEMALE_SUFFIX, "warning", "boys_subset_exceeds_total",
                    f"Số nam suy ra (tổng − nữ) của '{sub_c.vi}' ({n[0]} − {n[1]} = {n[0] - n[1]}) lớn hơn của "
                    f"'{sup_c.vi}' ({n[2]} − {n[3]} = {n[2] - n[3]}): một trong bốn cột '{sub_c.vi}', "
                    f"'{sub_c.vi} – Nữ', '{sup_c.vi}', '{sup_c.vi} – Nữ' của dòng này sai. Số nam của dòng "
                    "không được tính vào kết quả theo giới tính.",
                    f"The boys' count derived as all minus girls of '{sub_c.en}' ({n[0]} − {n[1]} = "
                    f"{n[0] - n[1]}) exceeds that of '{sup_c.en}' ({n[2]} − {n[3]} = {n[2] - n[3]}): one of the "
                    "four columns (both totals, both girls' columns) of this row is wrong. The row's boys are "
                    "left out of the results by sex.", n[1])

    def _check_all_zero(self) -> None:
        """A row whose every count is 0 is kept (its ratios have no denominator) but is most likely a row not
        filled in: said so."""
        counts = [c.id for c in self.spec.columns if c.kind == "count" and c.female_of is None
                  and c.id in self.raw.columns]
        if counts:  # the value quoted is the row's first count, 0
            zero = (self.frame[counts] == 0).fillna(False).all(axis=1)
            self.problems_at(zero, counts[0], "warning", "all_counts_zero",
                             "Mọi số liệu của dòng đều bằng 0: kiểm tra lại (dòng chưa nhập số liệu?); dòng này không "
                             "đóng góp vào mẫu số của chỉ tiêu nào.",
                             "Every count of the row is 0: check it (a row left unfilled?); the row adds nothing to "
                             "any indicator's denominator.", self.frame[counts[0]])

    def _check_totals(self) -> None:
        if self.raw.totals is None:
            return
        excel_row, cells = self.raw.totals
        for col in self.spec.columns:
            if col.kind != "count" or col.id not in self.raw.columns:
                continue
            idx = self.raw.columns[col.id][0]
            raw_value = cells[idx] if idx < len(cells) else None
            if raw_value is None or (isinstance(raw_value, str) and not raw_value.strip()):
                continue
            parsed, reason = parse_counts(pd.Series([raw_value], dtype=object))
            total = int(parse_counts(self.cells[col.id])[0].sum())
            if reason.iloc[0]:
                code, vi, en = ("totals_unreadable", "Ô ở dòng tổng cộng không phải là số.",
                                "The totals-row cell is not a number.")
            elif (said := int(parsed.iloc[0])) != total:
                code = "totals_mismatch"
                vi = (f"Dòng tổng cộng ghi {said:,} nhưng tổng các dòng là {total:,}; "
                      "dùng số liệu từng dòng.").replace(",", ".")
                en = f"The totals row says {said:,} but the rows add up to {total:,}; the rows are used."
            else:
                continue
            self.problems.append(Problem(
                file=self.raw.file, sheet=self.raw.sheet, severity="warning", code=code, message_vi=vi, message_en=en,
                row=excel_row, column=self.raw.header_of(col.id), cell=self.raw.cell_ref(col.id, excel_row),
                value=short_value(raw_value), year=self.year, column_id=col.id))


# --- whole workbook ----------------------------------------------------------------------------------------

def _check_year_inside(raw: RawWorkbook, year: int) -> None:
    """A workbook whose title says another school year than its file name is not guessed at."""
    for table in raw.sheets.values():
        for m in SCHOOL_YEAR_IN_TEXT.finditer(table.title_text):
            start, end = int(m[1]), int(m[2])
            if end == start + 1 and end != year:
                raise DataFileError(
                    raw.file, f"Tiêu đề ghi năm học {start}-{end} nhưng tên tệp là năm học {year - 1}-{year}.",
                    f"The title says school year {start}-{end} but the file name says {year - 1}-{year}.",
                    sheet=table.sheet, code="year_mismatch")


def _dedupe(frame: pd.DataFrame, key: list[str], cleaner: SheetCleaner, what_vi: str, what_en: str) -> pd.DataFrame:
    present = frame[key].notna().all(axis=1)
    dup = frame.duplicated(key, keep=False) & present
    for i in np.flatnonzero(dup.to_numpy()):
        shown = " / ".join(str(frame.iloc[int(i)][k]) for k in key)
        cleaner.problem(int(i), key[0], "error", "duplicate_key",
                        f"{what_vi} '{shown}' bị trùng; mọi dòng trùng bị loại.",
                        f"Duplicate {what_en} '{shown}'; all duplicate rows excluded.", shown, frame=frame)
    cleaner.problems_at(~present, key[-1], "error", "missing_key", "Thiếu giá trị khóa; dòng bị loại.",
                        "Key value missing; row excluded.", frame=frame)
    return frame[~dup & present].reset_index(drop=True)


def clean_workbook(path: Path, crosswalk: Crosswalk) -> CleanYear:
    """One school-year workbook -> its cleaned tables (pure apart from reading the file)."""
    year = year_of_file(path)
    raw = read_workbook(path)
    _check_year_inside(raw, year)
    says = fold(raw.note_text + " " + " ".join(t.title_text for t in raw.sheets.values()))
    result = CleanYear(year=year, file=path.name, tables={}, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                       synthetic="gialap" in says or "synthetic" in says)
    cleaners = {spec.name: SheetCleaner(raw.sheets[spec.name], year) for spec in SHEETS}
    for name, cleaner in cleaners.items():
        result.tables[name] = cleaner.run()
        result.rows_read[name] = len(result.tables[name])

    truong = _resolve_wards(result.tables["Truong"], cleaners["Truong"], crosswalk, year, per_row_required=False)
    truong = _dedupe(truong, ["ma_truong"], cleaners["Truong"], "Mã trường", "institution code")
    result.tables["Truong"] = truong
    known = set(truong["ma_truong"].dropna().tolist())  # tolist: iterating an Arrow column is slow
    types = dict(zip(truong["ma_truong"].tolist(), truong["loai_truong"].tolist()))

    for name, key, what_vi, what_en in (("MamNon", ["ma_truong"], "Mã trường", "institution code"), (
            "PhoThong", ["ma_truong", "cap_hoc"], "Mã trường/cấp học", "institution code and level")):
        frame, cleaner = result.tables[name], cleaners[name]
        frame = _dedupe(frame, key, cleaner, what_vi, what_en)
        codes = frame["ma_truong"].tolist()  # not Series.isin: the Arrow string isin converts the set value by value
        orphan = ~np.fromiter((c is not pd.NA and c in known for c in codes), dtype=bool, count=len(codes))
        cleaner.problems_at(orphan, "ma_truong", "error", "unknown_school",
                            "Mã trường không có trong sheet Truong; dòng bị loại.",
                            "Institution code not in sheet Truong; row excluded.", frame["ma_truong"], frame=frame)
        frame = frame[~orphan].reset_index(drop=True)
        if name == "PhoThong":
            mismatch = [pd.notna(level) and pd.notna(types.get(code))
                        and types[code] not in (PRIMARY_TYPES if level == "tieu_hoc" else LOWER_SECONDARY_TYPES)
                        for code, level in zip(frame["ma_truong"].tolist(), frame["cap_hoc"].tolist())]
            cleaner.problems_at(mismatch, "cap_hoc", "warning", "level_type_mismatch",
                                "Cấp học không khớp loại trường trong sheet Truong.",
                                "The level does not match the institution type in sheet Truong.", frame["cap_hoc"],
                                frame=frame)
        result.tables[name] = frame

    xa = _resolve_wards(result.tables["XaPhuong"], cleaners["XaPhuong"], crosswalk, year, per_row_required=True)
    xa = _resolve_former_units(xa, cleaners["XaPhuong"], crosswalk)
    key = xa.assign(_part=xa["ma_don_vi_cu"].fillna(""))  # a ward once, or once per former unit it reports
    xa = _dedupe(key, ["ma_xa_phuong", "_part"], cleaners["XaPhuong"], "Xã/phường", "ward").drop(columns="_part")
    result.tables["XaPhuong"] = xa
    _report_non_reporting(result, cleaners)
    for cleaner in cleaners.values():
        result.problems.extend(cleaner.problems)
    return result


def clean_year(year: int, raw_dir: Path | str | None = None) -> CleanYear:
    """Clean one reporting year's workbook in memory (what notebook 01 shows; writes nothing)."""
    folder = config.raw_dir(raw_dir)
    found = discover(folder, [year])
    if year not in found:
        raise AnalysisError(f"Không có sổ tính năm học {year - 1}-{year} trong {config.display_path(folder)}.",
                            f"No workbook for school year {year - 1}-{year} in {config.display_path(folder)}.")
    return clean_workbook(found[year], Crosswalk.load(folder))


def _resolve_wards(frame: pd.DataFrame, cleaner: SheetCleaner, crosswalk: Crosswalk, year: int,
                   *, per_row_required: bool) -> pd.DataFrame:
    """Attach the crosswalk ward code and canonical name; unknown wards are logged, never guessed."""
    given = (frame["ma_xa_phuong"].to_numpy(dtype=object, na_value=None) if "ma_xa_phuong" in cleaner.raw.columns
             else np.full(len(frame), None, dtype=object))
    written = frame["xa_phuong"].to_numpy(dtype=object, na_value=None)
    codes, names = [None] * len(frame), [None] * len(frame)
    then_vi, then_en = ((" Dòng bị loại.", " Row excluded.") if per_row_required else
                        (" Trường không được tính theo xã/phường.", " Institution left out of ward breakdowns."))
    matches: dict[tuple[str, bool], object] = {}  # each distinct name or code is looked up once
    for i, (code, name) in enumerate(zip(given, written)):
        by_code, text = code is not None, code if code is not None else name
        if text is None:
            cleaner.problem(i, "xa_phuong", "error", "missing_ward", "Thiếu tên xã/phường.",
                            "Ward name missing.", frame=frame)
            continue
        match = matches.get((text, by_code))
        if match is None:
            match = matches[(text, by_code)] = crosswalk.match_ward(text, year, by_code=by_code)
        if match.status == "ok":
            codes[i], names[i] = match.code, match.name
            continue
        if match.status == "ambiguous":
            vi = f"Tên xã/phường trùng nhiều đơn vị ({', '.join(match.candidates)}); hãy ghi cột Mã xã/phường."
            en = f"Ward name matches several units ({', '.join(match.candidates)}); give the ward code column."
        elif match.status == "outside_year":
            vi = f"Xã/phường không còn/chưa tồn tại trong năm học {year - 1}-{year} (theo danh mục)."
            en = f"Ward not valid in school year {year - 1}-{year} (per the crosswalk)."
        else:
            vi, en = "Xã/phường không có trong danh mục đơn vị hành chính.", "Ward not in the crosswalk."
        cleaner.problem(i, "ma_xa_phuong" if by_code else "xa_phuong", "error", "unknown_ward", vi + then_vi,
                        en + then_en, text, frame=frame)
    frame = frame.copy()
    frame["ma_xa_phuong"] = pd.array(codes, dtype="string")
    frame["xa_phuong"] = pd.array(names, dtype="string")
    if per_row_required:
        frame = frame[frame["ma_xa_phuong"].notna()].reset_index(drop=True)
    return frame


def _resolve_former_units(frame: pd.DataFrame, cleaner: SheetCleaner, crosswalk: Crosswalk) -> pd.DataFrame:
    """``ma_don_vi_cu``: the crosswalk code of the former unit a survey row counts (column Đơn vị cũ), found
    by name or code among the units its ward was formed from. A name that is not one of them is logged and
    the row counts for its ward only; a ward reporting both its whole and its parts keeps its parts."""
    frame = frame.assign(ma_don_vi_cu=pd.array([None] * len(frame), dtype="string"))
    if "don_vi_cu" not in frame:
        return frame
    written = frame["don_vi_cu"].to_numpy(dtype=object, na_value=None)
    for i, (text, ward) in enumerate(zip(written, frame["ma_xa_phuong"].to_numpy(dtype=object, na_value=None))):
        if text is None or ward is None:
            continue
        units = crosswalk.origins(ward)
        hits = [u for u in units if name_key(crosswalk.name_of(u)) == name_key(text) or u == str(text).strip().upper()]
        if len(hits) == 1:
            frame.loc[frame.index[i], "ma_don_vi_cu"] = hits[0]
        else:
            names = ", ".join(sorted(short_name(crosswalk.name_of(u)) for u in units))
            cleaner.problem(i, "don_vi_cu", "warning", "unknown_former_unit",
                            f"'{text}' không phải một đơn vị cũ đã nhập vào xã/phường này ({names}); phần này chỉ được "
                            "tính cho xã/phường, chỉ tiêu theo dân số của địa bàn không tính lại được năm này.",
                            f"'{text}' is not one of the former units that went into this ward ({names}); the part "
                            "counts for its ward only, and the territory's population-based indicators cannot be "
                            "restated this year.", text, frame=frame)
    parts = frame["ma_don_vi_cu"].notna().groupby(frame["ma_xa_phuong"]).transform("any")
    whole = parts & frame["ma_don_vi_cu"].isna() & frame["don_vi_cu"].isna()
    cleaner.problems_at(whole, "don_vi_cu", "error", "whole_and_parts",
                        "Xã/phường có cả dòng toàn xã/phường và các dòng theo đơn vị cũ; dòng toàn xã/phường bị loại "
                        "(các phần đã cộng lại thành cả xã/phường).",
                        "The ward has a row for the whole ward and rows for its former units; the whole-ward row "
                        "is excluded (the parts add up to the ward).", frame=frame)
    return frame[~whole.to_numpy()].reset_index(drop=True)


def _report_non_reporting(result: CleanYear, cleaners: dict[str, SheetCleaner]) -> None:
    """Institutions listed in Truong but missing from the sheet that should carry their counts."""
    truong, pho_thong = result.tables["Truong"], result.tables["PhoThong"]
    reported = {"MamNon": set(result.tables["MamNon"]["ma_truong"].tolist()),
                "PhoThong": set(zip(pho_thong["ma_truong"].tolist(), pho_thong["cap_hoc"].tolist()))}
    expected = (("MamNon", PRESCHOOL_TYPES, None, "mầm non", "preschool"),  # sheet, types, level, vi, en
                ("PhoThong", PRIMARY_TYPES, "tieu_hoc", "tiểu học", "primary"),
                ("PhoThong", LOWER_SECONDARY_TYPES, "thcs", "THCS", "lower-secondary"))
    for code, school_type, name in zip(*(truong[c].tolist() for c in ("ma_truong", "loai_truong", "ten_truong"))):
        for sheet, types, level, vi, en in expected:
            if school_type in types and (code if level is None else (code, level)) not in reported[sheet]:
                result.problems.append(Problem(
                    file=result.file, sheet=cleaners[sheet].raw.sheet, severity="warning", code="not_reported",
                    message_vi=f"Cơ sở không có dòng số liệu {vi} trong sheet {sheet} (chưa báo cáo).",
                    message_en=f"Institution has no {en} row in sheet {sheet} (did not report).",
                    year=result.year, ma_truong=code, column_id="ma_truong", value=name or ""))


# --- many years, and the save step ---------------------------------------------------------------------

@dataclass
class CleanRun:
    years: dict[int, CleanYear]
    failures: list[DataFileError]


def clean_all(raw_dir: Path, years: list[int] | None = None, jobs: int = 1) -> CleanRun:
    """Clean every school-year workbook; a file that fails is reported, the others still cleaned. ``jobs`` > 1
    cleans that many at once in separate processes (the workbooks are independent; the result is the same, in year
    order): worth it for many large workbooks (a country), not for a district."""
    crosswalk = Crosswalk.load(raw_dir)
    paths = discover(raw_dir, years)
    if jobs > 1 and len(paths) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), initializer=_worker_init,
                                 initargs=(crosswalk,)) as pool:  # one crosswalk (and its caches) per worker
            outcomes = list(pool.map(_clean_in_worker, paths.values()))
    else:
        outcomes = [_clean_or_error(path, crosswalk) for path in paths.values()]
    return CleanRun({year: c for year, c in zip(paths, outcomes) if isinstance(c, CleanYear)},
                    [DataFileError(**c) for c in outcomes if not isinstance(c, CleanYear)])


def _clean_or_error(path: Path, crosswalk: Crosswalk) -> CleanYear | dict:
    """The cleaned year, or the fields of its DataFileError (a dict crosses process boundaries)."""
    try:
        return clean_workbook(path, crosswalk)
    except DataFileError as exc:
        return {f.name: getattr(exc, f.name) for f in dataclass_fields(exc)}


_WORKER_CROSSWALK: Crosswalk | None = None


def _worker_init(crosswalk: Crosswalk) -> None:
    global _WORKER_CROSSWALK
    _WORKER_CROSSWALK = crosswalk


def _clean_in_worker(path: Path) -> CleanYear | dict:
    return _clean_or_error(path, _WORKER_CROSSWALK)


def quality_frame(problems: list[Problem]) -> pd.DataFrame:
    # attribute access, not dataclasses.asdict (which deep-copies: 100,000 problems took 15 s)
    frame = pd.DataFrame([[getattr(p, c) for c in QUALITY_COLUMNS] for p in problems], columns=QUALITY_COLUMNS)
    frame = frame.astype({c: "Int64" if c in ("year", "row") else "string" for c in QUALITY_COLUMNS})
    return quality_frame_from_frame(frame)


def files_frame(run: CleanRun) -> pd.DataFrame:
    rows = []
    for y, c in sorted(run.years.items()):
        counts = pd.Series([p.severity for p in c.problems]).value_counts()
        rows.append({"year": y, "file": c.file, "sha256": c.sha256, "status": "ok", "synthetic": c.synthetic,
                     **{f"rows_{TABLES[k]}": v for k, v in c.rows_read.items()},
                     **{f"n_{s}": int(counts.get(s, 0)) for s in ("error", "warning", "info")}})
    for f in run.failures:
        rows.append({"year": _year_or_none(f.file), "file": f.file, "status": "failed", "sha256": ""})
    return pd.DataFrame(rows)


def combine(run: CleanRun) -> dict[str, pd.DataFrame]:
    """The tidy tables over all cleaned years."""
    cleaned = [c for _, c in sorted(run.years.items())]
    out = {name: pd.concat([c.tables[sheet] for c in cleaned], ignore_index=True) if cleaned else pd.DataFrame()
           for sheet, name in TABLES.items()}
    problems = [p for c in cleaned for p in c.problems]
    problems += [f.as_problem(_year_or_none(f.file)) for f in run.failures]
    out["quality"], out["files"] = quality_frame(problems), files_frame(run)
    return out


def load_tables(processed_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    """Read back the cleaned tables written by ``save``."""
    folder = config.processed_dir(processed_dir)
    out = {}
    for name in (*TABLES.values(), "quality", "files"):
        path = folder / f"{name}.parquet"
        if not path.exists():
            raise AnalysisError(f"Chưa có dữ liệu đã làm sạch ({path.name}); hãy chạy 'python -m analysis clean'.",
                                f"No cleaned data yet ({path.name}); run 'python -m analysis clean' first.")
        out[name] = pd.read_parquet(path)
    return out


def merge_with_existing(new: dict[str, pd.DataFrame], folder: Path, years: list[int]) -> dict[str, pd.DataFrame]:
    """When only some years were cleaned, keep the other years already in ``folder``."""
    merged = {}
    for name, frame in new.items():
        path = folder / f"{name}.parquet"
        if path.exists():
            old = pd.read_parquet(path)
            if "year" in old:
                old = old[~old["year"].isin(years)]
                frame = pd.concat([old, frame]).sort_values("year", kind="stable", ignore_index=True)
        merged[name] = frame
    if "quality" in merged:
        merged["quality"] = quality_frame_from_frame(merged["quality"])
    return merged


def quality_frame_from_frame(frame: pd.DataFrame) -> pd.DataFrame:
    order = {s: i for i, s in enumerate(("error", "warning", "info"))}
    frame = frame.assign(_o=frame["severity"].map(order))
    return frame.sort_values(["year", "file", "_o", "sheet", "row"], kind="stable").drop(columns="_o").reset_index(drop=True)


def save(tables: dict[str, pd.DataFrame], processed_dir: Path) -> None:
    """Write every table, all or nothing (``atomic.write_files``)."""
    folder = Path(processed_dir)
    write_files({**{folder / f"{name}.parquet": parquet_writer(frame) for name, frame in tables.items()},
                 folder / "quality.csv": csv_writer(tables["quality"])})


# --- command line --------------------------------------------------------------------------------------

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--year", type=int, action="append", help="năm báo cáo (2025 = năm học 2024-2025); lặp lại được")
    parser.add_argument("--raw-dir", help="thư mục số liệu thô (mặc định data/raw)")
    parser.add_argument("--processed-dir", help="thư mục kết quả (mặc định data/processed)")
    parser.add_argument("--keep-going", action="store_true",
                        help="vẫn ghi kết quả của các tệp đọc được khi có tệp lỗi (mã thoát vẫn khác 0)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="số tệp làm sạch song song (mặc định 1; nhiều tệp lớn: số nhân CPU)")


def run(args: argparse.Namespace) -> int:
    raw_dir = config.raw_dir(args.raw_dir)
    processed = config.processed_dir(args.processed_dir)
    if not raw_dir.is_dir():
        raise AnalysisError(f"Không có thư mục {raw_dir.name}.", f"Folder {raw_dir.name} does not exist.")
    found = discover(raw_dir, args.year)
    if not found:
        wanted = f" cho năm {args.year}" if args.year else ""
        raise AnalysisError(f"Không có tệp năm học (YYYY-YYYY.xlsx){wanted} trong {config.display_path(raw_dir)}.",
                            f"No school-year workbook (YYYY-YYYY.xlsx) found in {config.display_path(raw_dir)}.")
    result = clean_all(raw_dir, args.year, jobs=getattr(args, "jobs", 1))
    for exc in result.failures:
        print(f"LỖI / ERROR: {exc}", file=sys.stderr)
    if result.failures and not args.keep_going:
        print(f"{len(result.failures)} tệp lỗi: không ghi kết quả, dữ liệu cũ giữ nguyên. / "
              f"{len(result.failures)} file(s) failed: nothing written, previous outputs kept.", file=sys.stderr)
        return 1
    tables = combine(result)
    if args.year:
        tables = merge_with_existing(tables, processed, list(result.years) + [
            y for y in (_year_or_none(f.file) for f in result.failures) if y])
    save(tables, processed)
    q = tables["quality"]
    for year, c in sorted(result.years.items()):
        n = q[q["year"] == year]["severity"].value_counts()
        print(f"{c.file}: {sum(c.rows_read.values())} dòng/rows; lỗi/errors {n.get('error', 0)}, "
              f"cảnh báo/warnings {n.get('warning', 0)}, ghi chú/info {n.get('info', 0)}")
    print(f"-> {config.display_path(processed)}/ (truong, mam_non, pho_thong, xa_phuong, quality)")
    return 1 if result.failures else 0
