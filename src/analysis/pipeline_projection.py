"""Project every indicator series (indicator x geography x sex) to 2030 and judge it against the plan's
targets, once per reporting year with only the data known then (load / process / save).

The 2023 report must show what was knowable in 2023, so each reporting year ("vintage", column
``as_of``) gets its own projection from the data up to it. The engine is ``analysis.projection``, the
same one behind ``python -m analysis project``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.allocator import release_free_memory
from analysis.errors import AnalysisError
from analysis.indicators import load_indicators, load_targets, registry
from analysis.io import CsvParts, join_csv_parts, read_parquet_files, staged, write_parquet_normalised

KEY = ["indicator_id", "geo_level", "geo_code", "sex"]
SEP = "|"


def series_id(frame: pd.DataFrame) -> pd.Series:
    """'CT16|ward|MY_PHUOC|female': the key columns joined column-wise (a row-wise join took minutes on a
    country's millions of rows)."""
    out = frame[KEY[0]].astype(str)
    for col in KEY[1:]:
        out = out + SEP + frame[col].astype(str)
    return out


def history(ind: pd.DataFrame) -> pd.DataFrame:
    """The engine's input: one row per series and year with its counts (sampling variance) and bounds.
    Cohort proxies can exceed 100% (in-migration), so they have no upper bound."""
    h, names = numbered_history(ind)
    h["series_id"] = names.to_numpy(object)[h["series_id"].to_numpy()]
    return h


def numbered_history(ind: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """``history`` with integer series ids (0, 1, ... in the order of the text ids), and the text ids.

    The engine groups, merges and looks series up by id many times; on a country's millions of rows that
    is several times faster with integers than with text, and the text is built once per series, not once
    per row."""
    hist, names, _ = _numbered(ind)
    return hist, names


def _numbered(ind: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index, pd.DataFrame]:
    """``numbered_history`` and each series' key columns, in the order of the numbers."""
    reg = registry()
    h = ind[ind["value"].notna()]
    combined = np.zeros(len(h), np.int64)
    for col in KEY:  # one integer per distinct key (a mixed-radix number of the columns' codes)
        codes, uniques = pd.factorize(h[col])
        combined = combined * max(len(uniques), 1) + codes
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    names = series_id(h.iloc[first])
    order = np.argsort(names.to_numpy(str), kind="stable")  # number the series in the order of their ids
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    bounded = h["indicator_id"].map({i: spec.compute["method"] != "cohort" for i, spec in reg.items()})
    out = pd.DataFrame({"series_id": rank[inverse], "year": h["year"].to_numpy(), "value": h["value"].to_numpy(),
                        "lower": 0.0, "upper": np.where(bounded, 100.0, np.nan),
                        "numerator": h["numerator"].to_numpy(), "denominator": h["denominator"].to_numpy(),
                        "series_break": h["series_break"].to_numpy()})
    keys = h.iloc[first[order]][KEY].astype(str).reset_index(drop=True)
    return out, pd.Index(names.to_numpy(object)[order]), keys


def series_targets(series: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Every series (``series_id``, ``indicator_id``) of a main indicator gets its indicator's targets (the
    plan sets them for the district; wards are judged against the same bar)."""
    main = {i for i, spec in registry().items() if not spec.cross_check_of}
    frame = series[["series_id", "indicator_id"]]
    frame = frame[frame["indicator_id"].isin(main)]
    out = frame.merge(targets[["indicator_id", "target_year", "target_value", "comparator"]], on="indicator_id")
    # a target year the plan does not set for this indicator (CT19 in 2030) is a row with no value
    years = sorted(targets["target_year"].unique())
    full = frame.assign(_k=1).merge(pd.DataFrame({"target_year": years, "_k": 1}), on="_k").drop(columns="_k")
    out = full.merge(out, on=["series_id", "indicator_id", "target_year"], how="left")
    comp = out["indicator_id"].map({i: ">=" if spec.direction == "increase" else "<" for i, spec in registry().items()})
    out["comparator"] = out["comparator"].fillna(comp)
    return out[["series_id", "target_year", "target_value", "comparator"]]


@dataclass
class Vintage:
    """One reporting year's projections and verdicts, in their saved layout. When they were written to files
    by the process that made them, the frames are None and only the counts come back."""

    as_of: int
    projections: pd.DataFrame | None
    verdicts: pd.DataFrame | None
    series: int
    projection_rows: int
    verdict_rows: int


@dataclass
class _Work:
    """What every vintage needs: the numbered history, the series' text ids and keys, their targets."""

    hist: pd.DataFrame
    names: pd.Index
    key_codes: dict[str, np.ndarray]
    key_values: dict[str, pd.Index]
    targets: pd.DataFrame
    until: int


@dataclass
class _Folders:
    """Where a vintage's worker writes: ``projections/<as_of>.parquet``, ``verdicts/<as_of>.parquet`` and its
    rows of ``verdicts.csv`` (``<as_of>.csv``, joined in year order at the end)."""

    projections: Path
    verdicts: Path
    csv_parts: Path

    def csv_part(self, as_of: int) -> Path:
        return self.csv_parts / f"{as_of}.csv"


def _work(ind: pd.DataFrame, targets: pd.DataFrame, until: int) -> _Work:
    hist, names, keys = _numbered(ind)
    key_codes, key_values = {}, {}
    for col in KEY:
        key_codes[col], key_values[col] = pd.factorize(keys[col], sort=True)
    tg = series_targets(keys.assign(series_id=np.arange(len(names))), targets)  # by series number
    return _Work(hist, names, key_codes, key_values, tg, until)


def _vintage(work: _Work, as_of: int, write_to: _Folders | None = None) -> Vintage | None:
    """Project and judge every series with the data up to ``as_of``; with ``write_to``, the results go to
    files from here instead of back to the caller (they are most of the data: a parent process receiving
    and writing every vintage's was the bottleneck)."""
    from analysis import projection  # the report notebooks only read results: they need not import the engine

    hist = work.hist[work.hist["year"] <= as_of]
    if hist.empty:
        return None
    checked = projection.check_input(hist)  # once for both
    proj = projection.project(hist, until=work.until, checked=checked)
    present = pd.DataFrame({"series_id": pd.unique(hist["series_id"])})
    tg = present.merge(work.targets, on="series_id")
    verdict = projection.assess(hist, proj, tg, as_of=as_of, lang="vi", checked=checked)
    verdict["label_en"] = projection.verdict_labels(verdict, "en")
    projections = _projections_layout(work, proj, as_of)
    verdicts = _verdicts_layout(work, verdict, as_of)
    v = _checked(Vintage(as_of, projections, verdicts, series=len(projections["series_id"].cat.categories),
                         projection_rows=len(projections), verdict_rows=len(verdicts)))
    if write_to is not None:
        write_parquet_normalised(projections, write_to.projections / vintage_file(as_of))
        write_parquet_normalised(verdicts, write_to.verdicts / vintage_file(as_of))
        with CsvParts(write_to.csv_part(as_of)) as out:
            out.write(verdicts)
        v.projections = v.verdicts = None
    return v


def vintage_file(as_of: int) -> str:
    return f"{as_of}.parquet"


def _projections_layout(work: _Work, proj: pd.DataFrame, as_of: int) -> pd.DataFrame:
    """as_of, the key columns and the series id as categoricals (codes: one small integer per row), then the
    engine's columns with their text as categoricals too. A projection row repeats its series' id, method and
    reason for every year up to 2030: as one Python string per row, a country's projections did not fit in
    24 GiB."""
    codes = proj["series_id"].to_numpy(np.int64)
    used = np.unique(codes)
    position = np.searchsorted(used, codes)
    frame = _compact(proj)  # the engine's text is categorical already; columns are added in place, not copied
    frame["series_id"] = pd.Categorical.from_codes(position, categories=work.names[used])
    frame.insert(0, "as_of", np.full(len(frame), as_of, np.int64))
    for i, col in enumerate(KEY, start=1):
        values, local = np.unique(work.key_codes[col][used], return_inverse=True)
        frame.insert(i, col, pd.Categorical.from_codes(local[position],
                                                       categories=work.key_values[col][values].astype(str)))
    return frame


def _verdicts_layout(work: _Work, verdict: pd.DataFrame, as_of: int) -> pd.DataFrame:
    codes = verdict["series_id"].to_numpy(np.int64)
    out = {"as_of": np.full(len(verdict), as_of, np.int64)}
    for col in KEY:
        out[col] = pd.array(work.key_values[col].to_numpy(object)[work.key_codes[col][codes]], dtype="string")
    out["series_id"] = work.names.to_numpy(object)[codes]
    return pd.concat([pd.DataFrame(out, index=verdict.index), verdict.drop(columns="series_id")], axis=1)


_FORKED: tuple[_Work, _Folders | None] | None = None  # what a forked vintage worker inherits from its parent


def _forked_vintage(as_of: int) -> Vintage | None:
    work, write_to = _FORKED
    return _vintage(work, as_of, write_to)


def vintages_of(ind: pd.DataFrame, targets: pd.DataFrame, vintages: list[int] | None = None,
                until: int = config.PROJECTION_UNTIL, jobs: int = 1,
                write_to: _Folders | None = None) -> Iterator[Vintage]:
    """Projections and verdicts of every vintage, one vintage at a time (a pure function of the indicator
    table and targets). ``jobs`` > 1 projects that many vintages at once in forked processes (they are
    independent). Without ``write_to`` the vintages come in year order, with their frames; with it, each
    worker writes its vintage's files there, the latest vintages (the longest: most data) are started first
    so that no worker idles at the end, and the vintages come back as they finish, as counts."""
    global _FORKED
    work = _work(ind, targets, until)
    vintages = sorted(vintages or (int(y) for y in work.hist["year"].unique()), reverse=write_to is not None)
    jobs = max(1, min(jobs, len(vintages)))
    if jobs == 1 or "fork" not in mp.get_all_start_methods():
        for as_of in vintages:
            v = _vintage(work, as_of, write_to)
            if v is not None:
                yield v
        return
    _FORKED = (work, write_to)  # the workers inherit it: nothing of the history is pickled
    release_free_memory()  # the loading's freed memory is not copied into every worker
    try:
        with mp.get_context("fork").Pool(jobs) as pool:
            results = pool.imap(_forked_vintage, vintages) if write_to is None \
                else pool.imap_unordered(_forked_vintage, vintages)
            yield from (v for v in results if v is not None)
    finally:
        _FORKED = None


def _checked(v: Vintage) -> Vintage:
    """Sanity (in the process that made the vintage): intervals nest and stay inside the scale of bounded
    series; one verdict per series and year."""
    p = v.projections.dropna(subset=["value"])
    assert (p["lo95"] <= p["lo80"] + 1e-9).all() and (p["hi80"] <= p["hi95"] + 1e-9).all()
    assert (p["lo95"] >= -1e-9).all()
    assert not v.verdicts.duplicated(["series_id", "target_year"]).any()
    return v


def process(ind: pd.DataFrame, targets: pd.DataFrame, vintages: list[int] | None = None,
            until: int = config.PROJECTION_UNTIL, jobs: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections and verdicts of every vintage as two frames (``vintages_of`` joined; ``save_vintages``
    writes the vintages one at a time instead, which a country needs)."""
    parts = list(vintages_of(ind, targets, vintages, until, jobs))
    if not parts:
        return pd.DataFrame(), pd.DataFrame()
    return (_concat_categorical([v.projections for v in parts]),
            pd.concat([v.verdicts for v in parts], ignore_index=True))


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as categoricals."""
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
            and not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    return frame.astype({c: "category" for c in text}) if text else frame


def _concat_categorical(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate frames whose categorical columns have different categories, without going through
    strings: every part gets the union of the categories (sorted, so the columns sort as text would)."""
    if not parts:
        return pd.DataFrame()
    for col in [c for c in parts[0].columns if isinstance(parts[0][c].dtype, pd.CategoricalDtype)]:
        categories = pd.Index(sorted(set().union(*(p[col].cat.categories for p in parts))))
        for p in parts:
            p[col] = p[col].cat.set_categories(categories)
    return pd.concat(parts, ignore_index=True)


HISTORY_COLUMNS = [*KEY, "year", "value", "numerator", "denominator", "series_break"]  # what _numbered reads


def load(processed_dir: Path | None = None, raw_dir: Path | None = None):
    """The indicator columns the projections need (a parent process holding all 40 of a country's table
    would lend them to every forked worker) and the targets."""
    return load_indicators(processed_dir, columns=HISTORY_COLUMNS), load_targets(raw_dir)


PROJECTIONS_DIR = "projections"  # one Parquet file per vintage: <as_of>.parquet
VERDICTS_DIR = "verdicts"  # the same for the verdicts
VERDICTS_CSV = "verdicts.csv"  # every vintage's verdicts in one CSV, in year order
OBSOLETE = ("projections.parquet", "verdicts.parquet")  # the single files of earlier versions


def save_vintages(ind: pd.DataFrame, targets: pd.DataFrame, processed_dir: Path | None = None, *,
                  vintages: list[int] | None = None, until: int = config.PROJECTION_UNTIL, jobs: int = 1) -> dict:
    """Project every vintage and write it as it comes: one file per vintage in the projections and verdicts
    folders, each written by the worker that made it, and verdicts.csv (the workers' parts joined in year
    order). All are replaced together, or not at all; a worker holds one vintage in memory at a time, the
    parent none. Returns what was written."""
    folder = config.processed_dir(processed_dir)
    written = {"vintages": 0, "series": 0, "projection_rows": 0, "verdicts": 0}
    with staged(folder) as st:
        to = _Folders(st.reserve_dir(PROJECTIONS_DIR), st.reserve_dir(VERDICTS_DIR), st.scratch_dir())
        years = []
        for v in vintages_of(ind, targets, vintages, until, jobs, write_to=to):
            years.append(v.as_of)
            written["vintages"] += 1
            written["series"] += v.series
            written["projection_rows"] += v.projection_rows
            written["verdicts"] += v.verdict_rows
        if not years:
            raise AnalysisError("Bảng chỉ tiêu không có giá trị nào để dự báo.",
                                "The indicator table has no values to project.")
        join_csv_parts([to.csv_part(y) for y in sorted(years)], st.reserve(VERDICTS_CSV))
        st.commit()
    for name in OBSOLETE:
        (folder / name).unlink(missing_ok=True)
    return written


def _read_vintages(folder: Path, as_of: int | None) -> pd.DataFrame:
    """Every vintage's file in year order, or the one of ``as_of`` (no rows, same columns, if it has none)."""
    files = sorted(folder.glob("*.parquet"), key=lambda p: int(p.stem))
    if as_of is None or not files:
        return read_parquet_files(files)
    if (folder / vintage_file(as_of)).exists():
        return read_parquet_files([folder / vintage_file(as_of)])
    import pyarrow.parquet as pq

    return pq.read_schema(files[0]).empty_table().to_pandas()  # the columns without reading any row


def load_projections(processed_dir: Path | None = None, as_of: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The projections and the verdicts of every vintage, each as one frame; with ``as_of``, of that
    reporting year only (one file each: a report needs no other)."""
    folder = config.processed_dir(processed_dir)
    if not ((folder / PROJECTIONS_DIR).is_dir() and (folder / VERDICTS_DIR).is_dir()):
        raise AnalysisError("Chưa có dự báo; hãy chạy 'python -m analysis projections'.",
                            "No projections yet; run 'python -m analysis projections' first.")
    projections, verdicts = (_read_vintages(folder / name, as_of) for name in (PROJECTIONS_DIR, VERDICTS_DIR))
    for col in projections.columns:  # each vintage has its own categories: sorted again, as in one frame
        if isinstance(projections[col].dtype, pd.CategoricalDtype):
            cats = projections[col].cat.categories
            if not cats.is_monotonic_increasing:
                projections[col] = projections[col].cat.reorder_categories(cats.sort_values())
    return projections, verdicts


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processed-dir", help="thư mục dữ liệu đã xử lý (mặc định data/processed)")
    parser.add_argument("--raw-dir", help="thư mục chứa chi_tieu_ke_hoach.csv (mặc định data/raw)")
    parser.add_argument("--until", type=int, default=config.PROJECTION_UNTIL, help="dự báo đến năm (mặc định 2030)")
    parser.add_argument("--jobs", type=int, default=config.available_cores(),
                        help="số năm báo cáo dự báo cùng lúc / vintages projected at once "
                             f"(mặc định {config.available_cores()})")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    ind, targets = load(args.processed_dir, args.raw_dir)
    written = save_vintages(ind, targets, args.processed_dir, until=args.until, jobs=args.jobs)
    print(f"{written['series']:,} chuỗi/series × năm báo cáo/vintage, {written['verdicts']:,} đánh giá/verdicts "
          f"({time.perf_counter() - started:.1f} s) -> "
          f"{config.display_path(config.processed_dir(args.processed_dir))}/{PROJECTIONS_DIR}/, {VERDICTS_DIR}/, "
          f"{VERDICTS_CSV}")
    return 0
