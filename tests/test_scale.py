"""National scale: the country generator, geography as a hierarchy (country, province, district, ward) and
a smoke run of benchmarks/bench_scale.py. Sizes are tiny; speed is measured by the benchmark, not here."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analysis import clean, config, indicators, read
from analysis import template as T
from analysis.geography import Crosswalk

sys.path.insert(0, str(config.PROJECT_ROOT / "benchmarks"))
import country_sample  # noqa: E402  (benchmarks/country_sample.py: the country generator)

TINY = country_sample.CountrySize(provinces=3, districts=7, wards=30, institutions=150, years=3)
LEVELS = ["country", "province", "district", "ward"]


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("country")
    country_sample.generate_country(raw, TINY, seed=7)
    return raw


@pytest.fixture(scope="module")
def cleaned(country):
    run = clean.clean_all(country)
    assert not run.failures
    return clean.combine(run)


@pytest.fixture(scope="module")
def ind(country, cleaned):
    return indicators.compute(cleaned, Crosswalk.load(country))


# --- generator ------------------------------------------------------------------------------------------

def test_country_crosswalk_is_a_hierarchy(country):
    cw = pd.read_csv(country / config.CROSSWALK_FILE, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    units = cw.drop_duplicates("unit_code").set_index("unit_code")
    counts = units["level"].value_counts()
    assert counts["country"] == 1 and counts["province"] == TINY.provinces and counts["district"] == TINY.districts
    merged = cw[cw["successor_code"] != ""]
    assert len(merged) >= 2 and (merged["mapping"] == "whole").all()  # at least one pair merged
    assert counts["ward"] == TINY.wards + merged["successor_code"].nunique()
    parent_level = units["parent_code"].map(units["level"])
    expected = {"ward": "district", "district": "province", "province": "country"}
    for level, above in expected.items():
        assert (parent_level[units["level"] == level] == above).all()
    assert "giả lập" in units.loc[country_sample.COUNTRY_CODE, "unit_name"]  # clearly synthetic
    Crosswalk.load(country)  # valid for the project's reader


def test_country_workbooks_follow_the_template(country):
    for year in TINY.year_list:
        path = country / T.workbook_name(year)
        wb = openpyxl.load_workbook(path, read_only=True)  # a valid .xlsx for other readers too
        assert set(wb.sheetnames) == {*(s.name for s in T.SHEETS), T.NOTE_SHEET}
        for spec in T.SHEETS:
            rows = list(wb[spec.name].iter_rows(max_row=3, values_only=True))
            assert T.school_year_label(year) in rows[0][0] and "GIẢ LẬP" in rows[0][0]
            header = [h for h in rows[2] if h is not None]
            # every column, girls' and ward code included (no former units: no reform in the synthetic country)
            assert header == [c.vi for c in spec.columns if c.id != "don_vi_cu"]
            if spec.name in ("Truong", "XaPhuong"):
                assert T.WARD_CODE.vi in header  # names repeat across provinces: the code decides
        wb.close()


def test_country_generation_is_reproducible(country, tmp_path):
    """Same seed and size, same files: the CSVs byte for byte, the workbooks part by part (all but
    docProps/core.xml, where openpyxl writes the time the workbook was saved)."""
    again = tmp_path / "again"
    country_sample.generate_country(again, TINY, seed=7)
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in country.iterdir())
    for path in sorted(country.iterdir()):
        if path.suffix != ".xlsx":
            assert (again / path.name).read_bytes() == path.read_bytes(), path.name
            continue
        with zipfile.ZipFile(path) as first, zipfile.ZipFile(again / path.name) as second:
            assert first.namelist() == second.namelist()
            for part in first.namelist():
                if part != "docProps/core.xml":
                    assert first.read(part) == second.read(part), (path.name, part)


def test_writer_round_trips_through_the_package_reader(tmp_path):
    """write_workbook (openpyxl, write-only) gives back, through the package's reader, the cells it was
    given: text as written (spaces, '&', '<', Vietnamese, a number written as text), numbers, blanks."""
    rows = [["TIÊU ĐỀ NĂM HỌC 2025-2026 (GIẢ LẬP)"], [], ["Mã trường", None, "HS đầu năm"],
            ["  P01TH000001 & <b> ", "Phường 1", 1_234_567], ["1.234", None, 0], [None, None, 7]]
    path = country_sample.write_workbook(tmp_path / "t.xlsx", {"PhoThong": rows, T.NOTE_SHEET: [["ghi chú"]]})
    workbook = read.open_workbook(path)
    assert workbook.sheet_names == ["PhoThong", T.NOTE_SHEET]
    width = max(len(r) for r in rows)
    expected = [["" if v is None else v for v in r] + [""] * (width - len(r)) for r in rows]
    got = read.read_grid(workbook, "PhoThong", path.name)
    assert got == expected
    assert [type(v) for v in got[3]] == [str, str, float] and got[4][0] == "1.234"  # text stays text


def test_country_workbooks_read_back_as_simulated(tmp_path):
    """What the package's reader and cleaner get from the workbooks is what the generator simulated: every
    table of every year, row for row (here half the counts >= 1000 are written as text, '1.234')."""
    size = dataclasses.replace(TINY, text_numbers=0.5)
    country_sample.generate_country(tmp_path, size, seed=7)
    run = clean.clean_all(tmp_path)
    assert not run.failures
    cleaned = clean.combine(run)
    first = read.open_workbook(tmp_path / T.workbook_name(size.year_list[0]))
    cells = [v for row in read.read_grid(first, "XaPhuong", "first") for v in row]
    assert any(isinstance(v, str) and re.fullmatch(r"\d{1,3}(\.\d{3})+", v) for v in cells)  # text was written
    geo = country_sample.country_geography(size, seed=7)
    roster = country_sample._country_roster(size, geo, seed=7)
    tables = {"Truong": "truong", "MamNon": "mam_non", "PhoThong": "pho_thong", "XaPhuong": "xa_phuong"}
    for year in size.year_list:
        simulated = country_sample.simulate_country_year(size, geo, roster, year, seed=7)
        for sheet, table in tables.items():
            got = cleaned[table][cleaned[table]["year"] == year].drop(columns=["year", "source_file", "source_row"])
            got = got.drop(columns=["don_vi_cu", "ma_don_vi_cu"], errors="ignore")  # former units (none here)
            want = simulated[sheet]
            assert len(want) and got.columns.tolist() == want.columns.tolist(), (year, sheet)
            assert got.astype(object).to_numpy().tolist() == want.astype(object).to_numpy().tolist(), (year, sheet)


def test_country_data_clean_without_problems(cleaned):
    q = cleaned["quality"]
    assert not (q["severity"].isin(["error", "warning"])).any(), q.head()
    assert len(cleaned["truong"]) and len(cleaned["xa_phuong"]) and cleaned["xa_phuong"]["ma_xa_phuong"].notna().all()
    # every ward of a year is in the survey once, by code, even where names repeat
    for _, g in cleaned["xa_phuong"].groupby("year"):
        assert g["ma_xa_phuong"].is_unique


def test_small_size_validation():
    with pytest.raises(ValueError):
        country_sample.CountrySize(provinces=5, districts=3, wards=10)


# --- geography at every level ----------------------------------------------------------------------------

def test_every_level_is_reported(ind):
    assert set(LEVELS) <= set(ind["geo_level"])
    country = ind[ind["geo_level"] == "country"]
    assert set(country["geo_code"]) == {country_sample.COUNTRY_CODE}
    assert ind.loc[ind["geo_level"] == "province", "geo_code"].nunique() == TINY.provinces
    assert ind.loc[ind["geo_level"] == "district", "geo_code"].nunique() == TINY.districts


@pytest.mark.parametrize("iid", ["CT07", "CT15", "CT16", "CT17B", "CT20B"])
def test_sums_agree_across_levels(ind, iid):
    """Country = sum of provinces = sum of districts = sum of wards, every year and sex (every unit of the
    synthetic country has a ward, so nothing is left out of the ward breakdown)."""
    rows = ind[(ind["indicator_id"] == iid) & ind["geo_level"].isin(LEVELS)]
    sums = rows.groupby(["year", "sex", "geo_level"])[["numerator", "denominator", "n_units"]].sum().unstack()
    for field in ("numerator", "denominator", "n_units"):
        per_level = sums[field][LEVELS]
        assert per_level.notna().all().all()
        assert (per_level.eq(per_level["country"], axis=0)).all().all(), (iid, field, per_level)


def test_province_is_the_sum_of_its_districts(ind, country):
    cw = Crosswalk.load(country)
    d = ind[(ind["indicator_id"] == "CT16") & (ind["geo_level"] == "district") & (ind["sex"] == "total")].copy()
    d["province"] = d["geo_code"].map(cw.parents_at(int(d["year"].max())))
    p = ind[(ind["indicator_id"] == "CT16") & (ind["geo_level"] == "province") & (ind["sex"] == "total")]
    got = d.groupby(["year", "province"])["numerator"].sum()
    want = p.set_index(["year", "geo_code"])["numerator"]
    assert got.sort_index().to_numpy().tolist() == want.sort_index().to_numpy().tolist()


def test_whole_merger_keeps_the_series_and_maps_to_todays_ward(ind, country):
    cw = pd.read_csv(country / config.CROSSWALK_FILE, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    merged = cw[cw["successor_code"] != ""]
    old, new = merged["unit_code"].iloc[0], merged["successor_code"].iloc[0]
    current = ind[(ind["geo_level"] == "ward_current") & (ind["indicator_id"] == "CT16") & (ind["sex"] == "total")]
    before = current[current["year"] < TINY.merge_year]
    assert new in set(before["geo_code"])  # history restated in today's ward
    assert old not in set(current["geo_code"])
    above = ind[ind["geo_level"].isin(["country", "province", "district"]) & ind["population_based"]]
    assert not above["series_break"].any()  # whole mergers inside a district: same territory


def test_wards_under_matches_its_definition(country):
    cw = Crosswalk.load(country)
    year = TINY.year_list[-1]
    parents = cw.parents_at(year)
    wards = cw.wards_of_year(year)["unit_code"].tolist()
    for code in [country_sample.COUNTRY_CODE, "P01", "P01D001", "P02D001"]:
        brute = frozenset(w for w in wards if code in cw.ancestors_from(w, parents).values())
        assert cw.wards_under(code, year) == brute and brute



def test_ancestry_walks_a_ward_on_its_own_where_a_chain_loops_through_it():
    """A crosswalk whose parents loop back through a ward (D1 -> W1 -> D1): W1's own chain stops before it
    repeats, W2 under D1 shares D1's chain (which passes W1). Nothing loops forever, and each ward gets what
    ancestors_from says."""
    rows = [("W1", "Xã Một", "Xã", "ward", "D1"), ("W2", "Xã Hai", "Xã", "ward", "D1"),
            ("D1", "Huyện Một", "Huyện", "district", "W1")]
    frame = pd.DataFrame([{"unit_code": c, "unit_name": n, "unit_type": t, "level": lv, "parent_code": p,
                           "valid_from": "2000-01-01", "valid_to": "", "successor_code": "", "mapping": "",
                           "source": "test", "note": ""} for c, n, t, lv, p in rows])
    cw = Crosswalk(frame)
    found = cw.ancestry(2020, ["W1", "W2"])
    parents = cw.parents_at(2020)
    assert cw.ancestors_from("W1", parents) == {"district": "D1"}
    assert cw.ancestors_from("W2", parents) == {"district": "D1", "ward": "W1"}
    assert found["district"].tolist() == ["D1", "D1"] and found["ward"].fillna("").tolist() == ["", "W1"]
    assert cw.wards_under("D1", 2020) == frozenset({"W1", "W2"})

# --- the benchmark script ---------------------------------------------------------------------------------

def test_bench_scale_smoke_run():
    """The benchmark runs the three commands on a tiny country, for this code and (the same code again, as a
    stand-in for an earlier commit) a baseline, and prints its table and budget lines."""
    script = config.PROJECT_ROOT / "benchmarks" / "bench_scale.py"
    result = subprocess.run([sys.executable, str(script), "--data", "small", "--baseline", "HEAD"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for label in ("clean", "indicators", "projections", "pipeline", "budget (2 cores)", "this code / baseline"):
        assert label in out, out
