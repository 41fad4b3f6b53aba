"""What readers see: labels in Vietnamese (or English), Vietnamese number formats, small-cell suppression
and the tables of the notebooks and reports.

Numbers follow Vietnamese habits by default (99,1% and 1.234); ``lang="en"`` gives 99.1% and 1,234.
Every table is built from the processed data by a function here, so notebooks only call and display.
Text that came from raw files is escaped when rendered (``show``), never trusted as HTML.
"""

from __future__ import annotations

import math
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.indicators import Indicator, main_indicators, registry
from analysis.template import SHEETS

LABELS_FILE = Path(__file__).with_name("labels.yaml")
LANGS = ("vi", "en")
SMALL_CELL = 5  # counts of children with disabilities below this are shown as "<5"


@cache
def _labels() -> dict:
    return config.read_yaml(LABELS_FILE)


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    return lang


def t(key: str, lang: str = "vi", **values) -> str:
    """A reader-facing label."""
    entry = _labels()[key]
    text = entry[check_lang(lang)]
    return text.format(**values) if values else text


# --- numbers -----------------------------------------------------------------------------------------------

def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def fmt_num(x, lang: str = "vi", decimals: int = 0) -> str:
    """1234.5 -> '1.234,5' (vi) or '1,234.5' (en)."""
    if _missing(x):
        return t("not_available", lang)
    text = f"{float(x):,.{decimals}f}"
    if lang == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def pct_decimals(x) -> int:
    """Rates under 1% (dropout) need two decimals to be told apart from their targets (0,12% vs 0,05%)."""
    return 2 if not _missing(x) and abs(float(x)) < 1 else 1


def fmt_pct(x, lang: str = "vi", decimals: int | None = None) -> str:
    if _missing(x):
        return t("not_available", lang)
    return fmt_num(x, lang, pct_decimals(x) if decimals is None else decimals) + "%"


def fmt_points(x, lang: str = "vi", decimals: int | None = None) -> str:
    """A change in percentage points with its sign: '+0,3 điểm %' / '+0.3 pts'."""
    if _missing(x):
        return t("not_available", lang)
    d = pct_decimals(x) if decimals is None else decimals
    sign = "+" if x > 0 else ("−" if x < 0 else "±")
    unit = " điểm %" if lang == "vi" else " pts"
    return sign + fmt_num(abs(x), lang, d) + unit


def fmt_count(n, lang: str = "vi", suppress: bool = False) -> str:
    """A count; with ``suppress`` a count of 1–4 is shown as '<5' so no child can be identified."""
    if _missing(n):
        return t("not_available", lang)
    if suppress and 0 < int(n) < SMALL_CELL:
        return t("suppressed", lang)
    return fmt_num(int(n), lang)


def fmt_interval(low, high, lang: str = "vi", decimals: int | None = None) -> str:
    if _missing(low) or _missing(high):
        return t("not_available", lang)
    d = max(pct_decimals(low), pct_decimals(high)) if decimals is None else decimals
    return f"{fmt_num(low, lang, d)}–{fmt_num(high, lang, d)}%"


def is_suppressed(numerator, denominator) -> bool:
    """A rate reveals its counts: hide it when the children counted, or not counted, are 1–4."""
    if _missing(numerator) or _missing(denominator):
        return False
    n, d = int(numerator), int(denominator)
    return 0 < n < SMALL_CELL or 0 < d - n < SMALL_CELL or 0 < d < SMALL_CELL


def needs_suppression(ind: Indicator, geo_level: str) -> bool:
    """Small-cell rules apply to small-count indicators below the whole territory."""
    return bool(ind.meta.get("small_counts")) and geo_level not in ("district", "province", "country")


# --- display ----------------------------------------------------------------------------------------------

class Table:
    """A table for notebooks: HTML from the Styler for readers, plain text of the same values as its
    text form (what nbval compares, and what a terminal shows)."""

    def __init__(self, frame: pd.DataFrame, styler):
        self.frame, self.styler = frame, styler

    def _repr_html_(self) -> str:
        return self.styler.to_html()

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def show(frame: pd.DataFrame, name: str, colours: dict[str, dict[str, str]] | None = None,
         left: tuple[str, ...] = (), lang: str = "vi", empty: str = "nothing_to_show"):
    """A Styler for display: escaped text, no index, a fixed id (deterministic HTML for nbval).
    An empty table is a short sentence instead."""
    if frame.empty:
        from IPython.display import Markdown

        return Markdown(f"*{t(empty, lang)}*")
    styler = frame.style.hide(axis="index").format(escape="html", na_rep="")
    styler = styler.set_uuid(re.sub(r"\W", "_", name))
    styler = styler.set_table_attributes('class="report-table"')
    styles = [
        {"selector": "th", "props": "text-align: left; background: #eef3f8; padding: 4px 8px;"},
        {"selector": "td", "props": "padding: 3px 8px; text-align: right;"},
    ]
    # text columns read better left-aligned (a class selector outranks the plain td rule)
    styles += [{"selector": f"td.col{j}", "props": "text-align: left;"}
               for j, c in enumerate(frame.columns) if c in left]
    styler = styler.set_table_styles(styles)
    for column, palette in (colours or {}).items():
        styler = styler.map(lambda v, p=palette: f"background-color: {p[v]}" if v in p else "", subset=[column])
    return Table(frame, styler)


# --- what a notebook loads for one reporting year ---------------------------------------------------------------

class YearData:
    """The processed data as it was knowable in ``year``: nothing after the reporting year is shown."""

    def __init__(self, year: int, processed_dir=None, raw_dir=None):
        from analysis import clean, config, indicators
        from analysis.targets import load_targets

        folder = config.processed_dir(processed_dir)
        all_ind = indicators.load_indicators(folder)
        years = sorted(int(y) for y in all_ind["year"].unique())
        if year not in years:
            from analysis.errors import AnalysisError

            shown = ", ".join(map(str, years))
            raise AnalysisError(t("year_not_available", "vi", year=year, years=shown),
                                t("year_not_available", "en", year=year, years=shown))
        self.year = year
        self.indicators = all_ind[all_ind["year"] <= year].reset_index(drop=True)
        self.targets = load_targets(raw_dir)
        tables = clean.load_tables(folder)
        self.truong = tables["truong"]
        self.quality = tables["quality"]
        self.files = tables["files"]
        row = self.files[self.files["year"] == year]
        self.synthetic = bool(len(row) and "synthetic" in row and row["synthetic"].fillna(False).any())
        self.folder = folder

    def heading(self, key: str, lang: str = "vi") -> str:
        from analysis.template import school_year_label

        text = f"## {t(key, lang, school_year=school_year_label(self.year))}"
        if self.synthetic:
            text += f"\n\n> ⚠️ **{t('synthetic_banner', lang)}**"
        return text


# --- intake and quality (notebook 01, report annex) ------------------------------------------------------------

SHEET_LABEL = {"Truong": "sheet_truong", "MamNon": "sheet_mam_non", "PhoThong": "sheet_pho_thong",
               "XaPhuong": "sheet_xa_phuong"}


def intake_table(result, quality: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Per sheet: rows read, rows kept, and how many problems of each severity."""
    q = quality[quality["year"] == result.year]
    by_sheet = {spec.name: spec for spec in SHEETS}
    rows = []
    for name in by_sheet:
        kept = len(result.tables[name])
        sheet_q = q[q["sheet"].map(_sheet_key) == name.lower()] if len(q) else q
        counts = sheet_q["severity"].value_counts() if len(sheet_q) else pd.Series(dtype=int)
        rows.append({
            t("sheet", lang): t(SHEET_LABEL[name], lang),
            t("rows_read", lang): fmt_num(result.rows_read.get(name, 0), lang),
            t("kept", lang): fmt_num(kept, lang),
            t("error", lang): fmt_num(counts.get("error", 0), lang),
            t("warning", lang): fmt_num(counts.get("warning", 0), lang),
            t("info", lang): fmt_num(counts.get("info", 0), lang),
        })
    return pd.DataFrame(rows)


def _sheet_key(sheet_name: str) -> str:
    from analysis.template import fold

    key = fold(sheet_name)
    for spec in SHEETS:
        if key in spec.name_keys():
            return spec.name.lower()
    return key


def quality_table(quality: pd.DataFrame, year: int, lang: str = "vi",
                  severities: tuple[str, ...] = ("error", "warning")) -> pd.DataFrame:
    """The problems found in a year's workbook, as the people who fix them need to see them."""
    q = quality[(quality["year"] == year) & quality["severity"].isin(severities)]
    msg = "message_vi" if lang == "vi" else "message_en"
    out = pd.DataFrame({
        t("severity", lang): q["severity"].map(lambda s: t(s, lang)),
        t("sheet", lang): q["sheet"].fillna(""),
        t("row", lang): q["row"].map(lambda r: "" if _missing(r) else str(int(r))),
        t("cell", lang): q["cell"].fillna(""),
        t("column", lang): q["column"].fillna(""),
        t("code", lang) + (" trường" if lang == "vi" else " (institution)"): q["ma_truong"].fillna(""),
        t("value", lang): q["value"].fillna(""),
        t("message", lang): q[msg].fillna(""),
    })
    return out.reset_index(drop=True)


def clean_heading(result, lang: str = "vi") -> str:
    """Markdown heading of notebook 01, with the synthetic-data banner when the workbook says so."""
    from analysis.template import school_year_label

    text = f"## {t('workbook_heading', lang, school_year=school_year_label(result.year), file=result.file)}"
    if result.synthetic:
        text += f"\n\n> ⚠️ **{t('synthetic_banner', lang)}**"
    return text


def institution_counts(truong: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Institutions by type (rows) and ownership (columns)."""
    from analysis.template import OWNERSHIP_TYPES, SCHOOL_TYPES, category_label

    table = pd.crosstab(truong["loai_truong"].fillna("?"), truong["loai_hinh"].fillna("?"), margins=True,
                        margins_name="_total")
    order = [c.code for c in SCHOOL_TYPES if c.code in table.index] + [i for i in table.index if i == "?"] + ["_total"]
    cols = [c.code for c in OWNERSHIP_TYPES if c.code in table.columns] + [c for c in table.columns if c == "?"] + ["_total"]
    table = table.loc[order, cols]

    def label(code, cats):
        return t("institutions_total", lang) if code == "_total" else (
            t("unknown", lang) if code == "?" else category_label(cats, code, lang))

    out = pd.DataFrame({t("school_type", lang): [label(i, SCHOOL_TYPES) for i in table.index]})
    for c in table.columns:
        out[label(c, OWNERSHIP_TYPES)] = [fmt_num(v, lang) for v in table[c]]
    return out


def not_reported_table(quality: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    q = quality[(quality["year"] == year) & (quality["code"] == "not_reported")]
    return pd.DataFrame({
        t("code", lang): q["ma_truong"], t("institution", lang): q["value"],
        t("not_reported_what", lang): q["sheet"],
    }).reset_index(drop=True)


def quality_summary(quality: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Problems per year and severity: the history of the data's health."""
    if quality.empty:
        return pd.DataFrame()
    pivot = quality.pivot_table(index="year", columns="severity", values="file", aggfunc="count", fill_value=0)
    pivot = pivot.reindex(columns=["error", "warning", "info"], fill_value=0)
    out = pd.DataFrame({t("reporting_year", lang): pivot.index.astype(int).astype(str)})
    for sev in ("error", "warning", "info"):
        out[t(sev, lang)] = [fmt_num(v, lang) for v in pivot[sev]]
    return out


# --- indicator tables (notebook 02, report) --------------------------------------------------------------------

def top_level(frame: pd.DataFrame, default: str | None = "district") -> str | None:
    """The whole-territory level present in ``frame`` (country, else province, else district), else ``default``.
    (``unique()`` runs in Arrow; ``set(column)`` would box every row into a Python string.)"""
    present = set(frame["geo_level"].unique())
    return next((lv for lv in ("country", "province", "district") if lv in present), default)


def district_rows(ind: pd.DataFrame, sex: str = "total") -> pd.DataFrame:
    """The whole-territory rows (the plan's level) of the indicator table."""
    top = top_level(ind, None) or (ind["geo_level"].iloc[0] if len(ind) else "district")
    return ind[(ind["geo_level"] == top) & (ind["sex"] == sex)]


def indicator_table(ind: pd.DataFrame, year: int, lang: str = "vi", cross_checks: bool = False) -> pd.DataFrame:
    """The year's value of every indicator with its counts, interval, change and the plan's targets."""
    reg = registry()
    d = district_rows(ind)
    rows = []
    for iid, spec in reg.items():
        if bool(spec.cross_check_of) != cross_checks:
            continue
        cur = d[(d["indicator_id"] == iid) & (d["year"] == year)]
        prev = d[(d["indicator_id"] == iid) & (d["year"] == year - 1)]
        r = cur.iloc[0] if len(cur) else None
        change = (r["value"] - prev.iloc[0]["value"]) if r is not None and len(prev) else np.nan
        if r is not None and r["series_break"]:
            change = np.nan
        row = {
            t("indicator", lang): iid,
            t("indicator_name", lang): spec.text("short", lang),
            t("value", lang): fmt_pct(r["value"], lang, spec.decimals) if r is not None else t("not_available", lang),
            t("numerator", lang): fmt_count(r["numerator"], lang) if r is not None else "",
            t("denominator", lang): fmt_count(r["denominator"], lang) if r is not None else "",
            t("interval95", lang): fmt_interval(r["ci_low"], r["ci_high"], lang, spec.decimals) if r is not None else "",
            t("change_since_last", lang): (t("series_break", lang) if r is not None and r["series_break"]
                                           else fmt_points(change, lang, spec.decimals)),
        }
        if not cross_checks:
            for ty in config.TARGET_YEARS:
                col = f"target_{ty}"
                target = r[col] if r is not None and col in r else np.nan
                row[t("target", lang, year=ty)] = (
                    t("no_target", lang) if _missing(target) else _target_text(target, spec, lang))
        rows.append(row)
    return pd.DataFrame(rows)


def _target_text(target: float, spec: Indicator, lang: str) -> str:
    sign = "<" if spec.direction == "decrease" else "≥"
    return f"{sign} {fmt_target(target, lang, spec.decimals)}"


def fmt_target(target, lang: str = "vi", decimals: int = 2) -> str:
    """Targets as the plan writes them: 99,1% · 100% · 0,1% (no trailing zeros)."""
    if _missing(target):
        return t("no_target", lang)
    text = fmt_num(target, lang, decimals)
    sep = "," if lang == "vi" else "."
    if sep in text:
        text = text.rstrip("0").rstrip(sep)
    return text + "%"


def ward_table(ind: pd.DataFrame, iid: str, year: int, lang: str = "vi", level: str = "ward") -> pd.DataFrame:
    """One indicator by ward in a year, with small-cell suppression where the indicator needs it."""
    spec = registry()[iid]
    w = ind[(ind["indicator_id"] == iid) & (ind["geo_level"] == level) & (ind["year"] == year)
            & (ind["sex"] == "total")].sort_values("value", ascending=spec.direction == "increase")
    suppress = needs_suppression(spec, level)
    rows = []
    for r in w.itertuples(index=False):
        hidden = suppress and is_suppressed(r.numerator, r.denominator)
        rows.append({
            t("ward", lang): r.geo_name,
            t("value", lang): t("suppressed", lang) if hidden else fmt_pct(r.value, lang, spec.decimals),
            t("numerator", lang): fmt_count(r.numerator, lang, suppress),
            t("denominator", lang): fmt_count(r.denominator, lang, suppress),
            t("interval95", lang): "" if hidden else fmt_interval(r.ci_low, r.ci_high, lang, spec.decimals),
        })
    return pd.DataFrame(rows)


def sex_table(ind: pd.DataFrame, year: int, lang: str = "vi") -> pd.DataFrame:
    """Girls and boys side by side for the indicators that have counts by sex."""
    d = district_rows(ind, sex="female")
    rows = []
    for iid, spec in main_indicators().items():
        f = d[(d["indicator_id"] == iid) & (d["year"] == year)]
        if f.empty:
            continue
        m = district_rows(ind, sex="male")
        m = m[(m["indicator_id"] == iid) & (m["year"] == year)]
        rows.append({
            t("indicator", lang): iid,
            t("indicator_name", lang): spec.text("short", lang),
            t("female", lang): fmt_pct(f.iloc[0]["value"], lang, spec.decimals),
            t("male", lang): fmt_pct(m.iloc[0]["value"], lang, spec.decimals) if len(m) else t("not_available", lang),
            t("gpi", lang): fmt_num(f.iloc[0]["gpi"], lang, 3),
        })
    return pd.DataFrame(rows)


def action_table(lacking: pd.DataFrame, iid: str, lang: str = "vi") -> pd.DataFrame:
    rows = lacking[lacking["indicator_id"] == iid]
    return pd.DataFrame({
        t("code", lang): rows["ma_truong"],
        t("institution", lang): rows["ten_truong"],
        t("school_type", lang): rows["loai_truong"],
        t("ownership", lang): rows["loai_hinh"],
        t("ward", lang): rows["xa_phuong"],
        t("status", lang): rows["status"].map(lambda s: t(s, lang)),
    }).reset_index(drop=True)


def furthest_table(far: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    reg = registry()
    rows = []
    for r in far.itertuples(index=False):
        spec = reg[r.indicator_id]
        suppress = needs_suppression(spec, "ward") and is_suppressed(r.numerator, r.denominator)
        rows.append({
            t("indicator", lang): r.indicator_id,
            t("indicator_name", lang): spec.text("short", lang),
            t("ward", lang): r.geo_name,
            t("value", lang): t("suppressed", lang) if suppress else fmt_pct(r.value, lang, spec.decimals),
            t("target_level", lang): _target_text(r.target, spec, lang),
            t("shortfall", lang): t("suppressed", lang) if suppress else fmt_num(r.shortfall, lang, spec.decimals),
        })
    return pd.DataFrame(rows)


def indicator_meta_table(lang: str = "vi", cross_checks: bool = True) -> pd.DataFrame:
    """Definitions, coverage and caveats of every indicator (methods annex)."""
    rows = []
    for iid, spec in registry().items():
        if spec.cross_check_of and not cross_checks:
            continue
        rows.append({
            t("indicator", lang): iid,
            t("plan_line", lang): spec.meta.get("plan_line", ""),
            t("indicator_name", lang): spec.text("name", lang),
            ("Định nghĩa" if lang == "vi" else "Definition"): spec.text("definition", lang),
            ("Phạm vi" if lang == "vi" else "Coverage"): spec.text("coverage", lang),
            ("Nguồn" if lang == "vi" else "Source"): spec.text("source", lang),
            ("Lưu ý" if lang == "vi" else "Caveats"): spec.text("caveats", lang),
        })
    return pd.DataFrame(rows)


# --- verdicts (notebooks 03 and 04, the index, the Excel export) -------------------------------------------------

STATUS_COLOURS = {"achieved": "#c8e6c9", "on_track": "#dcedc8", "needs_acceleration": "#ffe0b2",
                  "regressing": "#ffcdd2", "insufficient_data": "#eeeeee", "not_met": "#ffcdd2"}
BADGE_COLOURS = {"achieved": "#2e7d32", "on_track": "#558b2f", "needs_acceleration": "#ef6c00",
                 "regressing": "#c62828", "insufficient_data": "#757575", "not_met": "#c62828"}


def verdict_key(row) -> str:
    """Status for colouring: a target year reached and missed is 'not_met'."""
    if row.get("basis") == "observed" and row.get("met") is False:
        return "not_met"
    return row["status"]


def series_broke(ind: pd.DataFrame, iid: str, year: int) -> bool:
    """Has the indicator's whole-territory series changed territory by ``year``?"""
    d = district_rows(ind)
    return bool(d[(d["indicator_id"] == iid) & (d["year"] <= year)]["series_break"].any())


def verdict_text(row, spec: Indicator, lang: str = "vi", broke: bool = False) -> str:
    """'Cần đẩy nhanh: khả năng đạt 12%; dự báo 98,9% (80%: 98,5–99,2%)' or 'Đã đạt (99,3%)'."""
    label = row["label"] if lang == "vi" else row.get("label_en", row["label"])
    if _missing(row.get("target_value")):
        return t("no_target_set", lang)
    if row.get("basis") == "observed":
        return t("verdict_observed", lang, label=label, value=fmt_pct(row["observed"], lang, spec.decimals))
    if row.get("basis") == "projected":
        return t("verdict_projected", lang, label=label, prob=fmt_pct(100 * row["probability"], lang, 0),
                 value=fmt_pct(row["projected"], lang, spec.decimals),
                 low=fmt_pct(row["lo80"], lang, spec.decimals), high=fmt_pct(row["hi80"], lang, spec.decimals))
    if broke and int(row.get("n_points") or 0) < 3:
        return t("insufficient_break", lang, label=label, n=int(row.get("n_points") or 0))
    return t("verdict_insufficient", lang, label=label)


def district_verdicts(verdicts: pd.DataFrame, year: int) -> pd.DataFrame:
    v = verdicts[(verdicts["as_of"] == year) & (verdicts["sex"] == "total")]
    return v[v["geo_level"] == top_level(v)]


def summary_table(ind: pd.DataFrame, verdicts: pd.DataFrame, year: int, lang: str = "vi",
                  baseline: int = config.BASELINE_YEAR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The one-screen summary: baseline, latest value, targets and verdicts. Returns the table and, for
    colouring, the status of each verdict cell."""
    d = district_rows(ind)
    v = district_verdicts(verdicts, year)
    rows, keys = [], []
    for iid, spec in main_indicators().items():
        series = d[d["indicator_id"] == iid].set_index("year")
        base = series["value"].get(baseline, np.nan)
        cur = series["value"].get(year, np.nan)
        row = {t("indicator", lang): iid, t("indicator_name", lang): spec.text("short", lang),
               t("baseline", lang): fmt_pct(base, lang, spec.decimals),
               t("latest", lang, year=year): fmt_pct(cur, lang, spec.decimals)}
        key = {}
        for ty in config.TARGET_YEARS:
            vr = v[(v["indicator_id"] == iid) & (v["target_year"] == ty)]
            target = vr["target_value"].iloc[0] if len(vr) else np.nan
            row[t("target", lang, year=ty)] = (t("no_target", lang) if _missing(target)
                                               else _target_text(target, spec, lang))
            if len(vr):
                r = vr.iloc[0].to_dict()
                row[t("verdict", lang, year=ty)] = verdict_text(r, spec, lang, series_broke(ind, iid, year))
                key[t("verdict", lang, year=ty)] = verdict_key(r)
            else:
                row[t("verdict", lang, year=ty)] = t("not_available", lang)
                key[t("verdict", lang, year=ty)] = "insufficient_data"
        rows.append(row)
        keys.append(key)
    return pd.DataFrame(rows), pd.DataFrame(keys)


def show_summary(table: pd.DataFrame, keys: pd.DataFrame, name: str, lang: str = "vi"):
    """The summary with each verdict cell coloured by its status."""
    shown = show(table, name, left=(t("indicator_name", lang), *keys.columns), lang=lang)
    if not isinstance(shown, Table):
        return shown  # an empty table is a sentence
    colours = keys.map(lambda k: f"background-color: {STATUS_COLOURS.get(k, '')}")
    colours = colours.reindex(columns=table.columns).fillna("")
    colours.index = table.index
    shown.styler = shown.styler.apply(lambda _df: colours, axis=None)
    return shown


def headline_verdicts(year: int, lang: str = "vi", processed_dir=None) -> list[dict]:
    """For reports/index.html: per target year, how many indicators have each status (label, colour, n)."""
    from analysis.projections_by_year import load_projections

    try:
        _, verdicts = load_projections(processed_dir, as_of=year)
    except Exception:
        return []
    v = district_verdicts(verdicts, year)
    v = v[v["indicator_id"].isin(list(main_indicators())) & v["target_value"].notna()]
    out = []
    for ty in config.TARGET_YEARS:
        sub = v[v["target_year"] == ty]
        counts = sub.apply(lambda r: verdict_key(r.to_dict()), axis=1).value_counts() if len(sub) else {}
        badges = [{"n": int(counts[key]), "colour": BADGE_COLOURS[key],
                   "label": _labels()["status_" + key][lang] if "status_" + key in _labels() else key}
                  for key in ("achieved", "on_track", "needs_acceleration", "regressing", "not_met", "insufficient_data")
                  if counts.get(key, 0)]
        if badges:
            out.append({"year": ty, "badges": badges})
    return out


def method_table(projections: pd.DataFrame, lang: str = "vi") -> pd.DataFrame:
    """Which method each whole-territory series got and with which weights (the 'why' of the verdicts)."""
    from analysis.projection import method_label

    p = projections[projections["sex"] == "total"]
    p = p[p["geo_level"] == top_level(p)].drop_duplicates("series_id")
    order = {k: i for i, k in enumerate(registry())}
    # the order as numbers (mapping a categorical column would give a categorical, sorted by its categories)
    p = p.assign(_o=p["indicator_id"].astype(str).map(order).astype(float)).sort_values("_o", kind="stable")
    names = {"w_last_value": "last_value", "w_logit_linear": "logit_linear", "w_damped": "damped"}
    rows = []
    for r in p.to_dict("records"):
        weights = " · ".join(f"{method_label(m, lang)} {fmt_pct(100 * r[c], lang, 0)}"
                             for c, m in names.items() if c in r and not _missing(r[c]))
        row = {t("indicator", lang): r["indicator_id"], t("method", lang): method_label(r["method"], lang),
               t("years_used", lang): str(int(r["n_points"])) if not _missing(r.get("n_points")) else "",
               t("weights", lang): weights}
        if lang == "en":
            row["reason"] = r.get("method_reason", "")
        rows.append(row)
    return pd.DataFrame(rows)
