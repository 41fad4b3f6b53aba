"""The action lists of a reporting year: the institutions that lack what an indicator counts, and the wards
furthest from the plan's targets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.geography import short_name
from analysis.indicators import institution_groups, registry
from analysis.template import OWNERSHIP_TYPES, SCHOOL_TYPES, category_label

ACTION_FLAGS = (("CT07", "cong_trinh_ve_sinh"), ("CT19", "ho_tro_tam_ly"), ("CT20A", "csvc_khuyet_tat"))


def institutions_lacking(truong: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    """Institutions that, in ``year``, lack sanitation, psychological support or adapted facilities (or did
    not say: status 'unknown')."""
    reg, groups = registry(), institution_groups()
    t = truong[truong["year"] == year]
    parts = []
    for iid, flag in ACTION_FLAGS:
        scope = t[t["loai_truong"].isin(groups[reg[iid].compute.get("institutions", "all")])]
        lacking = scope[scope[flag].ne(True)]
        parts.append(pd.DataFrame({
            "indicator_id": iid, "ma_truong": lacking["ma_truong"], "ten_truong": lacking["ten_truong"],
            "loai_truong": lacking["loai_truong"].map(lambda c: category_label(SCHOOL_TYPES, c, lang) if pd.notna(c) else ""),
            "loai_hinh": lacking["loai_hinh"].map(lambda c: category_label(OWNERSHIP_TYPES, c, lang) if pd.notna(c) else ""),
            "xa_phuong": lacking["xa_phuong"].map(lambda n: short_name(n) if pd.notna(n) else ""),
            "status": np.where(lacking[flag].isna(), "unknown", "lacking")}))
    cols = ["indicator_id", "ma_truong", "ten_truong", "loai_truong", "loai_hinh", "xa_phuong", "status"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def wards_furthest(indicators: pd.DataFrame, targets: pd.DataFrame, year: int, target_year: int,
                   n: int = 3) -> pd.DataFrame:
    """For each main indicator, the wards furthest from the plan's target in ``year`` (shortfall > 0)."""
    w = indicators[(indicators["geo_level"] == "ward") & (indicators["sex"] == "total")
                   & (indicators["year"] == year) & (indicators["cross_check_of"] == "")]
    t = targets[targets["target_year"] == target_year].set_index("indicator_id")
    w = w[w["indicator_id"].isin(t.index) & w["value"].notna()].copy()
    w["target"] = w["indicator_id"].astype(object).map(t["target_value"]).astype(float)
    sign = np.where(w["direction"] == "decrease", -1.0, 1.0)
    w["shortfall"] = (w["target"] - w["value"]) * sign
    w = w[w["shortfall"] > 0].sort_values(["indicator_id", "shortfall"], ascending=[True, False])
    cols = ["indicator_id", "geo_code", "geo_name", "value", "target", "shortfall", "numerator", "denominator"]
    return w.groupby("indicator_id", sort=False, observed=True).head(n)[cols].reset_index(drop=True)
