"""What readers see: labels, Vietnamese numbers (99,1% and 1.234), small-cell suppression and every table of
the notebooks and reports (notebooks only call and display); text from raw files is escaped when shown."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from IPython import get_ipython
from IPython.display import Markdown
from pandas.io.formats.style import Styler

from analysis import clean, config
from analysis.errors import AnalysisError, DataFileError
from analysis.indicators import Indicator, load_indicators, main_indicators, registry
from analysis.projections_by_year import load_projections
from analysis.targets import load_targets
from analysis.template import OWNERSHIP_TYPES, SCHOOL_TYPES, SHEETS, category_label, fold, school_year_label

LABELS_FILE = Path(__file__).with_name("labels.yaml")
LANGS = ("vi", "en")
SMALL_CELL = 5  # a ward's group of children with disabilities smaller than this is never published
SEVERITIES = ("error", "warning", "info")


@cache
def _labels() -> dict:
    return config.read_yaml(LABELS_FILE)


def t(key: str, lang: str = "vi", **values) -> str:
    """A reader-facing label."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    text = _labels()[key][lang]
    return text.format(**values) if values else text


# --- numbers -----------------------------------------------------------------------------------------------
def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and x != x)  # NaN: the float unequal to itself


def fmt_num(x, lang: str = "vi", decimals: int = 0) -> str:
    """1234.5 -> '1.234,5' (vi) or '1,234.5' (en)."""
    if _missing(x):
        return t("not_available", lang)
    text = f"{float(x):,.{decimals}f}"
    return text.translate(str.maketrans(",.", ".,")) if lang == "vi" else text


def pct_decimals(x) -> int:
    """Rates under 1% (dropout) need two decimals to be told apart from their targets (0,12% vs 0,05%)."""
    return 2 if not _missing(x) and abs(float(x)) < 1 else 1


def fmt_pct(x, lang: str = "vi", decimals: int | None = None) -> str:
    return str(pct(x, lang, decimals))  # the text of pct's table cell: one way to write a rate


def fmt_points(x, lang: str = "vi", decimals: int | None = None, unit: bool = True) -> str:
    """A change in percentage points with its sign: '+0,3 điểm phần trăm' / '+0.3 pts' ('+0,3' without unit)."""
    if _missing(x):
        return t("not_available", lang)
    d = pct_decimals(x) if decimals is None else decimals
    sign = "+" if x > 0 else ("−" if x < 0 else "±")
    return sign + fmt_num(abs(x), lang, d) + (" " + t("points_unit", lang) if unit else "")


def decimals_near(value, targets, decimals: int) -> int:
    """Enough decimals to compare with the targets as the value does: 0,0996% beside '< 0,1%', not 0,10%."""
    d = decimals
    for target in targets:
        while (d < decimals + 3 and not _missing(value) and not _missing(target) and float(value) != float(target)
               and round(float(value), d) == round(float(target), d)):
            d += 1
    return d


@dataclass(frozen=True)
class Num:
    """A number in a table: Vietnamese text on screen, a number with its format in Excel; ``prefix``: a comparator."""
    value: float
    kind: str = "count"
    decimals: int = 0
    lang: str = "vi"
    prefix: str = ""

    def __str__(self) -> str:
        if self.kind == "pct":
            return self.prefix + fmt_num(self.value, self.lang, self.decimals) + "%"
        if self.kind == "points":
            return fmt_points(self.value, self.lang, self.decimals, unit=False)
        return str(int(self.value)) if self.kind == "int" else fmt_num(self.value, self.lang, self.decimals)

    def excel(self) -> tuple[float, str]:
        """(value, number format): Excel shows them with the separators of the reader's settings."""
        digits = "0." + "0" * self.decimals if self.decimals else "0"
        if self.kind == "pct":
            return self.value / 100, (f'"{self.prefix}"' if self.prefix else "") + digits + "%"
        if self.kind == "points":
            return self.value, f"+{digits};-{digits};{digits}"
        return (int(self.value), "0") if self.kind == "int" else (self.value, "#,##0" + digits[1:])


def pct(x, lang: str = "vi", decimals: int | None = None):
    """A rate for a table (a ``Num``), '—' when missing."""
    d = pct_decimals(x) if decimals is None else decimals
    return t("not_available", lang) if _missing(x) else Num(float(x), "pct", d, lang)


def count(n, lang: str = "vi"):
    return t("not_available", lang) if _missing(n) else Num(int(n), "count", 0, lang)


def points(x, lang: str = "vi", decimals: int = 1):
    return t("not_available", lang) if _missing(x) else Num(float(x), "points", decimals, lang)


def target_cell(target, spec: Indicator, lang: str = "vi"):
    """A target as the plan writes it, with its comparator: '≥ 99,1%', '< 0,1%', '100%' kept a number."""
    if _missing(target):
        return t("no_target", lang)
    d = next(d for d in range(4) if d == 3 or round(float(target), d) == round(float(target), 6))  # 99.1 -> 1
    return Num(float(target), "pct", d, lang, "< " if spec.direction == "decrease" else "≥ ")


def is_suppressed(numerator, denominator) -> bool:
    """Would the ward's counts show a group of 1–4 children (counted, not counted, or in all)?"""
    if _missing(numerator) or _missing(denominator):
        return False
    n, d = int(numerator), int(denominator)
    return 0 < n < SMALL_CELL or 0 < d - n < SMALL_CELL or 0 < d < SMALL_CELL


def hidden(rows: pd.DataFrame, spec: Indicator, level: str) -> pd.Series:
    """Which wards of a small-count indicator and year are hidden: 'small' (a group of 1–4 children would show),
    'other' (hidden too, fewest children first, so that the total minus the wards shown gives nothing away), ''."""
    out = pd.Series("", index=rows.index, dtype=object)
    if rows.empty or not spec.meta.get("small_counts") or level in ("district", "province", "country"):
        return out
    n, d = rows["numerator"].astype(float).fillna(0), rows["denominator"].astype(float).fillna(0)
    out[[is_suppressed(a, b) for a, b in zip(n, d)]] = "small"
    others = d[(out == "") & (d > 0)].sort_values(kind="stable").index.tolist()
    while (h := out != "").any() and others:
        # go on while the total minus the wards shown tells something: one hidden ward, or 1–4 children in all
        if h.sum() > 1 and not any(0 < s < SMALL_CELL for s in (n[h].sum(), (d - n)[h].sum())):
            break
        out[others.pop(0)] = "other"
    return out


# --- display ----------------------------------------------------------------------------------------------
class Table(Styler):
    """A table for notebooks: the Styler's HTML for readers, its cells' text as its plain form (for nbval)."""

    def __repr__(self) -> str:
        return self.data.to_string(index=False)


def show(frame: pd.DataFrame, name: str, left: tuple[str, ...] = (), lang: str = "vi", empty: str = "nothing_to_show",
         styles: pd.DataFrame | None = None):
    """Escaped text, a fixed id (the same HTML each run), text columns left-aligned, cells styled by ``styles``."""
    if frame.empty:
        return Markdown(f"*{t(empty, lang)}*")
    table = Table(frame.map(lambda v: "" if _missing(v) else str(v))).hide(axis="index").format(escape="html")
    table.set_uuid(re.sub(r"\W", "_", name)).set_table_attributes('class="report-table"')
    table.set_table_styles([{"selector": f"td.col{j}", "props": "text-align: left;"}
                            for j, c in enumerate(frame.columns) if c in left])
    return table if styles is None else table.apply(lambda _df: styles, axis=None)


# --- what a notebook loads for one reporting year ---------------------------------------------------------------
class YearData:
    """The processed data as it was knowable in ``year``: nothing after the reporting year is shown."""

    def __init__(self, year: int, processed_dir=None, raw_dir=None):
        folder = config.processed_dir(processed_dir)
        all_ind = load_indicators(folder)
        years = sorted(int(y) for y in all_ind["year"].unique())
        if year not in years:
            shown = ", ".join(map(str, years))
            raise AnalysisError(*(t("year_not_available", lg, year=year, years=shown) for lg in LANGS))
        self.year, self.folder = year, folder
        self.indicators = all_ind[all_ind["year"] <= year].reset_index(drop=True)
        self.targets = load_targets(raw_dir)
        tables = clean.load_tables(folder)
        self.truong, self.quality, self.files = tables["truong"], tables["quality"], tables["files"]
        row = self.files[self.files["year"] == year]
        self.synthetic = bool(len(row) and "synthetic" in row and row["synthetic"].fillna(False).any())

    def heading(self, key: str, lang: str = "vi") -> str:
        return _banner(f"## {t(key, lang, school_year=school_year_label(self.year))}", self.synthetic, lang)


def _banner(heading: str, synthetic: bool, lang: str) -> str:
    """A heading, with the synthetic-data banner under it when the workbook says so."""
    return heading + (f"\n\n> ⚠️ **{t('synthetic_banner', lang)}**" if synthetic else "")


# --- intake and quality (notebook 01, report annex) ------------------------------------------------------------
def intake_table(result, quality: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Per sheet: rows read, rows kept, and how many problems of each severity."""
    q = quality[quality["year"] == result.year]
    sheets = q["sheet"].map(fold)  # the sheet's name as written, matched as the reader matched it
    return pd.DataFrame([{
        t("sheet", lang): t(f"sheet_{spec.name.lower()}", lang),
        t("rows_read", lang): count(result.rows_read.get(spec.name, 0), lang),
        t("kept", lang): count(len(result.tables[spec.name]), lang),
        **{t(sev, lang): count((sheets.isin(spec.name_keys()) & (q["severity"] == sev)).sum(), lang)
           for sev in SEVERITIES},
    } for spec in SHEETS])


def quality_table(quality: pd.DataFrame, year: int, lang: str = "vi",
                  severities: tuple[str, ...] = SEVERITIES) -> pd.DataFrame:
    """The problems found in a year's workbook, as the people who fix them need to see them."""
    q = quality[(quality["year"] == year) & quality["severity"].isin(severities)]
    return pd.DataFrame({
        t("severity", lang): q["severity"].map(lambda s: t(s, lang)),
        t("sheet", lang): q["sheet"].fillna(""),
        t("row", lang): q["row"].map(lambda r: "" if _missing(r) else Num(int(r), "int")),
        t("cell", lang): q["cell"].fillna(""),
        t("column", lang): q["column"].fillna(""),
        t("code", lang) + (" trường" if lang == "vi" else " (institution)"): q["ma_truong"].fillna(""),
        t("value", lang): q["value"].fillna(""),
        t("message", lang): q[f"message_{lang}"].fillna(""),
    }).reset_index(drop=True)


def clean_heading(result, lang: str = "vi") -> str:
    """Markdown heading of notebook 01, with the synthetic-data banner when the workbook says so."""
    heading = t("workbook_heading", lang, school_year=school_year_label(result.year), file=result.file)
    return _banner(f"## {heading}", result.synthetic, lang)


def institution_counts(truong: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Institutions by type (rows) and ownership (columns)."""
    table = pd.crosstab(truong["loai_truong"].fillna("?"), truong["loai_hinh"].fillna("?"), margins=True,
                        margins_name="_total")

    def order(codes, cats):
        return [c.code for c in cats if c.code in codes] + [c for c in codes if c == "?"] + ["_total"]

    def label(code, cats):
        return t("institutions_total", lang) if code == "_total" else (
            t("unknown", lang) if code == "?" else category_label(cats, code, lang))

    table = table.loc[order(table.index, SCHOOL_TYPES), order(table.columns, OWNERSHIP_TYPES)]
    return pd.DataFrame({t("school_type", lang): [label(i, SCHOOL_TYPES) for i in table.index],
                         **{label(c, OWNERSHIP_TYPES): [count(v, lang) for v in table[c]] for c in table.columns}})


def not_reported_table(quality: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    q = quality[(quality["year"] == year) & (quality["code"] == "not_reported")]
    return pd.DataFrame({t("code", lang): q["ma_truong"], t("institution", lang): q["value"],
                         t("not_reported_what", lang): q["sheet"]}).reset_index(drop=True)


def quality_summary(quality: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Problems per year and severity: the history of the data's health."""
    if quality.empty:
        return pd.DataFrame()
    pivot = pd.crosstab(quality["year"], quality["severity"]).reindex(columns=list(SEVERITIES), fill_value=0)
    return pd.DataFrame({t("reporting_year", lang): [Num(y, "int") for y in pivot.index.astype(int)],
                         **{t(sev, lang): [count(v, lang) for v in pivot[sev]] for sev in SEVERITIES}})


# --- indicator tables (notebook 02, report) --------------------------------------------------------------------
def top_level(frame: pd.DataFrame, default: str | None = "district") -> str | None:
    """The whole-territory level in ``frame`` (country, province, district), else ``default``."""
    present = set(frame["geo_level"].unique())  # unique() runs in Arrow; set(column) would box every row
    return next((lv for lv in ("country", "province", "district") if lv in present), default)


def district_rows(ind: pd.DataFrame, sex: str = "total") -> pd.DataFrame:
    """The whole-territory rows (the plan's level) of the indicator table."""
    top = top_level(ind, None) or (ind["geo_level"].iloc[0] if len(ind) else "district")
    return ind[(ind["geo_level"] == top) & (ind["sex"] == sex)]


def indicator_table(ind: pd.DataFrame, year: int, lang: str = "vi", cross_checks: bool = False) -> pd.DataFrame:
    """Every indicator's value, counts, change and targets (a census, not a sample: no sampling interval)."""
    d = district_rows(ind)
    cur, prev = (d[d["year"] == y].drop_duplicates("indicator_id").set_index("indicator_id") for y in (year, year - 1))
    rows = []
    for iid, spec in registry().items():
        if bool(spec.cross_check_of) != cross_checks:
            continue
        r = cur.loc[iid] if iid in cur.index else pd.Series(dtype=object)
        targets = [r.get(f"target_{ty}") for ty in config.TARGET_YEARS]
        row = {t("indicator", lang): iid, t("indicator_name", lang): spec.text("short", lang),
               t("value", lang): pct(r.get("value"), lang, decimals_near(r.get("value"), targets, spec.decimals)),
               t("numerator", lang): count(r.get("numerator"), lang),
               t("denominator", lang): count(r.get("denominator"), lang),
               t("change_since_last", lang): t("series_break", lang) if bool(r.get("series_break", False)) else points(
                   r["value"] - prev.at[iid, "value"] if len(r) and iid in prev.index else None, lang, spec.decimals)}
        if not cross_checks:
            row.update({t("target", lang, year=ty): target_cell(target, spec, lang)
                        for ty, target in zip(config.TARGET_YEARS, targets)})
        rows.append(row)
    return pd.DataFrame(rows)


def ward_rows(ind: pd.DataFrame, iid: str, year: int, level: str = "ward") -> pd.DataFrame:
    """One indicator's wards in a year (both sexes), with ``hidden`` (see ``hidden``)."""
    w = ind[(ind["indicator_id"] == iid) & (ind["geo_level"] == level) & (ind["year"] == year)
            & (ind["sex"] == "total")]
    return w.assign(hidden=hidden(w, registry()[iid], level))


def hidden_label(reason: str, lang: str = "vi") -> str:
    return t("suppressed_small" if reason == "small" else "suppressed_other", lang)


def ward_table(ind: pd.DataFrame, iid: str, year: int, lang: str = "vi") -> pd.DataFrame:
    """One indicator by ward in a year, furthest from the target first; hidden wards show why, no number."""
    spec = registry()[iid]
    w = ward_rows(ind, iid, year).sort_values("value", ascending=spec.direction == "increase")
    hide = t("suppressed_count", lang)
    return pd.DataFrame([{
        t("ward", lang): r.geo_name,
        t("value", lang): hidden_label(r.hidden, lang) if r.hidden else pct(r.value, lang, spec.decimals),
        t("numerator", lang): hide if r.hidden else count(r.numerator, lang),
        t("denominator", lang): hide if r.hidden else count(r.denominator, lang),
    } for r in w.itertuples(index=False)])


def sex_table(ind: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    """Girls and boys side by side for the indicators that have counts by sex."""
    f, m = (d[d["year"] == year].drop_duplicates("indicator_id").set_index("indicator_id")
            for d in (district_rows(ind, "female"), district_rows(ind, "male")))
    gpi = f["gpi"]
    return pd.DataFrame([{
        t("indicator", lang): iid, t("indicator_name", lang): spec.text("short", lang),
        t("female", lang): pct(f.at[iid, "value"], lang, spec.decimals),
        t("male", lang): pct(m["value"].get(iid), lang, spec.decimals),
        t("gpi", lang): t("not_available", lang) if _missing(gpi[iid]) else Num(gpi[iid], "count", 3, lang),
    } for iid, spec in main_indicators().items() if iid in f.index])


ACTION_COLUMNS = {"ma_truong": "code", "ten_truong": "institution", "loai_truong": "school_type",
                  "loai_hinh": "ownership", "xa_phuong": "ward", "status": "status"}


def action_table(lacking: pd.DataFrame, iid: str, lang: str = "vi") -> pd.DataFrame:
    rows = lacking.loc[lacking["indicator_id"] == iid, list(ACTION_COLUMNS)]
    rows = rows.assign(status=rows["status"].map(lambda s: t(s, lang)))
    return rows.rename(columns=lambda c: t(ACTION_COLUMNS[c], lang)).reset_index(drop=True)


def furthest_table(far: pd.DataFrame, ind: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    """The wards furthest from the district's target (the plan sets no ward targets)."""
    rows = []
    for r in far.itertuples(index=False):
        spec = registry()[r.indicator_id]
        w = ward_rows(ind, r.indicator_id, year)
        why = w.loc[w["geo_code"] == r.geo_code, "hidden"].max() if len(w) else ""
        rows.append({t("indicator", lang): r.indicator_id, t("indicator_name", lang): spec.text("short", lang),
                     t("ward", lang): r.geo_name,
                     t("value", lang): hidden_label(why, lang) if why else pct(r.value, lang, spec.decimals),
                     t("district_target", lang): target_cell(r.target, spec, lang),
                     t("shortfall", lang): t("suppressed_count", lang) if why else Num(
                         r.shortfall, "count", decimals_near(r.shortfall, [0.0], spec.decimals), lang)})
    return pd.DataFrame(rows)


def indicator_meta_table(lang: str = "vi") -> pd.DataFrame:
    """Definitions, coverage and caveats of every indicator (methods annex), a cross-check named after its own."""
    return pd.DataFrame([{
        t("indicator", lang): f"{spec.cross_check_of} ({t('cross_check', lang)})" if spec.cross_check_of else iid,
        t("plan_line", lang): spec.meta.get("plan_line", ""), t("indicator_name", lang): spec.text("name", lang),
        **{t(f"meta_{k}", lang): spec.text(k, lang) for k in ("definition", "coverage", "source", "caveats")},
    } for iid, spec in registry().items()])


# --- verdicts (notebooks 03 and 04, the index, the Excel export) -------------------------------------------------
# Each verdict's cell: background and text colour, good to bad (ColorBrewer's RdYlGn, which stays apart on
# screen and on a grey print with the label in the cell), in the order of the legend.
STATUS_STYLE = {
    "achieved": ("#1a9641", "#ffffff"), "on_track": ("#a6d96a", "#1b1f23"),
    "needs_acceleration_on_pace": ("#ffffbf", "#1b1f23"), "needs_acceleration_moderate": ("#fdae61", "#1b1f23"),
    "needs_acceleration_strong": ("#f46d43", "#1b1f23"), "regressing": ("#d7191c", "#ffffff"),
    "not_met": ("#a50026", "#ffffff"), "no_target": ("#ffffff", "#57606a"), "insufficient_data": ("#d9d9d9", "#1b1f23"),
}
CELL_STYLE = {key: f"background-color: {bg}; color: {fg}" for key, (bg, fg) in STATUS_STYLE.items()}  # as CSS


def verdict_key(row) -> str:
    """A verdict's key for colours and counts: its status, with the grade of needs_acceleration."""
    grade = row.get("grade")
    return f"{row['status']}_{grade}" if row["status"] == "needs_acceleration" and isinstance(grade, str) \
        and grade else row["status"]


def key_label(key: str, lang: str = "vi") -> str:
    """The label of a verdict key ('needs_acceleration_strong' -> its grade's label)."""
    from analysis.verdicts import status_label

    status, grade = ("needs_acceleration", key[19:]) if key.startswith("needs_acceleration_") else (key, None)
    return status_label(status, lang, grade)


def status_legend(lang: str = "vi"):
    """What each colour of the verdicts means, in the colours themselves (below the summary table)."""
    keys = list(STATUS_STYLE)
    frame = pd.DataFrame({t("status", lang): [key_label(k, lang) for k in keys],
                          t("meaning", lang): [t(f"legend_{k}", lang) for k in keys]})
    styles = pd.DataFrame({frame.columns[0]: [CELL_STYLE[k] for k in keys], frame.columns[1]: ""})
    return show(frame, "legend", left=tuple(frame.columns), lang=lang, styles=styles)


def series_broke(ind: pd.DataFrame, iid: str, year: int) -> bool:
    """Has the indicator's whole-territory series changed territory by ``year``?"""
    d = district_rows(ind)
    return bool(d[(d["indicator_id"] == iid) & (d["year"] <= year)]["series_break"].any())


def verdict_text(row, spec: Indicator, lang: str = "vi", broke: bool = False) -> str:
    """'Cần đẩy nhanh: khả năng đạt 12%; dự báo 98,9% (80%: 98,5–99,2%)' or 'Đã đạt (99,3%)'."""
    label = row["label"] if lang == "vi" else row.get("label_en", row["label"])
    if row["status"] == "no_target":
        return label
    if row.get("basis") == "observed":
        d = decimals_near(row["observed"], [row["target_value"]], spec.decimals)
        return t("verdict_observed", lang, label=label, value=fmt_pct(row["observed"], lang, d))
    bridged = t("bridged_break", lang) if broke else ""  # a territory change the projection bridged
    if row.get("basis") == "latest":
        d = decimals_near(row["latest_value"], [row["target_value"]], spec.decimals)
        return t("verdict_latest", lang, label=label, year=int(row["latest_year"]),
                 value=fmt_pct(row["latest_value"], lang, d), prob=fmt_pct(100 * row["probability"], lang, 0)) + bridged
    if row.get("basis") == "projected":
        return t("verdict_projected", lang, label=label, prob=fmt_pct(100 * row["probability"], lang, 0),
                 value=fmt_pct(row["projected"], lang, spec.decimals), low=fmt_pct(row["lo80"], lang, spec.decimals),
                 high=fmt_pct(row["hi80"], lang, spec.decimals)) + bridged
    if broke and int(row.get("n_points") or 0) < 3:
        return t("insufficient_break", lang, label=label, n=int(row.get("n_points") or 0))
    return label


def district_verdicts(verdicts: pd.DataFrame, year: int) -> pd.DataFrame:
    v = verdicts[(verdicts["as_of"] == year) & (verdicts["sex"] == "total")]
    return v[v["geo_level"] == top_level(v)]


def summary_table(ind: pd.DataFrame, verdicts: pd.DataFrame, year: int, lang: str = "vi",
                  baseline: int = config.BASELINE_YEAR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The one-screen summary (baseline, latest value, targets, verdicts) and each verdict cell's status."""
    d = district_rows(ind)
    v = district_verdicts(verdicts, year)
    rows, keys = [], []
    for iid, spec in main_indicators().items():
        series = d[d["indicator_id"] == iid].set_index("year")["value"]
        base, cur = series.get(baseline, np.nan), series.get(year, np.nan)
        targets = v.loc[v["indicator_id"] == iid, "target_value"].tolist()
        broke = series_broke(ind, iid, year)
        row = {t("indicator", lang): iid, t("indicator_name", lang): spec.text("short", lang),
               t("baseline", lang): pct(base, lang, spec.decimals),
               t("latest", lang, year=year): pct(cur, lang, decimals_near(cur, targets, spec.decimals))}
        key = {}
        for ty in config.TARGET_YEARS:
            vr = v[(v["indicator_id"] == iid) & (v["target_year"] == ty)]
            r, col = vr.iloc[0].to_dict() if len(vr) else None, t("verdict", lang, year=ty)
            row[t("target", lang, year=ty)] = target_cell(r["target_value"] if r else None, spec, lang)
            row[col] = verdict_text(r, spec, lang, broke) if r else t("not_available", lang)
            key[col] = verdict_key(r) if r else "insufficient_data"
        rows.append(row)
        keys.append(key)
    return pd.DataFrame(rows), pd.DataFrame(keys)


def show_summary(table: pd.DataFrame, keys: pd.DataFrame, name: str, lang: str = "vi"):
    """The summary with each verdict cell coloured by its status."""
    colours = keys.map(lambda k: CELL_STYLE.get(k, "")).reindex(columns=table.columns).fillna("").set_axis(table.index)
    return show(table, name, left=(t("indicator_name", lang), *keys.columns), lang=lang, styles=colours)


def headline_verdicts(year: int, lang: str = "vi", processed_dir=None) -> list[dict]:
    """For reports/index.html: per target year, how many indicators have each status (label, colour, n)."""
    try:
        _, verdicts = load_projections(processed_dir, as_of=year)
    except Exception:
        return []
    v = district_verdicts(verdicts, year)
    v = v[v["indicator_id"].isin(list(main_indicators())) & v["target_value"].notna()]
    n = Counter((r["target_year"], verdict_key(r)) for r in v.to_dict("records"))
    out = [{"year": ty, "badges": [{"n": n[ty, key], "colour": bg, "text": fg, "label": key_label(key, lang)}
                                   for key, (bg, fg) in STATUS_STYLE.items() if n[ty, key]]}
           for ty in config.TARGET_YEARS]
    return [y for y in out if y["badges"]]


def method_table(projections: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Which method each whole-territory series got and with which weights (the 'why' of the verdicts)."""
    from analysis.projection import method_label

    p = projections[projections["sex"] == "total"]
    p = p[p["geo_level"] == top_level(p)].drop_duplicates("series_id")
    order = {k: i for i, k in enumerate(registry())}
    # as numbers: mapping a categorical column would give a categorical, sorted by its categories
    p = p.sort_values("indicator_id", key=lambda ids: ids.astype(str).map(order).astype(float), kind="stable")
    methods = ("last_value", "logit_linear", "damped")  # each one's weight in the column w_<method>
    return pd.DataFrame([{
        t("indicator", lang): r["indicator_id"], t("method", lang): method_label(r["method"], lang),
        t("years_used", lang): count(r.get("n_points"), lang),
        t("weights", lang): " · ".join(f"{method_label(m, lang)} {fmt_pct(100 * r['w_' + m], lang, 0)}"
                                       for m in methods if not _missing(r.get("w_" + m))),
        **({"reason": r.get("method_reason", "")} if lang == "en" else {}),
    } for r in p.to_dict("records")])


# In a notebook, the project's documented errors show as their bilingual message alone, no traceback. IPython shows
# what the handler returns no more: _showtraceback is how IPython itself shows one.
if get_ipython() is not None:
    get_ipython().set_custom_exc((AnalysisError, DataFileError), lambda sh, etype, value, _tb, tb_offset=None:
                                 sh._showtraceback(etype, value, [f"LỖI / ERROR: {value}"]))
