"""The plain-language reading of a verdict: the numbers it quotes and the reason it gives must agree."""

from __future__ import annotations

import pytest

from analysis import narrative
from analysis.indicators import registry

# CT07 (sanitation) in the 2025-2026 sample report: below the 100% target, rising faster than needed on
# average, but with a 50% chance of reaching it -> needs acceleration
PROJECTED = dict(target_year=2030, target_value=100.0, comparator=">=", basis="projected", latest_value=98.9,
                 projected=99.4, lo80=95.4, hi80=100.0, probability=0.5, label="Cần đẩy nhanh",
                 label_en="Needs acceleration", status="needs_acceleration", observed_change_per_year=0.69,
                 needed_change_per_year=0.27, n_points=11)


def sentence(lang="en", iid="CT07", **change):
    return narrative.verdict_sentence({**PROJECTED, **change}, registry()[iid], lang)


def test_a_trend_fast_enough_but_uncertain_says_why_it_is_not_on_track():
    en = sentence()
    assert "+0.69 pts a year, faster than the +0.27 pts a year needed" in en
    assert "a chance below 80% does not count as on track → Needs acceleration." in en
    vi = sentence("vi")
    assert "+0,69 điểm phần trăm, nhanh hơn mức cần +0,27 điểm phần trăm" in vi and "dưới 80%" in vi


def test_a_trend_too_slow_is_read_as_too_slow():
    en = sentence(observed_change_per_year=0.10)
    assert "The rate changes by +0.10 pts a year against +0.27 pts a year needed → Needs acceleration." in en
    assert "uncertain" not in en


@pytest.mark.parametrize("observed, uncertain", [(-0.30, True), (-0.05, False)])
def test_for_a_falling_target_faster_means_a_steeper_fall(observed, uncertain):
    """Dropout must fall below 0.14%: a fall of 0.30 a year is faster than the 0.10 needed, 0.05 is not."""
    en = sentence(iid="CT18B", target_value=0.14, comparator="<", latest_value=0.76, projected=0.5, lo80=0.2,
                  hi80=1.2, probability=0.3, observed_change_per_year=observed, needed_change_per_year=-0.10)
    assert ("uncertain" in en) is uncertain


def test_on_track_keeps_the_plain_pace():
    en = sentence(status="on_track", probability=0.9, label="Đúng tiến độ", label_en="On track")
    assert "against +0.27 pts a year needed → On track." in en
