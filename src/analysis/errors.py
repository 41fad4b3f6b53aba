"""Bilingual problems found in raw data: the hard ones stop a file, the soft ones go to quality.csv.

Every message says where the problem is (file, sheet, row, column as the person who filled the workbook
sees them) in Vietnamese and English, so it can be fixed at the source instead of guessed at here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# error: the value is excluded from every computation (never guessed); warning: the value is kept but looks
# wrong (a totals row that disagrees with the sum); info: worth knowing (an ignored extra column).
Severity = Literal["error", "warning", "info"]

QUALITY_COLUMNS = [
    "year", "file", "sheet", "row", "column", "cell", "value", "severity", "code",
    "message_vi", "message_en", "ma_truong", "column_id",
]


def excel_column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> 'A', 27 -> 'AB')."""
    head, rem = divmod(index, 26)
    return (excel_column_letter(head - 1) if head else "") + chr(65 + rem)


@dataclass
class Problem:
    """One row of quality.csv."""

    file: str
    sheet: str
    severity: Severity
    code: str
    message_vi: str
    message_en: str
    row: int | None = None  # Excel row number, as shown in Excel (1-based)
    column: str = ""  # header text as written in the file
    cell: str = ""  # e.g. "F12"
    value: str = ""
    year: int | None = None
    ma_truong: str = ""
    column_id: str = ""  # template id of the column


def short_value(value: object, limit: int = 80) -> str:
    """A cell value as text for messages: control characters shown, long text cut."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "".join(ch if ch.isprintable() or ch == " " else f"\\x{ord(ch):02x}" for ch in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class DataFileError(Exception):
    """A raw file that cannot be used at all: the run stops for that file with this message."""

    file: str
    message_vi: str
    message_en: str
    sheet: str = ""
    row: int | None = None
    column: str = ""
    code: str = "file_error"

    def __str__(self) -> str:
        where = [self.sheet and f"sheet '{self.sheet}'", self.row is not None and f"dòng/row {self.row}",
                 self.column and f"cột/column '{self.column}'"]
        return f"{', '.join([self.file, *filter(None, where)])}: {self.message_vi} / {self.message_en}"

    def as_problem(self, year: int | None = None) -> Problem:
        return Problem(file=self.file, sheet=self.sheet, severity="error", code=self.code, message_vi=self.message_vi,
                       message_en=self.message_en, row=self.row, column=self.column, year=year)


class AnalysisError(Exception):
    """A documented failure of a command that is not about one raw file (bad CLI input, missing outputs)."""

    def __init__(self, message_vi: str, message_en: str):
        super().__init__(f"{message_vi} / {message_en}")
        self.message_vi, self.message_en = message_vi, message_en
