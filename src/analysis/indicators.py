"""Every plan indicator, from the cleaned counts, for every year, geography, institution type and sex.

The registry (``indicators.yaml``) says what each indicator is; this module has no per-indicator code. The
computation is a declaration: one row per unit (institution, institution level or ward), year and sex with
its numerator, denominator and whether it reported them; one grouped sum per level (the plan's territory
and the levels between it and the wards, wards as named each year, today's wards, institution type,
ownership); value = sum of numerators / sum of denominators, never a mean of rates. Geography comes from
the crosswalk (``geography.DataGeography``); a population-based series whose territory changed is
flagged as a break, never silently joined.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import AnalysisError
from analysis.geography import Crosswalk, data_geography
from analysis.template import FEMALE_SUFFIX, SCHOOL_TYPES, SHEETS_BY_NAME

REGISTRY_FILE = Path(__file__).with_name("indicators.yaml")
METHODS = ("institution_share", "ratio", "cohort")
SEXES = ("total", "female", "male")
TABLE_SHEET = {"truong": "Truong", "mam_non": "MamNon", "pho_thong": "PhoThong", "xa_phuong": "XaPhuong"}
INSTITUTION_LEVELS = ("school_level", "ownership")  # breakdowns of institution-based indicators
FLAGS = {"denominator_zero": "flag_zero_denominator", "above_100": "flag_above_100",
         "excluded_values": "flag_excluded_values", "small_denominator": "flag_small_denominator"}
OUTPUT_COLUMNS = [
    "indicator_id", "year", "geo_level", "geo_code", "geo_name", "sex", "numerator", "denominator", "value",
    "n_units", "n_reporting", "reporting_share", "n_excluded", *FLAGS.values(), "flags",
    "series_break", "territory_id", "gpi", "cross_check_of", "direction", "population_based",
]
TEXT_COLUMNS = ("indicator_id", "geo_level", "geo_code", "geo_name", "sex", "flags", "territory_id",
                "cross_check_of", "direction")
COUNT_COLUMNS = ("numerator", "denominator", "n_units", "n_reporting", "n_excluded")


# --- the registry ------------------------------------------------------------------------------------------

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
    return config.read_yaml(REGISTRY_FILE)


def registry(include_cross_checks: bool = True) -> dict[str, Indicator]:
    """Indicator id -> definition, checked against the raw template."""
    raw = _registry_file()
    out = {}
    for iid, meta in raw["indicators"].items():
        problem = _entry_problem(meta, raw)
        if problem:
            raise ValueError(f"indicators.yaml, {iid}: {problem}")
        if include_cross_checks or not meta.get("cross_check_of"):
            out[iid] = Indicator(iid, meta)
    return out


def main_indicators() -> dict[str, Indicator]:
    return registry(include_cross_checks=False)


def institution_groups() -> dict[str, list[str]]:
    return _registry_file()["institution_groups"]


def ownership_groups() -> dict[str, dict]:
    return _registry_file()["ownership_groups"]


def _entry_problem(meta: dict, raw: dict) -> str:
    """What is wrong with a registry entry ('' when nothing)."""
    c = meta.get("compute", {})
    if c.get("method") not in METHODS or c.get("table") not in TABLE_SHEET:
        return f"compute.method must be one of {METHODS} on a table of {tuple(TABLE_SHEET)}"
    if meta.get("direction") not in ("increase", "decrease"):
        return "direction must be increase or decrease"
    columns = SHEETS_BY_NAME[TABLE_SHEET[c["table"]]].by_id
    wrong = [c[k] for k in ("numerator", "denominator", "flag") if k in c and c[k] not in columns]
    if wrong:
        return f"{wrong[0]} is not a column of sheet {TABLE_SHEET[c['table']]}"
    if c.get("institutions", "all") not in raw["institution_groups"]:
        return f"unknown institution group {c['institutions']}"
    texts = ("name", "short", "definition", "numerator", "denominator", "coverage", "source", "caveats")
    missing = [f for f in texts if not (isinstance(meta.get(f), dict) and meta[f].get("vi") and meta[f].get("en"))]
    return f"{missing[0]} needs a 'vi' and an 'en' text" if missing else ""


# --- units: one row per unit and year, with its counts --------------------------------------------------------

def _counts(frame: pd.DataFrame, column: str) -> pd.Series:
    """A count column as floats (NaN: missing, or excluded by cleaning); all NaN when the sheet lacks it."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index)
    return frame[column].astype("float64")


def units(ind: Indicator, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The indicator's units: ``year, ward, school_level, ownership, present, num, den, num_f, den_f``.

    An institution that is expected to report (its type belongs to the indicator's group of institutions)
    but has no row in the sheet is a unit that did not report (``present`` False, no counts); a row whose
    institution is not in sheet Truong that year counts for the whole territory only."""
    c = ind.compute
    if c["table"] == "xa_phuong":
        x = tables["xa_phuong"]
        return pd.DataFrame({"year": x["year"], "ward": x["ma_xa_phuong"], "former": x.get("ma_don_vi_cu", pd.NA),
                             "school_level": pd.NA, "ownership": pd.NA, "present": True, "num": _counts(x, c["numerator"]),
                             "den": _counts(x, c["denominator"]), "num_f": _counts(x, c["numerator"] + FEMALE_SUFFIX),
                             "den_f": _counts(x, c["denominator"] + FEMALE_SUFFIX)})
    owner = {m: g for g, spec in ownership_groups().items() for m in spec["members"]}
    truong = tables["truong"]
    attrs = pd.DataFrame({"year": truong["year"], "ma_truong": truong["ma_truong"], "ward": truong["ma_xa_phuong"],
                          "school_level": truong["loai_truong"], "ownership": truong["loai_hinh"].map(owner)})
    expected = truong["loai_truong"].isin(institution_groups()[c.get("institutions", "all")]).to_numpy(bool)
    if c["table"] == "truong":  # an institution share: each expected institution's yes/no, as 1/0
        flag = _counts(truong, c["flag"])[expected]
        return attrs[expected].drop(columns="ma_truong").assign(
            present=True, num=flag, den=flag.notna().astype(float).where(flag.notna()), num_f=np.nan, den_f=np.nan)
    data = tables[c["table"]]
    for column, allowed in c.get("where", {}).items():
        data = data[data[column].isin(allowed).to_numpy(bool)]
    rows = pd.DataFrame({"year": data["year"], "ma_truong": data["ma_truong"], "present": True,
                         **{k: _counts(data, c[n] + s) for k, n, s in (("num", "numerator", ""), ("den", "denominator", ""),
                                                                         ("num_f", "numerator", FEMALE_SUFFIX),
                                                                         ("den_f", "denominator", FEMALE_SUFFIX))}})
    rows = rows.merge(attrs, on=["year", "ma_truong"], how="left", validate="many_to_one")
    reported = pd.MultiIndex.from_frame(rows[["year", "ma_truong"]])
    silent = attrs[expected & ~pd.MultiIndex.from_frame(attrs[["year", "ma_truong"]]).isin(reported)]
    return pd.concat([rows, silent.assign(present=False)], ignore_index=True).drop(columns="ma_truong")


def by_sex(u: pd.DataFrame, sexes: tuple[str, ...]) -> pd.DataFrame:
    """One row per unit and sex: ``numerator, denominator`` (0 where not valid), ``valid`` (the unit reported
    both counts for that sex: pairwise complete, nothing imputed) and ``given`` (it reported them, valid or
    not). Boys are all minus girls, valid only where they obey the subset rule the entered counts obey
    (0 <= numerator <= denominator): a unit whose boys' counts do not (cleaning logged it) is excluded from
    the boys' sums and counted in ``n_excluded``, never used."""
    valid_total = u["present"] & u["num"].notna() & u["den"].notna()
    valid_girls = u["present"] & u["num_f"].notna() & u["den_f"].notna()
    num_m, den_m = u["num"] - u["num_f"], u["den"] - u["den_f"]
    given_m = valid_total & valid_girls
    parts = {"total": (u["num"], u["den"], valid_total, valid_total),
             "female": (u["num_f"], u["den_f"], valid_girls, valid_girls),
             "male": (num_m, den_m, given_m & (num_m >= 0) & (num_m <= den_m), given_m)}
    return pd.concat([u.assign(sex=sex, numerator=parts[sex][0].where(parts[sex][2], 0.0),
                               denominator=parts[sex][1].where(parts[sex][2], 0.0), valid=parts[sex][2],
                               given=parts[sex][3])
                      for sex in sexes], ignore_index=True)


# --- sums by level ----------------------------------------------------------------------------------------------

def _ratio_sums(long: pd.DataFrame, level: str) -> pd.DataFrame:
    """Sums of each (code of ``level``, year, sex); a girls' or boys' row only where some unit reported it
    (a row whose every unit's boys' counts were excluded stays, with no value and its exclusions counted)."""
    g = long.groupby([level, "year", "sex"], sort=False).agg(
        numerator=("numerator", "sum"), denominator=("denominator", "sum"), n_units=("present", "size"),
        n_present=("present", "sum"), n_reporting=("valid", "sum"), n_given=("given", "sum")).reset_index()
    g = g[(g["sex"] == "total") | (g["n_given"] > 0)].rename(columns={level: "geo_code"})
    return g.assign(n_excluded=g["n_present"] - g["n_reporting"]).drop(columns=["n_present", "n_given"])


def _gpi(sums: pd.DataFrame) -> pd.Series:
    """Gender parity index of each row's group: the girls' value over the boys' (NaN without both)."""
    value = sums["numerator"] / sums["denominator"].where(sums["denominator"] > 0) * 100
    by_sex = value.groupby([sums["geo_code"], sums["year"], sums["sex"]]).first().unstack("sex")
    by_sex = by_sex.reindex(columns=["female", "male"])
    ratio = by_sex["female"] / by_sex["male"]
    ratio = ratio.where(np.isfinite(ratio))
    found = ratio.reindex(pd.MultiIndex.from_frame(sums[["geo_code", "year"]]))
    return pd.Series(found.to_numpy(), index=sums.index)


def _cohort_sums(u: pd.DataFrame, level: str, lag: int) -> pd.DataFrame:
    """Numerator of year t over the denominator of year t - lag, each summed over its own year's units."""
    g = u.assign(n_num=u["num"].notna(), bad_n=u["present"] & u["num"].isna(), bad_d=u["present"] & u["den"].isna(),
                 num=u["num"].fillna(0.0), den=u["den"].fillna(0.0)).groupby([level, "year"]).agg(
        numerator=("num", "sum"), n_units=("present", "size"), n_reporting=("n_num", "sum"), bad_n=("bad_n", "sum"),
        den=("den", "sum"), bad_d=("bad_d", "sum")).reset_index()
    earlier = g[[level, "year", "den", "bad_d"]].assign(year=g["year"] + lag)
    out = g.drop(columns=["den", "bad_d"]).merge(earlier, on=[level, "year"])
    return pd.DataFrame({"geo_code": out[level], "year": out["year"], "sex": "total", "numerator": out["numerator"],
                         "denominator": out["den"], "n_units": out["n_units"], "n_reporting": out["n_reporting"],
                         "n_excluded": out["bad_n"] + out["bad_d"], "gpi": np.nan})


def indicator_sums(ind: Indicator, tables: dict[str, pd.DataFrame], geo) -> pd.DataFrame:
    """One indicator's sums at every level it is reported at: ``geo_level, geo_code, year, sex`` and counts."""
    u = units(ind, tables)
    method = ind.compute["method"]
    levels = [*geo.levels, "ward", "ward_current"]
    if method == "cohort":  # cohorts move between schools and wards: no ward breakdown
        levels = list(geo.levels)
    if ind.compute["table"] != "xa_phuong":
        levels += INSTITUTION_LEVELS
    for level in levels:
        if level not in INSTITUTION_LEVELS:
            u[level] = geo.codes(level, u["year"], u["ward"], u.get("former"))
    if method == "cohort":
        parts = [_cohort_sums(u, level, int(ind.compute["lag"])).assign(geo_level=level) for level in levels]
    else:
        long = by_sex(u, SEXES if method == "ratio" else ("total",))
        parts = []
        for level in levels:
            sums = _ratio_sums(long, level)
            parts.append(sums.assign(geo_level=level, gpi=_gpi(sums) if method == "ratio" else np.nan))
    return pd.concat(parts, ignore_index=True).assign(indicator_id=ind.id)


# --- the long table -------------------------------------------------------------------------------------------

def _names(out: pd.DataFrame, geo) -> pd.Series:
    """geo_name of every row: institution types and ownership by their Vietnamese label, units by the
    crosswalk's name that school year."""
    labels = {"school_level": {c.code: c.vi for c in SCHOOL_TYPES},
              "ownership": {k: v["vi"] for k, v in ownership_groups().items()}}
    keys = out[["geo_level", "year", "geo_code"]].drop_duplicates()
    named = []
    for level, part in keys.groupby("geo_level", sort=False):
        if level in labels:
            names = part["geo_code"].map(lambda c, lab=labels[level]: lab.get(c, c))
        else:
            names = geo.names(level, part["year"], part["geo_code"])
        named.append(part.assign(geo_name=names))
    found = pd.concat(named).set_index(["geo_level", "year", "geo_code"])["geo_name"]
    return pd.Series(found.reindex(pd.MultiIndex.from_frame(out[["geo_level", "year", "geo_code"]])).to_numpy(),
                     index=out.index)


def _territories(out: pd.DataFrame, geo) -> pd.DataFrame:
    """``series_break`` and ``territory_id`` of every row: a population-based series above the wards is in
    the territory "code@first year" and breaks where its wards cover another territory; any other row is in
    its code's own series."""
    out = out.assign(series_break=False, territory_id=out["geo_code"])
    for level in geo.levels:
        rows = out["population_based"] & (out["geo_level"] == level)
        if rows.any():
            seg = geo.segments(level).set_index(["code", "year"])
            found = seg.reindex(pd.MultiIndex.from_frame(out.loc[rows, ["geo_code", "year"]]))
            out.loc[rows, "series_break"] = found["series_break"].fillna(False).to_numpy(bool)
            out.loc[rows, "territory_id"] = (out.loc[rows, "geo_code"].astype(str) + "@"
                                             + found["start"].astype("Int64").astype(str).to_numpy())
    return out


def compute(tables: dict[str, pd.DataFrame], crosswalk: Crosswalk,
            indicators: dict[str, Indicator] | None = None, targets: pd.DataFrame | None = None) -> pd.DataFrame:
    """All indicators for all years: the long table of DESIGN §5 (a pure function of its inputs).

    Rows are sorted by indicator (registry order), year, level (territory down to ward, today's wards,
    institution type, ownership), geo_code and sex (total, female, male). With ``targets``, the target
    columns of ``targets.with_targets`` are added."""
    from analysis.targets import with_targets

    reg = indicators or registry()
    wards = pd.concat([tables[t][["year", "ma_xa_phuong"]] for t in ("truong", "xa_phuong") if t in tables])
    wards = wards.dropna().drop_duplicates().sort_values(["year", "ma_xa_phuong"])
    survey = tables.get("xa_phuong")
    geo = data_geography({int(y): list(w) for y, w in wards.groupby("year")["ma_xa_phuong"]}, crosswalk,
                         survey if survey is not None and "ma_don_vi_cu" in survey else None)
    parts = [indicator_sums(ind, tables, geo) for ind in reg.values()]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["indicator_id", "geo_level"])
    order = {"indicator_id": list(reg), "geo_level": [*geo.levels, "ward", "ward_current", *INSTITUTION_LEVELS],
             "sex": list(SEXES)}
    for col, values in order.items():  # ordered categories: the table's order, and every per-row lookup one
        out[col] = pd.Categorical(out[col], categories=values, ordered=True)  # per category, not per row
    out = out.sort_values(["indicator_id", "year", "geo_level", "geo_code", "sex"], kind="stable", ignore_index=True)

    num, den = out["numerator"].round().astype("int64"), out["denominator"].round().astype("int64")
    value = (num / den.where(den > 0)) * 100
    small = _registry_file().get("small_denominator", 30)
    flags = {"denominator_zero": den == 0, "above_100": value > 100, "excluded_values": out["n_excluded"] > 0,
             "small_denominator": (den > 0) & (den < small)}
    code = sum(flag.to_numpy(int) << k for k, flag in enumerate(flags.values()))  # which flags, as one number
    named = [";".join(name for k, name in enumerate(flags) if c >> k & 1) for c in range(1 << len(flags))]
    iid = out["indicator_id"]
    out = out.assign(
        numerator=num, denominator=den, value=value,
        reporting_share=out["n_reporting"] / out["n_units"].where(out["n_units"] > 0) * 100,
        **{FLAGS[k]: v for k, v in flags.items()}, flags=np.asarray(named, dtype=object)[code],
        cross_check_of=iid.map({i: x.cross_check_of or "" for i, x in reg.items()}),
        direction=iid.map({i: x.direction for i, x in reg.items()}),
        population_based=iid.map({i: x.population_based for i, x in reg.items()}).astype(bool))
    out["geo_name"] = _names(out, geo) if len(out) else pd.Series(dtype=object)
    out = _territories(out, geo)
    out = out[OUTPUT_COLUMNS].astype({**{c: "category" for c in TEXT_COLUMNS}, **{c: "int64" for c in COUNT_COLUMNS},
                                      "year": "int64"})
    for col in order:  # sorted text categories in the saved table, as any other text column
        used = out[col].cat.remove_unused_categories().cat.as_unordered()
        out[col] = used.cat.reorder_categories(sorted(used.cat.categories))
    return out if targets is None else with_targets(out, targets)


# --- load / process / save -----------------------------------------------------------------------------------

def load(processed_dir: Path | None = None, raw_dir: Path | None = None):
    from analysis.clean import load_tables
    from analysis.targets import load_targets

    return load_tables(processed_dir), Crosswalk.load(raw_dir), load_targets(raw_dir)


def process(tables, crosswalk, targets) -> pd.DataFrame:
    return compute(tables, crosswalk, targets=targets)


def save(frame: pd.DataFrame, processed_dir: Path | None = None) -> None:
    from analysis.atomic import write_files
    from analysis.formats import csv_writer, parquet_writer

    folder = config.processed_dir(processed_dir)
    write_files({folder / "indicators.parquet": parquet_writer(frame), folder / "indicators.csv": csv_writer(frame)})


def load_indicators(processed_dir: Path | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """The indicator table; ``columns``: only those (a country's table has 40 columns and millions of rows)."""
    path = config.processed_dir(processed_dir) / "indicators.parquet"
    if not path.exists():
        raise AnalysisError("Chưa có bảng chỉ tiêu; hãy chạy 'python -m analysis indicators'.",
                            "No indicators yet; run 'python -m analysis indicators' first.")
    return pd.read_parquet(path, columns=columns)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processed-dir", help="thư mục dữ liệu đã làm sạch và kết quả (mặc định data/processed)")
    parser.add_argument("--raw-dir", help="thư mục chứa chi_tieu_ke_hoach.csv và don_vi_hanh_chinh.csv (mặc định data/raw)")


def run(args: argparse.Namespace) -> int:
    tables, crosswalk, targets = load(args.processed_dir, args.raw_dir)
    frame = process(tables, crosswalk, targets)
    save(frame, args.processed_dir)
    years = f"{frame['year'].min()}–{frame['year'].max()}" if len(frame) else "—"
    print(f"{len(frame):,} dòng/rows, {frame['indicator_id'].nunique()} chỉ tiêu/indicators, {years} -> "
          f"{config.display_path(config.processed_dir(args.processed_dir))}/indicators.parquet, indicators.csv")
    return 0
