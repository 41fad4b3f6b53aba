"""The verdict (analysis.verdicts): every status and grade on cases worked out by hand, pace since the
baseline on the projection's scale, and the property that a sentence comparing the observed and the needed
pace always agrees with the status.

Most cases judge a hand-made projection (normal quantiles with a chosen median and spread), so that the
probability of meeting the target is known and the verdict's rules are tested apart from the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special, stats

from analysis import projection, verdicts
from analysis.errors import AnalysisError
from analysis.projection import project
from analysis.verdicts import assess, probability_of
from conftest import series as projection_series

RULES = projection.metadata()["verdict"]


def series(values, start=2021, **kwargs):
    return projection_series(values, start=start, **kwargs)


def projected(sid, year, median, sd, method="auto"):
    """A projection row whose quantiles are those of a normal distribution (a known probability)."""
    levels = np.array(projection.LEVELS)
    q = median + sd * special.ndtri(levels)
    row = {"series_id": sid, "year": year, **dict(zip(projection.LEVEL_COLUMNS, q)), "method": method,
           "method_reason": "hand-made"}
    return pd.DataFrame([row])


def targets(sid="s", year=2030, value=80.0, comparator=">="):
    years = year if isinstance(year, list) else [year]
    values = value if isinstance(value, list) else [value] * len(years)
    return pd.DataFrame({"series_id": sid, "target_year": years, "target_value": values, "comparator": comparator})


def judge(history, target, proj=None, **kw) -> pd.DataFrame:
    """The verdict rows indexed by target year (the engine's projection unless one is given)."""
    proj = project(history, until=2030) if proj is None else proj
    return assess(history, proj, target, **kw).set_index("target_year")


def with_probability(p, target=80.0, sd=1.0, year=2030, sid="s", comparator=">="):
    """A projection in ``year`` that meets ``comparator target`` with probability ``p``."""
    shift = sd * special.ndtri(p)
    median = target + shift if comparator in (">=", ">") else target - shift
    return projected(sid, year, median, sd)


# ---------------------------------------------------------------------------------------------------
# probability


def test_probability_reads_the_quantiles():
    levels = np.array(projection.LEVELS)
    q = pd.DataFrame([50 + 10 * stats.norm.ppf(levels)], columns=list(projection.LEVEL_COLUMNS))
    assert probability_of(q, [50], [">="])[0] == pytest.approx(0.5)
    assert probability_of(q, [50 + 10 * stats.norm.ppf(0.2)], [">="])[0] == pytest.approx(0.8)
    assert probability_of(q, [60], ["<"])[0] == pytest.approx(stats.norm.cdf(1), abs=1e-3)
    only_five = q[["value", "lo80", "hi80", "lo95", "hi95"]]  # a CSV without the extra quantiles
    assert probability_of(only_five, [60], ["<"])[0] == pytest.approx(stats.norm.cdf(1), abs=1e-3)


# ---------------------------------------------------------------------------------------------------
# the statuses, in the order of the rules


def test_no_target_is_not_insufficient_data():
    frame = series([80, 85, 90], start=2024)
    tg = pd.DataFrame({"series_id": "s", "target_year": [2025, 2030], "target_value": [95, np.nan],
                       "direction": "increase"})
    v = judge(frame, tg)
    assert v.loc[2030, "status"] == "no_target" and v.loc[2030, "label"] == "Không đặt chỉ tiêu"
    assert "no target" in v.loc[2030, "reason"] and v.loc[2030, "basis"] == ""
    assert verdicts.verdict_labels(v.reset_index(), "en")[1] == "No target set"


def test_target_year_observed_is_achieved_or_not_met():
    frame = series([0.2, 0.18, 0.15, 0.14, 0.12, 0.11], lower=0, upper=100)
    tg = targets(year=[2024, 2025], value=[0.14, 0.12], comparator="<")
    v = judge(frame, tg)
    assert v.loc[2024, "status"] == "not_met"  # 0.14 is not below 0.14
    assert v.loc[2025, "status"] == "not_met" and v.loc[2025, "label"] == "Không đạt"
    assert v.loc[2025, "basis"] == "observed" and v.loc[2025, "met"] == False  # noqa: E712
    met = judge(frame, targets(year=2025, value=0.125, comparator="<"))
    assert met.loc[2025, "status"] == "achieved" and met.loc[2025, "label"] == "Đã đạt" and met.loc[2025, "met"]
    # a missed target year stays not_met whatever the trend does afterwards
    rising = judge(series([80, 82, 84, 86, 88, 90]), targets(year=2025, value=95))
    assert rising.loc[2025, "status"] == "not_met" and rising.loc[2025, "grade"] == ""


def test_too_few_points_is_insufficient_data():
    frame = pd.concat([series([80, 85, 90], start=2024, sid="three"), series([80, 85], start=2025, sid="two")])
    tg = pd.DataFrame({"series_id": ["three", "two"], "target_year": 2030, "target_value": 95, "direction": "increase"})
    v = assess(frame, project(frame, until=2030), tg).set_index("series_id")
    assert v.loc["two", "status"] == "insufficient_data" and v.loc["two", "label"] == "Thiếu dữ liệu"
    assert "fewer than 3 points" in v.loc["two", "reason"] and v.loc["two", "n_points"] == 2
    assert v.loc["three", "status"] != "insufficient_data"


def test_target_year_passed_without_an_observation_is_insufficient_data():
    frame = series([80, 82, 84, 88], years=[2021, 2022, 2023, 2026])
    v = judge(frame, targets(year=2025, value=85))
    assert v.loc[2025, "status"] == "insufficient_data" and "without an observation" in v.loc[2025, "reason"]
    late = series([80, 82, 84], start=2022)  # 2025 should have been reported (as_of 2026) but is missing
    assert judge(late, targets(year=2025, value=85)).loc[2025, "basis"] == "projected"
    v = judge(late, targets(year=2025, value=85), as_of=2026)
    assert v.loc[2025, "status"] == "insufficient_data" and "without an observation" in v.loc[2025, "reason"]


def test_maintain_100_percent_at_100_is_on_track_whatever_the_probability():
    frame = series([100.0] * 5, lower=0, upper=100)  # 2021-2025
    proj = pd.concat([with_probability(0.3, target=100 - 0.05, sd=0.02)])  # the projection alone: 30%
    v = judge(frame, targets(year=[2025, 2030], value=100.0), proj)
    assert v.loc[2025, "status"] == "achieved"
    assert v.loc[2030, "status"] == "on_track" and v.loc[2030, "basis"] == "latest" and v.loc[2030, "met"]
    assert v.loc[2030, "pace"] == "kept" and v.loc[2030, "label"] == "Đúng tiến độ"
    assert v.loc[2030, "probability"] == pytest.approx(0.3)  # shown beside, not the reason
    assert "kept" in v.loc[2030, "reason"] and np.isnan(v.loc[2030, "needed_change_per_year"])
    # within half a reporting unit of the bound (0.05 points on 0-100) is the bound
    near = judge(series([99.0, 99.5, 99.97, 99.97, 99.97], lower=0, upper=100), targets(value=100.0), proj)
    assert near.loc[2030, "status"] == "on_track" and near.loc[2030, "pace"] == "kept"
    below = judge(series([99.0, 99.5, 99.9, 99.9, 99.9], lower=0, upper=100), targets(value=100.0), proj)
    assert below.loc[2030, "status"] == "needs_acceleration"


def test_maintain_100_percent_with_the_engine():
    frame = series([100.0] * 6, lower=0, upper=100)
    v = judge(frame, targets(year=[2025, 2030], value=100.0))
    assert v.loc[2025, "status"] == "achieved" and v.loc[2030, "status"] == "on_track"


def test_dropout_below_its_target_is_on_track_unless_it_rises_with_confidence():
    tg = targets(value=0.1, comparator="<")
    low = with_probability(0.6, target=0.1, sd=0.02, comparator="<")
    kept = judge(series([0.29, 0.19, 0.16, 0.08, 0.08], lower=0, upper=100), tg, low)
    assert kept.loc[2030, "status"] == "on_track" and kept.loc[2030, "pace"] == "kept"
    assert kept.loc[2030, "trend_away_confidence"] < RULES["regressing_confidence"]
    # below 0.1 now, but rising steadily since the baseline: moving away, and the projection is not sure
    rising = judge(series([0.02, 0.04, 0.06, 0.08, 0.081], lower=0, upper=100), tg, low)
    assert rising.loc[2030, "trend_away_confidence"] >= RULES["regressing_confidence"]
    assert rising.loc[2030, "status"] == "regressing" and rising.loc[2030, "label"] == "Đi lùi"
    assert rising.loc[2030, "pace"] == "kept" and "met in the latest year, but moving away" in rising.loc[2030, "reason"]
    # rising, but the projection still meets it with 90%: on track
    sure = judge(series([0.02, 0.04, 0.06, 0.08, 0.081], lower=0, upper=100), tg,
                 with_probability(0.9, target=0.1, sd=0.02, comparator="<"))
    assert sure.loc[2030, "status"] == "on_track" and sure.loc[2030, "basis"] == "projected"


def test_on_track_from_the_projection():
    frame = series([50.0, 54, 58, 62, 66])  # +4 a year; 80 in 2030 needs +2.8 a year
    v = judge(frame, targets(), with_probability(0.85))
    assert v.loc[2030, "status"] == "on_track" and v.loc[2030, "basis"] == "projected"
    assert v.loc[2030, "pace"] == "ahead" and v.loc[2030, "grade"] == ""
    assert v.loc[2030, "probability"] == pytest.approx(0.85)
    slow = judge(frame, targets(), with_probability(0.79))
    assert slow.loc[2030, "status"] == "needs_acceleration"


def test_a_favourable_projection_does_not_override_a_pace_that_is_too_slow():
    """The projection (which may lean on the years before the baseline) gives 90%, but the pace since the
    baseline is too slow: the status follows the pace, so that the sentence on pace agrees with it."""
    frame = series([50.0, 51, 52, 53, 54])  # +1 a year against +5.2 needed
    v = judge(frame, targets(), with_probability(0.9))
    assert v.loc[2030, "status"] == "needs_acceleration" and v.loc[2030, "pace"] == "behind"
    assert v.loc[2030, "probability"] == pytest.approx(0.9)


def test_regressing_by_hand():
    """Identity scale (no bounds): the slope since 2021 and its one-sided t confidence, by hand."""
    values = np.array([60.0, 59, 57.5, 57, 55])  # 2021-2025, falling; target >= 80 in 2030
    v = judge(series(values), targets(), with_probability(0.01))
    slope, _, _, _, se = stats.linregress(np.arange(2021, 2026), values)
    assert v.loc[2030, "trend_away_confidence"] == pytest.approx(stats.t.cdf(-slope / se, 3))
    assert v.loc[2030, "status"] == "regressing" and v.loc[2030, "pace"] == "away"
    assert v.loc[2030, "change_per_year_since_baseline"] == pytest.approx((55 - 60) / 4)
    # falling as much, but too noisily to be sure: needs acceleration (strong), not regressing
    noisy = judge(series([60.0, 52, 63, 50, 59]), targets(), with_probability(0.01))
    assert noisy.loc[2030, "trend_away_confidence"] < RULES["regressing_confidence"]
    assert noisy.loc[2030, "status"] == "needs_acceleration" and noisy.loc[2030, "grade"] == "strong"
    # the line since the baseline falls with confidence, but the latest value is above the baseline value:
    # the values have not moved away, so it is not called a regression (the sentence would say '+0.07 a year')
    values = [60.0, *range(75, 60, -1)]  # 2010-2025: a low first year, then a steady fall to 61
    v = judge(series(values, start=2010), targets(), with_probability(0.01)).loc[2030]
    assert v["trend_away_confidence"] > 0.99 and v["change_per_year_since_baseline"] == pytest.approx(1 / 15)
    assert v["status"] == "needs_acceleration" and v["grade"] == "strong" and v["pace"] == "behind"


def test_grades_by_hand_on_the_identity_scale():
    """No bounds: the working scale is the value. Baseline 50 in 2021, target >= 80 in 2030: the target
    required (80 - 50) / 9 = 3.33 a year from the baseline."""
    low = with_probability(0.3)
    cases = {  # latest value in 2025 -> (ratio, grade)
        58.0: (2 / (30 / 9), "moderate"),   # +2 a year: 60% of the required pace, within reach
        54.0: (1 / (30 / 9), "strong"),     # +1 a year: 30%, far out of reach
        66.0: (4 / (30 / 9), "on_pace"),    # +4 a year: would reach 80 in 2029, but only 30% likely
    }
    for latest, (ratio, grade) in cases.items():
        values = np.linspace(50, latest, 5)
        v = judge(series(values), targets(), low).loc[2030]
        assert v["progress_ratio"] == pytest.approx(ratio) and v["grade"] == grade, latest
        assert v["status"] == "needs_acceleration" and v["baseline_year"] == 2021 and v["baseline_value"] == 50
        assert v["observed_change_per_year"] == pytest.approx((latest - 50) / 4)
        assert v["needed_change_per_year"] == pytest.approx((80 - latest) / 5)
        assert v["years_to_target_at_pace"] == pytest.approx((80 - latest) / ((latest - 50) / 4))
        assert v["label"] == verdicts.status_label("needs_acceleration", "vi", grade)
    on_pace = judge(series(np.linspace(50, 66, 5)), targets(), low).loc[2030]
    assert on_pace["year_reached_at_pace"] == 2029 and on_pace["pace"] == "ahead"  # 14 / 4 = 3.5 years
    assert on_pace["label"] == "Cần giữ vững nhịp độ"
    strong = judge(series(np.linspace(50, 54, 5)), targets(), low).loc[2030]
    assert strong["year_reached_at_pace"] == 2025 + 26 and strong["label"] == "Chậm xa tiến độ, cần đẩy nhanh mạnh"
    assert verdicts.verdict_labels(pd.DataFrame([strong]), "en")[0] == "Far off track, needs strong acceleration"


def test_pace_is_measured_since_the_baseline_only():
    """2016-2020 rose 6 points a year; since 2021 one point a year: the pace is the one since 2021."""
    values = [20.0, 26, 32, 38, 44, 50, 51, 52, 53, 54]  # 2016-2025
    frame = series(values, start=2016)
    v = judge(frame, targets(), with_probability(0.3), baseline_year=2021).loc[2030]
    assert v["baseline_year"] == 2021 and v["baseline_value"] == 50
    assert v["progress_ratio"] == pytest.approx(1 / (30 / 9)) and v["grade"] == "strong"
    assert v["n_points_since_baseline"] == 5 and v["n_points"] == 10
    # the trend of 'moving away' is fitted on the same years: 2016-2025 would give another slope
    assert v["trend_away_confidence"] < 1e-6
    default = judge(frame, targets(), with_probability(0.3)).loc[2030]  # default: the series' first year
    assert default["baseline_year"] == 2016 and default["progress_ratio"] == pytest.approx((34 / 9) / (60 / 14))


def test_pace_on_the_logit_scale_not_the_value_scale():
    """90% in 2021, 95% in 2025, target 99% in 2030. On the value scale the pace (+1.25 a year) beats
    the +0.8 a year needed; on the projection's logit scale, where gains slow near 100%, it does not."""
    frame = series([90.0, 91.5, 93, 94, 95], lower=0, upper=100)
    v = judge(frame, targets(value=99.0), with_probability(0.3, target=99, sd=0.5)).loc[2030]
    z = special.logit
    observed, required = (z(0.95) - z(0.90)) / 4, (z(0.99) - z(0.90)) / 9
    assert v["progress_ratio"] == pytest.approx(observed / required)  # 0.70
    assert v["grade"] == "moderate" and v["pace"] == "behind"
    at_2030 = 100 * special.expit(z(0.95) + 5 * observed)
    assert v["value_at_pace"] == pytest.approx(at_2030)
    assert v["observed_change_per_year"] == pytest.approx((at_2030 - 95) / 5)  # ~0.57 a year, on this scale
    assert v["needed_change_per_year"] == pytest.approx((99 - 95) / 5)
    assert v["observed_change_per_year"] < v["needed_change_per_year"] < v["change_per_year_since_baseline"]


def test_baseline_year_without_an_observation_starts_at_the_next_one_and_says_so():
    frame = series([40.0, 45, 50, 52, 54], years=[2019, 2020, 2022, 2023, 2024])
    v = judge(frame, targets(), with_probability(0.3), baseline_year=2021).loc[2030]
    assert v["baseline_year"] == 2022 and v["baseline_value"] == 50
    assert v["progress_ratio"] == pytest.approx(2 / (30 / 8))
    assert "no observation in the baseline year" in v["reason"]


def test_fewer_than_two_points_since_the_baseline_measure_from_the_first_year():
    frame = series([40.0, 45, 50], start=2019)  # a report of 2021: one point since the baseline
    v = judge(frame, targets(), with_probability(0.3), baseline_year=2021).loc[2030]
    assert v["baseline_year"] == 2019 and "fewer than 2 observations" in v["reason"]


def test_target_met_at_the_baseline_and_lost_since():
    frame = series([96.0, 93, 96, 94.5, 94])  # >= 95 met in 2021, not in 2025; too noisy to be regressing
    v = judge(frame, targets(value=95.0), with_probability(0.4, target=95)).loc[2030]
    assert v["status"] == "needs_acceleration" and v["grade"] == "strong" and v["pace"] == "away"
    assert np.isnan(v["progress_ratio"]) and "met the target and the latest no longer does" in v["reason"]


def test_series_break_only_the_new_territory_counts():
    flags = [False] * 4 + [True, False]
    frame = series([90, 91, 92, 93, 70, 71], series_break=flags)  # 2021-2026, new territory from 2025
    v = judge(frame, targets(year=[2024, 2030], value=92.0))
    assert v.loc[2024, "status"] == "achieved"  # observed on the old territory
    assert v.loc[2030, "status"] == "insufficient_data" and v.loc[2030, "n_points"] == 2
    longer = series([90, 91, 92, 93, 70, 72, 74], series_break=flags + [False])  # 3 years on the new one
    v = judge(longer, targets(value=80.0), with_probability(0.3), baseline_year=2021).loc[2030]
    assert v["status"] == "needs_acceleration" and v["n_points"] == 3
    assert v["baseline_year"] == 2025 and v["baseline_value"] == 70  # the first year on the new territory
    assert v["progress_ratio"] == pytest.approx(2 / (10 / 5)) and v["grade"] == "on_pace"
    assert "series break" in v["reason"]


def test_a_break_bridged_by_a_level_shift_keeps_its_verdict():
    """A territory change the data cannot restate (one year on the new territory): with breaks='shift', as the
    pipeline runs, the years before the break are moved by the level shift (first year on the new territory
    against what the earlier years forecast for it), so the verdict rests on every year; 'drop' has too few."""
    flags = [False] * 5 + [True]
    frame = series([90, 91, 92, 93, 94, 80], series_break=flags)  # 2021-2026, a larger territory in 2026
    drop = judge(frame, targets(value=99.0), project(frame, until=2030)).loc[2030]
    assert drop["status"] == "insufficient_data" and drop["n_points"] == 1
    proj = project(frame, until=2030, breaks="shift")
    v = judge(frame, targets(value=99.0), proj, breaks="shift", baseline_year=2021).loc[2030]
    assert v["status"] != "insufficient_data" and v["n_points"] == 6 and v["latest_value"] == 80
    # the shift: 2026 forecast from 2021-2025 is 95 (last value + average change), observed 80: -15 (value
    # scale here is the logit's; the baseline moves with it, so the pace since 2021 is the earlier pace)
    assert v["baseline_value"] == pytest.approx(75.0, abs=1.5) and v["pace"] in ("ahead", "behind")
    assert "level shift" in proj.loc[proj["year"] == 2030, "method_reason"].iloc[0]


def test_aarr_by_hand():
    """UNICEF's average annual rate of reduction, AARR = (1 - (x_t / x_0) ** (1 / (t - t0))) * 100."""
    # a rate with a lower bound only: the working scale is the log, so the AARR at the observed pace is the
    # AARR from the baseline to the latest value
    frame = series([0.4, 0.33, 0.28, 0.24, 0.2], lower=0)
    v = judge(frame, targets(value=0.1, comparator="<"), with_probability(0.5, target=0.1, sd=0.02, comparator="<"))
    v = v.loc[2030]
    assert v["aarr_observed"] == pytest.approx((1 - (0.2 / 0.4) ** (1 / 4)) * 100)  # 15.9% a year
    assert v["aarr_required"] == pytest.approx((1 - (0.1 / 0.2) ** (1 / 5)) * 100)  # 12.9% a year
    assert v["pace"] == "ahead" and v["grade"] == "on_pace"
    # on 0-100 (logit), the observed AARR is the one the logit pace gives from the latest value to 2030
    frame = series([0.4, 0.33, 0.28, 0.24, 0.2], lower=0, upper=100)
    v = judge(frame, targets(value=0.1, comparator="<"), with_probability(0.5, target=0.1, sd=0.02, comparator="<"))
    z = special.logit
    at_2030 = 100 * special.expit(z(0.002) + 5 * (z(0.002) - z(0.004)) / 4)
    assert v.loc[2030, "aarr_observed"] == pytest.approx((1 - (at_2030 / 0.2) ** (1 / 5)) * 100)
    assert v.loc[2030, "aarr_observed"] == pytest.approx((1 - (0.2 / 0.4) ** (1 / 4)) * 100, abs=0.05)
    # targets to go up get none
    up = judge(series([50.0, 52, 54, 56, 58]), targets(), with_probability(0.3)).loc[2030]
    assert np.isnan(up["aarr_observed"]) and np.isnan(up["aarr_required"])


# ---------------------------------------------------------------------------------------------------
# the sentence on pace agrees with the status


def sentence(row) -> str:
    """The sentence a report writes from a verdict row: 'observed X a year, needed Y a year', read as what it
    tells the reader: the pace is enough, too slow, or the wrong way (a met target needs no pace)."""
    if row["pace"] == "kept":
        return "met"
    d = 1.0 if row["comparator"] in (">=", ">") else -1.0
    observed, needed = row["observed_change_per_year"], row["needed_change_per_year"]
    if d * observed < 0:
        return "wrong way"
    if abs(observed - needed) <= 1e-9 * max(abs(observed), abs(needed), 1e-3):
        return "exactly"  # the pace needed, to rounding: either verdict reads right
    return "enough" if d * (observed - needed) > 0 else "too slow"


AGREES = {"on_track": {"met", "enough"}, "regressing": {"wrong way", "met"},
          ("needs_acceleration", "on_pace"): {"enough"}, ("needs_acceleration", "moderate"): {"too slow"},
          ("needs_acceleration", "strong"): {"too slow", "wrong way"}}


def check_agreement(v: pd.DataFrame) -> int:
    """Every projected verdict: the sentence agrees with the status; the other pace figures say the same."""
    judged = v[v["status"].isin(["on_track", "needs_acceleration", "regressing"]) & (v["pace"] != "")]
    for _, row in judged.iterrows():
        key = row["status"] if row["status"] != "needs_acceleration" else (row["status"], row["grade"])
        said = sentence(row)
        if said == "exactly":
            continue
        assert said in AGREES[key], (key, said, row.to_dict())
        d = 1.0 if row["comparator"] in (">=", ">") else -1.0
        # the average change since the baseline points the same way as the observed pace (which may round to
        # no change at all where it meets a bound)
        assert np.sign(row["observed_change_per_year"]) in (np.sign(row["change_per_year_since_baseline"]), 0)
        if row["pace"] in ("kept", "away"):
            assert row["observed_change_per_year"] == row["change_per_year_since_baseline"]
        if row["status"] == "regressing":
            assert d * row["change_per_year_since_baseline"] < 0
            assert row["trend_away_confidence"] >= RULES["regressing_confidence"]
        if row["pace"] in ("ahead", "behind", "away"):
            assert (said == "enough") == (row["pace"] == "ahead")
            reached = row["year_reached_at_pace"]
            assert (not pd.isna(reached) and reached <= row["target_year"]) == (said == "enough")
            if not (np.isnan(row["aarr_observed"]) or np.isnan(row["aarr_required"])):
                tol = 1e-9 * max(abs(row["aarr_observed"]), 1.0)
                assert (row["aarr_observed"] >= row["aarr_required"] - tol) == (said == "enough")
    return len(judged)


EDGES = [0.0, 0.05, 0.1, 50.0, 99.3, 99.95, 100.0]  # bounds, half a unit from them, the plan's targets
value_lists = st.lists(st.one_of(st.floats(0.0, 100.0), st.sampled_from(EDGES)), min_size=3, max_size=10)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=value_lists, target=st.one_of(st.floats(0.0, 100.0), st.sampled_from(EDGES)),
       comparator=st.sampled_from([">=", ">", "<=", "<"]), p=st.floats(0.0, 1.0),
       bounds=st.sampled_from(["both", "lower", "none"]), start=st.integers(2012, 2024))
def test_the_sentence_on_pace_agrees_with_the_status(values, target, comparator, p, bounds, start):
    lower, upper = {"both": (0, 100), "lower": (0, None), "none": (None, None)}[bounds]
    frame = series(values, start=start, lower=lower, upper=upper)
    proj = with_probability(min(max(p, 1e-6), 1 - 1e-6), target=target, comparator=comparator)
    v = assess(frame, proj, targets(value=target, comparator=comparator), baseline_year=2021)
    assert set(v["status"]) <= set(verdicts.STATUSES)
    assert (v.loc[v["grade"] != "", "status"] == "needs_acceleration").all()
    assert v.loc[(v["status"] == "needs_acceleration") & (v["pace"] != ""), "grade"].isin(verdicts.GRADES).all()
    check_agreement(v)


def test_the_sentence_on_pace_agrees_with_the_status_with_the_engine():
    """The same property on many series projected by the engine (its own probabilities)."""
    rng = np.random.default_rng(17)
    frames, tgs = [], []
    for k in range(400):
        n = rng.integers(3, 12)
        start = 2026 - n + 1
        level, step, noise = rng.uniform(0, 100), rng.normal(0, 3), rng.uniform(0, 3)
        values = np.clip(level + step * np.arange(n) + rng.normal(0, noise, n), 0, 100)
        lower, upper = [(0, 100), (0, None), (None, None)][rng.integers(3)]
        frame = series(values, start=start, sid=f"s{k}", lower=lower, upper=upper)
        if rng.random() < 0.3:  # counts: the continuity correction of half a count
            frame["numerator"], frame["denominator"] = np.round(values * 3), 300.0
        if rng.random() < 0.1 and n > 4:
            frame["series_break"] = [False] * (n - 3) + [True, False, False]
        frames.append(frame)
        value = rng.choice([rng.uniform(0, 100), 100.0, 0.0, 0.1])
        tgs.append(targets(sid=f"s{k}", year=[2025, 2030], value=[value] * 2,
                           comparator=rng.choice([">=", ">", "<=", "<"])))
    frame, tg = pd.concat(frames), pd.concat(tgs)
    v = assess(frame, project(frame, until=2030), tg, baseline_year=2021, as_of=2024)
    assert check_agreement(v) > 300
    assert {"on_track", "needs_acceleration", "regressing", "not_met", "achieved"} <= set(v["status"])
    assert set(v.loc[v["status"] == "needs_acceleration", "grade"]) == set(verdicts.GRADES)


# ---------------------------------------------------------------------------------------------------
# targets and labels


def test_direction_and_comparator():
    tg = pd.DataFrame({"series_id": "s", "target_year": [2025, 2030], "target_value": [1, 2],
                       "direction": ["increase", "decrease"], "comparator": [None, "<"]})
    assert list(verdicts.normalise_targets(tg)["comparator"]) == [">=", "<"]
    with pytest.raises(AnalysisError):
        verdicts.normalise_targets(tg.assign(direction="up", comparator=None))


def test_status_codes_and_labels_come_from_the_metadata():
    meta = projection.metadata()
    assert tuple(meta["statuses"]) == verdicts.STATUSES
    assert [verdicts.status_label(s) for s in verdicts.STATUSES] == [
        "Đã đạt", "Không đạt", "Đúng tiến độ", "Cần đẩy nhanh", "Đi lùi", "Không đặt chỉ tiêu", "Thiếu dữ liệu"]
    assert [verdicts.status_label(s, "en") for s in verdicts.STATUSES] == [
        "Achieved", "Not achieved", "On track", "Needs acceleration", "Regressing", "No target set",
        "Insufficient data"]
    assert tuple(meta["statuses"]["needs_acceleration"]["grades"]) == verdicts.GRADES
    assert "not_met" not in meta  # a status like the others, no special case
    for key in ("on_track_probability", "regressing_confidence", "moderate_ratio", "min_points"):
        assert key in meta["verdict"]


def test_labels_in_another_language_need_no_second_assessment():
    frame = series(np.linspace(50, 54, 5))
    v = assess(frame, with_probability(0.3), targets())
    assert v["label"].iloc[0] == "Chậm xa tiến độ, cần đẩy nhanh mạnh"
    assert verdicts.verdict_labels(v, "en")[0] == "Far off track, needs strong acceleration"
    assert list(v.columns[:6]) == verdicts.STATUS_COLUMNS
    assert list(v.columns) == verdicts.STATUS_COLUMNS + verdicts.STATUS_EXTRA_COLUMNS
