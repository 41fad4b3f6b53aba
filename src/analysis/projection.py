"""Projection of short yearly series to the target years, with honest intervals.

Series are short (3-15 yearly points, gaps allowed) and many, so every method is closed-form and vectorised
over a padded series x observation matrix; bounded values are modelled on the logit scale. ``auto``: the last
value plus a backtest-chosen share of the damped trend, robust where trends do not persist; the backtest also
calibrates the intervals. Every number that is a choice is in ``projection.yaml``. Public API: ``project``,
``check_input``, ``calibration_table``, ``metadata``, ``method_label`` and the ``*_COLUMNS`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from analysis import config
from analysis.errors import AnalysisError

METHODS = ("last_value", "linear", "logit_linear", "damped", "cagr")
AUTO = "auto"
INSUFFICIENT = "insufficient_data"

OUTPUT_COLUMNS = ["series_id", "year", "value", "lo80", "hi80", "lo95", "hi95", "method"]
EXTRA_COLUMNS = ["method_reason", "n_points", "first_year", "last_year", "last_value", "horizon", "scale",
                 "w_last_value", "w_logit_linear", "w_damped"]
# the contract's five quantiles and ten more: the verdict reads a probability off them, even off a CSV
LEVELS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)
LEVEL_COLUMNS = ("q01", "lo95", "q05", "lo80", "q20", "q30", "q40", "value",
                 "q60", "q70", "q80", "hi80", "q95", "hi95", "q99")
QUANTILE_COLUMNS = [c for c in LEVEL_COLUMNS if c not in OUTPUT_COLUMNS]

_IDENTITY, _LOGIT, _LOG_LOWER, _LOG_UPPER, _LOG_RAW = 0, 1, 2, 3, 4  # working scales
_SCALE_NAMES = np.array(["identity", "logit", "log", "log", "log"], dtype=object)
_MAX_DF = 1000
_CAGR_NOTE = "CAGR undefined (a value <= 0): last value carried forward"
_CHUNK = 100_000  # series per pass of the final projection (bounds memory on country-scale runs)


@lru_cache(maxsize=1)
def metadata() -> dict:
    """The content of projection.yaml (read once)."""
    return config.read_yaml(Path(__file__).with_name("projection.yaml"))


def method_label(method: str, lang: str = "vi") -> str:
    methods = metadata()["methods"]
    return methods[method][f"label_{lang}"] if method in methods else method


# --- input --------------------------------------------------------------------------------------------------
def _numeric(frame: pd.DataFrame, column: str, where: tuple[str, str] = ("series_id", "year")) -> pd.Series:
    """Column as float; text that is not a number raises a bilingual error naming the rows (``where``)."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        raise AnalysisError(f"Cột '{column}' phải là số.", f"Column '{column}' must be numeric.")
    if pd.api.types.is_numeric_dtype(raw):
        return raw.astype(float)
    text = raw.astype("string").str.strip()
    values = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = values.isna() & text.notna() & (text != "")
    if bad.any():
        shown = "; ".join(f"{a} {b}: '{c}'" for a, b, c in frame.loc[bad, [*where, column]].head(5)
                          .itertuples(index=False))
        more = f" (+{int(bad.sum()) - 5})" if bad.sum() > 5 else ""
        raise AnalysisError(f"Cột '{column}' có giá trị không phải số (dùng dấu chấm thập phân): {shown}{more}",
                            f"Column '{column}' holds values that are not numbers (use '.' for decimals): {shown}{more}")
    return values.astype(float)


def _problems(frame: pd.DataFrame, code: str, vi: str, en: str, action: str) -> pd.DataFrame:
    """Problem rows for the rows of ``frame``; vi/en are templates over its columns (str.format)."""
    records = frame.to_dict("records")
    return pd.DataFrame({"series_id": frame["series_id"].to_numpy(object),
                         "year": frame["year"].to_numpy() if "year" in frame else np.nan, "code": code,
                         "message_vi": [vi.format(**r) for r in records],
                         "message_en": [en.format(**r) for r in records], "action": action})


def check_input(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate long input -> (usable rows with ``_code``, an integer series code; problems). Structural faults
    raise a bilingual ``AnalysisError``; a bad single value is left out with a problem row saying so (its
    action: dropped, series_skipped or counts_ignored), so that one bad value does not stop a run."""
    missing = [c for c in ("series_id", "year", "value") if c not in frame.columns]
    if missing:
        cols = ", ".join(missing)
        raise AnalysisError(f"Thiếu cột bắt buộc: {cols} (cần series_id, year, value).",
                            f"Missing required column(s): {cols} (need series_id, year, value).")
    keep = [c for c in ("series_id", "year", "value", "lower", "upper", "numerator", "denominator",
                        "segment", "series_break") if c in frame.columns]
    df = frame[keep].reset_index(drop=True)
    if df["series_id"].isna().any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(df["series_id"].isna())[:5])
        raise AnalysisError(f"Thiếu series_id ở dòng dữ liệu {rows}.", f"Missing series_id in data row(s) {rows}.")
    raw = df["year"]
    year = raw.astype(float) if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw) \
        else pd.to_numeric(raw.astype("string").str.strip(), errors="coerce").astype(float)
    bad = year.isna() | ~np.isfinite(year) | (year != np.round(year))
    if bad.any():
        shown = "; ".join(f"{s}: '{y}'" for s, y in df.loc[bad, ["series_id", "year"]].head(5).itertuples(index=False))
        raise AnalysisError(f"Năm phải là số nguyên (vd. 2025; năm học 2024-2025 là năm 2025): {shown}",
                            f"Year must be a whole number (e.g. 2025; school year 2024-2025 is 2025): {shown}")
    df["year"] = year.astype("int64")
    df["_code"] = pd.factorize(df["series_id"])[0]  # integer series code: fast grouping and sorting
    dup = df.duplicated(["_code", "year"], keep=False)
    if dup.any():
        shown = "; ".join(f"{s} {y}" for s, y in df.loc[dup, ["series_id", "year"]].drop_duplicates().head(5)
                          .itertuples(index=False))
        raise AnalysisError(f"Một chuỗi có cùng một năm nhiều lần: {shown}", f"Duplicate year within a series: {shown}")
    for col in ("value", "lower", "upper", "numerator", "denominator"):
        if col in df.columns:
            df[col] = _numeric(df, col)
        elif col in ("lower", "upper"):
            df[col] = np.nan
    found = []
    by_series = df.groupby("_code", sort=False)  # a bound given in some years only also varies (NaN is a value)
    varies = [by_series[c].transform("nunique", dropna=False) > 1 for c in ("lower", "upper")]
    invalid = varies[0] | varies[1] | (df["lower"] >= df["upper"])
    if invalid.any():
        found.append(_problems(df.loc[invalid, ["series_id"]].drop_duplicates(), "bounds_invalid",
                               "Chuỗi {series_id}: cận lower/upper phải giống nhau mọi năm và lower < upper; bỏ qua chuỗi.",
                               "Series {series_id}: bounds lower/upper must be the same every year with lower < upper; "
                               "series skipped.", "series_skipped"))
    df = df[~invalid]
    value = df["value"]
    slack = 1e-9 * np.maximum((df["upper"] - df["lower"]).abs().fillna(1.0), 1.0)
    outside = (value < df["lower"] - slack) | (value > df["upper"] + slack)
    infinite = value.notna() & ~np.isfinite(value)
    if outside.any():
        found.append(_problems(df[outside], "out_of_bounds",
                               "Chuỗi {series_id} năm {year}: giá trị {value:g} nằm ngoài [{lower:g}, {upper:g}], đã bỏ.",
                               "Series {series_id} year {year}: value {value:g} outside [{lower:g}, {upper:g}], "
                               "left out.", "dropped"))
    if infinite.any():
        found.append(_problems(df[infinite], "not_finite", "Chuỗi {series_id} năm {year}: giá trị vô hạn, đã bỏ.",
                               "Series {series_id} year {year}: infinite value, left out.", "dropped"))
    df = df[~(outside | infinite)]
    df = df.assign(value=df["value"].clip(df["lower"], df["upper"]))  # within the slack: on the bound
    if "numerator" in df.columns and "denominator" in df.columns:
        num, den = df["numerator"], df["denominator"]
        ok = (den > 0) & (num >= 0) & (num <= den) & df["lower"].notna() & df["upper"].notna()
        given = (num.notna() | den.notna()).groupby(df["_code"]).transform("any")  # a series without counts is fine
        bad = df.loc[df["value"].notna() & ~ok & given, ["series_id"]].drop_duplicates()
        if len(bad):
            found.append(_problems(
                bad, "counts_ignored",
                "Chuỗi {series_id}: tử số/mẫu số thiếu, không hợp lệ hoặc không có cận; không dùng phương sai mẫu.",
                "Series {series_id}: numerator/denominator missing, invalid or without bounds; "
                "sampling variance not used.", "counts_ignored"))
            drop = df["series_id"].isin(bad["series_id"])
            df = df.assign(numerator=num.mask(drop), denominator=den.mask(drop))
    columns = ["series_id", "year", "code", "message_vi", "message_en", "action"]
    problems = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=columns)
    return df.reset_index(drop=True), problems


def _break_years(df: pd.DataFrame, before: pd.Series | None = None) -> pd.Series:
    """Year of each series' last break (none: absent); with ``before`` (a year per series), the last before it."""
    if "series_break" in df.columns:
        flag = df["series_break"]
        if not pd.api.types.is_bool_dtype(flag):
            flag = flag.astype("string").str.strip().str.lower().isin(["true", "1", "1.0", "yes", "x", "có"])
        year = df["year"].where(flag.fillna(False).astype(bool))
    elif "segment" in df.columns:
        s = df.sort_values(["_code", "year"])
        seg = s["segment"].astype("string").fillna("")
        year = s["year"].where((seg != seg.groupby(s["_code"]).shift()) & s.duplicated("_code"))
    else:
        return pd.Series(dtype=float)
    if before is not None:
        year = year.where(year < df["series_id"].map(before))
    return year.groupby(df["series_id"], sort=False).max().dropna()


def _prepare(frame: pd.DataFrame, checked: tuple[pd.DataFrame, pd.DataFrame] | None = None, breaks: str = "drop",
             ) -> tuple[pd.DataFrame, np.ndarray, pd.Series, pd.DataFrame]:
    """Usable rows (from the last break on; with breaks='shift', the break before); all ids; break years; problems."""
    rows, problems = check_input(frame) if checked is None else checked
    numbered = pd.api.types.is_integer_dtype(frame["series_id"].dtype)  # the pipeline's series: kept as numbers
    ids = pd.unique(frame["series_id"].to_numpy(np.int64 if numbered else object))
    years = _break_years(rows)
    used_from = _break_years(rows, before=years) if breaks == "shift" and len(years) else years
    start = rows["series_id"].map(used_from)  # NaN: no break, every year
    rows = rows[start.isna() | (rows["year"] >= start)]
    return rows[rows["value"].notna()], ids, years, problems


# --- padded panel -------------------------------------------------------------------------------------------
@dataclass
class _Panel:
    """Series as left-aligned padded arrays (S series x N observations), NaN beyond n[s]."""
    ids: np.ndarray
    t: np.ndarray
    y: np.ndarray
    num: np.ndarray | None
    den: np.ndarray | None
    n: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def take(self, rows: np.ndarray, n_used: np.ndarray | None = None, skip: np.ndarray | None = None) -> _Panel:
        """Rows ``rows`` with their first ``n_used`` observations (backtest origins) or all but the first ``skip``."""
        col = np.arange(self.t.shape[1])[None, :]
        n_used = (self.n[rows] if skip is None else self.n[rows] - skip) if n_used is None else n_used
        at = None if skip is None else np.minimum(col + skip[:, None], col.size - 1)

        def cut(a):
            a = None if a is None else a[rows] if at is None else np.take_along_axis(a[rows], at, 1)
            return None if a is None else np.where(col < n_used[:, None], a, np.nan)
        return _Panel(ids=self.ids[rows], t=cut(self.t), y=cut(self.y), num=cut(self.num), den=cut(self.den),
                      n=n_used.astype(int), lower=self.lower[rows], upper=self.upper[rows])


def _pack(df: pd.DataFrame, ids: np.ndarray) -> _Panel:
    df = df.sort_values(["_code", "year"])
    codes = pd.Index(ids).get_indexer(df["series_id"])
    S = len(ids)
    n = np.bincount(codes, minlength=S).astype(int)
    pos = np.empty(len(df), int)
    pos[np.argsort(codes, kind="stable")] = np.arange(len(df)) - np.repeat(np.cumsum(n) - n, n)
    N = max(int(n.max()) if S else 0, 1)

    def grid(col):
        out = np.full((S, N), np.nan)
        out[codes, pos] = df[col].to_numpy(float)
        return out
    lower, upper = np.full(S, np.nan), np.full(S, np.nan)
    lower[codes], upper[codes] = df["lower"].to_numpy(float), df["upper"].to_numpy(float)
    counts = {"numerator", "denominator"} <= set(df.columns) and df["denominator"].notna().any()
    return _Panel(ids=ids, t=grid("year"), y=grid("value"), num=grid("numerator") if counts else None,
                  den=grid("denominator") if counts else None, n=n, lower=lower, upper=upper)


def _last(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    return a[np.arange(len(n)), np.maximum(n - 1, 0)]


def _whole(a: np.ndarray) -> pd.arrays.IntegerArray:
    """Years as nullable integers."""
    missing = np.isnan(a)
    return pd.arrays.IntegerArray(np.where(missing, 0, a).astype(np.int64), missing)


def _shift_breaks(p: _Panel, breaks: pd.Series) -> tuple[_Panel, _Panel, np.ndarray, np.ndarray]:
    """breaks='shift': the years before the last break, moved by the gap between the first year after it and their
    forecast of it (random walk with drift) -> joined panel, panel from the break on, shift, shift's variance."""
    i, col = np.arange(len(p.n)), np.arange(p.t.shape[1])[None, :]
    before = (p.t < pd.Series(p.ids).map(breaks).to_numpy(float)[:, None]).sum(1)
    scale = _working_scale(p)
    z = scale.forward(p.y)
    wk, first = _walk(z, p.t, before), np.minimum(before, p.n - 1)
    with np.errstate(all="ignore"):
        gap = p.t[i, first] - _last(p.t, before)
        forecast = wk["zlast"] + wk["drift"] * gap
        var = np.maximum(wk["s2_naive"], scale.noise_floor() ** 2) * (gap + gap ** 2 / wk["span"])
    fit = (before >= 2) & (before < p.n) & np.isfinite(forecast + var) & np.isfinite(z[i, first])
    moved = np.where(col < np.where(fit, before, 0)[:, None], scale.inverse(z + (z[i, first] - forecast)[:, None]), p.y)
    shift = np.where(fit, p.y[i, first] - scale.inverse(forecast[:, None])[:, 0], np.nan)
    return (replace(p, y=moved).take(i, skip=np.where(fit, 0, before)), p.take(i, skip=before), shift,
            np.where(fit, var, 0.0))


# --- working scale ------------------------------------------------------------------------------------------
def _logit_forward(y, e, lo, up):
    """logit(e + (1 - 2e)(y - lo) / (up - lo)), in place on one new array (the same numbers, bit for bit)."""
    a = np.subtract(y, lo)
    a *= 1 - 2 * e
    a /= up - lo
    a += e
    return special.logit(a, out=a)


def _logit_inverse(z, e, lo, up):
    """lo + clip((expit(z) - e) / (1 - 2e), 0, 1) (up - lo), in place on one new array."""
    a = special.expit(z)
    a -= e
    a /= 1 - 2 * e
    np.clip(a, 0, 1, out=a)
    a *= up - lo
    a += lo
    return a


_TRANSFORMS = {  # kind -> (value to working scale, back), per row (e: squeeze or shift, lo/up: bounds)
    _LOGIT: (_logit_forward, _logit_inverse),
    _LOG_LOWER: (lambda y, e, lo, up: np.log(y - lo + e), lambda z, e, lo, up: lo + np.exp(z) - e),
    _LOG_UPPER: (lambda y, e, lo, up: -np.log(up - y + e), lambda z, e, lo, up: up - np.exp(-z) + e),
    _LOG_RAW: (lambda y, e, lo, up: np.log(y), lambda z, e, lo, up: np.exp(z)),
}


@dataclass
class _Scale:
    """Per-row monotone increasing transform of values to the scale a method works on."""
    kind: np.ndarray   # _IDENTITY, _LOGIT, _LOG_LOWER, _LOG_UPPER, _LOG_RAW
    eps: np.ndarray    # logit: squeeze fraction; log: absolute shift
    lower: np.ndarray
    upper: np.ndarray

    def forward(self, y: np.ndarray) -> np.ndarray:
        return self._apply(y, inverse=False)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return self._apply(z, inverse=True)

    def _apply(self, a: np.ndarray, inverse: bool) -> np.ndarray:
        """Each row through its transform (on the rows of its kind only: all on all cost far more); back: clipped."""
        out = np.array(a, dtype=float)
        with np.errstate(all="ignore"):
            for code, pair in _TRANSFORMS.items():
                fn, rows = pair[inverse], np.flatnonzero(self.kind == code)
                if rows.size == len(self.kind):
                    out = fn(out, self.eps[:, None], self.lower[:, None], self.upper[:, None])
                elif rows.size:
                    out[rows] = fn(out[rows], self.eps[rows, None], self.lower[rows, None], self.upper[rows, None])
            if inverse:
                lo, up = self.lower[:, None], self.upper[:, None]
                np.maximum(out, lo, out=out, where=~np.isnan(lo) & ~np.isnan(out))
                np.minimum(out, up, out=out, where=~np.isnan(up) & ~np.isnan(out))
        return out

    def noise_floor(self) -> np.ndarray:
        return np.array([metadata()["transform"]["min_noise_sd"][name] for name in _SCALE_NAMES])[self.kind]


def _working_scale(p: _Panel) -> _Scale:
    """Logit with both bounds, log with one, identity with none; continuity correction as in the YAML."""
    lo, up = p.lower, p.upper
    both, only_lo, only_up = ~np.isnan(lo) & ~np.isnan(up), ~np.isnan(lo) & np.isnan(up), np.isnan(lo) & ~np.isnan(up)
    kind = np.select([both, only_lo, only_up], [_LOGIT, _LOG_LOWER, _LOG_UPPER], _IDENTITY)
    eps_max = metadata()["transform"]["eps_max"]
    with np.errstate(all="ignore"):
        # distance to the nearer bound (fmin: a missing bound is no bound), relative to the width with both
        dist = np.fmin(p.y - lo[:, None], up[:, None] - p.y) / np.where(both, up - lo, 1.0)[:, None]
        touches = (dist <= 1e-12).any(1)
        positive = np.where(dist > 1e-12, dist, np.inf).min(1)
        shift = np.where(np.isfinite(positive), 0.5 * positive, np.where(both, eps_max, 1.0))
        eps = np.where(touches, np.where(both, np.minimum(shift, eps_max), shift), 0.0)
        if p.den is not None:  # Gart-Zweifel empirical logit, (x + 0.5) / (n + 1): a squeeze by 0.5 / (n + 1)
            has = both & np.isfinite(p.den).any(1)
            med = np.full(len(lo), np.nan)
            med[has] = np.nanmedian(p.den[has], axis=1)
            eps = np.where(has, 0.5 / (med + 1), eps)
    return _Scale(kind=kind, eps=eps, lower=lo, upper=up)


def _sampling_variance(p: _Panel, scale: _Scale) -> np.ndarray:
    """Sampling variance of each year's value on ``scale`` from its counts (0 without): logit 1 / (n p'(1 - p'))."""
    if p.den is None:
        return np.zeros_like(p.y)
    e = scale.eps[:, None]
    with np.errstate(all="ignore"):
        q = e + (1 - 2 * e) * (p.num / p.den)
        q1 = q * (1 - q)
        width = (scale.upper - scale.lower)[:, None]
        v = np.where(scale.kind[:, None] == _LOGIT, 1 / (p.den * q1),
                     np.where(scale.kind[:, None] == _IDENTITY, width ** 2 * q1 / p.den, 0.0))
    return np.where(np.isfinite(v) & (v > 0), v, 0.0)


# --- methods: each gives a center, a standard deviation and Student-t degrees of freedom on its scale -------
@dataclass
class _Forecast:
    center: np.ndarray  # (R, H) on ``scale``
    sd: np.ndarray      # (R, H)
    df: np.ndarray      # (R,)
    scale: _Scale
    ok: np.ndarray      # (R,) method applicable to the row


def _walk(z: np.ndarray, t: np.ndarray, n: np.ndarray) -> dict:
    """Random-walk statistics of the observed prefix; a change over a gap of g years counts g steps."""
    d, g = np.diff(z, axis=1), np.diff(t, axis=1)
    valid = np.arange(d.shape[1])[None, :] < (n - 1)[:, None]
    m = n - 1
    span = _last(t, n) - t[:, 0]
    k = metadata()["methods"]["damped"]["turn_changes"]
    with np.errstate(all="ignore"):
        drift = (_last(z, n) - z[:, 0]) / span  # maximum likelihood drift of a random walk with gaps
        s2_naive = np.where(valid, d ** 2 / g, 0.0).sum(1) / m
        s2_drift = np.where(valid, (d - drift[:, None] * g) ** 2 / g, 0.0).sum(1) / (m - 1)
        recent = np.take_along_axis(d, np.maximum(n[:, None] - 1 - np.arange(1, k + 1), 0), 1)  # last k changes
        turned = (m > k) & (drift != 0) & (np.sign(recent) == -np.sign(drift)[:, None]).all(1)
    return {"zlast": _last(z, n), "span": span, "drift": drift, "m": m, "s2_naive": s2_naive, "s2_drift": s2_drift,
            "turned": turned}


def _line(z, t, w):
    """Weighted least-squares line per row (w = 0 outside the data): level at tbar, slope, tbar, Sxx, sum w, residuals."""
    sw = w.sum(1)
    with np.errstate(all="ignore"):
        tbar = (w * np.nan_to_num(t)).sum(1) / sw
        zbar = (w * np.nan_to_num(z)).sum(1) / sw
        dt = np.where(w > 0, t - tbar[:, None], 0.0)
        sxx = (w * dt ** 2).sum(1)
        b = (w * dt * np.where(w > 0, z - zbar[:, None], 0.0)).sum(1) / sxx
        r = np.where(w > 0, z - zbar[:, None] - b[:, None] * dt, 0.0)
    return zbar, b, tbar, sxx, sw, r


def _trend_fit(z, t, n, v):
    """Least-squares line through the prefix; with sampling variances v, relative weights 1 / (tau^2 + v)
    (DerSimonian-Laird): counts decide how much each year counts, not how wide the interval is."""
    used = np.arange(z.shape[1])[None, :] < n[:, None]
    has_v = (used & (v > 0)).any(1)
    w = used.astype(float)
    with np.errstate(all="ignore"):
        if has_v.any():
            w0 = np.where(used & has_v[:, None] & (v > 0), 1 / v, 0.0)
            _, _, tbar0, sxx0, s0, r0 = _line(z, t, w0)
            q = (w0 * r0 ** 2).sum(1)  # Cochran's Q around the inverse-variance line
            dt = np.where(w0 > 0, t - tbar0[:, None], 0.0)
            # tr((X'WX)^-1 X'W^2 X) with the year centred at the weighted mean: sum w^2 / sum w + sum w^2 dt^2 / Sxx
            trace = (w0 ** 2).sum(1) / s0 + (w0 ** 2 * dt ** 2).sum(1) / sxx0
            tau2 = np.maximum(0.0, (q - (n - 2)) / (s0 - trace))
            vbar = np.where(used, v, 0.0).sum(1) / n
            rel = (tau2 + vbar)[:, None] / (tau2[:, None] + v)
            w = np.where(used & has_v[:, None], np.nan_to_num(rel), w)
        level, slope, tbar, sxx, sw, r = _line(z, t, w)
        s2 = (w * r ** 2).sum(1) / (n - 2)
    return level, slope, tbar, sxx, sw, s2


def _method_scale(method: str, p: _Panel, working: _Scale) -> tuple[_Scale, np.ndarray]:
    """The scale a method works on, and the rows where CAGR is undefined (a value <= 0)."""
    if method == "linear":
        return _Scale(np.full_like(working.kind, _IDENTITY), np.zeros_like(working.eps), working.lower, working.upper), None
    if method == "cagr":
        undefined = (p.y <= 0).any(1)  # a series' values are numbers (NaN only beyond them)
        return _Scale(np.where(undefined, working.kind, _LOG_RAW), np.where(undefined, working.eps, 0.0),
                      working.lower, working.upper), undefined
    return working, None


def _once(shared: dict, what: str, scale: _Scale, compute):
    """``compute()`` once per panel and scale (the scale is kept with it: its id is not reused meanwhile)."""
    key = (what, id(scale))
    if key not in shared:
        shared[key] = (scale, compute())
    return shared[key][1]


def _forecast(method: str, p: _Panel, t_out: np.ndarray, working: _Scale, shared: dict) -> _Forecast:
    """One method for every row of ``p`` at the years ``t_out``; ``shared``: what methods on one scale share."""
    phi = metadata()["methods"]["damped"]["phi"]
    scale, undefined = _method_scale(method, p, working)
    z = _once(shared, "z", scale, lambda: scale.forward(p.y))
    floor2 = scale.noise_floor() ** 2
    h = t_out - _last(p.t, p.n)[:, None]
    with np.errstate(all="ignore"):
        if method in ("linear", "logit_linear"):
            level, slope, tbar, sxx, sw, s2 = _trend_fit(z, p.t, p.n, _sampling_variance(p, scale))
            x0 = t_out - tbar[:, None]
            center = level[:, None] + slope[:, None] * x0
            sd = np.sqrt(np.maximum(s2, floor2)[:, None] * (1 + 1 / sw[:, None] + x0 ** 2 / sxx[:, None]))
            df, finite = p.n - 2.0, np.isfinite(level + slope)
        else:
            wk = _once(shared, "walk", scale, lambda: _walk(z, p.t, p.n))
            naive_sd = np.sqrt(np.maximum(wk["s2_naive"], floor2)[:, None] * h)
            if method == "last_value":
                center, sd, df = np.repeat(wk["zlast"][:, None], h.shape[1], 1), naive_sd, wk["m"].astype(float)
            else:  # damped (phi < 1) or CAGR (undamped drift on the log scale)
                steps = phi * (1 - phi ** h) / (1 - phi) if method == "damped" else h
                drift = np.where(wk["turned"], 0.0, wk["drift"]) if method == "damped" else wk["drift"]
                center = wk["zlast"][:, None] + drift[:, None] * steps
                sd = np.sqrt(np.maximum(wk["s2_drift"], floor2)[:, None] * (h + steps ** 2 / wk["span"][:, None]))
                df = wk["m"] - 1.0
                if undefined is not None:  # CAGR undefined: carry the last value forward
                    center = np.where(undefined[:, None], wk["zlast"][:, None], center)
                    sd = np.where(undefined[:, None], naive_sd, sd)
                    df = np.where(undefined, wk["m"], df)
            finite = np.isfinite(wk["zlast"]) & (np.isfinite(wk["drift"]) | (method == "last_value"))
    ok = (p.n >= metadata()["methods"][method]["min_points"]) & finite & (df >= 1)
    return _Forecast(center=center, sd=sd, df=np.clip(np.nan_to_num(df, nan=1.0), 1, _MAX_DF), scale=scale, ok=ok)


# --- rolling-origin backtest: method weights and interval calibration ---------------------------------------
@dataclass
class _Backtest:
    rows: np.ndarray               # (B,) series row of each origin
    train: np.ndarray              # (B,) training points of each origin
    center: dict[str, np.ndarray]  # method -> (B, H) median forecast on the method's scale (NaN: no outcome)
    y: np.ndarray                  # (B, H) the outcomes (values)
    scale: _Scale                  # (B,) working scale of each origin (the scale of auto's components)
    pit: dict[str, tuple[np.ndarray, np.ndarray]]  # method -> the outcomes' standardised gaps (B, H), t's df (B,)


def _backtest(p: _Panel, methods: list[str], with_pit: bool) -> _Backtest:
    """Every origin of every series at once: train on the first k points, forecast the next few."""
    sel, pseudo_df = metadata()["selection"], metadata()["calibration"]["pseudo_df"]
    horizon = sel["horizon_obs"]
    # origins (series row, training points k): the latest ``max_origins`` of each series
    start = np.maximum(sel["min_train"], p.n - sel["max_origins"])
    count = np.maximum(p.n - start, 0)
    rows = np.repeat(np.arange(len(p.n)), count)
    k = start[rows] + np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    B = len(rows)
    center = {m: np.full((B, horizon), np.nan) for m in methods}
    y, kinds, eps = np.full((B, horizon), np.nan), np.zeros(B, int), np.zeros(B)
    pit = {m: (np.full((B, horizon), np.nan), np.full(B, np.nan)) for m in methods} if with_pit else {}
    for lo in range(0, B, 2 * _CHUNK):
        r, kk = rows[lo:lo + 2 * _CHUNK], k[lo:lo + 2 * _CHUNK]
        part = slice(lo, lo + len(r))
        train = p.take(r, kk)
        idx = kk[:, None] + np.arange(horizon)[None, :]
        inside = idx < p.n[r][:, None]
        idx = np.minimum(idx, p.t.shape[1] - 1)
        t_out = np.where(inside, np.take_along_axis(p.t[r], idx, 1), np.nan)
        y[part] = y_out = np.where(inside, np.take_along_axis(p.y[r], idx, 1), np.nan)
        working = _working_scale(train)
        kinds[part], eps[part] = working.kind, working.eps
        shared: dict = {}
        for m in methods:
            fc = _forecast(m, train, t_out, working, shared)
            out = ~(inside & fc.ok[:, None] & np.isfinite(fc.center))
            center[m][part] = np.where(out, np.nan, fc.center)
            if with_pit:
                with np.errstate(all="ignore"):
                    gap = _once(shared, "outcome", fc.scale, lambda: fc.scale.forward(y_out)) - fc.center
                    x = np.where(fc.sd > 0, gap / fc.sd, np.where(gap == 0, 0.0, np.sign(gap) * np.inf))
                    pit[m][0][part], pit[m][1][part] = np.where(out, np.nan, x), fc.df + pseudo_df
    return _Backtest(rows=rows, train=k, center=center, y=y,
                     scale=_Scale(kinds, eps, p.lower[rows], p.upper[rows]), pit=pit)


def _empirical_levels(bt: _Backtest | None, method: str, lower: np.ndarray, n_series: int) -> tuple[np.ndarray, int]:
    """Lower-tail levels that cover as often as nominal on the backtest (2l-quantiles of the folded PITs, equal
    weight per series), and the number of series behind them."""
    cal = metadata()["calibration"]
    if bt is None or not bt.rows.size:
        return np.full_like(lower, np.nan), 0
    x, df = bt.pit[method]
    good = ~np.isnan(x) & (bt.train >= cal["min_train"])[:, None]  # an infinite gap is a PIT of 0 or 1
    if not good.any():
        return np.full_like(lower, np.nan), 0
    flat = np.flatnonzero(good)  # row-major, as boolean indexing orders them
    series = bt.rows[flat // x.shape[1]]
    per_series = np.bincount(series, minlength=n_series)
    weight = 1.0 / per_series[series]
    step = int(np.ceil(flat.size / cal["max_pit_per_method"]))  # deterministic thinning: every k-th error (k >= 1)
    flat, weight = flat[::step], weight[::step]
    u = special.stdtr(df[flat // x.shape[1]], x.ravel()[flat])
    levels = np.quantile(np.minimum(u, 1 - u), np.clip(2 * lower, 0, 1), weights=weight, method="inverted_cdf")
    return levels, int((per_series > 0).sum())


def _calibrated_levels(bt: _Backtest | None, method: str, levels: np.ndarray, n_series: int) -> tuple[np.ndarray, int]:
    """Levels to ask the model for: the run's measured ones blended with the YAML prior by the series behind them."""
    cal = metadata()["calibration"]
    prior_map = cal["prior"][method]
    knots = sorted(prior_map)
    lower = np.minimum(levels, 1 - levels)
    prior = np.interp(lower, [0.0, *knots, 0.5], [0.0, *[prior_map[k] for k in knots], 0.5])
    measured, n_eff = _empirical_levels(bt, method, lower, n_series)
    k0 = cal["prior_strength_series"]
    blended = prior if n_eff == 0 else (n_eff * measured + k0 * prior) / (n_eff + k0)
    blended = np.where(levels < 0.5, blended, np.where(levels > 0.5, 1 - blended, 0.5))
    return np.clip(blended, *cal["level_clip"]), n_eff


def calibration_table(frame: pd.DataFrame, methods: tuple[str, ...] = METHODS) -> pd.DataFrame:
    """Nominal lower level -> level that covers as often, on ``frame`` alone (a diagnostic; the YAML prior's source)."""
    rows, ids, *_ = _prepare(frame)
    bt = _backtest(_pack(rows, ids), list(methods), with_pit=True)
    knots = np.array(sorted(metadata()["calibration"]["prior"]["last_value"]))
    found = {m: _empirical_levels(bt, m, knots, len(ids)) for m in methods}
    return pd.DataFrame([{"method": m, "nominal": k, "calibrated": c, "series": n_eff}
                         for m, (measured, n_eff) in found.items() for k, c in zip(knots, measured)])


def _auto_weights(bt: _Backtest | None, n_series: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Weight of the damped trend per series (Bates-Granger, shrunk towards the run's default), errors, default."""
    sel = metadata()["selection"]
    both = np.zeros((0, 1), bool) if bt is None else np.isfinite(bt.center["last_value"]) & np.isfinite(bt.center["damped"])
    if not both.any():
        return np.full(n_series, sel["fallback_trend_weight"]), np.zeros(n_series, int), sel["fallback_trend_weight"]
    z_last, z_trend = bt.center["last_value"], bt.center["damped"]
    with np.errstate(all="ignore"):
        sse = [np.bincount(bt.rows, np.nansum((bt.scale.inverse(np.where(both, z, np.nan)) - bt.y) ** 2, 1), n_series)
               for z in (z_last, z_trend)]
        own = np.where(sse[0] + sse[1] > 0, sse[0] / (sse[0] + sse[1]), 0.5)  # mse_last / (mse_last + mse_trend)
    count, k0 = np.bincount(bt.rows, both.sum(1), n_series), sel["shrinkage_errors"]
    weights = {d: (count * own + k0 * d) / (count + k0) for d in sorted(sel["trend_weights"])}
    mae = {d: np.nanmean(np.abs(bt.scale.inverse(z_last + w[bt.rows, None] * (z_trend - z_last)) - bt.y))
           for d, w in weights.items()}
    default = min(mae, key=mae.get)  # the first of equal ones: the smaller weight
    return weights[default], count.astype(int), default


# --- project ------------------------------------------------------------------------------------------------
def project(frame: pd.DataFrame, until: int = 2030, method: str | None = None, *, breaks: str = "drop",
            calibrate: bool | None = None, checked: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Project every series of a long frame to ``until``; never fails for one series.

    Input: ``series_id, year, value`` [, ``lower, upper`` (bounds), ``numerator, denominator`` (counts weighting
    the trend fits), ``series_break`` or ``segment`` (a new territory)]. ``breaks``: 'drop' keeps the years from
    the last break on, 'shift' the earlier ones too, moved by the level shift. ``method`` and ``calibrate``
    (intervals recalibrated on the run's backtest) default to the YAML; ``checked``: ``check_input(frame)``.
    A series that cannot be projected has method ``insufficient_data`` and no numbers.
    """
    meta = metadata()
    method = meta["default_method"] if method is None else method
    if method != AUTO and method not in METHODS:
        raise AnalysisError(f"Phương pháp không hợp lệ: {method}",
                            f"Unknown method: {method} (choose {AUTO} or one of {', '.join(METHODS)})")
    if breaks not in ("drop", "shift"):
        raise AnalysisError(f"breaks không hợp lệ: {breaks}", f"Unknown breaks: {breaks} (choose drop or shift)")
    calibrate = meta["calibration"]["enabled"] if calibrate is None else calibrate
    rows, ids, break_years, problems = _prepare(frame, checked, breaks)
    panel, S, shift, extra = _pack(rows, ids), len(ids), None, np.zeros(len(ids))
    if breaks == "shift" and len(break_years):
        panel, alone, shift, extra = _shift_breaks(panel, break_years)
    components = ["last_value", "damped"] if method == AUTO else [method]
    bt = _backtest(panel, components, with_pit=calibrate) if S and (method == AUTO or calibrate) else None
    trend, n_err, default = _auto_weights(bt, S) if method == AUTO else (np.ones(S), np.zeros(S, int), None)
    weights = np.stack([1 - trend, trend], 1) if method == AUTO else trend[:, None]
    levels = np.array(LEVELS)
    calibrated = {m: _calibrated_levels(bt, m, levels, S) if calibrate else (levels, 0) for m in components}
    run = (components, weights, {m: c[0] for m, c in calibrated.items()}, meta["calibration"]["pseudo_df"] * calibrate)
    last_year = _last(panel.t, panel.n)
    H = max(int(np.nanmax(until - last_year)), 0) if np.isfinite(last_year).any() else 0
    t_out = last_year[:, None] + 1 + np.arange(H)[None, :]
    t_out = np.where(t_out <= until, t_out, np.nan)
    # every series is described; those long enough are forecast, by chunks (bounds the memory of country runs)
    scale, undefined = _method_scale(components[-1], panel, _working_scale(panel))
    note = np.where(undefined, _CAGR_NOTE, "").astype(object) if undefined is not None else np.full(S, "", object)
    need = meta["methods"][method]["min_points"]
    ok = (panel.n >= need) & ~pd.Index(ids).isin(problems.loc[problems["action"] == "series_skipped", "series_id"])
    todo, slot = np.flatnonzero(panel.n >= need), np.full(S, -1)
    slot[todo] = np.arange(len(todo))
    values = np.empty((len(todo), H, len(levels)))  # the forecast series only: slot[s] is series s's row
    for start in range(0, len(todo), _CHUNK):
        chunk = todo[start:start + _CHUNK]
        values[start:start + len(chunk)], fit_ok = _quantiles(panel, chunk, t_out[chunk], run, extra[chunk])
        ok[chunk] &= fit_ok
    if shift is not None:  # never narrower than the same model on the data from the break on alone
        wider = np.flatnonzero((panel.n >= need) & (alone.n >= need) & np.isfinite(shift))
        if wider.size:
            alone, alone_ok = _quantiles(alone, wider, t_out[wider], run, np.zeros(len(wider)))
            q, mid = values[slot[wider]], len(levels) // 2  # mid: the median
            spread = np.where(alone_ok[:, None, None], np.abs(alone - alone[:, :, [mid]]), 0.0)
            q = q[:, :, [mid]] + np.sign(np.arange(len(levels)) - mid) * np.fmax(np.abs(q - q[:, :, [mid]]), spread)
            values[slot[wider]] = np.fmin(np.fmax(q, panel.lower[wider, None, None]), panel.upper[wider, None, None])
    reason = _reasons(panel, ids, ok, method, n_err, default, break_years, shift, problems, note,
                      max(n for _, n in calibrated.values()) if calibrate else None)
    return _assemble(panel, t_out, values, slot, ok, method, reason, scale.kind, weights if method == AUTO else None,
                     components)


def _quantiles(panel: _Panel, chunk: np.ndarray, t_out: np.ndarray, run: tuple, extra_var: np.ndarray):
    """Quantiles (R, H, K) of the series ``chunk`` at ``t_out`` and whether each could be forecast; auto averages its
    components' quantiles on the working scale, where ``extra_var`` (a level shift's) adds to the variance."""
    components, weights, calibrated, pseudo_df = run
    part = panel.take(chunk)
    working = _working_scale(part)
    quantiles, ok, shared = 0.0, np.ones(len(chunk), bool), {}
    for j, m in enumerate(components):
        fc = _forecast(m, part, t_out, working, shared)
        fc.sd = np.sqrt(fc.sd ** 2 + extra_var[:, None]) if fc.scale is working else fc.sd
        uniq, inv = np.unique(fc.df + pseudo_df, return_inverse=True)  # Student t quantiles: a table per distinct df
        tq = special.stdtrit(uniq[:, None], calibrated[m][None, :])[inv]
        with np.errstate(all="ignore"):  # rows the method cannot handle carry NaN/inf; they are dropped later
            q = np.multiply(fc.sd[:, :, None], tq[:, None, :])  # (R, H, K) on the method's scale, filled in place
            q += fc.center[:, :, None]
        q *= weights[chunk, j, None, None]
        quantiles = np.add(quantiles, q, out=q)
        ok &= fc.ok
    flat = fc.scale.inverse(quantiles.reshape(len(chunk), -1))
    return np.sort(flat.reshape(quantiles.shape), axis=2), ok  # sorted: rounding at a bound could swap two


def _reasons(panel, ids, ok, method, n_err, default, breaks, shift, problems, note, n_calibration) -> np.ndarray:
    """Per series: which method was used and why (vectorised string building)."""
    brk = pd.Series(ids).map(breaks).to_numpy(float) if len(breaks) else np.full(len(ids), np.nan)
    shift = np.full(len(ids), np.nan) if shift is None else shift
    if method == AUTO:
        run = f"the run's default, damped trend {default:.0%} (chosen on the backtest of every series)"
        used = np.where(n_err > 0, "auto: weights from a rolling-origin backtest of the series (errors: " +
                        n_err.astype(str).astype(object) + f"), shrunk towards {run}",
                        f"auto: too short for a backtest, {run}")
    else:
        used = np.full(len(ids), f"{method} requested", dtype=object)
    since = np.where(np.isfinite(brk) & np.isnan(shift), " since the break", "")
    text = np.where(ok, used, panel.n.astype(str).astype(object) + " point(s)" + since +
                    f"; {method} needs {metadata()['methods'][method]['min_points']}")
    moved = np.full(len(ids), "only data from that year on are used", dtype=object)
    moved[np.isfinite(shift)] = [f"earlier years shifted by {x:+.3g} (level shift)" for x in shift[np.isfinite(shift)]]
    text = text + np.where(np.isfinite(brk), "; series break in " + np.nan_to_num(brk).astype(int).astype(str)
                           .astype(object) + ": " + moved, "")
    # messages without their 'Series <id>': a country's reasons are then a few texts, not one per series
    en = [(m[len(f"Series {s}"):].lstrip(" :") if m.startswith(f"Series {s}") else m).rstrip(".")
          for m, s in zip(problems["message_en"], problems["series_id"])]
    notes = pd.Series(en, index=problems.index, dtype=object).groupby(problems["series_id"], sort=False).agg("; ".join)
    skipped = problems.loc[problems["action"] == "series_skipped", "series_id"]
    extra = pd.Series(ids).map(notes).astype(object).fillna("").to_numpy(object)
    text = np.where(pd.Index(ids).isin(skipped), "", text) + np.where(note != "", "; " + note, "") + \
        np.where(extra != "", "; " + extra, "")
    if n_calibration is not None:
        source = f"the backtests of {n_calibration} series and the default" if n_calibration else "the default"
        text = text + np.where(ok, f"; intervals calibrated on {source}", "")
    return pd.Series(text, dtype=object).str.lstrip("; ").to_numpy(object)


def _assemble(panel, t_out, values, slot, ok, method, reason, kind, weights, components) -> pd.DataFrame:
    """One row per series and projected year (a blank-year row without data); texts categorical (few, repeated)."""
    no_data = panel.n == 0
    s_idx, h_idx = np.nonzero(np.isfinite(t_out) & ~no_data[:, None])
    s_all = np.concatenate([s_idx, np.flatnonzero(no_data)])
    n_obs, n_rows = len(s_idx), len(s_all)
    good, no_year = ok[s_all], np.full(n_rows - n_obs, np.nan)  # the projected rows, then the series without data

    def per_series_text(text: np.ndarray) -> pd.Categorical:
        codes, categories = pd.factorize(pd.Series(text, dtype=object), use_na_sentinel=True)
        return pd.Categorical.from_codes(codes[s_all], categories=pd.Index(categories, dtype=object))
    # the float columns in one block filled in place (separate columns are copied into one: seconds on millions)
    columns = OUTPUT_COLUMNS + EXTRA_COLUMNS + QUANTILE_COLUMNS
    floats = [c for c in columns if c in LEVEL_COLUMNS or c == "last_value" or c.startswith("w_")]
    block = np.full((len(floats), n_rows), np.nan)
    kept = np.flatnonzero(good[:n_obs])  # projected rows of series that could be projected (all forecast)
    block[np.ix_([floats.index(c) for c in LEVEL_COLUMNS], kept)] = values[slot[s_idx[kept]], h_idx[kept]].T
    block[floats.index("last_value")] = _last(panel.y, panel.n)[s_all]  # NaN for a series without data, as its years
    for j, m in enumerate(components if weights is not None else []):  # auto's weights (w_logit_linear: empty)
        block[floats.index(f"w_{m}")] = np.where(good, weights[s_all, j], np.nan)
    frame = pd.DataFrame(block.T, columns=floats, copy=False)
    ids = panel.ids[s_all]
    others = {"series_id": pd.array(ids, dtype=object) if ids.dtype == object else ids,
              "year": _whole(np.concatenate([t_out[s_idx, h_idx], no_year])),
              "method": per_series_text(np.where(ok, method, INSUFFICIENT)),
              "method_reason": per_series_text(reason), "n_points": panel.n[s_all],
              "first_year": _whole(panel.t[s_all, 0]), "last_year": _whole(_last(panel.t, panel.n)[s_all]),
              "horizon": _whole(np.concatenate([h_idx + 1.0, no_year])),
              "scale": per_series_text(np.where(no_data, None, _SCALE_NAMES[kind]))}
    for col in columns:
        if col in others:
            frame.insert(columns.index(col), col, others[col])
    return frame  # the contract's column order: tests/test_projection.py::test_output_contract_columns_first
