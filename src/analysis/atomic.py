"""Outputs appear whole or not at all: each is written to a temporary file (or folder) beside its final
place, then moved there with ``os.replace``. A run that fails or is killed leaves the previous output."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_file(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp)``, then move ``tmp`` onto ``path``; on any failure ``path`` is untouched."""
    return write_files({path: writer})[0]


def write_files(writers: dict) -> list[Path]:
    """Several outputs of one step ({path: writer}): every file is written to its temporary file first, and
    only when all are written are they moved into place, one rename each (microseconds apart). A failure
    while writing leaves every previous output as it was."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, writer in writers.items():
            final = Path(path)
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
            os.close(fd)
            staged.append((Path(name), final))
            os.chmod(name, 0o666 & ~_UMASK)  # mkstemp makes private files; outputs are for their readers
            writer(Path(name))
        for tmp, final in staged:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    return [final for _, final in staged]


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def install(built: Path, final: Path) -> Path:
    """Move a finished file or folder (built beside ``final``, on the same file system) into its place. A
    folder cannot replace another in one rename: the old one is moved aside first, then removed; a run
    killed between the two renames is put right by ``recover_folder``."""
    _put_back(final)
    if built.is_dir() and final.exists():
        aside = final.with_name(f".{final.name}.old")
        os.replace(final, aside)
        os.replace(built, final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(built, final)
    return final


def recover_folder(path: str | os.PathLike) -> None:
    """After a killed ``install`` of a folder: put the old folder back if the new one never arrived, and remove
    the temporary folders and files of abandoned runs."""
    final = Path(path)
    _put_back(final)
    for stale in final.parent.glob(f".{final.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def _put_back(final: Path) -> None:
    """The old folder moved aside by an ``install`` that was killed before the new one arrived goes back."""
    aside = final.with_name(f".{final.name}.old")
    if aside.exists():
        if final.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(aside, final)
