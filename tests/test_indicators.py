"""Indicators: known answers computed by hand on tiny workbooks, and properties of the aggregation."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import minimal_sheets, write_workbook
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis import actions, clean, config, indicators, targets
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
    """CT19 and CT20A count the same institutions, the plan's "trường học": primary and lower-secondary
    schools (TH01, LC01); the preschools (MN01, MN02) are shown apart (CT19_MN, CT20A_MN)."""
    r = pick(fixture_out, "CT20A", 2023)  # TH01 0, LC01 Có
    assert (r.numerator, r.denominator) == (1, 2)
    psych = pick(fixture_out, "CT19", 2023)  # TH01 1, LC01 Có
    assert (psych.numerator, psych.denominator) == (2, 2)
    mn = pick(fixture_out, "CT20A_MN", 2023)  # MN01 x, MN02 blank
    assert (mn.numerator, mn.denominator, mn.cross_check_of) == (1, 2, "CT20A")
    assert (pick(fixture_out, "CT19_MN", 2023).numerator, pick(fixture_out, "CT19_MN", 2023).denominator) == (0, 2)
    types = fixture_out[(fixture_out.indicator_id.isin(["CT19", "CT20A"])) & (fixture_out.geo_level == "school_level")]
    assert set(types["geo_code"]) == {"tieu_hoc", "th_thcs"}
    own = pick(fixture_out, "CT20A_MN", 2023, level="ownership", code="ngoai_cong_lap")
    assert (own.numerator, own.denominator, own.geo_name) == (0, 1, "Ngoài công lập")


def test_zero_denominator_ward(fixture_out):
    r = pick(fixture_out, "CT20B", 2023, level="ward", code="THOI_HOA")
    assert r.denominator == 0 and np.isnan(r.value) and r.flag_zero_denominator and "denominator_zero" in r["flags"]
    d = pick(fixture_out, "CT20B", 2023)
    assert (d.numerator, d.denominator, d.value) == (16, 20, 80.0)


def test_cohort_proxy_above_100(fixture_out):
    r = pick(fixture_out, "CT17A_COHORT", 2023)
    assert (r.numerator, r.denominator) == (315, 270)  # 238 + 77 completers in 2023 over 200 + 70 grade 1 in 2019
    assert r.value == pytest.approx(116.6667, abs=1e-4) and r.flag_above_100
    assert r.cross_check_of == "CT17A"
    # no grade-1 data four years before 2024: no cohort value rather than a guess
    assert not ((fixture_out["indicator_id"] == "CT17A_COHORT") & (fixture_out["year"] == 2024)).any()


def test_excluded_values_are_flagged(raw_dir):
    y = minimal_sheets(2023)
    y["PhoThong"][1][8] = "ba"  # TH01 dropouts unreadable: excluded by cleaning
    out = build(raw_dir, {2023: y})
    r = pick(out, "CT17B", 2023)
    assert (r.numerator, r.denominator, r.n_excluded) == (0, 400, 1) and r.flag_excluded_values


def test_boys_counts_out_of_order_are_excluded_not_used(raw_dir):
    """Issue 20's case by hand: Mỹ Phước's boys 11-14 (all minus girls) would be 2950 - 1438 = 1512 completers
    of 3000 - 1507 = 1493 children. Cleaning logs it; the boys of that ward are left out of the boys' sums and
    counted as excluded (flagged), the totals and the girls (entered, each within its total) are kept."""
    y = minimal_sheets(2023)
    y["XaPhuong"][1][5:9] = [3000, 1507, 2950, 1438]
    y["XaPhuong"][3][5:9] = [5000, 2497, 4910, 2413]
    out = build(raw_dir, {2023: y})
    total, girls, boys = (pick(out, "CT17A", 2023, sex=s) for s in indicators.SEXES)
    assert (total.numerator, total.denominator, total.n_excluded) == (4910, 5000, 0)
    assert (girls.numerator, girls.denominator, girls.n_excluded) == (1438 + 975, 1507 + 990, 0)
    # boys: Thới Hòa only, 1960 - 975 = 985 of 2000 - 990 = 1010
    assert (boys.numerator, boys.denominator, boys.n_reporting, boys.n_excluded) == (985, 1010, 1, 1)
    assert boys.flag_excluded_values and not girls.flag_excluded_values
    ward = pick(out, "CT17A", 2023, level="ward", code="MY_PHUOC", sex="male")
    assert (ward.numerator, ward.denominator, ward.n_excluded) == (0, 0, 1) and np.isnan(ward.value)
    assert ward.flag_excluded_values and np.isnan(pick(out, "CT17A", 2023, level="ward", code="MY_PHUOC").gpi)
    # the other indicators of the row are untouched: CT16's boys in Mỹ Phước are 990 - 476 = 514 of 520
    b16 = pick(out, "CT16", 2023, level="ward", code="MY_PHUOC", sex="male")
    assert (b16.numerator, b16.denominator, b16.n_excluded) == (514, 520, 0)


def test_targets_made_with_the_table_equal_with_targets(fixture_tables, fixture_out, raw_dir):
    """compute(targets=...) makes the target columns itself (with the text columns); the same as adding them
    afterwards, for every row, including rows of indicators without a target."""
    plan = targets.load_targets(raw_dir)
    at_once = indicators.compute(fixture_tables, Crosswalk.load(raw_dir), targets=plan)
    assert [c for c in at_once.columns if c.startswith(("target_", "gap_", "needed_", "meets_"))]
    pd.testing.assert_frame_equal(at_once, targets.with_targets(fixture_out, plan), check_exact=True)


def test_targets_gap_and_needed_change(fixture_out, raw_dir):
    out = targets.with_targets(fixture_out, targets.load_targets(raw_dir))
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
    plan = targets.load_targets(raw_dir)
    shuffled = fixture_out.sample(frac=1, random_state=7)
    shuffled.loc[shuffled.index[0], "indicator_id"] = None
    got = targets.with_targets(shuffled, plan)
    expected = targets.with_targets(fixture_out, plan).loc[shuffled.index]
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


def reformed_2026(parts: bool) -> dict:
    """The minimal workbook in school year 2025-2026, after the 1 July 2025 reform: the schools of Mỹ Phước are
    in the new Bến Cát ward (wholly inside the plan's territory), and Mỹ Phước's survey row goes to the new
    Long Nguyên ward, which also took in Long Nguyên commune of Bàu Bàng. With ``parts``, Long Nguyên reports
    each former unit on its own row (column Đơn vị cũ); without, one row for the whole ward."""
    y26 = minimal_sheets(2026)
    for row in y26["Truong"]:
        for j, v in enumerate(row):
            if v in ("Mỹ Phước", "P. Mỹ Phước"):
                row[j] = "Bến Cát"
    header, my_phuoc, thoi_hoa, _total = y26["XaPhuong"]
    outside = ["Long Nguyên", 300, 150, 270, 130, *([100, 50] * 6)]  # 270 of 300 5-year-olds in kindergarten
    if parts:
        rows = [[header[0], "Đơn vị cũ", *header[1:]], ["Long Nguyên", "Mỹ Phước", *my_phuoc[1:]],
                [outside[0], "Long Nguyên", *outside[1:]], [thoi_hoa[0], None, *thoi_hoa[1:]]]
    else:
        whole = ["Long Nguyên", *[a + b for a, b in zip(my_phuoc[1:], outside[1:])]]
        rows = [header, whole, thoi_hoa]
    y26["XaPhuong"] = rows
    return y26


@pytest.mark.parametrize("parts", [False, True])
def test_population_series_across_the_2025_reform(raw_dir, parts):
    """A new ward that reaches outside the plan's territory breaks the district's population series, unless
    the survey gives its former units' parts: then the territory is restated on the former wards (the part from
    outside counts for its new ward only) and the series goes on. Institution-based series go on either way."""
    out = build(raw_dir, {2025: minimal_sheets(2025), 2026: reformed_2026(parts)})
    pop = pick(out, "CT16", 2026)
    assert not pick(out, "CT16", 2025).series_break and pop.geo_name.startswith("Địa bàn Bến Cát")
    if parts:  # Mỹ Phước's part (990 of 1000) and Thới Hòa (495 of 500), as in 2025; not Long Nguyên commune
        assert not pop.series_break and pop.territory_id == "BEN_CAT@2025"
        assert (pop.numerator, pop.denominator) == (990 + 495, 1000 + 500)
    else:  # the whole new ward, with Long Nguyên commune: another territory
        assert pop.series_break and pop.territory_id == "BEN_CAT@2026"
        assert (pop.numerator, pop.denominator) == (990 + 270 + 495, 1000 + 300 + 500)
    ward = pick(out, "CT16", 2026, level="ward", code="P_LONG_NGUYEN")  # the ward counts both parts
    assert (ward.numerator, ward.denominator) == (990 + 270, 1000 + 300)
    school = pick(out, "CT15", 2026)  # institution-based: continues through stable codes
    assert not school.series_break and school.territory_id == "BEN_CAT"
    assert pick(out, "CT15", 2025).geo_code == school.geo_code == "BEN_CAT"


def test_a_former_unit_that_did_not_go_into_the_ward_is_logged(raw_dir):
    y26 = reformed_2026(parts=True)
    y26["XaPhuong"][2][1] = "Tân Định"  # went into Hòa Lợi, not into Long Nguyên
    tables = cleaned(raw_dir, {2026: y26})
    q = tables["quality"]
    bad = q[q["code"] == "unknown_former_unit"]
    assert len(bad) == 1 and bad.iloc[0]["severity"] == "warning" and "Tân Định" in bad.iloc[0]["message_vi"]
    assert bad.iloc[0]["cell"] == "B3"  # file, sheet, row and column of the cell
    xa = tables["xa_phuong"]
    assert xa["ma_don_vi_cu"].fillna("").tolist() == ["MY_PHUOC", "", ""]


def test_action_lists(fixture_tables, fixture_out, raw_dir):
    t = fixture_tables["truong"]
    lack = actions.institutions_lacking(t, 2023)
    assert lack[["indicator_id", "ma_truong", "status"]].values.tolist() == [["CT20A", "TH01", "lacking"]]
    plan = targets.load_targets(raw_dir)
    far = actions.wards_furthest(targets.with_targets(fixture_out, plan), plan, 2023, 2025)
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
    assert {i.cross_check_of for i in reg.values()} == {None, "CT17A", "CT18A", "CT19", "CT20A"}
    scope = {iid: reg[iid].compute["institutions"] for iid in ("CT19", "CT20A", "CT19_MN", "CT20A_MN")}
    assert scope == {"CT19": "primary_lower_secondary", "CT20A": "primary_lower_secondary",
                     "CT19_MN": "preschool", "CT20A_MN": "preschool"}  # the plan's "trường học", preschools apart


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


@pytest.fixture(scope="module")
def one_year(tmp_path_factory):
    """The minimal workbook of 2023, cleaned once for the property tests below, and its raw folder."""
    raw = tmp_path_factory.mktemp("raw")
    for name in (config.CROSSWALK_FILE, config.TARGETS_FILE):
        shutil.copy(config.RAW_DIR / name, raw / name)
    return cleaned(raw, {2023: minimal_sheets(2023)}), raw


_COUNT = st.one_of(st.none(), st.integers(0, 500))  # None: missing, or excluded by cleaning
_WARDS = ("MY_PHUOC", "THOI_HOA", "HOA_LOI")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_WARDS), st.booleans(), st.booleans(), _COUNT, _COUNT, st.booleans()),
                min_size=1, max_size=12))
@example([("MY_PHUOC", True, True, 3, 3, True)])  # odd totals: the girls' half rounded down leaves the boys a proportion
def test_breakdown_partition_property(one_year, rows):
    """compute() on primary schools with random dropout counts (missing ones, schools that did not report,
    public and private, several wards): for each sex, the wards', types' and ownerships' numerators,
    denominators and units add up to the district's; the district counts every expected school once and
    sums only valid counts; every value lies in [0, 100]."""
    tables, raw = one_year
    school = tables["truong"][tables["truong"]["ma_truong"] == "TH01"]
    level = tables["pho_thong"][tables["pho_thong"]["ma_truong"] == "TH01"]
    truong, pho_thong = [tables["truong"][tables["truong"]["ma_truong"] != "TH01"]], []
    expected = {"units": 0, "reporting": 0, "num": 0, "den": 0}
    for k, (ward, public, reports, a, b, girls) in enumerate(rows):
        code = f"T{k:02d}"
        truong.append(school.assign(ma_truong=code, ma_xa_phuong=ward, loai_hinh="cong_lap" if public else "tu_thuc"))
        if reports:
            num, den = (None if a is None else min(a, b if b is not None else a)), b  # dropouts <= enrolment
            pho_thong.append(level.assign(ma_truong=code, hs_bo_hoc=num, hs_dau_nam=den,
                                          hs_bo_hoc_nu=None if num is None or not girls else num // 2,
                                          hs_dau_nam_nu=None if den is None or not girls else den // 2))
            if num is not None and den is not None:
                expected.update(reporting=expected["reporting"] + 1, num=expected["num"] + num,
                                den=expected["den"] + den)
    others = tables["pho_thong"][tables["pho_thong"]["ma_truong"] != "TH01"]
    frame = pd.concat([others, *pho_thong], ignore_index=True).astype(
        {c: "Int64" for c in ("hs_bo_hoc", "hs_dau_nam", "hs_bo_hoc_nu", "hs_dau_nam_nu")})
    out = indicators.compute({**tables, "truong": pd.concat(truong, ignore_index=True), "pho_thong": frame},
                             Crosswalk.load(raw), indicators={"CT17B": indicators.registry()["CT17B"]})
    lc01 = others[others["cap_hoc"] == "tieu_hoc"].iloc[0]  # the TH&THCS school's primary level stays in
    district = pick(out, "CT17B", 2023)
    assert district.n_units == len(rows) + 1 and district.n_reporting == expected["reporting"] + 1
    assert district.numerator == expected["num"] + lc01["hs_bo_hoc"]
    assert district.denominator == expected["den"] + lc01["hs_dau_nam"]
    assert district.n_excluded == sum(r[2] for r in rows) - expected["reporting"]  # reported, counts missing
    for sex in indicators.SEXES:
        top = out[(out.geo_level == "district") & (out.sex == sex)]
        for lv in ("ward", "school_level", "ownership"):
            part = out[(out.geo_level == lv) & (out.sex == sex)]
            for field in ("numerator", "denominator", "n_reporting"):
                assert part[field].sum() == top[field].sum(), (sex, lv, field)
            if sex == "total":
                assert part["n_units"].sum() == top["n_units"].sum() and part["n_excluded"].sum() == top["n_excluded"].sum()
    ok = out["denominator"] > 0
    v = out.loc[ok, "value"]
    assert ((v >= 0) & (v <= 100)).all()
    assert out.loc[~ok, "value"].isna().all() and out.loc[~ok, "flag_zero_denominator"].all()


def test_census_counts_carry_no_sampling_interval(fixture_out):
    """The counts are administrative totals of every school and child, not a sample: the table has no
    sampling interval; a value resting on few units says so with its counts and its small-denominator flag."""
    assert not [c for c in fixture_out.columns if c.startswith("ci_")]
    r = pick(fixture_out, "CT20B", 2023, level="ward", code="MY_PHUOC")
    assert (r.numerator, r.denominator, r.flag_small_denominator, r["flags"]) == (16, 20, True, "small_denominator")


def test_a_main_indicator_above_its_total_is_flagged_not_a_crash(fixture_tables, raw_dir):
    """A main indicator's sum above its denominator (cleaning rejects such a row, so only a table changed after
    cleaning can have one) is flagged above 100%; the run goes on."""
    xa = fixture_tables["xa_phuong"].copy()
    xa.loc[xa.index[0], "tre_5_tuoi_hoc_mg"] = xa.loc[xa.index[0], "tre_5_tuoi"] + 1  # CT16 above 100%
    out = indicators.compute({**fixture_tables, "xa_phuong": xa}, Crosswalk.load(raw_dir))
    above = out[(out.indicator_id == "CT16") & out.flag_above_100]
    assert len(above) and above["flags"].astype(str).str.contains("above_100").all()
