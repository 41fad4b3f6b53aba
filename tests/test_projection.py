"""Projection engine: known answers worked out by hand and properties (the verdict: test_verdicts.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import expit

from analysis import projection
from analysis.errors import AnalysisError
from analysis.projection import check_input, project
from conftest import series



def row(out, year, sid="s"):
    return out[(out["series_id"] == sid) & (out["year"] == year)].iloc[0]


def t(level, df):
    return stats.t.ppf(level, df)


# ---------------------------------------------------------------------------------------------------
# known answers (calibrate=False: the model intervals, whose arithmetic can be done by hand)


def test_last_value_by_hand():
    # 10, 12, 11, 13: changes +2, -1, +2 -> sigma^2 = (4 + 1 + 4) / 3 = 3, df = 3 changes
    out = project(series([10, 12, 11, 13]), until=2025, method="last_value", calibrate=False)
    r1, r2 = row(out, 2024), row(out, 2025)
    assert r1["value"] == pytest.approx(13) and r2["value"] == pytest.approx(13)
    assert r1["lo80"] == pytest.approx(13 - t(0.9, 3) * np.sqrt(3))       # h = 1: variance 3
    assert r2["hi95"] == pytest.approx(13 + t(0.975, 3) * np.sqrt(6))     # h = 2: variance 6
    assert r1["method"] == "last_value" and r1["n_points"] == 4


def test_last_value_counts_a_gap_as_several_steps():
    # 10 (2020), 14 (2022), 15 (2023): a change of 4 over 2 years is two steps of variance 16/2 = 8
    # each; with the +1 of 2023: sigma^2 = (8 + 1) / 2 = 4.5, df = 2
    out = project(series([10, 14, 15], years=[2020, 2022, 2023]), until=2024, method="last_value", calibrate=False)
    assert row(out, 2024)["lo80"] == pytest.approx(15 - t(0.9, 2) * np.sqrt(4.5))


def test_linear_by_hand():
    # y = 1, 3, 2, 4 at t = 0..3: tbar 1.5, ybar 2.5, Sxx 5, Sxy 4 -> slope 0.8; fitted 1.3 2.1 2.9 3.7,
    # residuals -.3 .9 -.9 .3, RSS 1.8, s^2 = 0.9 (2 df). t = 4: 2.5 + 0.8 * 2.5 = 4.5,
    # var = 0.9 (1 + 1/4 + 2.5^2 / 5) = 2.25 -> sd 1.5
    out = project(series([1, 3, 2, 4]), until=2024, method="linear", calibrate=False)
    r = row(out, 2024)
    assert r["value"] == pytest.approx(4.5)
    assert r["lo95"] == pytest.approx(4.5 - t(0.975, 2) * 1.5)
    assert r["hi80"] == pytest.approx(4.5 + t(0.9, 2) * 1.5)


def test_logit_linear_by_hand():
    # values 100 expit(z) with z = -1, 0.2, 0.8, 2 at t = 0..3 (none on a bound: no correction)
    # line on z: zbar 0.5, Sxy 4.8, slope 0.96, residuals -.06 .18 -.18 .06, RSS .072, s^2 = .036;
    # t = 4: z = 0.5 + 0.96 * 2.5 = 2.9, var = .036 * 2.5 = .09 -> sd 0.3
    values = 100 * expit(np.array([-1, 0.2, 0.8, 2]))
    out = project(series(values, lower=0, upper=100), until=2024, method="logit_linear", calibrate=False)
    r = row(out, 2024)
    assert r["value"] == pytest.approx(100 * expit(2.9))
    assert r["lo95"] == pytest.approx(100 * expit(2.9 - t(0.975, 2) * 0.3))
    assert r["scale"] == "logit"


def test_damped_by_hand():
    # 10, 12, 13, 16: drift (16 - 10) / 3 = 2; phi = 0.8 -> 16 + 2 * 0.8 = 17.6, then 16 + 2 * 1.44 = 18.88
    # changes 2, 1, 3 around the drift: (0 + 1 + 1) / (3 - 1) = 1; var(h=1) = 1 * (1 + 0.8^2 / 3)
    out = project(series([10, 12, 13, 16]), until=2025, method="damped", calibrate=False)
    assert row(out, 2024)["value"] == pytest.approx(17.6)
    assert row(out, 2025)["value"] == pytest.approx(18.88)
    assert row(out, 2024)["hi80"] == pytest.approx(17.6 + t(0.9, 2) * np.sqrt(1 + 0.64 / 3))


def test_cagr_by_hand():
    # 8 -> 12.5 in two years: growth (12.5 / 8) ** 0.5 - 1 = 25% a year -> 15.625, 19.53125
    out = project(series([8, 10, 12.5]), until=2024, method="cagr", calibrate=False)
    assert row(out, 2023)["value"] == pytest.approx(15.625)
    assert row(out, 2024)["value"] == pytest.approx(19.53125)


def test_cagr_is_undefined_at_zero_and_says_so():
    out = project(series([0.0, 0.5, 0.4, 0.3], lower=0, upper=100), until=2024, method="cagr")
    r = row(out, 2024)
    assert r["value"] == pytest.approx(0.3)
    assert "CAGR undefined" in r["method_reason"]


def test_auto_on_a_short_series_uses_the_fallback_weight():
    # 1, 2, 4: too short for a backtest (and no other series): the YAML's fallback trend weight, 0.5, of the
    # damped trend beside the last value: last 4; damped: drift 1.5 -> 4 + 0.8 * 1.5 = 5.2 -> 4.6
    for calibrate in (False, True):  # the median does not move with calibration
        out = project(series([1, 2, 4]), until=2023, calibrate=calibrate)
        r = row(out, 2023)
        assert r["value"] == pytest.approx((4 + 5.2) / 2)
        assert r["w_last_value"] == pytest.approx(0.5) and r["w_damped"] == pytest.approx(0.5)
        assert np.isnan(r["w_logit_linear"])  # no longer a component of auto (issue 17)
        assert "too short for a backtest" in r["method_reason"] and "damped trend 50%" in r["method_reason"]


def test_auto_weights_by_hand():
    # 0, 1, 2, 3, 4 (2020-2024), origins of 3 and 4 points. Train 0, 1, 2: last value 2, damped 2 + 0.8 = 2.8
    # and 2 + 1.44 = 3.44 against 3 and 4; train 0..3: 3 and 3.8 against 4. Squared errors: last value
    # 1 + 4 + 1 = 6, damped 0.04 + 0.3136 + 0.04 = 0.3936: Bates-Granger weight of the trend 6 / 6.3936,
    # 3 errors. The trend undershoots every outcome, so the run's default (the trend weight of [0, .25, .5,
    # .75, 1] with the smallest backtest MAE) is 1: w = (3 * 6 / 6.3936 + 5 * 1) / (3 + 5) = 0.976914...
    out = project(series([0.0, 1, 2, 3, 4]), until=2025)
    w = (3 * 6 / 6.3936 + 5) / 8
    r = row(out, 2025)
    assert r["w_damped"] == pytest.approx(w) and r["w_last_value"] == pytest.approx(1 - w)
    assert r["value"] == pytest.approx(4 + w * 0.8)
    assert "errors: 3" in r["method_reason"] and "damped trend 100%" in r["method_reason"]


def test_the_run_default_leans_to_the_last_value_when_trends_do_not_persist():
    # zig-zag series: every trend seen at an origin reverses, so the backtest of the run prefers the last value
    zigzag = pd.concat([series([50, 54, 50, 54, 50, 54, 50, 54.0], sid=f"z{i}") for i in range(3)])
    r = row(project(zigzag, until=2030), 2030, "z0")
    assert "damped trend 0%" in r["method_reason"] and r["w_damped"] < 0.5
    trend = pd.concat([series(np.arange(8) * 2.0 + 10 + i, sid=f"t{i}") for i in range(3)])
    assert "damped trend 100%" in row(project(trend, until=2030), 2030, "t0")["method_reason"]


def test_auto_weights_follow_the_backtest():
    # a clean straight line: the backtest finds the trend far better than the last value
    out = project(series(np.arange(12) * 2.0 + 10), until=2033)
    r = row(out, 2032)
    assert r["w_damped"] > 0.6 > r["w_last_value"]
    assert r["w_damped"] + r["w_last_value"] == pytest.approx(1)
    assert "rolling-origin backtest" in r["method_reason"]


def test_a_turn_in_the_last_two_years_stops_the_trend():
    # 10, 12, 14, 16, 15, 14: average change +0.8 a year, the last two changes -1 and -1 go against it:
    # the damped trend carries the last value forward (its interval stays the trend model's)
    out = project(series([10, 12, 14, 16, 15, 14.0]), until=2027, method="damped", calibrate=False)
    assert np.allclose(out["value"], 14.0) and (out["hi80"] > 14.0).all()
    # one reversal is not a turn: 10, 12, 14, 16, 18, 17: drift 7 / 5 = 1.4 -> 17 + 0.8 * 1.4 = 18.12
    out = project(series([10, 12, 14, 16, 18, 17.0]), until=2026, method="damped", calibrate=False)
    assert row(out, 2026)["value"] == pytest.approx(18.12)


def test_counts_weight_the_years():
    # 90% from 3,000 children a year, except one year of 3 children at 33%: with counts that year
    # hardly counts; without them it drags the trend down
    values = [90, 90, 33.3, 90, 90, 90]
    big = dict(lower=0, upper=100)
    plain = project(series(values, **big), until=2026, method="logit_linear", calibrate=False)
    counts = project(series(values, numerator=[2700, 2700, 1, 2700, 2700, 2700],
                            denominator=[3000, 3000, 3, 3000, 3000, 3000], **big),
                     until=2026, method="logit_linear", calibrate=False)
    assert abs(row(counts, 2026)["value"] - 90) < abs(row(plain, 2026)["value"] - 90)
    assert abs(row(counts, 2026)["value"] - 90) < 1


def test_sampling_weights_match_the_matrix_formula():
    # DerSimonian-Laird tau^2 of a meta-regression, then weighted least squares with 1 / (tau^2 + v),
    # written with matrices as in the textbooks; the engine does it row-wise without matrices
    years = np.array([2015.0, 2016, 2018, 2019, 2020, 2023])
    z, v = np.array([1.0, 1.3, 1.1, 1.9, 2.2, 2.0]), np.array([0.02, 0.05, 0.01, 0.03, 0.02, 0.04])
    X, W = np.c_[np.ones(6), years], np.diag(1 / v)
    resid = z - X @ np.linalg.solve(X.T @ W @ X, X.T @ W @ z)
    trace = np.trace(W) - np.trace(np.linalg.solve(X.T @ W @ X, X.T @ W @ W @ X))
    tau2 = max(0.0, (resid @ W @ resid - 4) / trace)
    Ws = np.diag(1 / (tau2 + v))
    slope = np.linalg.solve(X.T @ Ws @ X, X.T @ Ws @ z)[1]
    _, engine_slope, *_ = projection._trend_fit(z[None], years[None], np.array([6]), v[None])
    assert tau2 > 0 and engine_slope[0] == pytest.approx(slope, rel=1e-9)


def test_calibration_widens_the_model_intervals_and_says_so():
    frame = series([50, 53, 52, 56, 58, 57, 61, 60], lower=0, upper=100)
    plain = row(project(frame, until=2030, calibrate=False), 2030)
    calibrated = row(project(frame, until=2030), 2030)
    assert calibrated["value"] == pytest.approx(plain["value"])
    assert calibrated["hi95"] - calibrated["lo95"] > plain["hi95"] - plain["lo95"]
    assert "calibrated on the backtests of 1 series and the default" in calibrated["method_reason"]
    short = row(project(series([50, 53, 52, 56]), until=2030), 2030)  # no origin of 5 points: the YAML prior
    assert "calibrated on the default" in short["method_reason"]


def test_one_sided_bound_uses_the_log_scale():
    out = project(series([5, 4, 2, 1.5, 1.0], lower=0), until=2035, method="logit_linear")
    assert (out["scale"] == "log").all() and (out["lo95"] >= 0).all()
    assert (project(series([5, 4, 2]), until=2030)["scale"] == "identity").all()


def test_series_at_100_projects_100_with_an_interval():
    for extra in ({}, {"numerator": 50, "denominator": 50}):
        out = project(series([100.0] * 6, start=2021, lower=0, upper=100, **extra), until=2030)
        assert (out["value"] == 100).all() and (out["hi95"] == 100).all()
        assert out["lo95"].notna().all() and (out["lo95"] < 100).all() and (out["lo95"] > 99).all()


def test_dropout_near_zero_stays_positive():
    out = project(series([0.2, 0.18, 0.15, 0.16, 0.12, 0.1], lower=0, upper=100), until=2030)
    assert (out["lo95"] > 0).all() and (out["value"] < 0.1).all()


def test_series_break_keeps_only_the_new_territory():
    frame = series([50, 52, 54, 80, 81, 82], start=2021, series_break=[False] * 3 + [True] + [False] * 2)
    out = project(frame, until=2027)
    r = row(out, 2027)
    assert r["n_points"] == 3 and r["first_year"] == 2024
    assert "series break in 2024" in r["method_reason"]
    short = project(series([1, 2, 3, 4, 5], segment=["old"] * 4 + ["new"]), until=2026)
    assert (short["method"] == projection.INSUFFICIENT).all()
    assert "since the break" in short["method_reason"].iloc[0]


def test_series_break_as_a_level_shift_by_hand():
    # 10, 12, 14 (2018-2020), break in 2021, then 30, 31, 32. Before the break: last 14, average change 2,
    # so 2021 was expected at 16: the shift is 30 - 16 = +14 and the joined series is 24, 26, 28, 30, 31, 32.
    # Last value: 32; changes 2, 2, 2, 1, 1 -> sigma^2 = 14 / 5 = 2.8 (5 df); the shift's variance is the
    # forecast's from before the break: changes 2, 2 -> 4, times (gap 1 + gap^2 / span 2) = 6
    frame = series([10, 12, 14, 30, 31, 32.0], start=2018, series_break=[False] * 3 + [True, False, False])
    out = project(frame, until=2024, method="last_value", calibrate=False, breaks="shift")
    r = row(out, 2024)
    assert r["value"] == pytest.approx(32) and r["n_points"] == 6 and r["first_year"] == 2018
    assert r["lo80"] == pytest.approx(32 - t(0.9, 5) * np.sqrt(2.8 + 6))
    assert "series break in 2021: earlier years shifted by +14 (level shift)" in r["method_reason"]
    drop = row(project(frame, until=2024), 2024)  # the default is still to drop the earlier years
    assert drop["n_points"] == 3 and "only data from that year on" in drop["method_reason"]


def test_level_shift_intervals_are_never_narrower_than_the_new_territory_alone():
    # a smooth history before the break, a noisy one after: joined, the noise estimate would be small; the
    # intervals stay at least as wide as those of the same model on the 3 points since the break
    frame = series([10, 11, 12, 13, 14, 15, 16, 17, 40, 45, 41.0], start=2010,
                   series_break=[False] * 8 + [True, False, False])
    shift = project(frame, until=2023, method="last_value", calibrate=False, breaks="shift")
    drop = project(frame, until=2023, method="last_value", calibrate=False)
    cols = ["lo95", "lo80", "value", "hi80", "hi95"]
    np.testing.assert_allclose(shift[cols].to_numpy(), drop[cols].to_numpy())  # here the floor binds
    auto = project(frame, until=2023, breaks="shift")
    assert ((auto["hi95"] - auto["lo95"]) > 0).all() and (auto["method"] == "auto").all()


def test_a_level_shift_keeps_a_projection_with_one_point_after_the_break():
    frame = series([70, 71, 72, 73, 60.0], start=2021, lower=0, upper=100, series_break=[False] * 4 + [True])
    drop = project(frame, until=2030)
    assert (drop["method"] == projection.INSUFFICIENT).all()
    out = project(frame, until=2030, breaks="shift")
    assert (out["method"] == "auto").all() and out["value"].between(0, 100).all()
    assert (out["hi95"] - out["lo95"] > 0).all() and "(level shift)" in out["method_reason"].iloc[0]
    one_before = project(frame.iloc[3:], until=2030, breaks="shift")  # 1 point before the break: no shift
    assert (one_before["method"] == projection.INSUFFICIENT).all()
    with pytest.raises(AnalysisError):
        project(frame, breaks="join")


def test_short_and_empty_series_get_insufficient_rows():
    frame = pd.concat([series([5], sid="one"), series([5, 6], sid="two"),
                       series([np.nan, np.nan], sid="none"), series([1, 2, 3], sid="ok")])
    out = project(frame, until=2025)
    by = out.groupby("series_id")["method"].first()
    assert by["one"] == by["two"] == by["none"] == projection.INSUFFICIENT and by["ok"] == "auto"
    assert out.loc[out["series_id"] == "one", ["value", "lo80", "hi95"]].isna().all().all()
    assert out.loc[out["series_id"] == "none", "year"].isna().all()
    assert (out.loc[out["series_id"] == "one", "year"] == list(range(2021, 2026))).all()


def test_output_contract_columns_first():
    out = project(series([1, 2, 3]), until=2024)
    assert list(out.columns[:8]) == projection.OUTPUT_COLUMNS


def test_unknown_method_is_refused():
    with pytest.raises(AnalysisError):
        project(series([1, 2, 3]), method="prophet")


# ---------------------------------------------------------------------------------------------------
# input checks


def test_check_input_drops_values_outside_bounds():
    rows, problems = check_input(series([50, 120, 60], lower=0, upper=100))
    assert list(rows["value"]) == [50, 60]
    assert problems.loc[0, "code"] == "out_of_bounds" and problems.loc[0, "year"] == 2021
    assert "s" in problems.loc[0, "message_en"] and "2021" in problems.loc[0, "message_vi"]


@pytest.mark.parametrize("frame, needle", [
    (pd.DataFrame({"series_id": ["a"], "value": [1.0]}), "year"),
    (pd.DataFrame({"series_id": ["a", "a"], "year": [2020, 2021], "value": ["1", "abc"]}), "abc"),
    (pd.DataFrame({"series_id": ["a", "a"], "year": [2020, 2020], "value": [1.0, 2.0]}), "Duplicate"),
    (pd.DataFrame({"series_id": ["a"], "year": ["2020-2021"], "value": [1.0]}), "whole number"),
])
def test_check_input_structural_errors(frame, needle):
    with pytest.raises(AnalysisError) as err:
        check_input(frame)
    assert needle in str(err.value)


def test_inconsistent_bounds_skip_the_series():
    frame = pd.concat([series([1, 2, 3], lower=[0, 0, 10], upper=100, sid="bad"), series([1, 2, 3], sid="ok")])
    out = project(frame, until=2024)
    assert (out.loc[out["series_id"] == "bad", "method"] == projection.INSUFFICIENT).all()
    assert "bounds" in out.loc[out["series_id"] == "bad", "method_reason"].iloc[0]


# ---------------------------------------------------------------------------------------------------
# properties


values_01 = st.lists(st.floats(0, 100, allow_nan=False), min_size=3, max_size=12)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(values=values_01, method=st.sampled_from([projection.AUTO, *projection.METHODS]))
def test_bounded_projections_stay_in_bounds_and_nest(values, method):
    out = project(series(values, lower=0, upper=100), until=2040, method=method)
    q = out[["lo95", "lo80", "value", "hi80", "hi95"]].to_numpy()
    assert np.isfinite(q).all()
    assert (q >= 0).all() and (q <= 100).all()
    assert (np.diff(q, axis=1) >= -1e-9).all()
    full = out[list(projection.LEVEL_COLUMNS)].to_numpy()
    assert (np.diff(full, axis=1) >= -1e-9).all()


@FAST
@given(level=st.floats(-1e4, 1e4), n=st.integers(3, 12), bounded=st.booleans(),
       method=st.sampled_from([projection.AUTO, *projection.METHODS]))
def test_flat_series_projects_flat(level, n, bounded, method):
    if bounded:
        level = abs(level) % 100
    if method == "cagr" and level <= 0:
        level = 1.0  # the rule needs positive values
    frame = series([level] * n, **({"lower": 0, "upper": 100} if bounded else {}))
    out = project(frame, until=2040, method=method)
    assert np.allclose(out["value"], level, rtol=1e-9, atol=1e-9)


@FAST
@given(steps=st.lists(st.floats(0.01, 5), min_size=3, max_size=11), start=st.floats(1, 40),
       method=st.sampled_from([projection.AUTO, "linear", "logit_linear", "damped", "cagr"]))
def test_increasing_series_projects_upwards(steps, start, method):
    values = start + np.cumsum([0.0, *steps])
    values = values[values < 99.9]
    if len(values) < 3:
        return
    out = project(series(values, lower=0, upper=100), until=2040, method=method).sort_values("year")
    assert (np.diff(out["value"].to_numpy()) >= -1e-9).all()
    if method in ("damped", "cagr"):
        assert out["value"].iloc[0] >= values[-1] - 1e-9


@FAST
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(2000, 2030), st.floats(-5, 105) | st.none()),
                min_size=1, max_size=40, unique_by=lambda r: (r[0], r[1])))
def test_any_valid_file_projects_without_error(records):
    frame = pd.DataFrame(records, columns=["series_id", "year", "value"]).assign(lower=0.0, upper=100.0)
    out = project(frame, until=2032)
    assert set(out["series_id"]) <= set(frame["series_id"])
    ok = out["method"] != projection.INSUFFICIENT
    assert out.loc[ok, "value"].between(0, 100).all()


# ---------------------------------------------------------------------------------------------------
# metadata


def test_method_labels_come_from_the_metadata():
    meta = projection.metadata()
    assert set(meta["methods"]) == {*projection.METHODS, projection.AUTO}
    assert projection.method_label("damped", "en") == "Damped trend"


def test_pits_evaluated_only_where_read_give_the_levels_of_evaluating_all():
    """Calibration reads a thinned sample of the backtest's PITs; evaluating the t CDF only there must give
    exactly the levels of evaluating every PIT first (zero spreads, infinite and missing gaps included)."""
    from scipy import special

    from analysis import projection as pj

    rng = np.random.default_rng(3)
    B, H = 150_000, 3
    gap, sd = rng.normal(size=(B, H)), rng.gamma(2.0, size=(B, H))
    sd[rng.random((B, H)) < 0.05] = 0.0
    gap[rng.random((B, H)) < 0.01] = np.inf
    gap[(rng.random((B, H)) < 0.01) & (sd == 0)] = 0.0
    missing = rng.random((B, H)) < 0.1  # no outcome
    df = rng.integers(1, 9, B).astype(float) + 2
    with np.errstate(all="ignore"):  # the rule: a zero spread gives 0 or 1 by the side of the gap, 0.5 on it
        eager = np.where(sd > 0, special.stdtr(df[:, None], gap / sd), np.where(gap > 0, 1.0, np.where(gap < 0, 0.0, 0.5)))
        eager = np.where(missing, np.nan, eager)
        x = np.where(missing, np.nan, np.where(sd > 0, gap / sd, np.where(gap == 0, 0.0, np.sign(gap) * np.inf)))
    rows, train = rng.integers(0, 4_000, B), rng.integers(3, 9, B)
    lower = np.array([0.025, 0.1, 0.25])
    bt = pj._Backtest(rows=rows, train=train, center={}, y=None, scale=None, pit={"m": (x, df)})
    got, n = pj._empirical_levels(bt, "m", lower, 4_000)

    cal = pj.metadata()["calibration"]  # the rule written out, every PIT evaluated first
    u = np.where((train >= cal["min_train"])[:, None], eager, np.nan)
    good = np.isfinite(u)
    series = np.broadcast_to(rows[:, None], u.shape)[good]
    v = np.minimum(u[good], 1 - u[good])
    per_series = np.bincount(series, minlength=4_000)
    weight = 1.0 / per_series[series]
    step = int(np.ceil(v.size / cal["max_pit_per_method"])) if v.size > cal["max_pit_per_method"] else 1
    expected = np.quantile(v[::step], np.clip(2 * lower, 0, 1), weights=weight[::step], method="inverted_cdf")
    assert step > 1  # the thinning is exercised
    np.testing.assert_array_equal(got, expected)
    assert n == int((per_series > 0).sum())
