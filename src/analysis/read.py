"""Workbook -> raw tables: find each sheet's header row, map its headers, separate data, totals and notes.

Office exports carry title rows, a row of column numbers "(1) (2) …", two-row headers ("HS bỏ học" over
"Tổng số | Nữ"), a totals row and a signature block. The cells come back untouched (apart from NFC) with
their Excel row numbers; ``clean.py`` types them. A sheet that cannot be used raises ``DataFileError``.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

from analysis.errors import DataFileError, Problem, excel_column_letter, short_value
from analysis.template import NOTE_SHEET, SHEETS, Column, Sheet, fold

HEADER_SCAN_ROWS = 40
MAX_ROWS = 200_000  # a district workbook has hundreds; refuse absurd sheets instead of hanging

_TOTAL_KEYS = ("tongcong", "tongso", "total", "grandtotal")
_TOTAL_EXACT = {"cong", "tong", "tongcong", "tongso", "total"}
_FOOTER_PREFIXES = (
    "nguoilap", "ghichu", "thutruong", "hieutruong", "truongphong", "photruongphong", "kyten", "luuy",
    "note", "dulieugialap", "dulieumophong", "syntheticdata", "xacnhan", "kttruongphong", "tmuybannhandan",
    "tmuyban", "kthieutruong", "kyghiro", "daky", "kyvaghiro", "kydongdau",
)
_DATE_LINE = re.compile(r"ngay\d*thang\d*nam\d*")
_SUBHEADER_TOTAL = {"tongso", "ts", "tong", "cong", "sl", "soluong", "total", "all"}
_SUBHEADER_FEMALE = {"nu", "trongdonu", "trongdo", "female", "girls", "sonu"}
_ORDINAL = re.compile(r"^\(?\s*\d{1,3}\s*\)?$")
SCHOOL_YEAR_IN_TEXT = re.compile(r"(?<!\d)(20\d\d)\s*[-–—/]\s*(20\d\d)(?!\d)")
_IGNORED_HEADERS = {"stt", "tt", "sott", "sothutu", "no", "tentruong"}  # numbering; the name repeated beside a code


@dataclass
class RawSheet:
    """One sheet's table as found in the workbook, cells not yet typed."""

    file: str
    sheet: str  # name as written in the workbook
    spec: Sheet
    header_row: int  # Excel row number of the (last) header row
    columns: dict[str, tuple[int, str]]  # column id -> (0-based index, header text as written)
    rows: list[tuple[int, list]]  # (Excel row number, cells) for data rows
    totals: tuple[int, list] | None = None
    title_text: str = ""
    problems: list[Problem] = field(default_factory=list)
    formula_cells: set[str] = field(default_factory=set)  # cells holding a formula without a computed value

    def header_of(self, column_id: str) -> str:
        return self.columns[column_id][1] if column_id in self.columns else column_id

    def cell_ref(self, column_id: str, excel_row: int) -> str:
        return f"{excel_column_letter(self.columns[column_id][0])}{excel_row}"

    def log(self, severity: str, code: str, vi: str, en: str, **where) -> None:
        self.problems.append(Problem(file=self.file, sheet=self.sheet, severity=severity, code=code, message_vi=vi,
                                     message_en=en, **where))


@dataclass
class RawWorkbook:
    file: str
    sheets: dict[str, RawSheet]  # template sheet name -> table
    note_text: str = ""


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and value != value
    )


def open_workbook(path: Path):
    """Open with calamine; any failure becomes a bilingual DataFileError naming the file."""
    from python_calamine import CalamineWorkbook

    name = path.name
    if not path.is_file():
        raise DataFileError(name, "Không tìm thấy tệp.", "File not found.", code="file_missing")
    if path.stat().st_size == 0:
        raise DataFileError(name, "Tệp rỗng (0 byte).", "The file is empty (0 bytes).", code="file_empty")
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):  # OLE container: an old .xls, or an .xlsx encrypted with a password
        raise DataFileError(
            name, "Tệp được đặt mật khẩu hoặc là định dạng .xls cũ; hãy lưu lại thành .xlsx không mật khẩu.",
            "The file is password-protected or an old .xls; save it as an .xlsx without a password.",
            code="file_encrypted_or_xls")
    if not magic.startswith(b"PK"):
        raise DataFileError(
            name, "Tệp không phải là sổ tính Excel (.xlsx) — có thể là CSV, PDF hoặc tệp khác bị đổi tên.",
            "The file is not an Excel workbook (.xlsx) — perhaps a renamed CSV, PDF or other file.",
            code="file_not_xlsx")
    try:
        with zipfile.ZipFile(path) as zf:
            if any(info.flag_bits & 0x1 for info in zf.infolist()):  # before testzip, which fails on it
                raise DataFileError(name, "Tệp nén được đặt mật khẩu.", "The archive is password-protected.",
                                    code="file_encrypted_or_xls")
            bad = zf.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(bad)
        return CalamineWorkbook.from_path(str(path))
    except DataFileError:
        raise
    except Exception as exc:  # zipfile / calamine raise many kinds; all mean "cannot read"
        raise DataFileError(name, f"Không đọc được tệp Excel (tệp hỏng?): {short_value(exc, 160)}",
                            f"Cannot read the Excel file (corrupted?): {short_value(exc, 160)}",
                            code="file_unreadable") from None


def read_grid(workbook, sheet_name: str, file: str) -> list[list]:
    try:
        rows = workbook.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
    except Exception as exc:
        raise DataFileError(file, f"Không đọc được sheet: {short_value(exc, 160)}",
                            f"Cannot read the sheet: {short_value(exc, 160)}", sheet=sheet_name,
                            code="sheet_unreadable") from None
    if len(rows) > MAX_ROWS:
        raise DataFileError(file, f"Sheet có {len(rows):,} dòng, vượt giới hạn {MAX_ROWS:,}.",
                            f"The sheet has {len(rows):,} rows, above the limit of {MAX_ROWS:,}.", sheet=sheet_name,
                            code="sheet_too_large")
    normalize = unicodedata.normalize  # bound once: this runs for every cell of the sheet
    return [[normalize("NFC", v) if isinstance(v, str) else v for v in row] for row in rows]


def _combine_two_row_header(top: list, sub: list) -> list[str] | None:
    """Merge a header row with a sub-header row ("Tổng số" / "Nữ") into single header texts."""
    sub_keys = [fold(v) if not _is_blank(v) else "" for v in sub]
    if not any(k in _SUBHEADER_TOTAL | _SUBHEADER_FEMALE for k in sub_keys):
        return None
    combined, parent = [], ""
    for t, s, s_key in zip_longest(top, sub, sub_keys):  # None beyond the shorter row
        if not _is_blank(t):
            parent = str(t).strip()
        elif not s_key:
            parent = ""  # a blank column ends a merged parent
        if s_key in _SUBHEADER_FEMALE and parent:
            combined.append(f"{parent} – Nữ")
        elif s_key in _SUBHEADER_TOTAL or not s_key:
            combined.append(parent if not _is_blank(t) or s_key else "")
        else:
            combined.append(str(s).strip())
    return combined


def _map_headers(cells: list, lookup: dict[str, Column]) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for j, cell in enumerate(cells):
        if not _is_blank(cell) and (col := lookup.get(fold(cell))) is not None:
            found.setdefault(col.id, []).append((j, str(cell).strip()))
    return found


def _is_ordinal_row(cells: list) -> bool:
    """A row of column numbers under the header, "(1) (2) (3) …" or 1 2 3 …: increasing, from 2 at most."""
    nums = []
    for v in (c for c in cells if not _is_blank(c)):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer():
            nums.append(int(v))
        elif isinstance(v, str) and _ORDINAL.match(v.strip()):
            nums.append(int(re.sub(r"\D", "", v)))
        else:
            return False
    return len(nums) >= 2 and nums[0] <= 2 and all(b > a for a, b in zip(nums, nums[1:]))


def _numeric_cells(cells: list, indexes: list[int]) -> int:
    """How many of the given cells hold a number (as a number or as digits): data rows have several."""
    values = [cells[idx] if idx < len(cells) else None for idx in indexes]
    return sum(1 for v in values if (isinstance(v, (int, float)) and not isinstance(v, bool) and v == v)
               or (isinstance(v, str) and re.fullmatch(r"\s*[\d.]+\s*", v)))


def _row_markers(cells: list, key_value) -> tuple[bool, bool]:
    """(totals row?, first row of the notes/signature block?) in one pass, the key folded once: runs for every row."""
    strs = [c for c in cells if isinstance(c, str)]
    k = fold(key_value) if isinstance(key_value, str) else ""
    folded = (k if v is key_value else fold(v) for v in (key_value, *strs[:2]) if isinstance(v, str) and v.strip())
    totals = any(f in _TOTAL_EXACT or f.startswith(_TOTAL_KEYS) for f in folded)
    text = k or fold(" ".join([c for c in strs if c.strip()][:3]))  # the key, else the row's first texts
    return totals, bool(text) and (text.startswith(_FOOTER_PREFIXES) or _DATE_LINE.search(text) is not None)


def find_table(grid: list[list], spec: Sheet, file: str, sheet_name: str) -> RawSheet:
    """Locate header, data rows, totals row and footer in a sheet grid."""
    lookup = {key: col for col in reversed(spec.columns) for key in col.header_keys()}  # the first column wins
    found = [_map_headers(row, lookup) for row in grid[:HEADER_SCAN_ROWS]]
    best_row = max(range(len(found)), key=lambda i: len(found[i]), default=-1)  # the first with the most headers
    if best_row < 0 or len(found[best_row]) < 2:
        expected = ", ".join(f"'{c.vi}'" for c in spec.required)
        raise DataFileError(
            file, f"Không tìm thấy dòng tiêu đề trong {HEADER_SCAN_ROWS} dòng đầu (cần các cột {expected}).",
            f"No header row found in the first {HEADER_SCAN_ROWS} rows (expected columns "
            f"{', '.join(repr(c.en) for c in spec.required)}).", sheet=sheet_name, code="header_not_found")
    best, header_row = found[best_row], best_row
    # two-row header: "HS bỏ học" merged over "Tổng số | Nữ"
    combined = _combine_two_row_header(grid[best_row], grid[best_row + 1] if best_row + 1 < len(grid) else [])
    found2 = {} if combined is None else _map_headers(combined, lookup)
    if len(found2) >= len(best):  # best has two columns at least
        best, header_row = found2, best_row + 1
    for cid, hits in best.items():
        if len(hits) > 1:
            cols = ", ".join(f"{excel_column_letter(j)} ('{h}')" for j, h in hits)
            raise DataFileError(file, f"Cột '{spec.column(cid).vi}' xuất hiện nhiều lần: {cols}.",
                                f"Column '{spec.column(cid).en}' appears more than once: {cols}.",
                                sheet=sheet_name, row=header_row + 1, column=hits[1][1], code="duplicate_column")
    columns = {cid: hits[0] for cid, hits in best.items()}
    missing = [c for c in spec.required if c.id not in columns]
    if spec.name == "XaPhuong" and "ma_xa_phuong" in columns:  # the ward code may stand for the ward name
        missing = [c for c in missing if c.id != "xa_phuong"]
    if missing:
        vi, en = (", ".join(f"'{c.vi}'" for c in missing), ", ".join(f"'{c.en}' ('{c.vi}')" for c in missing))
        raise DataFileError(file, f"Thiếu cột bắt buộc: {vi} (dòng tiêu đề {header_row + 1}).",
                            f"Missing required column(s): {en} (header row {header_row + 1}).", sheet=sheet_name,
                            row=header_row + 1, column=missing[0].vi, code="missing_column")
    table = RawSheet(file=file, sheet=sheet_name, spec=spec, header_row=header_row + 1, columns=columns,
                     rows=[], title_text=" ".join(str(c) for r in grid[:best_row] for c in r if not _is_blank(c)))
    header_cells = grid[best_row] if header_row == best_row else combined
    known = {idx for idx, _ in columns.values()}
    for j, cell in enumerate(header_cells):
        if not _is_blank(cell) and j not in known and fold(cell) not in _IGNORED_HEADERS:
            table.log("info", "unknown_column", "Cột không thuộc mẫu, được bỏ qua.",
                      "Column not in the template, ignored.", row=header_row + 1, column=str(cell).strip(),
                      cell=f"{excel_column_letter(j)}{header_row + 1}", value=short_value(cell))
    _collect_rows(grid, header_row + 1, table)
    # a column with numbers but no header (half of a merged header cell?) is not read: say so, not silently
    for j in range(max((len(cells) for _, cells in table.rows), default=0)):
        if j < len(header_cells) and not _is_blank(header_cells[j]):
            continue
        filled = sum(1 for _, cells in table.rows if j < len(cells) and not _is_blank(cells[j]))
        if filled:
            letter = excel_column_letter(j)
            table.log("warning", "unnamed_column",
                      f"Cột {letter} có {filled} ô số liệu nhưng không có tiêu đề (ô gộp?); cột không được đọc.",
                      f"Column {letter} has {filled} filled cells but no header (a merged cell?); the column is "
                      "not read.", row=table.header_row, cell=f"{letter}{table.header_row}", column=letter)
    if not table.rows:
        table.log("error", "no_data_rows", "Sheet chỉ có dòng tiêu đề, không có dòng số liệu nào.",
                  "The sheet has a header row but no data rows.", row=header_row + 1)
    return table


def _collect_rows(grid: list[list], start: int, table: RawSheet) -> None:
    key = next(k for k in (*table.spec.key, "ma_xa_phuong") if k in table.columns)  # ward code for a ward name
    key_idx = table.columns[key][0]
    value_idx = [idx for cid, (idx, _) in table.columns.items() if cid not in table.spec.key]
    ended_at: int | None = None
    rows = [(i + 1, cells) for i, cells in enumerate(grid[start:], start) if not all(_is_blank(c) for c in cells)]
    if rows and _is_ordinal_row(rows[0][1]):  # the column numbers under the header
        rows = rows[1:]
    for excel_row, cells in rows:
        key_value = cells[key_idx] if key_idx < len(cells) else None
        has_values = any(idx < len(cells) and not _is_blank(cells[idx]) for idx in value_idx)
        if ended_at is not None:
            if not _is_blank(key_value) and _numeric_cells(cells, value_idx) >= min(2, len(value_idx)):
                table.log("warning", "row_after_table_end",
                          f"Dòng có số liệu nằm sau dòng tổng cộng/chữ ký (dòng {ended_at}), không được đọc.",
                          f"A row with data lies after the totals/signature row (row {ended_at}); not read.",
                          row=excel_row, column=table.header_of(key), value=short_value(key_value))
            continue
        is_totals, is_footer = _row_markers(cells, key_value)
        if is_totals:
            table.totals = (excel_row, cells)
            ended_at = excel_row
            continue
        if is_footer and (_is_blank(key_value) or not has_values or fold(key_value).startswith(_FOOTER_PREFIXES)):
            ended_at = excel_row  # a signature or notes line; a row with a real key and numbers stays data
            continue
        if _is_blank(key_value):
            if has_values:
                table.log("error", "missing_key", "Dòng có số liệu nhưng thiếu mã/tên; dòng bị loại.",
                          "Row has data but no code/name; row excluded.", row=excel_row, column=table.header_of(key),
                          cell=table.cell_ref(key, excel_row))
            continue
        table.rows.append((excel_row, cells))


def formulas_without_values(path: Path) -> dict[str, set[str]]:
    """Sheet name -> cells whose formula has no cached value (written by a program, never opened in
    Excel): calamine reads them as blank, and the person who fills the file needs to know why."""
    import xml.etree.ElementTree as ET

    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
          "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}
    out: dict[str, set[str]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            targets = {r.get("Id"): r.get("Target", "") for r in ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))}
            for sheet in ET.fromstring(zf.read("xl/workbook.xml")).iterfind("m:sheets/m:sheet", ns):
                target = targets.get(sheet.get(f"{{{ns['r']}}}id"), "")
                name = "xl/" + target.lstrip("/").removeprefix("xl/")
                data = zf.read(name) if name in zf.namelist() else b""
                if b"<f" not in data:
                    continue
                cells = {c.get("r", "") for c in ET.fromstring(data).iterfind(".//m:c", ns)
                         if c.find("m:f", ns) is not None and not c.findtext("m:v", "", ns).strip()}
                if cells:
                    out[sheet.get("name")] = cells
    except (KeyError, ET.ParseError, zipfile.BadZipFile, OSError):
        return {}
    return out


def read_workbook(path: str | Path) -> RawWorkbook:
    """Read every template sheet of one school-year workbook."""
    path = Path(path)
    file, wb = path.name, open_workbook(path)
    names = {s.name: next((n for n in wb.sheet_names if fold(n) in s.name_keys()), None) for s in SHEETS}
    missing = [s for s in SHEETS if names[s.name] is None]
    if missing:
        present = ", ".join(f"'{n}'" for n in wb.sheet_names) or "—"
        raise DataFileError(
            file, "Thiếu sheet: " + ", ".join(f"'{s.name}' ({s.vi})" for s in missing) + f". Có: {present}.",
            "Missing sheet(s): " + ", ".join(f"'{s.name}' ({s.en})" for s in missing) + f". Found: {present}.",
            sheet=missing[0].name, code="missing_sheet")
    tables, formulas = {}, formulas_without_values(path)
    for spec in SHEETS:
        name = names[spec.name]
        tables[spec.name] = find_table(read_grid(wb, name, file), spec, file, name)
        tables[spec.name].formula_cells = formulas.get(name, set())
    note = next((n for n in wb.sheet_names if fold(n) == fold(NOTE_SHEET)), None)
    note_grid = read_grid(wb, note, file) if note is not None else []
    note_text = " ".join(str(c) for r in note_grid for c in r if not _is_blank(c))
    return RawWorkbook(file=file, sheets=tables, note_text=note_text)
