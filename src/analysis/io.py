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
    """The same frame with every text cell (and header) neutralised; numbers untouched."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(neutralise_formula).astype(out[col].dtype)
    out.columns = [neutralise_formula(c) for c in out.columns]
    return out


def parquet_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    # utf-8-sig so that Excel on an office PC opens Vietnamese text correctly; formula-like text neutralised
    safe = neutralise_frame(frame)
    return lambda tmp: safe.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")


class Staging:
    """Stage several outputs of one folder, then ``commit()`` them all or none."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        recover(self.folder)
        self._staged: dict[Path, Path] = {}

    def add(self, name: str, writer: Callable[[Path], None]) -> None:
        final = self.folder / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_path(final)
        try:
            writer(tmp)
            _fsync(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        old = self._staged.pop(final, None)
        if old is not None:
            old.unlink(missing_ok=True)
        self._staged[final] = tmp

    def add_parquet(self, name: str, frame: pd.DataFrame) -> None:
        self.add(name, parquet_writer(frame))

    def add_csv(self, name: str, frame: pd.DataFrame) -> None:
        self.add(name, csv_writer(frame))

    def commit(self) -> list[Path]:
        moves = {str(t.relative_to(self.folder)): str(f.relative_to(self.folder)) for f, t in self._staged.items()}
        write_text_atomic(self.folder / JOURNAL, json.dumps(moves, ensure_ascii=False, indent=1))
        _roll_forward(self.folder, moves)
        done = list(self._staged)
        self._staged.clear()
        return done

    def discard(self) -> None:
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.discard()  # commit() must be called explicitly; anything left is abandoned


def _roll_forward(folder: Path, moves: dict[str, str]) -> None:
    for tmp, final in moves.items():
        src = folder / tmp
        if src.exists():
            os.replace(src, folder / final)
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
            stale.unlink()


@contextlib.contextmanager
def staged(folder: str | os.PathLike) -> Iterator[Staging]:
    """``with staged(dir) as st: st.add_parquet(...); ...; st.commit()``"""
    st = Staging(folder)
    try:
        yield st
    finally:
        st.discard()
