"""Atomic writes: a run that fails or is killed never leaves a half-written output.

Each output is written to a temporary file in the same folder and moved into place with ``os.replace``
(atomic on one file system). A step that writes several files stages them all first and commits them
together through a small journal, so a run killed during the commit is rolled forward by the next run
(``recover``): readers see the old set or the new set, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

JOURNAL = ".commit-journal.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def _tmp_path(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    os.chmod(name, _MODE)  # mkstemp makes 0600 files; outputs are for everyone who may read them
    return Path(name)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp)`` then move ``tmp`` onto ``path``; on any failure ``path`` is untouched."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(final)
    try:
        writer(tmp)
        _fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe (OWASP: CSV injection).
    Raw files are untrusted; a school name like '=HYPERLINK(…)' must reach Excel as text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The same frame with every text cell (and header) neutralised; numbers untouched.

    Each column's distinct values are checked, not its cells: an export of millions of rows repeats a few
    thousand texts, and a column with nothing to neutralise is returned as it is."""
    out = frame.copy(deep=False)
    for col in out.columns:
        column = out[col]
        if isinstance(column.dtype, pd.CategoricalDtype):
            fixed = [neutralise_formula(c) for c in column.cat.categories]
            if fixed != list(column.cat.categories) and len(set(fixed)) == len(fixed):
                out[col] = column.cat.rename_categories(fixed)
            elif fixed != list(column.cat.categories):
                out[col] = column.astype(object).map(neutralise_formula)
        elif column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            distinct = pd.unique(column.dropna())
            if column.dtype == object:  # Python objects: a loop over them is fast
                flagged = [v for v in distinct if isinstance(v, str) and v.startswith(FORMULA_START)]
            else:  # Arrow-backed text: one vectorised test (iterating it is slow)
                text = pd.Series(distinct, dtype=column.dtype)
                flagged = text[text.str.startswith(FORMULA_START).to_numpy(bool)].tolist()
            risky = {v: neutralise_formula(v) for v in flagged}
            if risky:
                out[col] = column.where(~column.isin(list(risky)), column.map(risky)).astype(column.dtype)
    out.columns = [neutralise_formula(c) for c in out.columns]
    return out


def parquet_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    """A small CSV as a person saving from a spreadsheet would write it (the raw-side files: crosswalk, sample
    manifest). Processed outputs, which can be millions of rows, go through ``CsvParts``."""
    # utf-8-sig so that Excel on an office PC opens Vietnamese text correctly; formula-like text neutralised
    safe = neutralise_frame(frame)
    return lambda tmp: safe.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")


def table_csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with CsvParts(tmp) as out:
            out.write(frame)
    return write


def _arrow_schema(table):
    """The file's schema from its first part: dictionary indices widened to int32 (a part with more categories
    needs wider ones), and all-empty columns typed as text. Dictionaries stay: Parquet stores them as they
    are, and Arrow's CSV writer writes their text (the same bytes, faster than decoding them first)."""
    import pyarrow as pa

    fields = []
    for f in table.schema:
        if pa.types.is_dictionary(f.type):
            f = f.with_type(pa.dictionary(pa.int32(), f.type.value_type, f.type.ordered))
        elif pa.types.is_null(f.type):
            f = f.with_type(pa.string())
        fields.append(f)
    return pa.schema(fields, metadata=table.schema.metadata)


def write_parquet_normalised(frame: pd.DataFrame, path: Path) -> None:
    """One Parquet file in the normalised types of ``_arrow_schema``, so that files written apart (one per
    vintage, by different processes) read back together as one table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = _arrow_schema(table)
    # dictionary encoding for text only: numbers such as projected values are nearly all distinct, and trying
    # a dictionary for each of their columns cost a fifth of the writing
    text = [f.name for f in schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)]
    pq.write_table(table.cast(schema), path, compression="zstd", use_dictionary=text)


def read_parquet_files(files: list[Path]) -> pd.DataFrame:
    """Parquet files as one frame, in the given order; categorical columns get the union of the files'
    categories."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(f) for f in files]
    # a column without any value in one file (text of a vintage that projected nothing) may have a narrower
    # type there: the widest wins, as a concatenation of the frames would have it
    return pa.concat_tables(tables, promote_options="permissive").to_pandas() if tables else pd.DataFrame()


def _arrow_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix text and numbers (a quality table's 'row': a number, or text for a whole
    sheet) written as the text pandas would write; Arrow refuses mixed columns."""
    mixed = [c for c in frame.columns if frame[c].dtype == object
             and pd.api.types.infer_dtype(frame[c], skipna=True) not in ("string", "empty", "boolean", "integer",
                                                                         "floating", "bytes")]
    if not mixed:
        return frame
    out = frame.copy(deep=False)
    for col in mixed:
        out[col] = pd.array([None if v is None or (isinstance(v, float) and v != v) else str(v) for v in out[col]],
                            dtype="string")
    return out


class CsvParts:
    """A CSV written part by part, its header once, for the people who open it in Excel: UTF-8 with a byte
    order mark (Excel on an office PC then reads Vietnamese correctly), text quoted, and text that a
    spreadsheet would run as a formula neutralised. Arrow formats the rows, slices of them on two threads at
    once (its writer releases the GIL): a country's indicator table (2.9 million rows) took 76 s with
    ``DataFrame.to_csv``, 10 s with Arrow on one thread."""

    SLICE_ROWS = 250_000
    THREADS = 2

    def __init__(self, path: Path):
        self._fh = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._fh.write("\ufeff".encode())
        self._schema = None

    def write(self, frame: pd.DataFrame) -> None:
        import io
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow as pa
        import pyarrow.csv as pcsv

        table = pa.Table.from_pandas(_arrow_ready(neutralise_frame(frame)), preserve_index=False)
        if self._schema is None:
            self._schema = _arrow_schema(table)
            pcsv.write_csv(pa.Table.from_batches([], self._schema), self._fh,
                           pcsv.WriteOptions(include_header=True, quoting_style="needed"))
        elif table.schema.names != self._schema.names:
            raise ValueError(f"a CSV part has columns {table.schema.names}, expected {self._schema.names}")
        table = table.cast(self._schema)
        rows = pcsv.WriteOptions(include_header=False, quoting_style="needed")

        def format_rows(start: int) -> bytes:
            buffer = io.BytesIO()
            pcsv.write_csv(table.slice(start, self.SLICE_ROWS), buffer, rows)
            return buffer.getvalue()

        starts = list(range(0, table.num_rows, self.SLICE_ROWS))
        if len(starts) <= 1:
            self._fh.writelines(format_rows(s) for s in starts)
            return
        with ThreadPoolExecutor(self.THREADS) as pool:
            for i in range(0, len(starts), self.THREADS):  # a few slices at a time: memory stays bounded
                self._fh.writelines(pool.map(format_rows, starts[i:i + self.THREADS]))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "CsvParts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def join_csv_parts(parts: list[Path], out: Path) -> None:
    """CSV files written apart (by ``CsvParts``, each with the byte order mark and header) as one file: the
    first whole, the rows of the others after it. The bytes are copied by the kernel where it can."""
    with open(out, "wb") as dst:
        header = None
        for part in parts:
            with open(part, "rb") as src:
                first = src.readline()
                if header is None:
                    header = first
                    dst.write(first)
                elif first != header:
                    raise ValueError(f"{part.name}: its header differs from {parts[0].name}'s")
                dst.flush()
                _copy_rest(src, dst)


def _copy_rest(src, dst) -> None:
    start, size = src.tell(), os.fstat(src.fileno()).st_size
    if hasattr(os, "copy_file_range"):
        offset = start
        try:
            while offset < size:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), size - offset, offset)
                if copied == 0:
                    break
                offset += copied
            if offset == size:
                return
        except OSError:
            pass
        src.seek(offset)
        dst.seek(0, os.SEEK_END)
    shutil.copyfileobj(src, dst, 16 * 2**20)


class Staging:
    """Stage several outputs of one folder, then ``commit()`` them all or none."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        recover(self.folder)
        self._staged: dict[Path, Path] = {}  # final path -> its staged temporary file or folder
        self._scratch: list[Path] = []

    def _stage(self, final: Path, tmp: Path) -> None:
        old = self._staged.pop(final, None)
        if old is not None:
            _remove(old)
        self._staged[final] = tmp

    def add(self, name: str, writer: Callable[[Path], None]) -> None:
        tmp = self.reserve(name)
        try:
            writer(tmp)
        except BaseException:
            self._staged.pop(self.folder / name, None)
            tmp.unlink(missing_ok=True)
            raise

    def add_parquet(self, name: str, frame: pd.DataFrame) -> None:
        self.add(name, parquet_writer(frame))

    def add_csv(self, name: str, frame: pd.DataFrame) -> None:
        self.add(name, table_csv_writer(frame))

    def reserve(self, name: str) -> Path:
        """A staged temporary file that the caller writes itself (an output assembled from parts, such as
        ``join_csv_parts``); it is committed, or discarded, with the others."""
        final = self.folder / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_path(final)
        self._stage(final, tmp)
        return tmp

    def reserve_dir(self, name: str) -> Path:
        """A staged temporary folder for an output made of several files (written by several processes at
        once); at commit it replaces the folder ``name`` as a whole."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=self.folder))
        os.chmod(tmp, 0o777 & ~_umask())
        self._stage(self.folder / name, tmp)
        return tmp

    def scratch_dir(self) -> Path:
        """A temporary folder for intermediate files, removed at commit or discard (never moved into place)."""
        tmp = Path(tempfile.mkdtemp(prefix=".scratch.", suffix=".tmp", dir=self.folder))
        self._scratch.append(tmp)
        return tmp

    def commit(self) -> list[Path]:
        for tmp in self._staged.values():  # on disk before anything moves
            for path in sorted(tmp.rglob("*")) if tmp.is_dir() else [tmp]:
                if path.is_file():
                    _fsync(path)
        moves = {str(t.relative_to(self.folder)): str(f.relative_to(self.folder)) for f, t in self._staged.items()}
        write_text_atomic(self.folder / JOURNAL, json.dumps(moves, ensure_ascii=False, indent=1))
        _roll_forward(self.folder, moves)
        done = list(self._staged)
        self._staged.clear()
        self._drop_scratch()
        return done

    def discard(self) -> None:
        for tmp in self._staged.values():
            _remove(tmp)
        self._staged.clear()
        self._drop_scratch()

    def _drop_scratch(self) -> None:
        for tmp in self._scratch:
            _remove(tmp)
        self._scratch.clear()

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.discard()  # commit() must be called explicitly; anything left is abandoned


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _roll_forward(folder: Path, moves: dict[str, str]) -> None:
    for tmp, final in moves.items():
        src, dst = folder / tmp, folder / final
        if not src.exists():
            continue  # moved already
        if src.is_dir() and dst.exists():  # a folder cannot be replaced by a rename: move the old one aside first
            aside = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old.", suffix=".tmp", dir=folder))
            os.replace(dst, aside / dst.name)
            os.replace(src, dst)
            _remove(aside)
        else:
            os.replace(src, dst)
    (folder / JOURNAL).unlink(missing_ok=True)


def recover(folder: str | os.PathLike) -> None:
    """Finish a commit that was interrupted, and remove temporary files of abandoned runs."""
    folder = Path(folder)
    journal = folder / JOURNAL
    if journal.exists():
        try:
            moves = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moves = {}
        _roll_forward(folder, moves)
    for stale in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            _remove(stale)


@contextlib.contextmanager
def staged(folder: str | os.PathLike) -> Iterator[Staging]:
    """``with staged(dir) as st: st.add_parquet(...); ...; st.commit()``"""
    st = Staging(folder)
    try:
        yield st
    finally:
        st.discard()
