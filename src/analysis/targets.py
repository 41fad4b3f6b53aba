"""The plan's targets (``data/raw/chi_tieu_ke_hoach.csv``) and how far each indicator value is from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import DataFileError

COLUMNS = ["indicator_id", "target_year", "target_value", "comparator", "source"]
COMPARE = {">=": np.greater_equal, ">": np.greater, "<": np.less, "<=": np.less_equal}


def load_targets(raw_dir: Path | None = None) -> pd.DataFrame:
    path = config.raw_dir(raw_dir) / config.TARGETS_FILE
    try:
        t = pd.read_csv(path, dtype={"indicator_id": "string", "comparator": "string", "source": "string"},
                        encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFileError(path.name, "Không tìm thấy tệp chỉ tiêu.", "The targets file is missing.",
                            code="targets_missing") from None
    missing = [c for c in COLUMNS if c not in t]
    if missing:
        raise DataFileError(path.name, f"Thiếu cột: {', '.join(missing)}.", f"Missing column(s): {', '.join(missing)}.",
                            column=missing[0], code="targets_columns")
    bad = ~t["comparator"].isin(list(COMPARE)) | t["target_value"].isna() | t["target_year"].isna()
    if bad.any():
        raise DataFileError(path.name, "Chỉ tiêu thiếu giá trị/năm hoặc phép so sánh không hợp lệ (>=, >, <, <=).",
                            "A target lacks a value/year or has an invalid comparator (>=, >, <, <=).",
                            row=int(np.flatnonzero(bad.to_numpy())[0]) + 2, code="targets_row")
    return t.astype({"target_year": "int64", "target_value": float})[COLUMNS]


def meets(value, target, comparator: str):
    """Does the value meet ``comparator target``? (NaN never does.)"""
    with np.errstate(invalid="ignore"):
        return COMPARE[comparator](np.asarray(value, dtype=float), target)


def target_years(targets: pd.DataFrame) -> list[int]:
    return sorted(int(y) for y in targets["target_year"].unique())


def with_targets(ind: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """For each target year of the plan: ``target_Y`` (NaN where the plan sets none), ``gap_Y`` (target -
    value), ``needed_per_year_Y`` (the gap over the years left, NaN from the target year on) and ``meets_Y``
    (NA without a target or a value)."""
    out = ind.copy(deep=False)
    value, year = ind["value"].to_numpy(dtype=float), ind["year"].to_numpy(dtype=float)
    iid = ind["indicator_id"].astype("category")  # looked up once per indicator, not once per row
    for ty in target_years(targets):
        t = targets[targets["target_year"] == ty].set_index("indicator_id")
        goal = iid.map(dict(zip(t.index, t["target_value"]))).to_numpy(dtype=float, na_value=np.nan)
        comparator = iid.map(dict(zip(t.index, t["comparator"]))).astype(object)
        gap = goal - value
        left = ty - year
        met = np.zeros(len(ind), bool)
        for comp in comparator.dropna().unique():
            rows = (comparator == comp).to_numpy(dtype=bool, na_value=False)
            met[rows] = meets(value[rows], goal[rows], comp)
        out[f"target_{ty}"] = goal
        out[f"gap_{ty}"] = gap
        out[f"needed_per_year_{ty}"] = np.divide(gap, left, out=np.full(len(ind), np.nan), where=left > 0)
        out[f"meets_{ty}"] = pd.arrays.BooleanArray(met, comparator.isna().to_numpy() | np.isnan(value))
    return out
