"""The verdict of DESIGN §6: every target (series x target year) judged against its history and projection.

Statuses, the first that applies: ``no_target``; ``achieved`` / ``not_met`` (the target year is observed);
``insufficient_data``; ``on_track`` (met in the latest year and kept, or projected to be met); ``regressing``
(moving away); ``needs_acceleration``, graded by the pace since the baseline against the pace required (UN SDG
progress chart), both on the projection's working scale so that a sentence comparing them agrees with the
status. Thresholds and their anchors: projection.yaml. Public API: ``assess``, ``normalise_targets``,
``probability_of``, ``status_label``, ``verdict_labels``; ``STATUSES``, ``GRADES``, ``PACES``, ``STATUS_*COLUMNS``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import special

# the engine's internals the verdict shares: input check, break rule, panel, working scale and trend fit
from analysis.projection import (
    INSUFFICIENT, LEVEL_COLUMNS, LEVELS, _last, _numeric, _pack, _prepare, _sampling_variance, _Scale,
    _shift_breaks, _trend_fit, _whole, _working_scale, check_input, metadata,
)
from analysis.errors import AnalysisError

STATUSES = ("achieved", "not_met", "on_track", "needs_acceleration", "regressing", "no_target", "insufficient_data")
GRADES = ("on_pace", "moderate", "strong")  # of needs_acceleration
PACES = ("kept", "ahead", "behind", "away")  # what the pace since the baseline says (see assess)
COMPARATORS = (">=", ">", "<=", "<")
BASES = ("", "observed", "latest", "projected")
_KEPT, _AHEAD, _BEHIND, _AWAY = 1, 2, 3, 4  # codes of PACES in the pace column ('' is 0)

STATUS_COLUMNS = ["series_id", "target_year", "target_value", "projected", "probability", "status"]
STATUS_EXTRA_COLUMNS = [
    "grade", "comparator", "basis", "met", "observed", "lo80", "hi80", "latest_year", "latest_value",
    "baseline_year", "baseline_value", "pace", "progress_ratio", "observed_change_per_year",
    "needed_change_per_year", "change_per_year_since_baseline", "value_at_pace", "years_to_target_at_pace",
    "year_reached_at_pace", "aarr_observed", "aarr_required", "trend_away_confidence", "n_points",
    "n_points_since_baseline", "method", "label", "reason"]


def status_label(status: str, lang: str = "vi", grade: str | None = None) -> str:
    """Report label of a status, or of a grade of needs_acceleration ('on_track' -> 'Đúng tiến độ')."""
    entry = metadata()["statuses"][status]
    grades = entry.get("grades", {})
    return (grades[grade] if grade in grades else entry)[lang]


def verdict_labels(verdict: pd.DataFrame, lang: str = "vi") -> pd.Categorical:
    """Report label of each verdict row in ``lang``, read off its status and grade (no second assessment)."""
    status = pd.Categorical(verdict["status"], categories=pd.Index(STATUSES, dtype=object)).codes
    grade = pd.Categorical(verdict["grade"] if "grade" in verdict else np.full(len(verdict), None),
                           categories=pd.Index(("", *GRADES), dtype=object)).codes.clip(0)  # 0: none ('' or missing)
    # every status x grade (only needs_acceleration's label depends on the grade), read off by each row's codes
    table = [status_label(s, lang, g) for s in STATUSES for g in (None, *GRADES)]
    labels = pd.Index(table, dtype=object).unique()
    code = np.where(status >= 0, labels.get_indexer(table)[np.maximum(status, 0) * (len(GRADES) + 1) + grade], -1)
    return pd.Categorical.from_codes(code, categories=labels)


# --- probability of meeting a target, read off the projection's quantiles -----------------------------------
def _cdf(q: np.ndarray, levels: np.ndarray, x: np.ndarray, strict: bool) -> np.ndarray:
    """P(Y < x) (strict) or P(Y <= x) from quantiles q (R, K) at ``levels``: piecewise linear in normal scores,
    extended linearly beyond the outer ones; tied quantiles are a point mass (a series staying on 100%)."""
    score = special.ndtri(levels)
    count = ((q < x[:, None]) if strict else (q <= x[:, None])).sum(1)
    i0 = np.clip(count - 1, 0, q.shape[1] - 2)
    rows = np.arange(len(q))
    q0, q1 = q[rows, i0], q[rows, i0 + 1]
    with np.errstate(all="ignore"):
        frac = np.where(q1 > q0, (x - q0) / (q1 - q0), np.where(count == 0, -np.inf, np.inf))
        return special.ndtr(score[i0] + frac * (score[i0 + 1] - score[i0]))


def probability_of(projected: pd.DataFrame, target, comparator) -> np.ndarray:
    """Probability that the projected value meets ``comparator target`` (>=, >, <=, <), row by row; reads the
    quantile columns present (at least the contract's five), so a projection read back from CSV works too."""
    cols = [(lv, c) for lv, c in zip(LEVELS, LEVEL_COLUMNS) if c in projected.columns]
    q = np.sort(projected[[c for _, c in cols]].to_numpy(float), axis=1)
    levels = np.array([lv for lv, _ in cols])
    target, comparator = np.asarray(target, float), np.asarray(comparator, dtype=object)
    strict, weak = _cdf(q, levels, target, True), _cdf(q, levels, target, False)
    prob = np.select([comparator == c for c in COMPARATORS], [1 - strict, 1 - weak, weak, strict], np.nan)
    return np.where(np.isnan(q).any(1) | np.isnan(target), np.nan, prob)


def _meets(value, target, comparator) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.select([comparator == c for c in COMPARATORS],
                         [value >= target, value > target, value <= target, value < target], False)


# --- targets ------------------------------------------------------------------------------------------------
def normalise_targets(targets: pd.DataFrame) -> pd.DataFrame:
    """Targets with an explicit ``comparator``: the column's (a plan's strict '<' wins), else from ``direction``
    (increase -> '>=', decrease -> '<='). A blank target_value means no target was set for that year."""
    meta = metadata()["verdict"]
    need = [c for c in ("series_id", "target_year", "target_value") if c not in targets.columns]
    need += [] if {"direction", "comparator"} & set(targets.columns) else ["direction"]  # or comparator
    if need:
        cols = ", ".join(need)
        raise AnalysisError(f"Tệp chỉ tiêu thiếu cột: {cols}", f"Targets file is missing column(s): {cols}")
    tg = targets.copy()
    where = ("series_id", "target_year")
    year = _numeric(tg, "target_year", where)
    if year.isna().any() or (year != np.round(year)).any():
        raise AnalysisError("target_year phải là năm (số nguyên).", "target_year must be a whole year.")
    tg["target_year"] = year.astype("int64")
    tg["target_value"] = _numeric(tg, "target_value", where)
    comparator = pd.Series(pd.NA, index=tg.index, dtype="string")
    if "direction" in tg.columns:
        direction = tg["direction"].astype("string").str.strip().str.lower()
        bad = direction.notna() & ~direction.isin(list(meta["direction_comparator"]))
        if bad.any():
            shown = ", ".join(direction[bad].unique()[:5])
            raise AnalysisError(f"direction phải là increase hoặc decrease: {shown}",
                                f"direction must be increase or decrease: {shown}")
        comparator = direction.map(meta["direction_comparator"]).astype("string")
    if "comparator" in tg.columns:
        given = tg["comparator"].astype("string").str.strip().replace({"≥": ">=", "≤": "<=", "": pd.NA})
        bad = given.notna() & ~given.isin(meta["comparators"])
        if bad.any():
            shown = ", ".join(given[bad].unique()[:5])
            raise AnalysisError(f"comparator không hợp lệ: {shown} (dùng >=, >, <=, <)",
                                f"Invalid comparator: {shown} (use >=, >, <=, <)")
        comparator = given.fillna(comparator)
    if comparator.isna().any():
        raise AnalysisError("Mỗi chỉ tiêu cần direction hoặc comparator.", "Every target needs a direction or comparator.")
    tg["comparator"] = comparator.astype(object)
    dup = tg.duplicated(["series_id", "target_year"])
    if dup.any():
        shown = "; ".join(f"{s} {y}" for s, y in tg.loc[dup, ["series_id", "target_year"]].head(5).itertuples(index=False))
        raise AnalysisError(f"Chỉ tiêu bị trùng: {shown}", f"Duplicate target: {shown}")
    return tg[["series_id", "target_year", "target_value", "comparator"]]


# --- the series since the baseline, on the working scale ----------------------------------------------------
_NOTES = ("",  # the baseline's note, by code (0: none)
          "fewer than 2 observations since the baseline year: the pace is measured from the series' first year",
          "series break after the baseline year: the pace is measured from the first year on the new territory",
          "no observation in the baseline year: the pace is measured from the first observation after it")

# the reason of each verdict, in the order of the rules (plain English; the numbers are in the columns)
_REASONS = (
    "the plan sets no target for this year", "observed in the target year: met", "observed in the target year: missed",
    "no data", "target year passed without an observation",
    "fewer than {min_points} points since the last break: no trend to judge",
    "not projected (the projection's method_reason says why)",
    "met in the latest year and kept: the series does not move away from it",
    "met in the latest year; it moves away from the target, but the projection still meets it with the "
    "probability required",
    "the projection meets the target with the probability required, and the pace since the baseline reaches "
    "it in time",
    "met in the latest year, but moving away from it: the trend since the baseline points away with the "
    "confidence required, and the projection no longer meets it with the probability required",
    "moving away from the target: the trend since the baseline points away with the confidence required",
    "the pace since the baseline would reach the target in time, but the projection meets it with less than "
    "the probability required (it expects the pace to slow or the values to vary): the pace must at least be kept",
    "the pace since the baseline is below the pace the target requires, but at least the share required for "
    "'within reach'",
    "the baseline value met the target and the latest no longer does",
    "the pace since the baseline is less than the share of the required pace that is 'within reach', or moves "
    "away from the target",
    "the projection does not meet the target with the probability required; the pace since the baseline cannot "
    "be measured",
)


def _categorical(codes: np.ndarray, categories) -> pd.Categorical:
    """Text column from integer codes (a country's millions of verdicts repeat a few texts)."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=pd.Index(categories, dtype=object))


def _series_stats(rows: pd.DataFrame, ids: np.ndarray, breaks: pd.Series, baseline_year: int | None,
                  shift: bool = False) -> pd.DataFrame:
    """Per series (from the last break on; with ``shift``, the years before it moved by the level shift, as the
    projection joins them): latest and baseline values, working scale, trend since the baseline."""
    p = _pack(rows, ids)
    if shift and len(breaks):
        p = _shift_breaks(p, breaks)[0]
    scale = _working_scale(p)  # the projection's scale, continuity correction included
    z = scale.forward(p.y)
    n, S = p.n, len(ids)
    b0 = p.t[:, 0] if baseline_year is None else np.full(S, float(baseline_year))
    since = p.t >= b0[:, None]  # False beyond a series' observations (NaN)
    from_year = since.sum(1) >= 2
    k0 = np.where(from_year, np.argmax(since, 1), 0)
    rows_ = np.arange(S)
    b = p.t[rows_, k0]  # NaN for a series without data, as every value of its panel row
    brk = pd.Series(ids).map(breaks).to_numpy(float) if len(breaks) else np.full(S, np.nan)
    note = np.select([(n > 0) & ~from_year & (baseline_year is not None),
                      from_year & (b > b0) & (brk > b0), from_year & (b > b0)], [1, 2, 3], 0)  # _NOTES
    after = replace(p, y=z, num=_sampling_variance(p, scale)).take(rows_, skip=k0)  # z, t, v from the baseline on
    _, slope, _, sxx, _, s2 = _trend_fit(after.y, after.t, after.n, np.nan_to_num(after.num))
    enough = after.n >= 3
    with np.errstate(all="ignore"):
        se = np.sqrt(s2 / sxx)
    return pd.DataFrame({
        "series_id": ids, "n_points": n, "n_points_since_baseline": after.n,
        "latest_year": _last(p.t, n), "latest_value": _last(p.y, n), "z_latest": _last(z, n),
        "baseline_year": b, "baseline_value": p.y[rows_, k0], "z_baseline": z[rows_, k0], "baseline_note": note,
        "lower": p.lower, "upper": p.upper, "kind": scale.kind, "eps": scale.eps,
        "slope": np.where(enough, slope, np.nan), "slope_se": np.where(enough, se, np.nan),
        "slope_df": np.where(enough, after.n - 2.0, np.nan)})


# --- assess -------------------------------------------------------------------------------------------------
def assess(history: pd.DataFrame, projections: pd.DataFrame, targets: pd.DataFrame, *,
           as_of: int | None = None, baseline_year: int | None = None, lang: str = "vi",
           checked: tuple[pd.DataFrame, pd.DataFrame] | None = None, breaks: str = "drop") -> pd.DataFrame:
    """The verdict for every target (series x target year): DESIGN §6 STATUS plus the evidence behind it.

    ``history`` and ``projections``: the input and output of ``projection.project`` (or the command's CSV);
    ``targets``: see ``normalise_targets``; ``as_of``: the reporting year; ``baseline_year``: where pace is
    measured from (default: each series' first year after its last break); ``checked``: ``check_input(history)``;
    ``breaks``: as the projection's ('shift': a series break is bridged by a level shift, the years before it count).
    A target on a bound ("maintain 100%") is met within half a unit of it: a projection cannot land on it.
    Columns: STATUS_COLUMNS + STATUS_EXTRA_COLUMNS (``basis``: what the verdict rests on; ``pace``: kept, ahead,
    behind or away; AARR: UNICEF's average annual rate of reduction, in %, for targets to come down).
    """
    meta = metadata()["verdict"]
    tg = normalise_targets(targets)
    checked, _ = check_input(history) if checked is None else checked
    ids = np.asarray(pd.unique(pd.concat([checked["series_id"], tg["series_id"]]).astype(object)), dtype=object)
    usable, _, last_breaks, _ = _prepare(history, (checked, None), breaks)
    out = tg.merge(_series_stats(usable, ids, last_breaks, baseline_year, breaks == "shift"), on="series_id", how="left")
    observed = checked.loc[checked["value"].notna(), ["series_id", "year", "value"]]  # before a break too
    out = out.merge(observed.rename(columns={"year": "target_year", "value": "observed"}),
                    on=["series_id", "target_year"], how="left")
    keep = [c for c in (*LEVEL_COLUMNS, "method") if c in projections.columns]
    proj = projections.loc[projections["year"].isin(tg["target_year"].unique()), ["series_id", "year", *keep]]
    proj = proj.astype({"year": "int64", **{c: object for c in keep if isinstance(proj[c].dtype, pd.CategoricalDtype)}})
    out = out.merge(proj.rename(columns={"year": "target_year"}), on=["series_id", "target_year"], how="left")
    target, lower, upper, eps, L, yL, zL, b, yb, zb, slope, se, dfs, obs = (out[c].to_numpy(float) for c in (
        "target_value", "lower", "upper", "eps", "latest_year", "latest_value", "z_latest", "baseline_year",
        "baseline_value", "z_baseline", "slope", "slope_se", "slope_df", "observed"))
    comp, T = out["comparator"].to_numpy(object), out["target_year"].to_numpy(float)
    up = np.isin(comp, [">=", ">"])
    d = np.where(up, 1.0, -1.0)  # +1: the target is reached from below
    # the target as judged: on a bound, within half a unit of it
    tol = np.fmax(eps, meta["bound_tolerance_fraction"]) * (upper - lower)
    at_upper = up & np.isclose(target, upper)
    at_lower = ~up & np.isclose(target, lower)
    judged = np.where(at_upper, target - tol, np.where(at_lower, target + tol, target))
    judged_comp = np.where(at_upper, ">=", np.where(at_lower, "<=", comp))
    has_obs = ~np.isnan(obs)
    met = _meets(obs, judged, judged_comp)
    prob = probability_of(out, judged, judged_comp)
    met_now = _meets(yL, judged, judged_comp)
    # the trend since the baseline (working scale): does it move away from the target, and how surely?
    toward = d * slope
    with np.errstate(all="ignore"):
        away_conf = np.where(se > 0, special.stdtr(np.nan_to_num(dfs, nan=1.0), -toward / se), (toward < 0) * 1.0)
    away_conf = np.where(np.isnan(slope), np.nan, away_conf)
    # pace on the working scale, from the same three points: baseline, latest, target
    scale = _Scale(kind=out["kind"].fillna(0).to_numpy(int), eps=np.nan_to_num(eps), lower=lower, upper=upper)
    zx = scale.forward(judged[:, None])[:, 0]
    ahead_years = T - L
    future = ahead_years > 0
    with np.errstate(all="ignore"):
        s_obs = np.where(L > b, (zL - zb) / (L - b), np.nan)
        s_req = (zx - zb) / (T - b)
        ratio = np.where(d * s_req > 0, s_obs / s_req, np.nan)
        z_at_target = zL + s_obs * ahead_years  # where the observed pace leads by the target year
        value_at_target = np.where(s_obs == 0, yL, scale.inverse(z_at_target[:, None])[:, 0])  # flat: exactly
        observed_change = np.where(future, (value_at_target - yL) / ahead_years, np.nan)
        needed_change = np.where(future & ~met_now, (judged - yL) / ahead_years, np.nan)
        since_change = np.where(L > b, np.where(s_obs == 0, 0.0, (yL - yb) / (L - b)), np.nan)  # same sign
        years_at_pace = np.where(met_now, 0.0, np.where(d * s_obs > 0, (zx - zL) / s_obs, np.nan))
        decrease = ~up & (yL > 0) & (judged > 0) & (value_at_target > 0) & future
        aarr_observed = np.where(decrease, (1 - (value_at_target / yL) ** (1 / ahead_years)) * 100, np.nan)
        aarr_since = np.where(decrease & (yb > 0) & (L > b), (1 - (yL / yb) ** (1 / (L - b))) * 100, np.nan)
        aarr_required = np.where(decrease & ~met_now, (1 - (judged / yL) ** (1 / ahead_years)) * 100, np.nan)
        aarr_observed, aarr_since, aarr_required = (np.where(np.isfinite(a), a, np.nan)  # from (next to) zero: none
                                                    for a in (aarr_observed, aarr_since, aarr_required))
    year_at_pace = np.where(years_at_pace <= 100, L + np.ceil(years_at_pace - 1e-9), np.nan)  # a century: never
    defined = future & ~np.isnan(s_obs) & ~np.isnan(zx)
    # the observed pace reaches the target in time: read on the value the sentence compares (~ progress_ratio >= 1)
    reaches = _meets(value_at_target, judged, judged_comp)
    pace_code = np.select([~defined, met_now, reaches, d * s_obs >= 0], [0, _KEPT, _AHEAD, _BEHIND], _AWAY)
    moving_away = (away_conf >= meta["regressing_confidence"]) & (d * s_obs < 0)

    # the rules, in order (codes into STATUSES, GRADES, ...: text columns are categoricals)
    ACHIEVED, NOT_MET, ON_TRACK, ACCELERATE, REGRESSING, NO_TARGET, NO_DATA = range(len(STATUSES))
    n_points = out["n_points"].fillna(0).to_numpy(int)
    no_target = np.isnan(target)
    reached = T <= (L if as_of is None else np.fmax(L, as_of))
    short = n_points < meta["min_points"]
    projectable = ~np.isnan(prob) & ~short
    kept = met_now & ~moving_away
    likely = (prob >= meta["on_track_probability"]) & (pace_code <= _AHEAD)  # pace '', kept or ahead
    status = np.select(
        [no_target, has_obs & met, has_obs, reached | ~projectable, kept, likely, moving_away],
        [NO_TARGET, ACHIEVED, NOT_MET, NO_DATA, ON_TRACK, ON_TRACK, REGRESSING], ACCELERATE).astype(np.int8)
    lost = (d * s_req <= 0) & ~met_now  # the baseline value met the target, the latest no longer does
    grade = np.where(status == ACCELERATE, np.select(
        [pace_code == _AHEAD, ratio >= meta["moderate_ratio"],
         lost | (pace_code == _AWAY) | (ratio < meta["moderate_ratio"])], [1, 2, 3], 0), 0).astype(np.int8)
    judged_on = np.isin(status, [ON_TRACK, ACCELERATE, REGRESSING])
    basis = np.select([np.isin(status, [ACHIEVED, NOT_MET]), (status == ON_TRACK) & kept, judged_on], [1, 2, 3], 0)
    paced = judged_on & defined
    # reason: one of a few texts (+ the baseline's note); the same categories in every call, so years concatenate
    which = np.select(  # in the order of the rules
        [no_target, has_obs & met, has_obs, np.isnan(L), reached, short, ~projectable, kept, likely & met_now,
         likely, moving_away & met_now, moving_away, grade == 1, grade == 2, lost, grade == 3],
        list(range(16)), 16)
    code = which * len(_NOTES) + np.where(paced, out["baseline_note"].fillna(0).to_numpy(int), 0)
    reason = _categorical(code, [r.format(min_points=meta["min_points"]) + (f"; {n}" if n else "")
                                 for r in _REASONS for n in _NOTES])
    toward_open = np.isin(pace_code, [_AHEAD, _BEHIND])  # towards a target not met yet: the pace is compared
    known = [*metadata()["methods"], INSUFFICIENT]  # the same categories in every call, then a file's own
    other = sorted({str(m) for m in pd.unique(out["method"].dropna())} - set(known)) if "method" in out.columns else []
    method = out["method"].to_numpy(object) if "method" in out.columns else None

    def when(mask, values):
        return np.where(mask, values, np.nan)
    shown = {c: when(judged_on, out[c].to_numpy(float) if c in out else np.nan) for c in ("value", "lo80", "hi80")}
    result = pd.DataFrame({
        "series_id": out["series_id"], "target_year": out["target_year"], "target_value": target,
        "projected": shown["value"], "probability": when(judged_on, prob), "status": _categorical(status, STATUSES),
        "grade": _categorical(grade, ("", *GRADES)), "basis": _categorical(basis, BASES),
        "comparator": pd.Categorical(comp, categories=pd.Index(COMPARATORS, dtype=object)),
        "met": pd.array(np.where(basis == 1, met, np.where(basis == 2, True, None)), dtype="boolean"),
        "observed": obs, "lo80": shown["lo80"], "hi80": shown["hi80"], "latest_year": _whole(L), "latest_value": yL,
        "baseline_year": _whole(b), "baseline_value": yb, "progress_ratio": when(paced, ratio),
        "pace": _categorical(np.where(paced, pace_code, 0), ("", *PACES)),
        # towards a target not met yet: comparable with the change needed; else what happened since the baseline
        "observed_change_per_year": when(paced, np.where(toward_open, observed_change, since_change)),
        "needed_change_per_year": when(paced, needed_change),
        "change_per_year_since_baseline": when(judged_on, since_change),
        "value_at_pace": when(paced, value_at_target), "years_to_target_at_pace": when(paced, years_at_pace),
        "year_reached_at_pace": _whole(when(paced, year_at_pace)), "aarr_required": when(paced, aarr_required),
        "aarr_observed": when(paced, np.where(toward_open, aarr_observed, aarr_since)),
        "trend_away_confidence": away_conf, "n_points": n_points, "reason": reason,
        "n_points_since_baseline": out["n_points_since_baseline"].fillna(0).to_numpy(int),
        "method": pd.Categorical(np.where(judged_on, method, None), categories=pd.Index([*known, *other], dtype=object)),
    })
    result["label"] = verdict_labels(result, lang)
    return result.reindex(columns=STATUS_COLUMNS + STATUS_EXTRA_COLUMNS)
