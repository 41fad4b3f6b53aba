"""The plain-language reading of a verdict: the numbers it quotes, the pace clause and the label come from the
same verdict row (``verdicts.assess``), so the sentence and the status agree."""

from __future__ import annotations

import pandas as pd

from analysis import narrative, report
from analysis.indicators import registry

# CT07 (sanitation) in the 2025-2026 sample report: 98.9%, below the 100% target; the pace since 2021 would
# reach it around 2029, the projection gives it a 43% chance -> needs acceleration, grade on_pace
PROJECTED = dict(target_year=2030, target_value=100.0, comparator=">=", basis="projected", latest_value=98.9,
                 latest_year=2026, projected=99.2, lo80=92.1, hi80=100.0, probability=0.43,
                 label="Cần giữ vững nhịp độ", label_en="Pace must be kept up", status="needs_acceleration",
                 grade="on_pace", pace="ahead", baseline_year=2021, observed_change_per_year=0.21,
                 needed_change_per_year=0.126, year_reached_at_pace=2029, progress_ratio=1.28,
                 change_per_year_since_baseline=0.47, aarr_observed=float("nan"), aarr_required=float("nan"),
                 n_points=11)


def sentence(lang="en", iid="CT07", **change):
    return narrative.verdict_sentence({**PROJECTED, **change}, registry()[iid], lang)


def test_a_pace_that_reaches_the_target_in_time_says_so_beside_its_grade():
    en = sentence()
    assert "At the pace since 2021 (+0.21 pts a year) the target is reached around 2029; +0.13 pts a year is " \
           "needed. → Pace must be kept up." in en
    assert "chance of meeting the target of ≥ 100% is 43%" in en
    vi = sentence("vi", label="Cần giữ vững nhịp độ")
    assert "Với tốc độ từ năm 2021 (+0,21 điểm phần trăm mỗi năm), chỉ tiêu sẽ đạt vào khoảng năm 2029" in vi


def test_a_pace_too_slow_gives_its_share_of_the_pace_needed():
    en = sentence(pace="behind", grade="moderate", progress_ratio=0.62, label_en="Needs acceleration")
    assert "The pace since 2021 (+0.21 pts a year) is 62% of the pace needed (+0.13 pts a year). → Needs " \
           "acceleration." in en


def test_moving_away_is_said_with_the_change_since_the_baseline():
    en = sentence(status="regressing", grade="", pace="away", change_per_year_since_baseline=-0.4,
                  label_en="Regressing")
    assert "Since 2021 the values have moved away from the target (−0.40 pts a year). → Regressing." in en


def test_a_dropout_target_adds_the_average_annual_rate_of_reduction():
    en = sentence(iid="CT18B", target_value=0.05, comparator="<", latest_value=0.3, projected=0.2, lo80=0.1,
                  hi80=0.4, pace="behind", grade="strong", progress_ratio=0.3, observed_change_per_year=-0.01,
                  needed_change_per_year=-0.06, aarr_observed=8.0, aarr_required=30.0, label_en="Far off track")
    assert "average annual rate of reduction 8%, 30% needed. → Far off track" in en


def test_a_target_met_in_the_latest_year_and_no_target():
    kept = sentence(status="on_track", grade="", basis="latest", pace="kept", latest_value=100.0,
                    probability=0.9, label_en="On track")
    assert "this year already meets the target of ≥ 100% (100.0%)" in kept and "→ On track." in kept
    assert sentence(status="no_target", basis="", target_value=float("nan")) == "2030: the plan sets no target."


def test_every_verdict_of_the_sample_reads_without_error(sample_processed):
    """Every district verdict of every reporting year of the sample, in both languages: a sentence, a summary
    cell and a colour for each (a status or grade without a label or colour would fail here)."""
    from analysis.projections_by_year import load_projections

    _, verdicts = load_projections(sample_processed)
    d = verdicts[(verdicts["geo_level"] == "district") & (verdicts["sex"] == "total")]
    for row in d.to_dict("records"):
        spec = registry()[row["indicator_id"]]
        for lang in ("vi", "en"):
            assert narrative.verdict_sentence(row, spec, lang)
            assert report.verdict_text(row, spec, lang)
        assert report.verdict_key(row) in report.STATUS_STYLE
    keys = d.apply(lambda r: report.verdict_key(r.to_dict()), axis=1)
    assert keys.nunique() >= 5 and pd.notna(keys).all()
