"""The verdict (analysis.verdicts): the cases of the plan, worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import projection, verdicts
from analysis.errors import AnalysisError
from analysis.projection import project
from analysis.verdicts import assess, probability_of


def series(values, start=2020, years=None, sid="s", lower=None, upper=None, **extra):
    years = list(range(start, start + len(values))) if years is None else years
    frame = pd.DataFrame({"series_id": sid, "year": years, "value": values, **extra})
    if lower is not None or upper is not None:
        frame["lower"], frame["upper"] = lower, upper
    return frame


# ---------------------------------------------------------------------------------------------------
# probability and verdict


def test_probability_reads_the_quantiles():
    levels = np.array(projection.LEVELS)
    q = pd.DataFrame([50 + 10 * stats.norm.ppf(levels)], columns=list(projection.LEVEL_COLUMNS))
    assert probability_of(q, [50], [">="])[0] == pytest.approx(0.5)
    assert probability_of(q, [50 + 10 * stats.norm.ppf(0.2)], [">="])[0] == pytest.approx(0.8)
    assert probability_of(q, [60], ["<"])[0] == pytest.approx(stats.norm.cdf(1), abs=1e-3)
    only_five = q[["value", "lo80", "hi80", "lo95", "hi95"]]  # a CSV without the extra quantiles
    assert probability_of(only_five, [60], ["<"])[0] == pytest.approx(stats.norm.cdf(1), abs=1e-3)


def verdict(frame, targets, until=2030, **kw):
    size = max(len(v) if isinstance(v, list) else 1 for v in targets.values())
    targets = pd.DataFrame(targets, index=range(size))
    return assess(frame, project(frame, until=until), targets, **kw).set_index("target_year")


def test_maintain_100_percent():
    frame = series([100.0] * 6, start=2021, lower=0, upper=100)
    v = verdict(frame, {"series_id": "s", "target_year": [2025, 2030], "target_value": 100, "comparator": ">="})
    assert v.loc[2025, "status"] == "achieved" and v.loc[2025, "basis"] == "observed" and v.loc[2025, "met"]
    assert v.loc[2030, "status"] == "on_track" and v.loc[2030, "probability"] > 0.95
    assert v.loc[2030, "label"] == "Đúng tiến độ"


def test_dropout_must_fall_strictly_below_a_small_bound():
    frame = series([0.2, 0.18, 0.15, 0.14, 0.12, 0.11], start=2021, lower=0, upper=100)
    targets = {"series_id": "s", "target_year": [2025, 2030], "target_value": [0.12, 0.05], "comparator": "<"}
    v = verdict(frame, targets)
    assert v.loc[2025, "basis"] == "observed" and not v.loc[2025, "met"]  # 0.12 is not below 0.12
    assert v.loc[2025, "status"] == "needs_acceleration" and v.loc[2025, "label"] == "Không đạt"
    assert v.loc[2030, "basis"] == "projected" and 0 <= v.loc[2030, "probability"] < 0.8
    assert v.loc[2030, "needed_change_per_year"] == pytest.approx((0.05 - 0.11) / 4)
    assert v.loc[2030, "observed_change_per_year"] < 0


def test_target_not_set_and_too_few_points():
    frame = pd.concat([series([80, 85, 90], start=2024, sid="s"), series([80, 85], start=2025, sid="two")])
    targets = {"series_id": ["s", "two"], "target_year": 2030, "target_value": [np.nan, 95], "direction": "increase"}
    v = assess(frame, project(frame, until=2030), pd.DataFrame(targets)).set_index("series_id")
    assert v.loc["s", "status"] == "insufficient_data" and "no target" in v.loc["s", "reason"]
    assert v.loc["two", "status"] == "insufficient_data" and v.loc["two", "label"] == "Thiếu dữ liệu"


def test_regressing_and_on_track():
    targets = {"series_id": "s", "target_year": 2030, "target_value": 90, "direction": "increase"}
    down = verdict(series([95, 93, 90, 88, 85, 83], start=2021, lower=0, upper=100), targets)
    assert down.loc[2030, "status"] == "regressing" and down.loc[2030, "label"] == "Đi ngược"
    up = verdict(series([95, 96, 96.5, 97, 97.4, 97.9], start=2021, lower=0, upper=100), targets)
    assert up.loc[2030, "status"] == "on_track"


def test_target_year_missed_while_rising_needs_acceleration():
    frame = series([80, 82, 84, 86, 88, 90], start=2021, lower=0, upper=100)
    v = verdict(frame, {"series_id": "s", "target_year": 2025, "target_value": 95, "direction": "increase"})
    assert v.loc[2025, "status"] == "needs_acceleration" and v.loc[2025, "met"] == False  # noqa: E712


def test_target_year_passed_without_observation():
    frame = series([80, 82, 84, 88], years=[2021, 2022, 2023, 2026])
    v = verdict(frame, {"series_id": "s", "target_year": 2025, "target_value": 85, "direction": "increase"})
    assert v.loc[2025, "status"] == "insufficient_data" and "without an observation" in v.loc[2025, "reason"]


def test_late_data_is_not_projected_into_a_reported_year():
    frame = series([80, 82, 84], start=2022)  # 2025 should have been reported (as_of 2026) but is missing
    targets = {"series_id": "s", "target_year": 2025, "target_value": 85, "direction": "increase"}
    assert verdict(frame, targets).loc[2025, "basis"] == "projected"
    late = verdict(frame, targets, as_of=2026)
    assert late.loc[2025, "status"] == "insufficient_data" and "without an observation" in late.loc[2025, "reason"]


def test_break_before_the_target_year():
    frame = series([90, 91, 92, 93, 70, 71], start=2021, series_break=[False] * 4 + [True, False])
    targets = {"series_id": "s", "target_year": [2024, 2030], "target_value": 92, "direction": "increase"}
    v = verdict(frame, targets)
    assert v.loc[2024, "status"] == "achieved"  # observed on the old territory
    assert v.loc[2030, "status"] == "insufficient_data"  # 2 points on the new one


def test_direction_and_comparator():
    targets = pd.DataFrame({"series_id": "s", "target_year": [2025, 2030], "target_value": [1, 2],
                            "direction": ["increase", "decrease"], "comparator": [None, "<"]})
    assert list(verdicts.normalise_targets(targets)["comparator"]) == [">=", "<"]
    with pytest.raises(AnalysisError):
        verdicts.normalise_targets(targets.assign(direction="up", comparator=None))


def test_status_codes_and_labels_come_from_the_metadata():
    meta = projection.metadata()
    assert tuple(meta["statuses"]) == verdicts.STATUSES
    assert [verdicts.status_label(s) for s in verdicts.STATUSES] == [
        "Đã đạt", "Đúng tiến độ", "Cần đẩy nhanh", "Đi ngược", "Thiếu dữ liệu"]
