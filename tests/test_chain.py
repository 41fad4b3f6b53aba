"""A workbook that cleaning accepts goes through the whole chain (issue 20): a small clean series in the
template (four school years, three wards, twelve institutions), with indicator values computed by hand,
and altered copies of it, each run as a user runs it (clean, indicators, projections; the batch for two of
them) in a separate process with a timeout. Each run ends in success with the problem in quality.csv, or
exits non-zero with the bilingual message; never a traceback or a hang."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import MAMNON_HEADER, PHOTHONG_HEADER, TRUONG_HEADER, XAPHUONG_HEADER, write_workbook

from analysis import config

YEARS = (2022, 2023, 2024, 2025)
WARDS = ("Thới Hòa", "Hòa Lợi", "Tân Định")

# code, name, type, ownership, ward, first year of sanitation / psychological support / disability-adapted
# facilities (None: never)
INSTITUTIONS = [
    ("MN01", "Trường Mầm non Thới Hòa", "Mầm non", "Công lập", "Thới Hòa", 2022, None, 2023),
    ("MN02", "Trường Mầm non Tư thục Hoa Mai", "Mầm non", "Tư thục", "Hòa Lợi", 2022, None, None),
    ("MN03", "Trường Mẫu giáo Tân Định", "Mẫu giáo", "Công lập", "Tân Định", 2022, None, 2024),
    ("NT01", "Nhóm trẻ Thỏ Ngọc", "Nhóm trẻ/Lớp MG độc lập", "Tư thục", "Thới Hòa", 2024, None, None),
    ("TH01", "Trường Tiểu học Thới Hòa", "Tiểu học", "Công lập", "Thới Hòa", 2022, 2022, 2022),
    ("TH02", "Trường Tiểu học Hòa Lợi", "Tiểu học", "Công lập", "Hòa Lợi", 2022, 2023, None),
    ("TH03", "Trường Tiểu học Tân Định", "Tiểu học", "Công lập", "Tân Định", 2022, 2024, 2025),
    ("TH04", "Trường Tiểu học Tư thục Ánh Dương", "Tiểu học", "Tư thục", "Thới Hòa", 2022, None, None),
    ("CS01", "Trường THCS Thới Hòa", "THCS", "Công lập", "Thới Hòa", 2022, 2022, 2022),
    ("CS02", "Trường THCS Hòa Lợi", "THCS", "Công lập", "Hòa Lợi", 2022, 2022, 2023),
    ("CS03", "Trường THCS Tân Định", "THCS", "Công lập", "Tân Định", 2022, 2025, None),
    ("LC01", "Trường TH&THCS Hòa Lợi", "TH&THCS", "Công lập", "Hòa Lợi", 2022, 2022, None),
]
PRESCHOOLS = {"MN01": (300, 6), "MN02": (150, 4), "MN03": (200, 5), "NT01": (25, 2)}  # assessed, not on track
# (code, level): enrolment, dropouts in the first year
LEVELS = {("TH01", "Tiểu học"): (1200, 3), ("TH02", "Tiểu học"): (900, 2), ("TH03", "Tiểu học"): (800, 1),
          ("TH04", "Tiểu học"): (300, 0), ("LC01", "Tiểu học"): (400, 1), ("CS01", "THCS"): (1000, 9),
          ("CS02", "THCS"): (700, 6), ("CS03", "THCS"): (600, 4), ("LC01", "THCS"): (350, 3)}
# ward: 5-year-olds, 11-14, 15-18, children with disabilities needing education (first year)
POPULATION = {"Thới Hòa": (700, 2600, 2400, 12), "Hòa Lợi": (500, 1900, 1800, 8), "Tân Định": (450, 1700, 1650, 6)}


def _yes(first: int | None, year: int) -> str:
    return "Có" if first is not None and year >= first else "Không"


def series_sheets(year: int) -> dict[str, list[list]]:
    """One school year of the clean series, as the template asks (a title row, the header, the rows)."""
    k = year - YEARS[0]
    title = [f"SỐ LIỆU NĂM HỌC {year - 1}-{year} (dữ liệu kiểm thử)"]
    truong = [title, list(TRUONG_HEADER)] + [[code, name, kind, own, ward, _yes(a, year), _yes(b, year), _yes(c, year)]
                                       for code, name, kind, own, ward, a, b, c in INSTITUTIONS]
    mam_non = [title, list(MAMNON_HEADER)]
    for code, (base, miss) in PRESCHOOLS.items():
        assessed, missed = base + 10 * k, max(miss - k, 0)
        girls = assessed * 48 // 100
        mam_non.append([code, assessed, girls, assessed - missed, girls - missed // 2])
    pho_thong = [title, list(PHOTHONG_HEADER)]
    for (code, level), (base, dropouts) in LEVELS.items():
        enrolled = base + 20 * k
        girls, first, last = enrolled * 48 // 100, enrolled // 5, enrolled // 5 - 4
        out = max(dropouts - k, 0)
        pho_thong.append([code, level, enrolled, girls, first, last, last - 1, last * 48 // 100 - 1, out, out // 2])
    xa_phuong = [title, list(XAPHUONG_HEADER)]
    for ward, (age5, age11, age15, tkt) in POPULATION.items():
        row = [ward]
        for total, missing in ((age5 + 10 * k, 8 - k), (age11 + 20 * k, 60 - 10 * k), (age15 + 20 * k, 250 - 30 * k)):
            row += [total, total * 48 // 100, total - missing, total * 48 // 100 - missing // 2]
        row += [tkt + k, (tkt + k) // 2, tkt + k - 2, (tkt + k) // 2 - 1]
        # columns: 5-year-olds (all, girls, in kindergarten, girls), 11-14 (…), 15-18 (…), disabilities (…)
        xa_phuong.append(row)
    return {"Truong": truong, "MamNon": mam_non, "PhoThong": pho_thong, "XaPhuong": xa_phuong}


def series() -> dict[int, dict[str, list[list]]]:
    return {year: series_sheets(year) for year in YEARS}


def write_series(raw: Path, workbooks: dict[int, dict[str, list[list]]]) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    for name in (config.CROSSWALK_FILE, config.TARGETS_FILE):
        (raw / name).write_bytes((config.RAW_DIR / name).read_bytes())
    for year, sheets in workbooks.items():
        write_workbook(raw / f"{year - 1}-{year}.xlsx", sheets)
    return raw


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True,
                          timeout=timeout)


def chain(raw: Path, processed: Path) -> list[tuple[str, subprocess.CompletedProcess]]:
    """clean, indicators, projections until one fails; each outcome checked against the contract."""
    done = []
    for step in ("clean", "indicators", "projections"):
        extra = ["--jobs", "1"] if step == "projections" else []
        res = run_cli(step, "--raw-dir", str(raw), "--processed-dir", str(processed), *extra)
        assert "Traceback" not in res.stderr, (step, res.stderr[-3000:])
        done.append((step, res))
        if res.returncode != 0:
            assert "LỖI / ERROR" in res.stderr, (step, res.returncode, res.stdout[-2000:], res.stderr[-2000:])
            break
    return done


# --- the clean series ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clean_series(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("series")
    raw, processed = write_series(root / "raw", series()), root / "processed"
    outcomes = chain(raw, processed)
    assert [res.returncode for _, res in outcomes] == [0, 0, 0], outcomes[-1][1].stderr
    return processed


def value(ind: pd.DataFrame, iid: str, year: int, level: str = "district", code: str | None = None,
          sex: str = "total") -> tuple[int, int]:
    m = (ind.indicator_id == iid) & (ind.year == year) & (ind.geo_level == level) & (ind.sex == sex)
    if code is not None:
        m &= ind.geo_code == code
    row = ind[m]
    assert len(row) == 1, (iid, year, level, code, sex, len(row))
    return int(row.numerator.iloc[0]), int(row.denominator.iloc[0])


def test_the_clean_series_has_no_problem_and_its_values_by_hand(clean_series):
    quality = pd.read_parquet(clean_series / "quality.parquet")
    assert quality.empty, quality[["file", "sheet", "row", "code"]]
    ind = pd.read_parquet(clean_series / "indicators.parquet")
    # 2025 (k = 3), worked out from the rules of series_sheets:
    # CT07: NT01 has toilets from 2024, every other institution from 2022: 12 of 12
    assert value(ind, "CT07", 2025) == (12, 12)
    assert value(ind, "CT07", 2023) == (11, 12)
    # CT19: TH01, TH02, TH03, CS01, CS02, CS03, LC01 of the 8 primary and lower-secondary schools
    assert value(ind, "CT19", 2025) == (7, 8)
    assert value(ind, "CT19", 2022) == (4, 8)
    # CT15: assessed 330 + 180 + 230 + 55 = 795; not on track 3 + 1 + 2 + 0 = 6
    assert value(ind, "CT15", 2025) == (789, 795)
    # girls: 158 + 86 + 110 + 26 = 380 assessed, minus 1 + 0 + 1 + 0
    assert value(ind, "CT15", 2025, sex="female") == (378, 380)
    assert value(ind, "CT15", 2025, sex="male") == (411, 415)
    # CT17B: primary enrolment 1260 + 960 + 860 + 360 + 460 = 3900; dropouts 0 (3 - 3, 2 - 3 -> 0, …)
    assert value(ind, "CT17B", 2025) == (0, 3900)
    assert value(ind, "CT17B", 2022) == (7, 3600)
    # CT18B 2023: enrolment 1020 + 720 + 620 + 370 = 2730; dropouts 8 + 5 + 3 + 2 = 18; girls 4 + 2 + 1 + 1
    assert value(ind, "CT18B", 2023) == (18, 2730)
    assert value(ind, "CT18B", 2023, sex="female") == (8, 489 + 345 + 297 + 177)
    # CT16 in Thới Hòa 2025: 730 children, 5 not in kindergarten
    assert value(ind, "CT16", 2025, level="ward", code="THOI_HOA") == (725, 730)
    # CT17A 2022: 2600 + 1900 + 1700 = 6200 children 11-14, 60 per ward not completed
    assert value(ind, "CT17A", 2022) == (6020, 6200)
    # CT20B 2024: (14 + 10 + 8) in need, 2 per ward without access
    assert value(ind, "CT20B", 2024) == (26, 32)
    # CT20A 2025, the same schools as CT19: TH01, TH03, CS01, CS02 of 8; the preschools apart: MN01, MN03 of 4
    assert value(ind, "CT20A", 2025) == (4, 8)
    assert value(ind, "CT20A_MN", 2025) == (2, 4)


# --- altered copies -------------------------------------------------------------------------------------------

def _rows(workbooks, year, sheet):
    return workbooks[year][sheet]


def zero_population_ward(w):
    _rows(w, 2024, "XaPhuong")[2][1:] = [0] * 16  # Thới Hòa 2024: every count zero


def school_all_zero(w):
    for year in YEARS:
        for row in _rows(w, year, "PhoThong")[2:]:
            if row[0] == "TH04":
                row[2:] = [0] * 8
        for row in _rows(w, year, "MamNon")[2:]:
            if row[0] == "NT01":
                row[1:] = [0] * 4


def no_children_with_disabilities(w):
    for year in YEARS:
        for row in _rows(w, year, "XaPhuong")[2:]:
            row[13:17] = [0, 0, 0, 0]


def year_without_preschool_rows(w):
    w[2023]["MamNon"] = w[2023]["MamNon"][:2]


def derived_counts_out_of_order(w):
    # Hòa Lợi 2024: girls are a smaller share of the completers than of the children, so the boys' counts
    # (all minus girls) give more completers than children: 1,512 of 1,493 (the case)
    row = _rows(w, 2024, "XaPhuong")[3]
    row[5:9] = [3000, 1507, 2950, 1438]


def duplicate_school(w):
    _rows(w, 2024, "Truong").append(list(_rows(w, 2024, "Truong")[6]))  # TH01 twice


def orphan_school(w):
    _rows(w, 2024, "PhoThong").append(["ZZ99", "Tiểu học", 100, 48, 20, 18, 17, 8, 0, 0])
    _rows(w, 2024, "MamNon").append(["ZZ98", 40, 19, 39, 19])


def unknown_ward(w):
    _rows(w, 2024, "Truong")[3][4] = "Phường Không Có"  # MN02
    _rows(w, 2024, "XaPhuong")[4][0] = "Xã Không Có"  # Tân Định


def no_girls_columns(w):
    for sheet in ("MamNon", "PhoThong", "XaPhuong"):
        rows = _rows(w, 2023, sheet)
        keep = [j for j, h in enumerate(rows[1]) if not str(h).endswith("– Nữ")]
        rows[1:] = [[r[j] for j in keep] for r in rows[1:]]


def only_girls(w):
    for row in _rows(w, 2025, "XaPhuong")[2:]:  # every child a girl: the boys' denominators are zero
        row[2::2] = row[1::2]


def empty_survey_every_year(w):
    for year in YEARS:
        w[year]["XaPhuong"] = w[year]["XaPhuong"][:2]


def one_year_only(w):
    for year in YEARS[:-1]:
        del w[year]


def a_year_missing(w):
    del w[2023]


def after_the_2025_merger(w):
    sheets = copy.deepcopy(w[2025])  # school year 2025-2026: Tân Định is part of the new Hòa Lợi
    sheets["XaPhuong"] = [r for r in sheets["XaPhuong"] if r[0] != "Tân Định"]
    for row in sheets["Truong"][2:]:
        row[4] = "Hòa Lợi" if row[4] == "Tân Định" else row[4]
    for rows in sheets.values():
        rows[0] = ["SỐ LIỆU NĂM HỌC 2025-2026 (dữ liệu kiểm thử)"]
    w[2026] = sheets


def blank_required_counts(w):
    for row in _rows(w, 2024, "PhoThong")[2:]:
        row[2] = None  # no enrolment anywhere that year


def text_in_counts(w):
    _rows(w, 2025, "XaPhuong")[2][1] = "bảy trăm"
    _rows(w, 2025, "MamNon")[2][3] = "-5"


def no_preschools_at_all(w):
    for year in YEARS:
        w[year]["Truong"] = [r for r in w[year]["Truong"] if r[0] not in PRESCHOOLS]
        w[year]["MamNon"] = w[year]["MamNon"][:2]


def _ward_male_excluded(ind, quality):
    row = ind[(ind.indicator_id == "CT17A") & (ind.year == 2024) & (ind.sex == "male")
              & (ind.geo_code.isin(["HOA_LOI", "BEN_CAT"]))].set_index("geo_code")
    assert row.loc["HOA_LOI", "value"] != row.loc["HOA_LOI", "value"]  # no value: the boys' counts are not used
    assert row.loc["HOA_LOI", "flag_excluded_values"] and row.loc["BEN_CAT", "flag_excluded_values"]
    assert (row.loc["BEN_CAT", "numerator"], row.loc["BEN_CAT", "denominator"]) == (2238, 2278)  # the other two wards
    hit = quality[quality.code == "boys_subset_exceeds_total"]
    assert hit[["file", "sheet", "row", "cell"]].values.tolist() == [["2023-2024.xlsx", "XaPhuong", 4, "I4"]]
    assert "1512" in hit.message_vi.iloc[0] and "1493" in hit.message_en.iloc[0]


def _zero_denominators(iid, year=None, level="district", code=None):
    def check(ind, quality):
        rows = ind[(ind.indicator_id == iid) & (ind.geo_level == level) & ((ind.year == year) if year else True)
                   & ((ind.geo_code == code) if code else True)]
        assert len(rows) and rows.flag_zero_denominator.all() and rows.value.isna().all()
    return check


def _restated_in_2026(ind, quality):
    """The new Hòa Lợi (Hòa Lợi + Tân Định) lies wholly inside the plan's territory: the territory is restated,
    the population-based series go on (same territory id as 2025), no break."""
    d = ind[(ind.geo_level == "district") & (ind.sex == "total")].set_index(["indicator_id", "year"])
    pop = ["CT16", "CT17A", "CT18A", "CT20B"]
    assert not d.loc[[(i, 2026) for i in pop], "series_break"].any() and not d.loc[("CT15", 2026), "series_break"]
    assert (d.loc[[(i, 2026) for i in pop], "territory_id"].to_numpy()
            == d.loc[[(i, 2025) for i in pop], "territory_id"].to_numpy()).all()


# alteration: (the quality codes its run logs, a check of its indicators)
ALTERED = {
    zero_population_ward: ({"all_counts_zero"}, _zero_denominators("CT16", 2024, "ward", "THOI_HOA")),
    school_all_zero: ({"all_counts_zero"}, None),
    no_children_with_disabilities: (set(), _zero_denominators("CT20B")),
    year_without_preschool_rows: ({"no_data_rows", "not_reported"}, None),
    derived_counts_out_of_order: ({"boys_subset_exceeds_total"}, _ward_male_excluded),
    duplicate_school: ({"duplicate_key", "unknown_school"}, None),
    orphan_school: ({"unknown_school"}, None),
    unknown_ward: ({"unknown_ward"}, None),
    no_girls_columns: (set(), None),
    only_girls: (set(), None),
    empty_survey_every_year: ({"no_data_rows"}, None),
    one_year_only: (set(), None),
    a_year_missing: (set(), None),
    after_the_2025_merger: (set(), _restated_in_2026),
    blank_required_counts: ({"blank"}, None),
    text_in_counts: ({"negative", "not_number"}, None),
    no_preschools_at_all: ({"no_data_rows"}, None),
}


def missing_required_column(w):
    for row in _rows(w, 2024, "PhoThong")[1:]:
        del row[2]  # no "HS đầu năm" column: the file cannot be used


def every_sheet_empty(w):
    for year in YEARS:
        for sheet in w[year]:
            w[year][sheet] = w[year][sheet][:2]


# alteration: (the step that stops, with the bilingual message, and words of that message)
STOPPING = {missing_required_column: ("clean", "HS đầu năm"), every_sheet_empty: ("projections", "no values")}


@pytest.mark.slow
@pytest.mark.parametrize("alter", STOPPING, ids=lambda f: f.__name__)
def test_altered_series_stops_with_the_bilingual_message(tmp_path, alter):
    workbooks = series()
    alter(workbooks)
    outcomes = chain(write_series(tmp_path / "raw", workbooks), tmp_path / "processed")  # no traceback, LỖI / ERROR
    step, words = STOPPING[alter]
    assert outcomes[-1][0] == step and outcomes[-1][1].returncode != 0 and words in outcomes[-1][1].stderr


def run_altered(root: Path, alter) -> Path:
    workbooks = series()
    alter(workbooks)
    outcomes = chain(write_series(root / "raw", workbooks), root / "processed")
    assert all(res.returncode == 0 for _, res in outcomes), outcomes[-1][1].stderr
    return root / "processed"


@pytest.mark.slow
@pytest.mark.parametrize("alter", ALTERED, ids=lambda f: f.__name__)
def test_altered_series_runs_through_the_chain(tmp_path, alter):
    processed = run_altered(tmp_path, alter)
    codes, check = ALTERED[alter]
    quality = pd.read_parquet(processed / "quality.parquet")
    assert set(quality["code"]) == codes
    if check:
        check(pd.read_parquet(processed / "indicators.parquet"), quality)


@pytest.mark.slow
@pytest.mark.parametrize("alter, year", [(derived_counts_out_of_order, 2024), (after_the_2025_merger, 2026)],
                         ids=["derived_counts_out_of_order", "after_the_2025_merger"])
def test_altered_series_gets_its_report(tmp_path, alter, year):
    processed = run_altered(tmp_path, alter)
    res = run_cli("batch", "--years", str(year), "--notebooks", "04_report", "--jobs", "1", "--no-progress",
                  "--raw-dir", str(tmp_path / "raw"), "--processed-dir", str(processed),
                  "--reports-dir", str(tmp_path / "reports"), timeout=600)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert (tmp_path / "reports" / str(year) / "04_report.html").exists()
