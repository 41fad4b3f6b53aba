"""How tables are written for the people and programs that read them: Parquet for programs, CSV that Excel
on an office PC opens correctly (UTF-8 with a byte order mark, text that a spreadsheet would run as a
formula neutralised). Every file is written atomically (``atomic.write_file``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analysis.atomic import write_file

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe (OWASP: CSV injection).
    Raw files are untrusted; a school name like '=HYPERLINK(…)' must reach Excel as text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The same frame with every text cell (and header) neutralised; numbers untouched. A categorical
    column is neutralised through its categories (a few, however many rows)."""
    out = frame.copy()
    for col in out.columns:
        column = out[col]
        if isinstance(column.dtype, pd.CategoricalDtype):
            fixed = [neutralise_formula(c) for c in column.cat.categories]
            if fixed != list(column.cat.categories):
                out[col] = column.astype(object).map(neutralise_formula).astype("category")
        elif column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            risky = column.astype("string").str.startswith(FORMULA_START).fillna(False).to_numpy(bool)
            if risky.any():
                out[col] = column.where(~risky, column[risky].map(neutralise_formula))
    out.columns = [neutralise_formula(c) for c in out.columns]
    return out


def parquet_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: frame.to_parquet(tmp, index=False, compression="zstd")


def csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    """A CSV for Excel users. Arrow writes it (pandas' ``to_csv`` took 76 s for a country's 2.9 million
    indicator rows, Arrow 10 s); text columns that mix numbers and words (a quality table's 'row') are
    written as text."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    safe = neutralise_frame(frame)
    for col in safe.columns:
        if safe[col].dtype == object and pd.api.types.infer_dtype(safe[col], skipna=True) not in (
                "string", "empty", "boolean", "integer", "floating"):
            safe[col] = safe[col].map(lambda v: v if pd.isna(v) else str(v)).astype("string")
    table = pa.Table.from_pandas(safe, preserve_index=False)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write("\ufeff".encode())
            pcsv.write_csv(table, fh, pcsv.WriteOptions(include_header=True, quoting_style="needed"))

    return write


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    return write_file(path, csv_writer(frame))


def small_csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    """A small CSV as a person saving from a spreadsheet would write it (the raw-side files: crosswalk, sample
    manifest): pandas' format."""
    safe = neutralise_frame(frame)
    return lambda tmp: safe.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")


def read_parquet_folder(folder: Path) -> pd.DataFrame:
    """The Parquet files of a folder (one per reporting year) as one frame, in file-name order. A column
    without any value in one file (a text column of a year that projected nothing) has no type there: the
    files' types are promoted to the widest, as concatenating the frames would."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(f) for f in sorted(Path(folder).glob("*.parquet"))]
    return pa.concat_tables(tables, promote_options="permissive").to_pandas() if tables else pd.DataFrame()
