"""The verdict of DESIGN §6: every target (series x target year) judged against its history and projection.

Pure functions (no file IO): ``assess`` turns history + projections + targets into the verdict; every
threshold lives in the ``verdict:`` block of projection.yaml. Moved here from ``projection.py`` unchanged,
so that the engine and the verdict can change apart.

Public API: ``assess``, ``normalise_targets``, ``probability_of``, ``status_label``, ``verdict_labels``;
``STATUSES``, ``STATUS_COLUMNS``, ``STATUS_EXTRA_COLUMNS``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

# The engine's internals the verdict needs: its input check and series-break rule, its padded panel, its
# working scale and its weighted trend fit.
from analysis.projection import (
    _IDENTITY,
    LEVEL_COLUMNS,
    LEVELS,
    _after_breaks,
    _last,
    _numeric,
    _pack,
    _sampling_variance,
    _Scale,
    _trend_fit,
    _working_scale,
    check_input,
    metadata,
)
from analysis.errors import AnalysisError

INSUFFICIENT = "insufficient_data"
STATUSES = ("achieved", "on_track", "needs_acceleration", "regressing", "insufficient_data")
STATUS_COLUMNS = ["series_id", "target_year", "target_value", "projected", "probability", "status"]
STATUS_EXTRA_COLUMNS = ["comparator", "basis", "met", "observed", "lo80", "hi80", "latest_year", "latest_value",
                        "observed_change_per_year", "needed_change_per_year", "progress_ratio",
                        "trend_away_confidence", "n_points", "method", "label", "reason"]


def status_label(status: str, lang: str = "vi") -> str:
    """Report label of a status code ('on_track' -> 'Đúng tiến độ'; 'not_met' -> 'Không đạt')."""
    meta = metadata()
    return (meta["not_met"] if status == "not_met" else meta["statuses"][status])[lang]


def _cdf(q: np.ndarray, levels: np.ndarray, x: np.ndarray, strict: bool) -> np.ndarray:
    """P(Y < x) (strict) or P(Y <= x) from quantiles q (R, K) at ``levels``.

    Piecewise linear in normal scores between the quantiles, extended linearly beyond the outer ones;
    tied quantiles are a point mass (a series projected to stay on 100%).
    """
    score = special.ndtri(levels)
    below = (q < x[:, None]) if strict else (q <= x[:, None])
    count = below.sum(1)
    i0 = np.clip(count - 1, 0, q.shape[1] - 2)
    rows = np.arange(len(q))
    q0, q1 = q[rows, i0], q[rows, i0 + 1]
    with np.errstate(all="ignore"):
        frac = np.where(q1 > q0, (x - q0) / (q1 - q0), np.where(count == 0, -np.inf, np.inf))
        return special.ndtr(score[i0] + frac * (score[i0 + 1] - score[i0]))


def probability_of(projected: pd.DataFrame, target, comparator) -> np.ndarray:
    """Probability that the projected value meets ``comparator target`` (>=, >, <=, <), row by row.

    Reads the quantile columns present (at least the contract's five), so it also works on a projection
    read back from the command's CSV.
    """
    cols = [(lv, c) for lv, c in zip(LEVELS, LEVEL_COLUMNS) if c in projected.columns]
    q = np.sort(projected[[c for _, c in cols]].to_numpy(float), axis=1)
    levels = np.array([lv for lv, _ in cols])
    target = np.asarray(target, float)
    comparator = np.asarray(comparator, dtype=object)
    strict, weak = _cdf(q, levels, target, True), _cdf(q, levels, target, False)
    prob = np.select([comparator == ">=", comparator == ">", comparator == "<=", comparator == "<"],
                     [1 - strict, 1 - weak, weak, strict], np.nan)
    return np.where(np.isnan(q).any(1) | np.isnan(target), np.nan, prob)


def _meets(value, target, comparator) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.select([comparator == ">=", comparator == ">", comparator == "<=", comparator == "<"],
                         [value >= target, value > target, value <= target, value < target], False)


def normalise_targets(targets: pd.DataFrame) -> pd.DataFrame:
    """Targets with an explicit ``comparator`` (from the column, else from ``direction``).

    ``direction``: increase -> '>=' (reach at least), decrease -> '<=' (come down to at most). A plan's
    strict "below 0.05%" needs comparator '<', which wins over direction. A blank target_value means no
    target was set for that year.
    """
    meta = metadata()["verdict"]
    have_rule = bool({"direction", "comparator"} & set(targets.columns))
    need = [c for c in ("series_id", "target_year", "target_value") if c not in targets.columns]
    if need or not have_rule:
        cols = ", ".join(need + ([] if have_rule else ["direction"]))
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


def _trend_stats(rows: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """Per series (rows from the last break on): points, latest year and value, bounds, slope and its se."""
    p = _pack(rows, ids)
    eps = _working_scale(p).eps
    identity = _Scale(np.full(len(ids), _IDENTITY), eps, p.lower, p.upper)
    _, slope, _, sxx, _, s2 = _trend_fit(p.y, p.t, p.n, _sampling_variance(p, identity))
    enough = p.n >= 3
    with np.errstate(all="ignore"):
        se = np.sqrt(s2 / sxx)
    return pd.DataFrame({"series_id": ids, "n_points": p.n, "latest_year": np.where(p.n > 0, _last(p.t, p.n), np.nan),
                         "latest_value": np.where(p.n > 0, _last(p.y, p.n), np.nan), "lower": p.lower,
                         "upper": p.upper, "eps": eps, "slope": np.where(enough, slope, np.nan),
                         "slope_se": np.where(enough, se, np.nan), "slope_df": np.where(enough, p.n - 2.0, np.nan)})


def assess(history: pd.DataFrame, projections: pd.DataFrame, targets: pd.DataFrame, *,
           as_of: int | None = None, lang: str = "vi",
           checked: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The verdict for every target (series x target year): DESIGN §6 STATUS plus the evidence behind it.

    ``history``: the input of ``project``; ``projections``: its output (or the command's CSV);
    ``targets``: series_id, target_year, target_value and ``comparator`` (>=, >, <=, <) or ``direction``
    (increase/decrease, see ``normalise_targets``); a blank target_value means no target was set.
    ``as_of``: the reporting year; a target year up to it without an observation is not projected.

    Rules (thresholds in projection.yaml, ``verdict``):

    * the series has an observation in the target year -> basis 'observed', ``met`` from that value:
      achieved, or (missed) regressing / needs_acceleration from the trend;
    * the target year is after the latest observation (and after ``as_of``) -> basis 'projected':
      on_track when the probability of meeting the target is at least ``on_track_probability``, else
      regressing when the observed trend points away from the target with ``regressing_confidence``,
      else needs_acceleration;
    * insufficient_data: no target set, fewer than ``min_points`` points after the last break, the
      target year passed without an observation, or the series could not be projected.

    A target equal to a bound of the scale ("maintain 100%") is met within half a unit of the bound: half
    a reporting unit (``bound_tolerance_fraction``), or with counts half a count (the continuity
    correction), since a continuous projection cannot land exactly on the bound. Extra columns: see STATUS_EXTRA_COLUMNS; ``label`` is the report
    label in ``lang`` ('Không đạt' for a target year reached and missed). ``checked``: what
    ``check_input(history)`` returned, when the caller has it already (see ``project``).
    """
    meta = metadata()["verdict"]
    tg = normalise_targets(targets)
    checked, _ = check_input(history) if checked is None else checked
    ids = np.asarray(pd.unique(pd.concat([checked["series_id"], tg["series_id"]]).astype(object)), dtype=object)
    out = tg.merge(_trend_stats(_after_breaks(checked)[0], ids), on="series_id", how="left")
    observed = checked.loc[checked["value"].notna(), ["series_id", "year", "value"]]  # before a break too
    out = out.merge(observed.rename(columns={"year": "target_year", "value": "observed"}),
                    on=["series_id", "target_year"], how="left")
    keep = [c for c in (*LEVEL_COLUMNS, "method", "method_reason") if c in projections.columns]
    proj = projections[["series_id", "year", *keep]]
    proj = proj[proj["year"].isin(tg["target_year"].unique())]  # the rows the merge can match (not every year's)
    proj = proj.astype({"year": "int64", **{c: object for c in keep if isinstance(proj[c].dtype, pd.CategoricalDtype)}})
    out = out.merge(proj.rename(columns={"year": "target_year"}), on=["series_id", "target_year"], how="left")

    target, comp = out["target_value"].to_numpy(float), out["comparator"].to_numpy(object)
    lower, upper = out["lower"].to_numpy(float), out["upper"].to_numpy(float)
    tol = np.fmax(out["eps"].to_numpy(float), meta["bound_tolerance_fraction"]) * (upper - lower)
    at_upper = np.isin(comp, [">=", ">"]) & np.isclose(target, upper)
    at_lower = np.isin(comp, ["<=", "<"]) & np.isclose(target, lower)
    effective = np.where(at_upper, target - tol, np.where(at_lower, target + tol, target))
    effective_comp = np.where(at_upper, ">=", np.where(at_lower, "<=", comp))

    observed = out["observed"].to_numpy(float)
    has_obs = ~np.isnan(observed)
    met = _meets(observed, effective, effective_comp)
    prob = probability_of(out, effective, effective_comp)
    slope, se, dfs = (out[c].to_numpy(float) for c in ("slope", "slope_se", "slope_df"))
    toward = np.where(np.isin(comp, [">=", ">"]), 1.0, -1.0) * slope  # yearly change towards the target
    with np.errstate(all="ignore"):
        away = np.where(se > 0, special.stdtr(np.nan_to_num(dfs, nan=1.0), -toward / se), (toward < 0) * 1.0)
        away = np.where(np.isnan(slope), np.nan, away)
        latest_year = out["latest_year"].to_numpy(float)
        years_left = out["target_year"].to_numpy(float) - latest_year
        needed = np.where(years_left > 0, (target - out["latest_value"].to_numpy(float)) / years_left, np.nan)
        ratio = np.where(needed != 0, slope / needed, np.nan)
    reached = out["target_year"].to_numpy(float) <= (latest_year if as_of is None else np.fmax(latest_year, as_of))

    missed = np.where(away >= meta["regressing_confidence"], "regressing", "needs_acceleration")
    n_points = out["n_points"].fillna(0).to_numpy(int)
    no_target, short = np.isnan(target), n_points < meta["min_points"]
    projectable = ~np.isnan(prob) & ~short
    status = np.select([no_target, has_obs & met, has_obs, reached | ~projectable,
                        prob >= meta["on_track_probability"]],
                       [INSUFFICIENT, "achieved", missed, INSUFFICIENT, "on_track"], missed)
    why_not = out["method_reason"].astype(object).fillna("not projected").astype(str).to_numpy(object) \
        if "method_reason" in out.columns else np.full(len(out), "not projected", dtype=object)
    reason = np.select(
        [no_target, has_obs, np.isnan(latest_year), reached, short, ~projectable],
        ["no target set for this year", "observed in the target year", "no data",
         "target year passed without an observation",
         n_points.astype(str).astype(object) + f" point(s) since the last break; a verdict needs {meta['min_points']}",
         why_not], "projected: probability of meeting the target")
    basis = np.where(no_target | (~has_obs & (status == INSUFFICIENT)), "",
                     np.where(has_obs, "observed", "projected"))
    shown = basis == "projected"
    result = pd.DataFrame({
        "series_id": out["series_id"], "target_year": out["target_year"], "target_value": target,
        "projected": np.where(shown, out.get("value", np.nan), np.nan),
        "probability": np.where(shown, prob, np.nan), "status": status,
        "comparator": comp, "basis": basis,
        "met": pd.array(np.where(basis == "observed", met, None), dtype="boolean"),
        "observed": observed,
        "lo80": np.where(shown, out.get("lo80", np.nan), np.nan),
        "hi80": np.where(shown, out.get("hi80", np.nan), np.nan),
        "latest_year": pd.array(latest_year).astype("Float64").astype("Int64"),
        "latest_value": out["latest_value"].to_numpy(float),
        "observed_change_per_year": slope, "needed_change_per_year": needed, "progress_ratio": ratio,
        "trend_away_confidence": away, "n_points": n_points,
        "method": np.where(shown, out["method"] if "method" in out.columns else None, None),
        "reason": reason,
    })
    result["label"] = verdict_labels(result, lang)
    return result.reindex(columns=STATUS_COLUMNS + STATUS_EXTRA_COLUMNS)


def verdict_labels(verdict: pd.DataFrame, lang: str = "vi") -> np.ndarray:
    """The report label of each verdict row: 'not met' for a target year observed and missed, else the
    status's label (so the labels of another language need no second assessment)."""
    missed = (verdict["basis"] == "observed").to_numpy() & ~verdict["met"].to_numpy(dtype=bool, na_value=True)
    labels = {s: status_label(s, lang) for s in STATUSES}
    return np.where(missed, status_label("not_met", lang), verdict["status"].map(labels).to_numpy(object))
