"""Every plan indicator, from the cleaned counts, for every year, geography, institution type and sex.

The registry (``indicators.yaml``) says what each indicator is; this module has no per-indicator code.
Values are always sums of numerators over sums of denominators (never means of rates), with a Wilson 95%
interval that behaves at 0%, 100% and for small counts. Geography comes from the crosswalk: the plan's
territory (the lowest unit that contains every ward of the data), any levels between it and the wards,
wards as named each year, and — where whole wards add up exactly — today's wards. A population-based
series whose territory changed is flagged as a break, never silently joined.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import config
from analysis.errors import AnalysisError, DataFileError
from analysis.geography import Crosswalk, short_name
from analysis.io import staged
from analysis.template import FEMALE_SUFFIX, OWNERSHIP_TYPES, SCHOOL_TYPES, SHEETS_BY_NAME, category_label

REGISTRY_FILE = Path(__file__).with_name("indicators.yaml")
METHODS = ("institution_share", "ratio", "cohort")
SEXES = ("total", "female", "male")
Z95 = 1.959963984540054

OUTPUT_COLUMNS = [
    "indicator_id", "year", "geo_level", "geo_code", "geo_name", "sex", "numerator", "denominator", "value",
    "ci_low", "ci_high", "n_units", "n_reporting", "reporting_share", "n_excluded", "flag_zero_denominator",
    "flag_above_100", "flag_excluded_values", "flag_small_denominator", "flags", "series_break", "territory_id",
    "gpi", "cross_check_of", "direction", "population_based",
]
TABLE_SHEET = {"truong": "Truong", "mam_non": "MamNon", "pho_thong": "PhoThong", "xa_phuong": "XaPhuong"}


@dataclass(frozen=True)
class Indicator:
    id: str
    meta: dict

    @property
    def compute(self) -> dict:
        return self.meta["compute"]

    @property
    def direction(self) -> str:
        return self.meta["direction"]

    @property
    def population_based(self) -> bool:
        return bool(self.meta.get("population_based"))

    @property
    def decimals(self) -> int:
        """Decimals to show the value with (dropout rates near 0,1% need two)."""
        return int(self.meta.get("decimals", 1))

    @property
    def cross_check_of(self) -> str | None:
        return self.meta.get("cross_check_of")

    def text(self, field: str, lang: str = "vi") -> str:
        value = self.meta.get(field, "")
        return value.get(lang, value.get("vi", "")) if isinstance(value, dict) else str(value)


@cache
def _registry_file() -> dict:
    return yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8"))


def registry(include_cross_checks: bool = True) -> dict[str, Indicator]:
    """Indicator id -> definition, validated against the raw template."""
    raw = _registry_file()
    out = {}
    for iid, meta in raw["indicators"].items():
        _validate_entry(iid, meta, raw)
        if include_cross_checks or not meta.get("cross_check_of"):
            out[iid] = Indicator(iid, meta)
    return out


def main_indicators() -> dict[str, Indicator]:
    return registry(include_cross_checks=False)


def institution_groups() -> dict[str, list[str]]:
    return _registry_file()["institution_groups"]


def ownership_groups() -> dict[str, dict]:
    return _registry_file()["ownership_groups"]


def _validate_entry(iid: str, meta: dict, raw: dict) -> None:
    c = meta.get("compute", {})
    assert c.get("method") in METHODS, f"{iid}: unknown method {c.get('method')}"
    assert meta.get("direction") in ("increase", "decrease"), f"{iid}: direction"
    sheet = SHEETS_BY_NAME[TABLE_SHEET[c["table"]]]
    for key in ("numerator", "denominator", "flag"):
        if key in c:
            assert c[key] in sheet.by_id, f"{iid}: {c[key]} is not a column of {sheet.name}"
    if "institutions" in c:
        assert c["institutions"] in raw["institution_groups"], f"{iid}: institutions group"
    for field in ("name", "short", "definition", "numerator", "denominator", "coverage", "source", "caveats"):
        assert isinstance(meta.get(field), dict) and meta[field].get("vi") and meta[field].get("en"), f"{iid}: {field}"


# --- proportions -------------------------------------------------------------------------------------------

def wilson_interval(numerator, denominator, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval in percent; right at 0 and 100% and for small counts (NaN when n = 0)."""
    x = np.asarray(numerator, dtype=float)
    n = np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    bad = ~(n > 0) | (p > 1)
    low[bad], high[bad] = np.nan, np.nan
    # exact ends: the interval always contains the estimate
    low = np.where(x == 0, 0.0, low)
    high = np.where((x == n) & (n > 0), 1.0, high)
    low[~(n > 0)], high[~(n > 0)] = np.nan, np.nan
    return low * 100, high * 100


# --- geography of the data --------------------------------------------------------------------------------

@dataclass
class Geography:
    """Where each ward of the data sits, each year, and which units the report covers."""

    crosswalk: Crosswalk
    hierarchy: pd.DataFrame  # year, ward_code, <level>_code for each level above
    territory_level: str
    levels: list[str]  # levels reported between the territory (first) and the ward (excluded)
    current_map: dict[str, str]

    @property
    def territory_unit(self) -> dict[int, str]:
        """year -> the unit (of the territory level) that contains every ward that year."""
        if self.territory_level == "ward":
            return {}
        h = self.hierarchy.drop_duplicates("year")
        return dict(zip(h["year"].astype(int), h[self.territory_level]))

    @property
    def territory_codes(self) -> dict[int, str]:
        """year -> the territory's series code, stable across renames (BEN_CAT_KH continues BEN_CAT)."""
        return {y: self.crosswalk.canonical(c) for y, c in self.territory_unit.items()}

    def expected_wards(self, level: str) -> dict[tuple[int, str], frozenset[str]]:
        """(year, series code) -> the wards a unit of ``level`` covers that year, per the crosswalk."""
        out = {}
        if level == self.territory_level:
            for year, unit in self.territory_unit.items():
                out[(year, self.crosswalk.canonical(unit))] = self.crosswalk.wards_under(unit, year)
        else:
            for (year, code), _ in self.hierarchy.groupby(["year", level]):
                out[(int(year), code)] = self.crosswalk.wards_under(code, int(year))
        return out


def build_geography(tables: dict[str, pd.DataFrame], crosswalk: Crosswalk) -> Geography:
    frames = [tables[t][["year", "ma_xa_phuong"]] for t in ("truong", "xa_phuong") if t in tables]
    wards = pd.concat(frames).dropna().drop_duplicates()
    rows = []
    for year, codes in wards.groupby("year")["ma_xa_phuong"]:
        parents = crosswalk.parents_at(int(year))
        for code in codes:
            rows.append({"year": int(year), "ward_code": code, **crosswalk.ancestors_from(code, parents)})
    hierarchy = pd.DataFrame(rows)
    levels_above = [lv for lv in ("district", "province", "country") if lv in hierarchy]
    territory = "ward"
    for lv in levels_above:
        if hierarchy[lv].notna().all() and (hierarchy.groupby("year")[lv].nunique() == 1).all():
            territory = lv
            break
    if territory == "ward":
        levels = []
    else:
        levels = levels_above[: levels_above.index(territory) + 1][::-1]  # territory first, then downwards
    current = crosswalk.current_ward_map(set(wards["ma_xa_phuong"]))
    return Geography(crosswalk, hierarchy, territory, levels, current)


# --- unit tables -------------------------------------------------------------------------------------------

def _school_attributes(truong: pd.DataFrame) -> pd.DataFrame:
    own = {m: g for g, spec in ownership_groups().items() for m in spec["members"]}
    attrs = truong[["year", "ma_truong", "ten_truong", "loai_truong", "loai_hinh", "ma_xa_phuong"]].copy()
    attrs["ownership"] = attrs["loai_hinh"].map(own).astype("string")
    return attrs


def unit_table(ind: Indicator, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per unit (institution, institution-level or ward) and year that the indicator covers, with
    its numerator, denominator and girls' counts (NA where missing or excluded by cleaning)."""
    c = ind.compute
    table = c["table"]
    if table == "xa_phuong":
        data = tables["xa_phuong"]
        out = pd.DataFrame({"year": data["year"], "unit": data["ma_xa_phuong"], "ward": data["ma_xa_phuong"],
                            "school_type": pd.NA, "ownership": pd.NA})
        out = _with_counts(out, data, c)
        return out
    attrs = _school_attributes(tables["truong"])
    members = institution_groups()[c.get("institutions", "all")]
    expected = attrs[attrs["loai_truong"].isin(members)]
    if table == "truong":
        flag = tables["truong"].set_index(["year", "ma_truong"])[c["flag"]]
        out = expected.join(flag, on=["year", "ma_truong"])
        values = out[c["flag"]]
        num = values.astype("Float64").astype("Int64")
        den = values.notna().astype("Int64").where(values.notna(), pd.NA)
        return pd.DataFrame({"year": out["year"], "unit": out["ma_truong"], "ward": out["ma_xa_phuong"],
                             "school_type": out["loai_truong"], "ownership": out["ownership"],
                             "num": num, "den": den, "num_f": pd.NA, "den_f": pd.NA, "present": True})
    data = tables[table]
    for col, allowed in c.get("where", {}).items():
        data = data[data[col].isin(allowed)]
    key = ["year", "ma_truong"]
    present = data.merge(attrs, on=key, how="left")
    missing = expected[~expected.set_index(key).index.isin(present.set_index(key).index)]
    rows = pd.concat([present, missing.assign(_absent=True)], ignore_index=True)
    out = pd.DataFrame({"year": rows["year"], "unit": rows["ma_truong"], "ward": rows["ma_xa_phuong"],
                        "school_type": rows["loai_truong"], "ownership": rows["ownership"]})
    out = _with_counts(out, rows, c)
    out["present"] = ~rows.get("_absent", pd.Series(False, index=rows.index)).fillna(False).astype(bool)
    return out


def _with_counts(out: pd.DataFrame, data: pd.DataFrame, c: dict) -> pd.DataFrame:
    def col(name):
        return data[name].astype("Int64") if name in data else pd.Series(pd.NA, index=data.index, dtype="Int64")

    out["num"], out["den"] = col(c["numerator"]).to_numpy(), col(c["denominator"]).to_numpy()
    out["num_f"] = col(c["numerator"] + FEMALE_SUFFIX).to_numpy()
    out["den_f"] = col(c["denominator"] + FEMALE_SUFFIX).to_numpy()
    out["present"] = True
    return out


# --- aggregation ---------------------------------------------------------------------------------------------

def _groupings(ind: Indicator, units: pd.DataFrame, geo: Geography) -> list[tuple[str, pd.Series]]:
    """(geo_level, key per unit row) for every breakdown the indicator has."""
    years = units["year"]
    out = []
    h = geo.hierarchy.set_index(["year", "ward_code"])
    for level in geo.levels:
        if level == geo.territory_level:
            territory = years.map(geo.territory_codes)
            out.append((level, territory))
        else:
            idx = pd.MultiIndex.from_arrays([years, units["ward"]])
            out.append((level, pd.Series(h[level].reindex(idx).to_numpy(), index=units.index)))
    out.append(("ward", units["ward"]))
    out.append(("ward_current", units["ward"].map(geo.current_map)))
    if ind.compute["table"] != "xa_phuong":
        out.append(("school_level", units["school_type"]))
        out.append(("ownership", units["ownership"]))
    return out


def _sex_columns(units: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-unit numerator, denominator and validity for each sex (pairwise-complete, nothing imputed)."""
    def arr(name):
        col = units[name]
        return col.to_numpy(dtype="float64", na_value=np.nan)

    num, den, num_f, den_f = arr("num"), arr("den"), arr("num_f"), arr("den_f")
    present = units["present"].to_numpy(dtype=bool)
    valid = {"total": ~np.isnan(num) & ~np.isnan(den), "female": ~np.isnan(num_f) & ~np.isnan(den_f)}
    valid["male"] = valid["total"] & valid["female"]
    parts = {"total": (num, den), "female": (num_f, den_f), "male": (num - num_f, den - den_f)}
    cols = {"n_units": np.ones(len(units))}
    for sex, (n_, d_) in parts.items():
        ok = valid[sex]
        cols[f"numerator|{sex}"] = np.where(ok, n_, 0.0)
        cols[f"denominator|{sex}"] = np.where(ok, d_, 0.0)
        cols[f"n_reporting|{sex}"] = ok.astype(float)
        cols[f"n_excluded|{sex}"] = (present & ~ok).astype(float)
    return cols


def group_sum(year: np.ndarray, key: pd.Series, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Sum each column by (year, key), rows with a missing key left out. numpy bincount: no per-group
    Python and little fixed overhead, which matters when thousands of geographies are aggregated."""
    key_codes, key_values = pd.factorize(key, use_na_sentinel=True)
    keep = key_codes >= 0
    year_values, year_codes = np.unique(year[keep], return_inverse=True)
    gid = year_codes * max(len(key_values), 1) + key_codes[keep]
    groups, inverse = np.unique(gid, return_inverse=True)
    out = {"year": year_values[groups // max(len(key_values), 1)].astype("int64"),
           "geo_code": np.asarray(key_values, dtype=object)[groups % max(len(key_values), 1)]}
    for name, values in columns.items():
        out[name] = np.bincount(inverse, weights=values[keep], minlength=len(groups)).round().astype("int64")
    return pd.DataFrame(out)


def _aggregate(units: pd.DataFrame, key: pd.Series, sex: str | None = None,
               per_unit: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Sum counts by (year, key) for every sex at once; ``sex`` keeps only one of them."""
    per_unit = _sex_columns(units) if per_unit is None else per_unit
    g = group_sum(units["year"].to_numpy(), key, per_unit)
    out = []
    for s in SEXES if sex is None else (sex,):
        part = g[["year", "geo_code", "n_units"]].copy()
        for field in ("numerator", "denominator", "n_reporting", "n_excluded"):
            part[field] = g[f"{field}|{s}"]
        out.append(part.assign(sex=s))
    return pd.concat(out, ignore_index=True)


def _cohort(ind: Indicator, units: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """Numerator of year t over the denominator of year t - lag, each summed over its own year's units."""
    lag = int(ind.compute["lag"])
    num = units["num"].to_numpy(dtype="float64", na_value=np.nan)
    den = units["den"].to_numpy(dtype="float64", na_value=np.nan)
    present = units["present"].to_numpy(dtype=bool)
    g = group_sum(units["year"].to_numpy(), key, {
        "num": np.nan_to_num(num), "den": np.nan_to_num(den), "n_units": np.ones(len(units)),
        "n_num": (~np.isnan(num)).astype(float), "bad_n": (present & np.isnan(num)).astype(float),
        "bad_d": (present & np.isnan(den)).astype(float)})
    earlier = g[["year", "geo_code", "den", "bad_d"]].assign(year=g["year"] + lag)
    out = g.drop(columns=["den", "bad_d"]).merge(earlier, on=["year", "geo_code"], how="inner")
    return pd.DataFrame({
        "year": out["year"], "geo_code": out["geo_code"], "numerator": out["num"], "denominator": out["den"],
        "n_units": out["n_units"], "n_reporting": out["n_num"], "n_excluded": out["bad_n"] + out["bad_d"],
    })


def compute_indicator(ind: Indicator, tables: dict[str, pd.DataFrame], geo: Geography) -> pd.DataFrame:
    units = unit_table(ind, tables)
    if units.empty:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    parts = []
    method = ind.compute["method"]
    per_unit = _sex_columns(units) if method == "ratio" else None
    for level, key in _groupings(ind, units, geo):
        if method == "cohort":
            if level in ("ward", "ward_current"):
                continue  # cohorts move between schools and wards: district, type and ownership only
            agg = _cohort(ind, units, key).assign(sex="total")
        elif method == "ratio":
            agg = _aggregate(units, key, per_unit=per_unit)
            agg = agg[(agg["sex"] == "total") | (agg["n_reporting"] > 0)]
        else:
            agg = _aggregate(units, key, "total")
        parts.append(agg.assign(geo_level=level))
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "indicator_id", ind.id)
    return out


def _names(frame: pd.DataFrame, geo: Geography, lang: str = "vi") -> pd.Series:
    type_labels = {c.code: c.vi for c in SCHOOL_TYPES}
    own_labels = {k: v["vi"] for k, v in ownership_groups().items()}
    names = pd.Series("", index=frame.index, dtype=object)
    for (level, year, code), idx in frame.groupby(["geo_level", "year", "geo_code"]).groups.items():
        if level == "school_level":
            name = type_labels.get(code, code)
        elif level == "ownership":
            name = own_labels.get(code, code)
        elif level == "ward_current":
            name = short_name(geo.crosswalk.name_of(code))
        elif level == "ward":
            name = short_name(geo.crosswalk.name_of(code, int(year)))
        else:
            name = geo.crosswalk.name_of(geo.territory_unit.get(int(year), code) if level == geo.territory_level
                                         else code, int(year))
        names[idx] = name
    return names


def _series_breaks(out: pd.DataFrame, geo: Geography, registry_: dict[str, Indicator]) -> pd.DataFrame:
    """Flag the first year of a new territory for population-based indicators above the ward level."""
    out["series_break"] = False
    out["territory_id"] = out["geo_code"].astype(str)
    pop = out["indicator_id"].map(lambda i: registry_[i].population_based)
    for level in geo.levels:
        sets = geo.expected_wards(level)  # (year, code) -> frozenset of wards
        for code in out.loc[pop & (out["geo_level"] == level), "geo_code"].unique():
            years = sorted(y for (y, c) in sets if c == code)
            segment_start, breaks = years[0] if years else None, set()
            for prev, cur in zip(years, years[1:]):
                if not geo.crosswalk.same_territory(sets[(prev, code)], sets[(cur, code)]):
                    breaks.add(cur)
            starts = {}
            for y in years:
                if y in breaks:
                    segment_start = y
                starts[y] = segment_start
            m = pop & (out["geo_level"] == level) & (out["geo_code"] == code)
            out.loc[m, "series_break"] = out.loc[m, "year"].isin(breaks).to_numpy()
            out.loc[m, "territory_id"] = [f"{code}@{starts.get(int(y), y)}" for y in out.loc[m, "year"]]
    return out


def compute(tables: dict[str, pd.DataFrame], crosswalk: Crosswalk,
            indicators: dict[str, Indicator] | None = None) -> pd.DataFrame:
    """All indicators for all years: the long table of DESIGN §5 (pure function of its inputs)."""
    reg = indicators or registry()
    geo = build_geography(tables, crosswalk)
    parts = [compute_indicator(ind, tables, geo) for ind in reg.values()]
    out = pd.concat([p for p in parts if len(p)], ignore_index=True)
    out["geo_name"] = _names(out, geo)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["value"] = np.where(out["denominator"] > 0, out["numerator"] / out["denominator"] * 100, np.nan)
    out["ci_low"], out["ci_high"] = wilson_interval(out["numerator"], out["denominator"])
    out["reporting_share"] = np.where(out["n_units"] > 0, out["n_reporting"] / out["n_units"] * 100, np.nan)
    small = _registry_file().get("small_denominator", 30)
    out["flag_zero_denominator"] = out["denominator"] == 0
    out["flag_above_100"] = out["value"] > 100
    out["flag_excluded_values"] = out["n_excluded"] > 0
    out["flag_small_denominator"] = (out["denominator"] > 0) & (out["denominator"] < small)
    names = {"flag_zero_denominator": "denominator_zero", "flag_above_100": "above_100",
             "flag_excluded_values": "excluded_values", "flag_small_denominator": "small_denominator"}
    out["flags"] = [";".join(n for c, n in names.items() if row[c]) for row in out[list(names)].to_dict("records")]
    out = _series_breaks(out, geo, reg)
    out = _gpi(out)
    out["cross_check_of"] = out["indicator_id"].map(lambda i: reg[i].cross_check_of or "")
    out["direction"] = out["indicator_id"].map(lambda i: reg[i].direction)
    out["population_based"] = out["indicator_id"].map(lambda i: reg[i].population_based)
    out = out[OUTPUT_COLUMNS]
    level_order = {lv: i for i, lv in enumerate([*geo.levels, "ward", "ward_current", "school_level", "ownership"])}
    out = out.assign(_i=out["indicator_id"].map({k: i for i, k in enumerate(reg)}),
                     _l=out["geo_level"].map(level_order), _s=out["sex"].map({s: i for i, s in enumerate(SEXES)}))
    out = out.sort_values(["_i", "year", "_l", "geo_code", "_s"]).drop(columns=["_i", "_l", "_s"])
    out = _typed(out.reset_index(drop=True))
    # sanity: sums of counts, never rates; a subset never exceeds its total where cleaning held
    main = out[out["cross_check_of"] == ""]
    assert (main["numerator"] <= main["denominator"]).all(), "a main indicator has numerator > denominator"
    return out


def _gpi(out: pd.DataFrame) -> pd.DataFrame:
    keys = ["indicator_id", "year", "geo_level", "geo_code"]
    f = out[out["sex"] == "female"].set_index(keys)["value"]
    m = out[out["sex"] == "male"].set_index(keys)["value"]
    with np.errstate(invalid="ignore", divide="ignore"):
        gpi = (f / m).replace([np.inf, -np.inf], np.nan).rename("gpi")
    return out.join(gpi, on=keys)


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    for col in ("indicator_id", "geo_level", "geo_code", "geo_name", "sex", "flags", "territory_id",
                "cross_check_of", "direction"):
        out[col] = out[col].astype("string")
    for col in ("numerator", "denominator", "n_units", "n_reporting", "n_excluded"):
        out[col] = out[col].astype("int64")
    out["year"] = out["year"].astype("int64")
    for col in ("flag_zero_denominator", "flag_above_100", "flag_excluded_values", "flag_small_denominator",
                "series_break", "population_based"):
        out[col] = out[col].astype(bool)
    return out


# --- targets ------------------------------------------------------------------------------------------------

def load_targets(raw_dir: Path | None = None) -> pd.DataFrame:
    path = config.raw_dir(raw_dir) / config.TARGETS_FILE
    try:
        t = pd.read_csv(path, dtype={"indicator_id": "string", "comparator": "string", "source": "string"},
                        encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFileError(path.name, "Không tìm thấy tệp chỉ tiêu.", "The targets file is missing.",
                            code="targets_missing") from None
    need = ["indicator_id", "target_year", "target_value", "comparator", "source"]
    missing = [c for c in need if c not in t]
    if missing:
        raise DataFileError(path.name, f"Thiếu cột: {', '.join(missing)}.", f"Missing column(s): {', '.join(missing)}.",
                            column=missing[0], code="targets_columns")
    bad = ~t["comparator"].isin([">=", ">", "<", "<="]) | t["target_value"].isna() | t["target_year"].isna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise DataFileError(path.name, "Chỉ tiêu thiếu giá trị/năm hoặc phép so sánh không hợp lệ (>=, >, <, <=).",
                            "A target lacks a value/year or has an invalid comparator (>=, >, <, <=).",
                            row=i + 2, code="targets_row")
    t["target_year"] = t["target_year"].astype("int64")
    t["target_value"] = t["target_value"].astype(float)
    return t[need]


def meets(value, target, comparator: str):
    value = np.asarray(value, dtype=float)
    return {">=": value >= target, ">": value > target, "<": value < target, "<=": value <= target}[comparator]


def with_targets(ind: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Add, for each target year of the plan, the target, the gap and the change needed per year."""
    out = ind.copy()
    for target_year in sorted(targets["target_year"].unique()):
        t = targets[targets["target_year"] == target_year].set_index("indicator_id")
        target = out["indicator_id"].map(t["target_value"]).astype(float)
        comp = out["indicator_id"].map(t["comparator"])
        out[f"target_{target_year}"] = target
        out[f"gap_{target_year}"] = target - out["value"]
        years_left = target_year - out["year"]
        out[f"needed_per_year_{target_year}"] = np.where(years_left > 0, (target - out["value"]) / years_left, np.nan)
        met = pd.Series(pd.NA, index=out.index, dtype="boolean")
        for c in comp.dropna().unique():
            m = (comp == c) & out["value"].notna()
            met[m] = meets(out.loc[m, "value"], target[m], c)
        out[f"meets_{target_year}"] = met
    return out


# --- action lists ------------------------------------------------------------------------------------------

ACTION_FLAGS = (("CT07", "cong_trinh_ve_sinh"), ("CT19", "ho_tro_tam_ly"), ("CT20A", "csvc_khuyet_tat"))


def institutions_lacking(truong: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    """Institutions that, in ``year``, lack sanitation, psychological support or adapted facilities."""
    reg = registry()
    groups = institution_groups()
    rows = []
    t = truong[truong["year"] == year]
    for iid, flag in ACTION_FLAGS:
        members = groups[reg[iid].compute.get("institutions", "all")]
        scope = t[t["loai_truong"].isin(members)]
        lacking = scope[scope[flag].ne(True)]
        for r in lacking.itertuples(index=False):
            unknown = pd.isna(getattr(r, flag))
            rows.append({
                "indicator_id": iid, "ma_truong": r.ma_truong, "ten_truong": r.ten_truong,
                "loai_truong": category_label(SCHOOL_TYPES, r.loai_truong, lang) if pd.notna(r.loai_truong) else "",
                "loai_hinh": category_label(OWNERSHIP_TYPES, r.loai_hinh, lang) if pd.notna(r.loai_hinh) else "",
                "xa_phuong": short_name(r.xa_phuong) if pd.notna(r.xa_phuong) else "",
                "status": ("unknown" if unknown else "lacking"),
            })
    cols = ["indicator_id", "ma_truong", "ten_truong", "loai_truong", "loai_hinh", "xa_phuong", "status"]
    return pd.DataFrame(rows, columns=cols)


def wards_furthest(indicators: pd.DataFrame, targets: pd.DataFrame, year: int, target_year: int,
                   n: int = 3) -> pd.DataFrame:
    """For each main indicator, the wards furthest from the plan's target in ``year`` (shortfall > 0)."""
    w = indicators[(indicators["geo_level"] == "ward") & (indicators["sex"] == "total")
                   & (indicators["year"] == year) & (indicators["cross_check_of"] == "")]
    t = targets[targets["target_year"] == target_year].set_index("indicator_id")
    w = w[w["indicator_id"].isin(t.index) & w["value"].notna()].copy()
    w["target"] = w["indicator_id"].map(t["target_value"])
    sign = np.where(w["direction"] == "decrease", -1.0, 1.0)
    w["shortfall"] = (w["target"] - w["value"]) * sign
    w = w[w["shortfall"] > 0].sort_values(["indicator_id", "shortfall"], ascending=[True, False])
    cols = ["indicator_id", "geo_code", "geo_name", "value", "target", "shortfall", "numerator", "denominator"]
    return w.groupby("indicator_id", sort=False).head(n)[cols].reset_index(drop=True)


# --- load / process / save -----------------------------------------------------------------------------------

def load(processed_dir: Path | None = None, raw_dir: Path | None = None):
    from analysis.clean import load_tables

    tables = load_tables(processed_dir)
    return tables, Crosswalk.load(raw_dir), load_targets(raw_dir)


def process(tables, crosswalk, targets) -> pd.DataFrame:
    return with_targets(compute(tables, crosswalk), targets)


def save(frame: pd.DataFrame, processed_dir: Path | None = None) -> None:
    folder = config.processed_dir(processed_dir)
    with staged(folder) as st:
        st.add_parquet("indicators.parquet", frame)
        st.add_csv("indicators.csv", frame)
        st.commit()


def load_indicators(processed_dir: Path | None = None) -> pd.DataFrame:
    path = config.processed_dir(processed_dir) / "indicators.parquet"
    if not path.exists():
        raise AnalysisError("Chưa có bảng chỉ tiêu; hãy chạy 'python -m analysis indicators'.",
                            "No indicators yet; run 'python -m analysis indicators' first.")
    return pd.read_parquet(path)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processed-dir", help="thư mục dữ liệu đã làm sạch và kết quả (mặc định data/processed)")
    parser.add_argument("--raw-dir", help="thư mục chứa chi_tieu_ke_hoach.csv và don_vi_hanh_chinh.csv (mặc định data/raw)")


def run(args: argparse.Namespace) -> int:
    tables, crosswalk, targets = load(args.processed_dir, args.raw_dir)
    frame = process(tables, crosswalk, targets)
    save(frame, args.processed_dir)
    n_ind = frame["indicator_id"].nunique()
    years = f"{frame['year'].min()}–{frame['year'].max()}" if len(frame) else "—"
    print(f"{len(frame):,} dòng/rows, {n_ind} chỉ tiêu/indicators, {years} -> "
          f"{config.display_path(config.processed_dir(args.processed_dir))}/indicators.parquet, indicators.csv")
    return 0
