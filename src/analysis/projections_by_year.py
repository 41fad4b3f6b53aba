"""Every indicator series (indicator x geography x sex) projected to 2030 and judged against the plan's
targets, once per reporting year (column ``as_of``) with only the data known then: the 2023 report shows what
was knowable in 2023. Files: ``projections/<as_of>.parquet``, ``verdicts/<as_of>.parquet`` and all verdicts in
``verdicts.csv``. The engine is ``analysis.projection`` (as behind ``python -m analysis project``); reporting
years are independent, ``--jobs`` of them projected at once, each in a pool process that writes its own files.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import pandas as pd

from analysis import config
from analysis.atomic import install, recover_folder
from analysis.errors import AnalysisError
from analysis.indicators import load_indicators, registry

KEY = ["indicator_id", "geo_level", "geo_code", "sex"]
HISTORY_COLUMNS = [*KEY, "year", "value", "numerator", "denominator", "series_break"]
PROJECTIONS_DIR, VERDICTS_DIR, VERDICTS_CSV = "projections", "verdicts", "verdicts.csv"


def history(ind: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history, series). ``history``: the engine's input, one row per series and year with a value, its counts
    (their sampling variance weighs the years) and its scale's bounds: 0-100%, except cohort proxies (above 100%
    with in-migration). Its ``series_id`` is the series' number (in order of first appearance): the engine
    groups and merges on ids many times (a country's 2.9 million rows took 450 s and 8.5 GiB with text ids).
    ``series`` gives each number its key columns and the text id every output carries, 'CT16|ward|MY_PHUOC|female'."""
    h = ind.loc[ind["value"].notna(), HISTORY_COLUMNS].reset_index(drop=True)
    number = h.groupby(KEY, sort=False, observed=True).ngroup().to_numpy()
    series = h.loc[~pd.Series(number).duplicated().to_numpy(), KEY].reset_index(drop=True)
    text = series.astype(str)
    series["series_id"] = text["indicator_id"].str.cat(text[KEY[1:]], sep="|")
    bounded = {i for i, spec in registry().items() if spec.compute["method"] != "cohort"}
    upper = series["indicator_id"].astype(str).isin(bounded).map({True: 100.0, False: float("nan")}).to_numpy()
    hist = h.drop(columns=KEY).assign(series_id=number, lower=0.0, upper=upper[number])
    return hist, series


def series_targets(series: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Every series (by number) of a main indicator x every target year of the plan, with its indicator's
    target (the plan sets them for the district; wards are judged against the same bar) and comparator; a
    year the plan sets no target for (CT19 in 2030) has no value."""
    reg = registry()
    frame = pd.DataFrame({"series_id": series.index, "indicator_id": series["indicator_id"].astype(str)})
    frame = frame[frame["indicator_id"].map(lambda i: not reg[i].cross_check_of)]
    years = pd.DataFrame({"target_year": sorted(targets["target_year"].unique())})
    out = frame.merge(years, how="cross").merge(
        targets[["indicator_id", "target_year", "target_value", "comparator"]], how="left")
    default = out["indicator_id"].map(lambda i: ">=" if reg[i].direction == "increase" else "<")
    return out.assign(comparator=out["comparator"].fillna(default)).drop(columns="indicator_id")


def project_year(hist: pd.DataFrame, series: pd.DataFrame, targets: pd.DataFrame, as_of: int,
                 until: int = config.PROJECTION_UNTIL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections and verdicts of one reporting year, from the history up to it (a pure function of
    ``history``'s two frames and ``series_targets``)."""
    from analysis import projection, verdicts  # the report notebooks only read results: not the engine

    h = hist[hist["year"] <= as_of]
    checked = projection.check_input(h)  # once for both
    proj = projection.project(h, until=until, checked=checked, breaks="shift")  # a territory change not restated
    present = pd.DataFrame({"series_id": pd.unique(h["series_id"])})
    verdict = verdicts.assess(h, proj, present.merge(targets, on="series_id"), as_of=as_of,
                              baseline_year=config.BASELINE_YEAR, lang="vi", checked=checked, breaks="shift")
    verdict["label_en"] = verdicts.verdict_labels(verdict, "en")

    def laid_out(frame: pd.DataFrame) -> pd.DataFrame:
        """as_of, the key columns and the text id (as text) in front of the engine's columns."""
        number = frame["series_id"].to_numpy(dtype="int64")
        head = {"as_of": as_of, **{c: series[c].to_numpy(object)[number] for c in (*KEY, "series_id")}}
        return pd.concat([pd.DataFrame(head, index=frame.index), frame.drop(columns="series_id")], axis=1)

    return laid_out(proj), laid_out(verdict)


def process(ind: pd.DataFrame, targets: pd.DataFrame, years: list[int] | None = None,
            until: int = config.PROJECTION_UNTIL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections and verdicts of every reporting year (or of ``years``) as two frames, in year order, in
    one process (``save`` writes them instead, years in parallel)."""
    hist, series = history(ind)
    tg = series_targets(series, targets)
    parts = [project_year(hist, series, tg, y, until) for y in sorted(years or hist["year"].unique().tolist())]
    if not parts:
        return pd.DataFrame(), pd.DataFrame()
    out = []
    for frames in zip(*parts):  # each year's text columns have their own categories: one set for all
        categorical = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
        out.append(pd.concat(frames, ignore_index=True).astype({c: "category" for c in categorical}))
    return out[0], out[1]


def _project_and_write(hist: pd.DataFrame, series: pd.DataFrame, targets: pd.DataFrame, as_of: int, until: int,
                       work: Path) -> tuple[int, int, int]:
    """One reporting year in a worker: its two files written there (most of the data: sending them back to
    the parent would cost more than computing them). Returns (series, projection rows, verdict rows)."""
    projections, verdicts = project_year(hist, series, targets, as_of, until)
    projections.to_parquet(work / PROJECTIONS_DIR / f"{as_of}.parquet", index=False, compression="zstd")
    verdicts.to_parquet(work / VERDICTS_DIR / f"{as_of}.parquet", index=False, compression="zstd")
    return projections["series_id"].nunique(), len(projections), len(verdicts)


def save(ind: pd.DataFrame, targets: pd.DataFrame, processed_dir: Path | None = None, *,
         years: list[int] | None = None, until: int = config.PROJECTION_UNTIL, jobs: int = 1) -> dict:
    """Project every reporting year (``jobs`` at once, the latest, longest ones first) into a work folder,
    then put ``projections/``, ``verdicts/`` and ``verdicts.csv`` in place together. Returns the counts."""
    from analysis.formats import csv_writer, read_parquet_folder

    folder = config.processed_dir(processed_dir)
    folder.mkdir(parents=True, exist_ok=True)
    hist, series = history(ind)
    if hist.empty:
        raise AnalysisError("Bảng chỉ tiêu không có giá trị nào để dự báo.",
                            "The indicator table has no values to project.")
    tg = series_targets(series, targets)
    years = sorted(years or hist["year"].unique().tolist(), reverse=True)
    for stale in folder.glob(".projections-run.*.tmp"):  # the work folder of a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    written = {"years": len(years), "series": 0, "projection_rows": 0, "verdicts": 0}
    with tempfile.TemporaryDirectory(prefix=".projections-run.", suffix=".tmp", dir=folder) as tmp:
        work = Path(tmp)
        for name in (PROJECTIONS_DIR, VERDICTS_DIR):
            (work / name).mkdir()
        with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(years)))) as pool:
            running, todo = set(), list(years)
            while todo or running:  # at most `jobs` years in flight: each holds its history slice
                while todo and len(running) < max(1, jobs):
                    year = todo.pop(0)
                    running.add(pool.submit(_project_and_write, hist[hist["year"] <= year], series, tg, year, until,
                                            work))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    for key, n in zip(("series", "projection_rows", "verdicts"), future.result()):
                        written[key] += n
        csv_writer(read_parquet_folder(work / VERDICTS_DIR))(work / VERDICTS_CSV)
        for name in (PROJECTIONS_DIR, VERDICTS_DIR, VERDICTS_CSV):
            install(work / name, folder / name)
    return written


def load_projections(processed_dir: Path | None = None, as_of: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections and verdicts of every reporting year, or of ``as_of`` only (one file each: all a report needs)."""
    folder = config.processed_dir(processed_dir)
    for name in (PROJECTIONS_DIR, VERDICTS_DIR):
        recover_folder(folder / name)
    if not ((folder / PROJECTIONS_DIR).is_dir() and (folder / VERDICTS_DIR).is_dir()):
        raise AnalysisError("Chưa có dự báo; hãy chạy 'python -m analysis projections'.",
                            "No projections yet; run 'python -m analysis projections' first.")
    from analysis.formats import read_parquet_folder

    out = []
    for name in (PROJECTIONS_DIR, VERDICTS_DIR):
        path = folder / name / f"{as_of}.parquet"
        if as_of is None:
            frame = read_parquet_folder(folder / name)
        elif path.exists():
            frame = pd.read_parquet(path)
        else:  # a year without data: no rows, the same columns
            frame = read_parquet_folder(folder / name).head(0)
        for col in frame.columns:  # each year's file has its own categories: sorted, as in one table
            if isinstance(frame[col].dtype, pd.CategoricalDtype) and not frame[col].cat.categories.is_monotonic_increasing:
                frame[col] = frame[col].cat.reorder_categories(frame[col].cat.categories.sort_values())
        out.append(frame)
    return out[0], out[1]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processed-dir", help="thư mục dữ liệu đã xử lý (mặc định data/processed)")
    parser.add_argument("--raw-dir", help="thư mục chứa chi_tieu_ke_hoach.csv (mặc định data/raw)")
    parser.add_argument("--until", type=int, default=config.PROJECTION_UNTIL, help="dự báo đến năm (mặc định 2030)")
    parser.add_argument("--jobs", type=int, default=config.available_cores(),
                        help="số năm báo cáo dự báo cùng lúc / reporting years projected at once "
                             f"(mặc định {config.available_cores()})")


def run(args: argparse.Namespace) -> int:
    from analysis.targets import load_targets

    started = time.perf_counter()
    ind = load_indicators(args.processed_dir, columns=HISTORY_COLUMNS)
    written = save(ind, load_targets(args.raw_dir), args.processed_dir, until=args.until, jobs=args.jobs)
    print(f"{written['series']:,} chuỗi/series × năm báo cáo/reporting year, {written['verdicts']:,} đánh giá/verdicts "
          f"({time.perf_counter() - started:.1f} s) -> {config.display_path(config.processed_dir(args.processed_dir))}/"
          f"{PROJECTIONS_DIR}/, {VERDICTS_DIR}/, {VERDICTS_CSV}")
    return 0
