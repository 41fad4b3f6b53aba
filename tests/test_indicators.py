"""Indicators: known answers computed by hand on tiny workbooks, and properties of the aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import minimal_sheets, write_workbook
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis import clean, indicators
from analysis.__main__ import main
from analysis.geography import Crosswalk


def cleaned(raw_dir, years_sheets: dict[int, dict]) -> dict[str, pd.DataFrame]:
    """The workbooks written into ``raw_dir`` and cleaned: the tables ``compute`` reads."""
    for year, sheets in years_sheets.items():
        write_workbook(raw_dir / f"{year - 1}-{year}.xlsx", sheets)
    return clean.combine(clean.clean_all(raw_dir))


def build(raw_dir, years_sheets: dict[int, dict]) -> pd.DataFrame:
    return indicators.compute(cleaned(raw_dir, years_sheets), Crosswalk.load(raw_dir))


def pick(out, iid, year, level="district", code=None, sex="total"):
    m = (out["indicator_id"] == iid) & (out["year"] == year) & (out["geo_level"] == level) & (out["sex"] == sex)
    if code is not None:
        m &= out["geo_code"] == code
    rows = out[m]
    assert len(rows) == 1, rows
    return rows.iloc[0]


@pytest.fixture
def fixture_tables(raw_dir):
    """The cleaned tables of three years built to test one thing each (see the comments)."""
    y2019 = minimal_sheets(2019)
    # grade-1 enrolment four years before the 2023 completers (cohort proxy): 200 + 70 = 270
    y2019["PhoThong"][1][4] = 200
    y2019["PhoThong"][2][4] = 70
    y2023 = minimal_sheets(2023)
    # a ward whose children with disabilities are zero: denominator zero
    y2023["XaPhuong"][2][13:17] = [0, 0, 0, 0]
    y2023["XaPhuong"][3][13:17] = [20, 8, 16, 7]
    y2024 = minimal_sheets(2024)
    del y2024["MamNon"][3]  # MN02 did not report in 2024
    y2024["MamNon"][-1] = ["Tổng cộng", 200, 95, 196, 94]
    return cleaned(raw_dir, {2019: y2019, 2023: y2023, 2024: y2024})


@pytest.fixture
def fixture_out(fixture_tables, raw_dir):
    return indicators.compute(fixture_tables, Crosswalk.load(raw_dir))


def test_ratio_sums_counts_with_sex_and_gpi(fixture_out):
    r = pick(fixture_out, "CT15", 2023)
    assert (r.numerator, r.denominator) == (225, 230)  # 196 + 29 over 200 + 30
    assert r.value == pytest.approx(225 / 230 * 100)
    f, m = pick(fixture_out, "CT15", 2023, sex="female"), pick(fixture_out, "CT15", 2023, sex="male")
    assert (f.numerator, f.denominator, m.numerator, m.denominator) == (108, 109, 117, 121)
    assert r.gpi == pytest.approx((108 / 109) / (117 / 121))


def test_school_reporting_only_some_years(fixture_out):
    r = pick(fixture_out, "CT15", 2024)
    assert (r.numerator, r.denominator, r.n_units, r.n_reporting) == (196, 200, 2, 1)
    assert r.reporting_share == 50.0


def test_th_thcs_school_counts_in_both_levels_and_once_as_a_school(fixture_out):
    primary = pick(fixture_out, "CT17B", 2023)
    assert (primary.numerator, primary.denominator) == (3, 1650)  # TH01 3/1250 + LC01 0/400
    lower = pick(fixture_out, "CT18B", 2023)
    assert (lower.numerator, lower.denominator) == (6, 600)
    schools = pick(fixture_out, "CT19", 2023)  # TH01 and LC01, preschools excluded
    assert (schools.numerator, schools.denominator) == (2, 2)
    by_type = pick(fixture_out, "CT17B", 2023, level="school_level", code="th_thcs")
    assert (by_type.numerator, by_type.denominator) == (0, 400)


def test_institution_share_hand_checked(fixture_out):
    r = pick(fixture_out, "CT20A", 2023)  # MN01 x, MN02 blank, TH01 0, LC01 Có
    assert (r.numerator, r.denominator) == (2, 4)
    own = pick(fixture_out, "CT20A", 2023, level="ownership", code="ngoai_cong_lap")
    assert (own.numerator, own.denominator, own.geo_name) == (0, 1, "Ngoài công lập")
    # Wilson 95% for 0/1 by hand: centre = half = (z²/2)/(1+z²), upper = z²/(1+z²) = 3.841459/4.841459 = 0.793451
    assert (own.ci_low, round(own.ci_high, 3)) == (0.0, 79.345)


def test_zero_denominator_ward(fixture_out):
    r = pick(fixture_out, "CT20B", 2023, level="ward", code="THOI_HOA")
    assert r.denominator == 0 and np.isnan(r.value) and r.flag_zero_denominator and "denominator_zero" in r["flags"]
    d = pick(fixture_out, "CT20B", 2023)
    assert (d.numerator, d.denominator, d.value) == (16, 20, 80.0)


def test_cohort_proxy_above_100(fixture_out):
    r = pick(fixture_out, "CT17A_COHORT", 2023)
    assert (r.numerator, r.denominator) == (315, 270)  # 238 + 77 completers in 2023 over 200 + 70 grade 1 in 2019
    assert r.value == pytest.approx(116.6667, abs=1e-4) and r.flag_above_100 and np.isnan(r.ci_low)
    assert r.cross_check_of == "CT17A"
    # no grade-1 data four years before 2024: no cohort value rather than a guess
    assert not ((fixture_out["indicator_id"] == "CT17A_COHORT") & (fixture_out["year"] == 2024)).any()


def test_excluded_values_are_flagged(raw_dir):
    y = minimal_sheets(2023)
    y["PhoThong"][1][8] = "ba"  # TH01 dropouts unreadable: excluded by cleaning
    out = build(raw_dir, {2023: y})
    r = pick(out, "CT17B", 2023)
    assert (r.numerator, r.denominator, r.n_excluded) == (0, 400, 1) and r.flag_excluded_values


def test_targets_made_with_the_table_equal_with_targets(fixture_tables, fixture_out, raw_dir):
    """compute(targets=...) makes the target columns itself (with the text columns); the same as adding them
    afterwards, for every row, including rows of indicators without a target."""
    targets = indicators.load_targets(raw_dir)
    at_once = indicators.compute(fixture_tables, Crosswalk.load(raw_dir), targets=targets)
    assert [c for c in at_once.columns if c.startswith(("target_", "gap_", "needed_", "meets_"))]
    pd.testing.assert_frame_equal(at_once, indicators.with_targets(fixture_out, targets), check_exact=True)


def test_targets_gap_and_needed_change(fixture_out, raw_dir):
    out = indicators.with_targets(fixture_out, indicators.load_targets(raw_dir))
    r = out[(out.indicator_id == "CT20B") & (out.year == 2023) & (out.geo_level == "district") & (out.sex == "total")].iloc[0]
    assert (r.target_2025, r.target_2030) == (80.0, 90.0)
    assert r.gap_2025 == 0.0 and r.meets_2025 and not r.meets_2030
    assert r.needed_per_year_2030 == pytest.approx(10 / 7)
    d = out[(out.indicator_id == "CT17B") & (out.year == 2023) & (out.geo_level == "district") & (out.sex == "total")].iloc[0]
    assert not d.meets_2025  # 0.18% is not below 0.12%
    assert d.needed_per_year_2025 == pytest.approx((0.12 - 3 / 1650 * 100) / 2)


def test_targets_of_rows_in_any_order(fixture_out, raw_dir):
    """The target columns are made per indicator: on the sorted table by slices, on any other order by row
    numbers; a shuffled table (with a row whose indicator has no id) gets the same values row for row."""
    targets = indicators.load_targets(raw_dir)
    shuffled = fixture_out.sample(frac=1, random_state=7)
    shuffled.loc[shuffled.index[0], "indicator_id"] = None
    got = indicators.with_targets(shuffled, targets)
    expected = indicators.with_targets(fixture_out, targets).loc[shuffled.index]
    added = [c for c in got.columns if c.startswith(("target_", "gap_", "needed_", "meets_"))]
    first, rest = got.index[0], got.index[1:]
    pd.testing.assert_frame_equal(got.loc[rest, added], expected.loc[rest, added], check_exact=True)
    assert got.loc[first, added].isna().all()  # no indicator: no target, gap, change or verdict
    assert got.loc[rest, "meets_2025"].notna().any() and got.loc[rest, "meets_2025"].isna().any()


def test_geography_levels_and_names(fixture_out):
    levels = set(fixture_out["geo_level"])
    assert levels == {"district", "ward", "ward_current", "school_level", "ownership"}
    d = pick(fixture_out, "CT07", 2023)
    assert (d.geo_code, d.geo_name) == ("BEN_CAT", "Thị xã Bến Cát")
    # Mỹ Phước is split in 2025: no today's-ward series; Thới Hòa is unchanged
    cur = fixture_out[fixture_out["geo_level"] == "ward_current"]
    assert set(cur["geo_code"]) == {"P_THOI_HOA"}


def test_population_series_break_across_the_2025_merger(raw_dir):
    y25, y26 = minimal_sheets(2025), minimal_sheets(2026)
    for sheet in (y26["Truong"], y26["XaPhuong"]):
        for row in sheet:
            for j, v in enumerate(row):
                if v in ("Mỹ Phước", "P. Mỹ Phước"):
                    row[j] = "Bến Cát"
    out = build(raw_dir, {2025: y25, 2026: y26})
    pop = pick(out, "CT16", 2026)
    assert pop.series_break and pop.territory_id == "BEN_CAT@2026" and pop.geo_name.startswith("Địa bàn Bến Cát")
    assert not pick(out, "CT16", 2025).series_break
    school = pick(out, "CT15", 2026)  # institution-based: continues through stable codes
    assert not school.series_break and school.territory_id == "BEN_CAT"
    assert pick(out, "CT15", 2025).geo_code == school.geo_code == "BEN_CAT"


def test_action_lists(fixture_tables, fixture_out, raw_dir):
    t = fixture_tables["truong"]
    lack = indicators.institutions_lacking(t, 2023)
    assert lack[["indicator_id", "ma_truong", "status"]].values.tolist() == [
        ["CT20A", "MN02", "lacking"], ["CT20A", "TH01", "lacking"]]
    targets = indicators.load_targets(raw_dir)
    far = indicators.wards_furthest(indicators.with_targets(fixture_out, targets), targets, 2023, 2025)
    ct18a = far[far["indicator_id"] == "CT18A"]
    assert ct18a["geo_code"].tolist() == ["MY_PHUOC"]  # 86.8% < 88%; Thới Hòa 89.5% meets it


def test_cli_indicators(raw_dir, tmp_path, capsys):
    write_workbook(raw_dir / "2022-2023.xlsx", minimal_sheets(2023))
    out = tmp_path / "processed"
    assert main(["clean", "--raw-dir", str(raw_dir), "--processed-dir", str(out)]) == 0
    assert main(["indicators", "--raw-dir", str(raw_dir), "--processed-dir", str(out)]) == 0
    csv = pd.read_csv(out / "indicators.csv", encoding="utf-8-sig")
    assert list(csv.columns[:9]) == ["indicator_id", "year", "geo_level", "geo_code", "geo_name", "sex",
                                     "numerator", "denominator", "value"]
    assert set(csv["sex"]) == {"total", "female", "male"}
    assert set(csv["indicator_id"]) >= {"CT07", "CT15", "CT16", "CT17A", "CT17B", "CT18A", "CT18B", "CT19",
                                        "CT20A", "CT20B"}


def test_cli_indicators_without_cleaned_data(tmp_path, capsys):
    assert main(["indicators", "--processed-dir", str(tmp_path)]) == 2
    assert "python -m analysis clean" in capsys.readouterr().err


def test_registry_entries_are_complete():
    reg = indicators.registry()
    assert set(indicators.main_indicators()) == {"CT07", "CT15", "CT16", "CT17A", "CT17B", "CT18A", "CT18B",
                                                 "CT19", "CT20A", "CT20B"}
    assert {i.cross_check_of for i in reg.values()} == {None, "CT17A", "CT18A"}


# --- properties ------------------------------------------------------------------------------------------

WARDS = ["Mỹ Phước", "Chánh Phú Hòa", "Thới Hòa", "Hòa Lợi", "Tân Định", "An Điền", "An Tây", "Phú An"]


@st.composite
def ward_counts(draw):
    rows = []
    for name in draw(st.lists(st.sampled_from(WARDS), min_size=1, max_size=8, unique=True)):
        den = draw(st.integers(0, 5000))
        num = draw(st.integers(0, den))
        rows.append((name, num, den))
    return rows


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ward_counts())
def test_district_is_ratio_of_sums_over_any_ward_partition(raw_dir, rows):
    sheets = minimal_sheets(2023)
    header = sheets["XaPhuong"][0]
    # columns: ward, 5-year-olds (d), girls, in kindergarten (n), girls, then six more pairs of counts
    sheets["XaPhuong"] = [header] + [[w, d, 0, n, 0, *([10, 0] * 6)] for w, n, d in rows]
    for f in raw_dir.glob("*.xlsx"):
        f.unlink()
    out = build(raw_dir, {2023: sheets})
    d = pick(out, "CT16", 2023)
    assert d.numerator == sum(n for _, n, _ in rows) and d.denominator == sum(x for _, _, x in rows)
    wards = out[(out.indicator_id == "CT16") & (out.geo_level == "ward") & (out.sex == "total")]
    assert wards["numerator"].sum() == d.numerator and wards["denominator"].sum() == d.denominator
    v = wards["value"].dropna()
    assert ((v >= 0) & (v <= 100)).all()
    ok = wards["denominator"] > 0
    assert ((wards.loc[ok, "ci_low"] <= wards.loc[ok, "value"] + 1e-9)
            & (wards.loc[ok, "value"] <= wards.loc[ok, "ci_high"] + 1e-9)).all()


_COUNT = st.one_of(st.none(), st.integers(0, 500))  # None: missing, or excluded by cleaning


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), _COUNT, _COUNT, _COUNT, _COUNT), min_size=1, max_size=30))
@example([(0, True, 3, 3, 0, 0)])  # odd totals: the girls' half rounded down leaves the boys a proportion
def test_breakdown_partition_property(rows):
    """Through the path the pipeline takes (units -> per-sex columns -> one block per breakdown): for each sex,
    the groups' numerators, denominators, units, reporting and excluded units add up to the one-group total;
    every group value lies in [0, 100] and inside its Wilson interval; the groups are the units' groups."""
    def counts(pairs):  # (part, whole), each missing on its own (NaN); part <= whole where both are there
        part = [np.nan if a is None else float(a if b is None else min(a, b)) for a, b in pairs]
        whole = [np.nan if b is None else float(b if a is None else max(a, b)) for a, b in pairs]
        return np.array(part), np.array(whole)

    group = np.array([g for g, *_ in rows])
    num, den = counts([(a, b) for _, _, a, b, _, _ in rows])
    # girls' counts: half of each total rounded down, or missing; so the boys' (the rest) are proportions too
    num_f = np.where(np.isnan([np.nan if c is None else c for *_, c, _ in rows]), np.nan, np.floor(num / 2))
    den_f = np.where(np.isnan([np.nan if d is None else d for *_, d in rows]), np.nan, np.floor(den / 2))
    units = indicators._Units(year=np.zeros(len(rows), np.int64), ward=group, school_type=None, ownership=None,
                              num=num, den=den, num_f=num_f, den_f=den_f,
                              present=np.array([p for _, p, *_ in rows]))
    per_unit = indicators._sex_columns(units, indicators.SEXES)
    total = indicators._ratio_block(units.year, per_unit, np.zeros(len(rows), np.int64), 1, 1, indicators.SEXES)
    parts = indicators._ratio_block(units.year, per_unit, group, 4, 1, indicators.SEXES)
    assert sorted(set(parts["code"].tolist())) == sorted(set(group.tolist()))
    for k, sex in enumerate(indicators.SEXES):  # a group without girls' counts has no girls' or boys' row
        mine, all_ = parts["sex"] == k, total["sex"] == k
        for field in ("numerator", "denominator", "n_reporting", *(("n_excluded",) if sex == "total" else ())):
            assert parts[field][mine].sum() == total[field][all_].sum(), (sex, field)
    assert parts["n_units"][parts["sex"] == 0].sum() == len(rows) == total["n_units"][0]
    reporting = units.present & ~np.isnan(num) & ~np.isnan(den)
    assert total["n_reporting"][0] == reporting.sum()
    assert total["n_excluded"][0] == (units.present & ~reporting).sum()  # present, counts missing
    assert total["numerator"][0] == num[reporting].sum() and total["denominator"][0] == den[reporting].sum()
    num_, den_ = parts["numerator"], parts["denominator"]
    ok = den_ > 0
    values = num_[ok] / den_[ok] * 100
    assert ((values >= 0) & (values <= 100)).all()
    lo, hi = indicators.wilson_interval(num_, den_)
    assert (lo[ok] <= values + 1e-9).all() and (values <= hi[ok] + 1e-9).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-1, 4), st.integers(0, 9)), min_size=1, max_size=40),
       st.booleans())
def test_group_sums_match_pandas(rows, one_row_per_group):
    """_group_sums (bincount, or the rows themselves when each group already has one row, in order) gives the
    sums pandas gives, key -1 left out; groups sorted by year then key."""
    if one_row_per_group:
        rows = sorted({(y, k): (y, k, v) for y, k, v in rows}.values())
    year = np.array([y for y, _, _ in rows])
    key = np.array([k for _, k, _ in rows])
    value = np.array([float(v) for _, _, v in rows])
    g_year, g_key, sums = indicators._group_sums(year, 3, key, 5, {"v": value, "n": np.ones(len(rows))})
    frame = pd.DataFrame({"year": year, "key": key, "v": value, "n": 1.0})
    expected = frame[frame["key"] >= 0].groupby(["year", "key"], sort=True)[["v", "n"]].sum()
    assert list(zip(g_year.tolist(), g_key.tolist())) == expected.index.tolist()
    assert sums["v"].tolist() == expected["v"].astype(int).tolist()
    assert sums["n"].tolist() == expected["n"].astype(int).tolist()


def test_combination_sums_give_each_breakdown():
    """Summing by combinations of two codes (each -1 allowed), then by one code, is summing by that code."""
    year = np.array([0, 0, 0, 1, 1, 1, 1])
    first = np.array([0, 1, 0, -1, 2, 2, 0])
    second = np.array([1, 1, -1, 0, 0, 1, 1])
    value = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    g_year, (g_first, g_second), sums = indicators._combination_sums(year, 2, [first, second], [3, 2], {"v": value})
    for codes, got in ((first, g_first), (second, g_second)):
        direct = indicators._group_sums(year, 2, codes, 3, {"v": value})
        again = indicators._group_sums(g_year, 2, got, 3, sums)
        assert [a.tolist() for a in direct[:2]] == [a.tolist() for a in again[:2]]
        assert direct[2]["v"].tolist() == again[2]["v"].tolist()
    assert sorted(zip(g_year.tolist(), g_first.tolist(), g_second.tolist())) == [
        (0, 0, -1), (0, 0, 1), (0, 1, 1), (1, -1, 0), (1, 0, 1), (1, 2, 0), (1, 2, 1)]


def test_wards_by_year_dedupes_across_tables_and_skips_missing():
    tables = {"truong": pd.DataFrame({"year": [2024, 2024, 2025, 2025], "ma_xa_phuong": ["B", "A", "B", None]}),
              "xa_phuong": pd.DataFrame({"year": [2024, 2026], "ma_xa_phuong": ["C", "A"]})}
    found = indicators._wards_by_year(tables)
    assert {y: sorted(w) for y, w in found.items()} == {2024: ["A", "B", "C"], 2025: ["B"], 2026: ["A"]}
    assert indicators._wards_by_year({"truong": tables["truong"].iloc[:0]}) == {}


def test_a_main_indicator_above_its_total_stops_the_run(fixture_tables, raw_dir):
    """The sanity check at the end of ``compute``: a main indicator's sum above its denominator (cleaning
    rejects such a row, so only a table changed after cleaning can have one) stops the run; a cross-check
    (a cohort proxy may pass 100%) does not."""
    tables = fixture_tables
    xa = tables["xa_phuong"].copy()
    xa.loc[xa.index[0], "tre_5_tuoi_hoc_mg"] = xa.loc[xa.index[0], "tre_5_tuoi"] + 1  # CT16 above 100%
    with pytest.raises(AssertionError, match="numerator > denominator"):
        indicators.compute({**tables, "xa_phuong": xa}, Crosswalk.load(raw_dir))
    pt = tables["pho_thong"].copy()
    pt["hs_hoan_thanh"] = pt["hs_lop_cuoi_cap"] + 1  # the completion cross-checks above 100%
    out = indicators.compute({**tables, "pho_thong": pt}, Crosswalk.load(raw_dir))
    assert (out.loc[out.cross_check_of != "", "value"] > 100).any()
