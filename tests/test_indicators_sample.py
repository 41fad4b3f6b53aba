"""On the shipped sample, the stories the generator was given come out of the computation."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from analysis import clean, config, indicators, targets
from analysis.geography import Crosswalk

STORY = yaml.safe_load((config.PROJECT_ROOT / "src/analysis/sample_story.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def computed() -> pd.DataFrame:
    tables = clean.combine(clean.clean_all(config.RAW_DIR))
    out = indicators.compute(tables, Crosswalk.load())
    return targets.with_targets(out, targets.load_targets())


def district(out, iid, sex="total"):
    d = out[(out.indicator_id == iid) & (out.geo_level == "district") & (out.sex == sex)]
    return d.set_index("year")["value"]


@pytest.mark.parametrize("iid", list(STORY["indicators"]))
def test_district_values_follow_the_story(computed, iid):
    story = STORY["indicators"][iid]
    got = district(computed, iid)
    for year, want in story["values"].items():
        assert abs(got[int(year)] - want) <= story["tolerance_pp"], (iid, year, got[int(year)], want)


def test_covid_shock_in_2022(computed):
    for iid in ("CT17B", "CT18B"):
        d = district(computed, iid)
        assert d[2022] > d[2021] and d[2022] > d[2023]  # dropout spike
    assert district(computed, "CT16")[2022] < district(computed, "CT16")[2021]


def test_targets_met_and_missed_in_2025(computed):
    d = computed[(computed.geo_level == "district") & (computed.sex == "total") & (computed.year == 2025)
                 & (computed.cross_check_of == "")].set_index("indicator_id")["meets_2025"]
    assert d[["CT07", "CT15", "CT17A", "CT17B", "CT20B"]].all()
    assert not d[["CT16", "CT18A", "CT18B", "CT19", "CT20A"]].any()


def test_girls_do_better_on_completion_and_dropout(computed):
    for iid, better in (("CT18A", "higher"), ("CT18B", "lower"), ("CT17B", "lower")):
        f, m = district(computed, iid, "female"), district(computed, iid, "male")
        assert ((f > m) if better == "higher" else (f < m)).mean() >= 0.8, iid


def test_population_indicators_are_restated_on_the_plans_territory_in_2026(computed):
    """After the 1 July 2025 reform the new wards that reach outside former Bến Cát report their former units'
    parts: the district's population-based series go on over the plan's territory (no break), without the
    children of the units from outside; the new wards' own rows count everyone."""
    d = computed[(computed.geo_level == "district") & (computed.sex == "total")]
    assert not d["series_break"].any() and (d.loc[d.population_based, "territory_id"] == "BEN_CAT@2016").all()
    xa = clean.combine(clean.clean_all(config.RAW_DIR))["xa_phuong"]
    xa26 = xa[xa["year"] == 2026]
    inside = xa26["ma_don_vi_cu"].isna() | ~xa26["ma_don_vi_cu"].isin(["LONG_NGUYEN_BB", "HUNG_HOA", "AN_LAP", "TAN_AN",
                                                                        "HIEP_AN"])
    ct16 = d[(d.indicator_id == "CT16") & (d.year == 2026)].iloc[0]
    assert ct16.denominator == xa26.loc[inside, "tre_5_tuoi"].sum() < xa26["tre_5_tuoi"].sum()
    wards_2026 = computed[(computed.indicator_id == "CT16") & (computed.geo_level == "ward") & (computed.year == 2026)]
    assert wards_2026["geo_code"].nunique() == 7
    # Hòa Lợi today = Hòa Lợi + Tân Định: its history can be restated in today's wards; Mỹ Phước (split) cannot
    cur = computed[(computed.indicator_id == "CT16") & (computed.geo_level == "ward_current") & (computed.sex == "total")]
    assert set(cur["geo_code"]) == {"P_HOA_LOI", "P_THOI_HOA"}
    h = cur[(cur.geo_code == "P_HOA_LOI") & (cur.year == 2024)].iloc[0]
    parts = computed[(computed.indicator_id == "CT16") & (computed.geo_level == "ward") & (computed.sex == "total")
                     & (computed.year == 2024) & computed.geo_code.isin(["HOA_LOI", "TAN_DINH"])]
    assert h.numerator == parts.numerator.sum() and h.denominator == parts.denominator.sum()
