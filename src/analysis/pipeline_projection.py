"""Project every indicator series (indicator x geography x sex) to 2030 and judge it against the plan's
targets, once per reporting year with only the data known then (load / process / save).

The 2023 report must show what was knowable in 2023, so each reporting year ("vintage", column
``as_of``) gets its own projection from the data up to it. The engine is ``analysis.projection``, the
same one behind ``python -m analysis project``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import AnalysisError
from analysis.indicators import load_indicators, load_targets, registry
from analysis.io import staged

KEY = ["indicator_id", "geo_level", "geo_code", "sex"]
SEP = "|"


def series_id(frame: pd.DataFrame) -> pd.Series:
    """'CT16|ward|MY_PHUOC|female': the key columns joined column-wise (a row-wise join took minutes on a
    country's millions of rows)."""
    out = frame[KEY[0]].astype(str)
    for col in KEY[1:]:
        out = out + SEP + frame[col].astype(str)
    return out


def split_series_id(ids: pd.Series) -> pd.DataFrame:
    """The key columns back from series ids (Arrow's split: millions of ids at country scale)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = ids.astype(str)
    lists = pc.split_pattern(pa.array(text.array), SEP)
    return pd.DataFrame({key: pd.array(pc.list_element(lists, i), dtype=text.dtype) for i, key in enumerate(KEY)},
                        index=ids.index)


def history(ind: pd.DataFrame) -> pd.DataFrame:
    """The engine's input: one row per series and year with its counts (sampling variance) and bounds.
    Cohort proxies can exceed 100% (in-migration), so they have no upper bound."""
    reg = registry()
    h = ind[ind["value"].notna()].copy()
    h["series_id"] = series_id(h)
    bounded = h["indicator_id"].map({i: spec.compute["method"] != "cohort" for i, spec in reg.items()})
    h["lower"] = 0.0
    h["upper"] = np.where(bounded, 100.0, np.nan)
    cols = ["series_id", "year", "value", "lower", "upper", "numerator", "denominator", "series_break"]
    return h[cols].reset_index(drop=True)


def series_targets(hist_ids: pd.Series, targets: pd.DataFrame) -> pd.DataFrame:
    """Every series of a main indicator gets its indicator's targets (the plan sets them for the district;
    wards are judged against the same bar)."""
    ids = pd.Series(pd.unique(hist_ids), dtype=object)
    parts = split_series_id(ids.astype(str))
    main = {i for i, spec in registry().items() if not spec.cross_check_of}
    frame = pd.DataFrame({"series_id": ids, "indicator_id": parts["indicator_id"]})
    frame = frame[frame["indicator_id"].isin(main)]
    out = frame.merge(targets[["indicator_id", "target_year", "target_value", "comparator"]], on="indicator_id")
    # a target year the plan does not set for this indicator (CT19 in 2030) is a row with no value
    years = sorted(targets["target_year"].unique())
    full = frame.assign(_k=1).merge(pd.DataFrame({"target_year": years, "_k": 1}), on="_k").drop(columns="_k")
    out = full.merge(out, on=["series_id", "indicator_id", "target_year"], how="left")
    comp = out["indicator_id"].map({i: ">=" if spec.direction == "increase" else "<" for i, spec in registry().items()})
    out["comparator"] = out["comparator"].fillna(comp)
    return out[["series_id", "target_year", "target_value", "comparator"]]


def process(ind: pd.DataFrame, targets: pd.DataFrame, vintages: list[int] | None = None,
            until: int = config.PROJECTION_UNTIL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections and verdicts for every vintage (pure function of the indicator table and targets)."""
    # imported here, not at the top: the report notebooks only read the results (load_projections) and
    # should not pay for the engine's scipy import
    from analysis import projection

    hist_all = history(ind)
    # series ids as Python strings (object), not Arrow strings: the engine factorizes, merges and looks them
    # up many times, and each of those converts an Arrow column to Python objects first
    hist_all["series_id"] = hist_all["series_id"].astype(object)
    vintages = vintages or sorted(int(y) for y in hist_all["year"].unique())
    proj_parts, verdict_parts = [], []
    for as_of in vintages:
        hist = hist_all[hist_all["year"] <= as_of]
        if hist.empty:
            continue
        proj = projection.project(hist, until=until)
        tg = series_targets(hist["series_id"], targets)
        verdict = projection.assess(hist, proj, tg, as_of=as_of, lang="vi")
        verdict["label_en"] = projection.verdict_labels(verdict, "en")
        proj_parts.append(_compact(proj.assign(as_of=as_of)))
        verdict_parts.append(verdict.assign(as_of=as_of))
    projections = _with_keys(_concat_categorical(proj_parts))
    verdicts = _with_keys(pd.concat(verdict_parts, ignore_index=True))
    # sanity: intervals nest and stay inside the scale of bounded series
    p = projections.dropna(subset=["value"])
    assert (p["lo95"] <= p["lo80"] + 1e-9).all() and (p["hi80"] <= p["hi95"] + 1e-9).all()
    assert (p["lo95"] >= -1e-9).all()
    return projections, verdicts


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as categoricals. A projection row repeats its series' id, method and reason for every
    year up to 2030, and the vintages together make about 24 times the rows of the latest one: as one Python
    string per row, a country's projections did not fit in 24 GiB."""
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


def _with_keys(frame: pd.DataFrame) -> pd.DataFrame:
    ids = frame["series_id"]
    if isinstance(ids.dtype, pd.CategoricalDtype):  # split each distinct id once, spread by the codes
        keys = split_series_id(pd.Series(ids.cat.categories.astype(str)))
        codes = ids.cat.codes.to_numpy()
        parts = pd.DataFrame(index=frame.index)
        for col in KEY:
            key_codes, key_values = pd.factorize(keys[col], sort=True)
            parts[col] = pd.Categorical.from_codes(key_codes[codes], categories=key_values.astype(str))
    else:
        parts = split_series_id(ids.astype(str))
    out = pd.concat([frame[["as_of"]], parts, frame.drop(columns=["as_of"])], axis=1)
    for col in KEY:
        if not isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype("string")
    return out


def load(processed_dir: Path | None = None, raw_dir: Path | None = None):
    return load_indicators(processed_dir), load_targets(raw_dir)


def save(projections: pd.DataFrame, verdicts: pd.DataFrame, processed_dir: Path | None = None) -> None:
    folder = config.processed_dir(processed_dir)
    with staged(folder) as st:
        st.add_parquet("projections.parquet", projections)
        st.add_parquet("verdicts.parquet", verdicts)
        st.add_csv("verdicts.csv", verdicts)
        st.commit()


def load_projections(processed_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = config.processed_dir(processed_dir)
    paths = [folder / "projections.parquet", folder / "verdicts.parquet"]
    if not all(p.exists() for p in paths):
        raise AnalysisError("Chưa có dự báo; hãy chạy 'python -m analysis projections'.",
                            "No projections yet; run 'python -m analysis projections' first.")
    return pd.read_parquet(paths[0]), pd.read_parquet(paths[1])


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processed-dir", help="thư mục dữ liệu đã xử lý (mặc định data/processed)")
    parser.add_argument("--raw-dir", help="thư mục chứa chi_tieu_ke_hoach.csv (mặc định data/raw)")
    parser.add_argument("--until", type=int, default=config.PROJECTION_UNTIL, help="dự báo đến năm (mặc định 2030)")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    ind, targets = load(args.processed_dir, args.raw_dir)
    projections, verdicts = process(ind, targets, until=args.until)
    save(projections, verdicts, args.processed_dir)
    n_series = projections.groupby("as_of")["series_id"].nunique().sum()
    print(f"{n_series:,} chuỗi/series × năm báo cáo/vintage, {len(verdicts):,} đánh giá/verdicts "
          f"({time.perf_counter() - started:.1f} s) -> "
          f"{config.display_path(config.processed_dir(args.processed_dir))}/projections.parquet, verdicts.parquet")
    return 0
